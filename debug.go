package main

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"strings"
	"time"
)

// -debug-addr serves the Go runtime's profiles (net/http/pprof: heap,
// goroutines, CPU, execution traces) on a listener of its own, for an
// operator on the machine who wants to see where a node's memory or CPU
// goes (`go tool pprof http://127.0.0.1:6060/debug/pprof/heap`). It is off
// unless given, and only ever on a loopback address: a goroutine dump
// shows what the server is doing for whom, and a CPU profile or trace
// costs the server while it runs. Nothing of it is on the chat's address.
// The command line is not served (it may hold -admin-password); requests
// by another name than a loopback one (DNS rebinding) or from a web page
// of another site are refused, as the operator's browser reaches the
// port too when it is forwarded with ssh -L.

// parseDebugAddr checks -debug-addr: empty for none, else host:port with
// a loopback host (127.0.0.1, ::1, localhost).
func parseDebugAddr(addr string) (string, error) {
	if addr == "" || addr == "off" {
		return "", nil
	}
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return "", fmt.Errorf("-debug-addr %q: want host:port, as 127.0.0.1:6060", addr)
	}
	if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
		return "", fmt.Errorf("-debug-addr %q: the profiles are for this machine only: want a loopback address, as 127.0.0.1:6060 (reach it from elsewhere through ssh -L)", addr)
	}
	return addr, nil
}

// startDebug serves the profiles on addr until stop is called.
func startDebug(addr string, log *slog.Logger) (stop func(), err error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("-debug-addr: %w", err)
	}
	// "localhost" is whatever the resolver says: what was bound is what
	// counts.
	if a, ok := ln.Addr().(*net.TCPAddr); !ok || !a.IP.IsLoopback() {
		ln.Close()
		return nil, fmt.Errorf("-debug-addr %q: it listens on %s, not a loopback address", addr, ln.Addr())
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index) // and every named profile under it
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	srv := &http.Server{
		Handler:           onlyLocal(mux),
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelDebug),
	}
	log.Info("serving the Go runtime's profiles", "at", "http://"+ln.Addr().String()+"/debug/pprof/")
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("debug profiles stopped", "err", err)
		}
	}()
	return func() { srv.Close() }, nil
}

// onlyLocal refuses a request by a name that is not loopback's (a page's
// own name pointed at 127.0.0.1: DNS rebinding) and one a page of another
// site made (Sec-Fetch-Site), with 403.
func onlyLocal(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		host, _, err := net.SplitHostPort(r.Host)
		if err != nil {
			host = r.Host
		}
		ip := net.ParseIP(strings.Trim(host, "[]"))
		local := host == "localhost" || ip != nil && ip.IsLoopback()
		if site := r.Header.Get("Sec-Fetch-Site"); !local || site == "cross-site" || site == "same-site" {
			http.Error(w, "the profiles are for this machine's own tools only", http.StatusForbidden)
			return
		}
		next.ServeHTTP(w, r)
	})
}
