package alerts

import (
	"bytes"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"
)

// Benchmarks of the pure core: what one partition worker spends per
// observation outside the runtime and Kafka. Reproduce with
//
//	go test ./pipeline/alerts -run '^$' -bench . -benchmem -count 5
//
// records/s is per core (one partition worker).

func benchRecords(b *testing.B) map[string]*kgo.Record {
	env := readTestdata(b, "observation_hr_envelope.json")
	envNormal := bytes.Replace(env, []byte(`"value": 134`), []byte(`"value": 72`), 1)
	if bytes.Equal(env, envNormal) {
		b.Fatal("fixture changed: cannot make the non-alerting envelope")
	}
	return map[string]*kgo.Record{
		"non_alerting_envelope": obsRecord(envNormal),
		"non_alerting_bare":     obsRecord(readTestdata(b, "observation_hr_normal_bare.json")),
		"alerting_envelope":     obsRecord(env),
	}
}

func reportRate(b *testing.B) {
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "records/s")
}

// BenchmarkDecode: size check, envelope and Observation decode.
func BenchmarkDecode(b *testing.B) {
	p := newProcessor(b)
	recs := benchRecords(b)
	for _, name := range []string{"non_alerting_envelope", "non_alerting_bare"} {
		r := recs[name]
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(r.Value)))
			for b.Loop() {
				var in input
				if err := p.decode(r, &in); err != nil {
					b.Fatal(err)
				}
			}
			reportRate(b)
		})
	}
}

// BenchmarkEvaluate: decode, evaluate and (for alerts) enrich, dedupe
// against the patient's state and encode every output record.
func BenchmarkEvaluate(b *testing.B) {
	p := newProcessor(b)
	recs := benchRecords(b)
	lookup := patients(b)
	for _, name := range []string{"non_alerting_envelope", "non_alerting_bare", "alerting_envelope"} {
		r := recs[name]
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(r.Value)))
			// No state: every iteration of the alerting observation
			// (134/min) raises heart-rate-high and a NEWS2 single-
			// parameter alert (pulse scores 3), each an alert, a history
			// record and two notifications; every heart rate, alerting or
			// not, stores a NEWS2 reading.
			var state []byte
			for b.Loop() {
				out, err := p.handle(r, lookup, state)
				if err != nil {
					b.Fatal(err)
				}
				if name == "alerting_envelope" && len(out.Records) != 8 {
					b.Fatalf("got %d records", len(out.Records))
				}
			}
			reportRate(b)
		})
	}
	b.Run("alerting_duplicate", func(b *testing.B) {
		r := recs["alerting_envelope"]
		first, err := p.handle(r, lookup, nil)
		if err != nil {
			b.Fatal(err)
		}
		b.ReportAllocs()
		for b.Loop() {
			out, err := p.handle(r, lookup, first.State)
			if err != nil || out.Duplicates != 1 {
				b.Fatal(err, out.Duplicates)
			}
		}
		reportRate(b)
	})
}
