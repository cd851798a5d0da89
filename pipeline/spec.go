package pipeline

import (
	"errors"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// Spec describes one pipeline: what it consumes, what it may write, the state
// it keeps and the function that processes each record. A Spec is data; a
// [Runner] gives it life.
type Spec struct {
	// Name is the pipeline's short name, used as the label pipeline of
	// its metrics (carepipe_records_in_total{pipeline="<name>"}) and in
	// logs. Required; [a-z0-9_] only.
	Name string
	// Group is the consumer group id. Transactional ids and internal topic
	// names derive from it. Required.
	Group string
	// Inputs are the topics consumed by the group. Required.
	Inputs []string
	// Outputs are the topics Process may emit to. Emitting elsewhere is a
	// processing error. Checked to exist at start-up.
	Outputs []string
	// ErrorTopic receives every record that could not be processed, whole.
	// Required.
	ErrorTopic string
	// Stores are the keyed state stores, each partitioned like the inputs
	// and backed by a compacted changelog topic <Group>-<store>-changelog.
	Stores []string
	// Repartitions name internal topics <Group>-<name>-repartition through
	// which Process re-keys records (see [Context.Repartition]). The runner
	// consumes them as inputs.
	Repartitions []string
	// GlobalTables are compacted topics held whole in memory by every
	// instance (see [GlobalTable]).
	GlobalTables []GlobalTableSpec
	// Process handles one record. It must be deterministic: see [ProcessFunc].
	Process ProcessFunc
	// Punctuate, when set, is called on every task every PunctuateEvery
	// (default 1 s, wall clock), inside a transaction, whether or not
	// records arrive: the way to fire timers kept in state (see
	// [PunctuateFunc]).
	Punctuate      PunctuateFunc
	PunctuateEvery time.Duration
	// ErrorValue, when set, builds the value of an error record from the
	// record that failed, its error type and message, and the injected
	// clock's time. Unset, the error record's value is the record's value,
	// verbatim. A pipeline whose error topic has a structured contract sets
	// it, and must keep the record whole inside the value it returns. When
	// that error record would not fit the error topic, it is called again
	// for a truncated one (see [TypeTruncated]) with a copy of the record
	// whose value is a head of the original and typ TypeTruncated, several
	// times, to find the longest head that fits: the size of what it
	// returns should grow with the head's.
	ErrorValue func(r *kgo.Record, typ ErrorType, msg string, now time.Time) []byte
	// OriginalValue is ErrorValue's inverse: the failed record's value,
	// byte for byte, from the value of its (whole, not truncated) error
	// record. A spec with ErrorValue sets it, so that its error records
	// can be replayed (carepipe errors replay); the key and headers are
	// the error record's own, less the error headers.
	OriginalValue func(errorValue []byte) ([]byte, error)
}

// PunctuateFunc runs on a task with no record: it reads the time from
// c.Now (the injected clock), and may read and write the task's state and
// emit, as a ProcessFunc may. Context.Repartition is not available (there
// is no record to re-send). An error discards what the call wrote and
// emitted and is logged; the next punctuation tries again.
//
// A task punctuates once its state is prepared, which it is as soon as its
// partition is assigned, input or none: when none of its changelogs has an
// open transaction any more (so no previous owner's writes are still to
// come), it is restored, caught up or kept (see [Runner]).
type PunctuateFunc func(c *Context) error

// DefaultPunctuateEvery is the punctuation interval when a Spec sets none.
const DefaultPunctuateEvery = time.Second

func (s *Spec) punctuateEvery() time.Duration {
	if s.PunctuateEvery > 0 {
		return s.PunctuateEvery
	}
	return DefaultPunctuateEvery
}

// GlobalTableSpec names a compacted topic that every instance holds whole in
// memory, restored before processing starts and kept up to date while
// running.
type GlobalTableSpec struct {
	Topic string
	// Decode turns a record into the value held for its key. A nil value
	// (or a tombstone) deletes the key. Records it fails on are counted and
	// skipped: a table is a cache of its topic, not a consumer of record.
	Decode func(key, value []byte) (any, error)
}

// ProcessFunc processes one record. It may read and write state through c,
// emit records through c, and read global tables through c. It must not
// read the wall clock, randomness or the environment, nor call out of the
// process: that is what makes a replay produce identical records.
//
// Returning an error sends the record whole to the error topic and discards
// everything the call emitted or wrote to state; wrap the error with
// [Reject] to classify it, or with [Transient] when the record is not at
// fault and must be processed again instead. A panic is recovered and handled the same way,
// with error-type "panic".
type ProcessFunc func(c *Context, r *kgo.Record) error

// ErrorType classifies why a record went to the error topic. It is written
// to the error-type header and used as a metric label, so it is a small,
// fixed set.
type ErrorType string

const (
	// TypeDecode: the record could not be decoded (not JSON, wrong shape).
	TypeDecode ErrorType = "decode"
	// TypeInvalid: the record decoded but breaks a rule of its contract.
	TypeInvalid ErrorType = "invalid"
	// TypeOversized: the record is larger than the pipeline accepts.
	TypeOversized ErrorType = "oversized"
	// TypeProcessing: the processor failed for another reason.
	TypeProcessing ErrorType = "processing"
	// TypePanic: the processor panicked.
	TypePanic ErrorType = "panic"
	// TypeConflict: the record lost to newer state (a stale update), and
	// the pipeline reports that on its error topic rather than dropping it.
	TypeConflict ErrorType = "conflict"
)

// RecordError is a per-record failure: the record goes to the error topic and
// the partition moves on. Its message must never quote record content.
type RecordError struct {
	Type ErrorType
	Err  error
}

func (e *RecordError) Error() string { return string(e.Type) + ": " + e.Err.Error() }
func (e *RecordError) Unwrap() error { return e.Err }

// Reject classifies err as a per-record failure of the given type.
func Reject(t ErrorType, err error) error {
	return &RecordError{Type: t, Err: err}
}

// Rejectf is Reject with a formatted message. The message must not quote
// record content.
func Rejectf(t ErrorType, format string, args ...any) error {
	return &RecordError{Type: t, Err: fmt.Errorf(format, args...)}
}

// TransientError is a failure of something outside the record (a schema
// registry that does not answer, say): processing it again later may
// succeed. The runner does not send the record to the error topic: it
// dooms the open transaction, so nothing the session processed since its
// last commit is committed, and rebuilds the session from the committed
// offsets after a backoff (250 ms doubling to 5 s, as for any session
// failure), which processes the record again.
type TransientError struct {
	Err error
}

func (e *TransientError) Error() string { return "transient: " + e.Err.Error() }
func (e *TransientError) Unwrap() error { return e.Err }

// Transient classifies err as a transient failure: see [TransientError].
func Transient(err error) error { return &TransientError{Err: err} }

// errorTypeOf returns the classification of a processor error.
func errorTypeOf(err error) ErrorType {
	var re *RecordError
	if errors.As(err, &re) {
		return re.Type
	}
	return TypeProcessing
}

// ChangelogTopic is the changelog topic of store in group.
func ChangelogTopic(group, store string) string { return group + "-" + store + "-changelog" }

// RepartitionTopic is the internal repartition topic name in group.
func RepartitionTopic(group, name string) string { return group + "-" + name + "-repartition" }

func (s *Spec) validate() error {
	switch {
	case s.Name == "":
		return errors.New("pipeline spec: missing Name")
	case s.Group == "":
		return fmt.Errorf("pipeline %s: missing Group", s.Name)
	case len(s.Inputs) == 0:
		return fmt.Errorf("pipeline %s: no Inputs", s.Name)
	case s.ErrorTopic == "":
		return fmt.Errorf("pipeline %s: missing ErrorTopic", s.Name)
	case s.Process == nil:
		return fmt.Errorf("pipeline %s: missing Process", s.Name)
	}
	for _, c := range s.Name {
		if (c < 'a' || c > 'z') && (c < '0' || c > '9') && c != '_' {
			return fmt.Errorf("pipeline %q: Name must be [a-z0-9_]", s.Name)
		}
	}
	for _, g := range s.GlobalTables {
		if g.Topic == "" || g.Decode == nil {
			return fmt.Errorf("pipeline %s: global table needs Topic and Decode", s.Name)
		}
	}
	return nil
}

// consumedTopics are the topics the group consumes: inputs and repartitions.
func (s *Spec) consumedTopics() []string {
	ts := append([]string(nil), s.Inputs...)
	for _, r := range s.Repartitions {
		ts = append(ts, RepartitionTopic(s.Group, r))
	}
	return ts
}
