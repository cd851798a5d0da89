package version

import (
	"runtime"
	"runtime/debug"
	"strings"
	"testing"
)

func TestRead(t *testing.T) {
	checkout := &debug.BuildInfo{
		GoVersion: "go1.26.8",
		Main:      debug.Module{Path: "github.com/carepipe/carepipe", Version: "(devel)"},
		Settings: []debug.BuildSetting{
			{Key: "vcs", Value: "git"},
			{Key: "vcs.revision", Value: "76027b1f00"},
			{Key: "vcs.modified", Value: "false"},
		},
	}
	dirty := *checkout
	dirty.Settings = []debug.BuildSetting{{Key: "vcs.revision", Value: "76027b1f00"}, {Key: "vcs.modified", Value: "true"}}
	installed := &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "v1.4.0"}}
	docker := &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "(devel)"}}
	for _, tt := range []struct {
		name              string
		bi                *debug.BuildInfo
		ok                bool
		version, revision string
		want              Info
	}{
		{"build in a git checkout", checkout, true, "", "", Info{"(devel)", "76027b1f00", "go1.26.8"}},
		{"uncommitted changes say so", &dirty, true, "", "", Info{"(devel)", "76027b1f00+modified", "go1.26.8"}},
		{"go install module@version", installed, true, "", "", Info{"v1.4.0", "unknown", "go1.26.8"}},
		{"docker build: the linker's stamps", docker, true, "v1.4.0", "76027b1f00", Info{"v1.4.0", "76027b1f00", "go1.26.8"}},
		{"stamps win over the build info", checkout, true, "v1.4.0", "abc", Info{"v1.4.0", "abc", "go1.26.8"}},
		{"no build info", nil, false, "", "", Info{"(devel)", "unknown", "unknown"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if got := read(tt.bi, tt.ok, tt.version, tt.revision); got != tt.want {
				t.Errorf("read = %+v, want %+v", got, tt.want)
			}
		})
	}
}

// The test binary has build info too: Get says which Go built it.
func TestGetNamesTheGoVersion(t *testing.T) {
	in := Get()
	if in.GoVersion != runtime.Version() {
		t.Errorf("GoVersion %q, want %q", in.GoVersion, runtime.Version())
	}
	if s := in.String(); !strings.HasPrefix(s, "carepipe ") || !strings.Contains(s, runtime.Version()) {
		t.Errorf("String() = %q", s)
	}
}
