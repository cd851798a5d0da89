package alerts

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"unicode/utf8"

	"github.com/bytedance/sonic"

	"github.com/carepipe/carepipe/pipeline"
	"github.com/carepipe/carepipe/pipeline/envelope"
	"github.com/carepipe/carepipe/sim"
)

// referenceDecode is the full decoder that DecodeObservation's scanner is
// held against: the Observation's fields decoded into tagged structs by
// sonic, through the envelope package, then checked the same way.
func referenceDecode(value []byte, obs *Observation) (envelope.Metadata, error) {
	type quantity struct {
		Value  sonic.NoCopyRawMessage `json:"value"`
		Unit   string                 `json:"unit"`
		System string                 `json:"system"`
		Code   string                 `json:"code"`
	}
	type wire struct {
		ResourceType string `json:"resourceType"`
		ID           string `json:"id"`
		Status       string `json:"status"`
		Code         struct {
			Coding []Coding `json:"coding"`
		} `json:"code"`
		Subject struct {
			Reference string `json:"reference"`
		} `json:"subject"`
		ValueQuantity     quantity               `json:"valueQuantity"`
		ValueInteger      sonic.NoCopyRawMessage `json:"valueInteger"`
		ValueDecimal      sonic.NoCopyRawMessage `json:"valueDecimal"`
		EffectiveDateTime string                 `json:"effectiveDateTime"`
		EffectiveInstant  string                 `json:"effectiveInstant"`
		EffectivePeriod   struct {
			Start string `json:"start"`
		} `json:"effectivePeriod"`
		Issued string `json:"issued"`
	}
	var rec struct {
		Metadata envelope.RawMetadata `json:"metadata"`
		Payload  wire                 `json:"payload"`
		wire
	}
	if err := envelope.Unmarshal(value, &rec); err != nil {
		return envelope.Metadata{}, classifyDecode("observation", err)
	}
	w := &rec.wire
	var meta envelope.Metadata
	if rec.Payload.ResourceType != "" {
		w = &rec.Payload
		var err error
		if meta, err = rec.Metadata.Metadata(); err != nil {
			return envelope.Metadata{}, classifyDecode("observation", err)
		}
	}
	flat := wireObservation{
		ResourceType: w.ResourceType, ID: w.ID, Status: w.Status, Codings: w.Code.Coding,
		Subject: w.Subject.Reference, Value: w.ValueQuantity.Value, Unit: w.ValueQuantity.Unit,
		UnitSystem: w.ValueQuantity.System, UnitCode: w.ValueQuantity.Code,
		ValueInteger: w.ValueInteger, ValueDecimal: w.ValueDecimal,
		EffectiveDateTime: w.EffectiveDateTime, EffectiveInstant: w.EffectiveInstant,
		EffectivePeriod: w.EffectivePeriod.Start, Issued: w.Issued,
	}
	return meta, flat.observation(obs)
}

// sameDecoding fails t when DecodeObservation and referenceDecode disagree
// on value: the error type, or the observation and metadata decoded.
func sameDecoding(t *testing.T, value []byte) {
	t.Helper()
	var got, want Observation
	gotMeta, gotErr := DecodeObservation(value, &got)
	wantMeta, wantErr := referenceDecode(value, &want)
	if errorType(gotErr) != errorType(wantErr) {
		t.Fatalf("error %v, reference decoder %v", gotErr, wantErr)
	}
	if gotErr != nil {
		return
	}
	// An empty coding list is nil from one decoder and empty from the
	// other; both mean no codings.
	if len(got.Codings) == 0 && len(want.Codings) == 0 {
		got.Codings, want.Codings = nil, nil
	}
	if !reflect.DeepEqual(got, want) || !reflect.DeepEqual(gotMeta, wantMeta) {
		t.Fatalf("decoded\n%+v %+v\nreference\n%+v %+v", got, gotMeta, want, wantMeta)
	}
}

func TestDecodeObservationMatchesReference(t *testing.T) {
	files, _ := filepath.Glob(filepath.Join("testdata", "*.json"))
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		t.Run(f, func(t *testing.T) { sameDecoding(t, b) })
	}
	g, err := sim.NewAlerts(sim.AlertsWorkload{Seed: 3, Patients: 50, AlertFraction: 0.3, EnvelopeFraction: 0.5, PoisonFraction: 0.2})
	if err != nil {
		t.Fatal(err)
	}
	recs, _ := g.NextN(2000)
	for _, r := range recs {
		sameDecoding(t, r.Value)
	}
}

func FuzzDecodeObservation(f *testing.F) {
	g, err := sim.NewAlerts(sim.AlertsWorkload{Seed: 5, Patients: 5, AlertFraction: 0.5, EnvelopeFraction: 0.5, PoisonFraction: 0.3})
	if err != nil {
		f.Fatal(err)
	}
	recs, _ := g.NextN(40)
	for _, r := range recs {
		f.Add(r.Value)
	}
	f.Fuzz(func(t *testing.T, value []byte) {
		if !utf8.Valid(value) {
			// sonic copies invalid UTF-8 as it is; so does the scanner,
			// but only the reference's escape handling is checked here.
			return
		}
		if !json.Valid(value) {
			// sonic skips unknown members without checking all of their
			// syntax (control characters in strings pass); the scanner
			// checks everything, as encoding/json does.
			var obs Observation
			if _, err := DecodeObservation(value, &obs); errorType(err) != pipeline.ErrDecode {
				t.Fatalf("invalid JSON decoded with error %v, want a decode error", err)
			}
			return
		}
		sameDecoding(t, value)
	})
}
