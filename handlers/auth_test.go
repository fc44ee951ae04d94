package handlers

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"golang.org/x/crypto/bcrypt"
)

// The login limits are about minutes, so these tests run the real server
// on a clock they move by hand: Auth.now is the one thing swapped.

type handClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *handClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *handClock) add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// tryLogin posts a password as the client at addr (via X-Forwarded-For) and
// returns the status.
func tryLogin(t *testing.T, srv *httptest.Server, addr, password string) int {
	t.Helper()
	return post(t, srv, "/admin/login", addr, url.Values{"password": {password}}, nil).StatusCode
}

func TestLoginGuessingFromRotatingAddressesIsLimited(t *testing.T) {
	const password = "the right one"
	srv, clock, _, _ := testServer{password: password}.start(t)

	// An attacker rotating 200 addresses guesses every 100 ms for five
	// minutes: each address comes back every 20 s, under its own limit
	// of five then one every 12 s, so only the global gate stands.
	const minutes, every = 5, 100 * time.Millisecond
	perMinute := int(time.Minute / every)
	checked := make([]int, minutes) // guesses that reached the password check
	for i := range minutes * perMinute {
		addr := fmt.Sprintf("198.51.100.%d", i%200)
		switch status := tryLogin(t, srv, addr, fmt.Sprintf("guess %d", i)); status {
		case http.StatusUnauthorized:
			checked[i/perMinute]++
		case http.StatusTooManyRequests:
		default:
			t.Fatalf("guess %d: %d, want 401 or 429", i, status)
		}
		clock.add(every)
	}
	t.Logf("guesses checked per minute, 200 rotating addresses: %v", checked)
	// The gate's schedule (gateFree and after): 10 checks in the first
	// minute, 2 in each minute after.
	for m, n := range checked {
		limit := 2
		if m == 0 {
			limit = 10
		}
		if n > limit {
			t.Errorf("minute %d of the attack: %d guesses checked, want at most %d", m+1, n, limit)
		}
		if n == 0 {
			t.Errorf("minute %d of the attack: no guess checked at all; the gate should open every %v", m+1, gateMax)
		}
	}

	// The attack stops; the admin, at yet another address, gets in at the
	// latest gateMax later.
	clock.add(gateMax)
	if got := tryLogin(t, srv, "192.0.2.7", password); got != http.StatusSeeOther {
		t.Fatalf("the right password %v after the attack stopped: %d, want 303", gateMax, got)
	}
	// And the gate is open again for the next typo.
	if got := tryLogin(t, srv, "192.0.2.7", "typo"); got != http.StatusUnauthorized {
		t.Fatalf("a typo after logging in: %d, want 401 (checked at once)", got)
	}
}

func TestLoginGateForgetsOldFailures(t *testing.T) {
	var g loginGate
	now := time.Now()
	for range 20 {
		if wait := g.try(now); wait > 0 {
			now = now.Add(wait)
			g.try(now)
		}
		g.done(false)
	}
	if wait := g.try(now); wait == 0 || wait > gateMax {
		t.Fatalf("after 20 failures in a row: wait %v, want more than 0 and at most %v", wait, gateMax)
	}
	now = now.Add(gateForget + gateMax + time.Second)
	for i := range gateFree {
		if wait := g.try(now); wait > 0 {
			t.Fatalf("attempt %d after a quiet %v: wait %v, want none", i+1, gateForget, wait)
		}
		g.done(false)
	}
}

func TestShortUserAgentCutsAtACharacter(t *testing.T) {
	for _, tc := range []struct{ name, in string }{
		{"short", "curl/8.5"},
		{"long ascii", strings.Repeat("a", 1000)},
		{"long with multibyte at the cut", strings.Repeat("a", maxAgentBytes-1) + "é日本語"},
		{"long all four-byte", strings.Repeat("🙂", 100)},
		{"invalid utf-8", "bad \xff\xfe agent"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := shortUserAgent(tc.in)
			if !utf8.ValidString(got) {
				t.Fatalf("shortUserAgent(%q) = %q: not valid UTF-8", tc.in, got)
			}
			if len(got) > maxAgentBytes+len("…") {
				t.Fatalf("shortUserAgent kept %d bytes, want at most %d", len(got), maxAgentBytes+len("…"))
			}
			if utf8.ValidString(tc.in) && !strings.HasPrefix(tc.in, strings.TrimSuffix(got, "…")) {
				t.Fatalf("shortUserAgent(%q) = %q: not a prefix", tc.in, got)
			}
		})
	}
}

// The package's tests sign in hundreds of times: at bcrypt's least cost, so
// that they take seconds, not minutes, under the race detector. What cost a
// server uses is checked by the main package's tests.
func init() { hashCost = bcrypt.MinCost }

// BenchmarkPasswordHash is one admin password check at the server's cost: what a
// login costs the server and what each offline guess costs an attacker
// holding the database. For a Pi Zero (ARMv6):
//
//	GOOS=linux GOARCH=arm GOARM=6 go test -c -o /tmp/handlers.arm6 ./handlers
//	qemu-arm /tmp/handlers.arm6 -test.run '^$' -test.bench PasswordHash -test.benchtime 5x
func BenchmarkPasswordHash(b *testing.B) {
	hash, err := bcrypt.GenerateFromPassword(passwordBytes("correct horse battery staple"), bcrypt.DefaultCost)
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if err := bcrypt.CompareHashAndPassword(hash, passwordBytes("correct horse battery staple")); err != nil {
			b.Fatal(err)
		}
	}
}

// bcrypt takes 72 bytes; a longer -admin-password must still work, and
// all of it must count.
func TestLongAdminPasswordCountsInFull(t *testing.T) {
	long := strings.Repeat("a long passphrase ", 10) // 180 bytes
	srv, _, _, _ := testServer{password: long}.start(t)
	if got := tryLogin(t, srv, "192.0.2.1", long[:100]+"but a different end"+long[119:]); got != http.StatusUnauthorized {
		t.Fatalf("the same first 100 bytes, a different end: %d, want 401", got)
	}
	if got := tryLogin(t, srv, "192.0.2.1", long); got != http.StatusSeeOther {
		t.Fatalf("the long password: %d, want 303", got)
	}
}
