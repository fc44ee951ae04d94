package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"runtime"
	"runtime/debug"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"nochat/static"
)

// What an unauthenticated client can do to NoChat's memory and goroutines,
// route by route: many large, distinct requests (headers near the server's
// limit, big cookies and bodies, a new path, origin, subprotocol, user name
// and client address each time), and afterwards the process must be back
// near where it started. A route that keeps anything per request, or leaves
// a goroutine behind, fails here however small the request that caused it.
//
// Tolerances, and why:
//   - heap in use (after runtime.GC and debug.FreeOSMemory) may grow by
//     floodHeapSlack over the baseline taken after a warm-up round: what
//     NoChat is meant to keep, at its bounds, is less than half of it (the
//     replay window, at most 2 MiB of frames; the recent-errors log, at most
//     1,000 entries of at most 300 bytes of detail; a rate-limit bucket per
//     client address seen in the last 10 minutes, some 300 bytes each for
//     the ~2,000 addresses used here), and the rest is the runtime's own
//     spans and pools. One route's requests carry floodPerRoute times
//     about 300 KiB, so keeping even a tenth of each would show as more.
//   - resident memory (VmRSS) may grow by floodRSSSlack: it also counts
//     SQLite's page caches (allocated outside the Go heap, up to 2 MiB per
//     pooled connection) and memory the runtime has not yet handed back.
//   - goroutines must come back to within floodGoroutineSlack of the
//     baseline: every connection, session and request goroutine ends when
//     its client has gone; the slack covers background helpers started
//     once, lazily, by the libraries underneath.
const (
	floodPerRoute       = 60
	floodHeapSlack      = 8 << 20
	floodRSSSlack       = 48 << 20
	floodGoroutineSlack = 2
	// floodUpgrades is how many socket upgrades with a distinct origin or
	// subprotocol are refused: more than the 1,000 distinct errors the
	// recent-errors log holds.
	floodUpgrades = 1200
	// floodMaxHeader is the most header bytes one request carries: within
	// net/http's default limit of 1 MiB, which the server keeps.
	floodMaxHeader = 900 << 10
)

func TestLargeDistinctRequestsLeaveNoMemoryOrGoroutinesBehind(t *testing.T) {
	if testing.Short() {
		t.Skip("sends a few hundred megabytes")
	}
	if raceEnabled {
		t.Skip("the race detector's shadow memory would be counted as NoChat's; the plain run measures")
	}
	const password = "flood test password"
	base := startQuiet(t, "-admin-password", password, "-trust-proxy")
	f := newFlooder(base)
	routes := f.routes()

	// One round first, so that what is built on first use (templates,
	// pools, prepared statements, the metrics registry) is in the baseline.
	for _, r := range routes {
		if err := f.run(r, 3); err != nil {
			t.Fatalf("warm-up: %v", err)
		}
	}
	f.settle()
	// A session's close timer (closeGrace, 1 s) and net/http's linger
	// on a closed connection (0.5 s) end later than the requests did.
	start := measure(quiet(2*time.Second, -1))
	t.Logf("baseline: heap in use %.1f MiB, RSS %.1f MiB, %d goroutines", mib(start.heap), mib(start.rss), start.goroutines)

	deadline := time.Now().Add(60 * time.Second) // bounds the whole flood on a slow machine
	last := start
	for _, r := range routes {
		if time.Now().After(deadline) {
			t.Fatalf("out of time before %s", r.name)
		}
		n := floodPerRoute
		if r.count > 0 {
			n = r.count
		}
		if err := f.run(r, n); err != nil {
			t.Errorf("%s: %v", r.name, err)
		}
		f.settle()
		now := measure(quiet(250*time.Millisecond, start.goroutines+floodGoroutineSlack))
		t.Logf("after %-18s %4d requests, %5.1f MiB sent: heap in use %+5.1f MiB (this route %+5.1f), RSS %+5.1f MiB, goroutines %+d",
			r.name, n, mib(uint64(f.sent.Swap(0))), mib(now.heap)-mib(start.heap), mib(now.heap)-mib(last.heap),
			mib(now.rss)-mib(start.rss), now.goroutines-start.goroutines)
		if now.heap > start.heap+floodHeapSlack {
			t.Errorf("after %s: heap in use %.1f MiB, %.1f MiB over the baseline (allowed %d MiB), %.1f MiB of it during this route",
				r.name, mib(now.heap), mib(now.heap-start.heap), floodHeapSlack>>20, mib(now.heap)-mib(last.heap))
		}
		if now.rss > start.rss+floodRSSSlack {
			t.Errorf("after %s: RSS %.1f MiB, %.1f MiB over the baseline (allowed %d MiB)",
				r.name, mib(now.rss), mib(now.rss-start.rss), floodRSSSlack>>20)
		}
		if now.goroutines > start.goroutines+floodGoroutineSlack {
			var dump bytes.Buffer
			pprof.Lookup("goroutine").WriteTo(&dump, 1)
			t.Errorf("after %s: %d goroutines, %d at the baseline:\n%.4000s", r.name, now.goroutines, start.goroutines, dump.String())
		}
		last = now
	}
}

// usage is the process's memory and goroutines at one moment.
type usage struct {
	heap, rss  uint64
	goroutines int
}

func measure(goroutines int) usage {
	runtime.GC()
	debug.FreeOSMemory()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return usage{heap: m.HeapInuse, rss: residentBytes(), goroutines: goroutines}
}

// quiet waits until the number of goroutines is at most want (any number
// if want is negative) and has not changed for stable, or 10 s have
// passed, and returns it. A connection's goroutines end a moment after its
// client closes it, not at once.
func quiet(stable time.Duration, want int) int {
	const poll = 25 * time.Millisecond
	n, same := runtime.NumGoroutine(), 0
	for end := time.Now().Add(10 * time.Second); time.Now().Before(end); {
		time.Sleep(poll)
		m := runtime.NumGoroutine()
		if m == n {
			same++
		} else {
			n, same = m, 0
		}
		if time.Duration(same)*poll >= stable && (want < 0 || n <= want) {
			break
		}
	}
	return n
}

// residentBytes is VmRSS from /proc/self/status, or 0 where there is none.
func residentBytes() uint64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, _ := strconv.ParseUint(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return kb << 10
		}
	}
	return 0
}

func mib(n uint64) float64 { return float64(n) / (1 << 20) }

// startQuiet runs NoChat through run() on a free port and returns its URL.
// Unlike start it keeps none of the log, which would grow with every
// refused request and be counted against the server.
func startQuiet(t *testing.T, args ...string) string {
	t.Helper()
	return startServing(t, false, func(ctx context.Context, stderr io.Writer) error {
		return run(ctx, append([]string{"nochat", "-addr", "127.0.0.1:0", "-db", t.TempDir() + "/nochat.db"}, args...),
			func(string) string { return "" }, io.Discard, stderr)
	}).url
}

// flooder sends the requests, a few at a time, each from its own client
// address (the server trusts X-Forwarded-For).
type flooder struct {
	base   string
	client *http.Client
	noise  string        // random text, cut into distinct large values
	seq    atomic.Uint64 // makes every request distinct
	sent   atomic.Int64  // bytes sent
}

func newFlooder(base string) *flooder {
	b := make([]byte, 3<<20)
	rand.Read(b)
	return &flooder{
		base: base,
		client: &http.Client{
			Transport:     &http.Transport{MaxIdleConnsPerHost: floodWorkers, DisableCompression: true},
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
			Timeout:       30 * time.Second,
		},
		noise: base64.RawURLEncoding.EncodeToString(b),
	}
}

// floodWorkers is how many requests are in flight at once.
const floodWorkers = 4

// big is a distinct value of about n bytes of cookie- and header-safe text.
func (f *flooder) big(n int) string {
	i := f.seq.Add(1)
	prefix := strconv.FormatUint(i, 36) + "-"
	off := int(i*7919) % (len(f.noise) - n)
	return prefix + f.noise[off:off+n-len(prefix)]
}

// size is the size of the i-th request's large part: from 32 KiB up to
// limit, spread over the range.
func size(i, limit int) int { return 32<<10 + (i*104729)%(limit-32<<10) }

// headers are the large, distinct headers every request carries: a big
// admin cookie (a session that does not exist) beside another cookie, a
// big user agent and a header of padding, together within floodMaxHeader.
func (f *flooder) headers(h http.Header, i int) int {
	n := size(i, floodMaxHeader-8<<10)
	h.Set("Cookie", "c"+strconv.Itoa(i)+"="+f.big(1000)+"; nochat_admin="+f.big(n/2))
	h.Set("User-Agent", "flood/"+f.big(n/4))
	h.Set("X-Padding-"+strconv.Itoa(i), f.big(n/4))
	h.Set("X-Forwarded-For", f.addr())
	return n
}

// addr is a new client address.
func (f *flooder) addr() string {
	i := f.seq.Add(1)
	return fmt.Sprintf("10.%d.%d.%d", byte(i>>16), byte(i>>8), byte(i))
}

// floodRoute is one thing an unauthenticated client can do, as the i-th
// request. It adds the bytes it sends to flooder.sent.
type floodRoute struct {
	name  string
	count int // requests, when not floodPerRoute
	do    func(i int) error
}

// run sends n requests of r with floodWorkers at a time, and stops at the
// first that fails.
func (f *flooder) run(r floodRoute, n int) error {
	var next atomic.Int64
	errs := make(chan error, floodWorkers)
	var wg sync.WaitGroup
	for range floodWorkers {
		wg.Go(func() {
			for i := int(next.Add(1)) - 1; i < n; i = int(next.Add(1)) - 1 {
				if err := r.do(i); err != nil {
					errs <- err
					next.Store(int64(n))
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	return <-errs
}

// settle lets go of the client's idle connections, so that the server's
// goroutines for them end too.
func (f *flooder) settle() { f.client.Transport.(*http.Transport).CloseIdleConnections() }

// send sends req and reads the answer, which must not be a 5xx.
func (f *flooder) send(req *http.Request) error {
	resp, err := f.client.Do(req)
	if err != nil && req.ContentLength > 64<<10 && (errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)) {
		// A body declared over the 64 KiB cap is refused unread and its
		// connection closed; a client still writing it may see the reset
		// before the answer. That is the refusal, not a failure.
		return nil
	}
	if err != nil {
		return fmt.Errorf("%s %.80s: %w", req.Method, req.URL, err)
	}
	io.Copy(io.Discard, io.LimitReader(resp.Body, 16<<20))
	resp.Body.Close()
	if resp.StatusCode >= 500 {
		return fmt.Errorf("%s %.80s: status %d", req.Method, req.URL, resp.StatusCode)
	}
	return nil
}

// simple is a route of one request shape: method, a distinct path and
// optional body for the i-th request.
func (f *flooder) simple(name, method string, path func(i int) string, body func(i int) []byte) floodRoute {
	return floodRoute{name: name, do: func(i int) error {
		var b []byte
		var r io.Reader
		if body != nil {
			b = body(i)
			r = bytes.NewReader(b)
		}
		p := path(i)
		req, err := http.NewRequest(method, f.base+p, r)
		if err != nil {
			return err
		}
		switch {
		case bytes.HasPrefix(b, []byte("{")):
			req.Header.Set("Content-Type", "application/json")
		case bytes.HasPrefix(b, []byte("password=")):
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		}
		f.sent.Add(int64(f.headers(req.Header, i) + len(p) + len(b)))
		return f.send(req)
	}}
}

func (f *flooder) routes() []floodRoute {
	assets := static.New()
	bigBody := func(i int) []byte { return []byte(f.big(size(i, 1<<20))) }
	return []floodRoute{
		f.simple("chat page", "GET", func(i int) string { return "/?" + f.big(2000) }, nil),
		f.simple("REST latest", "GET", func(i int) string { return "/discussion/latest/" + strconv.Itoa(1+i%500) }, nil),
		f.simple("REST history", "GET", func(i int) string {
			return fmt.Sprintf("/discussion?before=%d&limit=%d&x=%s", 1+i, 1+i%500, f.big(4000))
		}, nil),
		f.simple("REST send (path)", "POST", func(i int) string {
			return "/discussion/" + url.PathEscape(f.big(1900)) + "?user=u" + strconv.Itoa(i)
		}, bigBody),
		f.simple("REST send (JSON)", "POST", func(int) string { return "/discussion" }, func(i int) []byte {
			if i%2 == 0 { // stored
				return []byte(`{"user":"u` + strconv.Itoa(i) + `","message":"` + f.big(1900) + `"}`)
			}
			return []byte(`{"message":"` + f.big(size(i, 1<<20)) + `"}`) // over the body limit
		}),
		f.simple("health", "GET", func(i int) string { return "/healthz?" + f.big(100) }, bigBody),
		f.simple("static file", "GET", func(i int) string { return assets.URL("app.js") + f.big(200) }, nil),
		f.simple("static 404", "GET", func(i int) string { return "/static/" + f.big(3000) + ".js" }, nil),
		f.simple("metrics", "GET", func(i int) string { return "/metrics?" + f.big(100) }, nil),
		f.simple("admin page", "GET", func(i int) string { return "/admin?" + f.big(100) }, nil),
		f.simple("admin action", "POST", func(i int) string { return "/admin/messages/" + strconv.Itoa(i+1) + "/delete" }, nil),
		f.simple("admin login", "POST", func(i int) string { return "/admin/login" }, func(i int) []byte {
			return []byte("password=" + f.big(size(i, 1<<20)))
		}),
		f.simple("admin logout", "POST", func(i int) string { return "/admin/logout" }, nil),
		f.simple("404", "GET", func(i int) string { return "/no/such/" + f.big(6000) }, nil),
		f.simple("405", "PUT", func(i int) string { return "/discussion/latest/" + f.big(3000) }, bigBody),
		{name: "socket", do: f.socket},
		{name: "refused upgrade", count: floodUpgrades, do: f.refusedUpgrade},
	}
}

// socket opens a WebSocket session with large headers, says one thing on
// it and closes it.
func (f *flooder) socket(i int) error {
	h := http.Header{}
	f.sent.Add(int64(f.headers(h, i)))
	proto := []string{"nochat.v1", "echo-protocol"}[i%2]
	d := websocket.Dialer{Subprotocols: []string{proto}, HandshakeTimeout: 10 * time.Second}
	u := wsURL(f.base) + "?user=u" + strconv.Itoa(i) + "&after=" + strconv.Itoa(i)
	c, resp, err := d.Dial(u, h)
	if err != nil {
		status := 0
		if resp != nil {
			status = resp.StatusCode
		}
		return fmt.Errorf("socket %d: %w (status %d)", i, err, status)
	}
	defer c.Close()
	msg := `{"type":"typing"}`
	if proto == "echo-protocol" {
		msg = "hello " + f.big(1000)
	}
	c.SetWriteDeadline(time.Now().Add(10 * time.Second))
	c.WriteMessage(websocket.TextMessage, []byte(msg))
	c.WriteMessage(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""))
	// Wait for the server's close (or anything else) so that its session
	// has ended, or at least begun to, before the next one.
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	for {
		if _, _, err := c.ReadMessage(); err != nil {
			break
		}
	}
	return nil
}

// refusedUpgrade asks for a socket with a distinct origin or subprotocol
// that NoChat refuses: each refusal is a new entry for the error log.
func (f *flooder) refusedUpgrade(i int) error {
	req, err := http.NewRequest("GET", f.base+"/", nil)
	if err != nil {
		return err
	}
	n := size(i, 64<<10)
	f.sent.Add(int64(n))
	req.Header.Set("Cookie", "c="+f.big(n))
	req.Header.Set("X-Forwarded-For", f.addr())
	req.Header.Set("Connection", "Upgrade")
	req.Header.Set("Upgrade", "websocket")
	req.Header.Set("Sec-WebSocket-Version", "13")
	req.Header.Set("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==")
	if i%2 == 0 {
		req.Header.Set("Sec-WebSocket-Protocol", "p"+strconv.Itoa(i))
	} else {
		req.Header.Set("Sec-WebSocket-Protocol", "nochat.v1")
		req.Header.Set("Origin", "https://o"+strconv.Itoa(i)+".example")
	}
	return f.send(req)
}
