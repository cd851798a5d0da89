package sim

import (
	"bytes"
	"encoding/json"
	"testing"
)

func TestMedicationOrders(t *testing.T) {
	a, ids := MedicationOrders(3, 200)
	b, _ := MedicationOrders(3, 200)
	if len(a) != 200 || len(ids) != 200 {
		t.Fatalf("%d records, %d ids", len(a), len(ids))
	}
	optional := 0
	for i := range a {
		if !bytes.Equal(a[i].Value, b[i].Value) || !bytes.Equal(a[i].Key, b[i].Key) {
			t.Fatalf("order %d differs between two generations", i)
		}
		var o map[string]any
		if err := json.Unmarshal(a[i].Value, &o); err != nil {
			t.Fatal(err)
		}
		for _, f := range []string{"id", "patientId", "medicationId", "prescriberId", "startDate", "status", "createdAt", "updatedAt"} {
			if o[f] == nil {
				t.Fatalf("order %d lacks %s: %s", i, f, a[i].Value)
			}
		}
		if o["id"] != ids[i] || o["status"] != "SUBMITTED" || o["patientId"] != string(a[i].Key) || a[i].Topic != TopicOrdersSubmitted {
			t.Fatalf("order %d: %s keyed %s", i, a[i].Value, a[i].Key)
		}
		if o["dosage"] != nil {
			optional++
		}
	}
	if optional < 100 || optional > 190 {
		t.Errorf("%d of 200 orders carry the optional fields, want about three in four", optional)
	}
}
