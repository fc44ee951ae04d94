package main

import (
	"bytes"
	"errors"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"

	"nochat/cluster/clustertest"
)

// -debug-addr takes loopback addresses only: the profiles show what the
// server does for whom, and a CPU profile costs it while it runs.
func TestDebugAddrIsLoopbackOnly(t *testing.T) {
	for _, addr := range []string{"127.0.0.1:6060", "[::1]:6060", "localhost:6060", "127.0.0.2:0"} {
		cfg, err := parseFlags([]string{"nochat", "-debug-addr", addr}, func(string) string { return "" }, io.Discard)
		if err != nil || cfg.debugAddr != addr {
			t.Errorf("-debug-addr %s: %v (kept %q)", addr, err, cfg.debugAddr)
		}
	}
	for _, addr := range []string{":6060", "0.0.0.0:6060", "[::]:6060", "192.168.1.2:6060", "pi.example.org:6060", "6060"} {
		_, err := parseFlags([]string{"nochat", "-debug-addr", addr}, func(string) string { return "" }, io.Discard)
		var usage usageError
		if !errors.As(err, &usage) || !strings.Contains(err.Error(), "-debug-addr") {
			t.Errorf("-debug-addr %s: %v, want a usage error naming the flag", addr, err)
		}
	}
	cfg, err := parseFlags([]string{"nochat"}, func(k string) string { return "" }, io.Discard)
	if err != nil || cfg.debugAddr != "" {
		t.Errorf("no -debug-addr: %q, %v; want none", cfg.debugAddr, err)
	}
}

// With -debug-addr, the profiles are served there, and never on the
// chat's own address.
func TestDebugProfilesOnTheirOwnAddress(t *testing.T) {
	addr := clustertest.LoopbackPorts(t, 1)[0]
	s := start(t, map[string]string{"NOCHAT_DB": filepath.Join(t.TempDir(), "nochat.db"), "NOCHAT_DEBUG_ADDR": addr})
	get := func(url string) (int, []byte) {
		t.Helper()
		resp, err := http.Get(url)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, b
	}
	code, heap := get("http://" + addr + "/debug/pprof/heap")
	if code != http.StatusOK || !bytes.HasPrefix(heap, []byte{0x1f, 0x8b}) {
		t.Errorf("the heap profile: %d, %d bytes starting %x; want a gzipped profile", code, len(heap), heap[:min(4, len(heap))])
	}
	if code, b := get("http://" + addr + "/debug/pprof/goroutine?debug=1"); code != http.StatusOK || !strings.Contains(string(b), "goroutine profile:") {
		t.Errorf("the goroutine profile: %d %.80q", code, b)
	}
	// Not the command line (it may hold -admin-password); not for a page
	// of another site, nor by another name pointed at loopback.
	if code, b := get("http://" + addr + "/debug/pprof/cmdline"); code != http.StatusNotFound || strings.Contains(string(b), "NOCHAT") || strings.Contains(string(b), "-test") {
		t.Errorf("the command line: %d %.80q, want 404", code, b)
	}
	refused := func(what string, change func(*http.Request)) {
		t.Helper()
		req, _ := http.NewRequest("GET", "http://"+addr+"/debug/pprof/goroutine?debug=1", nil)
		change(req)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusForbidden || strings.Contains(string(b), "goroutine profile:") {
			t.Errorf("%s: %d %.80q, want 403", what, resp.StatusCode, b)
		}
	}
	refused("by another name (DNS rebinding)", func(r *http.Request) { r.Host = "attacker.example:" + strings.Split(addr, ":")[1] })
	refused("from another site's page", func(r *http.Request) { r.Header.Set("Sec-Fetch-Site", "cross-site") })
	for _, path := range []string{"/debug/pprof/", "/debug/pprof/heap", "/debug/pprof/goroutine?debug=1"} {
		if code, b := get(s.url + path); code != http.StatusNotFound || strings.Contains(string(b), "goroutine") {
			t.Errorf("the chat's address serves %s: %d %.80q", path, code, b)
		}
	}
}

// A -debug-addr that cannot be listened on stops the start: profiles asked
// for would otherwise be missing only when they are needed.
func TestDebugAddrBusyStopsTheStart(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	env := map[string]string{"NOCHAT_DB": filepath.Join(t.TempDir(), "nochat.db"), "NOCHAT_DEBUG_ADDR": busy.Addr().String()}
	err = run(t.Context(), []string{"nochat", "-addr", "127.0.0.1:0"}, func(k string) string { return env[k] }, io.Discard, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "-debug-addr") {
		t.Fatalf("a busy -debug-addr: %v, want the start refused naming the flag", err)
	}
}
