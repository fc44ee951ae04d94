package bench_test

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"nochat/bench"
	"nochat/chat"
	"nochat/db"
	"nochat/handlers"
	"nochat/static"
)

// newNoChat serves the real NoChat stack over a database file in a
// temporary directory, as the handlers tests do, and returns its ws:// URL.
// Its abuse limits are off, as for a benchmark (-msg-rate 0
// -max-conns-per-ip 0): the load generator sends faster than a person.
func newNoChat(t *testing.T) string {
	t.Helper()
	store, err := db.Open(context.Background(), filepath.Join(t.TempDir(), "nochat.db"), db.Options{})
	if err != nil {
		t.Fatal(err)
	}
	hub, err := chat.New(store, chat.Options{MsgRate: -1, MaxConnsPerIP: -1})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(handlers.New(handlers.Deps{Store: store, Hub: hub, Assets: static.New()}))
	t.Cleanup(func() {
		srv.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		hub.Close(ctx)
		store.Close()
	})
	return wsURL(srv)
}

func wsURL(srv *httptest.Server) string { return "ws" + strings.TrimPrefix(srv.URL, "http") + "/" }

func run(t *testing.T, cfg bench.Config) *bench.Result {
	t.Helper()
	if testing.Verbose() {
		cfg.Progress = os.Stderr
	}
	res, err := bench.Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if testing.Verbose() {
		res.WriteTable(os.Stderr)
	}
	return res
}

// checkComplete asserts what a correct, lossless server gives: every client
// connected and received every sent message once.
func checkComplete(t *testing.T, res *bench.Result, clients int) {
	t.Helper()
	if res.Connected != clients || res.Failed != 0 || res.Participants != clients || res.Disconnected != 0 || res.NotReady != 0 {
		t.Fatalf("connected %d, failed %d, participants %d, dropped %d, not ready %d; want all %d and no failures",
			res.Connected, res.Failed, res.Participants, res.Disconnected, res.NotReady, clients)
	}
	if res.Sent == 0 {
		t.Fatal("nothing was sent")
	}
	if got, want := res.Expected, res.Sent*int64(clients); got != want {
		t.Fatalf("expected = %d, want sent × clients = %d", got, want)
	}
	if res.Delivered != res.Expected || res.Lost != 0 || res.Duplicated != 0 {
		t.Fatalf("delivered %d of %d, lost %d, duplicated %d; want every delivery once", res.Delivered, res.Expected, res.Lost, res.Duplicated)
	}
	if res.DrainEnd != "complete" {
		t.Fatalf("drain ended %q, want complete", res.DrainEnd)
	}
	if got, want := res.Latency.Count, uint64(res.Delivered); got != want {
		t.Fatalf("latency samples = %d, want one per delivery (%d)", got, want)
	}
	if res.DeliveriesPerSecond <= 0 {
		t.Fatalf("deliveries/s = %v", res.DeliveriesPerSecond)
	}
}

func TestAgainstNoChat(t *testing.T) {
	for _, proto := range []string{bench.ProtoV1, bench.ProtoEcho} {
		for _, mode := range []bench.Mode{bench.Fanout, bench.Burst} {
			t.Run(proto+"/"+string(mode), func(t *testing.T) {
				const clients = 12
				res := run(t, bench.Config{
					URL: newNoChat(t), Proto: proto, Mode: mode, Clients: clients,
					Senders: 3, Rate: 40, Duration: 700 * time.Millisecond, Verify: true,
				})
				checkComplete(t, res, clients)
				if proto == bench.ProtoV1 && res.Acks != res.Sent {
					t.Errorf("acks = %d, want one per sent message (%d)", res.Acks, res.Sent)
				}
				if len(res.ServerErrors) > 0 {
					t.Errorf("server errors: %v", res.ServerErrors)
				}
				v := res.Verify
				if v == nil || v.Sent != res.Sent || v.Found != res.Sent || v.Missing != 0 || v.DuplicatedInHistory != 0 {
					t.Fatalf("verify = %+v, want all %d sent messages found once", v, res.Sent)
				}
			})
		}
	}
}

func TestAgainstBaseline(t *testing.T) {
	b := bench.NewBaseline()
	srv := httptest.NewServer(b)
	t.Cleanup(func() { b.Close(); srv.Close() })
	// A light load: melody drops only when a session's 256-frame queue is
	// full, which this never comes near.
	res := run(t, bench.Config{URL: wsURL(srv), Proto: bench.ProtoEcho, Clients: 10, Senders: 2, Rate: 50, Duration: 500 * time.Millisecond})
	checkComplete(t, res, 10)
}

// testServer is a tiny echo-protocol broadcast server whose deliveries can
// be tampered with: deliver gets the running count (from 1) of measured
// messages handed to clients and says how many copies to send (0 drops the
// delivery, 2 duplicates it). It keeps history for the REST routes the
// generator's -verify reads; keep gets the running count (from 1) of
// measured messages and says whether to store it.
type testServer struct {
	deliver func(n int64) int
	keep    func(n int64) bool
	// kick, if set, is asked after each measured delivery to connection
	// number conn (from 1, in connection order) whether to close it.
	kick func(conn int, delivered int) bool

	mu       sync.Mutex
	conns    []*testConn
	history  []string
	attempts atomic.Int64
	stored   atomic.Int64
}

type testConn struct {
	num       int
	mu        sync.Mutex // serialises writes
	ws        *websocket.Conn
	delivered int
	closed    bool
}

func (s *testServer) start(t *testing.T) string {
	mux := http.NewServeMux()
	up := websocket.Upgrader{Subprotocols: []string{bench.ProtoEcho}}
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		ws, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		s.mu.Lock()
		c := &testConn{num: len(s.conns) + 1, ws: ws}
		s.conns = append(s.conns, c)
		s.mu.Unlock()
		defer ws.Close()
		for {
			_, msg, err := ws.ReadMessage()
			if err != nil {
				return
			}
			s.broadcast(msg)
		}
	})
	mux.HandleFunc("GET /discussion/latest/{n}", func(w http.ResponseWriter, r *http.Request) {
		n, _ := strconv.Atoi(r.PathValue("n"))
		s.serveHistory(w, int64(1<<62), n)
	})
	mux.HandleFunc("GET /discussion", func(w http.ResponseWriter, r *http.Request) {
		before := int64(1 << 62)
		if v := r.URL.Query().Get("before"); v != "" {
			before, _ = strconv.ParseInt(v, 10, 64)
		}
		limit, _ := strconv.Atoi(r.URL.Query().Get("limit"))
		s.serveHistory(w, before, limit)
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return wsURL(srv)
}

func (s *testServer) broadcast(msg []byte) {
	measured := !strings.Contains(string(msg), " warmup ")
	s.mu.Lock()
	if !measured || s.keep == nil || s.keep(s.stored.Add(1)) {
		s.history = append(s.history, string(msg))
	}
	conns := append([]*testConn(nil), s.conns...)
	s.mu.Unlock()
	for _, c := range conns {
		copies := 1
		if measured && s.deliver != nil {
			copies = s.deliver(s.attempts.Add(1))
		}
		c.mu.Lock()
		for range copies {
			if !c.closed {
				c.ws.WriteMessage(websocket.TextMessage, msg)
			}
		}
		if measured && !c.closed {
			c.delivered++
			if s.kick != nil && s.kick(c.num, c.delivered) {
				c.closed = true
				c.ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.ClosePolicyViolation, "test kick"), time.Now().Add(time.Second))
				c.ws.Close()
			}
		}
		c.mu.Unlock()
	}
}

// serveHistory answers like NoChat: the newest limit messages with ids
// below before, oldest first. A message's id is its place in history, from 1.
func (s *testServer) serveHistory(w http.ResponseWriter, before int64, limit int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	type msg struct {
		ID      int64  `json:"id"`
		Message string `json:"message"`
	}
	out := []msg{}
	hi := min(before-1, int64(len(s.history)))
	for id := max(1, hi-int64(limit)+1); id <= hi; id++ {
		out = append(out, msg{id, s.history[id-1]})
	}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(out)
}

// lossyQuiet is how long runs against servers that lose messages wait for
// deliveries that will never come: shorter than the default, to keep the
// tests short, and still far above a delivery's time on one machine.
const lossyQuiet = 2 * time.Second

func TestReportsLossExactly(t *testing.T) {
	s := &testServer{deliver: func(n int64) int {
		if n%10 == 0 {
			return 0
		}
		return 1
	}}
	res := run(t, bench.Config{URL: s.start(t), Proto: bench.ProtoEcho, Clients: 8, Senders: 3, Rate: 50, Duration: 500 * time.Millisecond, Quiet: lossyQuiet})
	if res.Sent == 0 || res.Expected != res.Sent*8 {
		t.Fatalf("sent %d, expected %d", res.Sent, res.Expected)
	}
	if got, want := s.attempts.Load(), res.Expected; got != want {
		t.Fatalf("server made %d delivery attempts, generator expected %d", got, want)
	}
	if got, want := res.Lost, res.Expected/10; got != want {
		t.Fatalf("lost = %d, want every 10th of %d = %d", got, res.Expected, want)
	}
	if res.DrainEnd != "quiet" {
		t.Fatalf("drain ended %q, want quiet (the lost deliveries never come)", res.DrainEnd)
	}
	if got, want := res.Delivered, res.Expected-res.Expected/10; got != want || res.Duplicated != 0 {
		t.Fatalf("delivered %d, duplicated %d; want %d and 0", got, res.Duplicated, want)
	}
}

func TestReportsDuplicatesExactly(t *testing.T) {
	s := &testServer{deliver: func(n int64) int {
		if n%7 == 0 {
			return 2
		}
		return 1
	}}
	res := run(t, bench.Config{URL: s.start(t), Proto: bench.ProtoEcho, Clients: 8, Senders: 3, Rate: 50, Duration: 500 * time.Millisecond})
	if got, want := res.Duplicated, res.Expected/7; got != want || want == 0 {
		t.Fatalf("duplicated = %d, want every 7th of %d = %d", got, res.Expected, want)
	}
	if res.Lost != 0 || res.Delivered != res.Expected {
		t.Fatalf("delivered %d of %d, lost %d; want all", res.Delivered, res.Expected, res.Lost)
	}
}

func TestBurstWithLossKeepsGoing(t *testing.T) {
	// A server that drops a third of deliveries, senders' own echoes too:
	// windows must not jam for good, and the accounting stays exact.
	s := &testServer{deliver: func(n int64) int {
		if n%3 == 0 {
			return 0
		}
		return 1
	}}
	res := run(t, bench.Config{URL: s.start(t), Proto: bench.ProtoEcho, Mode: bench.Burst, Clients: 4, Duration: 700 * time.Millisecond, Stall: 100 * time.Millisecond, Quiet: lossyQuiet})
	if res.Sent < 100 {
		t.Fatalf("sent %d: senders jammed", res.Sent)
	}
	if got, want := res.Lost, res.Expected/3; got != want {
		t.Fatalf("lost = %d, want every 3rd of %d = %d", got, res.Expected, want)
	}
}

func TestVerifyFindsMissingMessage(t *testing.T) {
	s := &testServer{keep: func(n int64) bool { return n != 5 }}
	url := s.start(t)
	// Some history from before the run, which verify must page past.
	s.mu.Lock()
	for i := range 3 {
		s.history = append(s.history, "older "+strconv.Itoa(i))
	}
	s.mu.Unlock()
	res := run(t, bench.Config{URL: url, Proto: bench.ProtoEcho, Clients: 3, Senders: 2, Rate: 500, Duration: 1200 * time.Millisecond, Verify: true})
	if res.Sent <= historyPageForTest {
		t.Fatalf("sent %d: want more than one history page (%d) to test paging", res.Sent, historyPageForTest)
	}
	checkComplete(t, res, 3)
	v := res.Verify
	if v == nil || v.Missing != 1 || v.Found != res.Sent-1 || len(v.MissingExamples) != 1 {
		t.Fatalf("verify = %+v, want exactly one of %d missing", v, res.Sent)
	}
	// The fifth measured message the server saw is the one left out; the
	// report names it by its text's header.
	missing := v.MissingExamples[0]
	if !strings.HasPrefix(missing, "bench "+res.Run+" ") {
		t.Fatalf("missing example %q does not name a message of run %s", missing, res.Run)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, h := range s.history {
		if strings.HasPrefix(h, missing+" ") {
			t.Fatalf("reported missing %q, but history has %q", missing, h)
		}
	}
}

// historyPageForTest is the generator's page size for -verify.
const historyPageForTest = 500

func TestCountsDisconnectedClients(t *testing.T) {
	s := &testServer{kick: func(conn, delivered int) bool { return conn == 3 && delivered == 4 }}
	// One dial at a time, so the third connection is client 2, which does
	// not send (clients 0 and 1 do).
	res := run(t, bench.Config{URL: s.start(t), Proto: bench.ProtoEcho, Clients: 6, Senders: 2, Rate: 40, Duration: 500 * time.Millisecond, Connect: 1, Quiet: lossyQuiet})
	if res.Disconnected != 1 || res.DisconnectReasons["close 1008 test kick"] != 1 {
		t.Fatalf("dropped %d %v, want 1 with close 1008 test kick", res.Disconnected, res.DisconnectReasons)
	}
	if got, want := res.Lost, res.Sent-4; got != want || res.LostAtDisconnected != want {
		t.Fatalf("lost %d (%d owed to dropped clients), want %d: all but the 4 it got before the kick", got, res.LostAtDisconnected, want)
	}
}

func TestIdleHoldsConnections(t *testing.T) {
	b := bench.NewBaseline()
	srv := httptest.NewServer(b)
	t.Cleanup(func() { b.Close(); srv.Close() })
	res := run(t, bench.Config{URL: wsURL(srv), Proto: bench.ProtoEcho, Mode: bench.Idle, Clients: 20, Duration: 200 * time.Millisecond, PID: os.Getpid()})
	if res.Connected != 20 || res.Disconnected != 0 || res.Sent != 0 {
		t.Fatalf("connected %d, dropped %d, sent %d; want 20, 0, 0", res.Connected, res.Disconnected, res.Sent)
	}
	if _, err := os.Stat("/proc/self/stat"); err != nil {
		return
	}
	s := res.Server
	if !s.Measured || s.RSSConnectedMiB <= 0 {
		t.Fatalf("server stats %+v: not read from /proc", s)
	}
	// Per connection: growth from before connecting, to all connected and
	// to the end of holding.
	for _, c := range []struct {
		name    string
		got, at float64
	}{{"once connected", s.RSSPerConnKiB, s.RSSConnectedMiB}, {"at the end", s.RSSHeldPerConnKiB, s.RSSMiB}} {
		if want := (c.at - s.RSSBeforeMiB) * 1024 / 20; math.Abs(c.got-want) > 0.01 {
			t.Errorf("%s: %.3f KiB per connection, want %.3f", c.name, c.got, want)
		}
	}
	var table strings.Builder
	res.WriteTable(&table)
	if want := fmt.Sprintf("%.1f KiB of RSS once connected, %.1f KiB at the end (held 200ms", s.RSSPerConnKiB, s.RSSHeldPerConnKiB); !strings.Contains(table.String(), want) {
		t.Errorf("report:\n%s\nwant a line with %q", table.String(), want)
	}
}

func TestConnectFailures(t *testing.T) {
	t.Run("refused subprotocol", func(t *testing.T) {
		// NoChat refuses an upgrade that offers no subprotocol it speaks;
		// here a server refuses everything with 400, which is not retried.
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			http.Error(w, "unsupported WebSocket subprotocol", http.StatusBadRequest)
		}))
		t.Cleanup(srv.Close)
		res, err := bench.Run(context.Background(), bench.Config{URL: wsURL(srv), Clients: 3})
		if err == nil || res.Failed != 3 || res.Retries != 0 {
			t.Fatalf("err %v, failed %d, retries %d; want an error, 3 failed, no retries", err, res.Failed, res.Retries)
		}
		if got, want := res.ConnectErrors["HTTP 400: unsupported WebSocket subprotocol"], 3; got != want {
			t.Fatalf("connect errors %v, want the server's reason ×3", res.ConnectErrors)
		}
	})
	t.Run("nothing listening", func(t *testing.T) {
		srv := httptest.NewServer(http.NotFoundHandler())
		url := wsURL(srv)
		srv.Close()
		res, err := bench.Run(context.Background(), bench.Config{URL: url, Clients: 2, Retries: 1})
		if err == nil || res.Failed != 2 || res.Retries != 2 {
			t.Fatalf("err %v, failed %d, retries %d; want an error, 2 failed, 1 retry each", err, res.Failed, res.Retries)
		}
	})
}

func TestConfigRejectsNonsense(t *testing.T) {
	for _, cfg := range []bench.Config{
		{URL: "http://localhost/"},
		{Proto: "chat"},
		{Mode: "storm"},
		{Clients: -1},
		{Rate: -2},
		{Window: -1},
		{Mode: bench.Idle, Verify: true},
	} {
		if err := cfg.Normalize(); err == nil {
			t.Errorf("%+v: no error", cfg)
		}
	}
}
