package datasync

import (
	"encoding/json"
	"net/http"
	"strconv"

	"github.com/carepipe/carepipe/pipeline"
	"github.com/carepipe/carepipe/pipeline/query"
)

// QueryHandler serves the read model from the reconciliation runner's local
// state (the aggregates store):
//
//	GET /api/patients/{id}             the canonical patient, its version history
//	                                   (sources, versions, resolutions) and its
//	                                   targets' acknowledgements
//	GET /api/sync/{entity}/{id}        the same for any entity type
//
// An entity of a partition another instance of the group owns is asked of
// that instance, at the query address it advertises, and its answer passed
// back; while the partition moves between instances the answer is 503 with
// Retry-After (see query.Forwarder). Where the owner advertises no address
// it is a 404 that says another instance holds it. Answers may include
// writes of the transaction in flight.
func QueryHandler(r *pipeline.Runner) http.Handler {
	mux := http.NewServeMux()
	fwd := query.NewForwarder(r)
	serve := func(w http.ResponseWriter, req *http.Request, e Entity, id string) {
		// The aggregate's partition is the entity id's.
		if fwd.Forward(w, req, id) {
			return
		}
		if v, ok := r.Lookup(StoreAggregates, AggregateKey(e, id)); ok {
			// An aggregate at version 0 holds only acknowledgements that
			// came before their version: no record yet.
			var head struct {
				Version int64 `json:"version"`
			}
			if json.Unmarshal(v, &head) == nil && head.Version > 0 {
				w.Header().Set("Content-Type", "application/json")
				_, _ = w.Write(v)
				return
			}
		}
		msg := "no " + string(e) + " with this id"
		switch p, owned, ready := r.Owner(id); {
		case p >= 0 && owned && !ready:
			w.Header().Set("Retry-After", "1")
			writeError(w, http.StatusServiceUnavailable, "partition "+strconv.Itoa(int(p))+" of this instance is restoring its state; try again shortly")
			return
		case p >= 0 && !owned:
			msg = "not held by this instance: partition " + strconv.Itoa(int(p)) + " is owned by another instance of the group"
		}
		writeError(w, http.StatusNotFound, msg)
	}
	mux.HandleFunc("GET /api/patients/{id}", func(w http.ResponseWriter, req *http.Request) {
		serve(w, req, Patient, req.PathValue("id"))
	})
	mux.HandleFunc("GET /api/sync/{entity}/{id}", func(w http.ResponseWriter, req *http.Request) {
		e := Entity(req.PathValue("entity"))
		for _, k := range entities {
			if k == e {
				serve(w, req, e, req.PathValue("id"))
				return
			}
		}
		writeError(w, http.StatusBadRequest, "entity must be one of patient, encounter, observation, prescription")
	})
	return mux
}

func writeError(w http.ResponseWriter, code int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(map[string]string{"error": msg})
}
