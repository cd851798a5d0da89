package ops_test

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/carepipe/carepipe/internal/kafkatest"
	"github.com/carepipe/carepipe/ops"
	"github.com/carepipe/carepipe/pipeline"
)

// A reset puts a stopped group's input offsets where it is told (the
// start, the end, the first record at or after a time, per partition),
// deletes its offsets on its repartition topic, and deletes its internal
// topics; a dry run (the plan alone) changes nothing.
func TestResetOffsetsAndInternalTopics(t *testing.T) {
	c := kafkatest.NewCluster(t)
	cl := kafkatest.Client(t, c.ClientOpts(), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	adm := kadm.NewClient(cl)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	spec := rejecting("stateful")
	spec.Stores = []string{"state"}
	spec.Repartitions = []string{"by-key"}
	if err := pipeline.CreateTopics(ctx, adm, &spec, 2, 1); err != nil {
		t.Fatal(err)
	}
	in, repart := spec.Inputs[0], pipeline.RepartitionTopic(spec.Group, "by-key")
	changelog := pipeline.ChangelogTopic(spec.Group, "state")
	// Partition 0 holds records stamped t0+0s..t0+9s, partition 1
	// t0+0s, 2s, ..., 18s.
	t0 := time.Date(2026, 12, 6, 3, 0, 0, 0, time.UTC)
	var recs []*kgo.Record
	for i := range 10 {
		recs = append(recs,
			&kgo.Record{Topic: in, Partition: 0, Value: []byte("v"), Timestamp: t0.Add(time.Duration(i) * time.Second)},
			&kgo.Record{Topic: in, Partition: 1, Value: []byte("v"), Timestamp: t0.Add(time.Duration(2*i) * time.Second)},
		)
	}
	if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	// What a stopped pipeline leaves: offsets on its input and its
	// repartition topic.
	committed := kadm.Offsets{}
	committed.AddOffset(in, 0, 7, -1)
	committed.AddOffset(in, 1, 9, -1)
	committed.AddOffset(repart, 0, 3, -1)
	commit := func() {
		t.Helper()
		if resp, err := adm.CommitOffsets(ctx, spec.Group, committed); err != nil || resp.Error() != nil {
			t.Fatal(err, resp.Error())
		}
	}
	commit()

	for _, tt := range []struct {
		name string
		to   ops.ResetTo
		want [2]int64
	}{
		{"earliest", ops.ResetTo{}, [2]int64{0, 0}},
		{"latest", ops.ResetTo{Latest: true}, [2]int64{10, 10}},
		{"at t0+5s", ops.ResetTo{Time: t0.Add(5 * time.Second)}, [2]int64{5, 3}},
		{"after the last record", ops.ResetTo{Time: t0.Add(time.Hour)}, [2]int64{10, 10}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			commit()
			plans, err := ops.PlanReset(ctx, adm, []pipeline.Spec{spec}, tt.to)
			if err != nil {
				t.Fatal(err)
			}
			p := plans[0]
			want := []ops.ResetOffset{{Topic: in, Partition: 0, Committed: 7, To: tt.want[0]}, {Topic: in, Partition: 1, Committed: 9, To: tt.want[1]}}
			if !slices.Equal(p.Offsets, want) || !slices.Equal(p.DeleteOffsets, []string{repart}) || !slices.Equal(p.DeleteTopics, []string{changelog, repart}) {
				t.Fatalf("plan %+v, want offsets %+v, %s's offsets and both internal topics deleted", p, want, repart)
			}
			// The plan alone changed nothing.
			got, err := adm.FetchOffsets(ctx, spec.Group)
			if err != nil {
				t.Fatal(err)
			}
			if o, _ := got.Lookup(in, 0); o.At != 7 {
				t.Fatalf("planning moved the offset to %d", o.At)
			}
		})
	}

	plans, err := ops.PlanReset(ctx, adm, []pipeline.Spec{spec}, ops.ResetTo{Time: t0.Add(5 * time.Second)})
	if err != nil {
		t.Fatal(err)
	}
	if err := ops.ApplyReset(ctx, adm, plans); err != nil {
		t.Fatal(err)
	}
	got, err := adm.FetchOffsets(ctx, spec.Group)
	if err != nil {
		t.Fatal(err)
	}
	var after []string
	got.Each(func(o kadm.OffsetResponse) {
		after = append(after, fmt.Sprintf("%s/%d=%d", o.Topic, o.Partition, o.At))
	})
	slices.Sort(after)
	if want := []string{in + "/0=5", in + "/1=3"}; !slices.Equal(after, want) {
		t.Errorf("offsets after the reset %v, want %v", after, want)
	}
	topics, err := adm.ListTopics(ctx, changelog, repart)
	if err != nil {
		t.Fatal(err)
	}
	for _, topic := range []string{changelog, repart} {
		if d, ok := topics[topic]; ok && d.Err == nil {
			t.Errorf("%s still exists", topic)
		}
	}
}
