package datasync

import (
	"encoding/base64"
	"encoding/json"
	"time"
	"unicode/utf8"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/carepipe/carepipe/pipeline"
)

// errorRecord is the value of a record on data.sync.errors: the seed's
// error record, and the original record whole inside it (its value as text
// when it is UTF-8, as Avro never is, else base64). Its headers object is
// the seed's (one value per key, as text); the Kafka record itself carries
// the original headers exactly, repeated keys and binary values included,
// and the runtime's error-* headers.
type errorRecord struct {
	// ErrorType is the seed's: cdc-error, validation-error or
	// reconciliation-error.
	ErrorType string `json:"errorType"`
	// ErrorClass is the runtime's classification: decode, invalid,
	// conflict, processing, panic.
	ErrorClass      string          `json:"errorClass"`
	SourceTopic     string          `json:"sourceTopic"`
	Error           errorDetail     `json:"error"`
	OriginalMessage originalMessage `json:"originalMessage"`
	// Timestamp is when the error was recorded, ms, from the injected clock.
	Timestamp int64 `json:"timestamp"`
}

type errorDetail struct {
	Message string `json:"message"`
}

type originalMessage struct {
	Key           *string           `json:"key"`
	KeyEncoding   string            `json:"keyEncoding,omitempty"`
	Value         *string           `json:"value"`
	ValueEncoding string            `json:"valueEncoding,omitempty"`
	Headers       map[string]string `json:"headers"`
	Offset        int64             `json:"offset"`
	Partition     int32             `json:"partition"`
	Timestamp     int64             `json:"timestamp"`
}

// bytesField is b as JSON text: a string when b is UTF-8 ("" encoding),
// base64 otherwise; nil for a nil b.
func bytesField(b []byte) (*string, string) {
	if b == nil {
		return nil, ""
	}
	if utf8.Valid(b) {
		s := string(b)
		return &s, ""
	}
	s := base64.StdEncoding.EncodeToString(b)
	return &s, "base64"
}

// ErrorRecord is the data.sync.errors value of record r that failed in
// stage (cdc, validation or reconciliation).
func ErrorRecord(stage string, r *kgo.Record, typ pipeline.ErrorType, msg string, now time.Time) []byte {
	om := originalMessage{Headers: make(map[string]string, len(r.Headers)), Offset: r.Offset, Partition: r.Partition, Timestamp: r.Timestamp.UnixMilli()}
	om.Key, om.KeyEncoding = bytesField(r.Key)
	om.Value, om.ValueEncoding = bytesField(r.Value)
	for _, h := range r.Headers {
		om.Headers[h.Key] = string(h.Value)
	}
	b, err := json.Marshal(errorRecord{
		ErrorType:       stage + "-error",
		ErrorClass:      string(typ),
		SourceTopic:     r.Topic,
		Error:           errorDetail{Message: msg},
		OriginalMessage: om,
		Timestamp:       now.UnixMilli(),
	})
	if err != nil {
		// Unreachable (every field is a string, a number or a map of
		// strings), but ErrorValue cannot fail: the record's value
		// verbatim, as a pipeline without a structured error topic writes
		// it, keeps the record whole.
		return r.Value
	}
	return b
}

// OriginalValue returns the original record's value inside a
// data.sync.errors value, decoded.
func OriginalValue(errValue []byte) ([]byte, error) {
	var er errorRecord
	if err := json.Unmarshal(errValue, &er); err != nil {
		return nil, err
	}
	if er.OriginalMessage.Value == nil {
		return nil, nil
	}
	if er.OriginalMessage.ValueEncoding == "base64" {
		return base64.StdEncoding.DecodeString(*er.OriginalMessage.Value)
	}
	return []byte(*er.OriginalMessage.Value), nil
}
