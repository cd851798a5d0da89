package bench

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sr"
	"github.com/twmb/franz-go/pkg/sr/srfake"

	"github.com/carepipe/carepipe/pipeline"
	"github.com/carepipe/carepipe/pipeline/datasync"
	"github.com/carepipe/carepipe/pipeline/envelope"
	"github.com/carepipe/carepipe/pipeline/priorauth"
	"github.com/carepipe/carepipe/sim"
)

// The stage benchmarks run each pipeline's real Process, from its Spec,
// through pipeline.Harness: one partition of one, in-memory stores with the
// runtime's per-record savepoints, emits checked against the Spec, no
// broker. What an op costs is therefore the processor plus the runtime's
// per-record work inside a task (savepoints, emit checks, panic recovery,
// and the harness's commit of each record's store writes, which stands in
// for the runtime's per-transaction commit); not the poll, the produce or
// the transaction. An untimed check lap first holds the outputs to the
// workload's known outcomes.

// stageTime is the injected clock's fixed time.
var stageTime = time.Date(2026, 1, 2, 0, 0, 0, 0, time.UTC)

// newStageHarness is a harness for spec on partition 0 of 1, at stageTime.
func newStageHarness(b *testing.B, spec pipeline.Spec) *pipeline.Harness {
	b.Helper()
	h, err := pipeline.NewHarness(spec, pipeline.HarnessClock(sim.NewVirtualClock(stageTime)))
	if err != nil {
		b.Fatal(err)
	}
	return h
}

// freshHarness replaces *h with a new harness, empty state, outside the
// timed (and allocation-counted) part of the benchmark.
func freshHarness(b *testing.B, h **pipeline.Harness, spec pipeline.Spec) {
	b.StopTimer()
	*h = newStageHarness(b, spec)
	b.StartTimer()
}

// errorClass is the error-type header the runtime writes for a Process
// error: a RecordError's type, else TypeProcessing.
func errorClass(err error) pipeline.ErrorType {
	var re *pipeline.RecordError
	if errors.As(err, &re) {
		return re.Type
	}
	return pipeline.TypeProcessing
}

// reportRecords reports the records handed to Process per second.
func reportRecords(b *testing.B) {
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "records/s")
}

// BenchmarkPriorAuthProcessorStage runs the orchestrator's Process over
// 2,000 complete workflows on one goroutine. The inputs are the events of
// the closed loop in BenchmarkPriorAuthEndToEnd (world seed 1: 70%
// approved, 15% denied, 10% partially approved, the rest cancelled, a
// quarter pended first), in phases as that run produces them: every
// prescription; every prescription back from the repartition topic (the
// records Process re-keyed in the check lap, as the runtime would
// re-deliver them); then every documentation, submission, determination
// (pended ones first) and communication event. An op is one record, so a
// workflow is six ops (seven when pended); a lap starts from empty state.
//
//	go test ./bench -run '^$' -bench PriorAuthProcessorStage -benchmem -count 8
func BenchmarkPriorAuthProcessorStage(b *testing.B) {
	const workflows = 2000
	p, err := priorauth.New()
	if err != nil {
		b.Fatal(err)
	}
	spec := p.Spec()
	inputs := paCheckLap(b, spec, workflows)

	var h *pipeline.Harness
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		if i%len(inputs) == 0 {
			freshHarness(b, &h, spec)
		}
		if _, err := h.Process(inputs[i%len(inputs)]); err != nil {
			b.Fatal(err)
		}
	}
	reportRecords(b)
}

// paCheckLap processes n workflows from empty state and returns the
// inputs of a lap. It fails the benchmark unless every prescription is
// re-keyed (and nothing else is), every other record changes something,
// no record fails, and every workflow completes.
func paCheckLap(b *testing.B, spec pipeline.Spec, n int) []*kgo.Record {
	b.Helper()
	prescriptions, answers := paStageInputs(b, n)
	h := newStageHarness(b, spec)
	repartition := pipeline.RepartitionTopic(priorauth.Group, priorauth.RepartitionByPriorAuth)
	var rekeyed []*kgo.Record
	for i, r := range prescriptions {
		out, err := h.Process(r)
		if err != nil {
			b.Fatalf("check lap: prescription %d: %v", i, err)
		}
		if len(out) != 1 || out[0].Topic != repartition {
			b.Fatalf("check lap: prescription %d made %d records, want it re-keyed", i, len(out))
		}
		// As the broker would place it on the one partition.
		rk := out[0]
		rk.Partition, rk.Offset = 0, int64(i)
		rekeyed = append(rekeyed, rk)
	}
	inputs := slices.Concat(prescriptions, rekeyed, answers)
	completed := 0
	for _, r := range inputs[len(prescriptions):] {
		out, err := h.Process(r)
		if err != nil {
			b.Fatalf("check lap: %s: %v", r.Topic, err)
		}
		if len(out) == 0 {
			b.Fatalf("check lap: %s changed nothing", r.Topic)
		}
		for _, o := range out {
			if o.Topic == repartition {
				b.Fatalf("check lap: %s re-keyed", r.Topic)
			}
			if o.Topic == priorauth.TopicWorkflowCompleted {
				completed++
			}
		}
	}
	if completed != n {
		b.Fatalf("check lap: %d of %d workflows completed", completed, n)
	}
	return inputs
}

// paStageInputs are the orchestrator's input records for n workflows: the
// prescriptions, and the outside systems' answers in the phases described
// at BenchmarkPriorAuthProcessorStage. The answers are
// shaped as the simulated world's (sim/priorauth.go): one document per
// requested type, the payer table's submission method, the payer's
// decision from PriorAuthOutcome, every requested channel completed; each
// carries the workflow's correlation id, as the world copies it from the
// request.
func paStageInputs(b *testing.B, n int) (prescriptions, answers []*kgo.Record) {
	b.Helper()
	cfg := priorauth.DefaultConfig()
	world := sim.PriorAuthWorldConfig{Seed: 1, Approve: 0.7, Deny: 0.15, Partial: 0.1, Pend: 0.25}
	rxs, _ := sim.PriorAuthPrescriptions(2, n)
	base := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	reasons := map[string]string{
		sim.PAStatusApproved:          "Meets medical necessity criteria",
		sim.PAStatusDenied:            "Step therapy requirements not met",
		sim.PAStatusPartiallyApproved: "Approved for a reduced quantity",
		sim.PAStatusPended:            "Additional clinical information requested",
		sim.PAStatusCancelled:         "Request withdrawn at payer review",
	}
	// Phases of the answers: documentation, submission, pended
	// determinations, final determinations, communication.
	var phases [5][]*kgo.Record
	for i, src := range rxs {
		rx := *src
		// As the broker would stamp and place it.
		rx.Timestamp, rx.Partition, rx.Offset = base.Add(time.Duration(i)*time.Second), 0, int64(i)
		// What the orchestrator reads of the prescription: its ids, its
		// payer and its correlation id.
		var p struct {
			PrescriptionID string `json:"prescriptionId"`
			PayerID        string `json:"payerId"`
		}
		meta, err := envelope.Decode(rx.Value, &p)
		if err != nil {
			b.Fatal(err)
		}
		id, corr, payer := priorauth.PriorAuthID(p.PrescriptionID), envelope.CorrelationID(&rx, meta), p.PayerID
		method := cfg.Payers[payer]
		if method == "" {
			method = cfg.DefaultMethod
		}
		at := func(h int) time.Time { return rx.Timestamp.Add(time.Duration(h) * time.Hour) }
		answer := func(topic, service string, h int, v any) *kgo.Record {
			value, err := json.Marshal(v)
			if err != nil {
				b.Fatal(err)
			}
			return &kgo.Record{Topic: topic, Key: []byte(id), Value: value, Timestamp: at(h), Headers: []kgo.RecordHeader{
				{Key: envelope.HeaderCorrelationID, Value: []byte(corr)},
				{Key: envelope.HeaderEventSource, Value: []byte(service)},
				{Key: envelope.HeaderEventType, Value: []byte(topic)},
			}}
		}
		type doc struct {
			Type       string `json:"type"`
			DocumentID string `json:"documentId"`
		}
		var docs []doc
		for j, t := range []string{"patient-demographics", "diagnosis-codes", "medication-history", "lab-results", "provider-notes"} {
			docs = append(docs, doc{Type: t, DocumentID: fmt.Sprintf("doc-%08d%08d", i, j)})
		}
		determination := func(status string, h int) map[string]string {
			d := map[string]string{
				"priorAuthId": id, "determinationStatus": status,
				"determinationDate": at(h).Format(time.RFC3339), "determinationReason": reasons[status],
			}
			if status == sim.PAStatusApproved || status == sim.PAStatusPartiallyApproved {
				d["expirationDate"] = at(h).Add(90 * 24 * time.Hour).Format(time.RFC3339)
			}
			return d
		}
		prescriptions = append(prescriptions, &rx)
		phases[0] = append(phases[0], answer(priorauth.TopicDocumentationAssembled, "sim.documentation", 1,
			map[string]any{"priorAuthId": id, "prescriptionId": string(rx.Key), "documents": docs}))
		phases[1] = append(phases[1], answer(priorauth.TopicSubmissionCompleted, "sim.submission", 2, map[string]string{
			"priorAuthId": id, "submissionId": fmt.Sprintf("sub-%016d", i), "submissionDate": at(2).Format(time.RFC3339),
			"submissionMethod": method, "payerId": payer,
		}))
		final, pended := world.PriorAuthOutcome(id)
		if pended {
			phases[2] = append(phases[2], answer(priorauth.TopicDeterminationReceived, "sim.payer", 3, determination(sim.PAStatusPended, 3)))
		}
		phases[3] = append(phases[3], answer(priorauth.TopicDeterminationReceived, "sim.payer", 4, determination(final, 4)))
		phases[4] = append(phases[4], answer(priorauth.TopicCommunicationCompleted, "sim.communication", 5,
			map[string]any{"priorAuthId": id, "completedChannels": []string{"EHR", "PORTAL", "EMAIL"}}))
	}
	for _, p := range phases {
		answers = append(answers, p...)
	}
	return prescriptions, answers
}

// BenchmarkDataSyncStages runs the data-sync stages over the 20,000 source
// records of BenchmarkDataSyncCDCToValidated (seed 3: every source variant,
// Debezium envelopes and tombstones, duplicates, stale updates, invalid and
// undecodable records) on one goroutine; an op is one input record.
//
//   - cdc: the CDC stage's Process: the mapping of the source record (its
//     cost alone is pipeline/datasync's BenchmarkMapStage, on these
//     records; it was the map stage here), the canonical record, its event
//     encoded in Avro (Confluent wire format) with its headers.
//   - validation: the validation stage's Process, on the canonical changes
//     the cdc stage made of the source records in the check lap: Avro
//     decode, the entity's resolution state read from and written to the
//     store, validation, the entity's policy, and for a change that
//     publishes, the resolved entity encoded in Avro. A lap starts from
//     empty state.
//
// In cdc and validation, a record that fails also costs its
// data.sync.errors value (the Spec's ErrorValue), which the runtime builds
// for the error topic.
//
//	go test ./bench -run '^$' -bench DataSyncStages -benchmem -count 8
func BenchmarkDataSyncStages(b *testing.B) {
	recs, truth := sim.DataSyncRecords(3, 20000)
	for i, r := range recs {
		// As the broker would place it on the one partition.
		cp := *r
		cp.Partition, cp.Offset = 0, int64(i)
		recs[i] = &cp
	}
	codec := newStageCodec(b)
	cdc, err := datasync.NewCDC(datasync.WithCodec(codec))
	if err != nil {
		b.Fatal(err)
	}
	val, err := datasync.NewValidation(datasync.WithCodec(codec))
	if err != nil {
		b.Fatal(err)
	}
	cdcSpec, valSpec := cdc.Spec(), val.Spec()
	changes := dsCheckLap(b, cdcSpec, valSpec, val, recs, truth)

	b.Run("cdc", func(b *testing.B) {
		h := newStageHarness(b, cdcSpec)
		b.ReportAllocs()
		b.ResetTimer()
		for i := range b.N {
			r := recs[i%len(recs)]
			if _, err := h.Process(r); err != nil {
				_ = cdcSpec.ErrorValue(r, errorClass(err), err.Error(), stageTime)
			}
		}
		reportRecords(b)
	})
	b.Run("validation", func(b *testing.B) {
		var h *pipeline.Harness
		b.ReportAllocs()
		b.ResetTimer()
		for i := range b.N {
			if i%len(changes) == 0 {
				freshHarness(b, &h, valSpec)
			}
			r := changes[i%len(changes)]
			if _, err := h.Process(r); err != nil {
				_ = valSpec.ErrorValue(r, errorClass(err), err.Error(), stageTime)
			}
		}
		reportRecords(b)
	})
}

// newStageCodec registers the canonical schemas with an in-memory registry
// (srfake), as the end-to-end benchmark does, for the codec.
func newStageCodec(b *testing.B) *datasync.Codec {
	b.Helper()
	reg := srfake.New()
	b.Cleanup(reg.Close)
	cl, err := sr.NewClient(sr.URLs(reg.URL()))
	if err != nil {
		b.Fatal(err)
	}
	codec, err := datasync.Register(context.Background(), cl)
	if err != nil {
		b.Fatal(err)
	}
	return codec
}

// dsCheckLap runs recs through the cdc stage and the changes it emits
// through the validation stage (val, fresh, so that its outcome counts are
// this lap's), from empty state, and holds what comes out to the
// workload's truth: the validated records (conflict-resolved or not), the
// error classes of both stages, and the duplicates the validation stage
// absorbed. It returns the changes.
func dsCheckLap(b *testing.B, cdcSpec, valSpec pipeline.Spec, val *datasync.Validation, recs []*kgo.Record, truth sim.DataSyncTruth) []*kgo.Record {
	b.Helper()
	errs := map[pipeline.ErrorType]int{}
	var changes []*kgo.Record
	tombstones := 0
	h := newStageHarness(b, cdcSpec)
	for i, r := range recs {
		out, err := h.Process(r)
		if err != nil {
			errs[errorClass(err)]++
			continue
		}
		if r.Value == nil && len(out) == 0 {
			tombstones++ // no change
			continue
		}
		if len(out) != 1 {
			b.Fatalf("check lap: source record %d made %d changes, want 1", i, len(out))
		}
		changes = append(changes, out[0])
	}
	applied, resolved := 0, 0
	h = newStageHarness(b, valSpec)
	for i, r := range changes {
		out, err := h.Process(r)
		if err != nil {
			errs[errorClass(err)]++
			continue
		}
		for _, o := range out {
			if _, ok := datasync.EntityOfValidatedTopic(o.Topic); !ok {
				b.Fatalf("check lap: change %d made a record on %s", i, o.Topic)
			}
			switch r, _ := strconv.ParseBool(envelope.HeaderValue(o, datasync.HeaderConflictResolved)); r {
			case true:
				resolved++
			default:
				applied++
			}
		}
	}
	sum := func(m map[string]int) int {
		n := 0
		for _, c := range m {
			n += c
		}
		return n
	}
	other := 0
	for typ, n := range errs {
		switch typ {
		case pipeline.TypeConflict, pipeline.TypeInvalid, pipeline.TypeDecode:
		default:
			other += n
		}
	}
	for _, c := range []struct {
		what      string
		got, want int
	}{
		{"validated records", applied, sum(truth.Applied)},
		{"conflict-resolved validated records", resolved, sum(truth.ConflictResolved)},
		{"duplicates", int(val.Count("duplicate")), sum(truth.Duplicates)},
		{"tombstones", tombstones, sum(truth.Tombstones)},
		// Every source record is one of the truth's outcomes: none is kept.
		{"kept changes", int(val.Count("kept")), len(recs) - truth.Total()},
		{"conflict errors (stale updates)", errs[pipeline.TypeConflict], sum(truth.Stale)},
		{"invalid errors", errs[pipeline.TypeInvalid], sum(truth.Invalid)},
		{"decode errors", errs[pipeline.TypeDecode], sum(truth.Undecodable)},
		{"errors of other classes", other, 0},
	} {
		if c.got != c.want {
			b.Fatalf("check lap: %d %s, want %d (error classes %v)", c.got, c.what, c.want, errs)
		}
	}
	return changes
}
