package alerts

import (
	"testing"

	"github.com/carepipe/carepipe/pipeline/alerts/rules"
	"github.com/carepipe/carepipe/sim"
)

// BenchmarkProcessorStage runs the alert processor's pure core (decode,
// evaluate, enrich, encode outputs, update patient state) over the demo's
// workload mix on one goroutine: 10% alerting, half enveloped, the patient
// table loaded. "full" is the built-in rule pack (NEWS2, suppression
// windows, the adult vital-signs set), "seed" the seed's three rules alone.
// The target is 200,000 observations/s on one core, with the built-in pack.
// It was bench's AlertsProcessorStage until the core became internal
// (issue 22): the same records, one an op.
//
//	go test ./pipeline/alerts -run '^$' -bench ProcessorStage -benchmem -count 8
func BenchmarkProcessorStage(b *testing.B) {
	g, err := sim.NewAlerts(sim.AlertsWorkload{Seed: 7, Patients: 2000, AlertFraction: 0.1, EnvelopeFraction: 0.5})
	if err != nil {
		b.Fatal(err)
	}
	patients := map[string]*patientContext{}
	for _, p := range g.PatientRecords() {
		v, err := decodePatient(p.Key, p.Value)
		if err != nil {
			b.Fatal(err)
		}
		patients[string(p.Key)] = v.(*patientContext)
	}
	lookup := func(id string) (*patientContext, bool) { p, ok := patients[id]; return p, ok }
	recs, _ := g.NextN(20000)
	for _, pack := range []struct {
		name string
		pack rules.Pack
	}{{"full", rules.Default()}, {"seed", rules.Seed()}} {
		b.Run(pack.name, func(b *testing.B) {
			p := newProcessor(b, WithRules(pack.pack))
			state := map[string][]byte{}
			b.ReportAllocs()
			b.ResetTimer()
			for i := range b.N {
				if i%len(recs) == 0 {
					// A fresh state each lap: a replayed observation would
					// be a duplicate, cheaper than the first sight
					// measured here.
					clear(state)
				}
				r := recs[i%len(recs)]
				out, err := p.handle(r, lookup, state[string(r.Key)])
				if err != nil {
					b.Fatal(err)
				}
				if out.State != nil {
					state[string(r.Key)] = out.State
				}
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "obs/s")
		})
	}
}
