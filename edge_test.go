package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/gorilla/websocket"
)

// fromAddr dials from the loopback address ip (any of 127.0.0.0/8 is this
// machine on Linux), so that one test can be several clients.
func fromAddr(ip string) *net.Dialer {
	return &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}, Timeout: 10 * time.Second}
}

// heldRequests are requests whose headers arrive and whose body never
// does, or one byte at a time: the three the attack used.
var heldRequests = []struct {
	name, head string
	drip       bool
}{
	{"GET /healthz with a body never sent", "GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 100000\r\n\r\n", false},
	{"POST /discussion with its body never sent", "POST /discussion HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n", false},
	{"POST /admin/login dripping a byte every 2 s", "POST /admin/login HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 100\r\n\r\n", true},
	{"a WebSocket upgrade, refused, with a body never sent", "GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nContent-Length: 100\r\n\r\n", false},
}

// dripEvery is how often a dripping body sends its next byte.
const dripEvery = 2 * time.Second

// holdBodies opens n connections from 127.0.0.1 to addr, each sending the
// headers of one of heldRequests in turn and then holding back its body;
// the dripping ones get a byte every dripEvery until the test ends (at most
// 100 bytes: they never finish).
func holdBodies(t *testing.T, addr string, n int) []net.Conn {
	t.Helper()
	d := fromAddr("127.0.0.1")
	conns := make([]net.Conn, 0, n)
	var drips []net.Conn
	for i := range n {
		c, err := d.Dial("tcp", addr)
		if err != nil {
			t.Fatalf("attacker socket %d: %v", i, err)
		}
		t.Cleanup(func() { c.Close() })
		req := heldRequests[i%len(heldRequests)]
		// A socket the server has refused may fail this write; what it
		// answered is read later.
		io.WriteString(c, req.head)
		conns = append(conns, c)
		if req.drip {
			drips = append(drips, c)
		}
	}
	stop := make(chan struct{})
	t.Cleanup(func() { close(stop) })
	go func() {
		for range 99 {
			select {
			case <-stop:
				return
			case <-time.After(dripEvery):
			}
			for _, c := range drips {
				c.SetWriteDeadline(time.Now().Add(time.Second))
				c.Write([]byte("p"))
			}
		}
	}()
	return conns
}

// answer is what the server did with a held request: its status (0 for
// none) and whether it then closed the connection.
type answer struct {
	status int
	body   string
	closed bool
	err    error
}

// readAnswer waits, at most bound, for the server to answer on c and then
// to close it.
func readAnswer(c net.Conn, bound time.Duration) answer {
	c.SetReadDeadline(time.Now().Add(bound))
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		return answer{err: err}
	}
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	resp.Body.Close()
	a := answer{status: resp.StatusCode, body: string(b)}
	_, err = br.ReadByte()
	a.closed = err == io.EOF || isReset(err)
	if !a.closed {
		a.err = fmt.Errorf("after the answer: %v", err)
	}
	return a
}

// isReset: the server closed a connection with the rest of the request
// unread, which makes the kernel send a reset after the answer.
func isReset(err error) bool { return errors.Is(err, syscall.ECONNRESET) }

// TestRequestBodiesHaveADeadline: a request whose body never comes, or
// comes a byte every 2 s, is answered and its connection closed, whether
// its route reads the body or not.
func TestRequestBodiesHaveADeadline(t *testing.T) {
	s := start(t, map[string]string{"NOCHAT_DB": filepath.Join(t.TempDir(), "nochat.db")})
	addr := strings.TrimPrefix(s.url, "http://")
	for i, req := range heldRequests {
		t.Run(req.name, func(t *testing.T) {
			t.Parallel()
			c, err := net.DialTimeout("tcp", addr, 10*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			io.WriteString(c, req.head)
			if req.drip {
				stop := make(chan struct{})
				defer close(stop)
				go func() {
					for range 50 {
						select {
						case <-stop:
							return
						case <-time.After(dripEvery):
							c.Write([]byte("p"))
						}
					}
				}()
			}
			a := readAnswer(c, 60*time.Second)
			if a.err != nil {
				t.Fatalf("request %d: %v: the server still holds the connection", i, a.err)
			}
			// The REST send says why it gave up.
			if strings.HasPrefix(req.head, "POST /discussion ") && !strings.Contains(a.body, "did not arrive within 10s") {
				t.Fatalf("request %d: answered %d %q; want the body's deadline named", i, a.status, a.body)
			}
		})
	}
	// checkHost answers before limitBodies sets the body's deadline: a
	// request for another host whose body never came was never answered,
	// net/http waiting to read that body first (found at 200 s).
	t.Run("a body for a host not served is refused unread", func(t *testing.T) {
		t.Parallel()
		for _, te := range []string{"Content-Length: 20", "Transfer-Encoding: chunked"} {
			c, err := net.DialTimeout("tcp", addr, 10*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			fmt.Fprintf(c, "POST /discussion HTTP/1.1\r\nHost: evil.example\r\nContent-Type: application/json\r\n%s\r\n\r\n", te)
			a := readAnswer(c, 30*time.Second)
			if a.err != nil || a.status != http.StatusMisdirectedRequest {
				t.Fatalf("POST for evil.example with %s and no body: %d %q, %v; want 421 and the connection closed", te, a.status, a.body, a.err)
			}
		}
	})
	t.Run("a body declared over the limit is refused unread", func(t *testing.T) {
		t.Parallel()
		for _, path := range []string{"/admin/login", "/discussion"} {
			c, err := net.DialTimeout("tcp", addr, 10*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			fmt.Fprintf(c, "POST %s HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n", path, 1<<20)
			a := readAnswer(c, 60*time.Second)
			if a.err != nil || a.status != http.StatusRequestEntityTooLarge || !strings.Contains(a.body, "too large") {
				t.Fatalf("POST %s with 1 MiB declared: %d %q, %v; want 413 and the connection closed", path, a.status, a.body, a.err)
			}
		}
	})
}

// TestHTTPConnectionCap: past -max-http-conns-per-ip connections, one
// address is answered 429; WebSockets count under their own cap, not this
// one; behind -trust-proxy, where every connection is the proxy's, there is
// no such cap. The clients here come from 127.0.0.3, which nothing else
// uses, so that only they count.
func TestHTTPConnectionCap(t *testing.T) {
	const client = "127.0.0.3"
	hold := func(t *testing.T, addr string, n int) {
		t.Helper()
		for range n {
			c, err := fromAddr(client).Dial("tcp", addr)
			if err != nil {
				t.Skipf("cannot dial from %s: %v", client, err)
			}
			t.Cleanup(func() { c.Close() })
			io.WriteString(c, heldRequests[1].head)
		}
	}
	t.Run("one address", func(t *testing.T) {
		s := start(t, map[string]string{"NOCHAT_DB": filepath.Join(t.TempDir(), "nochat.db")}, "-max-http-conns-per-ip", "2")
		addr := strings.TrimPrefix(s.url, "http://")
		ws := websocket.Dialer{NetDialContext: fromAddr(client).DialContext, Subprotocols: []string{"nochat.v1"}, HandshakeTimeout: 10 * time.Second}
		for i := range 5 {
			conn, _, err := ws.Dial(wsURL(s.url)+"?user=ws"+fmt.Sprint(i), nil)
			if err != nil {
				t.Fatalf("WebSocket %d with a cap of 2 HTTP connections: %v", i+1, err)
			}
			defer conn.Close()
		}
		hold(t, addr, 2)
		c, err := fromAddr(client).Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		// The answer waits for a request: one written before it is, to
		// a client, an answer to nothing it asked.
		c.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
		if n, err := c.Read(make([]byte, 1)); !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("a third connection, before its request: read %d bytes, %v; want nothing yet", n, err)
		}
		io.WriteString(c, "GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
		a := readAnswer(c, 30*time.Second)
		if a.status != http.StatusTooManyRequests || !strings.Contains(a.body, "-max-http-conns-per-ip") {
			t.Fatalf("a third connection: %d %q, %v; want 429 naming -max-http-conns-per-ip", a.status, a.body, a.err)
		}
		// Go's own client (a bot's, say) reads it as the answer to its
		// request, every time.
		for i := range 20 {
			bot := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{DialContext: fromAddr(client).DialContext}}
			resp, err := bot.Get(s.url + "/healthz")
			if err != nil {
				t.Fatalf("GET %d over the cap with Go's client: %v; want a 429", i, err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusTooManyRequests {
				t.Fatalf("GET %d over the cap with Go's client: %d; want 429", i, resp.StatusCode)
			}
		}
		// A head that never ends is read no further than 16 KiB
		// (maxRefusedHead): the connection is closed under the sender.
		long, err := fromAddr(client).Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer long.Close()
		long.SetWriteDeadline(time.Now().Add(30 * time.Second)) // bounds the test, not the server
		io.WriteString(long, "GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n")
		lines := bytes.Repeat([]byte("X-Filler: "+strings.Repeat("a", 1000)+"\r\n"), 64)
		const most = 128 << 20
		sent := 0
		for sent < most {
			n, err := long.Write(lines)
			if sent += n; err != nil {
				break
			}
		}
		if sent >= most {
			t.Fatalf("a refused connection took %d MiB of request head and read on", sent>>20)
		}
	})
	t.Run("behind a proxy", func(t *testing.T) {
		s := start(t, map[string]string{"NOCHAT_DB": filepath.Join(t.TempDir(), "nochat.db")}, "-max-http-conns-per-ip", "1", "-trust-proxy")
		hold(t, strings.TrimPrefix(s.url, "http://"), 3)
		page := &http.Client{Transport: &http.Transport{DialContext: fromAddr(client).DialContext}, Timeout: 30 * time.Second}
		resp, err := page.Get(s.url + "/")
		if err != nil {
			t.Fatalf("behind a proxy, with 3 connections held, GET /: %v", err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("behind a proxy, with 3 connections held, GET /: %d; want 200", resp.StatusCode)
		}
	})
}

func TestEdgeFlags(t *testing.T) {
	tests := []struct {
		name  string
		args  []string
		env   map[string]string
		perIP int
		hosts []string
		bad   string // part of the error, for a refused configuration
	}{
		{name: "default HTTP connection cap", perIP: 128},
		{name: "cap from the environment", env: map[string]string{"NOCHAT_MAX_HTTP_CONNS_PER_IP": "7"}, perIP: 7},
		{name: "cap off", args: []string{"-max-http-conns-per-ip", "0"}, perIP: 0},
		{name: "negative cap", args: []string{"-max-http-conns-per-ip", "-1"}, bad: "-max-http-conns-per-ip"},
		{name: "cap not a number", env: map[string]string{"NOCHAT_MAX_HTTP_CONNS_PER_IP": "many"}, bad: "-max-http-conns-per-ip"},
		{name: "host names", args: []string{"-allow-host", "chat.example.org, nochat.lan ,"}, perIP: 128, hosts: []string{"chat.example.org", "nochat.lan"}},
		{name: "host names from the environment", env: map[string]string{"NOCHAT_ALLOW_HOST": "*"}, perIP: 128, hosts: []string{"*"}},
		{name: "a host with a port", args: []string{"-allow-host", "chat.example.org:443"}, bad: "-allow-host"},
		{name: "a host as a URL", env: map[string]string{"NOCHAT_ALLOW_HOST": "https://chat.example.org"}, bad: "-allow-host"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := parseCase(t, tt.args, tt.env, tt.bad)
			if !ok {
				return
			}
			if got.maxHTTPPerIP != tt.perIP {
				t.Fatalf("HTTP connections per address = %d, want %d", got.maxHTTPPerIP, tt.perIP)
			}
			if !slices.Equal(got.allowHosts, tt.hosts) {
				t.Fatalf("allowed hosts = %q, want %q", got.allowHosts, tt.hosts)
			}
		})
	}
}

// TestForgedHostIsRefused is DNS rebinding: a page on attacker.example
// re-resolves its name to the Pi, so its requests reach NoChat with
// Host: attacker.example:PORT and a matching Origin, which passed the
// same-origin checks: the socket opened and stored messages, REST sent and
// read history. Now only the names NoChat is reached by are answered: IP
// addresses, localhost, this machine's name and NAME.local, -allow-host.
func TestForgedHostIsRefused(t *testing.T) {
	s := start(t, map[string]string{"NOCHAT_DB": filepath.Join(t.TempDir(), "nochat.db")}, "-allow-host", "chat.example.org")
	_, port, err := net.SplitHostPort(strings.TrimPrefix(s.url, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	// request sends method path to the server as host, from a page on host.
	request := func(t *testing.T, method, path, host, body string) (*http.Response, string) {
		t.Helper()
		req, err := http.NewRequest(method, s.url+path, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		req.Host = host
		req.Header.Set("Origin", "http://"+host)
		if body != "" {
			req.Header.Set("Content-Type", "application/json")
		}
		resp, err := (&http.Client{Timeout: 30 * time.Second}).Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp, string(b)
	}
	// socket opens a nochat.v1 socket to the server as host, from a page on
	// host, and reads its hello.
	socket := func(host string) (int, error) {
		d := websocket.Dialer{Subprotocols: []string{"nochat.v1"}, HandshakeTimeout: 10 * time.Second}
		conn, resp, err := d.Dial(wsURL(s.url)+"?user=rebound", http.Header{"Host": {host}, "Origin": {"http://" + host}})
		if err != nil {
			status := 0
			if resp != nil {
				status = resp.StatusCode
			}
			return status, err
		}
		defer conn.Close()
		conn.SetReadDeadline(time.Now().Add(10 * time.Second))
		var hello v1Frame
		if err := conn.ReadJSON(&hello); err != nil || hello.Type != "hello" {
			return 0, fmt.Errorf("first frame %+v, %v", hello, err)
		}
		return http.StatusSwitchingProtocols, nil
	}

	for _, name := range []string{"attacker.example", "chat.example.org.attacker.example", "localhost.attacker.example"} {
		forged := net.JoinHostPort(name, port)
		t.Run(name, func(t *testing.T) {
			for _, r := range []struct{ method, path, body string }{
				{"GET", "/", ""},
				{"GET", "/admin/login", ""},
				{"GET", "/static/app.js", ""},
				{"GET", "/discussion/latest/5", ""},
				{"GET", "/discussion", ""},
				{"POST", "/discussion/rebound", ""},
				{"POST", "/discussion", `{"message": "rebound", "user": "attacker"}`},
			} {
				resp, body := request(t, r.method, r.path, forged, r.body)
				if resp.StatusCode != http.StatusMisdirectedRequest || !strings.Contains(body, "-allow-host") {
					t.Fatalf("%s %s with Host %s: %d %.200q; want 421 naming -allow-host", r.method, r.path, forged, resp.StatusCode, body)
				}
				if strings.HasPrefix(r.path, "/discussion") && !strings.HasPrefix(body, `{"error":`) {
					t.Fatalf("%s %s with Host %s: %q; want a JSON error", r.method, r.path, forged, body)
				}
			}
			if status, err := socket(forged); status != http.StatusMisdirectedRequest {
				t.Fatalf("socket with Host %s: %d, %v; want 421", forged, status, err)
			}
			// A local probe may call the machine anything.
			if resp, body := request(t, "GET", "/healthz", forged, ""); resp.StatusCode != http.StatusOK {
				t.Fatalf("/healthz with Host %s: %d %q; want 200", forged, resp.StatusCode, body)
			}
		})
	}
	if history := s.get(t, "/discussion/latest/50"); strings.Contains(history, "rebound") {
		t.Fatalf("a refused request's message was stored: %s", history)
	}

	allowed := []string{"127.0.0.1", "[::1]", "localhost", "chat.example.org", "CHAT.example.org."}
	if name, err := os.Hostname(); err == nil && name != "" {
		short, _, _ := strings.Cut(name, ".")
		allowed = append(allowed, name, short+".local")
	}
	for i, name := range allowed {
		host := name + ":" + port
		t.Run(name, func(t *testing.T) {
			if resp, body := request(t, "GET", "/", host, ""); resp.StatusCode != http.StatusOK {
				t.Fatalf("GET / with Host %s: %d %.200q; want 200", host, resp.StatusCode, body)
			}
			text := fmt.Sprintf("from-%d", i)
			if resp, body := request(t, "POST", "/discussion/"+text, host, ""); resp.StatusCode != http.StatusOK {
				t.Fatalf("POST with Host %s from its own page: %d %.200q; want 200", host, resp.StatusCode, body)
			}
			if resp, body := request(t, "GET", "/discussion/latest/50", host, ""); resp.StatusCode != http.StatusOK || !strings.Contains(body, text) {
				t.Fatalf("history with Host %s: %d %.200q; want 200 with %s", host, resp.StatusCode, body, text)
			}
			if status, err := socket(host); err != nil {
				t.Fatalf("socket with Host %s: %d, %v; want it open", host, status, err)
			}
		})
	}
}

// TestBrowserRebindingPageIsRefused: Chromium resolves attacker.example to
// this machine, as a rebinding attacker's DNS makes it do, and opens NoChat
// under that name. Script on that origin (the attacker's, after the
// rebinding) may neither load the page nor read history nor open the
// socket; under localhost the same browser chats.
func TestBrowserRebindingPageIsRefused(t *testing.T) {
	browser := newBrowser(t, chromedp.Flag("host-resolver-rules", "MAP attacker.example 127.0.0.1"))
	s := start(t, map[string]string{"NOCHAT_DB": filepath.Join(t.TempDir(), "nochat.db")})
	_, port, err := net.SplitHostPort(strings.TrimPrefix(s.url, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	s.post(t, "ann", "private history")

	rebound := "http://attacker.example:" + port
	do(t, browser, chromedp.Navigate(rebound+"/"))
	if text := eval[string](t, browser, `document.body.innerText`); !strings.Contains(text, "-allow-host") || strings.Contains(text, "private history") {
		t.Fatalf("the page under attacker.example shows %.300q; want the refusal naming -allow-host", text)
	}
	read := awaitJS(t, browser, `fetch('/discussion/latest/5').then(r => r.status + ' ' + r.text())`)
	if read = strings.TrimSpace(read); !strings.HasPrefix(read, "421") || strings.Contains(read, "private history") {
		t.Fatalf("history read from attacker.example: %.300q; want 421", read)
	}
	// Same origin as far as the browser knows, so only the Host check
	// stops the socket.
	socket := awaitJS(t, browser, `new Promise(done => {
		const ws = new WebSocket('ws://attacker.example:`+port+`/', 'nochat.v1');
		ws.onmessage = () => { ws.close(); done('open') };
		ws.onerror = () => done('refused');
		setTimeout(() => done('no answer'), 15000);
	})`)
	if socket != "refused" {
		t.Fatalf("a socket from attacker.example: %s; want it refused", socket)
	}

	do(t, browser, chromedp.Navigate("http://localhost:"+port+"/"))
	connected(t, browser)
	waitMessages(t, browser, "the history under localhost", contains("private history"))
}

// awaitJS evaluates a JavaScript expression whose value is a promise of a
// string, and waits for it, at most 30 s.
func awaitJS(t *testing.T, ctx context.Context, expr string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[string](expr, chromedp.EvalAwaitPromise))
	if err != nil {
		t.Fatal(err)
	}
	return v
}
