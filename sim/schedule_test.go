package sim

import (
	"context"
	"slices"
	"testing"
	"testing/synctest"
	"time"
)

func TestDelayQueuePopDue(t *testing.T) {
	t0 := time.Date(2025, 3, 1, 9, 0, 0, 0, time.UTC)
	tests := []struct {
		name string
		due  []time.Duration // task i is due at t0 + due[i]
		now  time.Duration
		max  int
		want []int
	}{
		{"earliest first", []time.Duration{3, 1, 2}, 3, 10, []int{1, 2, 0}},
		{"ties keep push order", []time.Duration{1, 0, 1, 0}, 1, 10, []int{1, 3, 0, 2}},
		{"not due stays", []time.Duration{2, 1, 3}, 2, 10, []int{1, 0}},
		{"at most max", []time.Duration{0, 0, 0}, 0, 2, []int{0, 1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var q delayQueue[int]
			for i, d := range tt.due {
				q.push(t0.Add(d), i)
			}
			got := q.popDue(t0.Add(tt.now), tt.max)
			if !slices.Equal(got, tt.want) {
				t.Errorf("popDue = %v, want %v", got, tt.want)
			}
			if q.len() != len(tt.due)-len(tt.want) {
				t.Errorf("%d left, want %d", q.len(), len(tt.due)-len(tt.want))
			}
		})
	}
}

// The loop stops taking items at maxPending, leaving them in the hand-off,
// and fires due tasks at most maxBatch at a time, in order.
func TestRunDelayQueue(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx, cancel := context.WithCancel(t.Context())
		items := make(chan int, 5)
		for i := range 5 {
			items <- i
		}
		var (
			q                delayQueue[int]
			pending, handOff = -1, -1 // at the first fire
			fired            [][]int
			done             = make(chan struct{})
		)
		go func() {
			defer close(done)
			accept := func(i int) { q.push(time.Now().Add(time.Second), i) }
			fire := func(due []int) error {
				if pending < 0 {
					pending, handOff = q.len(), len(items)
				}
				if len(due) > 0 {
					fired = append(fired, due)
				}
				return nil
			}
			runDelayQueue(ctx, items, &q, 3, 2, accept, fire)
		}()
		time.Sleep(2 * time.Second)
		synctest.Wait() // the tasks due now have fired
		cancel()
		<-done
		if pending != 3 || handOff != 2 {
			t.Errorf("first round: %d pending, %d in the hand-off; want 3, 2", pending, handOff)
		}
		if want := [][]int{{0, 1}, {2}, {3, 4}}; !slices.EqualFunc(fired, want, slices.Equal) {
			t.Errorf("fired %v, want %v", fired, want)
		}
	})
}
