package alerts

import (
	"strings"
	"testing"
	"time"

	"github.com/carepipe/carepipe/pipeline"
)

// TestEventTimeWithoutOffset: FHIR R4's dateTime
// (http://hl7.org/fhir/R4/datatypes.html#dateTime) says "If hours and
// minutes are specified, a time zone SHALL be populated"; a date (day,
// month, year precision) has none. Hospitals send local times without an
// offset anyway. Such a time is read in the configured site time zone, or
// is an invalid record without one; it is never replaced by the record's
// Kafka timestamp (what the old decoder did when nothing else parsed).
func TestEventTimeWithoutOffset(t *testing.T) {
	berlin, err := time.LoadLocation("Europe/Berlin")
	if err != nil {
		t.Skip("no time zone database:", err)
	}
	// at sets the fixture's effective time and drops issued, so that the
	// effective time alone decides.
	at := func(field, v string) []byte {
		return observationJSON(t, func(o map[string]any) {
			delete(o, "effectiveDateTime")
			delete(o, "issued")
			if field == "effectivePeriod" {
				o[field] = map[string]any{"start": v}
			} else {
				o[field] = v
			}
		})
	}
	tests := []struct {
		name  string
		value []byte
		site  *time.Location
		want  time.Time
		err   string // the reason of an invalid record; "" for none
	}{
		{name: "seconds without offset, no site zone (FHIR dateTime: zone SHALL be populated)", value: at("effectiveDateTime", "2024-04-05T19:41:00"),
			err: "effectiveDateTime has a time without a time zone offset and no site time zone is configured"},
		{name: "minutes without offset, no site zone (HL7 v2 TS of minute precision)", value: at("effectiveDateTime", "2024-04-05T19:41"),
			err: "no site time zone"},
		{name: "effectivePeriod.start without offset, no site zone", value: at("effectivePeriod", "2024-04-05T19:41:00"),
			err: "effectivePeriod.start has a time without a time zone offset"},
		{name: "issued without offset, no site zone (instant requires one)", value: observationJSON(t, func(o map[string]any) {
			delete(o, "effectiveDateTime")
			o["issued"] = "2024-04-05T19:41:10.250"
		}), err: "issued has a time without a time zone offset"},
		{name: "not a dateTime at all", value: at("effectiveDateTime", "05/04/2024 19:41"), err: "effectiveDateTime is not a FHIR dateTime or instant"},
		{name: "unreadable effective time does not fall through to issued", value: observationJSON(t, func(o map[string]any) { o["effectiveDateTime"] = "yesterday" }),
			err: "effectiveDateTime is not a FHIR dateTime"},
		{name: "seconds without offset in the site zone (CEST, +02:00)", value: at("effectiveDateTime", "2024-04-05T19:41:00"), site: berlin,
			want: time.Date(2024, 4, 5, 17, 41, 0, 0, time.UTC)},
		{name: "fraction without offset in the site zone (CET, +01:00)", value: at("effectiveDateTime", "2024-01-05T19:41:00.5"), site: berlin,
			want: time.Date(2024, 1, 5, 18, 41, 0, 5e8, time.UTC)},
		{name: "minutes without offset in the site zone", value: at("effectivePeriod", "2024-04-05T19:41"), site: berlin,
			want: time.Date(2024, 4, 5, 17, 41, 0, 0, time.UTC)},
		{name: "an offset wins over the site zone", value: at("effectiveDateTime", "2024-04-05T19:41:00-05:00"), site: berlin,
			want: time.Date(2024, 4, 6, 0, 41, 0, 0, time.UTC)},
		{name: "date (FHIR allows it without zone) starts at the site's midnight", value: at("effectiveDateTime", "2024-04-05"), site: berlin,
			want: time.Date(2024, 4, 4, 22, 0, 0, 0, time.UTC)},
		{name: "date without a site zone starts at midnight UTC, as before", value: at("effectiveDateTime", "2024-04-05"),
			want: time.Date(2024, 4, 5, 0, 0, 0, 0, time.UTC)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := newProcessor(t, WithSiteTimeZone(tt.site))
			var in input
			err := p.decode(obsRecord(tt.value), &in)
			if tt.err != "" {
				if got := errorType(err); got != pipeline.TypeInvalid {
					t.Fatalf("error type %q (%v, event time %v), want %q", got, err, in.Observation.EventTime, pipeline.TypeInvalid)
				}
				if !strings.Contains(err.Error(), tt.err) {
					t.Errorf("error %q does not say %q", err, tt.err)
				}
				if strings.Contains(err.Error(), "2024") {
					t.Errorf("error %q quotes the record", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := in.Observation.EventTime; !got.Equal(tt.want) {
				t.Errorf("event time %v, want %v", got, tt.want)
			}
		})
	}
}
