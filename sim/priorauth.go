package sim

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"math/rand/v2"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// The outside world of the prior-authorization orchestrator (DESIGN.md §3,
// "Prior authorization"): the EHR that sends prescriptions
// ([PriorAuthPrescriptions]) and four services that answer the
// orchestrator's requests ([StartPriorAuthWorld]): the documentation
// service, the submission gateway, the payer and the communication service.
// The orchestrator itself is not here: sim does not import the pipelines.

// Topics of the prior-authorization workflow.
const (
	// Into the orchestrator.
	TopicPAPrescriptions          = "medication.prescription.new"
	TopicPADocumentationAssembled = "priorauth.documentation.assembled"
	TopicPASubmissionCompleted    = "priorauth.submission.completed"
	TopicPADeterminationReceived  = "priorauth.determination.received"
	TopicPACommunicationCompleted = "priorauth.communication.completed"

	// Out of the orchestrator, into the world.
	TopicPADocumentationRequested = "priorauth.documentation.requested"
	TopicPASubmissionRequested    = "priorauth.submission.requested"
	TopicPAStatusCheckRequested   = "priorauth.status.check.requested"
	TopicPACommunicationRequested = "priorauth.communication.requested"
)

// Determination statuses the payer sends (determinationStatus).
const (
	PAStatusApproved          = "APPROVED"
	PAStatusDenied            = "DENIED"
	PAStatusPartiallyApproved = "PARTIALLY_APPROVED"
	PAStatusCancelled         = "CANCELLED"
	PAStatusPended            = "PENDED"
)

const (
	// paDefaultExpireAfter is an approval's validity when
	// PriorAuthWorldConfig.ExpireAfter is zero.
	paDefaultExpireAfter = 90 * 24 * time.Hour

	// paMaxPollRecords bounds one poll, and so one batch of answers.
	paMaxPollRecords = 500
	// paPayerQueue is the hand-off between the payer's poll loop and its
	// scheduler; when it is full the poll loop stops polling.
	paPayerQueue = 256
	// paMaxPendingCases bounds the determinations the payer holds back
	// (PayerDelay); beyond it the scheduler stops taking new cases, the
	// hand-off fills and the payer stops polling.
	paMaxPendingCases = 10_000

	// paProduceBackoffMax caps the wait between attempts to produce
	// answers that failed (a topic not created yet, a broker fault).
	paProduceBackoffMax = time.Second

	// Consumer groups of the four services.
	paGroupDocumentation = "sim-documentation"
	paGroupSubmission    = "sim-submission"
	paGroupPayer         = "sim-payer"
	paGroupCommunication = "sim-communication"

	// headerEventSource and headerEventType label every world output, as
	// the orchestrator labels its own.
	headerEventSource = "event-source"
	headerEventType   = "event-type"
)

// PriorAuthWorldConfig configures [StartPriorAuthWorld]. The zero value is
// valid, and its payer cancels every case (the outcome mix is all
// CANCELLED): set the shares.
type PriorAuthWorldConfig struct {
	// Seed selects the payer's decisions and the ids the world invents
	// (document and submission ids).
	Seed int64
	// Outcome mix of final determinations: shares of APPROVED, DENIED,
	// PARTIALLY_APPROVED; the rest is CANCELLED. Each in [0,1], sum <= 1.
	Approve, Deny, Partial float64
	// Pend is the share of cases first PENDED, then decided.
	Pend float64
	// PayerDelay delays each determination (wall clock); 0 answers at once.
	// A pended case waits PayerDelay for its PENDED determination and
	// PayerDelay again for its final one. Must not be negative.
	PayerDelay time.Duration
	// ExpireAfter sets an approval's expirationDate after its determinationDate (default 90 days).
	// Must not be negative.
	ExpireAfter time.Duration
	// PayerTimeZone is the zone the payer writes its dates in (default
	// UTC): determinationDate as a dateTime with the zone's offset in ISO
	// 8601 basic form (2025-03-01T04:00:00-0500), as many payer systems
	// write it.
	PayerTimeZone *time.Location
	// DateOnlyExpiration writes an approval's expirationDate as a date
	// alone in PayerTimeZone (2025-05-30), as X12 278 and FHIR
	// ClaimResponse.preAuthPeriod give it: the date ExpireAfter after the
	// determination.
	DateOnlyExpiration bool
	// Now is the world's clock for submissionDate/determinationDate (default time.Now); tests pass a fixed clock.
	// It is called from several goroutines at once.
	Now func() time.Time
}

// paShareSlack absorbs float rounding in the check that the shares sum to at
// most 1 (0.7 + 0.2 + 0.1 is 0.9999999999999999, 0.1 + 0.2 + 0.7 is
// 1.0000000000000002).
const paShareSlack = 1e-9

func (cfg *PriorAuthWorldConfig) validate() error {
	for _, f := range []struct {
		name string
		v    float64
	}{
		{"Approve", cfg.Approve},
		{"Deny", cfg.Deny},
		{"Partial", cfg.Partial},
		{"Pend", cfg.Pend},
	} {
		if !(f.v >= 0 && f.v <= 1) { // also rejects NaN
			return fmt.Errorf("sim: prior-auth world: %s %v is outside [0, 1]", f.name, f.v)
		}
	}
	if sum := cfg.Approve + cfg.Deny + cfg.Partial; sum > 1+paShareSlack {
		return fmt.Errorf("sim: prior-auth world: Approve + Deny + Partial = %v exceeds 1", sum)
	}
	if cfg.PayerDelay < 0 {
		return fmt.Errorf("sim: prior-auth world: PayerDelay %v is negative", cfg.PayerDelay)
	}
	if cfg.ExpireAfter < 0 {
		return fmt.Errorf("sim: prior-auth world: ExpireAfter %v is negative", cfg.ExpireAfter)
	}
	if cfg.ExpireAfter == 0 {
		cfg.ExpireAfter = paDefaultExpireAfter
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return nil
}

// PriorAuthOutcome is the payer's decision for a case: the final status and whether it is pended first. Deterministic; tests use it to compute expectations.
//
// It is a pure function of Seed, the four shares and priorAuthID: the
// payer draws one uniform number for "pended" and another for the final
// status from a hash of (Seed, priorAuthID), and maps the latter onto the
// cumulative shares APPROVED, DENIED, PARTIALLY_APPROVED, CANCELLED. A
// replayed or re-delivered case therefore gets the same decision. final is
// never PENDED.
func (cfg PriorAuthWorldConfig) PriorAuthOutcome(priorAuthID string) (final string, pended bool) {
	pended = unitFloat(paHash(cfg.Seed, "pend", priorAuthID)) < cfg.Pend
	cancel := 1 - (cfg.Approve + cfg.Deny + cfg.Partial)
	if cancel < paShareSlack {
		cancel = 0 // rounding, not a share
	}
	shares := [...]struct {
		status string
		share  float64
	}{
		{PAStatusApproved, cfg.Approve},
		{PAStatusDenied, cfg.Deny},
		{PAStatusPartiallyApproved, cfg.Partial},
		{PAStatusCancelled, cancel},
	}
	total := 0.0
	for _, s := range shares {
		total += max(s.share, 0)
	}
	if total <= 0 {
		return PAStatusCancelled, pended
	}
	x := unitFloat(paHash(cfg.Seed, "final", priorAuthID)) * total
	cum := 0.0
	for _, s := range shares {
		if s.share <= 0 {
			continue
		}
		cum += s.share
		final = s.status
		if x < cum {
			break
		}
	}
	// If x rounded up to total, the loop ends on the last status with a
	// share, which is where x belongs.
	return final, pended
}

// paHash hashes seed and parts (FNV-1a, then a splitmix64 finish so that
// nearby seeds and ids give unrelated values).
func paHash(seed int64, parts ...string) uint64 {
	h := fnv.New64a()
	for _, p := range parts {
		h.Write([]byte(p))
		h.Write([]byte{0}) // separator: ("ab","c") and ("a","bc") differ
	}
	return splitmix64(h.Sum64() ^ splitmix64(uint64(seed)))
}

// unitFloat maps h onto [0, 1) with 53 bits of precision.
func unitFloat(h uint64) float64 { return float64(h>>11) / (1 << 53) }

// ---------------------------------------------------------------------------
// Prescriptions

// Prescription workload shape.
const (
	streamPAPrescription    uint64 = 0x10 // PCG stream of prescriptions, apart from alerts' streams
	paPrescriptionPrefix           = "rx-"
	paPayers                       = 5  // PAYER001..PAYER005; PAYER005 is in no payer table (falls back to FAX)
	paPharmacies                   = 20 // pharm-001..pharm-020
	paEventSourceEHR               = "sim.ehr"
	paEventTypePrescription        = "PrescriptionCreated"
)

type paMedication struct {
	Name     string `json:"name"`
	Code     string `json:"code"`
	Category string `json:"category"`
}

// paFormulary lists medications by category. Codes are RxNorm-style
// concept ids (numeric strings); the workload only needs them to look real.
var paFormulary = []struct {
	category string
	meds     []paMedication
}{
	{"antibiotic", []paMedication{
		{Name: "Amoxicillin 500 MG Oral Capsule", Code: "308191"},
		{Name: "Azithromycin 250 MG Oral Tablet", Code: "308460"},
		{Name: "Ciprofloxacin 500 MG Oral Tablet", Code: "197511"},
	}},
	{"anticoagulant", []paMedication{
		{Name: "Apixaban 5 MG Oral Tablet", Code: "1364445"},
		{Name: "Rivaroxaban 20 MG Oral Tablet", Code: "1232086"},
		{Name: "Warfarin Sodium 5 MG Oral Tablet", Code: "855332"},
	}},
	{"insulin", []paMedication{
		{Name: "Insulin Glargine 100 UNT/ML Injectable Solution", Code: "285018"},
		{Name: "Insulin Lispro 100 UNT/ML Injectable Solution", Code: "242120"},
	}},
	{"statin", []paMedication{
		{Name: "Atorvastatin 40 MG Oral Tablet", Code: "617311"},
		{Name: "Rosuvastatin Calcium 10 MG Oral Tablet", Code: "859751"},
	}},
	{"antihypertensive", []paMedication{
		{Name: "Lisinopril 10 MG Oral Tablet", Code: "314076"},
		{Name: "Amlodipine 5 MG Oral Tablet", Code: "197361"},
		{Name: "Losartan Potassium 50 MG Oral Tablet", Code: "979485"},
	}},
	{"analgesic", []paMedication{
		{Name: "Oxycodone Hydrochloride 5 MG Oral Tablet", Code: "1049621"},
		{Name: "Celecoxib 200 MG Oral Capsule", Code: "205323"},
		{Name: "Tramadol Hydrochloride 50 MG Oral Tablet", Code: "835603"},
	}},
}

// paPrescriptionJSON is the medication.prescription.new payload; field order
// is encoding order, part of the determinism contract.
type paPrescriptionJSON struct {
	PrescriptionID string       `json:"prescriptionId"`
	PatientID      string       `json:"patientId"`
	ProviderID     string       `json:"providerId"`
	Medication     paMedication `json:"medication"`
	PayerID        string       `json:"payerId"`
	PharmacyID     string       `json:"pharmacyId"`
}

// paPrescriptionID returns prescription i of the workload with seed seed,
// "rx-<seed>-<i>".
func paPrescriptionID(seed int64, i int) string {
	return paPrescriptionPrefix + strconv.FormatInt(seed, 10) + "-" + strconv.Itoa(i)
}

// PriorAuthPrescriptions returns n seeded prescription records (topic medication.prescription.new, keyed by prescription id; ids "rx-<seed>-<i>") and their prescription ids.
//
// Record i is a pure function of (seed, i): patient pat-NNNNNN (the alerts
// workload's patient ids), provider prac-NNN, a medication drawn uniformly
// by category, payerId uniform over PAYER001..PAYER005 (PAYER005 is in no
// default payer table, so the orchestrator falls back to FAX), pharmacy
// pharm-NNN. About half the records (each with probability 1/2) are wrapped
// as {"metadata":{...},"payload":{...}}, with eventType PrescriptionCreated,
// eventSource sim.ehr, correlationId "corr-rx-<seed>-<i>" and timestamp
// (ms since epoch) 2025-01-01T00:00:00Z plus i seconds; the others are bare.
// No headers. The Kafka timestamp is left zero for the producer to stamp, as
// for [ObservationRecord]. n <= 0 gives none.
func PriorAuthPrescriptions(seed int64, n int) ([]*kgo.Record, []string) {
	if n <= 0 {
		return nil, nil
	}
	recs := make([]*kgo.Record, n)
	ids := make([]string, n)
	for i := range n {
		recs[i] = paPrescription(seed, i)
		ids[i] = string(recs[i].Key)
	}
	return recs, ids
}

// paRand returns the source of record i of a stream, as [Alerts] seeds its
// own: PCG from the seed and a mix of stream and index.
func paRand(seed int64, stream uint64, i int64) *rand.Rand {
	return rand.New(rand.NewPCG(uint64(seed), splitmix64(stream<<56^uint64(i))))
}

func paPrescription(seed int64, i int) *kgo.Record {
	r := paRand(seed, streamPAPrescription, int64(i))
	// Every draw in a fixed order, whatever the branches.
	patient := r.IntN(defaultPatients)
	provider := practitioners[r.IntN(len(practitioners))].id
	cat := paFormulary[r.IntN(len(paFormulary))]
	med := cat.meds[r.IntN(len(cat.meds))]
	payer := 1 + r.IntN(paPayers)
	pharmacy := 1 + r.IntN(paPharmacies)
	enveloped := r.IntN(2) == 0

	id := paPrescriptionID(seed, i)
	med.Category = cat.category
	value := mustMarshal(paPrescriptionJSON{
		PrescriptionID: id,
		PatientID:      PatientID(patient),
		ProviderID:     provider,
		Medication:     med,
		PayerID:        fmt.Sprintf("PAYER%03d", payer),
		PharmacyID:     fmt.Sprintf("pharm-%03d", pharmacy),
	})
	if enveloped {
		suffix := strconv.FormatInt(seed, 10) + "-" + strconv.Itoa(i)
		created := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC).Add(time.Duration(i) * time.Second)
		value = mustMarshal(envelopeJSON{
			Metadata: metadataJSON{
				EventID:       "evt-rx-" + suffix,
				EventType:     paEventTypePrescription,
				EventSource:   paEventSourceEHR,
				CorrelationID: "corr-rx-" + suffix,
				Timestamp:     created.UnixMilli(),
			},
			Payload: value,
		})
	}
	return &kgo.Record{Topic: TopicPAPrescriptions, Key: []byte(id), Value: value}
}

// ---------------------------------------------------------------------------
// Message shapes of the services. Requests decode only the fields a service
// uses, so an orchestrator may add fields; a request that does not decode,
// or has no priorAuthId, is malformed and skipped.

type (
	paDocumentationRequest struct {
		PriorAuthID        string   `json:"priorAuthId"`
		PrescriptionID     string   `json:"prescriptionId"`
		RequestedDocuments []string `json:"requestedDocuments"`
	}
	paDocument struct {
		Type       string `json:"type"`
		DocumentID string `json:"documentId"`
	}
	paDocumentationAssembled struct {
		PriorAuthID    string       `json:"priorAuthId"`
		PrescriptionID string       `json:"prescriptionId"`
		Documents      []paDocument `json:"documents"`
	}

	paSubmissionRequest struct {
		PriorAuthID      string `json:"priorAuthId"`
		SubmissionMethod string `json:"submissionMethod"`
		PayerID          string `json:"payerId"`
	}
	paSubmissionCompleted struct {
		PriorAuthID      string `json:"priorAuthId"`
		SubmissionID     string `json:"submissionId"`
		SubmissionDate   string `json:"submissionDate"`
		SubmissionMethod string `json:"submissionMethod"`
		PayerID          string `json:"payerId"`
	}

	// paCaseRef is what the payer reads: a submission.completed or a
	// status.check.requested.
	paCaseRef struct {
		PriorAuthID string `json:"priorAuthId"`
	}
	paDetermination struct {
		PriorAuthID         string `json:"priorAuthId"`
		DeterminationStatus string `json:"determinationStatus"`
		DeterminationDate   string `json:"determinationDate"`
		DeterminationReason string `json:"determinationReason"`
		ExpirationDate      string `json:"expirationDate,omitempty"`
	}

	paCommunicationRequest struct {
		PriorAuthID string   `json:"priorAuthId"`
		Channels    []string `json:"channels"`
	}
	paCommunicationCompleted struct {
		PriorAuthID       string   `json:"priorAuthId"`
		CompletedChannels []string `json:"completedChannels"`
	}
)

// paReason is the payer's determinationReason for a status.
func paReason(status string) string {
	switch status {
	case PAStatusApproved:
		return "Meets medical necessity criteria"
	case PAStatusDenied:
		return "Step therapy requirements not met"
	case PAStatusPartiallyApproved:
		return "Approved for a reduced quantity"
	case PAStatusPended:
		return "Additional clinical information requested"
	default:
		return "Request withdrawn at payer review"
	}
}

// decodeRequest decodes v into dst and reports whether it is a usable
// request. The decoder's error is dropped, not wrapped: it may quote the
// record.
func decodeRequest(v []byte, dst any, priorAuthID *string) bool {
	return json.Unmarshal(v, dst) == nil && *priorAuthID != ""
}

// answerHeaders labels an answer to req: its correlation-id carried over
// when req has one, the world service as event-source, the topic as
// event-type.
func answerHeaders(req *kgo.Record, service, topic string) []kgo.RecordHeader {
	hdrs := make([]kgo.RecordHeader, 0, 3)
	for _, h := range req.Headers {
		if h.Key == HeaderCorrelationID {
			hdrs = append(hdrs, kgo.RecordHeader{Key: HeaderCorrelationID, Value: append([]byte(nil), h.Value...)})
			break
		}
	}
	return append(hdrs,
		kgo.RecordHeader{Key: headerEventSource, Value: []byte(service)},
		kgo.RecordHeader{Key: headerEventType, Value: []byte(topic)},
	)
}

func (w *PriorAuthWorld) documentationAnswer(req *kgo.Record) *kgo.Record {
	var in paDocumentationRequest
	if !decodeRequest(req.Value, &in, &in.PriorAuthID) {
		return nil
	}
	out := paDocumentationAssembled{
		PriorAuthID:    in.PriorAuthID,
		PrescriptionID: in.PrescriptionID,
		Documents:      make([]paDocument, len(in.RequestedDocuments)),
	}
	for i, typ := range in.RequestedDocuments {
		// The index keeps two requests for the same type apart.
		h := paHash(w.cfg.Seed, "document", in.PriorAuthID, strconv.Itoa(i), typ)
		out.Documents[i] = paDocument{Type: typ, DocumentID: fmt.Sprintf("doc-%016x", h)}
	}
	return &kgo.Record{
		Topic:   TopicPADocumentationAssembled,
		Key:     []byte(in.PriorAuthID),
		Value:   mustMarshal(out),
		Headers: answerHeaders(req, "sim.documentation", TopicPADocumentationAssembled),
	}
}

func (w *PriorAuthWorld) submissionAnswer(req *kgo.Record) *kgo.Record {
	var in paSubmissionRequest
	// A gateway cannot submit without a payer and a method.
	if !decodeRequest(req.Value, &in, &in.PriorAuthID) || in.PayerID == "" || in.SubmissionMethod == "" {
		return nil
	}
	out := paSubmissionCompleted{
		PriorAuthID:      in.PriorAuthID,
		SubmissionID:     fmt.Sprintf("sub-%016x", paHash(w.cfg.Seed, "submission", in.PriorAuthID)),
		SubmissionDate:   w.cfg.Now().UTC().Format(time.RFC3339),
		SubmissionMethod: in.SubmissionMethod,
		PayerID:          in.PayerID,
	}
	return &kgo.Record{
		Topic:   TopicPASubmissionCompleted,
		Key:     []byte(in.PriorAuthID),
		Value:   mustMarshal(out),
		Headers: answerHeaders(req, "sim.submission", TopicPASubmissionCompleted),
	}
}

func (w *PriorAuthWorld) communicationAnswer(req *kgo.Record) *kgo.Record {
	var in paCommunicationRequest
	if !decodeRequest(req.Value, &in, &in.PriorAuthID) {
		return nil
	}
	out := paCommunicationCompleted{
		PriorAuthID:       in.PriorAuthID,
		CompletedChannels: append([]string{}, in.Channels...), // [] rather than null
	}
	return &kgo.Record{
		Topic:   TopicPACommunicationCompleted,
		Key:     []byte(in.PriorAuthID),
		Value:   mustMarshal(out),
		Headers: answerHeaders(req, "sim.communication", TopicPACommunicationCompleted),
	}
}

// ---------------------------------------------------------------------------
// The world

// PriorAuthWorld runs the four simulated services of the prior-authorization
// workflow against a [Cluster]:
//
//   - documentation service (group sim-documentation): each
//     priorauth.documentation.requested is answered on
//     priorauth.documentation.assembled with one document per requested
//     type, ids deterministic in (Seed, priorAuthId, position, type);
//   - submission gateway (group sim-submission): each
//     priorauth.submission.requested (which must carry payerId and
//     submissionMethod) is answered on priorauth.submission.completed,
//     submissionId deterministic in (Seed, priorAuthId), submissionDate
//     from Now;
//   - payer (group sim-payer): reads the gateway's
//     priorauth.submission.completed (that is how the gateway hands it the
//     case, so no determination is produced before its submission.completed
//     is acknowledged; across topics a reader may still see them in either
//     order) and decides
//     each case per [PriorAuthWorldConfig.PriorAuthOutcome] on
//     priorauth.determination.received, after PayerDelay; it also reads
//     priorauth.status.check.requested, counts each and answers nothing;
//   - communication service (group sim-communication): each
//     priorauth.communication.requested is answered on
//     priorauth.communication.completed with the requested channels.
//
// Every answer is keyed by priorAuthId and carries the request's
// correlation-id header when it has one, plus event-source (sim.<service>)
// and event-type (the answer's topic). Malformed requests (not a JSON
// object of the expected shape, no priorAuthId) are skipped and counted
// nowhere.
//
// Delivery is at least once: a service commits a request's offset only
// after its answers are acknowledged, so a world started again on the same
// cluster answers what the previous one had not finished, and may answer
// some requests twice. Answers that fail to produce (a topic not created
// yet) are retried with backoff until they succeed or Close. The world
// creates no topics.
type PriorAuthWorld struct {
	cfg    PriorAuthWorldConfig
	cancel context.CancelFunc
	wg     sync.WaitGroup
	once   sync.Once
	stats  paStats
}

// PriorAuthWorldStats counts the requests the world answered (and, for the
// payer, the determinations it sent). Malformed requests count nowhere.
type PriorAuthWorldStats struct {
	// DocumentationRequests, SubmissionRequests and CommunicationRequests
	// count requests whose answer was acknowledged by the cluster.
	DocumentationRequests, SubmissionRequests int64
	// StatusChecks counts well-formed status checks the payer received.
	StatusChecks int64
	// Determinations counts determination.received records acknowledged:
	// two for a pended case (PENDED, then the final one).
	Determinations        int64
	CommunicationRequests int64
}

// paStats are the world's counters, and a way to wait for their next change
// without polling (tests use it).
type paStats struct {
	docs, subs, checks, dets, comms atomic.Int64

	mu      sync.Mutex
	changed chan struct{} // closed at the next change, then replaced
}

// add adds n to c and wakes whoever waits on changedCh.
func (s *paStats) add(c *atomic.Int64, n int64) {
	if n == 0 {
		return
	}
	c.Add(n)
	s.mu.Lock()
	if s.changed != nil {
		close(s.changed)
		s.changed = nil
	}
	s.mu.Unlock()
}

// changedCh returns a channel closed at the next change of any counter.
// Take it before reading the counters, or a change in between is missed.
func (s *paStats) changedCh() <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.changed == nil {
		s.changed = make(chan struct{})
	}
	return s.changed
}

// StartPriorAuthWorld starts the four services as consumers (each its own consumer group "sim-<service>", read_committed, from the start of their topic) and producers on c, until Close. It validates cfg.
//
// It returns once the services are started, not once they have joined their
// groups: requests produced before or after are answered alike, since each
// group starts from the beginning of its topics when it has no committed
// offsets. Close the world before its cluster.
func StartPriorAuthWorld(c *Cluster, cfg PriorAuthWorldConfig) (*PriorAuthWorld, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	if c == nil {
		return nil, errors.New("sim: prior-auth world: nil cluster")
	}
	return StartPriorAuthWorldOn(c.ClientOpts(), cfg)
}

// StartPriorAuthWorldOn is [StartPriorAuthWorld] on any cluster, given its
// client options (seed brokers, TLS, SASL): a load generator's simulated
// outside world for a real deployment.
func StartPriorAuthWorldOn(kafka []kgo.Opt, cfg PriorAuthWorldConfig) (*PriorAuthWorld, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	if len(kafka) == 0 {
		return nil, errors.New("sim: prior-auth world: no Kafka client options")
	}
	w := &PriorAuthWorld{cfg: cfg}

	type service struct {
		group  string
		topics []string
		run    func(context.Context, *kgo.Client)
	}
	responder := func(answer func(*kgo.Record) *kgo.Record, n *atomic.Int64) func(context.Context, *kgo.Client) {
		return func(ctx context.Context, cl *kgo.Client) { w.respond(ctx, cl, answer, n) }
	}
	services := []service{
		{paGroupDocumentation, []string{TopicPADocumentationRequested}, responder(w.documentationAnswer, &w.stats.docs)},
		{paGroupSubmission, []string{TopicPASubmissionRequested}, responder(w.submissionAnswer, &w.stats.subs)},
		{paGroupPayer, []string{TopicPASubmissionCompleted, TopicPAStatusCheckRequested}, w.payer},
		{paGroupCommunication, []string{TopicPACommunicationRequested}, responder(w.communicationAnswer, &w.stats.comms)},
	}
	clients := make([]*kgo.Client, 0, len(services))
	for _, s := range services {
		cl, err := kgo.NewClient(append(slices.Clone(kafka),
			kgo.ClientID(s.group),
			kgo.ConsumerGroup(s.group),
			kgo.ConsumeTopics(s.topics...),
			kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
			kgo.FetchIsolationLevel(kgo.ReadCommitted()),
			// Offsets are committed once answers are acknowledged:
			// at least once.
			kgo.DisableAutoCommit(),
		)...)
		if err != nil {
			for _, cl := range clients {
				cl.Close()
			}
			return nil, fmt.Errorf("sim: prior-auth world: client for %s: %w", s.group, err)
		}
		clients = append(clients, cl)
	}

	ctx, cancel := context.WithCancel(context.Background())
	w.cancel = cancel
	for i, s := range services {
		cl := clients[i]
		w.wg.Go(func() {
			// Close the client (leaving the group) only once the
			// service is done with it.
			defer cl.Close()
			s.run(ctx, cl)
		})
	}
	return w, nil
}

// Close stops the services and waits for them, their clients closed (each
// leaves its group). Requests being answered are abandoned, their offsets
// uncommitted, so a later world on the same cluster answers them; the payer
// drops the determinations it was holding back likewise. Safe to call more
// than once and concurrently.
func (w *PriorAuthWorld) Close() {
	w.once.Do(func() {
		w.cancel()
		w.wg.Wait()
	})
}

// Stats returns the world's counters. Safe to call at any time, also after
// Close.
func (w *PriorAuthWorld) Stats() PriorAuthWorldStats {
	return PriorAuthWorldStats{
		DocumentationRequests: w.stats.docs.Load(),
		SubmissionRequests:    w.stats.subs.Load(),
		StatusChecks:          w.stats.checks.Load(),
		Determinations:        w.stats.dets.Load(),
		CommunicationRequests: w.stats.comms.Load(),
	}
}

// respond is the loop of a service that answers each request with at most
// one record: poll a batch, answer it, wait for the answers to be
// acknowledged, commit the batch, repeat until ctx ends.
func (w *PriorAuthWorld) respond(ctx context.Context, cl *kgo.Client, answer func(*kgo.Record) *kgo.Record, n *atomic.Int64) {
	for {
		fs := cl.PollRecords(ctx, paMaxPollRecords)
		if ctx.Err() != nil || fs.IsClientClosed() {
			return
		}
		// Fetch errors (a topic not created yet) are kgo's to retry;
		// there is nothing to answer for them.
		reqs := fs.Records()
		if len(reqs) == 0 {
			continue
		}
		var out []*kgo.Record
		for _, r := range reqs {
			if a := answer(r); a != nil {
				out = append(out, a)
			}
		}
		if produceAll(ctx, cl, out) != nil {
			return // ctx ended; the batch stays uncommitted
		}
		w.stats.add(n, int64(len(out)))
		// A failed commit only means these requests may be answered
		// again by a later world.
		_ = cl.CommitRecords(ctx, reqs...)
	}
}

// produceAll produces recs and waits for them, producing again those that
// failed, with backoff, until all are acknowledged or ctx ends (its error is
// returned then). A record that failed after reaching the broker may be
// written twice: at least once.
func produceAll(ctx context.Context, cl *kgo.Client, recs []*kgo.Record) error {
	backoff := retryBackoffMin
	for len(recs) > 0 {
		failed := make([]bool, len(recs))
		var wg sync.WaitGroup
		for i, r := range recs {
			wg.Add(1)
			cl.Produce(ctx, r, func(_ *kgo.Record, err error) {
				defer wg.Done()
				failed[i] = err != nil // each promise writes its own slot
			})
		}
		wg.Wait()
		retry := recs[:0:0]
		for i, r := range recs {
			if failed[i] {
				retry = append(retry, r)
			}
		}
		if len(retry) == 0 {
			return nil
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
		backoff = min(2*backoff, paProduceBackoffMax)
		recs = retry
	}
	return nil
}

// ---------------------------------------------------------------------------
// The payer

// payerItem is one record the payer's poll loop hands to its scheduler, in
// poll order, so that the scheduler can commit offsets in order.
type payerItem struct {
	rec         *kgo.Record
	statusCheck bool       // a well-formed status check
	c           *payerCase // a case to decide; nil for everything else
}

type payerCase struct {
	priorAuthID string
	hdrs        []kgo.RecordHeader
	final       string
	pended      bool
}

// payerTask is one determination, held in a delayQueue until due.
type payerTask struct {
	c      *payerCase
	pended bool // this task sends PENDED; the final one follows
	mark   *offsetMark
}

// payer runs the payer: a poll loop that parses and hands records over, and
// a scheduler (this goroutine) that holds cases until due, sends their
// determinations and commits. Both stop when ctx ends.
func (w *PriorAuthWorld) payer(ctx context.Context, cl *kgo.Client) {
	items := make(chan payerItem, paPayerQueue)
	var wg sync.WaitGroup
	defer wg.Wait()
	wg.Go(func() { w.payerPoll(ctx, cl, items) })
	w.payerSchedule(ctx, cl, items)
}

func (w *PriorAuthWorld) payerPoll(ctx context.Context, cl *kgo.Client, items chan<- payerItem) {
	for {
		fs := cl.PollRecords(ctx, paMaxPollRecords)
		if ctx.Err() != nil || fs.IsClientClosed() {
			return
		}
		for _, r := range fs.Records() {
			it := payerItem{rec: r}
			var ref paCaseRef
			if decodeRequest(r.Value, &ref, &ref.PriorAuthID) {
				switch r.Topic {
				case TopicPAStatusCheckRequested:
					it.statusCheck = true
				case TopicPASubmissionCompleted:
					final, pended := w.cfg.PriorAuthOutcome(ref.PriorAuthID)
					it.c = &payerCase{
						priorAuthID: ref.PriorAuthID,
						hdrs:        answerHeaders(r, "sim.payer", TopicPADeterminationReceived),
						final:       final,
						pended:      pended,
					}
				}
			}
			select {
			case items <- it:
			case <-ctx.Done():
				return
			}
		}
	}
}

// payerSchedule owns the pending determinations and the commit marks.
//
// Offsets: every polled record gets a mark, in poll order per partition.
// A status check or malformed record is done on arrival; a case is done
// once its last determination is acknowledged. The committed offset of a
// partition advances over its done prefix only, so a case held back by
// PayerDelay (or pended) is never committed past, even when later records
// of its partition are done: a world stopped with cases pending decides
// them again when restarted.
func (w *PriorAuthWorld) payerSchedule(ctx context.Context, cl *kgo.Client, items <-chan payerItem) {
	var (
		tasks delayQueue[payerTask]
		marks commitTracker
	)
	schedule := func(c *payerCase, pended bool, m *offsetMark) {
		tasks.push(time.Now().Add(w.cfg.PayerDelay), payerTask{c: c, pended: pended, mark: m})
	}
	accept := func(it payerItem) {
		m := marks.add(it.rec)
		switch {
		case it.c != nil:
			schedule(it.c, it.c.pended, m)
		case it.statusCheck:
			w.stats.add(&w.stats.checks, 1)
			m.done = true
		default:
			m.done = true
		}
	}
	fire := func(due []payerTask) error {
		if len(due) > 0 {
			recs := make([]*kgo.Record, len(due))
			for i, t := range due {
				recs[i] = w.determination(t)
			}
			if err := produceAll(ctx, cl, recs); err != nil {
				return err // ctx ended
			}
			w.stats.add(&w.stats.dets, int64(len(recs)))
			for _, t := range due {
				if t.pended {
					// The final determination waits another
					// PayerDelay, after PENDED is acknowledged.
					schedule(t.c, false, t.mark)
				} else {
					t.mark.done = true
				}
			}
		}
		// Also with nothing due: status checks and malformed records
		// are done on arrival.
		if offs := marks.advance(); len(offs) > 0 {
			// A failed commit (a rebalance) only means re-decisions
			// by a later world.
			cl.CommitOffsetsSync(ctx, offs, nil)
		}
		return nil
	}
	runDelayQueue(ctx, items, &tasks, paMaxPendingCases, paMaxPollRecords, accept, fire)
}

func (w *PriorAuthWorld) determination(t payerTask) *kgo.Record {
	now := w.cfg.Now().UTC()
	d := paDetermination{
		PriorAuthID:         t.c.priorAuthID,
		DeterminationStatus: t.c.final,
		DeterminationDate:   now.Format(time.RFC3339),
	}
	if z := w.cfg.PayerTimeZone; z != nil {
		now = now.In(z)
		d.DeterminationDate = now.Format("2006-01-02T15:04:05-0700")
	}
	if t.pended {
		d.DeterminationStatus = PAStatusPended
	}
	d.DeterminationReason = paReason(d.DeterminationStatus)
	if d.DeterminationStatus == PAStatusApproved || d.DeterminationStatus == PAStatusPartiallyApproved {
		d.ExpirationDate = now.Add(w.cfg.ExpireAfter).Format(time.RFC3339)
		if w.cfg.DateOnlyExpiration {
			d.ExpirationDate = now.Add(w.cfg.ExpireAfter).Format(time.DateOnly)
		}
	}
	return &kgo.Record{
		Topic:   TopicPADeterminationReceived,
		Key:     []byte(t.c.priorAuthID),
		Value:   mustMarshal(d),
		Headers: t.c.hdrs,
	}
}

// offsetMark is one polled record: done once it needs nothing more, next
// being the offset to commit then.
type offsetMark struct {
	next kgo.EpochOffset
	done bool
}

type topicPartition struct {
	topic     string
	partition int32
}

// commitTracker holds the marks of every partition in offset order. It is
// owned by one goroutine.
type commitTracker map[topicPartition][]*offsetMark

func (t *commitTracker) add(r *kgo.Record) *offsetMark {
	if *t == nil {
		*t = make(commitTracker)
	}
	tp := topicPartition{r.Topic, r.Partition}
	m := &offsetMark{next: kgo.EpochOffset{Epoch: r.LeaderEpoch, Offset: r.Offset + 1}}
	pending := (*t)[tp]
	if n := len(pending); n > 0 && pending[n-1].next.Offset >= m.next.Offset {
		// The consumer went back (the partition came back after a
		// rebalance, from an older commit): the old marks no longer
		// say anything about what is before m. Their tasks still send
		// their determinations, at least once.
		pending = nil
	}
	(*t)[tp] = append(pending, m)
	return m
}

// advance drops the done prefix of each partition and returns the offsets
// to commit for those that moved, nil if none did.
func (t commitTracker) advance() map[string]map[int32]kgo.EpochOffset {
	var offs map[string]map[int32]kgo.EpochOffset
	for tp, pending := range t {
		i := 0
		for i < len(pending) && pending[i].done {
			i++
		}
		if i == 0 {
			continue
		}
		if offs == nil {
			offs = make(map[string]map[int32]kgo.EpochOffset)
		}
		if offs[tp.topic] == nil {
			offs[tp.topic] = make(map[int32]kgo.EpochOffset)
		}
		offs[tp.topic][tp.partition] = pending[i-1].next
		clear(pending[:i]) // let the marks go
		t[tp] = pending[i:]
	}
	return offs
}
