package priorauth

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/carepipe/carepipe/pipeline"
)

// checkLate checks a late event's step: no error, the status unchanged,
// nothing emitted, one late entry added to the history.
func checkLate(t *testing.T, rec *record, st result, err error) {
	t.Helper()
	if err != nil || !st.Late || st.Record == nil || len(st.Outputs) != 0 {
		t.Fatalf("got %+v, %v; want a late event: recorded, nothing emitted", st, err)
	}
	h := st.Record.StatusHistory
	if st.Record.Status != rec.Status || len(h) != len(rec.StatusHistory)+1 {
		t.Fatalf("status %s, history %d entries; want %s kept and one entry added", st.Record.Status, len(h), rec.Status)
	}
	if e := h[len(h)-1]; !e.Late || e.Status != rec.Status || e.Actor != actor || e.Reason == "" {
		t.Errorf("late entry %+v", e)
	}
}

// Issue 18: an event the case has moved past is recorded, not an error;
// an event that cannot be processed still is.
func TestLateEvents(t *testing.T) {
	c := DefaultConfig()
	evs := events()
	approved := replay(t, &c, "prescription", "documentation", "submission", "APPROVED")
	decided := evs["APPROVED"].At
	determination := func(s Status, at time.Time) *event {
		ev := evs[string(s)]
		ev.At = at
		d := *ev.Determination
		ev.Determination = &d
		return &ev
	}

	t.Run("PENDED dated before the final determination", func(t *testing.T) {
		st, err := c.apply(approved, determination(StatusPended, decided.Add(-time.Hour)))
		checkLate(t, approved, st, err)
		e := st.Record.StatusHistory[len(st.Record.StatusHistory)-1]
		if e.Timestamp != formatTime(decided.Add(-time.Hour)) || !strings.Contains(e.Reason, "PENDED") || !strings.Contains(e.Reason, "APPROVED") {
			t.Errorf("entry %+v: want the event's own date and both statuses named", e)
		}
		// The same late event again is a repeat.
		again, err := c.apply(st.Record, determination(StatusPended, decided.Add(-time.Hour)))
		if err != nil || !again.Duplicate {
			t.Fatalf("the late event again: %+v, %v; want a duplicate", again, err)
		}
	})
	t.Run("PENDED dated after the final determination", func(t *testing.T) {
		// A pend cannot follow a decision: it is late whatever its date.
		st, err := c.apply(approved, determination(StatusPended, decided.Add(time.Hour)))
		checkLate(t, approved, st, err)
	})
	t.Run("another final determination dated before", func(t *testing.T) {
		st, err := c.apply(approved, determination(StatusDenied, decided.Add(-time.Minute)))
		checkLate(t, approved, st, err)
	})
	t.Run("another final determination dated after is an error", func(t *testing.T) {
		// A reversal: the state machine does not undo a decision that
		// may have been communicated.
		_, err := c.apply(approved, determination(StatusDenied, decided.Add(time.Minute)))
		var re *pipeline.RecordError
		if !errors.As(err, &re) || re.Type != pipeline.TypeInvalid || !strings.Contains(err.Error(), "not reversed") {
			t.Fatalf("error %v, want an invalid record saying a decision is not reversed", err)
		}
	})
	t.Run("communication report after the approval expired", func(t *testing.T) {
		ap := evs["APPROVED"]
		d := *ap.Determination
		d.ExpirationDate = formatTime(decided.Add(time.Hour))
		d.ExpiresAt = d.ExpirationDate
		ap.Determination = &d
		st, err := c.apply(replay(t, &c, "prescription", "documentation", "submission"), &ap)
		if err != nil {
			t.Fatal(err)
		}
		ex := c.fire(st.Record, decided.Add(time.Hour))
		if ex.Record == nil || ex.Record.Status != StatusExpired {
			t.Fatalf("expiry: %+v", ex.Record)
		}
		comm := evs["communication"]
		late, err := c.apply(ex.Record, &comm)
		checkLate(t, ex.Record, late, err)
		if r := late.Record.StatusHistory[len(late.Record.StatusHistory)-1].Reason; !strings.Contains(r, "EHR, PORTAL") || !strings.Contains(r, "expired") {
			t.Errorf("reason %q", r)
		}
		if again, err := c.apply(late.Record, &comm); err != nil || !again.Duplicate {
			t.Fatalf("the report again: %+v, %v; want a duplicate", again, err)
		}
	})
	t.Run("communication report before any determination is still an error", func(t *testing.T) {
		sub := replay(t, &c, "prescription", "documentation", "submission")
		_, err := c.apply(sub, ptr(evs["communication"]))
		var re *pipeline.RecordError
		if !errors.As(err, &re) || re.Type != pipeline.TypeInvalid {
			t.Fatalf("error %v, want an invalid record: it comes too early to be processed", err)
		}
	})
	t.Run("late entries stay out of the workflow summary", func(t *testing.T) {
		st, err := c.apply(approved, determination(StatusPended, decided.Add(-time.Hour)))
		if err != nil {
			t.Fatal(err)
		}
		done, err := c.apply(st.Record, ptr(evs["communication"]))
		if err != nil {
			t.Fatal(err)
		}
		ws := summarise(done.Record)
		var names []Status
		for _, s := range ws.Steps {
			names = append(names, s.Name)
		}
		want := []Status{StatusInitiated, StatusDocumentationAssembled, StatusSubmitted, StatusApproved, StatusDeterminationCommunicated}
		if !slices.Equal(names, want) || ws.TotalDuration != "PT5H" {
			t.Errorf("summary %v over %s, want %v over PT5H", names, ws.TotalDuration, want)
		}
	})
}

// TestLateEventsOnProcessor runs late events through the processor's
// real Process on the harness: no error (so nothing for the error topic),
// nothing emitted, the stale-events metric counted by kind.
func TestLateEventsOnProcessor(t *testing.T) {
	set := metrics.NewSet()
	p, err := New(WithMetrics(set))
	if err != nil {
		t.Fatal(err)
	}
	h, err := pipeline.NewHarness(p.Spec())
	if err != nil {
		t.Fatal(err)
	}
	id := PriorAuthID("rx-7")
	send := func(topic, value string) []*kgo.Record {
		t.Helper()
		out, err := h.Process(&kgo.Record{Topic: topic, Key: []byte(id), Value: []byte(value), Timestamp: t0})
		if err != nil {
			t.Fatalf("%s: %v", topic, err)
		}
		return out
	}
	// The prescription arrives keyed by the prior-auth id on the one
	// partition, so it is not re-keyed.
	send(TopicPrescriptions, `{"prescriptionId":"rx-7","patientId":"pat-1","providerId":"prov-1","medication":{"name":"Warfarin","code":"11289","category":"Blood Thinners"},"payerId":"PAYER002"}`)
	send(TopicDocumentationAssembled, `{"priorAuthId":"`+id+`","documents":[]}`)
	send(TopicSubmissionCompleted, `{"priorAuthId":"`+id+`","submissionId":"s-1","submissionDate":"2025-03-01T10:00:00Z","submissionMethod":"ELECTRONIC"}`)
	send(TopicDeterminationReceived, `{"priorAuthId":"`+id+`","determinationStatus":"APPROVED","determinationDate":"2025-03-01T12:00:00-0500","expirationDate":"2025-03-02"}`)

	stale := func(kind string) uint64 {
		return set.GetOrCreateCounter(`carepipe_priorauth_stale_events_total{pipeline="priorauth",kind="` + kind + `"}`).Get()
	}
	if out := send(TopicDeterminationReceived, `{"priorAuthId":"`+id+`","determinationStatus":"PENDED","determinationDate":"2025-03-01"}`); len(out) != 0 {
		t.Fatalf("a late PENDED emitted %d records", len(out))
	}
	if n := stale("determination"); n != 1 {
		t.Errorf("stale determinations %d, want 1", n)
	}
	rec, err := lookupStored(h, id)
	if err != nil {
		t.Fatal(err)
	}
	if rec.Status != StatusApproved || !rec.StatusHistory[len(rec.StatusHistory)-1].Late || !rec.Urgent {
		t.Errorf("stored %s, history ends %+v, urgent %v; want APPROVED, a late entry, and urgent (Blood Thinners)", rec.Status, rec.StatusHistory[len(rec.StatusHistory)-1], rec.Urgent)
	}
	// The date-only expiration: the end of 2025-03-02 in UTC.
	if len(rec.Timers) != 1 || rec.Timers[0].Kind != timerExpiry || rec.Timers[0].Due != "2025-03-03T00:00:00Z" {
		t.Errorf("timers %+v, want the expiry at 2025-03-03T00:00:00Z", rec.Timers)
	}
	// A repeat counts as a duplicate, not as stale again.
	send(TopicDeterminationReceived, `{"priorAuthId":"`+id+`","determinationStatus":"PENDED","determinationDate":"2025-03-01"}`)
	if n := stale("determination"); n != 1 {
		t.Errorf("stale determinations %d after a repeat, want still 1", n)
	}
}

func lookupStored(h *pipeline.Harness, id string) (*record, error) {
	b, ok := h.Store(StorePriorAuths).Get(id)
	if !ok {
		return nil, errors.New("no stored record")
	}
	return decodeRecord(b)
}
