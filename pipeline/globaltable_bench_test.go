package pipeline_test

import (
	"runtime"
	"testing"

	"github.com/carepipe/carepipe/pipeline"
	"github.com/carepipe/carepipe/pipeline/alerts"
	"github.com/carepipe/carepipe/sim"
)

// BenchmarkPatientTable1M measures what the clinical-alerts patient table
// costs in heap once the runtime has restored 1,000,000 patients into it
// (half of them enveloped, as in the demo workload), through the decoder
// the alerts pipeline's spec registers. The target is at most 300 B/patient.
// The figure is a live-heap difference after two GCs, so one iteration
// says it all:
//
//	go test ./pipeline -run '^$' -bench PatientTable1M -benchtime=1x -count=3
func BenchmarkPatientTable1M(b *testing.B) {
	const n = 1_000_000
	g, err := sim.NewAlerts(sim.AlertsWorkload{Patients: n, EnvelopeFraction: 0.5})
	if err != nil {
		b.Fatal(err)
	}
	spec := patientTableSpec(b)
	// Keys and values are generated before the "before" reading, and held
	// past the "after" one, so that only the table is in the difference.
	keys, values := make([][]byte, n), make([][]byte, n)
	for i := range n {
		r := g.Patient(i).Record
		keys[i], values[i] = r.Key, r.Value
	}
	b.ResetTimer()
	for range b.N {
		b.StopTimer()
		before := liveHeap()
		b.StartTimer()
		t := pipeline.NewGlobalTableForTest(spec)
		for i := range n {
			if err := t.ApplyForTest(keys[i], values[i]); err != nil {
				b.Fatalf("patient %d: %v", i, err)
			}
		}
		b.StopTimer()
		after := liveHeap()
		if t.Len() != n {
			b.Fatalf("table holds %d patients, want %d", t.Len(), n)
		}
		runtime.KeepAlive(t)
		b.ReportMetric(float64(int64(after)-int64(before))/n, "B/patient")
		b.StartTimer()
	}
	runtime.KeepAlive(keys)
	runtime.KeepAlive(values)
}

// patientTableSpec is the fhir.Patient table of the alerts pipeline's spec.
func patientTableSpec(tb testing.TB) pipeline.GlobalTableSpec {
	tb.Helper()
	p, err := alerts.New()
	if err != nil {
		tb.Fatal(err)
	}
	for _, s := range p.Spec().GlobalTables {
		if s.Topic == alerts.TopicPatients {
			return s
		}
	}
	tb.Fatalf("the alerts spec has no %s table", alerts.TopicPatients)
	return pipeline.GlobalTableSpec{}
}

// liveHeap is the heap in use once everything unreachable is collected;
// the second GC frees what the first one's finalizers released.
func liveHeap() uint64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}
