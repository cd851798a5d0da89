package datasync

import (
	"testing"
)

// BenchmarkFieldsRoundTrip is the validation stage's per-change conversion:
// a canonical record to its Fields and back.
func BenchmarkFieldsRoundTrip(b *testing.B) {
	rec := &PatientRecord{
		System:      System{ID: "p1", SourceID: "ehr:p1", LastUpdated: 1000, Version: 2, SourceSystem: "ehr"},
		FirstName:   ptr("Ann"),
		LastName:    ptr("Lee"),
		DateOfBirth: ptr("1970-01-02"),
		Gender:      ptr("female"),
		Identifiers: []Identifier{{System: "ehr", Value: "p1"}, {System: "registration", Value: "r-77"}},
		Address:     &Address{Line: []string{"1 Main St"}, City: ptr("Leeds"), PostalCode: ptr("LS1 1AA")},
	}
	b.ReportAllocs()
	for b.Loop() {
		f, err := FieldsOf(rec)
		if err != nil {
			b.Fatal(err)
		}
		ch := Change{Entity: Patient, ID: "p1", Op: OpUpdate, Source: "ehr", SourceTime: 1000, SourceVersion: 2, Fields: f}
		if _, err := ch.record(); err != nil {
			b.Fatal(err)
		}
	}
}
