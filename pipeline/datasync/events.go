package datasync

import (
	"fmt"
)

// event is an [Event] of any entity, as the stages handle it: the payload
// is the entity's record type behind any.
type event struct {
	Metadata   Metadata
	Operation  string
	Version    int64
	Payload    any // *PatientRecord, ...; nil when the value carried none
	Resolution *Resolution
}

// system returns the system fields of the payload, and false when there is
// no payload.
func (ev *event) system() (System, bool) {
	switch p := ev.Payload.(type) {
	case *PatientRecord:
		return p.System, p != nil
	case *EncounterRecord:
		return p.System, p != nil
	case *ObservationRecord:
		return p.System, p != nil
	case *PrescriptionRecord:
		return p.System, p != nil
	}
	return System{}, false
}

// typed returns ev as the *Event[P] of entity e, for the codec.
func (ev *event) typed(e Entity) (any, error) {
	switch e {
	case Patient:
		p, _ := ev.Payload.(*PatientRecord)
		return &Event[PatientRecord]{ev.Metadata, ev.Operation, ev.Version, p, ev.Resolution}, nil
	case Encounter:
		p, _ := ev.Payload.(*EncounterRecord)
		return &Event[EncounterRecord]{ev.Metadata, ev.Operation, ev.Version, p, ev.Resolution}, nil
	case Observation:
		p, _ := ev.Payload.(*ObservationRecord)
		return &Event[ObservationRecord]{ev.Metadata, ev.Operation, ev.Version, p, ev.Resolution}, nil
	case Prescription:
		p, _ := ev.Payload.(*PrescriptionRecord)
		return &Event[PrescriptionRecord]{ev.Metadata, ev.Operation, ev.Version, p, ev.Resolution}, nil
	}
	return nil, fmt.Errorf("unknown entity type %q", e)
}

// encodeEvent encodes ev for topic (of entity e).
func (c *Codec) encodeEvent(b []byte, topic string, e Entity, ev *event) ([]byte, error) {
	t, err := ev.typed(e)
	if err != nil {
		return nil, err
	}
	return c.Encode(b, topic, t)
}

// decodeEvent decodes a canonical value of entity e.
func (c *Codec) decodeEvent(b []byte, e Entity) (*event, error) {
	switch e {
	case Patient:
		var t Event[PatientRecord]
		if err := c.Decode(b, e, &t); err != nil {
			return nil, err
		}
		return &event{t.Metadata, t.Operation, t.Version, nilIfNone(t.Payload), t.Resolution}, nil
	case Encounter:
		var t Event[EncounterRecord]
		if err := c.Decode(b, e, &t); err != nil {
			return nil, err
		}
		return &event{t.Metadata, t.Operation, t.Version, nilIfNone(t.Payload), t.Resolution}, nil
	case Observation:
		var t Event[ObservationRecord]
		if err := c.Decode(b, e, &t); err != nil {
			return nil, err
		}
		return &event{t.Metadata, t.Operation, t.Version, nilIfNone(t.Payload), t.Resolution}, nil
	case Prescription:
		var t Event[PrescriptionRecord]
		if err := c.Decode(b, e, &t); err != nil {
			return nil, err
		}
		return &event{t.Metadata, t.Operation, t.Version, nilIfNone(t.Payload), t.Resolution}, nil
	}
	return nil, fmt.Errorf("unknown entity type %q", e)
}

// nilIfNone keeps a nil record pointer a nil interface.
func nilIfNone[P any](p *P) any {
	if p == nil {
		return nil
	}
	return p
}

// DecodeValue decodes a canonical value of entity e into its metadata,
// operation, version and the record as the entity's record type (nil when
// it carried none): for readers outside the pipelines (targets, tests).
func (c *Codec) DecodeValue(b []byte, e Entity) (meta Metadata, op string, version int64, record any, err error) {
	ev, err := c.decodeEvent(b, e)
	if err != nil {
		return Metadata{}, "", 0, nil, err
	}
	return ev.Metadata, ev.Operation, ev.Version, ev.Payload, nil
}
