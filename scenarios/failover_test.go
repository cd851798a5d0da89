package scenarios

import (
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/carepipe/carepipe/internal/kafkatest"
	"github.com/carepipe/carepipe/pipeline"
	"github.com/carepipe/carepipe/pipeline/alerts"
	"github.com/carepipe/carepipe/sim"
)

// Issue 19: two live instances started with one --instance-id. Before,
// each new session fenced the other's transactions and membership, for
// ever, with warnings only. Now the group fences one of them, whose Run
// returns an error that names the id (the binary exits non-zero with it),
// and the other processes every observation: exactly the expected alerts.
func TestAlertsDuplicateInstanceIDOneExits(t *testing.T) {
	w := newAlertsWorld(t)
	g := workload(t, 19, 0)
	w.produce(g.PatientRecords())
	recs, truths := g.NextN(4000)
	first := w.start("node-1")
	w.produce(recs[:2000])
	w.waitIdle(60 * time.Second)

	second := w.start("node-1")
	var (
		err      error
		survivor *kafkatest.Instance
	)
	select {
	case <-first.Done():
		err = first.Stop()
		survivor = second
	case <-second.Done():
		err = second.Stop()
		survivor = first
	case <-time.After(60 * time.Second):
		t.Fatal("both instances still run with one instance id")
	}
	var dup *pipeline.DuplicateInstanceError
	if !errors.As(err, &dup) || !strings.Contains(err.Error(), `--instance-id "node-1"`) {
		t.Fatalf("the fenced instance's Run returned %v, want an error naming --instance-id \"node-1\"", err)
	}

	w.produce(recs[2000:])
	w.waitIdle(60 * time.Second)
	diffMultiset(t, decodeAlerts(t, w.readAll(alerts.TopicAlerts)), sim.ExpectedAlertIDs(truths))
	if err := survivor.Stop(); err != nil {
		t.Fatal(err)
	}
}

// Issue 19: health that tells the truth. While every transaction aborts
// (the broker refuses the alerts it writes), the instance is not ready and
// says why; once the broker takes them again, it is ready again and every
// expected alert is there once. Before, /readyz said ready throughout.
func TestAlertsReadinessTurnsFalseAndBack(t *testing.T) {
	w := newAlertsWorld(t)
	g := workload(t, 20, 0)
	w.produce(g.PatientRecords())
	recs, truths := g.NextN(3000)
	in := w.start("")
	w.produce(recs[:1000])
	w.waitIdle(60 * time.Second)
	if ok, why := in.Runner.Health(); !ok {
		t.Fatalf("not ready after catching up: %s", why)
	}

	var refusing atomic.Bool
	refusing.Store(true)
	k := w.cluster.Kafka()
	id := topicID(t, w.adm, alerts.TopicAlerts)
	k.ControlKey(int16(kmsg.Produce), func(req kmsg.Request) (kmsg.Response, error, bool) {
		k.KeepControl()
		r := req.(*kmsg.ProduceRequest)
		if !refusing.Load() || !writesTo(r, alerts.TopicAlerts, id) {
			return nil, nil, false
		}
		return failedProduce(r, kerr.MessageTooLarge), nil, true
	})
	w.produce(recs[1000:2000])
	var reason string
	kafkatest.Eventually(t, 30*time.Second, "not ready while every transaction aborts", func() bool {
		var ok bool
		ok, reason = in.Runner.Health()
		return !ok
	})
	if !strings.Contains(reason, "no commit for") {
		t.Errorf("reason %q, want it to say no commit", reason)
	}
	if in.Runner.Stats().Lag == 0 {
		t.Error("lag 0 while nothing commits")
	}

	refusing.Store(false)
	w.produce(recs[2000:])
	w.waitIdle(60 * time.Second)
	kafkatest.Eventually(t, 30*time.Second, "ready again", in.Runner.Ready)
	diffMultiset(t, decodeAlerts(t, w.readAll(alerts.TopicAlerts)), sim.ExpectedAlertIDs(truths))
	if err := in.Stop(); err != nil {
		t.Fatal(err)
	}
}
