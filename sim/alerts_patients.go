package sim

import (
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// Patients of the clinical alerts workload: the fhir.Patient table the
// pipeline enriches alerts from.

// Obviously synthetic names: nobody should mistake a record for a person.
var (
	givenNames = []string{
		"Testa", "Sampla", "Placebo", "Dummy", "Mocka", "Faux", "Fixture", "Stubby",
		"Pseudo", "Proxy", "Simula", "Synthia", "Quasi", "Ersatz", "Replica", "Nulla",
	}
	familyNames = []string{
		"Example", "Synthetic", "Fakename", "Testerson", "Simulacrum", "Placeholder",
		"Notreal", "Madeup", "Loremipsum", "Demodata", "Fictive", "Nonesuch",
	}
	practitioners = []struct{ id, display string }{
		{"prac-001", "Dr. Testa Fakename"},
		{"prac-002", "Dr. Ersatz Notreal"},
		{"prac-003", "Dr. Simula Madeup"},
		{"prac-004", "Dr. Placebo Example"},
		{"prac-005", "Dr. Quasi Fictive"},
		{"prac-006", "Dr. Proxy Nonesuch"},
		{"prac-007", "Dr. Mocka Demodata"},
		{"prac-008", "Dr. Faux Loremipsum"},
	}
)

type (
	humanName struct {
		Use    string   `json:"use"`
		Family string   `json:"family"`
		Given  []string `json:"given"`
	}
	identifier struct {
		System string `json:"system"`
		Value  string `json:"value"`
	}
	patientJSON struct {
		ResourceType        string       `json:"resourceType"`
		ID                  string       `json:"id"`
		Identifier          []identifier `json:"identifier"`
		Active              bool         `json:"active"`
		Name                []humanName  `json:"name"`
		Gender              string       `json:"gender"`
		BirthDate           string       `json:"birthDate"`
		GeneralPractitioner []reference  `json:"generalPractitioner,omitempty"`
	}
)

type patientOut struct {
	payload []byte
	truth   PatientTruth
}

// patientPayload builds patient i's bare Patient resource from r.
func (g *Alerts) patientPayload(r *rand.Rand, i int) patientOut {
	id := PatientID(i)
	given := []string{givenNames[r.IntN(len(givenNames))]}
	if r.IntN(3) == 0 {
		given = append(given, givenNames[r.IntN(len(givenNames))])
	}
	family := familyNames[r.IntN(len(familyNames))]
	gender := []string{"female", "male", "other", "unknown"}[r.IntN(4)]
	birth := g.cfg.BaseTime.AddDate(-between(r, 18, 95), 0, -r.IntN(365))
	portal := r.Float64() < portalIdentifierProb
	noGP := r.Float64() < noPractitionerProb
	gp := practitioners[r.IntN(len(practitioners))]

	// MRNs are unique: 7919 is prime, so i -> i*7919 is a bijection
	// modulo 10^8, offset by a seed-derived constant.
	mrn := fmt.Sprintf("MRN%08d", (splitmix64(uint64(g.cfg.Seed))%100_000_000+uint64(i)*7919)%100_000_000)

	p := patientJSON{
		ResourceType: "Patient",
		ID:           id,
		Active:       true,
		Name:         []humanName{{Use: "official", Family: family, Given: given}},
		Gender:       gender,
		BirthDate:    birth.Format(time.DateOnly),
	}
	if portal {
		p.Identifier = append(p.Identifier, identifier{System: "http://hospital.org/patient-portal", Value: "PP-" + id})
	}
	p.Identifier = append(p.Identifier, identifier{System: SystemMRN, Value: mrn})
	t := PatientTruth{PatientID: id, Name: strings.Join(given, " ") + " " + family, MRN: mrn}
	if !noGP {
		ref := "Practitioner/" + gp.id
		p.GeneralPractitioner = []reference{{Reference: ref, Display: gp.display}}
		t.GeneralPractitioner, t.GeneralPractitionerDisplay = ref, gp.display
	}
	return patientOut{payload: mustMarshal(p), truth: t}
}

// Patient returns patient record i (0 <= i < Patients), keyed by its id.
func (g *Alerts) Patient(i int) PatientRecord {
	if i < 0 || i >= g.cfg.Patients {
		panic(fmt.Sprintf("sim: patient index %d outside [0, %d)", i, g.cfg.Patients))
	}
	r := g.rngFor(streamPatient, int64(i))
	out := g.patientPayload(r, i)
	// Drawn after the payload, so a PoisonWrongResource record (which
	// replays patientPayload on a fresh source) matches the Patient.
	enveloped := r.Float64() < g.cfg.EnvelopeFraction
	value := out.payload
	if enveloped {
		out.truth.Enveloped = true
		seed := strconv.FormatInt(g.cfg.Seed, 10)
		value = mustMarshal(envelopeJSON{
			Metadata: metadataJSON{
				EventID:       "evt-pat-" + seed + "-" + strconv.Itoa(i),
				EventType:     "PatientUpdated",
				EventSource:   eventSource,
				CorrelationID: "corr-pat-" + seed + "-" + strconv.Itoa(i),
				Timestamp:     g.cfg.BaseTime.UnixMilli(),
			},
			Payload: out.payload,
		})
	}
	return PatientRecord{
		Record: &kgo.Record{Topic: TopicPatient, Key: []byte(out.truth.PatientID), Value: value},
		Truth:  out.truth,
	}
}
