// Package version reports the build's version and git commit, stamped in by
// the linker (see the Makefile's LDFLAGS).
package version

import (
	"fmt"
	"runtime"
	"runtime/debug"
)

// These are set with -ldflags "-X". They are variables only because the
// linker can write nothing else; nothing in the program assigns them.
var (
	Version = "dev"
	Commit  = ""
)

// String is the one-line form `herald version` prints.
func String() string {
	commit := Commit
	if commit == "" {
		commit = vcsRevision()
	}
	if commit == "" {
		commit = "unknown"
	}
	return fmt.Sprintf("herald %s (commit %s, %s, %s/%s)", Version, commit, runtime.Version(), runtime.GOOS, runtime.GOARCH)
}

// vcsRevision falls back to what `go build` records when the binary was not
// built through the Makefile.
func vcsRevision() string {
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return ""
	}
	for _, s := range info.Settings {
		if s.Key == "vcs.revision" {
			return s.Value
		}
	}
	return ""
}
