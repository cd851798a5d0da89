// Package orders is the exactly-once medication order processor (DESIGN.md,
// "Exactly-once order processing"): each order submitted on
// medication.order.submitted is written to medication.order.processed with
// status PROCESSED and the time it was processed, in the same transaction
// as the consumer offset, so a crash or rebalance never loses or repeats
// one.
//
// What this package exports is its contract and nothing else: the names
// of the pipeline, its group and topics, the event source and the
// PROCESSED status its outputs carry; [New] with its options; and the
// [Processor]'s [Processor.Spec] (run it with a pipeline.Runner, or test it
// with a pipeline.Harness) and its [Processor.Processed] count. How an
// order becomes its processed form is internal: tests reach it through
// the Spec, which a pipeline.Harness runs as the runtime does.
package orders

import (
	"fmt"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/carepipe/carepipe/pipeline"
	"github.com/carepipe/carepipe/pipeline/envelope"
	"github.com/carepipe/carepipe/pipeline/jsontext"
)

// Names of the pipeline, its group and topics.
const (
	Name            = "orders"
	Group           = "medication-order-processor"
	TopicSubmitted  = "medication.order.submitted"
	TopicProcessed  = "medication.order.processed"
	TopicErrors     = "medication.order.errors"
	EventSource     = "carepipe.orders"
	StatusProcessed = "PROCESSED"
)

// Option configures a [Processor]. Options are validated once, by [New].
type Option func(*cfg)

type cfg struct {
	set   *metrics.Set
	names pipeline.Names
}

// WithMetrics sets the set the processor's metrics are registered in.
// Default (or nil): a new set.
func WithMetrics(s *metrics.Set) Option { return func(c *cfg) { c.set = s } }

// WithNames sets the deployment's names of the group and topics (an app
// id, renamed topics; see [pipeline.Names]). Default: the built-in names.
func WithNames(n pipeline.Names) Option { return func(c *cfg) { c.names = n } }

// Processor processes orders; it keeps no state.
type Processor struct {
	processed *metrics.Counter
	names     pipeline.Names
	// out is the deployment's name of medication.order.processed.
	out string
}

// New builds the processor. It fails only on invalid options.
func New(opts ...Option) (*Processor, error) {
	var c cfg
	for _, o := range opts {
		o(&c)
	}
	if c.set == nil {
		c.set = metrics.NewSet()
	}
	if err := c.names.Validate(); err != nil {
		return nil, fmt.Errorf("orders: %w", err)
	}
	return &Processor{
		processed: c.set.GetOrCreateCounter(`carepipe_orders_processed_total{pipeline="` + Name + `"}`),
		names:     c.names,
		out:       c.names.Topic(TopicProcessed),
	}, nil
}

// Processed counts orders processed by this processor (for the demo's
// summary line; not transactional).
func (p *Processor) Processed() uint64 { return p.processed.Get() }

// Spec is the pipeline's runtime spec.
func (p *Processor) Spec() pipeline.Spec {
	return pipeline.Spec{
		Name:       Name,
		Group:      p.names.Group(Group),
		Inputs:     []string{p.names.Topic(TopicSubmitted)},
		Outputs:    []string{p.out},
		ErrorTopic: p.names.Topic(TopicErrors),
		Process:    p.process,
	}
}

// process is the pipeline's [pipeline.ProcessFunc]: it writes the order in
// r to medication.order.processed, keyed as it came, with its correlation
// id. Errors are [processed]'s record errors: the record goes to
// medication.order.errors whole.
func (p *Processor) process(c *pipeline.Context, r *kgo.Record) error {
	v, meta, err := processed(r.Value, c.Now())
	if err != nil {
		return err
	}
	corr := envelope.CorrelationID(r, meta)
	c.Emit(&kgo.Record{Topic: p.out, Key: r.Key, Value: v, Headers: envelope.OutputHeaders(corr, EventSource, TopicProcessed)})
	p.processed.Inc()
	return nil
}

// processed is the processed form of an order (enveloped or bare): every
// member of the order as sent, in order, bytes untouched, then status
// PROCESSED and processedAt (RFC 3339, UTC) at now; an order's own status
// and processedAt are replaced. It also returns the envelope's metadata.
// Errors are [pipeline.RecordError]s: [pipeline.TypeDecode] for a value
// that is not a JSON object, [pipeline.TypeInvalid] for an order without a
// string id or patientId. Messages never quote the order.
func processed(value []byte, now time.Time) ([]byte, envelope.Metadata, error) {
	order := value
	meta, payload, err := envelope.Parse(value)
	if err == nil {
		order = payload
	}
	var s jsontext.Scanner
	s.Reset(order)
	if s.Peek() != jsontext.Object {
		return nil, meta, pipeline.Rejectf(pipeline.TypeDecode, "order is not a JSON object")
	}
	out := make([]byte, 0, len(order)+64)
	out = append(out, '{')
	var id, patient string
	for more := s.Object(); more; more = s.NextMember() {
		key := string(s.Key())
		switch key {
		case "status", "processedAt":
			s.Skip()
			continue
		case "id":
			id = stringValue(&s, &out, key)
			continue
		case "patientId":
			patient = stringValue(&s, &out, key)
			continue
		}
		out = appendMember(out, key, s.Raw())
	}
	s.End()
	if err := s.Err(); err != nil {
		return nil, meta, pipeline.Rejectf(pipeline.TypeDecode, "order: %w", err)
	}
	if id == "" || patient == "" {
		return nil, meta, pipeline.Rejectf(pipeline.TypeInvalid, "order has no id or no patientId (strings)")
	}
	out = appendMember(out, "status", jsontext.AppendString(nil, StatusProcessed))
	out = appendMember(out, "processedAt", jsontext.AppendString(nil, now.UTC().Format(time.RFC3339Nano)))
	return append(out, '}'), meta, nil
}

// stringValue copies a member that should be a string and returns it; a
// value of another kind is copied and returns "".
func stringValue(s *jsontext.Scanner, out *[]byte, key string) string {
	if s.Peek() != jsontext.String {
		*out = appendMember(*out, key, s.Raw())
		return ""
	}
	v := s.String()
	*out = appendMember(*out, key, jsontext.AppendString(nil, v))
	return v
}

func appendMember(out []byte, key string, raw []byte) []byte {
	if len(out) > 1 {
		out = append(out, ',')
	}
	out = jsontext.AppendString(out, key)
	out = append(out, ':')
	return append(out, raw...)
}
