package check

import (
	"strconv"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"
)

// The synthetic pipeline: input "in" records have value "id:<id>" (or
// "poison"), outputs on "out" have value "<id>"; inputs whose id starts with
// "skip" are filtered.
var expect = Expect{
	InputID: func(in *kgo.Record) string {
		id, _ := strings.CutPrefix(string(in.Value), "id:")
		if id == string(in.Value) {
			return ""
		}
		return id
	},
	OutputID: func(out *kgo.Record) (string, bool) {
		if out.Topic != "out" {
			return "", false
		}
		return string(out.Value), true
	},
	Filtered: func(in *kgo.Record) bool { return strings.HasPrefix(string(in.Value), "id:skip") },
}

func input(p int32, off int64, key, value string) *kgo.Record {
	return &kgo.Record{Topic: "in", Partition: p, Offset: off, Key: []byte(key), Value: []byte(value),
		Headers: []kgo.RecordHeader{{Key: "correlation-id", Value: []byte("c-" + value)}}}
}

func output(p int32, off int64, key, id string) *kgo.Record {
	return &kgo.Record{Topic: "out", Partition: p, Offset: off, Key: []byte(key), Value: []byte(id)}
}

// errorOf is the error record the runtime would write for in.
func errorOf(in *kgo.Record, off int64) *kgo.Record {
	hs := append([]kgo.RecordHeader(nil), in.Headers...)
	hs = append(hs,
		kgo.RecordHeader{Key: "error-type", Value: []byte("decode")},
		kgo.RecordHeader{Key: "error-message", Value: []byte("not JSON")},
		kgo.RecordHeader{Key: HeaderSourceTopic, Value: []byte(in.Topic)},
		kgo.RecordHeader{Key: HeaderSourcePartition, Value: []byte(strconv.Itoa(int(in.Partition)))},
		kgo.RecordHeader{Key: HeaderSourceOffset, Value: []byte(strconv.FormatInt(in.Offset, 10))},
	)
	return &kgo.Record{Topic: "errors", Partition: 0, Offset: off, Key: in.Key, Value: in.Value, Headers: hs}
}

// run is a perfect run: two keys on two partitions, a poison record, a
// filtered input.
type run struct{ inputs, outputs, errs []*kgo.Record }

func perfect() run {
	ins := []*kgo.Record{
		input(0, 0, "k1", "id:a"),
		input(0, 1, "k1", "id:b"),
		input(0, 2, "k1", "poison"),
		input(1, 0, "k2", "id:c"),
		input(1, 1, "k2", "id:skip1"),
		input(1, 2, "k2", "id:d"),
	}
	return run{
		inputs: ins,
		outputs: []*kgo.Record{
			output(0, 0, "k1", "a"),
			output(1, 0, "k2", "c"),
			output(0, 1, "k1", "b"),
			output(1, 1, "k2", "d"),
			{Topic: "elsewhere", Value: []byte("ignored")}, // not ours
		},
		errs: []*kgo.Record{errorOf(ins[2], 0)},
	}
}

func TestAccount(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(r *run)
		want   Report // counts only; Examples checked for presence
	}{
		{
			name:   "perfect",
			mutate: func(*run) {},
			want:   Report{Inputs: 6, Outputs: 4, Errors: 1, Filtered: 1},
		},
		{
			name:   "lost input",
			mutate: func(r *run) { r.outputs = r.outputs[1:] }, // a's output gone
			want:   Report{Inputs: 6, Outputs: 3, Errors: 1, Filtered: 1, Lost: 1},
		},
		{
			name:   "lost poison record",
			mutate: func(r *run) { r.errs = nil },
			want:   Report{Inputs: 6, Outputs: 4, Errors: 0, Filtered: 1, Lost: 1},
		},
		{
			name:   "duplicated output",
			mutate: func(r *run) { r.outputs = append(r.outputs, output(0, 2, "k1", "b")) },
			want:   Report{Inputs: 6, Outputs: 5, Errors: 1, Filtered: 1, Duplicated: 1},
		},
		{
			name:   "duplicated error record",
			mutate: func(r *run) { r.errs = append(r.errs, errorOf(r.inputs[2], 1)) },
			want:   Report{Inputs: 6, Outputs: 4, Errors: 2, Filtered: 1, Duplicated: 1},
		},
		{
			name:   "output and error record for one input",
			mutate: func(r *run) { r.errs = append(r.errs, errorOf(r.inputs[0], 1)) },
			want:   Report{Inputs: 6, Outputs: 4, Errors: 2, Filtered: 1, Duplicated: 1},
		},
		{
			name: "out of order for one key",
			mutate: func(r *run) {
				// b's output written before a's, same key and partition.
				r.outputs[0], r.outputs[2] = output(0, 0, "k1", "b"), output(0, 1, "k1", "a")
			},
			want: Report{Inputs: 6, Outputs: 4, Errors: 1, Filtered: 1, OrderViolations: 1},
		},
		{
			name: "different keys may interleave",
			mutate: func(r *run) {
				// c before a across partitions is no violation; nor
				// is a key's outputs split by another key's.
				r.outputs = []*kgo.Record{output(0, 0, "k2", "c"), output(0, 1, "k1", "a"), output(0, 2, "k2", "d"), output(0, 3, "k1", "b")}
			},
			want: Report{Inputs: 6, Outputs: 4, Errors: 1, Filtered: 1},
		},
		{
			name: "error record value differs",
			mutate: func(r *run) {
				r.errs[0].Value = []byte("poisoN")
			},
			want: Report{Inputs: 6, Outputs: 4, Errors: 1, Filtered: 1, ErrorMismatches: 1},
		},
		{
			name:   "error record key differs",
			mutate: func(r *run) { r.errs[0].Key = []byte("k9") },
			want:   Report{Inputs: 6, Outputs: 4, Errors: 1, Filtered: 1, ErrorMismatches: 1},
		},
		{
			name: "error record lacks the input's headers",
			mutate: func(r *run) {
				r.errs[0].Headers = r.errs[0].Headers[1:]
			},
			want: Report{Inputs: 6, Outputs: 4, Errors: 1, Filtered: 1, ErrorMismatches: 1},
		},
		{
			name: "error record for an unknown offset",
			mutate: func(r *run) {
				// It names offset 9, which was never consumed; the
				// poison record it should have named is then lost.
				r.errs[0].Headers[len(r.errs[0].Headers)-1].Value = []byte("9")
			},
			want: Report{Inputs: 6, Outputs: 4, Errors: 1, Filtered: 1, Lost: 1, ErrorMismatches: 1},
		},
		{
			name: "error record without source headers",
			mutate: func(r *run) {
				r.errs[0].Headers = r.errs[0].Headers[:3]
			},
			want: Report{Inputs: 6, Outputs: 4, Errors: 1, Filtered: 1, Lost: 1, ErrorMismatches: 1},
		},
		{
			name: "source headers of an earlier error are overridden by the last",
			mutate: func(r *run) {
				// The poison record itself came from an error topic:
				// it carries source headers that name something else.
				in := input(0, 2, "k1", "poison")
				in.Headers = append(in.Headers, kgo.RecordHeader{Key: HeaderSourceOffset, Value: []byte("77")})
				r.inputs[2] = in
				r.errs[0] = errorOf(in, 0)
			},
			want: Report{Inputs: 6, Outputs: 4, Errors: 1, Filtered: 1},
		},
		{
			name:   "filtered input produces nothing and is not lost",
			mutate: func(r *run) { r.inputs = append(r.inputs, input(1, 3, "k2", "id:skip2")) },
			want:   Report{Inputs: 7, Outputs: 4, Errors: 1, Filtered: 2},
		},
		{
			name:   "output for a filtered input",
			mutate: func(r *run) { r.outputs = append(r.outputs, output(1, 2, "k2", "skip1")) },
			want:   Report{Inputs: 6, Outputs: 5, Errors: 1, Filtered: 1, Unexpected: 1},
		},
		{
			name:   "output for no input",
			mutate: func(r *run) { r.outputs = append(r.outputs, output(1, 2, "k2", "zz")) },
			want:   Report{Inputs: 6, Outputs: 5, Errors: 1, Filtered: 1, Unexpected: 1},
		},
		{
			name: "inputs sharing an id need as many outputs",
			mutate: func(r *run) {
				r.inputs = append(r.inputs, input(0, 3, "k1", "id:a"))
			},
			want: Report{Inputs: 7, Outputs: 4, Errors: 1, Filtered: 1, Lost: 1},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := perfect()
			tt.mutate(&r)
			got := Account(r.inputs, r.outputs, r.errs, expect)
			ex := got.Examples
			got.Examples = nil
			if !equalCounts(got, tt.want) {
				t.Fatalf("got  %v\nwant %v", got, tt.want)
			}
			if got.OK() != tt.want.OK() {
				t.Errorf("OK() = %v, want %v", got.OK(), tt.want.OK())
			}
			problems := tt.want.Lost + tt.want.Duplicated + tt.want.Unexpected + tt.want.OrderViolations + tt.want.ErrorMismatches
			if problems > 0 && len(ex) == 0 {
				t.Errorf("%d problems and no example", problems)
			}
			if problems == 0 && len(ex) > 0 {
				t.Errorf("examples for a clean run: %q", ex)
			}
			for _, e := range ex {
				if strings.Contains(e, "poison") || strings.Contains(e, "id:") {
					t.Errorf("example quotes a record value: %q", e)
				}
			}
		})
	}
}

func equalCounts(a, b Report) bool {
	a.Examples, b.Examples = nil, nil
	return a.Inputs == b.Inputs && a.Outputs == b.Outputs && a.Errors == b.Errors && a.Filtered == b.Filtered &&
		a.Lost == b.Lost && a.Duplicated == b.Duplicated && a.Unexpected == b.Unexpected &&
		a.OrderViolations == b.OrderViolations && a.ErrorMismatches == b.ErrorMismatches
}

// Account does not depend on the order records are passed in (readers
// interleave partitions), and leaves its arguments alone.
func TestAccountInputOrderIndependent(t *testing.T) {
	r := perfect()
	want := Account(r.inputs, r.outputs, r.errs, expect)
	rev := func(rs []*kgo.Record) []*kgo.Record {
		out := make([]*kgo.Record, len(rs))
		for i, x := range rs {
			out[len(rs)-1-i] = x
		}
		return out
	}
	ins := rev(r.inputs)
	first := ins[0]
	got := Account(ins, rev(r.outputs), rev(r.errs), expect)
	if got.String() != want.String() || !got.OK() {
		t.Errorf("reversed: %v, want %v", got, want)
	}
	if ins[0] != first {
		t.Error("Account reordered its argument")
	}
}

func TestExamplesBounded(t *testing.T) {
	var ins []*kgo.Record
	for i := range 50 {
		ins = append(ins, input(0, int64(i), "k", "id:x"+strconv.Itoa(i)))
	}
	rep := Account(ins, nil, nil, expect)
	if rep.Lost != 50 || len(rep.Examples) != maxExamples {
		t.Errorf("lost %d with %d examples, want 50 with %d", rep.Lost, len(rep.Examples), maxExamples)
	}
	if rep.Examples[0] != "lost: input in/0@0" {
		t.Errorf("first example %q, want the first input in log order", rep.Examples[0])
	}
}
