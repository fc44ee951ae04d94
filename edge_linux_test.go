package main

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// TestHeldBodiesDoNotLockOthersOut is the attack that took the page down:
// 1,100 sockets from one address send a request's headers and hold back its
// body. A process may hold 1,024 file descriptors where nothing raises the
// limit, and the server used to wait for those bodies forever: it ran out,
// could accept no one, and the page and the socket timed out for everyone
// until the attacker left. Now one address holds at most
// -max-http-conns-per-ip (128) connections, the rest are refused with 429,
// and the held ones are answered and closed when their body deadline
// passes (a body declared over 64 KiB at once).
func TestHeldBodiesDoNotLockOthersOut(t *testing.T) {
	const attackers = 1100
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil || lim.Cur < attackers+500 {
		t.Skipf("this test holds %d sockets itself; its file limit is %d", attackers, lim.Cur)
	}
	if c, err := fromAddr("127.0.0.2").Dial("tcp", "127.0.0.1:1"); err != nil && !strings.Contains(err.Error(), "refused") {
		t.Skipf("cannot dial from 127.0.0.2: %v", err)
	} else if c != nil {
		c.Close()
	}
	bin := buildBinary(t)
	// The server gets the file limit it would have on a system that does
	// not raise it, so that the attack, on the old code, is what it was.
	cmd := exec.Command("sh", "-c", `ulimit -n 1024 && exec "$0" "$@"`, bin, "-addr", "127.0.0.1:0", "-db", filepath.Join(t.TempDir(), "nochat.db"))
	p := startCmd(t, cmd)
	addr := strings.TrimPrefix(p.url, "http://")
	fds := func() int {
		ents, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", p.cmd.Process.Pid))
		if err != nil {
			t.Skipf("counting the server's files: %v", err)
		}
		return len(ents)
	}
	before := fds()

	conns := holdBodies(t, addr, attackers)
	held := fds() - before

	// Another client, from another address, while the attacker holds on.
	victim := &http.Client{
		Transport: &http.Transport{DialContext: fromAddr("127.0.0.2").DialContext},
		Timeout:   30 * time.Second,
	}
	resp, err := victim.Get(p.url + "/")
	if err != nil {
		t.Fatalf("the page did not load while %d sockets were held: %v\n%s", attackers, err, p.lastLog())
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(page), "<title>NoChat</title>") {
		t.Fatalf("the page: %d %.200q", resp.StatusCode, page)
	}
	ws := websocket.Dialer{NetDialContext: fromAddr("127.0.0.2").DialContext, Subprotocols: []string{"nochat.v1"}, HandshakeTimeout: 30 * time.Second}
	conn, _, err := ws.Dial(wsURL(p.url)+"?user=victim", nil)
	if err != nil {
		t.Fatalf("the socket did not open while %d sockets were held: %v", attackers, err)
	}
	conn.SetReadDeadline(time.Now().Add(30 * time.Second))
	var hello v1Frame
	if err := conn.ReadJSON(&hello); err != nil || hello.Type != "hello" {
		t.Fatalf("the socket's first frame: %+v, %v", hello, err)
	}
	conn.Close()

	// The server holds at most the cap's worth of them, and the refused
	// ones being answered (refusalsAtOnce); a few more files may come and
	// go (the database's).
	if held > 128+refusalsAtOnce+8 {
		t.Fatalf("the server holds %d more files with %d sockets from one address open, want at most 128 (-max-http-conns-per-ip), %d being refused and a few", held, attackers, refusalsAtOnce)
	}

	// Every attacker socket is answered and closed: over the cap at once,
	// the others when their body deadline passes (10 s, well within the
	// bound).
	answers := make([]answer, len(conns))
	var wg sync.WaitGroup
	for i, c := range conns {
		wg.Go(func() { answers[i] = readAnswer(c, 60*time.Second) })
	}
	wg.Wait()
	refused := 0
	for i, a := range answers {
		if a.err != nil || !a.closed {
			t.Fatalf("attacker socket %d (%s): %d %q, %v: the server still holds it", i, heldRequests[i%len(heldRequests)].name, a.status, a.body, a.err)
		}
		if a.status == http.StatusTooManyRequests && strings.Contains(a.body, "-max-http-conns-per-ip") {
			refused++
		}
	}
	if refused == 0 {
		t.Fatalf("none of %d sockets from one address was refused by the cap", attackers)
	}
	t.Logf("%d sockets from one address: the server held %d more files; %d refused by the cap, the other %d answered and closed", attackers, held, refused, attackers-refused)
}
