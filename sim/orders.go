package sim

import (
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// TopicOrdersSubmitted is the topic medication orders are submitted on.
const TopicOrdersSubmitted = "medication.order.submitted"

// streamOrders is the random stream of order generation, apart from the
// other generators' streams.
const streamOrders = 0x40

// medicationOrder is the seed's MedicationOrder schema, as JSON.
type medicationOrder struct {
	ID           string  `json:"id"`
	PatientID    string  `json:"patientId"`
	MedicationID string  `json:"medicationId"`
	PrescriberID string  `json:"prescriberId"`
	Dosage       *string `json:"dosage"`
	Route        *string `json:"route"`
	Frequency    *string `json:"frequency"`
	StartDate    int64   `json:"startDate"`
	EndDate      *int64  `json:"endDate"`
	Status       string  `json:"status"`
	CreatedAt    int64   `json:"createdAt"`
	UpdatedAt    int64   `json:"updatedAt"`
}

var (
	orderMedications = []string{"197361", "314076", "860975", "1364445", "261551", "617314", "308136"}
	orderDosages     = []string{"5 mg", "10 mg", "20 mg", "500 mg", "1 g", "10 units"}
	orderRoutes      = []string{"oral", "intravenous", "subcutaneous", "intramuscular"}
	orderFrequencies = []string{"once daily", "twice daily", "every 8 hours", "at bedtime"}
)

// OrderID is the id of order i of a seed.
func OrderID(seed int64, i int) string { return fmt.Sprintf("ord-%d-%d", seed, i) }

// MedicationOrders returns n seeded medication orders (topic
// medication.order.submitted, keyed by patient id), shaped as the seed's
// MedicationOrder schema with status SUBMITTED, and their ids. Deterministic
// in (seed, i).
func MedicationOrders(seed int64, n int) ([]*kgo.Record, []string) {
	base := time.Date(2025, 3, 1, 8, 0, 0, 0, time.UTC)
	recs := make([]*kgo.Record, n)
	ids := make([]string, n)
	for i := range n {
		r := paRand(seed, streamOrders, int64(i))
		created := base.Add(time.Duration(i) * time.Second).UnixMilli()
		o := medicationOrder{
			ID:           OrderID(seed, i),
			PatientID:    PatientID(r.IntN(2000)),
			MedicationID: orderMedications[r.IntN(len(orderMedications))],
			PrescriberID: fmt.Sprintf("prac-%03d", r.IntN(200)),
			StartDate:    created,
			Status:       "SUBMITTED",
			CreatedAt:    created,
			UpdatedAt:    created,
		}
		// The schema's optional fields are present three times in four.
		if r.IntN(4) > 0 {
			d, rt, f := orderDosages[r.IntN(len(orderDosages))], orderRoutes[r.IntN(len(orderRoutes))], orderFrequencies[r.IntN(len(orderFrequencies))]
			o.Dosage, o.Route, o.Frequency = &d, &rt, &f
			end := created + int64(r.IntN(30)+1)*24*3600*1000
			o.EndDate = &end
		}
		ids[i] = o.ID
		recs[i] = &kgo.Record{Topic: TopicOrdersSubmitted, Key: []byte(o.PatientID), Value: mustMarshal(o)}
	}
	return recs, ids
}
