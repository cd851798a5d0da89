// Package check is an independent judge of a pipeline run: given the records
// a pipeline consumed and the records it wrote (read back read_committed), it
// accounts for every input exactly once. It imports nothing of the pipeline
// runtime on purpose: it reads only Kafka records and the error-record
// contract of DESIGN.md §1 (headers error-type, error-message, source-topic,
// source-partition, source-offset, after the record's own headers), so a bug
// in the runtime cannot hide itself by also being in the checker.
//
// Invariants: [Account] is a pure function of its arguments (no I/O, no
// clock, no map-order dependence in its counts or its examples), and its
// report names records by id and coordinates only, never by content.
package check

import (
	"bytes"
	"cmp"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/twmb/franz-go/pkg/kgo"
)

// Header names of the error-record contract (DESIGN.md §1).
const (
	HeaderSourceTopic     = "source-topic"
	HeaderSourcePartition = "source-partition"
	HeaderSourceOffset    = "source-offset"
)

// maxExamples bounds Report.Examples.
const maxExamples = 10

// Expect describes how to account for one pipeline's records. A pipeline
// that [Account] judges is one-to-one: each input stands for exactly one
// output, one error-topic record, or (if Filtered says so) nothing.
type Expect struct {
	// InputID names the input: the id its output will carry. "" means the
	// input has no id (a poison record, say); it can then be accounted
	// for only by an error record. Required.
	InputID func(in *kgo.Record) string
	// OutputID names the input an output stands for; ok false means the
	// record is not one of the outputs being judged, and it is skipped.
	// Required.
	OutputID func(out *kgo.Record) (id string, ok bool)
	// Filtered, when set, reports an input documented to produce no
	// output: it is counted, and not lost. An error record for it is
	// still accepted; an output for it is Unexpected.
	Filtered func(in *kgo.Record) bool
}

// Report is the accounting of one run. The problem counts are zero in a
// run that lost, repeated, reordered and altered nothing.
type Report struct {
	// Inputs, Outputs and Errors count the records judged (outputs for
	// which OutputID said ok); Filtered counts inputs Expect.Filtered
	// excused.
	Inputs, Outputs, Errors, Filtered int

	// Lost counts inputs with neither an output nor an error record (and
	// not filtered).
	Lost int
	// Duplicated counts records beyond the first that stand for one
	// input: a second output, a second error record, or an output and an
	// error record for the same input.
	Duplicated int
	// Unexpected counts outputs that stand for no input expecting one:
	// an id no input carries (beyond the duplicates of one that does), or
	// a filtered input's id.
	Unexpected int
	// OrderViolations counts outputs of one key (same topic and
	// partition) that appear before the output of an earlier input of the
	// same input partition.
	OrderViolations int
	// ErrorMismatches counts error records that name no consumed input
	// (missing or bad source headers, an unknown offset) or that differ
	// from their input: key, value, or the input's headers as a prefix of
	// the error record's.
	ErrorMismatches int

	// Examples names up to 10 problems by coordinates, never by ids (keys
	// may be patient identifiers) or record content.
	Examples []string
}

// OK reports whether the run accounted for every input exactly once, in
// order, with faithful error records.
func (r Report) OK() bool {
	return r.Lost == 0 && r.Duplicated == 0 && r.Unexpected == 0 && r.OrderViolations == 0 && r.ErrorMismatches == 0
}

// String summarises the report on one line, then one line per example.
func (r Report) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "inputs %d, outputs %d, errors %d, filtered %d; lost %d, duplicated %d, unexpected %d, order violations %d, error mismatches %d",
		r.Inputs, r.Outputs, r.Errors, r.Filtered, r.Lost, r.Duplicated, r.Unexpected, r.OrderViolations, r.ErrorMismatches)
	for _, e := range r.Examples {
		b.WriteString("\n  ")
		b.WriteString(e)
	}
	return b.String()
}

func (r *Report) example(format string, args ...any) {
	if len(r.Examples) < maxExamples {
		r.Examples = append(r.Examples, fmt.Sprintf(format, args...))
	}
}

// coord is a record's place in the log.
type coord struct {
	topic     string
	partition int32
	offset    int64
}

func coordOf(r *kgo.Record) coord { return coord{r.Topic, r.Partition, r.Offset} }

func (c coord) String() string {
	return c.topic + "/" + strconv.Itoa(int(c.partition)) + "@" + strconv.FormatInt(c.offset, 10)
}

func (c coord) compare(o coord) int {
	return cmp.Or(strings.Compare(c.topic, o.topic), cmp.Compare(c.partition, o.partition), cmp.Compare(c.offset, o.offset))
}

// Account checks that every input is accounted for exactly once: by one
// output, by one error-topic record, or by being filtered.
//
// Outputs find their input by id (Expect.OutputID against Expect.InputID);
// when several inputs share an id, the k-th output of that id (in log order)
// stands for the k-th input. Error records find their input by their
// source-topic, source-partition and source-offset headers (the last of
// each, since the input's own headers come first), and must repeat it byte
// for byte: same key, same value, and the input's headers, in order, as a
// prefix of their own.
//
// Order: the outputs of one key, in log order within their topic and
// partition, must stand for inputs in log order. Only inputs of the same
// topic and partition are compared: Kafka orders nothing across partitions,
// and a keyed input puts one key on one partition anyway.
//
// The slices are not modified. Records need Topic, Partition and Offset set,
// as a consumer sets them.
func Account(inputs, outputs, errs []*kgo.Record, e Expect) Report {
	rep := Report{Inputs: len(inputs), Errors: len(errs)}

	// Inputs in log order, so that "the k-th input of an id" and every
	// example are deterministic whatever order the caller read them in.
	ins := slices.Clone(inputs)
	slices.SortStableFunc(ins, func(a, b *kgo.Record) int { return coordOf(a).compare(coordOf(b)) })
	byCoord := make(map[coord]int, len(ins))
	byID := make(map[string][]int, len(ins))
	ids := make([]string, len(ins))
	filtered := make([]bool, len(ins))
	for i, in := range ins {
		byCoord[coordOf(in)] = i
		if e.Filtered != nil && e.Filtered(in) {
			filtered[i] = true
			rep.Filtered++
		}
		if id := e.InputID(in); id != "" {
			ids[i] = id
			byID[id] = append(byID[id], i)
		}
	}
	accounted := make([]int, len(ins))

	// Outputs, in log order per topic and partition.
	outs := make([]*kgo.Record, 0, len(outputs))
	outIDs := make([]string, 0, len(outputs))
	for _, out := range outputs {
		if id, ok := e.OutputID(out); ok {
			outs = append(outs, out)
			outIDs = append(outIDs, id)
		}
	}
	order := make([]int, len(outs))
	for i := range order {
		order[i] = i
	}
	slices.SortStableFunc(order, func(a, b int) int { return coordOf(outs[a]).compare(coordOf(outs[b])) })
	rep.Outputs = len(outs)

	type keyOf struct {
		topic     string
		partition int32
		key       string
	}
	type inPart struct {
		topic     string
		partition int32
	}
	used := make(map[string]int, len(byID))
	last := make(map[keyOf]map[inPart]int64)
	for _, oi := range order {
		out, id := outs[oi], outIDs[oi]
		cands := byID[id]
		k := used[id]
		used[id]++
		if len(cands) == 0 {
			rep.Unexpected++
			rep.example("unexpected output %s: its id stands for no input", coordOf(out))
			continue
		}
		if k >= len(cands) {
			// A repeat beyond the inputs of this id: charge it to the
			// last one, which it duplicates.
			in := cands[len(cands)-1]
			accounted[in]++
			continue
		}
		in := cands[k]
		if filtered[in] {
			rep.Unexpected++
			rep.example("unexpected output %s: input %s is filtered", coordOf(out), coordOf(ins[in]))
			continue
		}
		accounted[in]++

		ko := keyOf{out.Topic, out.Partition, string(out.Key)}
		src := ins[in]
		ip := inPart{src.Topic, src.Partition}
		seen := last[ko]
		if seen == nil {
			seen = make(map[inPart]int64)
			last[ko] = seen
		}
		if prev, ok := seen[ip]; ok && src.Offset < prev {
			rep.OrderViolations++
			rep.example("order: output %s (input %s) follows the output of input %s/%d@%d of the same key",
				coordOf(out), coordOf(src), ip.topic, ip.partition, prev)
			continue
		}
		seen[ip] = src.Offset
	}

	// Error records, by the coordinates they name.
	for _, er := range errs {
		c, ok := sourceOf(er)
		if !ok {
			rep.ErrorMismatches++
			rep.example("error record %s: missing or malformed source headers", coordOf(er))
			continue
		}
		in, ok := byCoord[c]
		if !ok {
			rep.ErrorMismatches++
			rep.example("error record %s: names %s, which is no consumed input", coordOf(er), c)
			continue
		}
		accounted[in]++
		src := ins[in]
		switch {
		case !bytes.Equal(er.Key, src.Key):
			rep.ErrorMismatches++
			rep.example("error record %s: key differs from input %s", coordOf(er), c)
		case !bytes.Equal(er.Value, src.Value):
			rep.ErrorMismatches++
			rep.example("error record %s: value differs from input %s", coordOf(er), c)
		case !headersPrefix(src.Headers, er.Headers):
			rep.ErrorMismatches++
			rep.example("error record %s: does not carry the headers of input %s first", coordOf(er), c)
		}
	}

	for i, n := range accounted {
		switch {
		case n == 0 && !filtered[i]:
			rep.Lost++
			rep.example("lost: input %s", coordOf(ins[i]))
		case n > 1:
			rep.Duplicated += n - 1
			rep.example("duplicated: input %s accounted for %d times", coordOf(ins[i]), n)
		}
	}
	return rep
}

// sourceOf reads the coordinates an error record names. The last header of
// each name wins: the runtime appends its headers after the record's own,
// which may carry older ones (an error record re-consumed).
func sourceOf(r *kgo.Record) (coord, bool) {
	var topic, part, off []byte
	var ht, hp, ho bool
	for _, h := range r.Headers {
		switch h.Key {
		case HeaderSourceTopic:
			topic, ht = h.Value, true
		case HeaderSourcePartition:
			part, hp = h.Value, true
		case HeaderSourceOffset:
			off, ho = h.Value, true
		}
	}
	if !ht || !hp || !ho {
		return coord{}, false
	}
	p, err := strconv.ParseInt(string(part), 10, 32)
	if err != nil {
		return coord{}, false
	}
	o, err := strconv.ParseInt(string(off), 10, 64)
	if err != nil {
		return coord{}, false
	}
	return coord{string(topic), int32(p), o}, true
}

// headersPrefix reports whether prefix, in order and byte for byte, begins
// hs.
func headersPrefix(prefix, hs []kgo.RecordHeader) bool {
	if len(prefix) > len(hs) {
		return false
	}
	for i, h := range prefix {
		if h.Key != hs[i].Key || !bytes.Equal(h.Value, hs[i].Value) {
			return false
		}
	}
	return true
}
