package version

import (
	"fmt"
	"runtime/debug"
)

// Set by the linker, never by code: -X github.com/carepipe/carepipe/version.version=v1.2.3
// and -X github.com/carepipe/carepipe/version.revision=<commit>. Empty: the
// build info's values.
var (
	version  string
	revision string
)

// Info is what a build says about itself.
type Info struct {
	// Version is the module version (v1.2.3, or a pseudo-version when
	// built by `go install module@commit`), the linker's stamp, or
	// "(devel)" for a build in a checkout.
	Version string
	// Revision is the VCS commit, with "+modified" when the work tree had
	// uncommitted changes; "unknown" when nothing stamped it.
	Revision string
	// GoVersion is the toolchain that built the binary (go1.26.0).
	GoVersion string
}

// Get reads the running binary's build info, the linker's stamps over it.
func Get() Info {
	bi, ok := debug.ReadBuildInfo()
	return read(bi, ok, version, revision)
}

// read is Get's logic on given build info and stamps.
func read(bi *debug.BuildInfo, ok bool, version, revision string) Info {
	in := Info{Version: "(devel)", Revision: "unknown", GoVersion: "unknown"}
	if ok {
		in.GoVersion = bi.GoVersion
		if v := bi.Main.Version; v != "" {
			in.Version = v
		}
		var rev string
		modified := false
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				rev = s.Value
			case "vcs.modified":
				modified = s.Value == "true"
			}
		}
		if rev != "" {
			in.Revision = rev
			if modified {
				in.Revision += "+modified"
			}
		}
	}
	if version != "" {
		in.Version = version
	}
	if revision != "" {
		in.Revision = revision
	}
	return in
}

// String is the line `carepipe version` prints.
func (in Info) String() string {
	return fmt.Sprintf("carepipe %s (revision %s, %s)", in.Version, in.Revision, in.GoVersion)
}
