// Command soak runs carepipe's pipelines on an in-process cluster under a
// seeded schedule of faults, one seed after another until its time budget
// is spent, and accounts for every record of every seed: lost, duplicated,
// out of order, error records that differ from their input, and outcomes
// that differ from the workload's truth. A seed's faults and workload are a
// function of its number (and of -faults), so a failing seed is rerun with
// -first N -seeds 1.
//
//	go run ./sim/cmd/soak -budget 30m
//
// Per seed: three brokers, the clinical alerts pipeline (the seed's rules;
// poison records in the stream), the prior-authorization orchestrator with
// its simulated world, the data synchronization CDC and validation stages,
// and the orders pipeline, two instances each; the workloads are produced
// in rounds, and between rounds one fault is drawn: an instance crashed
// between produce and commit and fenced by its successor, stopped under
// load as SIGTERM does and replaced, joined or left; the brokers slow to
// answer produce requests; a partition-leader shuffle; a coordinator move;
// an idle churn (the validation stage or the prior-authorization
// orchestrator, idle, sees a member join and leave, then partitions move
// to a new instance for part of the next round and back: no transaction
// ends between the two idle rebalances, and franz-go's
// GroupTransactSession then passes on only the first revoke). After the
// last round the stores with a model computed from the inputs (the data
// synchronization validation store, the prior-authorization store) are
// read as a restore loads them and compared with it. It exits non-zero if
// any seed found a problem.
//
// A seed runs in three parts, a file each: world.go sets up its world
// (brokers, the pipelines built from pipeline/catalog, the workloads, two
// instances of each pipeline); faults.go is the fault step (choose a fault
// from the seed, inject it, await that it fired); accounting.go drains the
// pipelines and holds every output and store to the workloads' truths.
// main.go runs the seeds and, in each, the rounds with a fault step
// between each two.
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"slices"
	"strings"
	"time"
)

func main() {
	var (
		budget  = flag.Duration("budget", 2*time.Minute, "stop starting seeds after this long")
		seeds   = flag.Int("seeds", 0, "at most this many seeds (0: as many as the budget allows)")
		first   = flag.Int64("first", 1, "the first seed")
		records = flag.Int("records", 3000, "records per pipeline per seed")
		rounds  = flag.Int("rounds", 6, "rounds per seed; one fault between rounds")
		faults  = flag.String("faults", strings.Join(defaultFaults, ","), "the faults to draw from: "+strings.Join(faultKinds, ", "))
		verbose = flag.Bool("v", false, "log the pipelines' warnings to stderr")
	)
	flag.Parse()
	kinds := strings.Split(*faults, ",")
	for _, k := range kinds {
		if !slices.Contains(faultKinds, k) {
			fmt.Fprintf(os.Stderr, "soak: unknown fault %q (known: %s)\n", k, strings.Join(faultKinds, ", "))
			os.Exit(2)
		}
	}
	if *records < *rounds || *rounds < 2 {
		fmt.Fprintln(os.Stderr, "soak: need -rounds >= 2 and -records >= -rounds")
		os.Exit(2)
	}
	start := time.Now()
	var total result
	n := 0
	for seed := *first; time.Since(start) < *budget && (*seeds == 0 || n < *seeds); seed++ {
		log := slog.New(slog.DiscardHandler)
		if *verbose {
			log = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
		}
		r, err := runSeed(seed, *records, *rounds, kinds, log)
		if err != nil {
			fmt.Fprintf(os.Stderr, "seed %d: %v\n", seed, err)
			os.Exit(1)
		}
		fmt.Printf("seed %d  %s\n", seed, r)
		total.add(r)
		n++
	}
	fmt.Printf("\n%d seeds in %s (event time covered %s): %s\n", n, time.Since(start).Round(time.Second), total.eventTime, total)
	if total.problems() > 0 {
		os.Exit(1)
	}
}

// runSeed runs one seed: its world, its rounds with a fault drawn from
// the seed between each two, and the accounting of every record.
func runSeed(seed int64, n, rounds int, faults []string, log *slog.Logger) (result, error) {
	ctx := context.Background()
	w, err := newWorld(ctx, seed, n, faults, log)
	if err != nil {
		return result{}, err
	}
	defer w.close()
	rng := rand.New(rand.NewPCG(uint64(seed), 0x50a4))
	fired, err := w.playRounds(ctx, rounds, func() (string, error) { return w.step(rng) })
	if err != nil {
		return result{}, err
	}
	if err := w.drain(ctx); err != nil {
		return result{}, err
	}
	res, err := account(ctx, w)
	if err != nil {
		return res, err
	}
	for _, kind := range fired {
		res.addFault(kind)
	}
	return res, nil
}

// playRounds produces the workloads in rounds and runs step between each
// two, while the next round is pending (a fault may produce shares of it
// itself). It returns what each step fired, in order.
func (w *world) playRounds(ctx context.Context, rounds int, step func() (string, error)) ([]string, error) {
	var fired []string
	w.pending = w.round(0, rounds)
	for i := range rounds {
		// The round, or what a fault left of it.
		if err := w.produceNext(ctx, 1, 1); err != nil {
			return fired, err
		}
		if i == rounds-1 {
			break
		}
		w.pending = w.round(i+1, rounds)
		kind, err := step()
		if err != nil {
			return fired, err
		}
		fired = append(fired, kind)
	}
	return fired, nil
}
