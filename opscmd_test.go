package main

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/carepipe/carepipe/app"
	"github.com/carepipe/carepipe/internal/kafkatest"
	"github.com/carepipe/carepipe/ops"
	"github.com/carepipe/carepipe/pipeline"
	"github.com/carepipe/carepipe/pipeline/catalog"
	"github.com/carepipe/carepipe/pipeline/orders"
)

// carepipe describe prints what ops.Describe makes of the specs app
// builds; --pipeline takes a pipeline or one datasync stage.
func TestDescribeCommand(t *testing.T) {
	specs, err := app.Specs(app.Config{})
	if err != nil {
		t.Fatal(err)
	}
	var want bytes.Buffer
	if err := ops.WriteJSON(&want, ops.Describe(specs, catalog.NotesOf)); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name   string
		args   []string
		code   int
		stdout string // a fragment; "=json": exactly want
	}{
		{"json, every pipeline", []string{"describe", "--json"}, 0, "=json"},
		{"text, datasync's three stages", []string{"describe", "--pipeline", "datasync"}, 0, "pipeline datasync_reconciliation"},
		{"one stage", []string{"describe", "--pipeline", "datasync_cdc"}, 0, "group              healthcare-data-sync-cdc"},
		{"unknown pipeline", []string{"describe", "--pipeline", "billing"}, 2, ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var out, errOut bytes.Buffer
			if code := run(tt.args, &out, &errOut); code != tt.code {
				t.Fatalf("exit %d, want %d; stderr %s", code, tt.code, errOut.String())
			}
			switch {
			case tt.stdout == "=json" && out.String() != want.String():
				t.Errorf("stdout is not ops.WriteJSON of app.Specs:\n%s", out.String())
			case tt.stdout != "=json" && !strings.Contains(out.String(), tt.stdout):
				t.Errorf("stdout lacks %q:\n%s", tt.stdout, out.String())
			}
		})
	}
}

// Mistakes in the operator commands' arguments are said before any
// cluster is asked.
func TestOpsCommandUsage(t *testing.T) {
	for _, tt := range []struct {
		name string
		args []string
		code int
		says string
	}{
		{"errors without a verb", []string{"errors"}, 2, "carepipe errors list"},
		{"errors with an unknown verb", []string{"errors", "purge"}, 2, "carepipe errors list"},
		{"errors list without a pipeline", []string{"errors", "list"}, 2, "--pipeline is required"},
		{"errors show without coordinates", []string{"errors", "show", "--pipeline", "orders"}, 2, "TOPIC/PARTITION/OFFSET"},
		{"errors list with a bad time", []string{"errors", "list", "--pipeline", "orders", "--since", "yesterday"}, 2, "--since"},
		{"errors list without brokers", []string{"errors", "list", "--pipeline", "orders"}, 1, "--brokers"},
		{"reset without a pipeline", []string{"reset"}, 2, "--pipeline is required"},
		{"reset to two places", []string{"reset", "--pipeline", "orders", "--to-latest", "--to-earliest"}, 2, "one of"},
		{"reset without brokers", []string{"reset", "--pipeline", "orders"}, 1, "--brokers"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv("KAFKA_BROKERS", "")
			var out, errOut bytes.Buffer
			if code := run(tt.args, &out, &errOut); code != tt.code || !strings.Contains(errOut.String(), tt.says) {
				t.Errorf("exit %d, want %d; stderr %q, want it to say %q", code, tt.code, errOut.String(), tt.says)
			}
		})
	}
}

// The operator's commands against a cluster, as an operator types them:
// errors list shows coordinates and never the content; show shows one
// record whole; replay replays once, however often it is run; reset
// refuses a running pipeline and resets a stopped one.
func TestOpsCommandsOnACluster(t *testing.T) {
	c := kafkatest.NewCluster(t)
	cl := kafkatest.Client(t, c.ClientOpts())
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	proc, err := orders.New()
	if err != nil {
		t.Fatal(err)
	}
	spec := proc.Spec()
	if err := pipeline.CreateTopics(ctx, kadm.NewClient(cl), &spec, 2, 1); err != nil {
		t.Fatal(err)
	}
	// An order cut short: not JSON, so a decode error. Its patient id is
	// what must not leak from list.
	const secret = "pat-LEAK-CANARY-7"
	bad := &kgo.Record{Topic: orders.TopicSubmitted, Key: []byte("ord-1"), Value: []byte(`{"id":"ord-1","patientId":"` + secret + `","medication`)}
	if err := cl.ProduceSync(ctx, bad).FirstErr(); err != nil {
		t.Fatal(err)
	}
	in := kafkatest.StartRunner(t, spec, pipeline.WithKafka(c.ClientOpts()...), pipeline.WithLogger(slog.New(slog.DiscardHandler)),
		pipeline.WithCommitInterval(20*time.Millisecond))

	brokers := []string{"--brokers", strings.Join(c.Addrs(), ",")}
	cli := func(args ...string) (int, string, string) {
		var out, errOut bytes.Buffer
		code := run(append(args, brokers...), &out, &errOut)
		return code, out.String(), errOut.String()
	}
	var list string
	kafkatest.Eventually(t, 30*time.Second, "the error record listed", func() bool {
		_, list, _ = cli("errors", "list", "--pipeline", "orders")
		return strings.Contains(list, "1 error records")
	})
	if strings.Contains(list, secret) || !strings.Contains(list, orders.TopicErrors+"/") || !strings.Contains(list, "decode") {
		t.Errorf("errors list:\n%s", list)
	}
	at := strings.Fields(strings.Split(list, "\n")[1])[0]
	if code, out, _ := cli("errors", "list", "--pipeline", "orders", "--json"); code != 0 || strings.Contains(out, secret) ||
		!strings.Contains(out, `"errorType":"decode"`) || !strings.Contains(out, `"replayable":true`) || strings.Count(out, "\n") != 1 {
		t.Errorf("errors list --json: exit %d\n%s", code, out)
	}
	if code, out, errOut := cli("errors", "show", "--pipeline", "orders", at); code != 0 || !strings.Contains(out, secret) || !strings.Contains(out, "source-offset: 0") {
		t.Errorf("errors show %s: exit %d\n%s%s", at, code, out, errOut)
	}
	if code, out, _ := cli("errors", "list", "--pipeline", "orders", "--error-type", "invalid"); code != 0 || !strings.Contains(out, "0 error records") {
		t.Errorf("errors list --error-type invalid: exit %d\n%s", code, out)
	}
	if code, _, errOut := cli("reset", "--pipeline", "orders"); code != 1 || !strings.Contains(errOut, "active members") {
		t.Errorf("reset of a running pipeline: exit %d, %s", code, errOut)
	}
	for i, want := range []string{"dry run: would replay 1 originals", "replayed 1 originals", "replayed 0 originals of 1 error records selected; 1 replayed before"} {
		// The replayed order fails again (nothing was fixed): its new
		// error record is left out by its source offset.
		args := []string{"errors", "replay", "--pipeline", "orders", "--to-offset", "0"}
		if i == 0 {
			args = append(args, "--dry-run")
		}
		if code, out, errOut := cli(args...); code != 0 || !strings.Contains(out, want) || strings.Contains(out, secret) {
			t.Errorf("%v: exit %d, want it to say %q\n%s%s", args, code, want, out, errOut)
		}
	}
	if err := in.Stop(); err != nil {
		t.Fatal(err)
	}
	code, out, errOut := cli("reset", "--pipeline", "orders", "--to-latest")
	// Its partition holds the order, its replay and the replay's commit
	// marker: the latest offset is 3.
	if code != 0 || !strings.Contains(out, fmt.Sprintf("offset medication.order.submitted[%d]: ", bad.Partition)) ||
		!strings.Contains(out, "-> 3\n") || !strings.Contains(out, "reset done") {
		t.Errorf("reset --to-latest: exit %d\n%s%s", code, out, errOut)
	}
}
