package app

import (
	"context"
	"io"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/carepipe/carepipe/pipeline/orders"
)

func TestEmbeddedListenAddr(t *testing.T) {
	for _, tt := range []struct {
		in, want, err string
	}{
		{in: "", want: "127.0.0.1:0"},
		{in: DefaultEmbeddedListen, want: "127.0.0.1:29092"},
		{in: "29093", want: "127.0.0.1:29093"},
		{in: ":29093", want: "127.0.0.1:29093"},
		{in: "localhost:0", want: "127.0.0.1:0"},
		{in: "[::1]:29092", want: "[::1]:29092"},
		{in: "127.0.0.2:9092", want: "127.0.0.2:9092"},
		{in: "0.0.0.0:29092", err: "not a loopback address"},
		{in: "kafka.example:29092", err: "not a loopback address"},
		{in: "127.0.0.1:99999", err: "port"},
		{in: "127.0.0.1", err: "not host:port"},
	} {
		t.Run(tt.in, func(t *testing.T) {
			got, err := embeddedListenAddr(tt.in)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Errorf("%q: %q, %v; want an error saying %q", tt.in, got, err, tt.err)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Errorf("%q: %q, %v; want %q", tt.in, got, err, tt.want)
			}
		})
	}
}

// freePort is a loopback port free a moment ago.
func freePort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// Look inside the demo: a client attaches to the embedded cluster at the
// address given, and reads the demo's output read_committed, as kcat
// would; a second demo on the same address fails at once, saying what to
// do.
func TestEmbeddedListenLetsAClientAttach(t *testing.T) {
	addr := freePort(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cfg := Config{Pipelines: []string{"orders"}, EmbeddedListen: addr, SummaryEvery: -1, Stdout: io.Discard, Logger: slog.New(slog.DiscardHandler)}
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- Run(runCtx, cfg) }()
	defer func() {
		stop()
		if err := <-done; err != nil {
			t.Errorf("the demo: %v", err)
		}
	}()

	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.ConsumeTopics(orders.TopicProcessed),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.MetadataMinAge(50*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	for got := 0; got == 0; {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("no processed order read from the demo at %s", addr)
		}
		got = fs.NumRecords()
	}

	second := cfg
	second.Duration = 10 * time.Second
	err = Run(ctx, second)
	if err == nil || !strings.Contains(err.Error(), addr+" is in use") || !strings.Contains(err.Error(), "--embedded-listen") {
		t.Errorf("a second demo on %s: %v, want it refused with a hint", addr, err)
	}
}
