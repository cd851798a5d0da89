package rules

import (
	"os/exec"
	"slices"
	"strings"
	"testing"
)

// TestNoProcessorDependency: the package builds without the processor
// and the runtime (package doc), so that `carepipe rules check` does not
// link them and the processor can import it without a cycle. It asks the
// go command for the package's dependencies, as the build sees them.
func TestNoProcessorDependency(t *testing.T) {
	gocmd, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command to list dependencies with")
	}
	const module = "github.com/carepipe/carepipe"
	out, err := exec.Command(gocmd, "list", "-deps", "-test=false", module+"/pipeline/alerts/rules").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	deps := strings.Fields(string(out))
	if !slices.Contains(deps, module+"/pipeline/alerts/rules") {
		t.Fatalf("go list does not list the package itself: %q", deps)
	}
	for _, forbidden := range []string{module + "/pipeline", module + "/pipeline/alerts"} {
		if slices.Contains(deps, forbidden) {
			t.Errorf("depends on %s", forbidden)
		}
	}
	// Beyond the standard library, only the YAML parser.
	for _, d := range deps {
		if strings.Contains(strings.SplitN(d, "/", 2)[0], ".") && d != module+"/pipeline/alerts/rules" && d != "go.yaml.in/yaml/v3" {
			t.Errorf("depends on %s, beyond the standard library and the YAML parser", d)
		}
	}
}
