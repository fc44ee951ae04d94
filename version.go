package main

import (
	"context"
	"fmt"
	"io"
	"runtime"
	"runtime/debug"
)

// version, commit and date are stamped at build time by make dist:
// go build -ldflags "-X main.version=v1.2.3 -X main.commit=... -X main.date=...".
// Unstamped, commit and date come from what the Go toolchain recorded (a
// build in a plain git checkout with -buildvcs); it records nothing in a git
// worktree or with -buildvcs=false, hence the stamps.
var (
	version = "dev"
	commit  = ""
	date    = ""
)

// buildInfo says which NoChat this is.
type buildInfo struct {
	Version string
	Commit  string
	Date    string
	Go      string
}

// buildVersion reads the stamped version and what the Go toolchain recorded
// about the source (commit and time, when built from a git checkout).
func buildVersion() buildInfo {
	b := buildInfo{Version: version, Commit: "unknown", Date: "unknown", Go: runtime.Version()}
	if info, ok := debug.ReadBuildInfo(); ok {
		dirty := false
		for _, s := range info.Settings {
			switch s.Key {
			case "vcs.revision":
				b.Commit = s.Value
			case "vcs.time":
				b.Date = s.Value
			case "vcs.modified":
				dirty = s.Value == "true"
			}
		}
		if dirty {
			b.Commit += "-dirty"
		}
	}
	if commit != "" {
		b.Commit = commit
	}
	if date != "" {
		b.Date = date
	}
	return b
}

func (b buildInfo) String() string {
	return fmt.Sprintf("nochat %s (commit %s, built %s, %s %s/%s)", b.Version, b.Commit, b.Date, b.Go, runtime.GOOS, runtime.GOARCH)
}

// runVersion prints the version: nochat version.
func runVersion(_ context.Context, _ []string, _ func(string) string, stdout, _ io.Writer) error {
	_, err := fmt.Fprintln(stdout, buildVersion())
	return err
}
