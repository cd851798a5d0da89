package envelope

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

func TestParse(t *testing.T) {
	ts := time.Date(2024, 4, 5, 17, 41, 18, 901_000_000, time.UTC)
	tests := []struct {
		name        string
		value       string
		wantMeta    Metadata
		wantPayload string
	}{
		{
			name:        "envelope with ms timestamp",
			value:       `{"metadata":{"eventId":"e1","eventType":"ObservationCreated","eventSource":"fhir","correlationId":"c1","timestamp":1712338878901},"payload":{"resourceType":"Observation","id":"o1"}}`,
			wantMeta:    Metadata{EventID: "e1", EventType: "ObservationCreated", EventSource: "fhir", CorrelationID: "c1", Timestamp: ts},
			wantPayload: `{"resourceType":"Observation","id":"o1"}`,
		},
		{
			name:        "envelope with RFC 3339 timestamp",
			value:       `{"metadata":{"timestamp":"2024-04-05T19:41:18.901+02:00"},"payload":{"a":1}}`,
			wantMeta:    Metadata{Timestamp: ts},
			wantPayload: `{"a":1}`,
		},
		{
			name:        "envelope with an escaped RFC 3339 timestamp",
			value:       `{"metadata":{"timestamp":"2024-04-05T19:41:18.901\u002b02:00"},"payload":{"a":1}}`,
			wantMeta:    Metadata{Timestamp: ts},
			wantPayload: `{"a":1}`,
		},
		{
			name:        "envelope with fractional ms timestamp",
			value:       `{"metadata":{"timestamp":1712338878900.5},"payload":{"a":1}}`,
			wantMeta:    Metadata{Timestamp: ts.Add(-500 * time.Microsecond)},
			wantPayload: `{"a":1}`,
		},
		{
			name:        "payload before metadata",
			value:       `{"payload":[1,2], "metadata":{"eventId":"e2"}}`,
			wantMeta:    Metadata{EventID: "e2"},
			wantPayload: `[1,2]`,
		},
		{
			name:        "envelope without metadata",
			value:       `{"payload":{"a":1}}`,
			wantPayload: `{"a":1}`,
		},
		{
			name:        "envelope with null metadata and timestamp",
			value:       `{"metadata":{"timestamp":null},"payload":{"a":1}}`,
			wantPayload: `{"a":1}`,
		},
		{
			name:        "bare payload",
			value:       `{"resourceType":"Observation","id":"o1","meta":{"versionId":"1"}}`,
			wantPayload: `{"resourceType":"Observation","id":"o1","meta":{"versionId":"1"}}`,
		},
		{
			name:        "null payload is a bare payload",
			value:       `{"metadata":{"eventId":"e1"},"payload":null}`,
			wantPayload: `{"metadata":{"eventId":"e1"},"payload":null}`,
		},
		{
			name:        "escaped strings in metadata",
			value:       `{"metadata":{"correlationId":"a\"b\u00e9"},"payload":{}}`,
			wantMeta:    Metadata{CorrelationID: "a\"bé"},
			wantPayload: `{}`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			meta, payload, err := Parse([]byte(tt.value))
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if !meta.Timestamp.Equal(tt.wantMeta.Timestamp) {
				t.Errorf("timestamp = %v, want %v", meta.Timestamp, tt.wantMeta.Timestamp)
			}
			meta.Timestamp, tt.wantMeta.Timestamp = time.Time{}, time.Time{}
			if meta != tt.wantMeta {
				t.Errorf("metadata = %+v, want %+v", meta, tt.wantMeta)
			}
			if string(payload) != tt.wantPayload {
				t.Errorf("payload = %s, want %s", payload, tt.wantPayload)
			}
		})
	}
}

func TestParseErrors(t *testing.T) {
	// Every input carries the marker: no error message may contain it, nor
	// any other run of the input's bytes longer than a few characters.
	const marker = "SECRETJOHNDOE"
	tests := []struct {
		name       string
		value      string
		want       error
		wantOffset int
	}{
		{name: "not JSON", value: `SECRETJOHNDOE`, want: ErrSyntax, wantOffset: 1},
		{name: "truncated", value: `{"payload":{"name":"SECRETJOHNDOE"`, want: ErrSyntax, wantOffset: 34},
		{name: "bad byte in payload", value: `{"payload":{"name":"SECRETJOHNDOE",}}`, want: ErrSyntax, wantOffset: 36},
		{name: "trailing garbage", value: `{"payload":{"name":"SECRETJOHNDOE"}} x`, want: ErrSyntax, wantOffset: 38},
		{name: "empty", value: ``, want: ErrSyntax, wantOffset: 0},
		{name: "array", value: `["SECRETJOHNDOE"]`, want: ErrShape, wantOffset: -1},
		{name: "metadata of wrong type", value: `{"metadata":"SECRETJOHNDOE","payload":{}}`, want: ErrShape, wantOffset: -1},
		{name: "correlation id of wrong type", value: `{"metadata":{"correlationId":["SECRETJOHNDOE"]},"payload":{}}`, want: ErrShape, wantOffset: -1},
		{name: "timestamp not a time", value: `{"metadata":{"timestamp":"SECRETJOHNDOE"},"payload":{}}`, want: ErrTimestamp, wantOffset: -1},
		{name: "timestamp out of range", value: `{"metadata":{"timestamp":1e300},"payload":{"SECRETJOHNDOE":1}}`, want: ErrTimestamp, wantOffset: -1},
		{name: "timestamp bool", value: `{"metadata":{"timestamp":true},"payload":{"SECRETJOHNDOE":1}}`, want: ErrTimestamp, wantOffset: -1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := Parse([]byte(tt.value))
			if !errors.Is(err, tt.want) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("err is %T, want *Error", err)
			}
			if e.Offset != tt.wantOffset {
				t.Errorf("offset = %d, want %d", e.Offset, tt.wantOffset)
			}
			assertNoContent(t, err.Error(), tt.value, marker)
		})
	}
}

func TestDecode(t *testing.T) {
	type obs struct {
		ID    string  `json:"id"`
		Value float64 `json:"value"`
	}
	tests := []struct {
		name       string
		value      string
		want       obs
		wantErr    error
		wantOffset int
	}{
		{name: "envelope", value: `{"metadata":{"eventId":"e"},"payload":{"id":"o1","value":0}}`, want: obs{ID: "o1"}},
		{name: "bare", value: `{"id":"o2","value":1.5}`, want: obs{ID: "o2", Value: 1.5}},
		{name: "payload of wrong shape", value: `{"payload":{"id":7}}`, wantErr: ErrShape, wantOffset: -1},
		{name: "bare not JSON", value: `{"id":"o2",`, wantErr: ErrSyntax, wantOffset: 11},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got obs
			_, err := Decode([]byte(tt.value), &got)
			if tt.wantErr != nil {
				var e *Error
				if !errors.Is(err, tt.wantErr) || !errors.As(err, &e) || e.Offset != tt.wantOffset {
					t.Fatalf("err = %v, want %v at %d", err, tt.wantErr, tt.wantOffset)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

// assertNoContent fails if msg quotes input: the marker, or any 6-byte run
// of input that is not also in the fixed error vocabulary.
func assertNoContent(t *testing.T, msg, input, marker string) {
	t.Helper()
	if strings.Contains(msg, marker) {
		t.Fatalf("error %q quotes the input", msg)
	}
	for i := 0; i+6 <= len(input); i++ {
		run := input[i : i+6]
		if strings.Contains(msg, run) && !strings.Contains(fixedVocabulary, run) {
			t.Fatalf("error %q contains input bytes %q", msg, run)
		}
	}
}

var fixedVocabulary = strings.Join([]string{
	ErrSyntax.Error(), ErrShape.Error(), ErrTimestamp.Error(), " at byte offset ",
}, "|")

func TestCorrelationID(t *testing.T) {
	rec := func(headers ...kgo.RecordHeader) *kgo.Record {
		return &kgo.Record{Topic: "fhir.Observation", Partition: 3, Offset: 42, Headers: headers}
	}
	derived := DerivedCorrelationID("fhir.Observation", 3, 42)
	tests := []struct {
		name string
		r    *kgo.Record
		meta Metadata
		want string
	}{
		{name: "header wins", r: rec(kgo.RecordHeader{Key: "correlation-id", Value: []byte("h1")}), meta: Metadata{CorrelationID: "m1"}, want: "h1"},
		{name: "first non-empty header", r: rec(kgo.RecordHeader{Key: "correlation-id"}, kgo.RecordHeader{Key: "x", Value: []byte("no")}, kgo.RecordHeader{Key: "correlation-id", Value: []byte("h2")}), want: "h2"},
		{name: "metadata when no header", r: rec(kgo.RecordHeader{Key: "other", Value: []byte("x")}), meta: Metadata{CorrelationID: "m1"}, want: "m1"},
		{name: "derived when neither", r: rec(), want: derived},
		{name: "derived from coordinates only", r: &kgo.Record{Topic: "fhir.Observation", Partition: 3, Offset: 42, Value: []byte("other value")}, want: derived},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := CorrelationID(tt.r, tt.meta); got != tt.want {
				t.Errorf("CorrelationID = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestDerivedCorrelationID(t *testing.T) {
	a := DerivedCorrelationID("t", 1, 2)
	tests := []struct {
		name  string
		other string
		same  bool
	}{
		{name: "deterministic", other: DerivedCorrelationID("t", 1, 2), same: true},
		{name: "offset matters", other: DerivedCorrelationID("t", 1, 3)},
		{name: "partition matters", other: DerivedCorrelationID("t", 2, 2)},
		{name: "topic matters", other: DerivedCorrelationID("u", 1, 2)},
		{name: "no ambiguity between fields", other: DerivedCorrelationID("t/1", 2, 2)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if (a == tt.other) != tt.same {
				t.Errorf("%q vs %q: same = %v, want %v", a, tt.other, a == tt.other, tt.same)
			}
		})
	}
	if len(a) != 32 {
		t.Errorf("len = %d, want 32 hex digits", len(a))
	}
	// Pinned (echo -n t/1/2 | sha256sum): a replay by another build or
	// version must derive the same id.
	if want := "092eb7c76c82dbf504e9ca1579d79ff9"; a != want {
		t.Errorf("DerivedCorrelationID(t, 1, 2) = %s, want %s", a, want)
	}
}

func TestOutputHeaders(t *testing.T) {
	hs := OutputHeaders("c1", "carepipe.alerts", "ClinicalAlert")
	want := []kgo.RecordHeader{
		{Key: "correlation-id", Value: []byte("c1")},
		{Key: "event-source", Value: []byte("carepipe.alerts")},
		{Key: "event-type", Value: []byte("ClinicalAlert")},
	}
	if len(hs) != len(want) {
		t.Fatalf("got %d headers, want %d", len(hs), len(want))
	}
	for i := range want {
		if hs[i].Key != want[i].Key || !bytes.Equal(hs[i].Value, want[i].Value) {
			t.Errorf("header %d = %s=%s, want %s=%s", i, hs[i].Key, hs[i].Value, want[i].Key, want[i].Value)
		}
	}
}
