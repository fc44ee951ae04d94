package main

import (
	"bufio"
	"fmt"
	"math"
	"os"
	"runtime/debug"
	"strconv"
	"strings"
)

// memoryLimit is the Go runtime's soft memory limit NoChat runs under
// (-memory-limit): as the heap nears it the garbage collector runs more
// often, instead of the heap growing until the OS swaps.
type memoryLimit struct {
	bytes  int64  // the limit; math.MaxInt64 is none; 0 leaves the runtime's (GOMEMLIMIT)
	source string // where it comes from, for the log
}

// minMemoryLimit is the smallest limit accepted: NoChat idles at about
// 28 MiB of RSS, and a limit below its live heap would have the collector
// run all the time (the runtime caps that at about half the CPU).
const minMemoryLimit = 16 << 20

// memoryShare is the part of the machine's memory the default limit is:
// a half. The limit is soft and counts only Go's memory, while SQLite's
// cache (allocated outside Go's heap), the kernel's cache of the database
// file, the OS and whatever else runs on a small Pi need the rest. On a
// 512 MB Pi Zero 2 W that is 256 MB, far above what NoChat needs idle
// (about 28 MiB) or at 5,000 connections (about 115 MiB), so the GC only
// works harder when memory really runs short.
const memoryShare = 2

// parseMemoryLimit reads -memory-limit: a size (64MiB, 200MB), 0 or off for
// none, or, when neither the flag nor its variable is given, GOMEMLIMIT if
// set (the runtime has applied it) and otherwise a share of the machine's
// memory.
func parseMemoryLimit(value string, given bool, getenv func(string) string) (memoryLimit, error) {
	if !given {
		if v := getenv("GOMEMLIMIT"); v != "" {
			return memoryLimit{source: "GOMEMLIMIT=" + v}, nil
		}
		total, from := machineMemory()
		if total <= 0 {
			return memoryLimit{bytes: math.MaxInt64, source: "none: the machine's memory is unknown"}, nil
		}
		return memoryLimit{bytes: max(minMemoryLimit, total/memoryShare), source: fmt.Sprintf("half of %s (%s)", sizeText(total), from)}, nil
	}
	switch strings.ToLower(strings.TrimSpace(value)) {
	case "0", "off":
		return memoryLimit{bytes: math.MaxInt64, source: "off"}, nil
	}
	n, err := parseBytes(value)
	if err != nil || n < minMemoryLimit {
		return memoryLimit{}, fmt.Errorf("-memory-limit %q: want a size of at least 16MiB, for example 64MiB or 200MB, or off", value)
	}
	return memoryLimit{bytes: n, source: "-memory-limit"}, nil
}

// apply sets the limit and returns the one in force.
func (m memoryLimit) apply() int64 {
	if m.bytes > 0 {
		debug.SetMemoryLimit(m.bytes)
	}
	return debug.SetMemoryLimit(-1)
}

// machineMemory is the memory this process may use: the cgroup's limit
// when one is set (a container, a systemd MemoryMax=), else the machine's
// MemTotal. It returns 0 when neither can be read.
func machineMemory() (int64, string) {
	total := int64(0)
	from := ""
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		sc := bufio.NewScanner(strings.NewReader(string(b)))
		for sc.Scan() {
			f := strings.Fields(sc.Text())
			if len(f) >= 2 && f[0] == "MemTotal:" {
				if kb, err := strconv.ParseInt(f[1], 10, 64); err == nil && kb > 0 {
					total, from = kb<<10, "MemTotal"
				}
			}
		}
	}
	if b, err := os.ReadFile("/sys/fs/cgroup/memory.max"); err == nil {
		// "max" means no limit.
		if n, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64); err == nil && n > 0 && (total == 0 || n < total) {
			total, from = n, "cgroup memory.max"
		}
	}
	return total, from
}

// sizeText writes bytes in MiB, as the log shows a limit.
func sizeText(n int64) string {
	if n == math.MaxInt64 {
		return "none"
	}
	return fmt.Sprintf("%.0f MiB", float64(n)/(1<<20))
}
