package app

import (
	"context"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/sr"
	"github.com/twmb/franz-go/pkg/sr/srfake"

	"github.com/carepipe/carepipe/pipeline"
	"github.com/carepipe/carepipe/pipeline/datasync"
)

// Regression (issue 23): the summary's errors column counted the stale
// updates that datasync's validation sends to data.sync.errors as
// error-type conflict, an expected outcome of conflict resolution, so a
// demo run read as 633 errors in 1,908 records. errors now counts the
// records that failed; stale updates have their own column beside
// duplicates, and a legend says what each counts and where it went.
func TestSummaryShowsExpectedOutcomesApartFromErrors(t *testing.T) {
	reg := srfake.New()
	t.Cleanup(reg.Close)
	cl, err := sr.NewClient(sr.URLs(reg.URL()))
	if err != nil {
		t.Fatal(err)
	}
	codec, err := datasync.Register(context.Background(), cl)
	if err != nil {
		t.Fatal(err)
	}
	val, err := datasync.NewValidation(datasync.WithCodec(codec))
	if err != nil {
		t.Fatal(err)
	}
	// The runner's counts of one demo run: 633 records on the error
	// topic, 600 of them stale updates (type conflict).
	s := pipeline.Stats{RecordsIn: 1908, Errors: 633, Conflicts: 600, Commits: 80}
	line := summaryLine(time.Date(2026, 12, 6, 18, 0, 0, 0, time.UTC), &built{name: "sync-val", validation: val}, s, 0)
	column := func(name string) string {
		m := regexp.MustCompile(`  ` + name + ` +(\d+)`).FindStringSubmatch(line)
		if m == nil {
			t.Fatalf("no %s column in %q", name, line)
		}
		return m[1]
	}
	if got := column("errors"); got != "33" {
		t.Errorf("errors %s, want 33 (the records that failed, not the stale ones): %q", got, line)
	}
	if got := column("stale"); got != "600" {
		t.Errorf("stale %s, want 600: %q", got, line)
	}
	column("duplicates")

	legend := summaryLegend([]*built{{name: "sync-val", validation: val}}, true)
	for _, want := range []string{"errors = records that could not be processed", "on purpose", "stale = ", "data.sync.errors", "duplicates = "} {
		if !strings.Contains(legend, want) {
			t.Errorf("legend %q does not say %q", legend, want)
		}
	}
	// Without datasync there is nothing stale to explain.
	if legend := summaryLegend([]*built{{name: "orders"}}, false); strings.Contains(legend, "stale") {
		t.Errorf("legend without datasync explains stale: %q", legend)
	}
}
