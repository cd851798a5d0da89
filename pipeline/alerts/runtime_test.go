package alerts

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/carepipe/carepipe/internal/kafkatest"
	"github.com/carepipe/carepipe/pipeline"
	"github.com/carepipe/carepipe/pipeline/alerts/rules"
	"github.com/carepipe/carepipe/sim"
)

// TestProcessOnRuntime runs the pipeline on the real runtime against an
// in-process kfake cluster: the glue (repartitioning, the store, the global
// table, emitting, the error topic) that the pure-core tests cannot reach.
func TestProcessOnRuntime(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a kfake cluster")
	}
	cluster := kafkatest.NewCluster(t, sim.KafkaOpts(kfake.SeedTopics(4, append([]string{TopicObservations, TopicPatients, TopicErrors}, outputs...)...)))
	kopts := cluster.ClientOpts()
	prod := kafkatest.Client(t, kopts)
	produce := func(recs ...*kgo.Record) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		if err := prod.ProduceSync(ctx, recs...).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	readUntil := func(topic string, done func([]*kgo.Record) bool) []*kgo.Record {
		t.Helper()
		return kafkatest.ReadUntil(context.Background(), t, kopts, done, topic)
	}
	hasAlert := func(id string) func([]*kgo.Record) bool {
		return func(rs []*kgo.Record) bool {
			for _, r := range rs {
				if strings.Contains(string(r.Value), `"alertId":"`+id+`"`) {
					return true
				}
			}
			return false
		}
	}

	// The patient table is restored before processing starts.
	produce(&kgo.Record{Topic: TopicPatients, Key: []byte("pat-1"), Value: readTestdata(t, "patient_seed.json")})

	set := metrics.NewSet()
	p := newProcessor(t, WithMetrics(set), WithRules(rules.Seed()))
	kafkatest.StartRunner(t, p.Spec(), pipeline.WithKafka(kopts...), pipeline.WithCommitInterval(20*time.Millisecond))

	alerting := readTestdata(t, "observation_hr_envelope.json") // obs-hr-1, pat-1, 134/min
	withID := func(id, patient string) []byte {
		b := bytes.Replace(alerting, []byte(`"obs-hr-1"`), []byte(`"`+id+`"`), 1)
		return bytes.Replace(b, []byte(`"Patient/pat-1"`), []byte(`"Patient/`+patient+`"`), 1)
	}

	// 1. Keyed by something else: re-keyed through the repartition topic,
	// then alerted, enriched from the table.
	produce(&kgo.Record{Topic: TopicObservations, Key: []byte("device-42"), Value: alerting})
	alerts := readUntil(TopicAlerts, hasAlert("obs-hr-1-heart-rate-high"))
	var a Alert
	if err := json.Unmarshal(alerts[0].Value, &a); err != nil {
		t.Fatal(err)
	}
	if string(alerts[0].Key) != "pat-1" || a.PatientName != "John Doe" || a.PatientMRN != "MRN12345" || a.CorrelationID != "corr-0001" {
		t.Errorf("alert = key %s %+v", alerts[0].Key, a)
	}

	// 2. The same observation again, keyed right: a duplicate. 3. Not
	// JSON: the error topic. 3b. A glucose whose quantity lost its unit
	// (issue 17: never taken to be in the rule's mg/dL): the error topic,
	// after 3 on pat-1's partition. 4. Another patient, not in the table.
	// 5. A sentinel after the duplicate on pat-1's partition: once its
	// alert is committed, the duplicate was processed before it.
	unitless := fixture(t, "observation_glucose_mmol.json", func(o map[string]any) {
		o["valueQuantity"] = map[string]any{"value": 3.2}
	})
	produce(
		&kgo.Record{Topic: TopicObservations, Key: []byte("pat-1"), Value: alerting},
		&kgo.Record{Topic: TopicObservations, Key: []byte("pat-1"), Value: []byte("SECRETJOHNDOE not json")},
		&kgo.Record{Topic: TopicObservations, Key: []byte("pat-1"), Value: unitless},
		&kgo.Record{Topic: TopicObservations, Key: []byte("pat-2"), Value: withID("obs-hr-2", "pat-2")},
		&kgo.Record{Topic: TopicObservations, Key: []byte("pat-1"), Value: withID("obs-hr-9", "pat-1")},
	)
	alerts = readUntil(TopicAlerts, func(rs []*kgo.Record) bool {
		return hasAlert("obs-hr-9-heart-rate-high")(rs) && hasAlert("obs-hr-2-heart-rate-high")(rs)
	})
	var ids []string
	for _, r := range alerts {
		var a Alert
		if err := json.Unmarshal(r.Value, &a); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, a.AlertID)
		if a.PatientID == "pat-2" && (a.PatientName != "" || a.CareTeam != nil) {
			t.Errorf("unknown patient enriched: %+v", a)
		}
	}
	if n := strings.Count(strings.Join(ids, " "), "obs-hr-1-"); n != 1 {
		t.Errorf("obs-hr-1 alerted %d times: %v", n, ids)
	}

	errs := readUntil(TopicErrors, func(rs []*kgo.Record) bool { return len(rs) >= 2 })
	headers := func(r *kgo.Record) map[string]string {
		hs := map[string]string{}
		for _, h := range r.Headers {
			hs[h.Key] = string(h.Value)
		}
		return hs
	}
	if hs := headers(errs[0]); hs["error-type"] != "decode" || strings.Contains(hs["error-message"], "SECRET") || !bytes.Equal(errs[0].Value, []byte("SECRETJOHNDOE not json")) {
		t.Errorf("error record: headers %v value %q", hs, errs[0].Value)
	}
	if hs := headers(errs[1]); hs["error-type"] != "invalid" || !strings.Contains(hs["error-message"], "2339-0 has a value without a unit") ||
		strings.Contains(hs["error-message"], "3.2") || !bytes.Equal(errs[1].Value, unitless) {
		t.Errorf("unitless glucose's error record: headers %v", hs)
	}

	history := readUntil(TopicHistory, func(rs []*kgo.Record) bool { return len(rs) >= 3 })
	mobile := readUntil(TopicMobile, func(rs []*kgo.Record) bool { return len(rs) >= 3 })
	for _, r := range append(history, mobile...) {
		if len(r.Headers) < 3 || r.Headers[0].Key != "correlation-id" {
			t.Errorf("%s record without output headers: %v", r.Topic, r.Headers)
		}
	}

	var b bytes.Buffer
	set.WritePrometheus(&b)
	for _, want := range []string{
		`carepipe_alerts_alerts_total{pipeline="alerts",severity="high"} 3`,
		`carepipe_alerts_duplicates_total{pipeline="alerts"} 1`,
		`carepipe_alerts_notifications_total{pipeline="alerts",channel="email"} 3`,
	} {
		if !strings.Contains(b.String(), want+"\n") {
			t.Errorf("metrics lack %q:\n%s", want, b.String())
		}
	}
	if !strings.Contains(b.String(), `carepipe_alerts_repartitioned_total{pipeline="alerts"} `) || strings.Contains(b.String(), `carepipe_alerts_repartitioned_total{pipeline="alerts"} 0`+"\n") {
		t.Errorf("nothing counted as repartitioned:\n%s", b.String())
	}
}
