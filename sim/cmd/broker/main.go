// Command broker runs the embedded Kafka cluster of package sim (kfake, one
// broker unless -brokers says more) as a process of its own, on 127.0.0.1,
// until SIGINT or SIGTERM. carepipe instances started as separate processes
// (`carepipe run --brokers ADDR`) then share one cluster and can be killed
// with kill -9, which the in-process soak cannot do: the failover benchmark
// (sim/cmd/failover) runs it so.
//
//	go run ./sim/cmd/broker -port 9092
//
// It prints the brokers' addresses, comma-separated, as its first line on
// stdout once they listen. The cluster has sim's settings: group session
// timeouts from 100 ms up are accepted, no topic is created automatically.
// Nothing is kept on disk: the cluster's data goes with the process.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/carepipe/carepipe/sim"
)

func main() {
	port := flag.Int("port", 0, "port of the first broker on 127.0.0.1 (0: any free port); broker i listens on port+i")
	brokers := flag.Int("brokers", 1, "number of brokers")
	flag.Parse()
	if *brokers < 1 || *port < 0 || *port+*brokers > 65536 {
		fmt.Fprintln(os.Stderr, "broker: -brokers must be at least 1 and -port a port number")
		os.Exit(2)
	}
	opts := []sim.ClusterOption{sim.Brokers(*brokers)}
	if *port > 0 {
		ports := make([]int, *brokers)
		for i := range ports {
			ports[i] = *port + i
		}
		opts = append(opts, sim.KafkaOpts(kfake.Ports(ports...)))
	}
	c, err := sim.NewCluster(opts...)
	if err != nil {
		fmt.Fprintln(os.Stderr, "broker:", err)
		os.Exit(1)
	}
	fmt.Println(strings.Join(c.Addrs(), ","))
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	<-ctx.Done()
	c.Close()
}
