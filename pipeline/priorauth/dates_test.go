package priorauth

import (
	"encoding/json"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/carepipe/carepipe/pipeline"
)

// dateCase is one case of testdata/payer_dates.json.
type dateCase struct {
	Name       string    `json:"name"`
	Field      string    `json:"field"`
	Value      string    `json:"value"`
	Zone       string    `json:"zone"`
	RecordTime time.Time `json:"recordTime"`
	At         string    `json:"at"`
	ExpiresAt  string    `json:"expiresAt"`
	Error      string    `json:"error"`
	Source     string    `json:"source"`
}

func loadDateCases(t *testing.T) []dateCase {
	t.Helper()
	b, err := os.ReadFile("testdata/payer_dates.json")
	if err != nil {
		t.Fatal(err)
	}
	var f struct{ Cases []dateCase }
	if err := json.Unmarshal(b, &f); err != nil {
		t.Fatal(err)
	}
	return f.Cases
}

// dateRecord is the bare event that carries c's value in its field.
func (c *dateCase) record() (*kgo.Record, string) {
	v := map[string]string{"priorAuthId": "pa-1"}
	topic := TopicDeterminationReceived
	switch c.Field {
	case "submissionDate":
		topic = TopicSubmissionCompleted
		v["submissionId"], v["submissionMethod"] = "sub-1", "ELECTRONIC"
	case "expirationDate":
		v["determinationStatus"] = "APPROVED"
	default:
		v["determinationStatus"] = "PENDED"
	}
	v[c.Field] = c.Value
	b, _ := json.Marshal(v)
	return &kgo.Record{Topic: topic, Value: b, Timestamp: c.RecordTime}, topic
}

// TestPayerDates reads the corpus of payer dates (testdata/payer_dates.json,
// each case citing its source) through DecodeIn: the event time of a
// determinationDate or submissionDate, the expiry of an expirationDate, or
// an invalid-record error that names the field and not the value.
func TestPayerDates(t *testing.T) {
	cases := loadDateCases(t)
	if len(cases) < 20 {
		t.Fatalf("%d cases: the corpus did not load whole", len(cases))
	}
	for _, c := range cases {
		t.Run(c.Name, func(t *testing.T) {
			if c.Source == "" {
				t.Fatal("the case cites no source")
			}
			zone, err := time.LoadLocation(c.Zone)
			if err != nil {
				t.Fatal(err)
			}
			r, topic := c.record()
			ev, err := decodeIn(r, topic, zone)
			if c.Error != "" {
				var re *pipeline.RecordError
				if !errors.As(err, &re) || re.Type != pipeline.TypeInvalid {
					t.Fatalf("error %v, want an invalid record", err)
				}
				if !strings.Contains(err.Error(), c.Field) || !strings.Contains(err.Error(), c.Error) || strings.Contains(err.Error(), c.Value) {
					t.Errorf("error %q: want it to name %s and say %q, without the value", err, c.Field, c.Error)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if c.At != "" {
				want, _ := time.Parse(time.RFC3339Nano, c.At)
				if !ev.At.Equal(want) {
					t.Errorf("event time %s, want %s", formatTime(ev.At), c.At)
				}
			}
			if c.ExpiresAt != "" {
				if got := ev.Determination.ExpiresAt; got != c.ExpiresAt {
					t.Errorf("expires at %s, want %s", got, c.ExpiresAt)
				}
			}
		})
	}
}

// A date alone for an expiration is the end of that day: the approval
// holds through its last instant and has expired at the next day's first
// (issue 18: such an approval went to the error topic).
func TestDateOnlyExpirationExpiresAtTheEndOfItsDay(t *testing.T) {
	ny, err := time.LoadLocation("America/New_York")
	if err != nil {
		t.Fatal(err)
	}
	c := DefaultConfig()
	c.PayerTimeZone = ny
	rec := replay(t, &c, "prescription", "documentation", "submission")
	r := &kgo.Record{Value: []byte(`{"priorAuthId":"` + rec.ID + `","determinationStatus":"APPROVED","determinationDate":"2025-03-01","expirationDate":"2025-09-01"}`),
		Timestamp: t0.Add(3 * time.Hour)}
	ev, err := decodeIn(r, TopicDeterminationReceived, c.zone())
	if err != nil {
		t.Fatalf("a date-only expiration: %v", err)
	}
	ap, err := c.apply(rec, &ev)
	if err != nil || ap.Record.Status != StatusApproved {
		t.Fatalf("approval: %+v, %v", ap.Record, err)
	}
	// 2025-09-01 ends at midnight in New York (EDT, UTC-4).
	end := time.Date(2025, 9, 2, 4, 0, 0, 0, time.UTC)
	if st := c.fire(ap.Record, end.Add(-time.Nanosecond)); st.Record != nil {
		t.Fatalf("expired within its last day: %+v", st.Record.StatusHistory)
	}
	ex := c.fire(ap.Record, end)
	if ex.Record == nil || ex.Record.Status != StatusExpired {
		t.Fatalf("at the end of its day: %+v, want EXPIRED", ex.Record)
	}
	if h := ex.Record.StatusHistory; !strings.Contains(h[len(h)-1].Reason, "2025-09-02T04:00:00Z (expirationDate 2025-09-01)") {
		t.Errorf("reason %q, want the instant and the date as sent", h[len(h)-1].Reason)
	}
}
