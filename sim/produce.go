package sim

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// firstErr keeps the first error reported by produce promises, which kgo
// calls serially but on its own goroutine.
type firstErr struct {
	mu  sync.Mutex
	err error
}

func (f *firstErr) set(topic string, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err == nil {
		// Coordinates only: never the record's key or value.
		f.err = fmt.Errorf("sim: produce to topic %q: %w", topic, err)
	}
}

func (f *firstErr) get() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.err
}

// Produce produces recs through cl and waits until every record it handed
// to the client is acknowledged or failed. It returns the first failure
// (wrapped, so errors.Is works on kerr errors and context errors), or nil
// when all were produced.
//
// Memory and in-flight records are bounded by the client's
// MaxBufferedRecords/MaxBufferedBytes: Produce blocks while the client's
// buffer is full. After the first failure, or once ctx is done, it hands the
// client no more records; records already handed over are waited for (kgo
// fails them when ctx is cancelled where it safely can; an idempotent batch
// already sent waits for the broker's answer). If ctx ended before every
// record was handed over and no record failed, the error is ctx.Err().
//
// kgo sets each record's Partition, Offset and (if zero) Timestamp. Order is
// kept per partition. Do not produce the same *kgo.Record twice
// concurrently.
func Produce(ctx context.Context, cl *kgo.Client, recs []*kgo.Record) error {
	if cl == nil {
		return errors.New("sim: Produce: nil client")
	}
	var (
		wg    sync.WaitGroup
		first firstErr
	)
	handed := 0
	for _, r := range recs {
		if ctx.Err() != nil || first.get() != nil {
			break
		}
		wg.Add(1)
		cl.Produce(ctx, r, func(r *kgo.Record, err error) {
			defer wg.Done()
			if err != nil {
				first.set(r.Topic, err)
			}
		})
		handed++
	}
	wg.Wait()
	if err := first.get(); err != nil {
		return err
	}
	if handed < len(recs) {
		return fmt.Errorf("sim: produced %d of %d records: %w", handed, len(recs), context.Cause(ctx))
	}
	return nil
}

// feedTicksPerSecond caps how often [Feed] wakes up. Below it, Feed ticks
// once per record.
const feedTicksPerSecond = 100

// Feed produces records from next through cl, at most rate records per
// second, until maxRecords records were produced, next returns nil, or ctx
// is done. It is the demo's traffic source: the outside world, so it paces with a
// time.Ticker.
//
// Pacing: a token bucket refilled on each tick (every 1/rate s for rate <=
// 100, else every 10 ms with rate/100 tokens, remainders carried), with no
// burst beyond one tick's tokens. A late tick only lowers the rate (the
// ticker drops ticks a slow consumer misses), so rate is an upper bound.
// The first tokens arrive one tick after the call.
//
// rate and maxRecords must be positive: every load loop is bounded in
// count, and ctx bounds it in time. next is called from Feed's goroutine only.
//
// It returns nil when it stops normally: after maxRecords records, when
// next returns nil, or when ctx ends (the demo shutting down; records
// produced until then stay produced, and records that fail only because ctx
// ended are not errors; check ctx.Err() to tell this stop from the others).
// Otherwise it returns the first produce failure, after which it stops and
// waits for the records in flight, as [Produce] does.
func Feed(ctx context.Context, cl *kgo.Client, next func() *kgo.Record, rate, maxRecords int) error {
	switch {
	case cl == nil:
		return errors.New("sim: Feed: nil client")
	case next == nil:
		return errors.New("sim: Feed: nil next")
	case rate <= 0:
		return fmt.Errorf("sim: Feed: rate %d, want > 0 records/s", rate)
	case maxRecords <= 0:
		return fmt.Errorf("sim: Feed: maxRecords %d, want > 0 records", maxRecords)
	}
	ticks := min(rate, feedTicksPerSecond)
	ticker := time.NewTicker(time.Second / time.Duration(ticks))
	defer ticker.Stop()

	var (
		wg    sync.WaitGroup
		first firstErr
	)
	// Wait for every promise before returning, whatever the exit path:
	// the promises write into first and wg, which live on this frame.
	defer wg.Wait()
	// result waits for the records in flight and reports the first
	// failure, unless it is only ctx's ending.
	result := func() error {
		wg.Wait()
		err := first.get()
		if err != nil && ctx.Err() != nil &&
			(errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)) {
			return nil
		}
		return err
	}

	produced, credit := 0, 0 // credit is in 1/ticks of a record
	for produced < maxRecords {
		select {
		case <-ctx.Done():
			return result()
		case <-ticker.C:
		}
		credit += rate
		tokens := credit / ticks
		credit %= ticks
		for ; tokens > 0 && produced < maxRecords; tokens-- {
			if first.get() != nil || ctx.Err() != nil {
				break
			}
			r := next()
			if r == nil {
				return result()
			}
			wg.Add(1)
			cl.Produce(ctx, r, func(r *kgo.Record, err error) {
				defer wg.Done()
				if err != nil {
					first.set(r.Topic, err)
				}
			})
			produced++
		}
		if first.get() != nil {
			return result()
		}
	}
	return result()
}
