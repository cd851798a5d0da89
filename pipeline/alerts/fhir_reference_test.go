package alerts

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"unicode/utf8"

	"github.com/bytedance/sonic"

	"github.com/carepipe/carepipe/pipeline"
	"github.com/carepipe/carepipe/pipeline/envelope"
	"github.com/carepipe/carepipe/pipeline/jsontext"
	"github.com/carepipe/carepipe/sim"
)

// referenceDecode is the full decoder that decodeObservation's scanner is
// held against: the Observation's fields decoded into tagged structs by
// sonic, through the envelope package, then checked the same way.
func referenceDecode(value []byte, obs *observation) (envelope.Metadata, error) {
	type quantity struct {
		Value  sonic.NoCopyRawMessage `json:"value"`
		Unit   string                 `json:"unit"`
		System string                 `json:"system"`
		Code   string                 `json:"code"`
	}
	type concept struct {
		Coding []coding `json:"coding"`
		Text   string   `json:"text"`
	}
	type measurement struct {
		Code                 concept                `json:"code"`
		ValueQuantity        quantity               `json:"valueQuantity"`
		ValueInteger         sonic.NoCopyRawMessage `json:"valueInteger"`
		ValueDecimal         sonic.NoCopyRawMessage `json:"valueDecimal"`
		ValueCodeableConcept *concept               `json:"valueCodeableConcept"`
		DataAbsentReason     sonic.NoCopyRawMessage `json:"dataAbsentReason"`
		ValueString          sonic.NoCopyRawMessage `json:"valueString"`
		ValueBoolean         sonic.NoCopyRawMessage `json:"valueBoolean"`
		ValueRange           sonic.NoCopyRawMessage `json:"valueRange"`
		ValueRatio           sonic.NoCopyRawMessage `json:"valueRatio"`
		ValueSampledData     sonic.NoCopyRawMessage `json:"valueSampledData"`
		ValueTime            sonic.NoCopyRawMessage `json:"valueTime"`
		ValueDateTime        sonic.NoCopyRawMessage `json:"valueDateTime"`
		ValuePeriod          sonic.NoCopyRawMessage `json:"valuePeriod"`
	}
	type wire struct {
		ResourceType string `json:"resourceType"`
		ID           string `json:"id"`
		Status       string `json:"status"`
		Subject      struct {
			Reference string `json:"reference"`
		} `json:"subject"`
		measurement
		Component         []measurement `json:"component"`
		EffectiveDateTime string        `json:"effectiveDateTime"`
		EffectiveInstant  string        `json:"effectiveInstant"`
		EffectivePeriod   struct {
			Start string `json:"start"`
		} `json:"effectivePeriod"`
		Issued    string                   `json:"issued"`
		HasMember []sonic.NoCopyRawMessage `json:"hasMember"`
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
	flat := func(m *measurement) wireMeasurement {
		out := wireMeasurement{
			Codings: m.Code.Coding, Value: m.ValueQuantity.Value, Unit: m.ValueQuantity.Unit,
			UnitSystem: m.ValueQuantity.System, UnitCode: m.ValueQuantity.Code,
			ValueInteger: m.ValueInteger, ValueDecimal: m.ValueDecimal,
			Absent: len(m.DataAbsentReason) > 0 && string(m.DataAbsentReason) != "null",
		}
		// The reason of the lowest number wins, whatever the order.
		for _, o := range [...]struct {
			raw sonic.NoCopyRawMessage
			r   skipReason
		}{{m.ValueString, skipString}, {m.ValueBoolean, skipBoolean}, {m.ValueRange, skipRange}, {m.ValueRatio, skipRatio},
			{m.ValueSampledData, skipSampledData}, {m.ValueTime, skipTime}, {m.ValueDateTime, skipDateTime}, {m.ValuePeriod, skipPeriod}} {
			if len(o.raw) > 0 && string(o.raw) != "null" {
				out.Other = o.r
				break
			}
		}
		if c := m.ValueCodeableConcept; c != nil {
			out.HasCoded, out.Coded, out.CodedText = true, c.Coding, c.Text
		}
		return out
	}
	wo := wireObservation{
		ResourceType: w.ResourceType, ID: w.ID, Status: w.Status, Subject: w.Subject.Reference,
		wireMeasurement:   flat(&w.measurement),
		EffectiveDateTime: w.EffectiveDateTime, EffectiveInstant: w.EffectiveInstant,
		EffectivePeriod: w.EffectivePeriod.Start, Issued: w.Issued,
		HasMember: len(w.HasMember) > 0,
	}
	for i := range w.Component {
		wo.Components = append(wo.Components, flat(&w.Component[i]))
	}
	return meta, wo.observation(obs, nil)
}

// sameDecoding fails t when decodeObservation and referenceDecode disagree
// on value: the error type, or the observation and metadata decoded.
func sameDecoding(t *testing.T, value []byte) {
	t.Helper()
	var got, want observation
	gotMeta, gotErr := decodeObservation(value, &got, nil)
	if errors.Is(gotErr, jsontext.ErrDuplicate) {
		// sonic keeps the last of two members of one name: the
		// reference cannot tell such a record, which the scanner rejects.
		return
	}
	wantMeta, wantErr := referenceDecode(value, &want)
	if errorType(gotErr) != errorType(wantErr) {
		t.Fatalf("error %v, reference decoder %v", gotErr, wantErr)
	}
	if gotErr != nil {
		return
	}
	// Empty coding lists are nil from one decoder and empty from the
	// other; both mean no codings. The coding buffer is the scanner's own.
	normalise := func(m *measurement) {
		if len(m.Codings) == 0 {
			m.Codings = nil
		}
		if len(m.Coded) == 0 {
			m.Coded = nil
		}
	}
	for _, o := range []*observation{&got, &want} {
		o.codings = nil
		normalise(&o.measurement)
		for i := range o.Components {
			normalise(&o.Components[i])
		}
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
			var obs observation
			if _, err := decodeObservation(value, &obs, nil); errorType(err) != pipeline.TypeDecode {
				t.Fatalf("invalid JSON decoded with error %v, want a decode error", err)
			}
			return
		}
		sameDecoding(t, value)
	})
}
