package sim

import (
	"fmt"
	"net/http"
	"sync"
)

// RegistryOutage is a schema registry that is not there for a while: it
// wraps a registry's handler (srfake's) and answers its first n requests
// with an error status instead, as a registry behind a load balancer does
// while it starts (503) or one that refuses the credentials (401). With n
// negative, every request fails until [RegistryOutage.End].
type RegistryOutage struct {
	h      http.Handler
	status int

	mu       sync.Mutex
	left     int // requests still to fail; negative: until End
	answered int
}

// NewRegistryOutage wraps h, failing its first n requests with status.
func NewRegistryOutage(h http.Handler, status, n int) *RegistryOutage {
	return &RegistryOutage{h: h, status: status, left: n}
}

// End ends the outage: every later request reaches the registry.
func (o *RegistryOutage) End() {
	o.mu.Lock()
	o.left = 0
	o.mu.Unlock()
}

// Failed is how many requests the outage answered.
func (o *RegistryOutage) Failed() int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.answered
}

func (o *RegistryOutage) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	o.mu.Lock()
	fail := o.left != 0
	if fail {
		o.answered++
		if o.left > 0 {
			o.left--
		}
	}
	o.mu.Unlock()
	if !fail {
		o.h.ServeHTTP(w, r)
		return
	}
	// The registry's error body, so that a client reads it as one.
	w.Header().Set("Content-Type", "application/vnd.schemaregistry.v1+json")
	w.WriteHeader(o.status)
	fmt.Fprintf(w, `{"error_code":%d,"message":%q}`, o.status, http.StatusText(o.status))
}
