package sim

import (
	"net/http"
	"net/http/httptest"
	"testing"
)

func TestRegistryOutage(t *testing.T) {
	ok := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusNoContent) })
	get := func(h http.Handler) int {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/config", nil))
		return rec.Code
	}
	o := NewRegistryOutage(ok, http.StatusServiceUnavailable, 2)
	for i, want := range []int{503, 503, 204, 204} {
		if got := get(o); got != want {
			t.Fatalf("request %d: %d, want %d", i, got, want)
		}
	}
	if o.Failed() != 2 {
		t.Fatalf("failed %d, want 2", o.Failed())
	}
	down := NewRegistryOutage(ok, http.StatusUnauthorized, -1)
	for range 3 {
		if got := get(down); got != http.StatusUnauthorized {
			t.Fatalf("during the outage: %d", got)
		}
	}
	down.End()
	if got := get(down); got != http.StatusNoContent {
		t.Fatalf("after End: %d", got)
	}
}
