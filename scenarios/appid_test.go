package scenarios

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/carepipe/carepipe/internal/kafkatest"
	"github.com/carepipe/carepipe/pipeline"
	"github.com/carepipe/carepipe/pipeline/alerts"
	"github.com/carepipe/carepipe/pipeline/alerts/rules"
	"github.com/carepipe/carepipe/pipeline/catalog"
	"github.com/carepipe/carepipe/sim"
	"github.com/twmb/franz-go/pkg/kadm"
)

// stageSpec is the spec of pipeline p's stage as the catalog builds it
// with s: as carepipe run builds it.
func stageSpec(t testing.TB, s catalog.Settings, p, stage string) pipeline.Spec {
	t.Helper()
	def, ok := catalog.Lookup(p)
	if !ok {
		t.Fatalf("no pipeline %s in the catalog", p)
	}
	stages, err := def.Build(context.Background(), s)
	if err != nil {
		t.Fatal(err)
	}
	for _, st := range stages {
		if st.Name == stage {
			return st.Spec
		}
	}
	t.Fatalf("pipeline %s has no stage %s", p, stage)
	return pipeline.Spec{}
}

// Issue 21: two deployments of the alerts pipeline, app ids blue and
// green, share one cluster and one input topic; green writes its outputs
// to topics of its own names. Each has its own group, changelog and
// repartition topic, its transactional ids carry its app id, and each
// makes exactly the expected alerts from every observation: neither takes
// the other's records, state or offsets.
func TestTwoAppIDsOnOneClusterDoNotInterfere(t *testing.T) {
	// A bare cluster: no topic under the built-in names but the inputs,
	// which each app's CreateTopics below makes.
	w := &alertsWorld{t: t, cluster: kafkatest.NewCluster(t)}
	w.prod = w.client()
	w.adm = kadm.NewClient(w.client())
	pack := rules.Seed()
	green := map[string]string{
		alerts.TopicAlerts:  "green.clinical.alerts",
		alerts.TopicHistory: "green.notifications.history",
		alerts.TopicMobile:  "green.notifications.mobile",
		alerts.TopicEmail:   "green.notifications.email",
		alerts.TopicSMS:     "green.notifications.sms",
		alerts.TopicErrors:  "green.clinical.alerts.errors",
	}
	apps := []struct {
		id     string
		topics map[string]string
		spec   pipeline.Spec
	}{{id: "blue"}, {id: "green", topics: green}}
	for i := range apps {
		s := catalog.Settings{AppID: apps[i].id, Topics: map[string]map[string]string{alerts.Name: apps[i].topics}, Rules: &pack}
		apps[i].spec = stageSpec(t, s, alerts.Name, alerts.Name)
		if err := pipeline.CreateTopics(context.Background(), w.adm, &apps[i].spec, testPartitions, 1); err != nil {
			t.Fatal(err)
		}
	}

	g := workload(t, 21, 0)
	w.produce(g.PatientRecords())
	recs, truths := g.NextN(3000)
	for i := range apps {
		set := metrics.NewSet()
		s := catalog.Settings{AppID: apps[i].id, Topics: map[string]map[string]string{alerts.Name: apps[i].topics}, Rules: &pack,
			Metrics: func(string) *metrics.Set { return set }}
		spec := stageSpec(t, s, alerts.Name, alerts.Name)
		kafkatest.StartRunner(t, spec,
			pipeline.WithKafka(w.cluster.ClientOpts()...),
			pipeline.WithMetrics(set),
			pipeline.WithInstanceID(apps[i].id+"-0"),
			pipeline.WithCommitInterval(50*time.Millisecond),
			pipeline.WithTransactionTimeout(5*time.Second),
			pipeline.WithLogger(testLogger()))
	}
	w.produce(recs)
	for i := range apps {
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		kafkatest.WaitCaughtUp(ctx, t, w.cluster.ClientOpts(), apps[i].spec)
		cancel()
	}

	want := sim.ExpectedAlertIDs(truths)
	if len(want) < 300 {
		t.Fatalf("workload has only %d expected alerts", len(want))
	}
	ctx := context.Background()
	for _, app := range apps {
		t.Run(app.id, func(t *testing.T) {
			prefix := app.id + "-"
			if app.spec.Group != prefix+alerts.Group {
				t.Errorf("group %s, want %s", app.spec.Group, prefix+alerts.Group)
			}
			out := alerts.TopicAlerts
			if app.topics != nil {
				out = app.topics[alerts.TopicAlerts]
			}
			if !slices.Contains(app.spec.Outputs, out) || app.spec.Inputs[0] != alerts.TopicObservations {
				t.Errorf("spec reads %v and writes %v, want %s and %s among them", app.spec.Inputs, app.spec.Outputs, alerts.TopicObservations, out)
			}
			diffMultiset(t, decodeAlerts(t, w.readAll(out)), want)
			if errs := w.readAll(app.spec.ErrorTopic); len(errs) != 0 {
				t.Errorf("%d records in %s, want none", len(errs), app.spec.ErrorTopic)
			}
			// Its own state: a changelog and a repartition topic named by
			// its group, both written.
			for _, tp := range []string{
				pipeline.ChangelogTopic(app.spec.Group, alerts.StorePatientAlerts),
				pipeline.RepartitionTopic(app.spec.Group, alerts.RepartitionByPatient),
			} {
				if !strings.HasPrefix(tp, prefix) {
					t.Errorf("internal topic %s does not carry the app id", tp)
				}
				if n := len(w.readAll(tp)); n == 0 {
					t.Errorf("%s is empty: the app's state went elsewhere", tp)
				}
			}
			// Its own offsets: the group committed the whole input.
			offs, err := w.adm.FetchOffsets(ctx, app.spec.Group)
			if err != nil || offs.Error() != nil {
				t.Fatalf("offsets of %s: %v %v", app.spec.Group, err, offs.Error())
			}
			if _, ok := offs.Lookup(alerts.TopicObservations, 0); !ok {
				t.Errorf("group %s committed nothing on %s", app.spec.Group, alerts.TopicObservations)
			}
		})
	}
	// Nothing under the built-in names: no group, no changelog, no
	// alerts on the built-in topic from green (blue writes there).
	groups, err := w.adm.ListGroups(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, g := range groups.Groups() {
		if g == alerts.Group {
			t.Errorf("the built-in group %s exists: an app id did not reach it", g)
		}
	}
	td, err := w.adm.ListTopics(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if td.Has(pipeline.ChangelogTopic(alerts.Group, alerts.StorePatientAlerts)) {
		t.Errorf("the built-in changelog exists: an app id did not reach it")
	}
	// The transactional ids carry the app ids (kfake lists them).
	txns, err := w.adm.ListTransactions(ctx, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, tx := range txns.Sorted() {
		for _, app := range apps {
			if strings.HasPrefix(tx.TxnID, app.id+"-"+alerts.Group+"-") {
				seen[app.id] = true
			}
		}
		if strings.HasPrefix(tx.TxnID, alerts.Group) {
			t.Errorf("transactional id %s has no app id", tx.TxnID)
		}
	}
	for _, app := range apps {
		if !seen[app.id] {
			t.Errorf("no transactional id of app %s among %v", app.id, txns.TransactionalIDs())
		}
	}
}
