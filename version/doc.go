// Package version says which carepipe this is: the version, the VCS
// revision and the Go version it was built with. It reads them from the
// build info the Go toolchain stamps into every binary, so a `go build` in a
// git checkout needs nothing more; a build without the repository's .git
// (the Docker build) stamps version and revision in with the linker
// (see Dockerfile), and those win.
package version
