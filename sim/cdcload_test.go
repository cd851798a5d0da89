package sim

import (
	"bytes"
	"encoding/json"
	"math"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

func newCDCLoad(t testing.TB, cfg CDCLoad) *CDCLoadGen {
	t.Helper()
	g, err := NewCDCLoad(cfg)
	if err != nil {
		t.Fatalf("NewCDCLoad(%+v): %v", cfg, err)
	}
	return g
}

// cdcDecode decodes a change's value strictly: a field renamed or added
// on either side fails.
func cdcDecode(t *testing.T, i int64, value []byte) dsPatientA {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(value))
	dec.DisallowUnknownFields()
	var p dsPatientA
	if err := dec.Decode(&p); err != nil {
		t.Fatalf("change %d: value %s does not decode as a patient: %v", i, value, err)
	}
	for name, v := range map[string]string{"id": p.ID, "firstName": p.FirstName, "lastName": p.LastName, "dateOfBirth": p.DateOfBirth, "gender": p.Gender} {
		if v == "" {
			t.Fatalf("change %d: %s is empty in %s", i, name, value)
		}
	}
	if p.Address == nil || len(p.Address.Line) != 1 || p.Address.Line[0] == "" || p.Address.City == "" || p.Address.PostalCode == "" {
		t.Fatalf("change %d: incomplete address in %s", i, value)
	}
	if _, err := time.Parse(time.DateOnly, p.DateOfBirth); err != nil {
		t.Fatalf("change %d: dateOfBirth %q: %v", i, p.DateOfBirth, err)
	}
	return p
}

func TestCDCLoadDeterministic(t *testing.T) {
	cfg := CDCLoad{Seed: 42, Entities: 100, ConflictFraction: 0.3, InvalidFraction: 0.1}
	a, b, c := newCDCLoad(t, cfg), newCDCLoad(t, cfg), newCDCLoad(t, cfg)
	other := newCDCLoad(t, CDCLoad{Seed: 43, Entities: 100, ConflictFraction: 0.3, InvalidFraction: 0.1})
	same := 0
	for i := range int64(1000) {
		ra := a.Record(i)
		if d := dsRecordDiff(ra, b.Record(i)); d != "" {
			t.Fatalf("change %d: %s differs between two generators of one config", i, d)
		}
		if d := dsRecordDiff(ra, a.Record(i)); d != "" {
			t.Fatalf("change %d: %s differs between two calls", i, d)
		}
		if d := dsRecordDiff(ra, c.Next()); d != "" {
			t.Fatalf("Next call %d: %s differs from Record(%d)", i, d, i)
		}
		if a.Kind(i) != b.Kind(i) {
			t.Fatalf("change %d: kind %s and %s from one config", i, a.Kind(i), b.Kind(i))
		}
		if bytes.Equal(ra.Value, other.Record(i).Value) {
			same++
		}
	}
	// The seed must matter: lastUpdated and version are the same under
	// both seeds, so equal values mean equal draws, which two seeds share
	// only by rare chance.
	if same > 10 {
		t.Fatalf("%d of 1000 changes identical under seeds 42 and 43", same)
	}
}

func TestCDCLoadRecordsShareNoMemory(t *testing.T) {
	g := newCDCLoad(t, CDCLoad{Seed: 1, ConflictFraction: 1})
	a := g.Record(5)
	a.Key[0] = '#'
	a.Value[0] = '#'
	a.Headers[0].Value[0] = '#'
	b := g.Record(5)
	if b.Key[0] == '#' || b.Value[0] == '#' || b.Headers[0].Value[0] == '#' {
		t.Fatalf("editing one record changed another: %q %q %q", b.Key, b.Value, b.Headers[0].Value)
	}
}

func TestCDCLoadNextConcurrent(t *testing.T) {
	const workers, each = 8, 1000
	g := newCDCLoad(t, CDCLoad{Seed: 9, Entities: 50, ConflictFraction: 0.5})
	got := make([][]*dsPatientA, workers)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for range each {
				var p dsPatientA
				if err := json.Unmarshal(g.Next().Value, &p); err != nil {
					t.Errorf("decode: %v", err)
					return
				}
				got[w] = append(got[w], &p)
			}
		})
	}
	wg.Wait()
	seen := make([]bool, workers*each)
	for _, ps := range got {
		for _, p := range ps {
			i := p.Version - 1
			if i < 0 || i >= int64(len(seen)) {
				t.Fatalf("Next gave version %d, outside 1..%d", p.Version, len(seen))
			}
			if seen[i] {
				t.Fatalf("Next gave change %d twice", i)
			}
			seen[i] = true
			var want dsPatientA
			if err := json.Unmarshal(g.Record(i).Value, &want); err != nil {
				t.Fatal(err)
			}
			if want.ID != p.ID || want.LastName != p.LastName || want.LastUpdated != p.LastUpdated {
				t.Fatalf("Next's change %d is %+v, Record gives %+v", i, *p, want)
			}
		}
	}
	// Every index was handed out: workers*each distinct ones in range.
	if r := g.Next(); !strings.Contains(string(r.Value), `"version":8001`) {
		t.Fatalf("after %d calls Next gave %s, want version 8001", workers*each, r.Value)
	}
}

func TestCDCLoadFractions(t *testing.T) {
	tests := []struct {
		name              string
		conflict, invalid float64
		wantAllValid      bool
	}{
		{name: "mixed", conflict: 0.2, invalid: 0.05},
		{name: "all valid", wantAllValid: true},
		{name: "no valid", conflict: 0.7, invalid: 0.3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			const n = 10_000 // the shares' standard error is at most 0.005
			g := newCDCLoad(t, CDCLoad{Seed: 3, ConflictFraction: tt.conflict, InvalidFraction: tt.invalid})
			counts := map[CDCKind]int{}
			for i := range int64(n) {
				k := g.Kind(i)
				counts[k]++
				r := g.Record(i)
				hasHeader := len(r.Headers) > 0
				if hasHeader != (k == CDCConflict) {
					t.Fatalf("change %d of kind %s: headers %v", i, k, r.Headers)
				}
				if hasHeader && (len(r.Headers) != 1 || r.Headers[0].Key != HeaderSourceSystem || string(r.Headers[0].Value) != "registration") {
					t.Fatalf("change %d: headers %v, want only %s: registration", i, r.Headers, HeaderSourceSystem)
				}
				invalidGender := bytes.Contains(r.Value, []byte(`"gender":"z"`))
				if invalidGender != (k == CDCInvalid) {
					t.Fatalf("change %d of kind %s: value %s", i, k, r.Value)
				}
			}
			if len(counts) > 3 {
				t.Fatalf("unknown kinds among %v", counts)
			}
			for kind, want := range map[CDCKind]float64{
				CDCConflict: tt.conflict,
				CDCInvalid:  tt.invalid,
				CDCValid:    1 - tt.conflict - tt.invalid,
			} {
				if got := float64(counts[kind]) / n; math.Abs(got-want) > 0.025 {
					t.Errorf("share of %s is %.4f, want %.2f ± 0.025 (counts %v)", kind, got, want, counts)
				}
			}
			if tt.wantAllValid && counts[CDCValid] != n {
				t.Errorf("with no conflicts or invalid changes, %d of %d are valid", counts[CDCValid], n)
			}
		})
	}
}

// The kind is the first draw, so it does not depend on Entities.
func TestCDCLoadKindIndependentOfEntities(t *testing.T) {
	a := newCDCLoad(t, CDCLoad{Seed: 5, Entities: 3, ConflictFraction: 0.4, InvalidFraction: 0.2})
	b := newCDCLoad(t, CDCLoad{Seed: 5, Entities: 7777, ConflictFraction: 0.4, InvalidFraction: 0.2})
	for i := range int64(5000) {
		if a.Kind(i) != b.Kind(i) {
			t.Fatalf("change %d: kind %s with 3 entities, %s with 7777", i, a.Kind(i), b.Kind(i))
		}
	}
}

func TestCDCLoadValues(t *testing.T) {
	tests := []struct {
		name     string
		entities int // as configured
		want     int // in effect
		n        int64
	}{
		{name: "ten entities", entities: 10, want: 10, n: 1000},
		{name: "default entities", entities: 0, want: 10_000, n: 30_000},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := newCDCLoad(t, CDCLoad{Seed: -7, Entities: tt.entities, ConflictFraction: 0.3, InvalidFraction: 0.1})
			if got := g.Config().Entities; got != tt.want {
				t.Fatalf("Config().Entities = %d, want %d", got, tt.want)
			}
			ids := make(map[string]bool, tt.want)
			for k := range tt.want {
				id := g.EntityID(k)
				if want := "lp--7-" + strconv.Itoa(k); id != want {
					t.Fatalf("EntityID(%d) = %q, want %q", k, id, want)
				}
				ids[id] = true
			}
			type entitySource struct{ id, source string }
			last := make(map[entitySource]int64)
			seen := make(map[string]bool)
			for i := range tt.n {
				r := g.Record(i)
				if r.Topic != TopicDataSyncPatient {
					t.Fatalf("change %d: topic %q", i, r.Topic)
				}
				if !r.Timestamp.IsZero() {
					t.Fatalf("change %d: timestamp %v, want zero", i, r.Timestamp)
				}
				key := string(r.Key)
				if !ids[key] {
					t.Fatalf("change %d: key %q is not one of the %d entity ids", i, key, tt.want)
				}
				seen[key] = true
				p := cdcDecode(t, i, r.Value)
				if p.ID != key {
					t.Fatalf("change %d: id %q, key %q", i, p.ID, key)
				}
				switch k := g.Kind(i); {
				case k == CDCInvalid && p.Gender != "z":
					t.Fatalf("invalid change %d has gender %q", i, p.Gender)
				case k != CDCInvalid && p.Gender != "male" && p.Gender != "female":
					t.Fatalf("%s change %d has gender %q", k, i, p.Gender)
				}
				if p.Version != i+1 {
					t.Fatalf("change %d: version %d, want %d", i, p.Version, i+1)
				}
				if want := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).UnixMilli() + i; p.LastUpdated != want {
					t.Fatalf("change %d: lastUpdated %d, want %d", i, p.LastUpdated, want)
				}
				source := "ehr"
				if len(r.Headers) > 0 {
					source = string(r.Headers[0].Value)
				}
				es := entitySource{key, source}
				if prev, ok := last[es]; ok && p.LastUpdated <= prev {
					t.Fatalf("change %d of %v: lastUpdated %d not after %d", i, es, p.LastUpdated, prev)
				}
				last[es] = p.LastUpdated
			}
			if tt.want == 10 && len(seen) != 10 {
				t.Fatalf("%d of 10 entities changed in %d changes", len(seen), tt.n)
			}
			// With 3 changes per entity on average about 9,502 entities
			// (1 - e^-3) are changed, give or take 22; a skewed or
			// truncated entity draw would leave many more untouched.
			if tt.want == 10_000 && len(seen) < 9_400 {
				t.Fatalf("only %d of 10,000 entities changed in %d changes", len(seen), tt.n)
			}
		})
	}
}

func TestCDCLoadRecordNegativeIndexPanics(t *testing.T) {
	g := newCDCLoad(t, CDCLoad{})
	defer func() {
		if recover() == nil {
			t.Fatal("Record(-1) did not panic")
		}
	}()
	g.Record(-1)
}

func TestCDCLoadConfigErrors(t *testing.T) {
	tests := []struct {
		name  string
		cfg   CDCLoad
		field string
	}{
		{"negative entities", CDCLoad{Entities: -1}, "Entities"},
		{"negative conflict", CDCLoad{ConflictFraction: -0.1}, "ConflictFraction"},
		{"conflict above 1", CDCLoad{ConflictFraction: 1.5}, "ConflictFraction"},
		{"NaN conflict", CDCLoad{ConflictFraction: math.NaN()}, "ConflictFraction"},
		{"infinite conflict", CDCLoad{ConflictFraction: math.Inf(1)}, "ConflictFraction"},
		{"negative invalid", CDCLoad{InvalidFraction: -0.5}, "InvalidFraction"},
		{"invalid above 1", CDCLoad{InvalidFraction: 2}, "InvalidFraction"},
		{"NaN invalid", CDCLoad{InvalidFraction: math.NaN()}, "InvalidFraction"},
		{"sum above 1", CDCLoad{ConflictFraction: 0.6, InvalidFraction: 0.5}, "ConflictFraction+InvalidFraction"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g, err := NewCDCLoad(tt.cfg)
			if err == nil {
				t.Fatalf("NewCDCLoad(%+v) = %v, nil; want an error", tt.cfg, g)
			}
			if !strings.Contains(err.Error(), tt.field) {
				t.Fatalf("error %q does not name %s", err, tt.field)
			}
		})
	}
	// Limits that are valid.
	for _, cfg := range []CDCLoad{
		{},
		{Entities: 1, ConflictFraction: 1},
		{InvalidFraction: 1},
		{ConflictFraction: 0.7, InvalidFraction: 0.3},
		{ConflictFraction: 0.1, InvalidFraction: 0.9},
	} {
		if _, err := NewCDCLoad(cfg); err != nil {
			t.Errorf("NewCDCLoad(%+v): %v", cfg, err)
		}
	}
}

func BenchmarkCDCLoadRecord(b *testing.B) {
	g := newCDCLoad(b, CDCLoad{Seed: 1, ConflictFraction: 0.2, InvalidFraction: 0.05})
	b.ReportAllocs()
	var i int64
	for b.Loop() {
		_ = g.Record(i)
		i++
	}
}
