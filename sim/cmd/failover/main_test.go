package main

import (
	"io"
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
