package catalog

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/twmb/franz-go/pkg/sr"

	"github.com/carepipe/carepipe/pipeline"
	"github.com/carepipe/carepipe/pipeline/alerts"
	"github.com/carepipe/carepipe/pipeline/alerts/rules"
	"github.com/carepipe/carepipe/pipeline/datasync"
	"github.com/carepipe/carepipe/pipeline/orders"
	"github.com/carepipe/carepipe/pipeline/priorauth"
)

// Settings are what every pipeline is built from. Zero values are the
// defaults each field names; a pipeline reads the fields that concern it.
type Settings struct {
	// AppID namespaces every group, internal topic and transactional id
	// (see [pipeline.Names]); empty: the built-in names, which a running
	// deployment keeps.
	AppID string
	// Topics renames topics per pipeline: pipeline name, then built-in
	// topic name, to the deployment's name. Only a pipeline's
	// [Pipeline.Renamable] topics may be renamed ([Settings.Check]).
	Topics map[string]map[string]string
	// Metrics is the set a stage registers its metrics in, by stage
	// name; nil (or a nil set): a new set per stage.
	Metrics func(stage string) *metrics.Set

	// Rules is the alert rule pack; nil: rules.Default.
	Rules *rules.Pack
	// SiteZone is the alerts' site time zone (alerts.WithSiteTimeZone).
	SiteZone *time.Location
	// PriorAuth is the orchestrator's configuration; nil:
	// priorauth.DefaultConfig.
	PriorAuth *priorauth.Config
	// Registry is datasync's schema registry: Build registers the
	// canonical schemas there, refusing an incompatible change. Required
	// to build datasync, not for its specs.
	Registry *sr.Client
	// Codec, when set, is datasync's codec of the canonical schemas as
	// the caller got it from Registry (registered, or looked up when
	// schemas are not registered automatically, with what retries it
	// chose): Build then registers nothing itself.
	Codec *datasync.Codec
	// Sources are datasync's sources; nil: the built-in sources.
	Sources *datasync.Sources
	// Reconcile is datasync's reconciliation configuration; nil:
	// datasync.DefaultReconcileConfig.
	Reconcile *datasync.ReconcileConfig
}

// Names is the naming of pipeline p: the app id and p's renamed topics.
func (s *Settings) Names(p string) pipeline.Names {
	return pipeline.Names{AppID: s.AppID, Topics: s.Topics[p]}
}

func (s *Settings) metrics(stage string) *metrics.Set {
	if s.Metrics != nil {
		if set := s.Metrics(stage); set != nil {
			return set
		}
	}
	return metrics.NewSet()
}

// Stage is one runner's worth of a built pipeline (datasync has three).
type Stage struct {
	// Name is the stage's name in summaries and /readyz: the pipeline's
	// own, or sync-cdc, sync-val, sync-rec for datasync's.
	Name string
	Spec pipeline.Spec
	// Metrics is the set the stage's processor registered in; the
	// runner's go there too.
	Metrics *metrics.Set
	// Processor is the use case's processor: *alerts.Processor,
	// *priorauth.Processor, *orders.Processor, *datasync.CDC,
	// *datasync.Validation or *datasync.Reconciliation.
	Processor any
	// Routes are the query API the stage serves from its runner's state.
	Routes []Route
}

// Route is a query API handler on the stage's runner, served at each of
// Patterns (net/http ServeMux patterns).
type Route struct {
	Patterns []string
	Handler  func(*pipeline.Runner) http.Handler
}

// Pipeline is one row of the table.
type Pipeline struct {
	// Name is what --pipelines says: alerts, priorauth, datasync, orders.
	Name  string
	build func(ctx context.Context, s *Settings, n pipeline.Names) ([]Stage, error)
	specs func(s *Settings, n pipeline.Names) ([]pipeline.Spec, error)
	// fixedTopics: the pipeline renames no topic (see Renamable).
	fixedTopics bool
	// Queries says whether a stage serves a query API (Stage.Routes),
	// which answers with patient data: known before building, so that a
	// configuration can be checked without a registry.
	Queries bool
	// Notes say of each stage, by its spec's name, what the Spec does not
	// carry: for carepipe describe.
	Notes map[string]Notes
}

// Notes are what a stage says of itself that its Spec does not carry: how
// its records are keyed and what its timers are.
type Notes struct {
	Keys, Timers string
}

// NotesOf are the notes of the stage whose spec is named spec; none for
// a name no row has.
func NotesOf(spec string) Notes {
	for _, p := range All() {
		if n, ok := p.Notes[spec]; ok {
			return n
		}
	}
	return Notes{}
}

// Build builds the pipeline's stages with s, in start order. ctx bounds
// what building does on the network (datasync's schema registration).
func (p Pipeline) Build(ctx context.Context, s Settings) ([]Stage, error) {
	if err := s.checkPipeline(p); err != nil {
		return nil, err
	}
	return p.build(ctx, &s, s.Names(p.Name))
}

// Specs are the specs of the stages Build would build with s, without
// processing them: for planning and describing topics.
func (p Pipeline) Specs(s Settings) ([]pipeline.Spec, error) {
	if err := s.checkPipeline(p); err != nil {
		return nil, err
	}
	return p.specs(&s, s.Names(p.Name))
}

// Renamable are the built-in names of the topics a deployment may rename:
// inputs, outputs, error topic and global tables; not the internal topics,
// which the app id names. datasync's are none: its inputs are its sources
// file's.
func (p Pipeline) Renamable() []string {
	if p.fixedTopics {
		return nil
	}
	specs, err := p.specs(&Settings{}, pipeline.Names{})
	if err != nil {
		return nil
	}
	var out []string
	for i := range specs {
		for _, t := range specs[i].Topics() {
			if !t.Internal() && !slices.Contains(out, t.Name) {
				out = append(out, t.Name)
			}
		}
	}
	return out
}

// All is the table, in start order.
func All() []Pipeline {
	return []Pipeline{
		{Name: alerts.Name, build: buildAlerts, specs: specsOf(buildAlerts), Notes: map[string]Notes{
			alerts.Name: {Keys: "observations by patient id (any other key, or a patient another partition owns, is re-keyed through the repartition topic); " +
				"fhir.Patient, the state and every output by patient id"},
		}},
		{Name: priorauth.Name, build: buildPriorAuth, specs: specsOf(buildPriorAuth), Queries: true, Notes: map[string]Notes{
			priorauth.Name: {
				Keys: "prescriptions by prescription id, re-keyed through the repartition topic by the prior-auth id derived from it; " +
					"every later event, the state and every output by prior-auth id",
				Timers: "per prior authorization, its earliest due timer (SLA breach, status check, expiry, purge) in the timers store, fired when due",
			},
		}},
		{Name: datasync.Name, build: buildDataSync, specs: specsDataSync, fixedTopics: true, Queries: true, Notes: map[string]Notes{
			datasync.NameCDC:        {Keys: "source records as the source system keys them; canonical changes by entity id"},
			datasync.NameValidation: {Keys: "by entity id (a change keyed otherwise is re-keyed through the repartition topic); the state and validated versions too"},
			datasync.NameReconciliation: {
				Keys:   "by entity id (validated versions and target acknowledgements keyed otherwise are re-keyed through the repartition topic)",
				Timers: "per entity, the deadline of its latest validated version in the timers store: reconciliation.<entity>.overdue when no acknowledgement came in time",
			},
		}},
		{Name: orders.Name, build: buildOrders, specs: specsOf(buildOrders), Notes: map[string]Notes{
			orders.Name: {Keys: "orders keep their key, input to output"},
		}},
	}
}

// Names are the pipelines' names, in start order.
func Names() []string {
	var out []string
	for _, p := range All() {
		out = append(out, p.Name)
	}
	return out
}

// Lookup is the pipeline called name.
func Lookup(name string) (Pipeline, bool) {
	for _, p := range All() {
		if p.Name == name {
			return p, true
		}
	}
	return Pipeline{}, false
}

// RenameError is a mistake in Settings.Topics: a pipeline that does not
// exist, a topic it cannot rename, a name Kafka refuses.
type RenameError struct {
	// Pipeline and Topic (its built-in name; empty for a mistake in the
	// pipeline's whole entry).
	Pipeline, Topic string
	Err             error
}

func (e *RenameError) Error() string {
	if e.Topic == "" {
		return fmt.Sprintf("topics of %s: %v", e.Pipeline, e.Err)
	}
	return fmt.Sprintf("topic %s of %s: %v", e.Topic, e.Pipeline, e.Err)
}

func (e *RenameError) Unwrap() error { return e.Err }

// Check reports every mistake in the app id and the renamed topics: the
// app id's as an error of its own, each rename's as a *RenameError.
func (s Settings) Check() error {
	var errs []error
	if s.AppID != "" {
		if err := (pipeline.Names{AppID: s.AppID}).Validate(); err != nil {
			errs = append(errs, err)
		}
	}
	for _, name := range sortedKeys(s.Topics) {
		p, ok := Lookup(name)
		if !ok {
			errs = append(errs, &RenameError{Pipeline: name, Err: fmt.Errorf("no such pipeline (known: %v)", Names())})
			continue
		}
		errs = append(errs, s.checkRenames(p)...)
	}
	return errors.Join(errs...)
}

// checkPipeline is Check for p's renames only.
func (s *Settings) checkPipeline(p Pipeline) error {
	if err := s.Names(p.Name).Validate(); err != nil {
		return fmt.Errorf("%s: %w", p.Name, err)
	}
	return errors.Join(s.checkRenames(p)...)
}

func (s *Settings) checkRenames(p Pipeline) []error {
	renames := s.Topics[p.Name]
	if len(renames) == 0 {
		return nil
	}
	allowed := p.Renamable()
	var errs []error
	for _, from := range sortedKeys(renames) {
		to := renames[from]
		switch {
		case len(allowed) == 0:
			errs = append(errs, &RenameError{Pipeline: p.Name, Topic: from, Err: errors.New("this pipeline's topics cannot be renamed (datasync's inputs are its sources file's)")})
		case !slices.Contains(allowed, from):
			errs = append(errs, &RenameError{Pipeline: p.Name, Topic: from, Err: fmt.Errorf("not a topic of %s that can be renamed (those are: %v)", p.Name, allowed)})
		case to != from && slices.Contains(allowed, to) && renames[to] == "":
			errs = append(errs, &RenameError{Pipeline: p.Name, Topic: from, Err: fmt.Errorf("renamed to %s, which %s uses already", to, p.Name)})
		default:
			if err := (pipeline.Names{Topics: map[string]string{from: to}}).Validate(); err != nil {
				errs = append(errs, &RenameError{Pipeline: p.Name, Topic: from, Err: err})
			}
		}
	}
	if len(errs) == 0 {
		if err := (pipeline.Names{Topics: renames}).Validate(); err != nil {
			errs = append(errs, &RenameError{Pipeline: p.Name, Err: err})
		}
	}
	return errs
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// specsOf is the specs of a pipeline whose build needs nothing from the
// network: its built stages' specs.
func specsOf(build func(context.Context, *Settings, pipeline.Names) ([]Stage, error)) func(*Settings, pipeline.Names) ([]pipeline.Spec, error) {
	return func(s *Settings, n pipeline.Names) ([]pipeline.Spec, error) {
		stages, err := build(context.Background(), s, n)
		if err != nil {
			return nil, err
		}
		specs := make([]pipeline.Spec, len(stages))
		for i, st := range stages {
			specs[i] = st.Spec
		}
		return specs, nil
	}
}

func buildAlerts(_ context.Context, s *Settings, n pipeline.Names) ([]Stage, error) {
	set := s.metrics(alerts.Name)
	opts := []alerts.Option{alerts.WithMetrics(set), alerts.WithSiteTimeZone(s.SiteZone), alerts.WithNames(n)}
	if s.Rules != nil {
		opts = append(opts, alerts.WithRules(*s.Rules))
	}
	p, err := alerts.New(opts...)
	if err != nil {
		return nil, err
	}
	return []Stage{{Name: alerts.Name, Spec: p.Spec(), Metrics: set, Processor: p}}, nil
}

func buildPriorAuth(_ context.Context, s *Settings, n pipeline.Names) ([]Stage, error) {
	set := s.metrics(priorauth.Name)
	opts := []priorauth.Option{priorauth.WithMetrics(set), priorauth.WithNames(n)}
	if s.PriorAuth != nil {
		opts = append(opts, priorauth.WithConfig(*s.PriorAuth))
	}
	p, err := priorauth.New(opts...)
	if err != nil {
		return nil, err
	}
	return []Stage{{Name: priorauth.Name, Spec: p.Spec(), Metrics: set, Processor: p, Routes: []Route{{
		Patterns: []string{"GET /api/priorauth", "GET /api/priorauth/{id}"},
		Handler:  priorauth.QueryHandler,
	}}}}, nil
}

func buildOrders(_ context.Context, s *Settings, n pipeline.Names) ([]Stage, error) {
	set := s.metrics(orders.Name)
	p, err := orders.New(orders.WithMetrics(set), orders.WithNames(n))
	if err != nil {
		return nil, err
	}
	return []Stage{{Name: orders.Name, Spec: p.Spec(), Metrics: set, Processor: p}}, nil
}

// dataSyncOptions are the options every datasync stage shares.
func dataSyncOptions(s *Settings, n pipeline.Names) []datasync.Option {
	opts := []datasync.Option{datasync.WithNames(n)}
	if s.Sources != nil {
		opts = append(opts, datasync.WithSources(s.Sources))
	}
	if s.Reconcile != nil {
		opts = append(opts, datasync.WithReconcileConfig(*s.Reconcile))
	}
	return opts
}

func specsDataSync(s *Settings, n pipeline.Names) ([]pipeline.Spec, error) {
	return datasync.Specs(dataSyncOptions(s, n)...)
}

// The names of datasync's stages in summaries and /readyz.
const (
	StageCDC            = "sync-cdc"
	StageValidation     = "sync-val"
	StageReconciliation = "sync-rec"
)

// buildDataSync registers the canonical schemas and builds the three
// stages, each with its own group and metrics.
func buildDataSync(ctx context.Context, s *Settings, n pipeline.Names) ([]Stage, error) {
	if s.Registry == nil {
		return nil, errors.New("datasync: a schema registry is required")
	}
	codec := s.Codec
	if codec == nil {
		var err error
		if codec, err = datasync.Register(ctx, s.Registry); err != nil {
			return nil, err
		}
	}
	opts := dataSyncOptions(s, n)
	set := s.metrics(StageCDC)
	cdc, err := datasync.NewCDC(append(opts, datasync.WithCodec(codec), datasync.WithSourceRegistry(s.Registry), datasync.WithMetrics(set))...)
	if err != nil {
		return nil, err
	}
	stages := []Stage{{Name: StageCDC, Spec: cdc.Spec(), Metrics: set, Processor: cdc}}
	set = s.metrics(StageValidation)
	val, err := datasync.NewValidation(append(opts, datasync.WithCodec(codec), datasync.WithMetrics(set))...)
	if err != nil {
		return nil, err
	}
	stages = append(stages, Stage{Name: StageValidation, Spec: val.Spec(), Metrics: set, Processor: val})
	set = s.metrics(StageReconciliation)
	rec, err := datasync.NewReconciliation(append(opts, datasync.WithCodec(codec), datasync.WithMetrics(set))...)
	if err != nil {
		return nil, err
	}
	stages = append(stages, Stage{Name: StageReconciliation, Spec: rec.Spec(), Metrics: set, Processor: rec, Routes: []Route{{
		Patterns: []string{"GET /api/patients/{id}", "GET /api/sync/{entity}/{id}"},
		Handler:  datasync.QueryHandler,
	}}})
	return stages, nil
}
