package alerts

import (
	"bytes"
	"encoding/json"
	"testing"
)

// BenchmarkEncode is the hand-written encoders alone, on the records the
// alerting fixture (134/min, with the patient table) makes: its
// heart-rate-high alert, its NEWS2 alert (sub-scores, missing parameters),
// a history record and a notification (which carries the alert whole). The
// values are read back from the processor's own output, so the strings,
// numbers and care team are what production encodes. They append into one
// reused buffer, so allocations are the encoders' own (emit's per-alert
// buffers are counted in BenchmarkEvaluate). Reproduce with
//
//	go test ./pipeline/alerts -run '^$' -bench Encode -benchmem -count 5
func BenchmarkEncode(b *testing.B) {
	p := newProcessor(b)
	out, err := p.handle(benchRecords(b)["alerting_envelope"], patients(b), nil)
	if err != nil {
		b.Fatal(err)
	}
	if len(out.Alerts) != 2 {
		b.Fatalf("got %d alerts, want the fixture's 2", len(out.Alerts))
	}
	byRule := map[string]*Alert{}
	for i := range out.Alerts {
		byRule[out.Alerts[i].RuleID] = &out.Alerts[i]
	}
	hr, news2 := byRule["heart-rate-high"], byRule["news2"]
	if hr == nil || news2 == nil || news2.NEWS2 == nil || len(hr.CareTeam) == 0 {
		b.Fatal("fixture changed: want a heart-rate-high alert with a care team and a news2 alert with its detail")
	}
	var h HistoryRecord
	var n Notification
	for _, r := range out.Records {
		// The first record of each kind: the heart-rate-high alert's.
		switch {
		case r.Topic == TopicAlerts && bytes.Contains(r.Value, []byte(`"ruleId":"heart-rate-high"`)):
			sameBytes(b, appendAlert(nil, hr), r.Value)
		case r.Topic == TopicHistory && h.AlertID == "":
			readBack(b, r.Value, &h)
			sameBytes(b, appendHistory(nil, &h), r.Value)
		case r.Topic != TopicAlerts && r.Topic != TopicHistory && n.AlertID == "":
			readBack(b, r.Value, &n)
			sameBytes(b, appendNotification(nil, &n), r.Value)
		}
	}
	if h.AlertID == "" || n.AlertID == "" {
		b.Fatal("fixture changed: no history record or notification")
	}
	cases := []struct {
		name string
		enc  func([]byte) []byte
	}{
		{"alert", func(buf []byte) []byte { return appendAlert(buf, hr) }},
		{"alert_news2", func(buf []byte) []byte { return appendAlert(buf, news2) }},
		{"history", func(buf []byte) []byte { return appendHistory(buf, &h) }},
		{"notification", func(buf []byte) []byte { return appendNotification(buf, &n) }},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			buf := c.enc(nil)
			b.SetBytes(int64(len(buf)))
			b.ReportAllocs()
			for b.Loop() {
				buf = c.enc(buf[:0])
			}
			reportRate(b)
		})
	}
}

func readBack(b *testing.B, value []byte, v any) {
	b.Helper()
	if err := json.Unmarshal(value, v); err != nil {
		b.Fatal(err)
	}
}

// sameBytes checks that a value read back from an output record encodes to
// that record: otherwise the benchmark would measure values production
// does not write.
func sameBytes(b *testing.B, got, want []byte) {
	b.Helper()
	if !bytes.Equal(got, want) {
		b.Fatalf("re-encoded value differs from the output record:\n got %s\nwant %s", got, want)
	}
}
