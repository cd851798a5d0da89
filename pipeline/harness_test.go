package pipeline

import (
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

const (
	hGroup  = "harness-group"
	hTopic  = "in"
	hNames  = "names"
	hSecret = "pat-secret-value"
)

// errBoom is the cause a "fail" record's error wraps.
var errBoom = errors.New("boom")

// harnessSpec counts records per key in store "counts" and emits
// "<key>:<n>" on "out" for a key's n-th record; a key this partition does
// not own is re-keyed through "by-key" first. The value selects what else
// the call does after it has counted and emitted its count (so that a
// failure has writes and emits to drop); each failing value also writes
// key "side" before it fails:
//
//   - "fanout": emits "a" on out, re-keys the record, emits "b" on out
//   - "fail": returns an error wrapping errBoom
//   - "reject": returns a TypeInvalid rejection
//   - "panic": panics with a value quoting the record
//   - "undeclared": emits to a topic the Spec does not declare
//   - "undeclared-repartition": re-keys through an undeclared repartition
//   - "huge": emits a value larger than any batch
//   - "name": emits the key's entry of the "names" global table on out
//   - "now": emits the clock's time (RFC 3339) on out
//   - "where": emits the partition and whether the key is local on out
//
// Punctuate emits, on "ticks", the number of keys counted and the time.
func harnessSpec() Spec {
	return Spec{
		Name:         "harness",
		Group:        hGroup,
		Inputs:       []string{hTopic},
		Outputs:      []string{"out", "ticks"},
		ErrorTopic:   "in.errors",
		Stores:       []string{"counts"},
		Repartitions: []string{"by-key"},
		GlobalTables: []GlobalTableSpec{{Topic: hNames, Decode: func(_, v []byte) (any, error) {
			if string(v) == "bad" {
				return nil, Rejectf(TypeDecode, "name not decodable")
			}
			return string(v), nil
		}}},
		Process: func(c *Context, r *kgo.Record) error {
			key := r.Key
			if string(r.Value) == "where" {
				v := strconv.Itoa(int(c.Partition())) + " " + strconv.FormatBool(c.IsLocal(key))
				c.Emit(&kgo.Record{Topic: "out", Key: key, Value: []byte(v)})
				return nil
			}
			if r.Topic == hTopic && !c.IsLocal(key) {
				c.Repartition("by-key", key)
				return nil
			}
			s := c.Store("counts")
			n := 0
			if v, ok := s.Get(string(key)); ok {
				n, _ = strconv.Atoi(string(v))
			}
			n++
			s.Put(string(key), []byte(strconv.Itoa(n)))
			out := func(v string) { c.Emit(&kgo.Record{Topic: "out", Key: key, Value: []byte(v)}) }
			switch string(r.Value) {
			case "fanout":
				out("a")
				c.Repartition("by-key", key, kgo.RecordHeader{Key: "extra", Value: []byte("x")})
				out("b")
				return nil
			case "name":
				name := "unknown"
				if v, ok := c.Global(hNames).Get(string(key)); ok {
					name = v.(string)
				}
				out(name)
				return nil
			case "now":
				out(c.Now().Format(time.RFC3339))
				return nil
			}
			out(string(key) + ":" + strconv.Itoa(n))
			side := func() { s.Put("side", []byte("1")) }
			switch string(r.Value) {
			case "fail":
				side()
				return errors.Join(errors.New("processing failed"), errBoom)
			case "reject":
				side()
				return Rejectf(TypeInvalid, "value rejected")
			case "panic":
				side()
				panic(hSecret)
			case "undeclared":
				side()
				c.Emit(&kgo.Record{Topic: "nowhere", Key: key})
			case "undeclared-repartition":
				side()
				c.Repartition("no-such-repartition", key)
			case "huge":
				side()
				c.Emit(&kgo.Record{Topic: "out", Key: key, Value: make([]byte, defaultBatchMaxBytes)})
			}
			return nil
		},
		Punctuate: func(c *Context) error {
			n := c.Store("counts").Len()
			v := strconv.Itoa(n) + " " + c.Now().Format(time.RFC3339)
			c.Emit(&kgo.Record{Topic: "ticks", Value: []byte(v)})
			return nil
		},
	}
}

type fixedClock time.Time

func (c fixedClock) Now() time.Time { return time.Time(c) }

var hTime = time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)

func newHarness(t *testing.T, spec Spec, opts ...HarnessOption) *Harness {
	t.Helper()
	h, err := NewHarness(spec, append([]HarnessOption{HarnessClock(fixedClock(hTime))}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// process runs one record of key and value on hTopic and fails the test on
// an error.
func process(t *testing.T, h *Harness, key, value string) []*kgo.Record {
	t.Helper()
	out, err := h.Process(&kgo.Record{Topic: hTopic, Key: []byte(key), Value: []byte(value)})
	if err != nil {
		t.Fatalf("%s/%s: %v", key, value, err)
	}
	return out
}

// emitted renders records as "topic key value" lines.
func emitted(recs []*kgo.Record) []string {
	var s []string
	for _, r := range recs {
		s = append(s, r.Topic+" "+string(r.Key)+" "+string(r.Value))
	}
	return s
}

func get(h *Harness, store, key string) string {
	v, ok := h.Store(store).Get(key)
	if !ok {
		return "<absent>"
	}
	return string(v)
}

func TestHarnessEmitsInOrder(t *testing.T) {
	h := newHarness(t, harnessSpec())
	in := &kgo.Record{Topic: hTopic, Key: []byte("k"), Value: []byte("fanout"),
		Headers: []kgo.RecordHeader{{Key: "correlation-id", Value: []byte("c1")}}}
	out, err := h.Process(in)
	if err != nil {
		t.Fatal(err)
	}
	repart := RepartitionTopic(hGroup, "by-key")
	want := []string{"out k a", repart + " k fanout", "out k b"}
	if got := emitted(out); strings.Join(got, "|") != strings.Join(want, "|") {
		t.Fatalf("emits %q, want %q", got, want)
	}
	// The re-keyed record is the record as received, plus the extra header.
	hs := out[1].Headers
	if len(hs) != 2 || hs[0].Key != "correlation-id" || hs[1].Key != "extra" {
		t.Errorf("re-keyed record's headers %v, want the input's then extra", hs)
	}
	if got := get(h, "counts", "k"); got != "1" {
		t.Errorf("count of k = %s, want 1", got)
	}
	// The next call reuses the slice: a plain record emits one output.
	if got := emitted(process(t, h, "k", "x")); len(got) != 1 || got[0] != "out k k:2" {
		t.Errorf("second call emits %q, want [out k k:2]", got)
	}
}

// A failed record's writes are rolled back and its emits dropped, whatever
// failed it, and the error carries the runtime's classification.
func TestHarnessFailedRecordRollsBack(t *testing.T) {
	for _, tc := range []struct {
		value string
		typ   ErrorType
		cause error // wrapped by the error, when not nil
	}{
		{"fail", TypeProcessing, errBoom},
		{"reject", TypeInvalid, nil},
		{"panic", TypePanic, nil},
		{"undeclared", TypePanic, nil},
		{"undeclared-repartition", TypePanic, nil},
		{"huge", TypeOversized, nil},
	} {
		t.Run(tc.value, func(t *testing.T) {
			h := newHarness(t, harnessSpec())
			process(t, h, "k", "x")
			out, err := h.Process(&kgo.Record{Topic: hTopic, Key: []byte("k"), Value: []byte(tc.value)})
			if err == nil {
				t.Fatalf("no error; emits %q", emitted(out))
			}
			if out != nil {
				t.Errorf("a failed call returned emits %q", emitted(out))
			}
			if got := errorTypeOf(err); got != tc.typ {
				t.Errorf("error type %s, want %s (%v)", got, tc.typ, err)
			}
			if tc.cause != nil && !errors.Is(err, tc.cause) {
				t.Errorf("error %v does not wrap %v", err, tc.cause)
			}
			if strings.Contains(err.Error(), hSecret) {
				t.Errorf("error %q quotes the panic value", err)
			}
			if got := get(h, "counts", "k"); got != "1" {
				t.Errorf("count of k = %s after the failed call, want 1", got)
			}
			if got := get(h, "counts", "side"); got != "<absent>" {
				t.Errorf("side = %s after the failed call, want it rolled back", got)
			}
			// The partition goes on from the state before the failure.
			if got := emitted(process(t, h, "k", "x")); len(got) != 1 || got[0] != "out k k:2" {
				t.Errorf("call after the failure emits %q, want [out k k:2]", got)
			}
		})
	}
}

func TestHarnessRefusesAnUnconsumedTopic(t *testing.T) {
	h := newHarness(t, harnessSpec())
	_, err := h.Process(&kgo.Record{Topic: "out", Key: []byte("k")})
	var re *RecordError
	if err == nil || errors.As(err, &re) {
		t.Fatalf("record on an output topic: error %v, want a refusal that is no record error", err)
	}
	// The repartition topic is consumed.
	if _, err := h.Process(&kgo.Record{Topic: RepartitionTopic(hGroup, "by-key"), Key: []byte("k")}); err != nil {
		t.Fatalf("record on the repartition topic: %v", err)
	}
}

// IsLocal and Partition follow HarnessPartition, with the partitioner the
// runtime uses; a record whose key is not local is re-keyed without
// touching state.
func TestHarnessPartition(t *testing.T) {
	const of = 4
	kp := kgo.StickyKeyPartitioner(nil).ForTopic("")
	owner := func(key string) int32 { return int32(kp.Partition(&kgo.Record{Key: []byte(key)}, of)) }
	keys := []string{"a", "b", "c", "d", "e", "f", "g", "h"}
	for p := range int32(of) {
		t.Run("partition "+strconv.Itoa(int(p)), func(t *testing.T) {
			h := newHarness(t, harnessSpec(), HarnessPartition(p, of))
			for _, k := range keys {
				local := owner(k) == p
				want := strconv.Itoa(int(p)) + " " + strconv.FormatBool(local)
				if got := emitted(process(t, h, k, "where")); len(got) != 1 || got[0] != "out "+k+" "+want {
					t.Errorf("key %s: %q, want [out %s %s]", k, got, k, want)
				}
				out := emitted(process(t, h, k, "x"))
				switch {
				case local && (len(out) != 1 || out[0] != "out "+k+" "+k+":1"):
					t.Errorf("local key %s emits %q, want its count", k, out)
				case !local && (len(out) != 1 || !strings.HasPrefix(out[0], RepartitionTopic(hGroup, "by-key")+" ")):
					t.Errorf("key %s of partition %d emits %q, want it re-keyed", k, owner(k), out)
				case !local && get(h, "counts", k) != "<absent>":
					t.Errorf("key %s of partition %d was counted here", k, owner(k))
				}
			}
		})
	}
	// Over the keys, every partition owns some and not all: the cases
	// above are both exercised.
	seen := map[int32]bool{}
	for _, k := range keys {
		seen[owner(k)] = true
	}
	if len(seen) < 2 {
		t.Fatalf("keys %v all belong to one partition; choose others", keys)
	}
	for _, bad := range [][2]int32{{4, 4}, {-1, 4}, {0, 0}} {
		if _, err := NewHarness(harnessSpec(), HarnessPartition(bad[0], bad[1])); err == nil {
			t.Errorf("partition %d of %d accepted", bad[0], bad[1])
		}
	}
}

func TestHarnessApplyFeedsGlobalTable(t *testing.T) {
	h := newHarness(t, harnessSpec())
	name := func() string {
		t.Helper()
		out := process(t, h, "k", "name")
		if len(out) != 1 {
			t.Fatalf("emits %q, want one", emitted(out))
		}
		return string(out[0].Value)
	}
	if got := name(); got != "unknown" {
		t.Fatalf("before Apply: %s, want unknown", got)
	}
	if err := h.Apply(hNames, []byte("k"), []byte("Ada")); err != nil {
		t.Fatal(err)
	}
	if got := name(); got != "Ada" {
		t.Errorf("after Apply: %s, want Ada", got)
	}
	err := h.Apply(hNames, []byte("k"), []byte("bad"))
	if errorTypeOf(err) != TypeDecode {
		t.Errorf("undecodable record: error %v, want the Decode's TypeDecode", err)
	}
	if got := name(); got != "Ada" {
		t.Errorf("after an undecodable record: %s, want Ada kept", got)
	}
	if err := h.Apply(hNames, []byte("k"), nil); err != nil {
		t.Fatal(err)
	}
	if got := name(); got != "unknown" {
		t.Errorf("after a tombstone: %s, want unknown", got)
	}
	if err := h.Apply(hTopic, []byte("k"), []byte("v")); err == nil {
		t.Error("Apply to a topic that is no global table succeeded")
	}
}

func TestHarnessPunctuate(t *testing.T) {
	h := newHarness(t, harnessSpec())
	process(t, h, "a", "x")
	process(t, h, "b", "x")
	out, err := h.Punctuate()
	if err != nil {
		t.Fatal(err)
	}
	want := "ticks  2 " + hTime.Format(time.RFC3339)
	if got := emitted(out); len(got) != 1 || got[0] != want {
		t.Errorf("punctuation emits %q, want [%s]", got, want)
	}

	// Repartition has no record to re-send in a punctuation: the runtime
	// panics, which fails the punctuation.
	spec := harnessSpec()
	spec.Punctuate = func(c *Context) error {
		c.Store("counts").Put("p", []byte("1"))
		c.Repartition("by-key", []byte("k"))
		return nil
	}
	h = newHarness(t, spec)
	process(t, h, "k", "x")
	if out, err := h.Punctuate(); errorTypeOf(err) != TypePanic || out != nil {
		t.Errorf("Repartition in Punctuate: emits %q, error %v; want none and a panic", emitted(out), err)
	}
	if got := get(h, "counts", "p"); got != "<absent>" {
		t.Errorf("failed punctuation's write kept: p = %s", got)
	}

	spec.Punctuate = nil
	h = newHarness(t, spec)
	if _, err := h.Punctuate(); err == nil {
		t.Error("Punctuate of a Spec without one succeeded")
	}
}

func TestHarnessClock(t *testing.T) {
	for _, at := range []time.Time{hTime, hTime.Add(36 * time.Hour)} {
		t.Run(at.Format(time.RFC3339), func(t *testing.T) {
			h := newHarness(t, harnessSpec(), HarnessClock(fixedClock(at)))
			out := process(t, h, "k", "now")
			if len(out) != 1 || string(out[0].Value) != at.Format(time.RFC3339) {
				t.Errorf("Context.Now: %q, want %s", emitted(out), at.Format(time.RFC3339))
			}
		})
	}
}

// NewHarness checks the Spec and options as New does.
func TestNewHarnessValidates(t *testing.T) {
	noProcess := harnessSpec()
	noProcess.Process = nil
	badTable := harnessSpec()
	badTable.GlobalTables = []GlobalTableSpec{{Topic: hNames}}
	for _, tc := range []struct {
		name string
		spec Spec
		opts []HarnessOption
	}{
		{"no Process", noProcess, nil},
		{"global table without Decode", badTable, nil},
		{"nil clock", harnessSpec(), []HarnessOption{HarnessClock(nil)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := NewHarness(tc.spec, tc.opts...); err == nil {
				t.Error("accepted")
			}
		})
	}
}

// BenchmarkHarnessProcess is the harness's own cost per record: a
// processor that writes one key and emits one record, both allocated once.
// The harness allocates nothing per record.
//
//	go test ./pipeline -run '^$' -bench HarnessProcess -benchmem
func BenchmarkHarnessProcess(b *testing.B) {
	value := []byte("v")
	emit := &kgo.Record{Topic: "out", Key: []byte("k"), Value: value}
	spec := harnessSpec()
	spec.Process = func(c *Context, r *kgo.Record) error {
		c.Store("counts").Put("k", value)
		c.Emit(emit)
		return nil
	}
	h, err := NewHarness(spec, HarnessClock(fixedClock(hTime)))
	if err != nil {
		b.Fatal(err)
	}
	in := &kgo.Record{Topic: hTopic, Key: []byte("k"), Value: value}
	b.ReportAllocs()
	for b.Loop() {
		if out, err := h.Process(in); err != nil || len(out) != 1 {
			b.Fatal(out, err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "records/s")
}
