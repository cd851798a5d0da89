package priorauth

import (
	"encoding/json"
	"net/http"
	"strconv"

	"github.com/carepipe/carepipe/pipeline"
	"github.com/carepipe/carepipe/pipeline/query"
)

// maxListLimit bounds a list query's page.
const maxListLimit = 1000

// QueryHandler serves the query API from the runner's local state (a CQRS
// read side over the priorauths store):
//
//	GET /api/priorauth/{id}                  the record with its history
//	GET /api/priorauth?status=S&limit=N      records, optionally of one status
//
// A record of a partition another instance of the group owns is asked of
// that instance, at the query address it advertises, and its answer passed
// back; while the partition moves between instances the answer is 503 with
// Retry-After (see query.Forwarder). Where the owner advertises no address
// it is a 404 that says another instance holds it. Lists cover the
// partitions owned here, and say so. Answers may include writes of the
// transaction in flight.
func QueryHandler(r *pipeline.Runner) http.Handler {
	mux := http.NewServeMux()
	fwd := query.NewForwarder(r)
	mux.HandleFunc("GET /api/priorauth/{id}", func(w http.ResponseWriter, req *http.Request) {
		id := req.PathValue("id")
		if fwd.Forward(w, req, id) {
			return
		}
		if v, ok := r.Lookup(StorePriorAuths, id); ok {
			rec, err := decodeRecord(v)
			if err != nil {
				writeJSON(w, http.StatusInternalServerError, map[string]string{"error": err.Error()})
				return
			}
			writeJSON(w, http.StatusOK, rec)
			return
		}
		msg := "no prior authorization with this id (a settled one leaves the state when its retention has passed)"
		switch p, owned, ready := r.Owner(id); {
		case p >= 0 && owned && !ready:
			w.Header().Set("Retry-After", "1")
			writeJSON(w, http.StatusServiceUnavailable, map[string]string{"error": "partition " + strconv.Itoa(int(p)) + " of this instance is restoring its state; try again shortly"})
			return
		case p >= 0 && !owned:
			msg = "not held by this instance: partition " + strconv.Itoa(int(p)) + " is owned by another instance of the group"
		}
		writeJSON(w, http.StatusNotFound, map[string]string{"error": msg})
	})
	mux.HandleFunc("GET /api/priorauth", func(w http.ResponseWriter, req *http.Request) {
		status := Status(req.URL.Query().Get("status"))
		limit := 100
		if s := req.URL.Query().Get("limit"); s != "" {
			n, err := strconv.Atoi(s)
			if err != nil || n < 1 || n > maxListLimit {
				writeJSON(w, http.StatusBadRequest, map[string]string{"error": "limit must be an integer from 1 to " + strconv.Itoa(maxListLimit)})
				return
			}
			limit = n
		}
		out := struct {
			Items []*record `json:"items"`
			// Partial: only the partitions this instance owns are listed.
			Partial bool `json:"partial"`
		}{Items: []*record{}, Partial: true}
		r.Scan(StorePriorAuths, func(_ string, v []byte) bool {
			rec, err := decodeRecord(v)
			if err != nil || (status != "" && rec.Status != status) {
				return true
			}
			out.Items = append(out.Items, rec)
			return len(out.Items) < limit
		})
		writeJSON(w, http.StatusOK, out)
	})
	return mux
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}
