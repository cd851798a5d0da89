package priorauth

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/carepipe/carepipe/pipeline"
)

var t0 = time.Date(2025, 3, 1, 9, 0, 0, 0, time.UTC)

func prescriptionEvent(payer, category string) event {
	return event{
		Topic: TopicPrescriptions, PriorAuthID: PriorAuthID("rx-1"), At: t0, CorrelationID: "corr-rx-1",
		Prescription: &prescription{
			PrescriptionID: "rx-1", PatientID: "pat-1", ProviderID: "prov-1", PayerID: payer, PharmacyID: "ph-1",
			Medication: medication{Name: "Apixaban 5 mg", Code: "1364445", Category: category},
		},
	}
}

// events are one of each input event, at increasing times, for rx-1's
// prior authorization.
func events() map[string]event {
	id := PriorAuthID("rx-1")
	at := func(h int) time.Time { return t0.Add(time.Duration(h) * time.Hour) }
	evs := map[string]event{
		"prescription":  prescriptionEvent("PAYER001", "anticoagulant"),
		"documentation": {Topic: TopicDocumentationAssembled, PriorAuthID: id, At: at(1), Documents: []byte(`[{"type":"lab-results"}]`)},
		"submission": {Topic: TopicSubmissionCompleted, PriorAuthID: id, At: at(2),
			Submission: &submission{SubmissionID: "sub-1", SubmissionDate: at(2).Format(time.RFC3339), Method: "ELECTRONIC"}},
		"communication": {Topic: TopicCommunicationCompleted, PriorAuthID: id, At: at(5), Channels: []string{"EHR", "PORTAL"}},
	}
	for _, s := range []Status{StatusApproved, StatusDenied, StatusPended, StatusPartiallyApproved, StatusCancelled} {
		evs[string(s)] = event{Topic: TopicDeterminationReceived, PriorAuthID: id, At: at(3),
			Determination: &determination{Status: s, Date: at(3).Format(time.RFC3339)}}
	}
	return evs
}

// replay applies the named events in order from no record.
func replay(t *testing.T, c *Config, names ...string) *record {
	t.Helper()
	evs := events()
	var rec *record
	for _, n := range names {
		ev := evs[n]
		st, err := c.apply(rec, &ev)
		if err != nil || st.Record == nil {
			t.Fatalf("replaying %v: %s: %v (duplicate %v)", names, n, err, st.Duplicate)
		}
		rec = st.Record
	}
	return rec
}

// TestTransitions tries every event in every state: the new status, a
// duplicate, or an error.
func TestTransitions(t *testing.T) {
	c := DefaultConfig()
	states := []struct {
		name string
		path []string
	}{
		{"none", nil},
		{"INITIATED", []string{"prescription"}},
		{"DOCUMENTATION_ASSEMBLED", []string{"prescription", "documentation"}},
		{"SUBMITTED", []string{"prescription", "documentation", "submission"}},
		{"PENDED", []string{"prescription", "documentation", "submission", "PENDED"}},
		{"APPROVED", []string{"prescription", "documentation", "submission", "APPROVED"}},
		{"APPROVED after PENDED", []string{"prescription", "documentation", "submission", "PENDED", "APPROVED"}},
		{"DENIED", []string{"prescription", "documentation", "submission", "DENIED"}},
		{"DETERMINATION_COMMUNICATED", []string{"prescription", "documentation", "submission", "APPROVED", "communication"}},
	}
	const dup, bad, park, late = "duplicate", "error", "parked", "late"
	// want[state][event]: the status reached, dup, park, late or bad.
	// The determinations are all dated alike: one the case has moved
	// past is late, never an error (issue 18).
	want := map[string]map[string]string{
		"none": {"prescription": "INITIATED", "documentation": bad, "submission": bad, "APPROVED": bad, "DENIED": bad,
			"PENDED": bad, "PARTIALLY_APPROVED": bad, "CANCELLED": bad, "communication": bad},
		"INITIATED": {"prescription": dup, "documentation": "DOCUMENTATION_ASSEMBLED", "submission": bad, "APPROVED": park,
			"DENIED": park, "PENDED": park, "PARTIALLY_APPROVED": park, "CANCELLED": park, "communication": bad},
		"DOCUMENTATION_ASSEMBLED": {"prescription": dup, "documentation": dup, "submission": "SUBMITTED", "APPROVED": park,
			"DENIED": park, "PENDED": park, "PARTIALLY_APPROVED": park, "CANCELLED": park, "communication": bad},
		"SUBMITTED": {"prescription": dup, "documentation": dup, "submission": dup, "APPROVED": "APPROVED", "DENIED": "DENIED",
			"PENDED": "PENDED", "PARTIALLY_APPROVED": "PARTIALLY_APPROVED", "CANCELLED": "CANCELLED", "communication": bad},
		"PENDED": {"prescription": dup, "documentation": dup, "submission": dup, "APPROVED": "APPROVED", "DENIED": "DENIED",
			"PENDED": dup, "PARTIALLY_APPROVED": "PARTIALLY_APPROVED", "CANCELLED": "CANCELLED", "communication": bad},
		"APPROVED": {"prescription": dup, "documentation": dup, "submission": dup, "APPROVED": dup, "DENIED": late,
			"PENDED": late, "PARTIALLY_APPROVED": late, "CANCELLED": late, "communication": "DETERMINATION_COMMUNICATED"},
		"APPROVED after PENDED": {"prescription": dup, "documentation": dup, "submission": dup, "APPROVED": dup, "DENIED": late,
			"PENDED": dup, "PARTIALLY_APPROVED": late, "CANCELLED": late, "communication": "DETERMINATION_COMMUNICATED"},
		"DENIED": {"prescription": dup, "documentation": dup, "submission": dup, "APPROVED": late, "DENIED": dup,
			"PENDED": late, "PARTIALLY_APPROVED": late, "CANCELLED": late, "communication": "DETERMINATION_COMMUNICATED"},
		"DETERMINATION_COMMUNICATED": {"prescription": dup, "documentation": dup, "submission": dup, "APPROVED": dup,
			"DENIED": late, "PENDED": late, "PARTIALLY_APPROVED": late, "CANCELLED": late, "communication": dup},
	}
	evs := events()
	for _, s := range states {
		for name, w := range want[s.name] {
			t.Run(s.name+"/"+name, func(t *testing.T) {
				var rec *record
				if s.path != nil {
					rec = replay(t, &c, s.path...)
				}
				ev := evs[name]
				st, err := c.apply(rec, &ev)
				switch w {
				case dup:
					if err != nil || !st.Duplicate || st.Record != nil || len(st.Outputs) != 0 {
						t.Fatalf("got %+v, %v; want a duplicate that changes nothing", st, err)
					}
				case park:
					if err != nil || st.Record == nil || st.Record.Status != rec.Status || len(st.Outputs) != 0 ||
						len(st.Record.Parked) != 1 || len(rec.Parked) != 0 {
						t.Fatalf("got %+v, %v; want the determination parked, status unchanged, nothing emitted", st, err)
					}
				case late:
					checkLate(t, rec, st, err)
				case bad:
					var re *pipeline.RecordError
					if !errors.As(err, &re) || re.Type != pipeline.TypeInvalid {
						t.Fatalf("got %+v, %v; want an invalid-record error", st, err)
					}
				default:
					if err != nil || st.Record == nil || string(st.Record.Status) != w {
						t.Fatalf("got %+v, %v; want status %s", st.Record, err, w)
					}
					h := st.Record.StatusHistory
					if h[len(h)-1].Status != Status(w) || h[len(h)-1].Actor != actor {
						t.Errorf("history ends %+v", h[len(h)-1])
					}
					if rec != nil && len(rec.StatusHistory) != len(h)-1 {
						t.Errorf("the transition modified the previous record's history")
					}
				}
			})
		}
	}
}

func topics(outs []output) []string {
	var ts []string
	for _, o := range outs {
		ts = append(ts, o.Topic)
	}
	return ts
}

func TestTransitionOutputs(t *testing.T) {
	c := DefaultConfig()
	evs := events()
	step := func(rec *record, name string) result {
		t.Helper()
		ev := evs[name]
		st, err := c.apply(rec, &ev)
		if err != nil {
			t.Fatal(err)
		}
		return st
	}
	decode := func(o output) map[string]any {
		var m map[string]any
		if err := json.Unmarshal(o.Value, &m); err != nil {
			t.Fatal(err)
		}
		return m
	}
	s1 := step(nil, "prescription")
	if got := topics(s1.Outputs); !slices.Equal(got, []string{TopicStatus, TopicDocumentationRequested}) {
		t.Fatalf("initiation emits %v", got)
	}
	doc := decode(s1.Outputs[1])
	if len(doc["requestedDocuments"].([]any)) != 5 || doc["payerId"] != "PAYER001" || doc["priorAuthId"] != PriorAuthID("rx-1") {
		t.Errorf("documentation request %v", doc)
	}
	if !s1.Record.Urgent || s1.Record.CorrelationID != "corr-rx-1" {
		t.Errorf("record %+v: want urgent (anticoagulant) and the prescription's correlation id", s1.Record)
	}

	s2 := step(s1.Record, "documentation")
	sub := decode(s2.Outputs[1])
	if sub["submissionMethod"] != "ELECTRONIC" || sub["urgent"] != true || sub["payerId"] != "PAYER001" || sub["documents"] == nil {
		t.Errorf("submission request %v: payer and urgency come from the stored record", sub)
	}

	s3 := step(s2.Record, "submission")
	if got := topics(s3.Outputs); !slices.Equal(got, []string{TopicStatus}) || s3.Record.Submission.SubmissionID != "sub-1" {
		t.Errorf("submission: %v, %+v", got, s3.Record.Submission)
	}
	pend := step(s3.Record, "PENDED")
	if got := topics(pend.Outputs); !slices.Equal(got, []string{TopicStatus}) {
		t.Errorf("PENDED emits %v, want the status only: it waits for another determination", got)
	}
	s4 := step(pend.Record, "APPROVED")
	comm := decode(s4.Outputs[1])
	if topics(s4.Outputs)[1] != TopicCommunicationRequested || comm["determinationStatus"] != "APPROVED" || len(comm["recipients"].([]any)) != 3 {
		t.Errorf("communication request %v", comm)
	}
	s5 := step(s4.Record, "communication")
	var done workflowCompleted
	if err := json.Unmarshal(s5.Outputs[1].Value, &done); err != nil {
		t.Fatal(err)
	}
	var names []Status
	for _, st := range done.WorkflowSummary.Steps {
		names = append(names, st.Name)
	}
	wantNames := []Status{StatusInitiated, StatusDocumentationAssembled, StatusSubmitted, StatusPended, StatusApproved, StatusDeterminationCommunicated}
	if !slices.Equal(names, wantNames) || done.WorkflowSummary.TotalDuration != "PT5H" || done.WorkflowSummary.TotalSeconds != 5*3600 {
		t.Errorf("summary %+v, want steps %v over PT5H", done.WorkflowSummary, wantNames)
	}
	var last statusChanged
	if err := json.Unmarshal(s5.Outputs[0].Value, &last); err != nil {
		t.Fatal(err)
	}
	if last.Status != StatusDeterminationCommunicated || last.PreviousStatus != StatusApproved || !strings.Contains(last.Reason, "EHR, PORTAL") {
		t.Errorf("last status change %+v", last)
	}
}

func TestSubmissionMethodAndUrgency(t *testing.T) {
	c := DefaultConfig()
	for _, tt := range []struct {
		payer, category, method string
		urgent                  bool
	}{
		{"PAYER001", "insulin", "ELECTRONIC", true},
		{"PAYER003", "Antibiotic", "FAX", true},
		{"PAYER004", "statin", "PORTAL", false},
		{"PAYER999", "antibiotic-like", "FAX", false},
	} {
		t.Run(fmt.Sprint(tt.payer, "/", tt.category), func(t *testing.T) {
			ev := prescriptionEvent(tt.payer, tt.category)
			s1, err := c.apply(nil, &ev)
			if err != nil {
				t.Fatal(err)
			}
			doc := events()["documentation"]
			s2, err := c.apply(s1.Record, &doc)
			if err != nil {
				t.Fatal(err)
			}
			var sub submissionRequested
			if err := json.Unmarshal(s2.Outputs[1].Value, &sub); err != nil {
				t.Fatal(err)
			}
			if sub.SubmissionMethod != tt.method || sub.Urgent != tt.urgent {
				t.Errorf("method %s urgent %v, want %s %v", sub.SubmissionMethod, sub.Urgent, tt.method, tt.urgent)
			}
		})
	}
}

func TestPriorAuthIDIsDeterministic(t *testing.T) {
	ids := []string{PriorAuthID("rx-1"), PriorAuthID("rx-1"), PriorAuthID("rx-2")}
	if ids[0] != ids[1] || ids[0] == ids[2] || !strings.HasPrefix(ids[0], "pa-") {
		t.Error("prior-auth ids are not a function of the prescription id")
	}
}

func TestISODuration(t *testing.T) {
	for d, want := range map[time.Duration]string{0: "PT0S", 47*time.Hour + 45*time.Minute: "PT47H45M", 90 * time.Second: "PT1M30S", 1500 * time.Millisecond: "PT1.5S"} {
		if got := isoDuration(d); got != want {
			t.Errorf("%v: %s, want %s", d, got, want)
		}
	}
}

func TestTimers(t *testing.T) {
	c := DefaultConfig()
	evs := events()
	// Submitted at t0+2h, ELECTRONIC (PAYER001), urgent (anticoagulant):
	// deadline at +24h, status checks every 4h.
	sub := replay(t, &c, "prescription", "documentation", "submission")
	submitted := t0.Add(2 * time.Hour)
	if len(sub.Timers) != 2 {
		t.Fatalf("timers after submission %+v, want the deadline and a status check", sub.Timers)
	}
	if st := c.fire(sub, submitted.Add(4*time.Hour-time.Second)); st.Record != nil {
		t.Fatalf("fired before anything was due: %+v", st.Outputs)
	}

	st := c.fire(sub, submitted.Add(4*time.Hour))
	if got := topics(st.Outputs); !slices.Equal(got, []string{TopicStatusCheckRequested}) {
		t.Fatalf("at +4h: %v, want one status check", got)
	}
	var check statusCheckRequested
	if err := json.Unmarshal(st.Outputs[0].Value, &check); err != nil || check.CheckNumber != 1 || check.SubmissionID != "sub-1" {
		t.Fatalf("status check %+v, %v", check, err)
	}
	// The next check is scheduled from this one's due time.
	rec := st.Record
	if due, _ := rec.nextDue(); !due.Equal(submitted.Add(8 * time.Hour)) {
		t.Errorf("next timer due %v, want %v", due, submitted.Add(8*time.Hour))
	}

	// Far past the deadline: the breach fires once, with the checks due.
	st = c.fire(rec, submitted.Add(25*time.Hour))
	if got := topics(st.Outputs); !slices.Contains(got, TopicSLABreached) {
		t.Fatalf("at +25h: %v, want the SLA breach", got)
	}
	var breach slaBreached
	for _, o := range st.Outputs {
		if o.Topic == TopicSLABreached {
			if err := json.Unmarshal(o.Value, &breach); err != nil {
				t.Fatal(err)
			}
		}
	}
	if breach.Urgency != "expedited" || breach.Deadline != formatTime(submitted.Add(24*time.Hour)) || breach.Status != StatusSubmitted {
		t.Errorf("breach %+v", breach)
	}
	again := c.fire(st.Record, submitted.Add(25*time.Hour))
	if slices.Contains(topics(again.Outputs), TopicSLABreached) {
		t.Error("the breach fired twice")
	}
	// The checks missed between +8h and +25h are skipped, not burst: one
	// check fired, the next due at +28h.
	if n := len(topics(st.Outputs)); n != 2 {
		t.Errorf("at +25h: %v, want the breach and one status check", topics(st.Outputs))
	}
	if due, _ := st.Record.nextDue(); !due.Equal(submitted.Add(28 * time.Hour)) {
		t.Errorf("next check due %v, want %v", due, submitted.Add(28*time.Hour))
	}

	// A final determination stops deadline and checks; an approval with
	// an expiration date expires.
	exp := t0.Add(90 * 24 * time.Hour)
	approve := evs["APPROVED"]
	approve.Determination.ExpirationDate = exp.Format(time.RFC3339)
	ap, err := c.apply(st.Record, &approve)
	if err != nil {
		t.Fatal(err)
	}
	if len(ap.Record.Timers) != 1 || ap.Record.Timers[0].Kind != timerExpiry {
		t.Fatalf("timers after approval %+v, want the expiry alone", ap.Record.Timers)
	}
	ex := c.fire(ap.Record, exp)
	if ex.Record == nil || ex.Record.Status != StatusExpired || !slices.Equal(topics(ex.Outputs), []string{TopicStatus}) {
		t.Fatalf("at expiry: %+v %v", ex.Record, topics(ex.Outputs))
	}
	// Expired is settled: the purge timer alone remains.
	if tm := ex.Record.Timers; len(tm) != 1 || tm[0].Kind != timerPurge || tm[0].Due != formatTime(exp.Add(c.Retention)) {
		t.Fatalf("timers after expiry %+v, want the purge at the expiry plus the retention", tm)
	}

	t.Run("a settled prior authorization is purged after the retention", func(t *testing.T) {
		done := replay(t, &c, "prescription", "documentation", "submission", "DENIED", "communication")
		settled := events()["communication"].At
		if tm := done.Timers; len(tm) != 1 || tm[0].Kind != timerPurge || tm[0].Due != formatTime(settled.Add(c.Retention)) {
			t.Fatalf("timers once communicated %+v, want the purge alone", tm)
		}
		if st := c.fire(done, settled.Add(c.Retention-time.Second)); st.Purge || st.Record != nil {
			t.Fatalf("before the retention passed: %+v", st)
		}
		if st := c.fire(done, settled.Add(c.Retention)); !st.Purge || len(st.Outputs) != 0 {
			t.Fatalf("at the retention's end: %+v, want a purge and nothing emitted", st)
		}
		// A repeated communication while it waits is a duplicate: no new
		// state, so its one timer stands.
		if st, err := c.apply(done, ptr(events()["communication"])); err != nil || !st.Duplicate {
			t.Fatalf("a repeated communication: %+v, %v", st, err)
		}
		// Retention 0 keeps it, and keeps one whose purge was set before
		// the retention was turned off.
		keep := c
		keep.Retention = 0
		if kept := replay(t, &keep, "prescription", "documentation", "submission", "DENIED", "communication"); len(kept.Timers) != 0 {
			t.Fatalf("timers with retention 0: %+v, want none", kept.Timers)
		}
		if st := keep.fire(done, settled.Add(c.Retention)); st.Purge || st.Record == nil || len(st.Record.Timers) != 0 {
			t.Fatalf("a purge timer firing with retention 0: %+v, want the record kept without the timer", st)
		}
	})
	t.Run("pended keeps checking", func(t *testing.T) {
		p, err := c.apply(sub, ptr(evs["PENDED"]))
		if err != nil {
			t.Fatal(err)
		}
		if len(p.Record.Timers) != 2 {
			t.Errorf("timers while PENDED %+v, want the deadline and checks", p.Record.Timers)
		}
	})
	t.Run("non-electronic submissions are not checked", func(t *testing.T) {
		ev := prescriptionEvent("PAYER003", "statin")
		s1, _ := c.apply(nil, &ev)
		s2, _ := c.apply(s1.Record, ptr(evs["documentation"]))
		fax := evs["submission"]
		fax.Submission = &submission{SubmissionID: "sub-2", Method: "FAX"}
		s3, err := c.apply(s2.Record, &fax)
		if err != nil {
			t.Fatal(err)
		}
		if len(s3.Record.Timers) != 1 || s3.Record.Timers[0].Kind != timerSLA || s3.Record.Timers[0].Due != formatTime(fax.At.Add(72*time.Hour)) {
			t.Errorf("timers %+v, want the standard 72 h deadline alone", s3.Record.Timers)
		}
	})
}

func ptr[T any](v T) *T { return &v }

// TestParkedDeterminations: determinations read before the submission (they
// travel on another topic) wait in the record and apply, in order, when the
// submission does; a parked one sent again is a duplicate.
func TestParkedDeterminations(t *testing.T) {
	c := DefaultConfig()
	evs := events()
	rec := replay(t, &c, "prescription", "documentation")
	for _, name := range []string{"PENDED", "PENDED", "APPROVED"} {
		st, err := c.apply(rec, ptr(evs[name]))
		if err != nil {
			t.Fatal(err)
		}
		if st.Duplicate {
			continue
		}
		rec = st.Record
	}
	if len(rec.Parked) != 2 {
		t.Fatalf("parked %+v, want PENDED then APPROVED", rec.Parked)
	}
	st, err := c.apply(rec, ptr(evs["submission"]))
	if err != nil {
		t.Fatal(err)
	}
	var steps []Status
	for _, h := range st.Record.StatusHistory {
		steps = append(steps, h.Status)
	}
	want := []Status{StatusInitiated, StatusDocumentationAssembled, StatusSubmitted, StatusPended, StatusApproved}
	if !slices.Equal(steps, want) || len(st.Record.Parked) != 0 {
		t.Fatalf("history %v (parked %v), want %v", steps, st.Record.Parked, want)
	}
	if got := topics(st.Outputs); !slices.Equal(got, []string{TopicStatus, TopicStatus, TopicStatus, TopicCommunicationRequested}) {
		t.Errorf("outputs %v", got)
	}
	if len(st.Record.Timers) != 0 {
		t.Errorf("timers %+v after a final determination, want none", st.Record.Timers)
	}
}
