package datasync

import (
	"errors"
	"fmt"

	"github.com/VictoriaMetrics/metrics"
	"github.com/twmb/franz-go/pkg/sr"

	"github.com/carepipe/carepipe/pipeline"
)

// Option configures a stage ([NewCDC], [NewValidation],
// [NewReconciliation]); each stage uses the options that concern it.
type Option func(*options)

type options struct {
	set       *metrics.Set
	policies  Policies
	reconcile ReconcileConfig
	sources   *Sources
	registry  *sr.Client
	names     pipeline.Names
	codec     *Codec
}

// WithMetrics sets the set a stage's metrics are registered in. Default: a
// new set.
func WithMetrics(s *metrics.Set) Option { return func(o *options) { o.set = s } }

// WithPolicies sets the validation stage's conflict policy per entity type.
// Default [DefaultPolicies].
func WithPolicies(p Policies) Option { return func(o *options) { o.policies = p } }

// WithReconcileConfig sets the reconciliation stage's expected targets and
// deadline. Default [DefaultReconcileConfig].
func WithReconcileConfig(c ReconcileConfig) Option { return func(o *options) { o.reconcile = c } }

// WithCodec sets the codec of the canonical schemas a stage decodes and
// encodes with, as [Register] returns it. Required by [NewCDC],
// [NewValidation] and [NewReconciliation]; [Specs] needs none.
func WithCodec(c *Codec) Option { return func(o *options) { o.codec = c } }

// WithNames sets the deployment's names: its app id prefixes the stages'
// groups, and with them their changelogs, repartition topics and
// transactional ids (see [pipeline.Names]). Default: the built-in names.
// The stages' topics are not renamed here: the inputs are the sources
// file's ([WithSources]), and the canonical topics are a contract derived
// from the entity types; a Names that renames topics is refused.
func WithNames(n pipeline.Names) Option { return func(o *options) { o.names = n } }

// build applies opts over the defaults and checks the result.
func build(opts []Option) (*options, error) {
	o := &options{policies: DefaultPolicies(), reconcile: DefaultReconcileConfig()}
	for _, f := range opts {
		f(o)
	}
	if o.set == nil {
		o.set = metrics.NewSet()
	}
	if o.sources == nil {
		o.sources = DefaultSources()
	}
	for _, e := range entities {
		pol, ok := o.policies[e]
		if !ok {
			return nil, fmt.Errorf("datasync: no conflict policy for entity type %s", e)
		}
		if err := pol.validate(); err != nil {
			return nil, fmt.Errorf("datasync: conflict policy for %s: %w", e, err)
		}
	}
	if err := o.reconcile.validate(); err != nil {
		return nil, err
	}
	if err := o.names.Validate(); err != nil {
		return nil, fmt.Errorf("datasync: %w", err)
	}
	if len(o.names.Topics) > 0 {
		return nil, errors.New("datasync: its topics cannot be renamed (its inputs are the sources file's)")
	}
	return o, nil
}

var errNoCodec = errors.New("datasync: a codec is required (see Register)")

// Specs are the runtime specs of the three stages as opts configure them,
// for planning their topics: no codec, no processing.
func Specs(opts ...Option) ([]pipeline.Spec, error) {
	o, err := build(opts)
	if err != nil {
		return nil, err
	}
	return []pipeline.Spec{newCDC(nil, o).Spec(), newValidation(nil, o).Spec(), newReconciliation(nil, o).Spec()}, nil
}
