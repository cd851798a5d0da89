package sim

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"math"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// paInputTopics are the topics the world consumes, paOutputTopics those it
// produces to; every test cluster creates both.
var (
	paInputTopics = []string{
		TopicPADocumentationRequested, TopicPASubmissionRequested,
		TopicPAStatusCheckRequested, TopicPACommunicationRequested,
	}
	paOutputTopics = []string{
		TopicPADocumentationAssembled, TopicPASubmissionCompleted,
		TopicPADeterminationReceived, TopicPACommunicationCompleted,
	}
)

// paFixedNow is the world's clock in tests.
var paFixedNow = time.Date(2025, 3, 4, 5, 6, 7, 0, time.UTC)

func fixedClock() time.Time { return paFixedNow }

// newPriorAuthWorld starts a world on c, closed at the end of the test
// (before c, which the caller created first).
func newPriorAuthWorld(t *testing.T, c *Cluster, cfg PriorAuthWorldConfig) *PriorAuthWorld {
	t.Helper()
	w, err := StartPriorAuthWorld(c, cfg)
	if err != nil {
		t.Fatalf("StartPriorAuthWorld: %v", err)
	}
	t.Cleanup(w.Close)
	return w
}

// waitStats waits until cond holds for the world's counters, failing the
// test when ctx ends first. It wakes on each change, it does not poll.
func waitStats(t *testing.T, ctx context.Context, w *PriorAuthWorld, cond func(PriorAuthWorldStats) bool) {
	t.Helper()
	for {
		changed := w.stats.changedCh() // before reading, so no change is missed
		s := w.Stats()
		if cond(s) {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("world counters %+v never met the condition: %v", s, ctx.Err())
		case <-changed:
		}
	}
}

func TestPriorAuthWorldConfigValidation(t *testing.T) {
	tests := []struct {
		name    string
		cfg     PriorAuthWorldConfig
		wantErr bool
	}{
		{name: "zero value"},
		{name: "full mix", cfg: PriorAuthWorldConfig{Approve: 0.7, Deny: 0.2, Partial: 0.1, Pend: 1}},
		{name: "sum rounds above one", cfg: PriorAuthWorldConfig{Approve: 0.1, Deny: 0.2, Partial: 0.7}},
		{name: "delay and expiry", cfg: PriorAuthWorldConfig{PayerDelay: time.Second, ExpireAfter: time.Hour}},
		{name: "approve above one", cfg: PriorAuthWorldConfig{Approve: 1.5}, wantErr: true},
		{name: "negative deny", cfg: PriorAuthWorldConfig{Deny: -0.1}, wantErr: true},
		{name: "NaN partial", cfg: PriorAuthWorldConfig{Partial: math.NaN()}, wantErr: true},
		{name: "pend above one", cfg: PriorAuthWorldConfig{Pend: 1.01}, wantErr: true},
		{name: "NaN pend", cfg: PriorAuthWorldConfig{Pend: math.NaN()}, wantErr: true},
		{name: "shares sum above one", cfg: PriorAuthWorldConfig{Approve: 0.6, Deny: 0.5}, wantErr: true},
		{name: "negative payer delay", cfg: PriorAuthWorldConfig{PayerDelay: -time.Millisecond}, wantErr: true},
		{name: "negative expiry", cfg: PriorAuthWorldConfig{ExpireAfter: -time.Hour}, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := tt.cfg
			if err := cfg.validate(); (err != nil) != tt.wantErr {
				t.Fatalf("validate: err = %v, wantErr %v", err, tt.wantErr)
			}
			// StartPriorAuthWorld validates before it needs a cluster.
			_, err := StartPriorAuthWorld(nil, tt.cfg)
			if err == nil {
				t.Fatal("StartPriorAuthWorld(nil cluster) succeeded, want error")
			}
			if got := strings.Contains(err.Error(), "nil cluster"); got == tt.wantErr {
				t.Fatalf("StartPriorAuthWorld(nil cluster): err = %v, want a validation error: %v", err, tt.wantErr)
			}
		})
	}
}

func TestPriorAuthWorldConfigDefaults(t *testing.T) {
	cfg := PriorAuthWorldConfig{}
	if err := cfg.validate(); err != nil {
		t.Fatalf("validate: %v", err)
	}
	if cfg.ExpireAfter != 90*24*time.Hour {
		t.Errorf("default ExpireAfter = %v, want 90 days", cfg.ExpireAfter)
	}
	if cfg.Now == nil {
		t.Error("default Now is nil, want time.Now")
	}
	kept := PriorAuthWorldConfig{ExpireAfter: time.Hour, Now: fixedClock}
	if err := kept.validate(); err != nil {
		t.Fatalf("validate: %v", err)
	}
	if kept.ExpireAfter != time.Hour || !kept.Now().Equal(paFixedNow) {
		t.Errorf("validate overrode ExpireAfter %v or Now %v", kept.ExpireAfter, kept.Now())
	}
}

func TestPriorAuthOutcome(t *testing.T) {
	const n = 10_000
	const tolerance = 0.02 // 4 standard deviations of a share of 1/2 over 10,000 draws
	tests := []struct {
		name string
		cfg  PriorAuthWorldConfig
		// want maps each final status to its expected share; absent
		// statuses must not occur.
		want map[string]float64
	}{
		{
			name: "mix with pends",
			cfg:  PriorAuthWorldConfig{Seed: 1, Approve: 0.5, Deny: 0.2, Partial: 0.1, Pend: 0.3},
			want: map[string]float64{PAStatusApproved: 0.5, PAStatusDenied: 0.2, PAStatusPartiallyApproved: 0.1, PAStatusCancelled: 0.2},
		},
		{
			name: "no cancellations when the shares sum to one",
			cfg:  PriorAuthWorldConfig{Seed: 2, Approve: 0.7, Deny: 0.2, Partial: 0.1},
			want: map[string]float64{PAStatusApproved: 0.7, PAStatusDenied: 0.2, PAStatusPartiallyApproved: 0.1},
		},
		{
			name: "all approved, all pended",
			cfg:  PriorAuthWorldConfig{Seed: 3, Approve: 1, Pend: 1},
			want: map[string]float64{PAStatusApproved: 1},
		},
		{
			name: "zero value cancels everything",
			cfg:  PriorAuthWorldConfig{},
			want: map[string]float64{PAStatusCancelled: 1},
		},
		{
			name: "only partial approvals and cancellations",
			cfg:  PriorAuthWorldConfig{Seed: 4, Partial: 0.5, Pend: 0.5},
			want: map[string]float64{PAStatusPartiallyApproved: 0.5, PAStatusCancelled: 0.5},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			counts := map[string]int{}
			pends := 0
			for i := range n {
				id := "pa-" + strconv.Itoa(i)
				final, pended := tt.cfg.PriorAuthOutcome(id)
				if f2, p2 := tt.cfg.PriorAuthOutcome(id); f2 != final || p2 != pended {
					t.Fatalf("PriorAuthOutcome(%q) = %s,%v then %s,%v", id, final, pended, f2, p2)
				}
				counts[final]++
				if pended {
					pends++
				}
			}
			for status, c := range counts {
				share, ok := tt.want[status]
				if !ok {
					t.Errorf("%d cases %s, want none", c, status)
					continue
				}
				if got := float64(c) / n; math.Abs(got-share) > tolerance {
					t.Errorf("share of %s = %.4f, want %.2f ± %.2f", status, got, share, tolerance)
				}
			}
			for status, share := range tt.want {
				if share > 0 && counts[status] == 0 {
					t.Errorf("no case %s, want a share of %.2f", status, share)
				}
			}
			if got := float64(pends) / n; math.Abs(got-tt.cfg.Pend) > tolerance {
				t.Errorf("share pended = %.4f, want %.2f ± %.2f", got, tt.cfg.Pend, tolerance)
			}
		})
	}

	t.Run("seed changes decisions", func(t *testing.T) {
		a := PriorAuthWorldConfig{Seed: 1, Approve: 0.5, Deny: 0.5, Pend: 0.5}
		b := a
		b.Seed = 2
		differ := 0
		for i := range 100 {
			id := "pa-" + strconv.Itoa(i)
			fa, pa := a.PriorAuthOutcome(id)
			fb, pb := b.PriorAuthOutcome(id)
			if fa != fb || pa != pb {
				differ++
			}
		}
		if differ == 0 {
			t.Fatal("seeds 1 and 2 decide 100 cases identically")
		}
	})
}

func TestPriorAuthPrescriptions(t *testing.T) {
	const n = 2000
	const seed = 42
	recs, ids := PriorAuthPrescriptions(seed, n)
	if len(recs) != n || len(ids) != n {
		t.Fatalf("got %d records and %d ids, want %d", len(recs), len(ids), n)
	}

	t.Run("deterministic", func(t *testing.T) {
		again, againIDs := PriorAuthPrescriptions(seed, n)
		if !bytes.Equal(recordsBytes(recs), recordsBytes(again)) || !slices.Equal(ids, againIDs) {
			t.Fatal("same seed gave different records")
		}
		other, _ := PriorAuthPrescriptions(seed+1, n)
		if bytes.Equal(recordsBytes(recs), recordsBytes(other)) {
			t.Fatal("seeds 42 and 43 gave identical records")
		}
		prefix, _ := PriorAuthPrescriptions(seed, 10)
		if !bytes.Equal(recordsBytes(prefix), recordsBytes(recs[:10])) {
			t.Fatal("the first 10 of 2000 records differ from 10 records")
		}
	})

	t.Run("none", func(t *testing.T) {
		for _, n := range []int{0, -1} {
			if recs, ids := PriorAuthPrescriptions(seed, n); recs != nil || ids != nil {
				t.Errorf("PriorAuthPrescriptions(%d) = %d records, %d ids, want none", n, len(recs), len(ids))
			}
		}
	})

	t.Run("shape", func(t *testing.T) {
		payloadKeys := []string{"medication", "patientId", "payerId", "pharmacyId", "prescriptionId", "providerId"}
		metadataKeys := []string{"correlationId", "eventId", "eventSource", "eventType", "timestamp"}
		categories := []string{"analgesic", "antibiotic", "anticoagulant", "antihypertensive", "insulin", "statin"}
		numeric := regexp.MustCompile(`^[0-9]{5,8}$`)
		payers := map[string]int{}
		seenCategories := map[string]int{}
		enveloped := 0
		for i, r := range recs {
			wantID := "rx-42-" + strconv.Itoa(i)
			if ids[i] != wantID || string(r.Key) != wantID || r.Topic != TopicPAPrescriptions {
				t.Fatalf("record %d: topic %s, key %s, id %s; want %s keyed %s", i, r.Topic, r.Key, ids[i], TopicPAPrescriptions, wantID)
			}
			if len(r.Headers) != 0 || !r.Timestamp.IsZero() {
				t.Fatalf("record %d: headers %v, timestamp %v; want none", i, r.Headers, r.Timestamp)
			}
			var top map[string]json.RawMessage
			if err := json.Unmarshal(r.Value, &top); err != nil {
				t.Fatalf("record %d is not a JSON object: %v", i, err)
			}
			payload := r.Value
			if _, ok := top["metadata"]; ok {
				enveloped++
				if got := slices.Sorted(maps.Keys(top)); !slices.Equal(got, []string{"metadata", "payload"}) {
					t.Fatalf("record %d: envelope keys %v", i, got)
				}
				var meta map[string]any
				if err := json.Unmarshal(top["metadata"], &meta); err != nil {
					t.Fatalf("record %d: metadata: %v", i, err)
				}
				if got := slices.Sorted(maps.Keys(meta)); !slices.Equal(got, metadataKeys) {
					t.Fatalf("record %d: metadata keys %v, want %v", i, got, metadataKeys)
				}
				if meta["eventType"] != "PrescriptionCreated" || meta["eventSource"] != "sim.ehr" ||
					meta["correlationId"] != "corr-rx-42-"+strconv.Itoa(i) || meta["eventId"] != "evt-rx-42-"+strconv.Itoa(i) {
					t.Fatalf("record %d: metadata %v", i, meta)
				}
				wantTS := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC).Add(time.Duration(i) * time.Second).UnixMilli()
				if ts, ok := meta["timestamp"].(float64); !ok || int64(ts) != wantTS {
					t.Fatalf("record %d: timestamp %v, want %d ms", i, meta["timestamp"], wantTS)
				}
				payload = top["payload"]
				top = nil
				if err := json.Unmarshal(payload, &top); err != nil {
					t.Fatalf("record %d: payload: %v", i, err)
				}
			}
			if got := slices.Sorted(maps.Keys(top)); !slices.Equal(got, payloadKeys) {
				t.Fatalf("record %d: payload keys %v, want %v", i, got, payloadKeys)
			}
			var p struct {
				PrescriptionID, PatientID, ProviderID, PayerID, PharmacyID string
				Medication                                                 map[string]string
			}
			if err := json.Unmarshal(payload, &p); err != nil {
				t.Fatalf("record %d: payload: %v", i, err)
			}
			if p.PrescriptionID != wantID || !strings.HasPrefix(p.PatientID, "pat-") ||
				!strings.HasPrefix(p.ProviderID, "prac-") || !strings.HasPrefix(p.PharmacyID, "pharm-") {
				t.Fatalf("record %d: ids %+v", i, p)
			}
			if got := slices.Sorted(maps.Keys(p.Medication)); !slices.Equal(got, []string{"category", "code", "name"}) {
				t.Fatalf("record %d: medication keys %v", i, got)
			}
			if p.Medication["name"] == "" || !numeric.MatchString(p.Medication["code"]) ||
				!slices.Contains(categories, p.Medication["category"]) {
				t.Fatalf("record %d: medication %v", i, p.Medication)
			}
			payers[p.PayerID]++
			seenCategories[p.Medication["category"]]++
		}
		if got := float64(enveloped) / n; got < 0.45 || got > 0.55 {
			t.Errorf("%.3f of records enveloped, want about half", got)
		}
		if got := slices.Sorted(maps.Keys(payers)); !slices.Equal(got, []string{"PAYER001", "PAYER002", "PAYER003", "PAYER004", "PAYER005"}) {
			t.Errorf("payers %v, want PAYER001..PAYER005", got)
		}
		for payer, c := range payers {
			if got := float64(c) / n; got < 0.15 || got > 0.25 {
				t.Errorf("share of %s = %.3f, want about 0.2", payer, got)
			}
		}
		if got := slices.Sorted(maps.Keys(seenCategories)); !slices.Equal(got, categories) {
			t.Errorf("categories %v, want %v", got, categories)
		}
	})
}

// TestPriorAuthAnswers pins each service's answer to a request, byte for
// byte, and that malformed requests get none.
func TestPriorAuthAnswers(t *testing.T) {
	cfg := PriorAuthWorldConfig{Seed: 5, Now: fixedClock}
	if err := cfg.validate(); err != nil {
		t.Fatalf("validate: %v", err)
	}
	w := &PriorAuthWorld{cfg: cfg}
	other := &PriorAuthWorld{cfg: cfg}
	other.cfg.Seed = 6
	corr := []kgo.RecordHeader{{Key: "other", Value: []byte("x")}, {Key: HeaderCorrelationID, Value: []byte("corr-1")}}

	tests := []struct {
		name    string
		answer  func(*PriorAuthWorld) func(*kgo.Record) *kgo.Record
		value   string
		headers []kgo.RecordHeader
		// wantTopic and wantValue are empty for a skipped request.
		wantTopic, wantValue string
		// wantCorr is the correlation-id the answer must carry ("" none).
		wantCorr string
		// seeded: the answer carries ids the world invents from its seed.
		seeded bool
	}{
		{
			name:      "documentation",
			answer:    func(w *PriorAuthWorld) func(*kgo.Record) *kgo.Record { return w.documentationAnswer },
			value:     `{"priorAuthId":"pa-1","prescriptionId":"rx-1","patientId":"pat-000001","medication":{"name":"m"},"payerId":"PAYER001","requestedDocuments":["lab-results","provider-notes"]}`,
			headers:   corr,
			wantTopic: TopicPADocumentationAssembled,
			wantValue: `{"priorAuthId":"pa-1","prescriptionId":"rx-1","documents":[{"type":"lab-results","documentId":"` +
				paDocID(5, "pa-1", 0, "lab-results") + `"},{"type":"provider-notes","documentId":"` + paDocID(5, "pa-1", 1, "provider-notes") + `"}]}`,
			wantCorr: "corr-1",
			seeded:   true,
		},
		{
			name:      "documentation of nothing",
			answer:    func(w *PriorAuthWorld) func(*kgo.Record) *kgo.Record { return w.documentationAnswer },
			value:     `{"priorAuthId":"pa-1"}`,
			wantTopic: TopicPADocumentationAssembled,
			wantValue: `{"priorAuthId":"pa-1","prescriptionId":"","documents":[]}`,
		},
		{
			name:      "submission",
			answer:    func(w *PriorAuthWorld) func(*kgo.Record) *kgo.Record { return w.submissionAnswer },
			value:     `{"priorAuthId":"pa-2","prescriptionId":"rx-2","documents":[{"type":"x"}],"submissionMethod":"PORTAL","payerId":"PAYER004","urgent":true}`,
			headers:   corr,
			wantTopic: TopicPASubmissionCompleted,
			wantValue: `{"priorAuthId":"pa-2","submissionId":"` + paSubID(5, "pa-2") +
				`","submissionDate":"2025-03-04T05:06:07Z","submissionMethod":"PORTAL","payerId":"PAYER004"}`,
			wantCorr: "corr-1",
			seeded:   true,
		},
		{
			name:      "communication",
			answer:    func(w *PriorAuthWorld) func(*kgo.Record) *kgo.Record { return w.communicationAnswer },
			value:     `{"priorAuthId":"pa-3","determinationStatus":"APPROVED","recipients":["PROVIDER"],"channels":["EHR","PORTAL","EMAIL"]}`,
			headers:   corr,
			wantTopic: TopicPACommunicationCompleted,
			wantValue: `{"priorAuthId":"pa-3","completedChannels":["EHR","PORTAL","EMAIL"]}`,
			wantCorr:  "corr-1",
		},
		{
			name:      "communication without channels",
			answer:    func(w *PriorAuthWorld) func(*kgo.Record) *kgo.Record { return w.communicationAnswer },
			value:     `{"priorAuthId":"pa-3"}`,
			wantTopic: TopicPACommunicationCompleted,
			wantValue: `{"priorAuthId":"pa-3","completedChannels":[]}`,
		},
		{name: "not JSON", answer: func(w *PriorAuthWorld) func(*kgo.Record) *kgo.Record { return w.documentationAnswer }, value: `{"priorAuthId":"pa-1"`},
		{name: "JSON null", answer: func(w *PriorAuthWorld) func(*kgo.Record) *kgo.Record { return w.communicationAnswer }, value: `null`},
		{name: "JSON array", answer: func(w *PriorAuthWorld) func(*kgo.Record) *kgo.Record { return w.submissionAnswer }, value: `[]`},
		{name: "no priorAuthId", answer: func(w *PriorAuthWorld) func(*kgo.Record) *kgo.Record { return w.communicationAnswer }, value: `{"channels":["EHR"]}`},
		{name: "numeric priorAuthId", answer: func(w *PriorAuthWorld) func(*kgo.Record) *kgo.Record { return w.documentationAnswer }, value: `{"priorAuthId":7}`},
		{name: "documents not a list", answer: func(w *PriorAuthWorld) func(*kgo.Record) *kgo.Record { return w.documentationAnswer }, value: `{"priorAuthId":"pa-1","requestedDocuments":"all"}`},
		{name: "submission without payer", answer: func(w *PriorAuthWorld) func(*kgo.Record) *kgo.Record { return w.submissionAnswer }, value: `{"priorAuthId":"pa-2","submissionMethod":"FAX"}`},
		{name: "submission without method", answer: func(w *PriorAuthWorld) func(*kgo.Record) *kgo.Record { return w.submissionAnswer }, value: `{"priorAuthId":"pa-2","payerId":"PAYER003"}`},
		{name: "channels not strings", answer: func(w *PriorAuthWorld) func(*kgo.Record) *kgo.Record { return w.communicationAnswer }, value: `{"priorAuthId":"pa-3","channels":[1]}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := &kgo.Record{Topic: "in", Key: []byte("k"), Value: []byte(tt.value), Headers: tt.headers}
			got := tt.answer(w)(req)
			if tt.wantTopic == "" {
				if got != nil {
					t.Fatalf("answered a malformed request on %s", got.Topic)
				}
				return
			}
			if got == nil {
				t.Fatal("no answer")
			}
			var id struct{ PriorAuthID string }
			if err := json.Unmarshal([]byte(tt.wantValue), &id); err != nil {
				t.Fatalf("want value: %v", err)
			}
			if got.Topic != tt.wantTopic || string(got.Key) != id.PriorAuthID || string(got.Value) != tt.wantValue {
				t.Fatalf("answer %s key %s\n%s\nwant %s key %s\n%s", got.Topic, got.Key, got.Value, tt.wantTopic, id.PriorAuthID, tt.wantValue)
			}
			if c := headerValue(got, HeaderCorrelationID); c != tt.wantCorr {
				t.Errorf("correlation-id %q, want %q", c, tt.wantCorr)
			}
			if s := headerValue(got, headerEventSource); !strings.HasPrefix(s, "sim.") || headerValue(got, headerEventType) != tt.wantTopic {
				t.Errorf("event-source %q, event-type %q", s, headerValue(got, headerEventType))
			}
			if again := tt.answer(w)(req); !bytes.Equal(again.Value, got.Value) {
				t.Errorf("second answer differs:\n%s\n%s", again.Value, got.Value)
			}
			if o := tt.answer(other)(req); tt.seeded && bytes.Equal(o.Value, got.Value) {
				t.Errorf("seed 6 invents the same ids as seed 5")
			}
		})
	}
}

// paDocID and paSubID are the ids the world must invent.
func paDocID(seed int64, paID string, i int, typ string) string {
	return fmt.Sprintf("doc-%016x", paHash(seed, "document", paID, strconv.Itoa(i), typ))
}

func paSubID(seed int64, paID string) string {
	return fmt.Sprintf("sub-%016x", paHash(seed, "submission", paID))
}

// headerValue returns the value of r's first header named key, "" if none.
func headerValue(r *kgo.Record, key string) string {
	for _, h := range r.Headers {
		if h.Key == key {
			return string(h.Value)
		}
	}
	return ""
}

// paCase is one prior authorization the test plays the orchestrator for.
type paCase struct {
	id, corr, payer, method string
	docs, channels          []string
}

// TestPriorAuthWorld plays the orchestrator by hand against a running world:
// malformed requests first, then requests for a few cases, and checks every
// answer's shape, key and correlation header, the payer's determinations
// per PriorAuthOutcome, and the counters.
func TestPriorAuthWorld(t *testing.T) {
	tests := []struct {
		name string
		cfg  PriorAuthWorldConfig
	}{
		{name: "decided at once", cfg: PriorAuthWorldConfig{Seed: 7, Approve: 0.4, Deny: 0.3, Partial: 0.2}},
		{name: "pended then decided", cfg: PriorAuthWorldConfig{Seed: 8, Approve: 0.5, Deny: 0.2, Partial: 0.2, Pend: 1, ExpireAfter: 30 * 24 * time.Hour}},
		{name: "pended with payer delay", cfg: PriorAuthWorldConfig{Seed: 9, Approve: 0.6, Partial: 0.4, Pend: 1, PayerDelay: 100 * time.Millisecond}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := tt.cfg
			cfg.Now = fixedClock
			expireAfter := cfg.ExpireAfter
			if expireAfter == 0 {
				expireAfter = 90 * 24 * time.Hour // the default
			}
			c := newCluster(t)
			createTopics(t, c, 3, nil, append(slices.Clone(paInputTopics), paOutputTopics...)...)
			w := newPriorAuthWorld(t, c, cfg)
			ctx := newCtx(t)

			cases := make([]paCase, 6)
			for k := range cases {
				cases[k] = paCase{
					id:       "pa-" + strconv.FormatInt(cfg.Seed, 10) + "-" + strconv.Itoa(k),
					corr:     "corr-" + strconv.Itoa(k),
					payer:    "PAYER00" + strconv.Itoa(1+k%5),
					method:   []string{"ELECTRONIC", "ELECTRONIC", "FAX", "PORTAL", "FAX"}[k%5],
					docs:     []string{"patient-demographics", "diagnosis-codes", "medication-history", "lab-results", "provider-notes"}[:1+k%5],
					channels: []string{"EHR", "PORTAL", "EMAIL"}[:1+k%3],
				}
			}
			cases[len(cases)-1].corr = "" // a request without the header
			byID := map[string]paCase{}
			for _, pc := range cases {
				byID[pc.id] = pc
			}

			// Malformed records go first, keyed like the first
			// case, so they precede its valid requests in their
			// partition: once it is answered they were seen.
			var in []*kgo.Record
			bad := func(topic, v string) {
				in = append(in, &kgo.Record{Topic: topic, Key: []byte(cases[0].id), Value: []byte(v)})
			}
			for _, topic := range append(slices.Clone(paInputTopics), TopicPASubmissionCompleted) {
				for _, v := range []string{`not json`, `{}`, `null`, `[]`, `{"priorAuthId":42}`, `{"priorAuthId":""}`} {
					bad(topic, v)
				}
			}
			bad(TopicPADocumentationRequested, `{"priorAuthId":"x","requestedDocuments":"all"}`)
			bad(TopicPASubmissionRequested, `{"priorAuthId":"x","submissionMethod":"FAX"}`) // no payer
			bad(TopicPACommunicationRequested, `{"priorAuthId":"x","channels":{}}`)
			for _, pc := range cases {
				in = append(in, paRequests(t, pc)...)
			}
			start := time.Now()
			if err := Produce(ctx, newClient(t, c), in); err != nil {
				t.Fatalf("produce requests: %v", err)
			}

			wantDets := map[string][]string{}
			nDets := 0
			for _, pc := range cases {
				final, pended := cfg.PriorAuthOutcome(pc.id)
				if pended {
					wantDets[pc.id] = append(wantDets[pc.id], PAStatusPended)
				}
				wantDets[pc.id] = append(wantDets[pc.id], final)
				nDets += len(wantDets[pc.id])
			}
			if cfg.Pend == 1 && nDets != 2*len(cases) {
				t.Fatalf("Pend = 1 but %d determinations expected for %d cases", nDets, len(cases))
			}

			got := readPriorAuthAnswers(t, ctx, c, len(cases), nDets)
			n := len(cases)
			for _, topic := range []string{TopicPADocumentationAssembled, TopicPASubmissionCompleted, TopicPACommunicationCompleted} {
				if len(got[topic]) != n {
					t.Fatalf("%d answers on %s, want %d", len(got[topic]), topic, n)
				}
			}
			for _, a := range got[TopicPADocumentationAssembled] {
				pc := checkAnswer(t, a, byID, "priorAuthId", "prescriptionId", "documents")
				var v paDocumentationAssembled
				mustUnmarshal(t, a.rec, &v)
				if v.PrescriptionID != "rx-"+pc.id || len(v.Documents) != len(pc.docs) {
					t.Fatalf("%s: documentation %+v, want %d documents for rx-%s", pc.id, v, len(pc.docs), pc.id)
				}
				for i, d := range v.Documents {
					if d.Type != pc.docs[i] || d.DocumentID != paDocID(cfg.Seed, pc.id, i, d.Type) {
						t.Errorf("%s: document %d = %+v, want type %s", pc.id, i, d, pc.docs[i])
					}
				}
			}
			for _, a := range got[TopicPASubmissionCompleted] {
				pc := checkAnswer(t, a, byID, "payerId", "priorAuthId", "submissionDate", "submissionId", "submissionMethod")
				var v paSubmissionCompleted
				mustUnmarshal(t, a.rec, &v)
				want := paSubmissionCompleted{pc.id, paSubID(cfg.Seed, pc.id), paFixedNow.Format(time.RFC3339), pc.method, pc.payer}
				if v != want {
					t.Errorf("%s: submission %+v, want %+v", pc.id, v, want)
				}
			}
			for _, a := range got[TopicPACommunicationCompleted] {
				pc := checkAnswer(t, a, byID, "completedChannels", "priorAuthId")
				var v paCommunicationCompleted
				mustUnmarshal(t, a.rec, &v)
				if !slices.Equal(v.CompletedChannels, pc.channels) {
					t.Errorf("%s: completed channels %v, want %v", pc.id, v.CompletedChannels, pc.channels)
				}
			}
			gotDets := map[string][]string{}
			for _, a := range got[TopicPADeterminationReceived] {
				var v paDetermination
				mustUnmarshal(t, a.rec, &v)
				keys := []string{"determinationDate", "determinationReason", "determinationStatus", "priorAuthId"}
				wantExp := v.DeterminationStatus == PAStatusApproved || v.DeterminationStatus == PAStatusPartiallyApproved
				if wantExp {
					keys = append(keys, "expirationDate")
				}
				pc := checkAnswer(t, a, byID, keys...)
				gotDets[pc.id] = append(gotDets[pc.id], v.DeterminationStatus)
				if v.DeterminationDate != paFixedNow.Format(time.RFC3339) || v.DeterminationReason == "" {
					t.Errorf("%s: determination %+v", pc.id, v)
				}
				if wantExp && v.ExpirationDate != paFixedNow.Add(expireAfter).Format(time.RFC3339) {
					t.Errorf("%s: expirationDate %s, want %v after %s", pc.id, v.ExpirationDate, expireAfter, v.DeterminationDate)
				}
				if cfg.PayerDelay > 0 && v.DeterminationStatus != PAStatusPended {
					// A pended case waits twice; a lower bound
					// only, so a slow machine cannot fail it.
					if el := a.at.Sub(start); el < 2*cfg.PayerDelay {
						t.Errorf("%s: final determination %v after the request, want at least %v", pc.id, el, 2*cfg.PayerDelay)
					}
				}
			}
			if !maps.EqualFunc(gotDets, wantDets, slices.Equal) {
				t.Errorf("determinations %v, want %v", gotDets, wantDets)
			}

			want := PriorAuthWorldStats{
				DocumentationRequests: int64(n), SubmissionRequests: int64(n), StatusChecks: int64(n),
				Determinations: int64(nDets), CommunicationRequests: int64(n),
			}
			// Counters move once answers are acknowledged, which
			// may be after the answers were read.
			waitStats(t, ctx, w, func(s PriorAuthWorldStats) bool {
				return s.DocumentationRequests >= want.DocumentationRequests && s.SubmissionRequests >= want.SubmissionRequests &&
					s.StatusChecks >= want.StatusChecks && s.Determinations >= want.Determinations &&
					s.CommunicationRequests >= want.CommunicationRequests
			})
			w.Close()
			if s := w.Stats(); s != want {
				t.Errorf("Stats() = %+v, want %+v", s, want)
			}
		})
	}
}

// paRequests returns the orchestrator's requests for pc, as the orchestrator
// would send them (bare JSON, keyed by prior-auth id).
func paRequests(t *testing.T, pc paCase) []*kgo.Record {
	t.Helper()
	var hdrs []kgo.RecordHeader
	if pc.corr != "" {
		hdrs = []kgo.RecordHeader{{Key: HeaderCorrelationID, Value: []byte(pc.corr)}, {Key: headerEventSource, Value: []byte("prior-auth-orchestrator")}}
	}
	rec := func(topic string, v any) *kgo.Record {
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatalf("encode request: %v", err)
		}
		return &kgo.Record{Topic: topic, Key: []byte(pc.id), Value: b, Headers: hdrs}
	}
	docs := make([]map[string]string, len(pc.docs))
	for i, d := range pc.docs {
		docs[i] = map[string]string{"type": d, "documentId": "d" + strconv.Itoa(i)}
	}
	med := map[string]string{"name": "Apixaban 5 MG Oral Tablet", "code": "1364445", "category": "anticoagulant"}
	return []*kgo.Record{
		rec(TopicPADocumentationRequested, map[string]any{
			"priorAuthId": pc.id, "prescriptionId": "rx-" + pc.id, "patientId": "pat-000001", "providerId": "prac-001",
			"medication": med, "payerId": pc.payer, "requestedDocuments": pc.docs,
		}),
		rec(TopicPASubmissionRequested, map[string]any{
			"priorAuthId": pc.id, "prescriptionId": "rx-" + pc.id, "documents": docs,
			"submissionMethod": pc.method, "payerId": pc.payer, "urgent": true,
		}),
		rec(TopicPAStatusCheckRequested, map[string]any{
			"priorAuthId": pc.id, "payerId": pc.payer, "submissionId": "sub-x", "checkNumber": 1,
		}),
		rec(TopicPACommunicationRequested, map[string]any{
			"priorAuthId": pc.id, "determinationStatus": "APPROVED",
			"recipients": []string{"PROVIDER", "PHARMACY", "PATIENT"}, "channels": pc.channels,
		}),
	}
}

// paAnswer is an answer read back, and when it was read.
type paAnswer struct {
	rec *kgo.Record
	at  time.Time
}

// readPriorAuthAnswers reads the world's output topics with a read_committed
// consumer until each has n answers and determination.received has nDets,
// failing the test when ctx ends first. Records the test itself wrote to
// those topics (no event-source header) are left out.
func readPriorAuthAnswers(t *testing.T, ctx context.Context, c *Cluster, n, nDets int) map[string][]paAnswer {
	t.Helper()
	cl := newClient(t, c,
		kgo.ConsumeTopics(paOutputTopics...),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
	)
	got := map[string][]paAnswer{}
	done := func() bool {
		return len(got[TopicPADocumentationAssembled]) >= n && len(got[TopicPASubmissionCompleted]) >= n &&
			len(got[TopicPACommunicationCompleted]) >= n && len(got[TopicPADeterminationReceived]) >= nDets
	}
	for !done() {
		fs := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			counts := map[string]int{}
			for topic, as := range got {
				counts[topic] = len(as)
			}
			t.Fatalf("answers so far %v (want %d each, %d determinations): %v", counts, n, nDets, err)
		}
		fs.EachError(func(topic string, p int32, err error) {
			t.Fatalf("fetch %s/%d: %v", topic, p, err)
		})
		now := time.Now()
		for _, r := range fs.Records() {
			if headerValue(r, headerEventSource) == "" {
				continue
			}
			got[r.Topic] = append(got[r.Topic], paAnswer{r, now})
		}
	}
	return got
}

// checkAnswer checks that a's value is a JSON object with exactly the keys
// wantKeys, keyed by its priorAuthId, a case of byID, and carrying that
// case's correlation-id, and returns the case.
func checkAnswer(t *testing.T, a paAnswer, byID map[string]paCase, wantKeys ...string) paCase {
	t.Helper()
	var obj map[string]json.RawMessage
	mustUnmarshal(t, a.rec, &obj)
	if got := slices.Sorted(maps.Keys(obj)); !slices.Equal(got, slices.Sorted(slices.Values(wantKeys))) {
		t.Fatalf("%s: keys %v, want %v", a.rec.Topic, got, slices.Sorted(slices.Values(wantKeys)))
	}
	var id string
	if err := json.Unmarshal(obj["priorAuthId"], &id); err != nil {
		t.Fatalf("%s: priorAuthId: %v", a.rec.Topic, err)
	}
	pc, ok := byID[id]
	if !ok || string(a.rec.Key) != id {
		t.Fatalf("%s: answer keyed %q for priorAuthId %q, want a known case keyed by its id", a.rec.Topic, a.rec.Key, id)
	}
	if got := headerValue(a.rec, HeaderCorrelationID); got != pc.corr {
		t.Errorf("%s %s: correlation-id %q, want %q", a.rec.Topic, id, got, pc.corr)
	}
	if got := headerValue(a.rec, headerEventType); got != a.rec.Topic {
		t.Errorf("%s %s: event-type %q", a.rec.Topic, id, got)
	}
	return pc
}

func mustUnmarshal(t *testing.T, r *kgo.Record, v any) {
	t.Helper()
	if err := json.Unmarshal(r.Value, v); err != nil {
		t.Fatalf("%s/%d@%d: decode: %v", r.Topic, r.Partition, r.Offset, err)
	}
}

// TestPriorAuthWorldCloseWithPendingCases closes a world whose payer holds
// a case for an hour: Close must return at once, sending nothing more, and
// may be called again.
func TestPriorAuthWorldCloseWithPendingCases(t *testing.T) {
	c := newCluster(t)
	createTopics(t, c, 1, nil, append(slices.Clone(paInputTopics), paOutputTopics...)...)
	w := newPriorAuthWorld(t, c, PriorAuthWorldConfig{Approve: 1, PayerDelay: time.Hour})
	ctx := newCtx(t)
	req := &kgo.Record{Topic: TopicPASubmissionRequested, Key: []byte("pa-1"),
		Value: []byte(`{"priorAuthId":"pa-1","submissionMethod":"FAX","payerId":"PAYER003"}`)}
	if err := Produce(ctx, newClient(t, c), []*kgo.Record{req}); err != nil {
		t.Fatalf("produce: %v", err)
	}
	// The payer takes the case from the gateway's answer.
	consumeN(t, c, 1, TopicPASubmissionCompleted)
	waitStats(t, ctx, w, func(s PriorAuthWorldStats) bool { return s.SubmissionRequests == 1 })

	closesWithin(t, "Close with a case pending", w.Close, 10*time.Second)
	w.Close()
	if s := w.Stats(); s.Determinations != 0 || s.SubmissionRequests != 1 {
		t.Errorf("Stats() = %+v, want 1 submission and no determination", s)
	}
}

// TestPriorAuthWorldTopicsCreatedLater starts the world before its topics
// exist, as a demo might: it answers once they do.
func TestPriorAuthWorldTopicsCreatedLater(t *testing.T) {
	c := newCluster(t)
	w := newPriorAuthWorld(t, c, PriorAuthWorldConfig{})
	ctx := newCtx(t)
	createTopics(t, c, 1, nil, append(slices.Clone(paInputTopics), paOutputTopics...)...)
	req := &kgo.Record{Topic: TopicPACommunicationRequested, Key: []byte("pa-1"),
		Value: []byte(`{"priorAuthId":"pa-1","channels":["EHR"]}`)}
	if err := Produce(ctx, newClient(t, c), []*kgo.Record{req}); err != nil {
		t.Fatalf("produce: %v", err)
	}
	recs := consumeN(t, c, 1, TopicPACommunicationCompleted)
	if string(recs[0].Key) != "pa-1" {
		t.Errorf("answer keyed %q, want pa-1", recs[0].Key)
	}
	waitStats(t, ctx, w, func(s PriorAuthWorldStats) bool { return s.CommunicationRequests == 1 })
}

// TestPriorAuthCommitTracker pins the payer's offset bookkeeping: a partition's
// commit advances over its done prefix only, and a rewind starts over.
func TestPriorAuthCommitTracker(t *testing.T) {
	rec := func(topic string, p int32, off int64) *kgo.Record {
		return &kgo.Record{Topic: topic, Partition: p, Offset: off, LeaderEpoch: 3}
	}
	type commit = map[string]map[int32]kgo.EpochOffset
	var tr commitTracker
	a0, a1, a2 := tr.add(rec("a", 0, 10)), tr.add(rec("a", 0, 11)), tr.add(rec("a", 0, 12))
	b0 := tr.add(rec("b", 1, 5))

	steps := []struct {
		name string
		done []*offsetMark
		want commit
	}{
		{name: "nothing done", want: nil},
		{name: "later records done first", done: []*offsetMark{a1, a2}, want: nil},
		{name: "head done releases the prefix", done: []*offsetMark{a0}, want: commit{"a": {0: {Epoch: 3, Offset: 13}}}},
		{name: "other partition", done: []*offsetMark{b0}, want: commit{"b": {1: {Epoch: 3, Offset: 6}}}},
		{name: "nothing new", want: nil},
	}
	for _, s := range steps {
		for _, m := range s.done {
			m.done = true
		}
		if got := tr.advance(); !maps.EqualFunc(got, s.want, maps.Equal) {
			t.Fatalf("%s: advance() = %v, want %v", s.name, got, s.want)
		}
	}

	// A rewind (offset 11 again after 12) forgets the older marks.
	old := tr.add(rec("a", 0, 13))
	again := tr.add(rec("a", 0, 11))
	old.done = true
	if got := tr.advance(); got != nil {
		t.Fatalf("after rewind, an old mark committed: %v", got)
	}
	again.done = true
	if got, want := tr.advance(), (commit{"a": {0: {Epoch: 3, Offset: 12}}}); !maps.EqualFunc(got, want, maps.Equal) {
		t.Fatalf("after rewind: advance() = %v, want %v", got, want)
	}
}

// TestPriorAuthWorldRestart stops a world whose payer holds a case for an
// hour and starts another on the same cluster: the case was not committed
// past, so the new payer decides it (at least once).
func TestPriorAuthWorldRestart(t *testing.T) {
	c := newCluster(t)
	createTopics(t, c, 1, nil, append(slices.Clone(paInputTopics), paOutputTopics...)...)
	ctx := newCtx(t)
	cl := newClient(t, c)

	first := newPriorAuthWorld(t, c, PriorAuthWorldConfig{Approve: 1, PayerDelay: time.Hour})
	sub := &kgo.Record{Topic: TopicPASubmissionRequested, Key: []byte("pa-1"),
		Value: []byte(`{"priorAuthId":"pa-1","submissionMethod":"ELECTRONIC","payerId":"PAYER001"}`)}
	if err := Produce(ctx, cl, []*kgo.Record{sub}); err != nil {
		t.Fatalf("produce: %v", err)
	}
	consumeN(t, c, 1, TopicPASubmissionCompleted)
	// A status check produced after the gateway's answer: once the payer
	// counted it, it has almost surely fetched the case too (if not, the
	// second world decides the case all the same).
	check := &kgo.Record{Topic: TopicPAStatusCheckRequested, Key: []byte("pa-1"), Value: []byte(`{"priorAuthId":"pa-1"}`)}
	if err := Produce(ctx, cl, []*kgo.Record{check}); err != nil {
		t.Fatalf("produce: %v", err)
	}
	waitStats(t, ctx, first, func(s PriorAuthWorldStats) bool { return s.StatusChecks == 1 })
	first.Close()
	if s := first.Stats(); s.Determinations != 0 {
		t.Fatalf("first world sent %d determinations with an hour's delay", s.Determinations)
	}

	second := newPriorAuthWorld(t, c, PriorAuthWorldConfig{Approve: 1})
	dets := consumeN(t, c, 1, TopicPADeterminationReceived)
	var d paDetermination
	mustUnmarshal(t, dets[0], &d)
	if string(dets[0].Key) != "pa-1" || d.DeterminationStatus != PAStatusApproved {
		t.Fatalf("determination keyed %q: %+v, want pa-1 APPROVED", dets[0].Key, d)
	}
	waitStats(t, ctx, second, func(s PriorAuthWorldStats) bool { return s.Determinations == 1 })
}

// The payer's date forms: by default RFC 3339 in UTC; with a payer time
// zone, determinationDate in its offset without a colon; with
// DateOnlyExpiration, expirationDate as a date alone in that zone.
func TestPriorAuthDeterminationDates(t *testing.T) {
	ny, err := time.LoadLocation("America/New_York")
	if err != nil {
		t.Fatal(err)
	}
	// fixedClock reads 2025-03-04T05:06:07Z: 00:06:07 EST on 2025-03-04.
	for _, tt := range []struct {
		name           string
		zone           *time.Location
		dateOnly       bool
		det, expiresOn string
	}{
		{"default", nil, false, "2025-03-04T05:06:07Z", "2025-03-14T05:06:07Z"},
		{"payer zone", ny, false, "2025-03-04T00:06:07-0500", "2025-03-14T01:06:07-04:00"},
		{"date-only expiration in UTC", nil, true, "2025-03-04T05:06:07Z", "2025-03-14"},
		{"date-only expiration in the payer zone", ny, true, "2025-03-04T00:06:07-0500", "2025-03-14"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			cfg := PriorAuthWorldConfig{Seed: 5, Approve: 1, Now: fixedClock, ExpireAfter: 10 * 24 * time.Hour,
				PayerTimeZone: tt.zone, DateOnlyExpiration: tt.dateOnly}
			if err := cfg.validate(); err != nil {
				t.Fatal(err)
			}
			w := &PriorAuthWorld{cfg: cfg}
			r := w.determination(payerTask{c: &payerCase{priorAuthID: "pa-1", final: PAStatusApproved}})
			var d paDetermination
			if err := json.Unmarshal(r.Value, &d); err != nil {
				t.Fatal(err)
			}
			if d.DeterminationDate != tt.det || d.ExpirationDate != tt.expiresOn {
				t.Errorf("determinationDate %s expirationDate %s, want %s %s", d.DeterminationDate, d.ExpirationDate, tt.det, tt.expiresOn)
			}
		})
	}
}
