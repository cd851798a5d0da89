package datasync

import "testing"

// BenchmarkMap maps a Debezium patient change and a bare observation row
// with the built-in sources.
func BenchmarkMap(b *testing.B) {
	pat := Source{Topic: "source.ehr.patient", Key: []byte("p1"), Value: []byte(`{"before":null,"after":{"id":"p1","firstName":"Ann","lastName":"Lee","dateOfBirth":"1970-01-02","gender":"F","address":{"line":["1 Main St"],"city":"Leeds","postalCode":"LS1 1AA"},"phone":"0113 000"},"source":{"ts_ms":1700000000000},"op":"u","ts_ms":1700000000100}`)}
	obs := Source{Topic: "source.ehr.observation", Value: []byte(`{"id":"o1","subject":{"reference":"Patient/p1"},"code":{"coding":[{"system":"http://loinc.org","code":"8867-4","display":"Heart rate"}]},"valueQuantity":{"value":72,"unit":"/min"},"effectiveDateTime":"2024-01-01T10:00:00Z","status":"final","lastUpdated":1700000000000}`)}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Map(pat); err != nil {
			b.Fatal(err)
		}
		if _, err := Map(obs); err != nil {
			b.Fatal(err)
		}
	}
}
