package loadgen

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

// within reports whether got is in [want, want*1.01].
func within(got, want time.Duration) bool {
	return got >= want && float64(got) <= float64(want)*1.01
}

// The layout must tile the range: every bucket's upper bound maps back to
// it, buckets are contiguous, and none is wider than 1/128 of its values.
func TestHistogramBucketLayout(t *testing.T) {
	if got := bucketOf(maxMicros); got != numBuckets-1 {
		t.Fatalf("bucketOf(maxMicros) = %d, want the last bucket %d", got, numBuckets-1)
	}
	if got := bucketUpper(numBuckets - 1); got != maxMicros {
		t.Fatalf("top bucket ends at %d, want %d", got, uint64(maxMicros))
	}
	lower := uint64(1)
	for i := 1; i < numBuckets; i++ {
		upper := bucketUpper(i)
		if bucketOf(lower) != i || bucketOf(upper) != i {
			t.Fatalf("bucket %d = [%d, %d], but bucketOf gives %d and %d", i, lower, upper, bucketOf(lower), bucketOf(upper))
		}
		if width := upper - lower + 1; width > 1 && float64(width) > float64(lower)/128 {
			t.Fatalf("bucket %d = [%d, %d] is wider than 1/128 of its lower bound", i, lower, upper)
		}
		lower = upper + 1
	}
	if lower != maxMicros+1 {
		t.Fatalf("buckets end at %d, want %d", lower-1, uint64(maxMicros))
	}
}

func TestHistogramKnownQuantiles(t *testing.T) {
	h := NewHistogram()
	const n = 100000
	for i := 1; i <= n; i++ {
		h.Record(time.Duration(i) * time.Microsecond)
	}
	if h.Count() != n {
		t.Fatalf("Count = %d, want %d", h.Count(), n)
	}
	// With 1..n each once, the value at rank ceil(q*n) is ceil(q*n) µs.
	for _, tc := range []struct {
		q    float64
		want time.Duration
	}{
		{0.5, 50000 * time.Microsecond},
		{0.9, 90000 * time.Microsecond},
		{0.99, 99000 * time.Microsecond},
		{0.999, 99900 * time.Microsecond},
	} {
		if got := h.Quantile(tc.q); !within(got, tc.want) {
			t.Errorf("Quantile(%v) = %v, want in [%v, %v]", tc.q, got, tc.want, time.Duration(float64(tc.want)*1.01))
		}
	}
	if got, want := h.Quantile(0), time.Microsecond; got != want {
		t.Errorf("Quantile(0) = %v, want %v", got, want)
	}
	if got, want := h.Quantile(1), n*time.Microsecond; got != want || h.Max() != want {
		t.Errorf("Quantile(1) = %v, Max = %v, want %v", got, h.Max(), want)
	}
	if got, want := h.Min(), time.Microsecond; got != want {
		t.Errorf("Min = %v, want %v", got, want)
	}
	// Mean of 1..n µs is (n+1)/2 µs, exactly 50000.5µs.
	if got, want := h.Mean(), 50000500*time.Nanosecond; got != want {
		t.Errorf("Mean = %v, want %v", got, want)
	}
}

// Small exact values pin the rank rule itself: below 256µs buckets are 1µs
// wide, so any off-by-one in ceil(q*Count) shows.
func TestHistogramQuantileRank(t *testing.T) {
	h := NewHistogram()
	for i := 1; i <= 100; i++ {
		h.Record(time.Duration(i) * time.Microsecond)
	}
	for i := 1; i <= 100; i++ {
		q := float64(i) / 100
		want := time.Duration(i) * time.Microsecond
		if got := h.Quantile(q); got != want {
			t.Errorf("Quantile(%v) = %v, want %v", q, got, want)
		}
		// 0.07 and its like multiply to a hair above a whole number.
		q = float64(i) * 0.01
		if got := h.Quantile(q); got != want {
			t.Errorf("Quantile(%v) = %v, want %v", q, got, want)
		}
	}
	if got, want := h.Quantile(0.005), time.Microsecond; got != want {
		t.Errorf("Quantile(0.005) = %v, want %v", got, want)
	}
	if got, want := h.Quantile(0.015), 2*time.Microsecond; got != want {
		t.Errorf("Quantile(0.015) = %v, want %v", got, want)
	}
}

func TestHistogramRelativeError(t *testing.T) {
	// A geometric sweep over the whole range, in whole microseconds (the
	// histogram's unit) so that only the bucket width is under test.
	checked := 0
	for f := 1.0; f <= float64(time.Hour/time.Microsecond); f *= 1.003 {
		v := time.Duration(math.Round(f)) * time.Microsecond
		// Alone, the answer is capped at Max, which is v itself.
		h := NewHistogram()
		h.Record(v)
		if got := h.Quantile(0.5); got != v {
			t.Fatalf("one recording of %v: Quantile(0.5) = %v", v, got)
		}
		// With a larger companion the cap is out of the way and the bucket's
		// upper bound is what comes back.
		h.Record(2 * time.Hour)
		if got := h.Quantile(0.5); !within(got, v) {
			t.Fatalf("recording %v and 2h: Quantile(0.5) = %v, want in [%v, %v]", v, got, v, time.Duration(float64(v)*1.01))
		}
		checked++
	}
	if checked < 5000 {
		t.Fatalf("sweep checked only %d values", checked)
	}

	// Durations that are not whole microseconds are rounded up, so they are
	// never understated; from 100µs on the rounding stays within the 1%.
	for f := float64(100 * time.Microsecond); f <= float64(time.Hour); f *= 1.0031 {
		v := time.Duration(f)
		h := NewHistogram()
		h.Record(v)
		if got := h.Quantile(0.5); got != v {
			t.Fatalf("one recording of %v: Quantile(0.5) = %v", v, got)
		}
		h.Record(2 * time.Hour)
		if got := h.Quantile(0.5); !within(got, v) {
			t.Fatalf("recording %v and 2h: Quantile(0.5) = %v, want in [%v, %v]", v, got, v, time.Duration(float64(v)*1.01))
		}
	}
}

// Against an exact sort of a skewed random sample, every quantile must be
// the true order statistic or at most 1% above it.
func TestHistogramRandomAgainstSort(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	const n = 20000
	vals := make([]time.Duration, n)
	h := NewHistogram()
	for i := range vals {
		// Log-normal around a few ms, reaching from µs to many seconds.
		us := math.Ceil(math.Exp(8 + 2.5*r.NormFloat64()))
		vals[i] = time.Duration(us) * time.Microsecond
		h.Record(vals[i])
	}
	slices.Sort(vals)
	for k := 0; k <= 2000; k++ {
		q := float64(k) / 2000
		rank := max(k*n/2000, 1) // exact: n is a multiple of 2000
		want := vals[rank-1]
		if got := h.Quantile(q); !within(got, want) {
			t.Errorf("Quantile(%v) = %v, want in [%v, %v]", q, got, want, time.Duration(float64(want)*1.01))
		}
	}
	if h.Max() != vals[n-1] || h.Quantile(1) != vals[n-1] {
		t.Errorf("Max = %v, Quantile(1) = %v, want %v", h.Max(), h.Quantile(1), vals[n-1])
	}
	if h.Min() != vals[0] {
		t.Errorf("Min = %v, want %v", h.Min(), vals[0])
	}
}

func TestHistogramClamping(t *testing.T) {
	h := NewHistogram()
	h.Record(0)
	h.Record(-5 * time.Second)
	h.Record(300 * time.Nanosecond)
	if h.Count() != 3 {
		t.Fatalf("Count = %d, want 3", h.Count())
	}
	for _, q := range []float64{0, 0.5, 1} {
		if got := h.Quantile(q); got != time.Microsecond {
			t.Errorf("Quantile(%v) = %v, want 1µs", q, got)
		}
	}
	if h.Min() != time.Microsecond || h.Max() != time.Microsecond || h.Mean() != time.Microsecond {
		t.Errorf("Min, Max, Mean = %v, %v, %v, want 1µs each", h.Min(), h.Max(), h.Mean())
	}

	h.Reset()
	h.Record(2 * time.Hour)
	if h.Count() != 1 || h.Max() != 2*time.Hour || h.Quantile(1) != 2*time.Hour {
		t.Errorf("after 2h: Count = %d, Max = %v, Quantile(1) = %v", h.Count(), h.Max(), h.Quantile(1))
	}
	h.Record(time.Millisecond)
	if got := h.Quantile(0.5); !within(got, time.Millisecond) {
		t.Errorf("Quantile(0.5) of {1ms, 2h} = %v, want within 1%% above 1ms", got)
	}
	if h.Quantile(1) != 2*time.Hour || h.Max() != 2*time.Hour || h.Min() != time.Millisecond {
		t.Errorf("Quantile(1), Max, Min = %v, %v, %v", h.Quantile(1), h.Max(), h.Min())
	}
	// The extreme of the type must neither overflow the rounding nor the mean.
	h.Record(math.MaxInt64)
	if h.Count() != 3 || h.Max() != math.MaxInt64 || h.Quantile(1) != math.MaxInt64 {
		t.Errorf("after MaxInt64: Count = %d, Max = %v, Quantile(1) = %v", h.Count(), h.Max(), h.Quantile(1))
	}
	if h.Mean() <= 0 {
		t.Errorf("Mean = %v, want positive", h.Mean())
	}

	// q outside [0, 1] is clamped.
	if h.Quantile(-1) != h.Quantile(0) || h.Quantile(2) != h.Quantile(1) || h.Quantile(math.NaN()) != h.Quantile(0) {
		t.Errorf("out-of-range q not clamped: %v %v %v", h.Quantile(-1), h.Quantile(2), h.Quantile(math.NaN()))
	}
}

func TestHistogramMerge(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	a, b, all := NewHistogram(), NewHistogram(), NewHistogram()
	for i := 0; i < 5000; i++ {
		// Different shapes on each side so the merge has to interleave.
		da := time.Duration(r.Int64N(int64(50 * time.Millisecond)))
		db := time.Duration(r.Int64N(int64(10*time.Second))) + time.Second
		a.Record(da)
		b.Record(db)
		all.Record(da)
		all.Record(db)
	}
	b.Record(3 * time.Hour)
	all.Record(3 * time.Hour)

	a.Merge(b)
	a.Merge(NewHistogram()) // an empty one changes nothing
	a.Merge(nil)
	if a.Count() != all.Count() || a.Max() != all.Max() || a.Min() != all.Min() || a.Mean() != all.Mean() {
		t.Errorf("merged Count/Max/Min/Mean = %d/%v/%v/%v, want %d/%v/%v/%v",
			a.Count(), a.Max(), a.Min(), a.Mean(), all.Count(), all.Max(), all.Min(), all.Mean())
	}
	for k := 0; k <= 10000; k++ {
		q := float64(k) / 10000
		if got, want := a.Quantile(q), all.Quantile(q); got != want {
			t.Fatalf("Quantile(%v): merged %v, direct %v", q, got, want)
		}
	}
	if !slices.Equal(a.counts, all.counts) {
		t.Error("merged bucket counts differ from direct ones")
	}

	// Merging into an empty histogram must take the other's min, not keep 0.
	e := NewHistogram()
	e.Merge(b)
	if e.Min() != b.Min() || e.Max() != b.Max() || e.Count() != b.Count() {
		t.Errorf("merge into empty: Min/Max/Count = %v/%v/%d, want %v/%v/%d", e.Min(), e.Max(), e.Count(), b.Min(), b.Max(), b.Count())
	}
}

func TestHistogramEmpty(t *testing.T) {
	h := NewHistogram()
	if h.Count() != 0 || h.Max() != 0 || h.Min() != 0 || h.Mean() != 0 {
		t.Errorf("empty: Count/Max/Min/Mean = %d/%v/%v/%v", h.Count(), h.Max(), h.Min(), h.Mean())
	}
	for _, q := range []float64{0, 0.5, 0.99, 1} {
		if got := h.Quantile(q); got != 0 {
			t.Errorf("empty: Quantile(%v) = %v, want 0", q, got)
		}
	}
}

func TestHistogramReset(t *testing.T) {
	h := NewHistogram()
	for i := 1; i <= 1000; i++ {
		h.Record(time.Duration(i) * time.Millisecond)
	}
	h.Reset()
	if h.Count() != 0 || h.Max() != 0 || h.Min() != 0 || h.Mean() != 0 || h.Quantile(0.5) != 0 {
		t.Errorf("after Reset: Count/Max/Min/Mean/p50 = %d/%v/%v/%v/%v",
			h.Count(), h.Max(), h.Min(), h.Mean(), h.Quantile(0.5))
	}
	// Nothing from before may leak into what is recorded next.
	h.Record(5 * time.Millisecond)
	if h.Count() != 1 || h.Min() != 5*time.Millisecond || h.Max() != 5*time.Millisecond ||
		h.Quantile(0) != 5*time.Millisecond || h.Mean() != 5*time.Millisecond {
		t.Errorf("after Reset and one 5ms: Count/Min/Max/p0/Mean = %d/%v/%v/%v/%v",
			h.Count(), h.Min(), h.Max(), h.Quantile(0), h.Mean())
	}
}

func TestHistogramRecordNoAlloc(t *testing.T) {
	h := NewHistogram()
	d := time.Duration(0)
	allocs := testing.AllocsPerRun(1000, func() {
		d = d*7 + 13*time.Microsecond + 1
		h.Record(d % (2 * time.Hour))
	})
	if allocs != 0 {
		t.Errorf("Record allocates %v times per call, want 0", allocs)
	}
}

func BenchmarkHistogramRecord(b *testing.B) {
	r := rand.New(rand.NewPCG(5, 6))
	vals := make([]time.Duration, 1024)
	for i := range vals {
		vals[i] = time.Duration(math.Exp(14 + 2*r.NormFloat64()))
	}
	h := NewHistogram()
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		h.Record(vals[i&(len(vals)-1)])
	}
}
