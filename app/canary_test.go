package app

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sr/srfake"

	"github.com/carepipe/carepipe/internal/kafkatest"
	"github.com/carepipe/carepipe/pipeline/alerts"
	"github.com/carepipe/carepipe/pipeline/datasync"
	"github.com/carepipe/carepipe/pipeline/orders"
	"github.com/carepipe/carepipe/pipeline/priorauth"
	"github.com/carepipe/carepipe/sim"
)

// Patient-data hygiene (STYLE.md rules 4, 9 and 10): the canary test runs
// every pipeline through app.Run against a loopback cluster, on records
// whose every patient datum is a canary token (names, identifiers, keys,
// values, free text, a custom header, and poison records that break each
// decoder), with the log at debug level (franz-go's own log included). It
// then fails if any token shows up where patient data must never go: the
// log, the summary lines on stdout, /metrics, the error Run returns, and the
// error-message of every error record. Topics are data, logs are not: the
// error topics must hold each poison record whole, and the test checks they
// do.

// canaryTimeout bounds the whole test: start-up, every pipeline's outputs,
// and shutdown. It takes a few seconds; the slack is for -race on a loaded
// two-core machine.
const canaryTimeout = 50 * time.Second

func TestCanaryNoPatientDataLeaks(t *testing.T) {
	cluster := kafkatest.NewCluster(t)
	reg := srfake.New()
	t.Cleanup(reg.Close)

	ctx, cancel := context.WithTimeout(context.Background(), canaryTimeout)
	defer cancel()
	logs, stdout := &lockedBuffer{}, &lockedBuffer{}
	run := startCanaryRun(t, Config{
		Brokers:           cluster.Addrs(),
		CreateTopics:      true,
		Pipelines:         []string{"alerts", "priorauth", "datasync", "orders"},
		HTTPAddr:          "127.0.0.1:0",
		SchemaRegistryURL: reg.URL(),
		// Every level, so that what only debug logging would print is
		// caught too; franz-go's client log goes through this logger
		// (pipeline.kgoLogger), at debug when it is enabled.
		Logger:       slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		SummaryEvery: 200 * time.Millisecond,
		Stdout:       stdout,
	})
	base := "http://" + run.httpAddr(ctx, t, logs)
	run.awaitReady(ctx, t, base)

	c := newCanaries(t)
	w := newCanaryWorld(c, time.Now())
	prod, err := kgo.NewClient(cluster.ClientOpts()...)
	if err != nil {
		t.Fatal(err)
	}
	defer prod.Close()
	rd := newCanaryReader(t, cluster, w.watched())
	send := func(recs ...*kgo.Record) {
		t.Helper()
		if err := sim.Produce(ctx, prod, recs); err != nil {
			t.Fatalf("producing canary records: %v", err)
		}
	}

	// Phase 1: every pipeline's first inputs and every poison record.
	send(w.first()...)
	// The prior authorization goes on step by step (each step is legal
	// only after the one before), and the patient's targets acknowledge
	// once it is validated.
	rd.await(ctx, t, run, "priorauth.documentation.requested for the canary prescription", func() bool {
		return rd.hasKey(priorauth.TopicDocumentationRequested, w.paID)
	})
	send(w.documentationAssembled())
	rd.await(ctx, t, run, "canonical.patient.validated for the canary patient", func() bool {
		return rd.hasKey(datasync.ValidatedTopic(datasync.Patient), w.dsPatientID)
	})
	send(w.acks(time.Now())...)
	// Avro the stages cannot read: the canary patient's own canonical
	// change and validated event, corrupted, on the validation and
	// reconciliation stages' inputs.
	rd.await(ctx, t, run, "canonical.patient.change for the canary patient", func() bool {
		return rd.hasKey(datasync.ChangeTopic(datasync.Patient), w.dsPatientID)
	})
	send(w.corruptAvro(
		rd.find(datasync.ChangeTopic(datasync.Patient), func(r *kgo.Record) bool { return string(r.Key) == w.dsPatientID }),
		rd.find(datasync.ValidatedTopic(datasync.Patient), func(r *kgo.Record) bool { return string(r.Key) == w.dsPatientID }),
	)...)
	rd.await(ctx, t, run, "priorauth.submission.requested", func() bool {
		return rd.hasKey(priorauth.TopicSubmissionRequested, w.paID)
	})
	send(w.submissionAndDetermination(time.Now())...)
	rd.await(ctx, t, run, "priorauth.communication.requested", func() bool {
		return rd.hasKey(priorauth.TopicCommunicationRequested, w.paID)
	})
	send(w.communicationCompleted())

	// Every pipeline has processed its canaries: outputs and error records.
	for _, want := range w.outputs() {
		rd.await(ctx, t, run, want.what, func() bool { return rd.find(want.topic, want.match) != nil })
	}
	for _, p := range w.poisons {
		rd.await(ctx, t, run, "error record of poison "+p.name+" on "+p.errTopic, func() bool {
			return rd.errorRecordOf(p) != nil
		})
	}

	// The query API answers with patient data by design; it is asked here
	// so that whatever it might log is captured too.
	for _, path := range []string{"/api/priorauth/" + w.paID, "/api/priorauth/" + c.str("api.unknownPriorAuthId"),
		"/api/patients/" + w.dsPatientID, "/api/patients/" + c.str("api.unknownPatientId")} {
		if _, _, err := httpGet(ctx, base+path); err != nil {
			t.Fatalf("GET %s: %v", path, err)
		}
	}
	code, metricsBody, err := httpGet(ctx, base+"/metrics")
	if err != nil || code != http.StatusOK {
		t.Fatalf("GET /metrics: %d, %v", code, err)
	}
	runErr := run.stop(t)

	// Not vacuous: the canaries went through the pipelines the metrics
	// describe.
	for _, m := range []string{`carepipe_global_table_decode_errors_total{pipeline="alerts"}`, `carepipe_orders_processed_total{pipeline="orders"}`} {
		if n := metricValue(metricsBody, m); n < 1 {
			t.Errorf("/metrics: %s is %v, want at least 1: the canaries did not flow as planned", m, n)
		}
	}
	if !strings.Contains(logs.String(), `"msg":"record sent to error topic"`) {
		t.Error("the log has no error-topic warning: the poison records' log path was not exercised")
	}
	if !strings.Contains(stdout.String(), "alerts") {
		t.Error("no summary line on stdout")
	}
	if runErr != nil {
		t.Errorf("Run after a clean stop: %v", runErr)
	}

	// The leak check proper.
	sources := []canarySource{
		{"log", logs.String()},
		{"stdout", stdout.String()},
		{"/metrics", metricsBody},
	}
	if runErr != nil {
		sources = append(sources, canarySource{"Run's error", runErr.Error()})
	}
	sources = append(sources, rd.errorMessages(t)...)
	for _, leak := range c.leaks(sources) {
		t.Error(leak)
	}
}

// ---------------------------------------------------------------------------
// Canary tokens

// canaries are the tokens planted in the records, by name (the field they
// stand in). Strings are "CNRY" and random hex, so a hit is never chance;
// numbers are patient values with seven significant digits, looked for in
// every form Go prints them in.
type canaries struct {
	t      *testing.T
	tokens map[string][]string // name -> forms
}

func newCanaries(t *testing.T) *canaries {
	return &canaries{t: t, tokens: make(map[string][]string)}
}

// str returns a new string token standing in for the field name.
func (c *canaries) str(name string) string {
	c.t.Helper()
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		c.t.Fatal(err)
	}
	tok := "CNRY" + hex.EncodeToString(b[:])
	c.add(name, tok)
	return tok
}

// num registers v, a patient value, and returns it.
func (c *canaries) num(name string, v float64) float64 {
	forms := []string{
		strconv.FormatFloat(v, 'f', -1, 64),
		strconv.FormatFloat(v, 'e', -1, 64),
		strconv.FormatFloat(v, 'E', -1, 64),
		strconv.FormatFloat(v, 'f', -1, 32),
	}
	c.add(name, forms...)
	return v
}

// date registers s, a date of a patient (birth dates), and returns it.
func (c *canaries) date(name, s string) string {
	c.add(name, s)
	return s
}

func (c *canaries) add(name string, forms ...string) {
	c.t.Helper()
	if _, dup := c.tokens[name]; dup {
		c.t.Fatalf("canary %q planted twice", name)
	}
	seen := map[string]bool{}
	for _, f := range forms {
		if !seen[f] {
			seen[f] = true
			c.tokens[name] = append(c.tokens[name], f)
		}
	}
}

// canarySource is text that must hold no patient data.
type canarySource struct {
	name, text string
}

// leaks describes every token found in sources, ignoring case (a pipeline
// may normalise a value, as CDC lower-cases genders), with some context
// around its first occurrence (the tokens are synthetic: printing them is
// fine).
func (c *canaries) leaks(sources []canarySource) []string {
	names := make([]string, 0, len(c.tokens))
	for n := range c.tokens {
		names = append(names, n)
	}
	sort.Strings(names)
	var out []string
	for _, src := range sources {
		// ASCII-only lowering keeps byte offsets into src.text valid.
		text := asciiLower(src.text)
		for _, n := range names {
			seen := map[string]bool{}
			for _, tok := range c.tokens[n] {
				form := asciiLower(tok)
				if seen[form] {
					continue
				}
				seen[form] = true
				i := strings.Index(text, form)
				if i < 0 {
					continue
				}
				lo, hi := max(0, i-160), min(len(text), i+len(form)+160)
				out = append(out, fmt.Sprintf("patient data leaked: canary %s (%q, any case) appears %d time(s) in %s; first at byte %d:\n\t...%s...",
					n, tok, strings.Count(text, form), src.name, i, src.text[lo:hi]))
			}
		}
	}
	return out
}

func asciiLower(s string) string {
	b := []byte(s)
	for i, c := range b {
		if 'A' <= c && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	return string(b)
}

// ---------------------------------------------------------------------------
// The canary world: records of every pipeline, shaped as the sim generators
// and the contracts (DESIGN.md §3) shape them, every patient datum a token.

// canaryPoison is a record that must land whole on errTopic; or, for a
// record a later stage rejects (datasync validation), the stage's own input
// record derived from it, which carries the token downstream.
type canaryPoison struct {
	name       string
	rec        *kgo.Record
	errTopic   string
	downstream string
}

// canaryOutput is an output that shows a pipeline processed its canaries.
type canaryOutput struct {
	what  string
	topic string
	match func(*kgo.Record) bool
}

type canaryWorld struct {
	c   *canaries
	hdr kgo.RecordHeader // a custom header carrying a token

	// alerts
	patient, weight, heartRate, bloodPressure *kgo.Record
	patientID, hrObsID, bpObsID               string
	// priorauth
	prescription *kgo.Record
	rxID, paID   string
	// datasync
	dsPatient, dsObservation, dsPrescription *kgo.Record
	dsPatientID, dsObsID, dsRxID             string
	// orders
	order             *kgo.Record
	orderID, orderPat string

	patientPoison *kgo.Record // fhir.Patient: a table, no error topic
	poisons       []canaryPoison
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}

// obj is a JSON object in a test's own words.
type obj = map[string]any

func newCanaryWorld(c *canaries, now time.Time) *canaryWorld {
	w := &canaryWorld{c: c}
	w.hdr = kgo.RecordHeader{Key: "x-canary-note", Value: []byte(c.str("header.value"))}
	nowMs := now.UnixMilli()
	effective := now.UTC().Format(time.RFC3339)

	// --- Clinical alerts: a Patient with every identifying field, and
	// observations of that patient: one alerting heart rate, one weight
	// (no rule), one alerting blood pressure keyed by observation id (so
	// it is re-keyed through the repartition topic), one enveloped.
	w.patientID = c.str("alerts.patient.id")
	fhirPatient := func(id, prefix string) obj {
		return obj{
			"resourceType": "Patient", "id": id, "active": true,
			"identifier": []obj{
				{"system": "http://hospital.org/patient-portal", "value": c.str(prefix + ".identifier.portal")},
				{"system": alerts.MRNSystem, "value": c.str(prefix + ".identifier.mrn")},
			},
			"name": []obj{{
				"use": "official", "family": c.str(prefix + ".name.family"),
				"given": []string{c.str(prefix + ".name.given"), c.str(prefix + ".name.given2")},
			}},
			"telecom":   []obj{{"system": "phone", "value": c.str(prefix + ".telecom.phone")}},
			"address":   []obj{{"line": []string{c.str(prefix + ".address.line")}, "city": c.str(prefix + ".address.city")}},
			"gender":    "female",
			"birthDate": c.date(prefix+".birthDate", "1931-07-23"),
			"generalPractitioner": []obj{{
				"reference": "Practitioner/" + c.str(prefix+".gp.id"), "display": c.str(prefix + ".gp.display"),
			}},
		}
	}
	w.patient = &kgo.Record{Topic: alerts.TopicPatients, Key: []byte(w.patientID),
		Value: mustJSON(fhirPatient(w.patientID, "alerts.patient")), Headers: []kgo.RecordHeader{w.hdr}}
	// observation is a FHIR R4 Observation of the patient whose every
	// free field is a token named after prefix.
	observation := func(prefix, subject, loinc, display string, value any, unit string) (obj, string) {
		id := c.str(prefix + ".id")
		return obj{
			"resourceType": "Observation", "id": id, "status": "final",
			"code":              obj{"coding": []obj{{"system": sim.SystemLOINC, "code": loinc, "display": display}}, "text": display},
			"subject":           obj{"reference": subject, "display": c.str(prefix + ".subject.display")},
			"effectiveDateTime": effective,
			"valueQuantity":     obj{"value": value, "unit": unit, "system": sim.SystemUCUM, "code": unit},
			"note":              []obj{{"text": c.str(prefix + ".note")}},
		}, id
	}
	ofPatient := "Patient/" + w.patientID
	weight, _ := observation("alerts.weight", ofPatient, "29463-7", "Body weight", c.num("alerts.weight.value", 81.73629), "kg")
	w.weight = &kgo.Record{Topic: alerts.TopicObservations, Key: []byte(w.patientID), Value: mustJSON(weight), Headers: []kgo.RecordHeader{w.hdr}}
	var heartRate obj
	heartRate, w.hrObsID = observation("alerts.heartRate", ofPatient, sim.LOINCHeartRate, "Heart rate", c.num("alerts.heartRate.value", 173.4917), "/min")
	w.heartRate = &kgo.Record{Topic: alerts.TopicObservations, Key: []byte(w.patientID),
		Value: mustJSON(obj{
			"metadata": obj{"eventId": c.str("alerts.envelope.eventId"), "eventType": "ObservationRecorded",
				"eventSource": "canary.fhir", "timestamp": nowMs},
			"payload": heartRate,
		}),
		Headers: []kgo.RecordHeader{w.hdr}}
	var bp obj
	bp, w.bpObsID = observation("alerts.bloodPressure", ofPatient, sim.LOINCSystolicBP, "Systolic blood pressure", c.num("alerts.bloodPressure.value", 211.3407), "mm[Hg]")
	w.bloodPressure = &kgo.Record{Topic: alerts.TopicObservations, Key: []byte(w.bpObsID), Value: mustJSON(bp), Headers: []kgo.RecordHeader{w.hdr}}
	// A Patient the table cannot decode: skipped with a warning, no
	// error topic.
	w.patientPoison = &kgo.Record{Topic: alerts.TopicPatients, Key: []byte(c.str("alerts.poisonPatient.key")),
		Value: []byte(`{"resourceType":"Patient","id":"` + c.str("alerts.poisonPatient.id") + `","name":[{"family":"` + c.str("alerts.poisonPatient.family") + `"`)}

	poison := func(name, topic, errTopic, key string, value []byte) {
		w.poisons = append(w.poisons, canaryPoison{name: name, errTopic: errTopic,
			rec: &kgo.Record{Topic: topic, Key: []byte(key), Value: value, Headers: []kgo.RecordHeader{w.hdr}}})
	}
	hr := func(prefix string, value any, unit string) obj {
		o, _ := observation(prefix, ofPatient, sim.LOINCHeartRate, "Heart rate", value, unit)
		return o
	}
	notJSON := mustJSON(hr("alerts.notJSON", 150, "/min"))
	poison("alerts not JSON", alerts.TopicObservations, alerts.TopicErrors, w.patientID, notJSON[:len(notJSON)*2/3])
	poison("alerts value of the wrong type", alerts.TopicObservations, alerts.TopicErrors, w.patientID,
		mustJSON(hr("alerts.wrongType", c.str("alerts.wrongType.value"), "/min")))
	badID := hr("alerts.badId", 150, "/min")
	badID["id"] = badID["id"].(string) + "!/ *"
	poison("alerts id not a FHIR id", alerts.TopicObservations, alerts.TopicErrors, w.patientID, mustJSON(badID))
	poison("alerts unit not convertible", alerts.TopicObservations, alerts.TopicErrors, w.patientID,
		mustJSON(hr("alerts.badUnit", 150, c.str("alerts.badUnit.unit"))))
	badSubject, _ := observation("alerts.badSubject", "Person/"+c.str("alerts.badSubject.reference"), sim.LOINCHeartRate, "Heart rate", 150, "/min")
	poison("alerts subject not a Patient reference", alerts.TopicObservations, alerts.TopicErrors, w.patientID, mustJSON(badSubject))
	poison("alerts wrong resource (a Patient)", alerts.TopicObservations, alerts.TopicErrors, w.patientID,
		mustJSON(fhirPatient(w.patientID, "alerts.wrongResource")))
	big := hr("alerts.oversized", c.num("alerts.oversized.value", 166.2093), "/min")
	note := c.str("alerts.oversized.bigNote")
	big["note"] = []obj{{"text": note + strings.Repeat(" synthetic filler", (alerts.DefaultMaxRecordBytes+4096)/17) + note}}
	poison("alerts oversized", alerts.TopicObservations, alerts.TopicErrors, w.patientID, mustJSON(big))

	// --- Prior authorization: a prescription with every field a token,
	// then (later phases) the outside world's answers, each carrying
	// tokens of its own.
	w.rxID = c.str("priorauth.prescriptionId")
	w.paID = priorauth.PriorAuthID(w.rxID)
	prescription := func(prefix string, payer bool) obj {
		p := obj{
			"prescriptionId": w.rxID, "patientId": c.str(prefix + ".patientId"), "providerId": c.str(prefix + ".providerId"),
			"medication": obj{"name": c.str(prefix + ".medication.name"), "code": c.str(prefix + ".medication.code"),
				"category": c.str(prefix + ".medication.category")},
			"pharmacyId": c.str(prefix + ".pharmacyId"),
		}
		if payer {
			p["payerId"] = c.str(prefix + ".payerId")
		}
		return p
	}
	w.prescription = &kgo.Record{Topic: priorauth.TopicPrescriptions, Key: []byte(w.rxID),
		Value: mustJSON(prescription("priorauth", true)), Headers: []kgo.RecordHeader{w.hdr}}
	rxNotJSON := mustJSON(prescription("priorauth.notJSON", true))
	poison("priorauth prescription not JSON", priorauth.TopicPrescriptions, priorauth.TopicErrors, w.rxID, rxNotJSON[:len(rxNotJSON)/2])
	poison("priorauth prescription without payer", priorauth.TopicPrescriptions, priorauth.TopicErrors, w.rxID,
		mustJSON(prescription("priorauth.noPayer", false)))
	unknownPA := c.str("priorauth.unknown.priorAuthId")
	poison("priorauth determination of an unknown prior authorization", priorauth.TopicDeterminationReceived, priorauth.TopicErrors, unknownPA,
		mustJSON(obj{"priorAuthId": unknownPA, "determinationStatus": "APPROVED", "determinationReason": c.str("priorauth.unknown.reason")}))
	poison("priorauth determination with an unknown status", priorauth.TopicDeterminationReceived, priorauth.TopicErrors, w.paID,
		mustJSON(obj{"priorAuthId": w.paID, "determinationStatus": c.str("priorauth.badStatus.status"), "determinationReason": c.str("priorauth.badStatus.reason")}))
	poison("priorauth submission with a bad date", priorauth.TopicSubmissionCompleted, priorauth.TopicErrors, w.paID,
		mustJSON(obj{"priorAuthId": w.paID, "submissionId": c.str("priorauth.badDate.submissionId"), "submissionMethod": "ELECTRONIC",
			"submissionDate": c.str("priorauth.badDate.submissionDate")}))

	// --- Data synchronization: a patient (the seed's camelCase shape),
	// a Debezium observation row and a prescription, all of one patient.
	w.dsPatientID = c.str("datasync.patient.id")
	dsPatient := func(id, prefix, dob, gender string) obj {
		return obj{
			"id": id, "firstName": c.str(prefix + ".firstName"), "lastName": c.str(prefix + ".lastName"),
			"dateOfBirth": c.date(prefix+".dateOfBirth", dob), "gender": gender,
			"address": obj{"line": []string{c.str(prefix + ".address.line")}, "city": c.str(prefix + ".address.city"),
				"postalCode": c.str(prefix + ".address.postalCode")},
			"lastUpdated": nowMs, "version": 1,
		}
	}
	w.dsPatient = &kgo.Record{Topic: sim.TopicDataSyncPatient, Key: []byte(w.dsPatientID),
		Value: mustJSON(dsPatient(w.dsPatientID, "datasync.patient", "1929-11-07", "female")), Headers: []kgo.RecordHeader{w.hdr}}
	row := func(id, prefix string, value any, status string) obj {
		return obj{"id": id, "patient_id": w.dsPatientID, "code": "8867-4", "code_system": "http://loinc.org",
			"value": value, "unit": "/min", "status": status, "effective_date_time": effective,
			"comment": c.str(prefix + ".comment")}
	}
	debezium := func(after obj) obj {
		return obj{"before": nil, "after": after, "op": "c", "ts_ms": nowMs + 5,
			"source": obj{"ts_ms": nowMs, "name": "ehr-db", "table": "observation"}}
	}
	// The observation comes from a source system named by a token: a
	// header value the stages read, which must reach no log or label.
	w.dsObsID = c.str("datasync.observation.id")
	w.dsObservation = &kgo.Record{Topic: sim.TopicDataSyncObservation, Key: []byte(w.dsObsID),
		Value:   mustJSON(debezium(row(w.dsObsID, "datasync.observation", c.num("datasync.observation.value", 96.18273), "final"))),
		Headers: []kgo.RecordHeader{w.hdr, {Key: datasync.HeaderSourceSystem, Value: []byte(c.str("datasync.observation.sourceSystem"))}}}
	w.dsRxID = c.str("datasync.prescription.id")
	w.dsPrescription = &kgo.Record{Topic: sim.TopicDataSyncPrescription, Key: []byte(w.dsRxID),
		Value: mustJSON(obj{"prescriptionId": w.dsRxID, "patient": obj{"id": w.dsPatientID},
			"medication": obj{"id": c.str("datasync.prescription.medication.id"), "name": c.str("datasync.prescription.medication.name")},
			"dose":       c.str("datasync.prescription.dose"), "frequency": c.str("datasync.prescription.frequency"), "lastUpdated": nowMs}),
		Headers: []kgo.RecordHeader{w.hdr}}
	// Validation rejects these two: data.sync.errors holds the canonical
	// change (Avro) the CDC stage made of them, whole.
	badGender := c.str("datasync.badGender.id")
	gender := c.str("datasync.badGender.gender")
	poison("datasync patient with an invalid gender", sim.TopicDataSyncPatient, datasync.TopicErrors, badGender,
		mustJSON(dsPatient(badGender, "datasync.badGender", "1944-02-19", gender)))
	w.poisons[len(w.poisons)-1].downstream = strings.ToLower(gender) // as CDC normalises it
	undecodable := c.str("datasync.undecodable.id")
	poison("datasync patient not JSON", sim.TopicDataSyncPatient, datasync.TopicErrors, undecodable,
		[]byte(`{"id": "`+undecodable+`", "firstName": "`+c.str("datasync.undecodable.firstName")+`", "lastName": `))
	badObs := c.str("datasync.badObservation.id")
	status := c.str("datasync.badObservation.status")
	poison("datasync observation with an invalid status", sim.TopicDataSyncObservation, datasync.TopicErrors, badObs,
		mustJSON(debezium(row(badObs, "datasync.badObservation", 88.5, status))))
	w.poisons[len(w.poisons)-1].downstream = status
	wrongType := c.str("datasync.wrongType.id")
	poison("datasync observation value of the wrong type", sim.TopicDataSyncObservation, datasync.TopicErrors, wrongType,
		mustJSON(debezium(row(wrongType, "datasync.wrongType", obj{"v": c.str("datasync.wrongType.value")}, "final"))))
	ackEntity := c.str("datasync.badAck.entityId")
	poison("datasync acknowledgement with an unknown status", datasync.TargetTopic("ehr"), datasync.TopicErrors, ackEntity,
		mustJSON(obj{"entityType": "patient", "entityId": ackEntity, "syncTimestamp": nowMs, "syncStatus": c.str("datasync.badAck.syncStatus"),
			"syncDetails": obj{"target": "ehr", "note": c.str("datasync.badAck.note")}}))

	// --- Orders: the seed's MedicationOrder, every field a token, plus a
	// member the processor does not know.
	w.orderID = c.str("orders.id")
	w.orderPat = c.str("orders.patientId")
	order := func(prefix string, id bool) obj {
		o := obj{
			"patientId": w.orderPat, "medicationId": c.str(prefix + ".medicationId"), "prescriberId": c.str(prefix + ".prescriberId"),
			"dosage": c.str(prefix + ".dosage"), "route": c.str(prefix + ".route"), "frequency": c.str(prefix + ".frequency"),
			"startDate": nowMs, "endDate": nil, "status": "SUBMITTED", "createdAt": nowMs, "updatedAt": nowMs,
			"notes": c.str(prefix + ".notes"),
		}
		if id {
			o["id"] = w.orderID
		}
		return o
	}
	o := order("orders", true)
	o["quantity"] = c.num("orders.quantity", 47.83921)
	w.order = &kgo.Record{Topic: orders.TopicSubmitted, Key: []byte(w.orderPat), Value: mustJSON(o), Headers: []kgo.RecordHeader{w.hdr}}
	orderNotJSON := mustJSON(order("orders.notJSON", true))
	poison("orders not JSON", orders.TopicSubmitted, orders.TopicErrors, w.orderPat, orderNotJSON[:len(orderNotJSON)/2])
	poison("orders without an id", orders.TopicSubmitted, orders.TopicErrors, w.orderPat, mustJSON(order("orders.noId", false)))
	poison("orders not an object", orders.TopicSubmitted, orders.TopicErrors, w.orderPat, mustJSON([]string{c.str("orders.array.element")}))
	return w
}

// first is phase 1: the patient table before the observations that need
// it, the weight before the heart rate on the same partition, every
// pipeline's first inputs and every poison.
func (w *canaryWorld) first() []*kgo.Record {
	recs := []*kgo.Record{w.patient, w.patientPoison, w.weight, w.heartRate, w.bloodPressure,
		w.prescription, w.dsPatient, w.dsObservation, w.dsPrescription, w.order}
	for _, p := range w.poisons {
		recs = append(recs, p.rec)
	}
	return recs
}

func (w *canaryWorld) paEvent(topic string, fields obj) *kgo.Record {
	fields["priorAuthId"] = w.paID
	return &kgo.Record{Topic: topic, Key: []byte(w.paID), Value: mustJSON(fields), Headers: []kgo.RecordHeader{w.hdr}}
}

func (w *canaryWorld) documentationAssembled() *kgo.Record {
	return w.paEvent(priorauth.TopicDocumentationAssembled, obj{"documents": []obj{
		{"type": "clinical-notes", "content": w.c.str("priorauth.documents.content")},
		{"type": "lab-results", "content": w.c.str("priorauth.documents.labs"), "value": w.c.num("priorauth.documents.value", 7.391824)},
	}})
}

// submissionAndDetermination go together: a determination read before its
// submission is parked and applied with it.
func (w *canaryWorld) submissionAndDetermination(now time.Time) []*kgo.Record {
	at := now.UTC().Format(time.RFC3339Nano)
	return []*kgo.Record{
		w.paEvent(priorauth.TopicSubmissionCompleted, obj{"submissionId": w.c.str("priorauth.submissionId"),
			"submissionDate": at, "submissionMethod": "ELECTRONIC", "payerId": w.c.str("priorauth.submission.payerId")}),
		w.paEvent(priorauth.TopicDeterminationReceived, obj{"determinationStatus": "APPROVED", "determinationDate": at,
			"determinationReason": w.c.str("priorauth.determinationReason"), "expirationDate": "2099-12-31T00:00:00Z"}),
	}
}

func (w *canaryWorld) communicationCompleted() *kgo.Record {
	return w.paEvent(priorauth.TopicCommunicationCompleted, obj{"completedChannels": []string{w.c.str("priorauth.channel")}})
}

// corruptAvro are poisons made of the canonical records of the canary
// patient with the length of its last name made negative (zig-zag 0x7f is
// -64): every token stays whole in the value, which no longer decodes.
// (Cutting a value short at a field boundary is no poison: the decoder
// reads the missing fields as absent.)
func (w *canaryWorld) corruptAvro(recs ...*kgo.Record) []*kgo.Record {
	last := []byte(w.c.tokens["datasync.patient.lastName"][0])
	var out []*kgo.Record
	for _, r := range recs {
		i := bytes.Index(r.Value, last)
		if i < 1 {
			panic("the canonical record does not hold the canary last name")
		}
		v := bytes.Clone(r.Value)
		v[i-1] = 0x7f
		p := canaryPoison{name: "datasync Avro with a negative string length on " + r.Topic, errTopic: datasync.TopicErrors, rec: &kgo.Record{
			Topic: r.Topic, Key: []byte(w.c.str("datasync.corruptAvro." + r.Topic + ".key")),
			Value: v, Headers: []kgo.RecordHeader{w.hdr},
		}}
		w.poisons = append(w.poisons, p)
		out = append(out, p.rec)
	}
	return out
}

// acks are the patient's targets acknowledging what was validated by now.
func (w *canaryWorld) acks(now time.Time) []*kgo.Record {
	var recs []*kgo.Record
	for _, target := range datasync.DefaultTargets() {
		recs = append(recs, &kgo.Record{Topic: datasync.TargetTopic(target), Key: []byte(w.dsPatientID), Headers: []kgo.RecordHeader{w.hdr},
			Value: mustJSON(obj{"entityType": "patient", "entityId": w.dsPatientID, "syncTimestamp": now.UnixMilli(), "syncStatus": "success",
				"syncDetails": obj{"target": target, "attempt": 1, "note": w.c.str("datasync.ack." + target + ".note")}})})
	}
	return recs
}

// outputs are what each pipeline must have produced from the canaries.
func (w *canaryWorld) outputs() []canaryOutput {
	key := func(k string) func(*kgo.Record) bool {
		return func(r *kgo.Record) bool { return string(r.Key) == k }
	}
	keyAnd := func(k, in string) func(*kgo.Record) bool {
		return func(r *kgo.Record) bool { return string(r.Key) == k && bytes.Contains(r.Value, []byte(in)) }
	}
	return []canaryOutput{
		{"the heart-rate alert", alerts.TopicAlerts, keyAnd(w.patientID, w.hrObsID)},
		{"the re-keyed blood-pressure alert", alerts.TopicAlerts, keyAnd(w.patientID, w.bpObsID)},
		{"the alerts' notification history", alerts.TopicHistory, key(w.patientID)},
		{"priorauth.workflow.completed", priorauth.TopicWorkflowCompleted, key(w.paID)},
		{"canonical.observation.validated, from the token-named source system", datasync.ValidatedTopic(datasync.Observation),
			keyAnd(w.dsObsID, w.c.tokens["datasync.observation.sourceSystem"][0])},
		{"canonical.prescription.validated", datasync.ValidatedTopic(datasync.Prescription), key(w.dsRxID)},
		{"reconciliation.patient.completed", datasync.CompletedTopic(datasync.Patient), key(w.dsPatientID)},
		{"medication.order.processed", orders.TopicProcessed, keyAnd(w.orderPat, w.orderID)},
	}
}

// watched are the topics the reader consumes.
func (w *canaryWorld) watched() []string {
	topics := map[string]bool{
		priorauth.TopicDocumentationRequested: true, priorauth.TopicSubmissionRequested: true,
		priorauth.TopicCommunicationRequested: true, datasync.ValidatedTopic(datasync.Patient): true,
		datasync.ChangeTopic(datasync.Patient): true, datasync.TopicErrors: true,
	}
	for _, o := range w.outputs() {
		topics[o.topic] = true
	}
	for _, p := range w.poisons {
		topics[p.errTopic] = true
	}
	out := make([]string, 0, len(topics))
	for t := range topics {
		out = append(out, t)
	}
	sort.Strings(out)
	return out
}

// ---------------------------------------------------------------------------
// Reading the outputs

// canaryReader reads the watched topics, read_committed, from the start,
// on the test's goroutine only.
type canaryReader struct {
	cl      *kgo.Client
	byTopic map[string][]*kgo.Record
}

func newCanaryReader(t *testing.T, cluster *sim.Cluster, topics []string) *canaryReader {
	t.Helper()
	cl, err := kgo.NewClient(append(cluster.ClientOpts(),
		kgo.ConsumeTopics(topics...),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.FetchMaxBytes(16<<20),
	)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return &canaryReader{cl: cl, byTopic: make(map[string][]*kgo.Record)}
}

// await polls until cond holds; it fails the test at ctx's deadline or if
// Run stops first.
func (rd *canaryReader) await(ctx context.Context, t *testing.T, run *canaryRun, what string, cond func() bool) {
	t.Helper()
	for !cond() {
		select {
		case <-run.done:
			t.Fatalf("Run returned (%v) while waiting for %s", run.err, what)
		default:
		}
		if ctx.Err() != nil {
			t.Fatalf("timed out waiting for %s", what)
		}
		pctx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
		fs := rd.cl.PollFetches(pctx)
		cancel()
		for _, e := range fs.Errors() {
			if !errors.Is(e.Err, context.DeadlineExceeded) && !errors.Is(e.Err, context.Canceled) {
				t.Logf("reading %s/%d: %v", e.Topic, e.Partition, e.Err)
			}
		}
		fs.EachRecord(func(r *kgo.Record) { rd.byTopic[r.Topic] = append(rd.byTopic[r.Topic], r) })
	}
}

func (rd *canaryReader) find(topic string, match func(*kgo.Record) bool) *kgo.Record {
	for _, r := range rd.byTopic[topic] {
		if match(r) {
			return r
		}
	}
	return nil
}

func (rd *canaryReader) hasKey(topic, key string) bool {
	return rd.find(topic, func(r *kgo.Record) bool { return string(r.Key) == key }) != nil
}

// errorRecordOf is p's record on its error topic, holding p whole: key,
// value (inside data.sync.errors' error record there) and headers.
func (rd *canaryReader) errorRecordOf(p canaryPoison) *kgo.Record {
	return rd.find(p.errTopic, func(r *kgo.Record) bool {
		if !bytes.Equal(r.Key, p.rec.Key) {
			return false
		}
		if p.downstream != "" {
			v, err := datasync.OriginalValue(r.Value)
			return err == nil && bytes.Contains(v, []byte(p.downstream))
		}
		if !hasHeader(r, p.rec.Headers[0]) {
			return false
		}
		if p.errTopic == datasync.TopicErrors {
			v, err := datasync.OriginalValue(r.Value)
			return err == nil && bytes.Equal(v, p.rec.Value)
		}
		return bytes.Equal(r.Value, p.rec.Value)
	})
}

func hasHeader(r *kgo.Record, h kgo.RecordHeader) bool {
	for _, rh := range r.Headers {
		if rh.Key == h.Key && bytes.Equal(rh.Value, h.Value) {
			return true
		}
	}
	return false
}

// errorMessages are the error-message headers of every error record read,
// and data.sync.errors' error.message: error strings, which never quote a
// record (STYLE.md rule 4), though the records around them are data.
func (rd *canaryReader) errorMessages(t *testing.T) []canarySource {
	t.Helper()
	var out []canarySource
	for _, topic := range []string{alerts.TopicErrors, priorauth.TopicErrors, datasync.TopicErrors, orders.TopicErrors} {
		for _, r := range rd.byTopic[topic] {
			where := fmt.Sprintf("%s/%d@%d", topic, r.Partition, r.Offset)
			n := 0
			for _, h := range r.Headers {
				if h.Key == "error-message" {
					out = append(out, canarySource{"the error-message header of " + where, string(h.Value)})
					n++
				}
			}
			if n != 1 {
				t.Errorf("%s has %d error-message headers, want 1", where, n)
			}
			if topic == datasync.TopicErrors {
				var er struct {
					Error struct {
						Message string `json:"message"`
					} `json:"error"`
				}
				if err := json.Unmarshal(r.Value, &er); err != nil {
					t.Errorf("%s is not an error record: %v", where, err)
				}
				out = append(out, canarySource{"the error.message of " + where, er.Error.Message})
			}
		}
	}
	return out
}

// ---------------------------------------------------------------------------
// Running carepipe

// canaryRun is app.Run on its own goroutine, which the test waits for.
type canaryRun struct {
	cancel context.CancelFunc
	done   chan struct{}
	err    error
}

func startCanaryRun(t *testing.T, cfg Config) *canaryRun {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	run := &canaryRun{cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(run.done)
		run.err = Run(ctx, cfg)
	}()
	t.Cleanup(func() { run.stop(t) })
	return run
}

// stop cancels Run and waits for it to return (shutdown logs included).
func (run *canaryRun) stop(t *testing.T) error {
	run.cancel()
	select {
	case <-run.done:
		return run.err
	case <-time.After(30 * time.Second):
		t.Fatal("Run did not return within 30s of its context ending")
		return nil
	}
}

// httpAddr is the address Run's HTTP server listens on, from its "http
// listening" log line (the configured port is 0).
func (run *canaryRun) httpAddr(ctx context.Context, t *testing.T, logs *lockedBuffer) string {
	t.Helper()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		for _, line := range strings.Split(logs.String(), "\n") {
			var l struct{ Msg, Addr string }
			if json.Unmarshal([]byte(line), &l) == nil && l.Msg == "http listening" && l.Addr != "" {
				return l.Addr
			}
		}
		select {
		case <-tick.C:
		case <-run.done:
			t.Fatalf("Run returned before serving HTTP: %v", run.err)
		case <-ctx.Done():
			t.Fatal("no \"http listening\" log line")
		}
	}
}

// awaitReady polls /readyz until every pipeline consumes.
func (run *canaryRun) awaitReady(ctx context.Context, t *testing.T, base string) {
	t.Helper()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		if code, _, err := httpGet(ctx, base+"/readyz"); err == nil && code == http.StatusOK {
			return
		}
		select {
		case <-tick.C:
		case <-run.done:
			t.Fatalf("Run returned before being ready: %v", run.err)
		case <-ctx.Done():
			t.Fatal("the pipelines were not ready in time")
		}
	}
}

// metricValue is the value of the series name (with its labels as
// written) in a Prometheus text body; -1 when absent.
func metricValue(body, name string) float64 {
	for _, line := range strings.Split(body, "\n") {
		if v, ok := strings.CutPrefix(line, name+" "); ok {
			if f, err := strconv.ParseFloat(v, 64); err == nil {
				return f
			}
		}
	}
	return -1
}

func httpGet(ctx context.Context, url string) (int, string, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, "", err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), err
}

// lockedBuffer is a bytes.Buffer safe for the log's and the summary's
// concurrent writers.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
