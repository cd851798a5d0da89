package scenarios

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/carepipe/carepipe/pipeline/alerts"
	"github.com/carepipe/carepipe/pipeline/envelope"
	"github.com/carepipe/carepipe/pipeline/priorauth"
	"github.com/carepipe/carepipe/sim"
)

// W3C Trace Context (W3C Recommendation, 23 November 2021,
// https://www.w3.org/TR/trace-context/): the traceparent of section 3.2.3
// "Examples of HTTP traceparent Headers" (a sampled request), and the
// tracestate of "Examples of tracestate HTTP Headers" (multiple tracing
// systems).
const (
	w3cTraceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	w3cTracestate  = "rojo=00f067aa0ba902b7,congo=t61rcWkgMzE"
)

// Issue 20: traceparent arrives on the derived records. Half the
// observations bring trace context (the W3C's example on the first that
// raises an alert, a traceparent of their own on the others), half bring
// none. Every record the alerts pipeline derives, on clinical.alerts, the
// history and the notification channels, carries exactly its own
// observation's traceparent and tracestate, or none; observations keyed
// by something other than their patient go through the repartition topic
// first, and theirs arrive too.
func TestAlertsTraceContextArrivesOnDerivedRecords(t *testing.T) {
	w := newAlertsWorld(t)
	g := workload(t, 20, 0)
	w.produce(g.PatientRecords())
	recs, truths := g.NextN(2000)

	traceparent := map[string]string{} // observation id -> its traceparent
	index := map[string]int{}          // observation id -> its input
	w3cGiven := false
	for i, r := range recs {
		obs := truths[i].ObservationID
		index[obs] = i
		if i%2 == 1 {
			continue
		}
		tp := fmt.Sprintf("00-%032x-%016x-01", 0xca5e0000+i, 0xb7ad0000+i)
		if !w3cGiven && len(truths[i].Rules) > 0 {
			tp, w3cGiven = w3cTraceparent, true
		}
		traceparent[obs] = tp
		r.Headers = append(r.Headers,
			kgo.RecordHeader{Key: "traceparent", Value: []byte(tp)},
			kgo.RecordHeader{Key: "tracestate", Value: []byte(w3cTracestate)})
	}
	if !w3cGiven {
		t.Fatal("no observation of the workload raises an alert")
	}

	in := w.start("")
	w.produce(recs)
	w.waitIdle(60 * time.Second)
	if err := in.Stop(); err != nil {
		t.Fatal(err)
	}

	var (
		withTrace, withoutTrace, misKeyedWithTrace int
		w3cArrived                                 bool
	)
	check := func(topic string, r *kgo.Record, obs string) {
		t.Helper()
		i, ok := index[obs]
		if !ok {
			t.Errorf("%s: record of unknown observation %q", topic, obs)
			return
		}
		var tps, tss []string
		for _, h := range r.Headers {
			switch h.Key {
			case "traceparent":
				tps = append(tps, string(h.Value))
			case "tracestate":
				tss = append(tss, string(h.Value))
			}
		}
		want, traced := traceparent[obs]
		switch {
		case !traced && (len(tps) != 0 || len(tss) != 0):
			t.Errorf("%s, observation %d without trace context: traceparent %q, tracestate %q", topic, i, tps, tss)
		case traced && (len(tps) != 1 || tps[0] != want || len(tss) != 1 || tss[0] != w3cTracestate):
			t.Errorf("%s, observation %d: traceparent %q, tracestate %q; want [%s] and [%s]", topic, i, tps, tss, want, w3cTracestate)
		case traced:
			withTrace++
			w3cArrived = w3cArrived || want == w3cTraceparent
			if truths[i].MisKeyed {
				misKeyedWithTrace++
			}
		default:
			withoutTrace++
		}
	}
	for _, r := range w.readAll(alerts.TopicAlerts) {
		var a alerts.Alert
		if err := json.Unmarshal(r.Value, &a); err != nil {
			t.Fatal(err)
		}
		check(alerts.TopicAlerts, r, a.ObservationID)
	}
	for _, r := range w.readAll(alerts.TopicHistory) {
		var h alerts.HistoryRecord
		if err := json.Unmarshal(r.Value, &h); err != nil {
			t.Fatal(err)
		}
		check(alerts.TopicHistory, r, h.ObservationID)
	}
	notifications := 0
	for _, topic := range []string{alerts.TopicMobile, alerts.TopicEmail} {
		for _, r := range w.readAll(topic) {
			var n alerts.Notification
			var a alerts.Alert
			if err := json.Unmarshal(r.Value, &n); err != nil {
				t.Fatal(err)
			}
			if err := json.Unmarshal(n.Alert, &a); err != nil {
				t.Fatal(err)
			}
			check(topic, r, a.ObservationID)
			notifications++
		}
	}
	if !w3cArrived {
		t.Error("the W3C example traceparent arrived on no derived record")
	}
	// What the scenario covers: both kinds of input, the repartition
	// path, and the notification channels.
	if withTrace == 0 || withoutTrace == 0 || misKeyedWithTrace == 0 || notifications == 0 {
		t.Errorf("derived records checked: %d with trace context, %d without, %d of mis-keyed observations, %d notifications; want some of each",
			withTrace, withoutTrace, misKeyedWithTrace, notifications)
	}
	if errs := w.readAll(w.spec.ErrorTopic); len(errs) != 0 {
		t.Errorf("%d records in the error topic, want none", len(errs))
	}
	t.Logf("derived records checked: %d with trace context (%d of mis-keyed observations), %d without; %d notifications",
		withTrace, misKeyedWithTrace, withoutTrace, notifications)
}

// The same on the prior authorization pipeline: each prescription's trace
// context arrives on the documentation request derived from it, keyed by
// the prior authorization id. The later requests derive from the payer's
// and the EHR's answers, which the simulated systems send without trace
// context, as an outside system that does not trace would.
func TestPriorAuthTraceContextArrivesOnDerivedRecords(t *testing.T) {
	w := newPAWorld(t, sim.PriorAuthWorldConfig{Seed: 21, Approve: 1})
	stop := w.start("pa-trace")
	const n = 50
	recs, rxIDs := sim.PriorAuthPrescriptions(21, n)
	ids := make([]string, n)
	want := map[string]string{} // prior authorization id -> traceparent
	for i, rx := range rxIDs {
		ids[i] = priorauth.PriorAuthID(rx)
		tp := fmt.Sprintf("00-%032x-%016x-01", 0x9a0000+i, 0x9b0000+i)
		if i == 0 {
			tp = w3cTraceparent
		}
		want[ids[i]] = tp
		recs[i].Headers = append(recs[i].Headers, kgo.RecordHeader{Key: "traceparent", Value: []byte(tp)})
	}
	produceAll(t, w.prod, recs)
	w.awaitKeys(priorauth.TopicDocumentationRequested, ids)
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	seen := 0
	for _, r := range w.readToEnd(priorauth.TopicDocumentationRequested) {
		tp, ok := want[string(r.Key)]
		if !ok {
			continue
		}
		seen++
		if got := headerMap(r)["traceparent"]; got != tp {
			t.Errorf("documentation request of %s: traceparent %q, want %q", r.Key, got, tp)
		}
	}
	if seen < n {
		t.Errorf("%d documentation requests, want at least %d", seen, n)
	}
}

// Issue 23: a correlation-id header too long or not text is not carried.
// The alert takes the id derived from the observation's coordinates
// instead, in its body and its correlation-id header, also when the
// observation is keyed by something other than its patient and goes
// through the repartition topic first; an invalid
// traceparent (uppercase hex, which the Recommendation's HEXDIGLC rules
// out) is dropped; both are counted.
func TestAlertsInvalidCorrelationIDReplacedAndCounted(t *testing.T) {
	w := newAlertsWorld(t)
	bad := []string{
		strings.Repeat("c", envelope.MaxCorrelationIDBytes+1),
		"corr-1\r\nX-Forged: yes",
		"corr-\xff\xfe",
		strings.Repeat("m", 1000), // mis-keyed below
	}
	var recs []*kgo.Record
	for i, id := range bad {
		pid := fmt.Sprintf("pat-hdr-%d", i)
		r := vitalSign(pid, "pulse-"+pid, "final", "8867-4", 135, "/min", i)
		r.Headers = []kgo.RecordHeader{
			{Key: "correlation-id", Value: []byte(id)},
			{Key: "traceparent", Value: []byte(strings.ToUpper(w3cTraceparent))},
		}
		if i == len(bad)-1 {
			r.Key = []byte("pulse-" + pid)
		}
		recs = append(recs, r)
	}
	in := w.start("")
	w.produce(recs) // sets each record's partition and offset
	w.waitIdle(60 * time.Second)
	if err := in.Stop(); err != nil {
		t.Fatal(err)
	}
	derived := map[string]string{} // observation id -> the id derived for it
	for _, r := range recs {
		var obs struct{ ID string }
		if err := json.Unmarshal(r.Value, &obs); err != nil {
			t.Fatal(err)
		}
		derived[obs.ID] = envelope.DerivedCorrelationID(r.Topic, r.Partition, r.Offset)
	}
	got := w.readAll(alerts.TopicAlerts)
	if len(got) != len(bad) {
		t.Fatalf("%d alerts, want %d", len(got), len(bad))
	}
	for _, r := range got {
		var a alerts.Alert
		if err := json.Unmarshal(r.Value, &a); err != nil {
			t.Fatal(err)
		}
		h := headerMap(r)
		if want := derived[a.ObservationID]; want == "" || a.CorrelationID != want || h["correlation-id"] != want {
			t.Errorf("alert of %s: correlationId %q, header %q; want the derived %q", a.ObservationID, a.CorrelationID, h["correlation-id"], want)
		}
		if _, ok := h["traceparent"]; ok {
			t.Errorf("alert of %s carries the invalid traceparent %q", a.ObservationID, h["traceparent"])
		}
	}
	// An input processed again after an abort is counted again: at least.
	for header, atLeast := range map[string]float64{"correlation-id": float64(len(bad)), "traceparent": float64(len(bad))} {
		series := `carepipe_invalid_headers_total{pipeline="alerts",header="` + header + `"}`
		if v := metricValue(in.Runner.Metrics(), series); v < atLeast {
			t.Errorf("%s = %v, want at least %v", series, v, atLeast)
		}
	}
}

// metricValue is the value of series (name and labels as written) in set,
// -1 when set has none.
func metricValue(set *metrics.Set, series string) float64 {
	var b bytes.Buffer
	set.WritePrometheus(&b)
	for _, line := range strings.Split(b.String(), "\n") {
		if v, ok := strings.CutPrefix(line, series+" "); ok {
			if f, err := strconv.ParseFloat(v, 64); err == nil {
				return f
			}
		}
	}
	return -1
}
