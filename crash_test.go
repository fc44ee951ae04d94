package main

import (
	"bufio"
	"database/sql"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// The crash test runs the real binary, as a Pi would, and kills it with
// SIGKILL (a pulled plug for the process, though not for the disk) while
// clients send as fast as they can. Whatever a client got an ack for must
// be in history exactly once after a restart.

// buildBinary builds NoChat into a temporary directory, once per test.
func buildBinary(t *testing.T) string {
	t.Helper()
	if runtime.GOOS == "windows" {
		t.Skip("SIGKILL and a restart on the same file are tested on Unix")
	}
	bin := filepath.Join(t.TempDir(), "nochat")
	cmd := exec.Command("go", "build", "-o", bin, ".")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// process is a running NoChat binary.
type process struct {
	cmd  *exec.Cmd
	url  string
	urls chan string // the URL it serves at, once it says so
	mu   sync.Mutex
	log  []string // the last lines of its log, for failures
	done chan struct{}
}

// startBinary runs the binary on a free loopback port and waits until it
// serves. Message rate limits are turned off: the senders here are meant
// to be as fast as they can.
func startBinary(t *testing.T, bin, dbPath string) *process {
	t.Helper()
	cmd := exec.Command(bin, "-addr", "127.0.0.1:0", "-db", dbPath)
	cmd.Env = append(os.Environ(), "NOCHAT_MSG_RATE=0")
	return startCmd(t, cmd)
}

// startCmd runs cmd, a NoChat serving on a free loopback port, and waits
// until it serves.
func startCmd(t *testing.T, cmd *exec.Cmd) *process {
	t.Helper()
	p := launch(t, cmd)
	p.await(t, 30*time.Second)
	return p
}

// launch runs cmd, a NoChat serving on a free loopback port, without
// waiting for it: several nodes of a cluster start together.
func launch(t *testing.T, cmd *exec.Cmd) *process {
	t.Helper()
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &process{cmd: cmd, urls: make(chan string, 1), done: make(chan struct{})}
	t.Cleanup(func() { p.kill() })
	go func() {
		defer close(p.done)
		urlRe := regexp.MustCompile(`url=(http://\S+)`)
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			line := sc.Text()
			p.mu.Lock()
			p.log = append(p.log, line)
			if len(p.log) > 50 {
				p.log = p.log[1:]
			}
			p.mu.Unlock()
			if m := urlRe.FindStringSubmatch(line); m != nil {
				p.urls <- strings.TrimSuffix(m[1], "/")
			}
		}
		cmd.Wait()
	}()
	return p
}

// await waits, up to limit, until p serves.
func (p *process) await(t *testing.T, limit time.Duration) {
	t.Helper()
	select {
	case p.url = <-p.urls:
	case <-p.done:
		t.Fatalf("nochat exited before serving:\n%s", p.lastLog())
	case <-time.After(limit):
		t.Fatalf("nochat did not start serving in %v:\n%s", limit, p.lastLog())
	}
	resp, err := http.Get(p.url + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("healthz: %d", resp.StatusCode)
	}
}

func (p *process) lastLog() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return strings.Join(p.log, "\n")
}

// kill sends SIGKILL and waits for the process to be gone.
func (p *process) kill() {
	p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.done
}

// stop asks for a clean shutdown with SIGTERM and waits for it.
func (p *process) stop(t *testing.T) {
	t.Helper()
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(15 * time.Second):
		t.Fatalf("nochat did not stop on SIGTERM:\n%s", p.lastLog())
	}
	if !p.cmd.ProcessState.Success() {
		t.Fatalf("nochat exited with %v on SIGTERM:\n%s", p.cmd.ProcessState, p.lastLog())
	}
}

// acked is every message some sender got an ack for: its text by cid, and
// the id the ack named.
type acked struct {
	mu   sync.Mutex
	text map[string]string
	id   map[string]int64
}

// sendUntilKilled runs one nochat.v1 client that sends as fast as it can,
// without waiting for acks, until its connection dies, recording each ack.
// It returns how many it sent.
func sendUntilKilled(t *testing.T, url, prefix string, a *acked) int {
	// Not dialV1: this runs in its own goroutine, where t.Fatal must not.
	conn, err := dialV1Conn(url, "?user="+prefix)
	if err != nil {
		t.Errorf("%s: dial: %v", prefix, err)
		return 0
	}
	defer conn.Close()
	texts := sync.Map{} // cid -> text, for the reader
	readerDone := make(chan struct{})
	go func() {
		defer close(readerDone)
		var lastID int64
		for {
			var f v1Frame
			if err := conn.ReadJSON(&f); err != nil {
				return // the server is gone
			}
			switch f.Type {
			case "ack":
				text, ok := texts.Load(f.Data.CID)
				if !ok {
					t.Errorf("%s: ack for cid %q, which was never sent", prefix, f.Data.CID)
					continue
				}
				if f.Data.ID <= lastID {
					t.Errorf("%s: ack for id %d after %d: acks out of order", prefix, f.Data.ID, lastID)
				}
				lastID = f.Data.ID
				a.mu.Lock()
				a.text[f.Data.CID] = text.(string)
				a.id[f.Data.CID] = f.Data.ID
				a.mu.Unlock()
			case "error":
				if f.Data.Code == "rate_limited" {
					t.Errorf("%s: rate limited: the crash test runs with NOCHAT_MSG_RATE=0 to send without limit", prefix)
				} else {
					t.Errorf("%s: error frame %+v", prefix, f.Data)
				}
			}
		}
	}()
	sent := 0
	for i := 0; ; i++ {
		cid := fmt.Sprintf("%s-%d", prefix, i)
		text := fmt.Sprintf("%s message %d %s.", prefix, i, strings.Repeat("·", rand.IntN(200)))
		texts.Store(cid, text)
		conn.SetWriteDeadline(time.Now().Add(10 * time.Second))
		if err := conn.WriteJSON(map[string]any{"type": "send", "data": map[string]string{"message": text, "cid": cid}}); err != nil {
			break // killed
		}
		sent++
	}
	<-readerDone
	return sent
}

// openIntact opens the database at path beside the server that uses it, and
// fails the test unless SQLite finds the file intact. The caller closes it.
func openIntact(t *testing.T, path string) *sql.DB {
	t.Helper()
	conn, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(5000)")
	if err != nil {
		t.Fatal(err)
	}
	var check string
	if err := conn.QueryRow("PRAGMA integrity_check").Scan(&check); err != nil || check != "ok" {
		conn.Close()
		t.Fatalf("integrity_check: %q, %v", check, err)
	}
	return conn
}

// checkHistory opens the database beside the running server and checks that
// every acked message is stored exactly once with the acked id, that ids are
// unique and without holes, and that SQLite finds the file intact.
func checkHistory(t *testing.T, dbPath string, a *acked) (rows int) {
	t.Helper()
	conn := openIntact(t, dbPath)
	defer conn.Close()
	q, err := conn.Query("SELECT id, message, coalesce(cid, '') FROM messages ORDER BY id")
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	byCID := make(map[string]int64)
	byText := make(map[string]int)
	var last int64
	for q.Next() {
		var id int64
		var text, cid string
		if err := q.Scan(&id, &text, &cid); err != nil {
			t.Fatal(err)
		}
		if id == last {
			t.Fatalf("id %d is stored twice", id)
		}
		// Nothing is deleted and a rolled-back (or torn) transaction takes
		// its AUTOINCREMENT ids with it, so the ids run without a hole.
		if id != last+1 {
			t.Fatalf("id %d follows %d: a hole", id, last)
		}
		last = id
		rows++
		if cid != "" {
			if prev, dup := byCID[cid]; dup {
				t.Fatalf("cid %q is stored twice, as %d and %d", cid, prev, id)
			}
			byCID[cid] = id
		}
		byText[text]++
	}
	if err := q.Err(); err != nil {
		t.Fatal(err)
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	for cid, text := range a.text {
		id, ok := byCID[cid]
		if !ok {
			t.Fatalf("acked message %q (cid %s, id %d) is not in history", text, cid, a.id[cid])
		}
		if id != a.id[cid] {
			t.Fatalf("acked message %q is stored as id %d, the ack said %d", text, id, a.id[cid])
		}
		if n := byText[text]; n != 1 {
			t.Fatalf("acked message %q is in history %d times", text, n)
		}
	}
	return rows
}

func TestSIGKILLMidStreamLosesNoAckedMessage(t *testing.T) {
	bin := buildBinary(t)
	dbPath := filepath.Join(t.TempDir(), "nochat.db")
	rounds, senders := 5, 4
	if testing.Short() {
		rounds = 2
	}
	a := &acked{text: make(map[string]string), id: make(map[string]int64)}
	for round := range rounds {
		p := startBinary(t, bin, dbPath)
		rows := checkHistory(t, dbPath, a)
		t.Logf("round %d: restarted with %d messages, %d of them acked", round, rows, len(a.text))

		var wg sync.WaitGroup
		var mu sync.Mutex
		sent := 0
		for s := range senders {
			wg.Go(func() {
				n := sendUntilKilled(t, p.url, fmt.Sprintf("r%d-s%d", round, s), a)
				mu.Lock()
				sent += n
				mu.Unlock()
			})
		}
		// Kill it somewhere in the middle of the stream.
		time.Sleep(500*time.Millisecond + rand.N(time.Second))
		p.kill()
		wg.Wait()
		if t.Failed() {
			t.FailNow()
		}
		t.Logf("round %d: %d sent before SIGKILL", round, sent)
	}
	p := startBinary(t, bin, dbPath)
	rows := checkHistory(t, dbPath, a)
	if len(a.text) < rounds {
		t.Fatalf("only %d messages were acked in %d rounds: the test did not exercise the crash", len(a.text), rounds)
	}
	// The restarted server serves that history.
	resp, err := http.Get(p.url + "/discussion/latest/1")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var newest []struct{ ID int64 }
	if err := json.NewDecoder(resp.Body).Decode(&newest); err != nil || len(newest) != 1 || newest[0].ID != int64(rows) {
		t.Fatalf("newest message over REST: %+v, %v; want id %d", newest, err, rows)
	}
	p.stop(t)
	checkHistory(t, dbPath, a)
	t.Logf("%d messages stored, %d acked, over %d SIGKILLs", rows, len(a.text), rounds)
}
