package loadgen

import (
	"math"
	"math/bits"
	"time"
)

// Bucket layout. Values are whole microseconds. Below 2*subCount every value
// has its own bucket; from there on each power of two [2^n, 2^(n+1)) is split
// into subCount equal buckets, so a bucket is never wider than 1/subCount of
// its lower bound. With subCount = 128 that bounds the error to under 0.8%,
// inside the 1% that latency percentiles need, while keeping the table small.
const (
	subBits  = 7
	subCount = 1 << subBits
	// maxMicros is the top of the range, about 71.6 minutes: comfortably more
	// than an hour while the largest bucket index still fits the table below.
	maxMicros = 1<<32 - 1
	// numBuckets covers every index bucketOf can return for values up to
	// maxMicros: a shift of 32-(subBits+1) plus a top sub-bucket of
	// 2*subCount-1.
	numBuckets = (32-(subBits+1))<<subBits + 2*subCount
)

// Histogram records durations with a log-linear (HDR-style) layout: from
// 1µs up to about 71 minutes (at least an hour) in whole microseconds, with
// every quantile it reports at most 0.8% above the recorded value it stands
// for, plus the up-to-1µs rounding of durations to whole microseconds. Below
// 256µs buckets are exactly 1µs wide.
//
// Use NewHistogram; the zero value has no buckets. A Histogram is not safe
// for concurrent use: callers recording from several goroutines should give
// each its own and Merge them.
type Histogram struct {
	counts []int64
	count  int64
	// sum is a float so that a run of very long durations cannot overflow it;
	// the mean needs no more than float precision.
	sum float64
	min time.Duration
	max time.Duration
}

// NewHistogram returns an empty Histogram. The whole bucket table (about
// 26 KiB) is allocated here so that Record never allocates.
func NewHistogram() *Histogram {
	return &Histogram{counts: make([]int64, numBuckets)}
}

// bucketOf maps a value in [1, maxMicros] µs to its bucket. OR-ing in the low
// bits makes the shift zero for small values without a branch, which is what
// makes the values below 2*subCount exact.
func bucketOf(us uint64) int {
	shift := bits.Len64(us|(2*subCount-1)) - (subBits + 1)
	return shift<<subBits + int(us>>uint(shift))
}

// bucketUpper is the largest value, in µs, that lands in bucket i: the
// inverse of bucketOf, reporting the top of the bucket so that quantiles err
// high rather than low.
func bucketUpper(i int) uint64 {
	if i < 2*subCount {
		return uint64(i)
	}
	shift := uint(i>>subBits - 1)
	sub := uint64(i&(subCount-1) + subCount)
	return (sub+1)<<shift - 1
}

// Record adds one duration. Below 1µs counts as 1µs; above the top of the
// range (at least 1 hour) counts at the top (and Max still reports the true
// max seen).
func (h *Histogram) Record(d time.Duration) {
	if d < time.Microsecond {
		d = time.Microsecond
	}
	// Rounding up rather than truncating keeps the bucket's upper bound at
	// or above d, so a reported quantile never understates a latency.
	us := uint64(d / time.Microsecond)
	if d%time.Microsecond != 0 {
		us++
	}
	if us > maxMicros {
		us = maxMicros
	}
	h.counts[bucketOf(us)]++
	h.count++
	h.sum += float64(d)
	if d > h.max {
		h.max = d
	}
	if d < h.min || h.count == 1 {
		h.min = d
	}
}

// Count returns how many durations have been recorded.
func (h *Histogram) Count() int64 { return h.count }

// Quantile returns the duration at quantile q in [0, 1] (q outside is
// clamped): the smallest recorded bucket value v such that at least
// ceil(q*Count) recordings are <= v, reported as the bucket's upper bound
// (so never an underestimate by more than the bucket width) but never above
// Max(). 0 when empty. Quantile(0) is the min bucket, Quantile(1) == Max().
func (h *Histogram) Quantile(q float64) time.Duration {
	if h.count == 0 {
		return 0
	}
	if !(q > 0) { // also catches NaN
		q = 0
	}
	if q > 1 {
		q = 1
	}
	// q is usually a decimal like 0.07 that floats cannot hold exactly, and
	// the product can land a hair above a whole number (0.07*100 is
	// 7.000000000000001), which would skip a rank. The slack is far larger
	// than that rounding and far smaller than one recording.
	x := q * float64(h.count)
	rank := int64(math.Ceil(x - x*1e-13))
	if rank < 1 {
		rank = 1
	}
	var seen int64
	for i, c := range h.counts {
		seen += c
		if seen < rank {
			continue
		}
		// In the last occupied bucket the true max is the better answer:
		// it is no larger than the bucket's top, and for values clamped
		// at the top of the range it is the only truthful one.
		if seen == h.count {
			return h.max
		}
		return min(time.Duration(bucketUpper(i))*time.Microsecond, h.max)
	}
	return h.max // not reached: the counts sum to h.count
}

// Max returns the largest duration recorded (durations below 1µs count as
// 1µs), or 0 when empty.
func (h *Histogram) Max() time.Duration { return h.max }

// Min returns the smallest duration recorded (durations below 1µs count as
// 1µs), or 0 when empty.
func (h *Histogram) Min() time.Duration { return h.min }

// Mean returns the mean of the recorded durations, exact rather than taken
// from the buckets, or 0 when empty.
func (h *Histogram) Mean() time.Duration {
	if h.count == 0 {
		return 0
	}
	m := h.sum / float64(h.count)
	// Converting a float at or past 2^63 to an integer is not defined.
	if m >= math.MaxInt64 {
		return math.MaxInt64
	}
	return time.Duration(m)
}

// Merge adds o's recordings into h.
func (h *Histogram) Merge(o *Histogram) {
	if o == nil || o.count == 0 {
		return
	}
	for i, c := range o.counts {
		h.counts[i] += c
	}
	if h.count == 0 || o.min < h.min {
		h.min = o.min
	}
	if o.max > h.max {
		h.max = o.max
	}
	h.count += o.count
	h.sum += o.sum
}

// Reset empties h, keeping its bucket table for reuse.
func (h *Histogram) Reset() {
	clear(h.counts)
	h.count = 0
	h.sum = 0
	h.min = 0
	h.max = 0
}
