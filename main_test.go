package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// server is NoChat running through run(), as the binary does.
type server struct {
	url  string
	stop context.CancelFunc
	done chan error
	logs *syncBuffer   // everything run logged
	read chan struct{} // closed when the log's last line is in logs
}

// syncBuffer is a log sink that tests read while the server writes.
type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// start runs NoChat on a free port with the given environment and waits for
// /healthz to answer.
func start(t *testing.T, env map[string]string, args ...string) *server {
	t.Helper()
	return startServing(t, true, func(ctx context.Context, stderr io.Writer) error {
		return run(ctx, append([]string{"nochat", "-addr", "127.0.0.1:0"}, args...), func(k string) string { return env[k] }, io.Discard, stderr)
	})
}

// startConfig is start with the parsed configuration changed by change
// before it serves: for the settings no flag reaches.
func startConfig(t *testing.T, env map[string]string, change func(*config)) *server {
	t.Helper()
	return startServing(t, true, func(ctx context.Context, stderr io.Writer) error {
		cfg, err := parseFlags([]string{"nochat", "-addr", "127.0.0.1:0"}, func(k string) string { return env[k] }, stderr)
		if err != nil {
			return err
		}
		change(&cfg)
		return serveConfig(ctx, cfg, stderr)
	})
}

// startServing is start with the server run by serve, which logs to stderr.
// Without keepLog, s.logs holds only the log up to the serving URL.
func startServing(t *testing.T, keepLog bool, serve func(ctx context.Context, stderr io.Writer) error) *server {
	t.Helper()
	return startServingWith(t, keepLog, func(*server) *http.Client { return http.DefaultClient }, serve)
}

// startServingWith is startServing asking /healthz with the client ready
// gives once the server logged its URL: over HTTPS, one that trusts the
// server's certificate.
func startServingWith(t *testing.T, keepLog bool, ready func(*server) *http.Client, serve func(ctx context.Context, stderr io.Writer) error) *server {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	s := &server{stop: cancel, done: make(chan error, 1), logs: &syncBuffer{}, read: make(chan struct{})}
	go func() {
		err := serve(ctx, pw)
		pw.CloseWithError(fmt.Errorf("run returned: %v", err))
		s.done <- err
	}()
	urlRe := regexp.MustCompile(`url=(https?://\S+)`)
	sc := bufio.NewScanner(pr)
	for sc.Scan() {
		fmt.Fprintln(s.logs, sc.Text())
		if m := urlRe.FindStringSubmatch(sc.Text()); m != nil {
			s.url = strings.TrimSuffix(m[1], "/")
			break
		}
	}
	if s.url == "" {
		cancel()
		t.Fatalf("no serving URL in the log: %v", sc.Err())
	}
	// Keep the log flowing. A pipe's write returns once the copy has read
	// it, not once it is in s.logs: shutdown waits for the copy's end, so
	// a test reading the log then finds run's last words.
	sink := io.Writer(s.logs)
	if !keepLog {
		sink = io.Discard
	}
	go func() {
		defer close(s.read)
		io.Copy(sink, pr)
	}()
	t.Cleanup(func() { s.shutdown(t) })

	resp, err := ready(s).Get(s.url + "/healthz")
	if err != nil {
		t.Fatalf("the first request: %v (%s)\nthe server's log so far:\n%s", err, s.state(), s.logs)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || strings.TrimSpace(string(body)) != "ok" {
		t.Fatalf("healthz: %d %q\nthe server's log so far:\n%s", resp.StatusCode, body, s.logs)
	}
	return s
}

// state says whether run has returned, and with what, waiting a moment
// for it; it leaves run's result for shutdown.
func (s *server) state() string {
	select {
	case err := <-s.done:
		s.done <- err
		return fmt.Sprintf("run had returned: %v", err)
	case <-time.After(time.Second):
		return "run was still running"
	}
}

func (s *server) shutdown(t *testing.T) {
	t.Helper()
	if s.stop == nil {
		return
	}
	s.stop()
	s.stop = nil
	select {
	case err := <-s.done:
		if err != nil {
			t.Errorf("run: %v", err)
		}
		<-s.read // run has returned, so its log is closed
	case <-time.After(10 * time.Second):
		t.Error("run did not return after shutdown")
	}
}

// The server's last words (a shutdown's summaries) are in s.logs once
// shutdown returns: tests read them right after.
func TestStartKeepsTheLogToItsLastLine(t *testing.T) {
	for i := range 200 {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		s := startServing(t, true, func(ctx context.Context, stderr io.Writer) error {
			srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") })}
			go srv.Serve(ln)
			fmt.Fprintf(stderr, "serving url=http://%s\n", ln.Addr())
			<-ctx.Done()
			srv.Close()
			fmt.Fprintf(stderr, "the last line %d\n", i)
			return nil
		})
		s.shutdown(t)
		if want := fmt.Sprintf("the last line %d", i); !strings.Contains(s.logs.String(), want) {
			t.Fatalf("run %d: the log after shutdown lacks %q:\n%s", i, want, s.logs)
		}
	}
}

func TestRunServesChatAndKeepsHistoryAcrossRestart(t *testing.T) {
	dbPath := filepath.Join(t.TempDir(), "chat.db")
	env := map[string]string{"NOCHAT_DB": dbPath}
	s := start(t, env)

	conn := dialV1(t, s.url, "ann").conn
	conn.WriteJSON(map[string]any{"type": "send", "data": map[string]any{"message": "kept across restarts", "cid": "k1"}})
	var acked bool
	for !acked {
		conn.SetReadDeadline(time.Now().Add(5 * time.Second))
		var f struct{ Type string }
		if err := conn.ReadJSON(&f); err != nil {
			t.Fatal(err)
		}
		acked = f.Type == "ack"
	}

	s.shutdown(t)
	// The socket was told the server is going away.
	var ce *websocket.CloseError
	var err error
	conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	for {
		if _, _, err = conn.ReadMessage(); err != nil {
			break
		}
	}
	if !errors.As(err, &ce) || ce.Code != websocket.CloseGoingAway {
		t.Fatalf("socket ended with %v, want close 1001", err)
	}

	s = start(t, env)
	resp, err := http.Get(s.url + "/discussion/latest/10")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var msgs []struct{ User, Message string }
	json.NewDecoder(resp.Body).Decode(&msgs)
	if len(msgs) != 1 || msgs[0].Message != "kept across restarts" || msgs[0].User != "ann" {
		t.Fatalf("history after restart = %+v", msgs)
	}
	page, err := http.Get(s.url + "/")
	if err != nil {
		t.Fatal(err)
	}
	defer page.Body.Close()
	html, _ := io.ReadAll(page.Body)
	if !strings.Contains(string(html), "kept across restarts") {
		t.Fatal("the chat page does not render the stored message")
	}
}

func TestFlagsAndEnvironment(t *testing.T) {
	defaults := config{addr: ":8080", dbPath: "nochat.db", durability: "full"}
	retaining := func(r retention) config { c := defaults; c.retention = r; return c }
	tests := []struct {
		name string
		args []string
		env  map[string]string
		want config
		bad  string // part of the error, for a refused configuration
	}{
		{name: "defaults, keeping every message", want: defaults},
		{name: "env", env: map[string]string{"NOCHAT_ADDR": ":9000", "NOCHAT_DB": "/var/lib/x.db", "NOCHAT_DURABILITY": "normal"},
			want: config{addr: ":9000", dbPath: "/var/lib/x.db", durability: "normal"}},
		{name: "flags beat env", args: []string{"-addr", "127.0.0.1:1", "-db", "f.db"}, env: map[string]string{"NOCHAT_ADDR": ":9000"},
			want: config{addr: "127.0.0.1:1", dbPath: "f.db", durability: "full"}},
		{name: "bad durability", args: []string{"-durability", "bogus"}, bad: "durability"},
		{name: "addr not host:port", args: []string{"-addr", "8080"}, bad: "host:port"},
		{name: "unknown flag", args: []string{"-nope"}, bad: "nope"},
		{name: "stray argument", args: []string{"serve"}, bad: "serve"},
		{name: "retention flags", args: []string{"-retain-days", "30", "-retain-messages", "10000"}, want: retaining(retention{days: 30, messages: 10000})},
		{name: "retention env", env: map[string]string{"NOCHAT_RETAIN_DAYS": "7", "NOCHAT_RETAIN_MESSAGES": "500"}, want: retaining(retention{days: 7, messages: 500})},
		{name: "retention flag beats env", args: []string{"-retain-days", "1"}, env: map[string]string{"NOCHAT_RETAIN_DAYS": "7"}, want: retaining(retention{days: 1})},
		{name: "retain days not a number", args: []string{"-retain-days", "a week"}, bad: "-retain-days"},
		{name: "negative retain count", args: []string{"-retain-messages", "-5"}, bad: "-retain-messages"},
		{name: "bad retention env", env: map[string]string{"NOCHAT_RETAIN_MESSAGES": "lots"}, bad: "-retain-messages"},
		{name: "guests not on, read or off", args: []string{"-guests", "maybe"}, bad: "-guests"},
		{name: "bad guests env", env: map[string]string{"NOCHAT_GUESTS": "sometimes"}, bad: "-guests"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := parseCase(t, tt.args, tt.env, tt.bad)
			if !ok {
				return
			}
			if got.addr != tt.want.addr || got.dbPath != tt.want.dbPath || got.durability != tt.want.durability || got.retention != tt.want.retention {
				t.Fatalf("config = %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestExampleDatabaseServesItsConversation(t *testing.T) {
	// cp nochat.db.example nochat.db, as the README says, then run.
	dbPath := filepath.Join(t.TempDir(), "nochat.db")
	example, err := os.ReadFile("nochat.db.example")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dbPath, example, 0o644); err != nil {
		t.Fatal(err)
	}
	s := start(t, map[string]string{"NOCHAT_DB": dbPath})
	resp, err := http.Get(s.url + "/discussion/latest/50")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var msgs []struct{ User, Message string }
	if err := json.NewDecoder(resp.Body).Decode(&msgs); err != nil {
		t.Fatal(err)
	}
	if len(msgs) < 5 || msgs[0].User != "ann" || !strings.Contains(msgs[0].Message, "NoChat") {
		t.Fatalf("example history = %+v, want the demo conversation", msgs)
	}
}

func TestDedupWindowFlag(t *testing.T) {
	tests := []struct {
		name string
		args []string
		env  map[string]string
		want time.Duration
		bad  string // a usage error naming this flag
	}{
		{name: "default", want: 24 * time.Hour},
		{name: "flag", args: []string{"-dedup-window", "90m"}, want: 90 * time.Minute},
		{name: "env", env: map[string]string{"NOCHAT_DEDUP_WINDOW": "168h"}, want: 168 * time.Hour},
		{name: "flag beats env", args: []string{"-dedup-window", "1m"}, env: map[string]string{"NOCHAT_DEDUP_WINDOW": "168h"}, want: time.Minute},
		{name: "not a duration", args: []string{"-dedup-window", "a day"}, bad: "-dedup-window"},
		{name: "shorter than a reconnect", args: []string{"-dedup-window", "59s"}, bad: "-dedup-window"},
		{name: "longer than 30 days", args: []string{"-dedup-window", "721h"}, bad: "-dedup-window"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := parseCase(t, tt.args, tt.env, tt.bad)
			if !ok {
				return
			}
			if got.dedupWindow != tt.want {
				t.Fatalf("dedupWindow = %v, want %v", got.dedupWindow, tt.want)
			}
		})
	}
}

// parseCase parses a flag test case's arguments and environment. With bad
// set, it checks that parsing failed with a usage error mentioning bad and
// returns false; otherwise it fails the test on any error.
func parseCase(t *testing.T, args []string, env map[string]string, bad string) (config, bool) {
	t.Helper()
	got, err := parseFlags(append([]string{"nochat"}, args...), func(k string) string { return env[k] }, io.Discard)
	if bad != "" {
		var usage usageError
		if !errors.As(err, &usage) || !strings.Contains(err.Error(), bad) {
			t.Fatalf("err = %v, want a usage error mentioning %q", err, bad)
		}
		return got, false
	}
	if err != nil {
		t.Fatal(err)
	}
	return got, true
}
