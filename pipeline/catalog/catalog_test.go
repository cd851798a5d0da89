package catalog

import (
	"context"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/sr"
	"github.com/twmb/franz-go/pkg/sr/srfake"

	"github.com/carepipe/carepipe/pipeline"
	"github.com/carepipe/carepipe/pipeline/alerts"
	"github.com/carepipe/carepipe/pipeline/datasync"
	"github.com/carepipe/carepipe/pipeline/orders"
	"github.com/carepipe/carepipe/pipeline/priorauth"
)

func newRegistry(t *testing.T) *sr.Client {
	t.Helper()
	reg := srfake.New()
	t.Cleanup(reg.Close)
	cl, err := sr.NewClient(sr.URLs(reg.URL()))
	if err != nil {
		t.Fatal(err)
	}
	return cl
}

// topicsOf is a spec's data: everything but its functions.
func topicsOf(s pipeline.Spec) []pipeline.TopicSpec {
	return append(s.Topics(), pipeline.TopicSpec{Name: "group=" + s.Group + " name=" + s.Name})
}

// What `topics plan` checks (Specs) is what runs (Build), for every
// pipeline, with the built-in names and with an app id and renames.
func TestSpecsAreWhatBuildBuilds(t *testing.T) {
	reg := newRegistry(t)
	for _, tc := range []struct {
		name string
		s    Settings
	}{
		{"built-in names", Settings{}},
		{"app id and renames", Settings{AppID: "staging", Topics: map[string]map[string]string{
			alerts.Name:    {alerts.TopicObservations: "staging.obs", alerts.TopicAlerts: "staging.alerts"},
			priorauth.Name: {priorauth.TopicPrescriptions: "staging.rx", priorauth.TopicErrors: "staging.pa.errors"},
			orders.Name:    {orders.TopicProcessed: "staging.orders.done"},
		}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, p := range All() {
				specs, err := p.Specs(tc.s)
				if err != nil {
					t.Fatalf("%s specs: %v", p.Name, err)
				}
				s := tc.s
				s.Registry = reg
				stages, err := p.Build(context.Background(), s)
				if err != nil {
					t.Fatalf("%s build: %v", p.Name, err)
				}
				if len(stages) != len(specs) {
					t.Fatalf("%s: %d stages built, %d specs", p.Name, len(stages), len(specs))
				}
				routes := false
				for i, st := range stages {
					if got, want := topicsOf(st.Spec), topicsOf(specs[i]); !reflect.DeepEqual(got, want) {
						t.Errorf("%s stage %s:\nbuilt %v\nspecs %v", p.Name, st.Name, got, want)
					}
					routes = routes || len(st.Routes) > 0
				}
				if routes != p.Queries {
					t.Errorf("%s: Queries %v, but its stages serve routes: %v", p.Name, p.Queries, routes)
				}
			}
		})
	}
}

// An empty app id keeps every group a running deployment has: a new group
// id would start it over, without offsets or changelogs. An app id
// prefixes every group, and so every changelog, repartition topic and
// transactional id, which derive from it.
func TestAppIDNamespacesGroupsAndInternalTopics(t *testing.T) {
	builtin := []string{alerts.Group, priorauth.Group, datasync.GroupCDC, datasync.GroupValidation, datasync.GroupReconciliation, orders.Group}
	groups := func(s Settings) []string {
		var out []string
		for _, p := range All() {
			specs, err := p.Specs(s)
			if err != nil {
				t.Fatal(err)
			}
			for i := range specs {
				out = append(out, specs[i].Group)
				for _, tp := range specs[i].Topics() {
					if tp.Internal() && !strings.HasPrefix(tp.Name, specs[i].Group+"-") {
						t.Errorf("internal topic %s is not named by its group %s", tp.Name, specs[i].Group)
					}
				}
			}
		}
		return out
	}
	if got := groups(Settings{}); !reflect.DeepEqual(got, builtin) {
		t.Errorf("groups without an app id = %v, want the built-in %v", got, builtin)
	}
	var want []string
	for _, g := range builtin {
		want = append(want, "staging-"+g)
	}
	if got := groups(Settings{AppID: "staging"}); !reflect.DeepEqual(got, want) {
		t.Errorf("groups with app id staging = %v, want %v", got, want)
	}
}

func TestSettingsCheck(t *testing.T) {
	for _, tc := range []struct {
		name string
		s    Settings
		want []string // substrings of the error, in order; none: valid
	}{
		{"none", Settings{}, nil},
		{"app id and a rename", Settings{AppID: "team-a.staging", Topics: map[string]map[string]string{alerts.Name: {alerts.TopicAlerts: "a.alerts"}}}, nil},
		{"app id with a slash", Settings{AppID: "team/a"}, []string{`app id "team/a"`}},
		{"app id too long", Settings{AppID: strings.Repeat("a", 101)}, []string{"longer than 100"}},
		{"unknown pipeline", Settings{Topics: map[string]map[string]string{"billing": {"x": "y"}}}, []string{"topics of billing: no such pipeline"}},
		{"not its topic", Settings{Topics: map[string]map[string]string{alerts.Name: {priorauth.TopicStatus: "x"}}}, []string{"topic priorauth.status of alerts: not a topic of alerts"}},
		{"internal topic", Settings{Topics: map[string]map[string]string{alerts.Name: {"clinical-alerts-stream-processor-patient-alerts-changelog": "x"}}}, []string{"not a topic of alerts"}},
		{"datasync", Settings{Topics: map[string]map[string]string{datasync.Name: {datasync.TopicErrors: "x"}}}, []string{"cannot be renamed"}},
		{"bad name", Settings{Topics: map[string]map[string]string{orders.Name: {orders.TopicProcessed: "a b"}}}, []string{"topic medication.order.processed of orders", "letters, digits"}},
		{"onto another of its topics", Settings{Topics: map[string]map[string]string{orders.Name: {orders.TopicProcessed: orders.TopicSubmitted}}}, []string{"which orders uses already"}},
		{"two onto one", Settings{Topics: map[string]map[string]string{orders.Name: {orders.TopicProcessed: "x", orders.TopicErrors: "x"}}}, []string{"both renamed to x"}},
		{"swapped", Settings{Topics: map[string]map[string]string{orders.Name: {orders.TopicProcessed: orders.TopicErrors, orders.TopicErrors: orders.TopicProcessed}}}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.s.Check()
			if len(tc.want) == 0 {
				if err != nil {
					t.Fatalf("Check() = %v, want nil", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("Check() = nil, want %q", tc.want)
			}
			msg := err.Error()
			for _, w := range tc.want {
				i := strings.Index(msg, w)
				if i < 0 {
					t.Fatalf("Check() = %q, want it to say %q", msg, w)
				}
				msg = msg[i+len(w):]
			}
		})
	}
}

// Renamed topics are the ones a spec consumes, emits to and names as its
// error topic; the renames reach the spec and nothing else.
func TestRenamesReachTheSpec(t *testing.T) {
	p, _ := Lookup(orders.Name)
	specs, err := p.Specs(Settings{Topics: map[string]map[string]string{orders.Name: {orders.TopicSubmitted: "in", orders.TopicProcessed: "out", orders.TopicErrors: "err"}}})
	if err != nil {
		t.Fatal(err)
	}
	s := specs[0]
	if !slices.Equal(s.Inputs, []string{"in"}) || !slices.Equal(s.Outputs, []string{"out"}) || s.ErrorTopic != "err" || s.Group != orders.Group {
		t.Errorf("spec = inputs %v outputs %v error %s group %s", s.Inputs, s.Outputs, s.ErrorTopic, s.Group)
	}
	if got, want := Names(), []string{alerts.Name, priorauth.Name, datasync.Name, orders.Name}; !slices.Equal(got, want) {
		t.Errorf("Names() = %v, want %v", got, want)
	}
}
