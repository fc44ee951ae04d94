package main

import (
	"cmp"
	"context"
	"errors"
	"io"
	"math"
	"path/filepath"
	"runtime/debug"
	"strings"
	"testing"
)

// The Go runtime's memory limit is process-wide: each case reads back what
// run() set, and the test puts the limit back as it found it.
func TestMemoryLimit(t *testing.T) {
	before := debug.SetMemoryLimit(-1)
	t.Cleanup(func() { debug.SetMemoryLimit(before) })
	total, _ := machineMemory()
	if total <= 0 {
		t.Fatal("cannot read this machine's memory (/proc/meminfo)")
	}

	tests := []struct {
		name   string
		args   []string
		env    map[string]string
		preset int64  // the runtime's limit before run, as GOMEMLIMIT would have set it
		want   int64  // the limit in force while serving
		logged string // in the start's log
	}{
		{name: "default: half the machine's memory", want: max(minMemoryLimit, total/2), logged: "from=\"half of"},
		{name: "flag in MiB", args: []string{"-memory-limit", "64MiB"}, want: 64 << 20, logged: "limit=\"64 MiB\""},
		{name: "variable in MB", env: map[string]string{"NOCHAT_MEMORY_LIMIT": "200MB"}, want: 200e6},
		{name: "off", args: []string{"-memory-limit", "off"}, want: math.MaxInt64, logged: "limit=none"},
		{name: "0 is off", args: []string{"-memory-limit=0"}, want: math.MaxInt64},
		{name: "GOMEMLIMIT wins over the default", env: map[string]string{"GOMEMLIMIT": "300MiB"}, preset: 300 << 20, want: 300 << 20, logged: `from="GOMEMLIMIT=300MiB"`},
		{name: "the flag wins over GOMEMLIMIT", args: []string{"-memory-limit", "100MiB"}, env: map[string]string{"GOMEMLIMIT": "300MiB"}, preset: 300 << 20, want: 100 << 20},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			debug.SetMemoryLimit(cmp.Or(tt.preset, math.MaxInt64))
			env := map[string]string{"NOCHAT_DB": filepath.Join(t.TempDir(), "nochat.db")}
			for k, v := range tt.env {
				env[k] = v
			}
			s := start(t, env, tt.args...)
			if got := debug.SetMemoryLimit(-1); got != tt.want {
				t.Errorf("memory limit while serving = %d, want %d", got, tt.want)
			}
			if !strings.Contains(s.logs.String(), "memory limit") || !strings.Contains(s.logs.String(), tt.logged) {
				t.Errorf("start's log does not say the limit (want %q):\n%s", tt.logged, s.logs.String())
			}
		})
	}

	for _, bad := range []string{"lots", "1MB", "-5MiB", "64 parsecs", ""} {
		t.Run("refuses "+bad, func(t *testing.T) {
			debug.SetMemoryLimit(math.MaxInt64)
			err := run(context.Background(), []string{"nochat", "-addr", "127.0.0.1:0", "-db", filepath.Join(t.TempDir(), "nochat.db"), "-memory-limit=" + bad}, func(string) string { return "" }, io.Discard, io.Discard)
			var usage usageError
			if !errors.As(err, &usage) || !strings.Contains(err.Error(), "-memory-limit") || !strings.Contains(err.Error(), "16MiB") {
				t.Fatalf("run with -memory-limit=%q: %v; want a usage error (exit status 2) naming the flag and what it wants", bad, err)
			}
			if got := debug.SetMemoryLimit(-1); got != math.MaxInt64 {
				t.Errorf("memory limit after a refused start = %d, want it untouched", got)
			}
		})
	}
}
