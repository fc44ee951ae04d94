package bench

import (
	"bytes"
	"os"
	"strconv"
	"time"
)

// procSample is a server process's CPU time and resident memory, read from
// Linux's /proc. ok is false when there is no such process or no /proc.
type procSample struct {
	ok  bool
	cpu time.Duration // user + system
	rss int64         // bytes
}

// clockTick is USER_HZ, the unit of /proc's CPU times: 100 on every Linux
// architecture NoChat runs on (amd64, arm, arm64), and not readable without
// cgo.
const clockTick = time.Second / 100

func readProc(pid int) procSample {
	if pid <= 0 {
		return procSample{}
	}
	dir := "/proc/" + strconv.Itoa(pid) + "/"
	stat, err := os.ReadFile(dir + "stat")
	if err != nil {
		return procSample{}
	}
	// "pid (comm) state ppid ...": comm may hold spaces and parentheses,
	// so the fields are counted from the last ')'. utime and stime are
	// fields 14 and 15, the 12th and 13th after it.
	i := bytes.LastIndexByte(stat, ')')
	if i < 0 {
		return procSample{}
	}
	fields := bytes.Fields(stat[i+1:])
	if len(fields) < 13 {
		return procSample{}
	}
	utime, err1 := strconv.ParseInt(string(fields[11]), 10, 64)
	stime, err2 := strconv.ParseInt(string(fields[12]), 10, 64)
	if err1 != nil || err2 != nil {
		return procSample{}
	}
	status, err := os.ReadFile(dir + "status")
	if err != nil {
		return procSample{}
	}
	var rss int64 = -1
	for line := range bytes.Lines(status) {
		if v, ok := bytes.CutPrefix(line, []byte("VmRSS:")); ok {
			f := bytes.Fields(v)
			if len(f) >= 1 {
				kb, err := strconv.ParseInt(string(f[0]), 10, 64)
				if err == nil {
					rss = kb << 10
				}
			}
			break
		}
	}
	if rss < 0 {
		return procSample{}
	}
	return procSample{ok: true, cpu: time.Duration(utime+stime) * clockTick, rss: rss}
}
