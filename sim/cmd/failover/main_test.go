package main

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/carepipe/carepipe/sim"
)

// TestAnalyseWindowsResumeAndTruth checks the benchmark's definitions on a
// made-up run: partition 0 belongs to the instance hit, 1 to a survivor.
// The event ends when its partition has resumed (6.5 s), which is after
// the group settled (5 s); an alert held through the event counts in the
// window it arrives in; a second copy of an alert is a duplicate and an
// alert that never arrives is lost.
func TestAnalyseWindowsResumeAndTruth(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	at := func(d time.Duration) time.Time { return t0.Add(d) }
	r := &run{
		cfg:  &config{phase: 10 * time.Second},
		dir:  t.TempDir(),
		log:  io.Discard,
		sent: map[string]*sentObs{},
	}
	obs := func(id string, p int32, sent time.Duration) {
		r.sent[id] = &sentObs{at: at(sent), partition: p}
		r.truths = append(r.truths, sim.ObservationTruth{ObservationID: id, Rules: []string{"rule"}})
	}
	arrive := func(id string, d time.Duration) {
		r.arrivals = append(r.arrivals, arrival{alertID: id + "-rule", obsID: id, at: at(d)})
	}
	obs("before-survivor", 1, -2*time.Second)
	arrive("before-survivor", -1900*time.Millisecond)
	obs("held", 0, -time.Second) // sent before the event, held by it
	arrive("held", 6*time.Second)
	obs("resumes", 0, time.Second) // the first of partition 0 after the event
	arrive("resumes", 6500*time.Millisecond)
	obs("during-survivor", 1, time.Second)
	arrive("during-survivor", 1100*time.Millisecond)
	arrive("during-survivor", 1200*time.Millisecond) // a duplicate
	obs("after", 1, 7*time.Second)
	arrive("after", 7100*time.Millisecond)
	obs("lost", 1, 8*time.Second)

	steps := []*step{{victim: "inst-1", start: t0, settled: at(5 * time.Second), affected: []int32{0}}}
	res := r.analyse(steps)

	if res.expected != 6 || res.lost != 1 || res.duplicated != 1 || res.unexpected != 0 {
		t.Errorf("expected %d, lost %d, duplicated %d, unexpected %d; want 6, 1, 1, 0", res.expected, res.lost, res.duplicated, res.unexpected)
	}
	if got := res.resume[0].worst; got != 6500*time.Millisecond {
		t.Errorf("partition 0 resumed after %s, want 6.5s", got)
	}
	if got := steps[0].end; !got.Equal(at(6500 * time.Millisecond)) {
		t.Errorf("event ended %s after it began, want 6.5s (resumed after settled)", got.Sub(t0))
	}
	want := []struct {
		name         string
		survivors    int
		affected     int
		affectedMax  time.Duration
		survivorsP99 time.Duration
	}{
		{"before", 1, 0, 0, 100 * time.Millisecond},
		{"during", 1, 2, 7 * time.Second, 100 * time.Millisecond},
		{"after", 1, 0, 0, 100 * time.Millisecond},
	}
	for i, w := range want {
		got := res.windows[i]
		if got.name != w.name || got.survivors.n != w.survivors || got.aff.n != w.affected ||
			got.aff.max != w.affectedMax || got.survivors.p99 != w.survivorsP99 {
			t.Errorf("window %s: survivors %+v, affected %+v; want %d survivors' alerts (p99 %s), %d affected (max %s)",
				got.name, got.survivors, got.aff, w.survivors, w.survivorsP99, w.affected, w.affectedMax)
		}
	}
}

func TestStatsOfPercentiles(t *testing.T) {
	var ds []time.Duration
	for i := 100; i >= 1; i-- {
		ds = append(ds, time.Duration(i)*time.Millisecond)
	}
	s := statsOf(ds)
	if s.n != 100 || s.p50 != 50*time.Millisecond || s.p99 != 99*time.Millisecond || s.max != 100*time.Millisecond {
		t.Errorf("stats of 1..100 ms: %+v, want n 100, p50 50ms, p99 99ms, max 100ms", s)
	}
	if s := statsOf(nil); s.n != 0 {
		t.Errorf("stats of nothing: %+v", s)
	}
}

// TestSurvivorPausesFromLogs reads a survivor's log as carepipe writes it,
// with a debug line between a revoke and its assignment: one pause from the
// revoke to the last state prepared, one from a lone assignment (the runner
// halts its tasks on every assignment), and nothing of the instance hit.
func TestSurvivorPausesFromLogs(t *testing.T) {
	dir := t.TempDir()
	line := func(ms int, msg string) string {
		return `{"time":"2026-01-01T12:00:` + fmt.Sprintf("%02d.%03d", ms/1000, ms%1000) + `Z","level":"INFO","msg":"` + msg + `"}` + "\n"
	}
	survivor := line(1000, "partitions revoked") +
		line(1001, "heartbeat returned RebalanceInProgress") +
		line(1002, "partitions assigned") +
		line(1010, "state prepared") +
		line(1030, "state prepared") +
		line(3000, "partitions assigned") +
		line(3005, "state prepared") +
		line(9000, "partitions revoked") // after the step
	hit := line(1000, "partitions revoked") + line(1500, "partitions assigned")
	if err := os.WriteFile(filepath.Join(dir, "inst-2.log"), []byte(survivor), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "inst-1.log"), []byte(hit), 0o644); err != nil {
		t.Fatal(err)
	}
	r := &run{insts: []*instance{{id: "inst-1", logPath: filepath.Join(dir, "inst-1.log")}, {id: "inst-2", logPath: filepath.Join(dir, "inst-2.log")}}}
	t0 := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	st := &step{victim: "inst-1", start: t0.Add(500 * time.Millisecond)}
	got := r.survivorPauses(st, t0.Add(5*time.Second))
	want := []pause{
		{instance: "inst-2", at: t0.Add(time.Second), d: 30 * time.Millisecond},
		{instance: "inst-2", at: t0.Add(3 * time.Second), d: 5 * time.Millisecond},
	}
	if len(got) != len(want) {
		t.Fatalf("pauses %+v, want %+v", got, want)
	}
	for i := range want {
		if got[i].instance != want[i].instance || !got[i].at.Equal(want[i].at) || got[i].d != want[i].d {
			t.Errorf("pause %d: %+v, want %+v", i, got[i], want[i])
		}
	}
}
