package datasync

import (
	"testing"

	"github.com/carepipe/carepipe/pipeline/envelope"
	"github.com/carepipe/carepipe/sim"
)

// BenchmarkMap maps a Debezium patient change and a bare observation row
// with the built-in sources.
func BenchmarkMap(b *testing.B) {
	pat := sourceRecord{Topic: "source.ehr.patient", Key: []byte("p1"), Value: []byte(`{"before":null,"after":{"id":"p1","firstName":"Ann","lastName":"Lee","dateOfBirth":"1970-01-02","gender":"F","address":{"line":["1 Main St"],"city":"Leeds","postalCode":"LS1 1AA"},"phone":"0113 000"},"source":{"ts_ms":1700000000000},"op":"u","ts_ms":1700000000100}`)}
	obs := sourceRecord{Topic: "source.ehr.observation", Value: []byte(`{"id":"o1","subject":{"reference":"Patient/p1"},"code":{"coding":[{"system":"http://loinc.org","code":"8867-4","display":"Heart rate"}]},"valueQuantity":{"value":72,"unit":"/min"},"effectiveDateTime":"2024-01-01T10:00:00Z","status":"final","lastUpdated":1700000000000}`)}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := mapBuiltIn(pat); err != nil {
			b.Fatal(err)
		}
		if _, err := mapBuiltIn(obs); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkMapStage maps the 20,000 source records of the data-sync stage
// benchmarks (bench.BenchmarkDataSyncStages, seed 3: every source variant,
// Debezium envelopes and tombstones, duplicates, stale updates, invalid and
// undecodable records) with the built-in sources, one record an op: the
// mapping alone, of which the cdc stage is the mapping plus the canonical
// event's Avro encoding. The undecodable and unmappable records fail in
// it. It was that benchmark's map stage, and moved here with the mapping,
// which is internal to this package.
//
//	go test ./pipeline/datasync -run '^$' -bench MapStage -benchmem -count 8
func BenchmarkMapStage(b *testing.B) {
	recs, _ := sim.DataSyncRecords(3, 20000)
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		r := recs[i%len(recs)]
		_, _ = mapBuiltIn(sourceRecord{Topic: r.Topic, Key: r.Key, Value: r.Value,
			System: envelope.HeaderValue(r, HeaderSourceSystem), Timestamp: r.Timestamp.UnixMilli()})
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "records/s")
}
