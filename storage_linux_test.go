package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Storage faults on a real filesystem: the database lives on a small tmpfs
// mounted for the test, which is then filled up (a full SD card). Mounting
// needs root; without it these tests skip, except under CI=true, where they
// fail: CI runs as root so that they run.
//
// A disk going read-only under the server (what the kernel does to a failing
// card) cannot be simulated this way: Linux refuses to remount a filesystem
// read-only while files on it are open for writing (EBUSY). A full disk
// makes every write fail the same way, through the same path.

// mountTmpfs mounts a tmpfs of the given size on a fresh directory and
// unmounts it when the test ends.
func mountTmpfs(t *testing.T, size string) string {
	t.Helper()
	dir := t.TempDir()
	if err := syscall.Mount("tmpfs", dir, "tmpfs", 0, "size="+size+",mode=0700"); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("mount tmpfs on %s: %v; CI runs these storage-fault tests as root", dir, err)
		}
		t.Skipf("skipping storage-fault test: mounting a tmpfs needs root (mount: %v)", err)
	}
	t.Cleanup(func() {
		// Registered before the server starts, so it runs after the
		// server's cleanup has closed the database.
		if err := syscall.Unmount(dir, 0); err != nil {
			t.Errorf("unmount %s: %v", dir, err)
			syscall.Unmount(dir, syscall.MNT_DETACH)
		}
	})
	return dir
}

// fillDisk writes a file until the filesystem has no space left.
func fillDisk(t *testing.T, dir string) (filler string) {
	t.Helper()
	filler = filepath.Join(dir, "filler")
	f, err := os.Create(filler)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	buf := make([]byte, 64<<10)
	for {
		if _, err := f.Write(buf); err != nil {
			if !errors.Is(err, syscall.ENOSPC) {
				t.Fatalf("filling the disk: %v", err)
			}
			break
		}
	}
	// Take the last partial blocks too.
	for _, n := range []int{4096, 512, 1} {
		for {
			if _, err := f.Write(buf[:n]); err != nil {
				break
			}
		}
	}
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		t.Fatal(err)
	}
	if free := st.Bavail * uint64(st.Bsize); free > 0 {
		t.Fatalf("%d bytes still free after filling", free)
	}
	return filler
}

// sendRefused sends a message and expects store_failed for its cid, and no ack.
func (c *v1) sendRefused(text, cid string) {
	c.t.Helper()
	c.say(text, cid)
	f := c.next()
	if f.Type != "error" || f.Data.Code != "store_failed" || f.Data.CID != cid {
		c.t.Fatalf("sending %.40q… on a broken disk got %+v, want error store_failed for cid %s", text, f, cid)
	}
}

// readsWork checks that history and the page still serve what was stored.
func readsWork(t *testing.T, base string, texts ...string) {
	t.Helper()
	status, body := getBody(t, base+"/discussion/latest/50")
	if status != 200 {
		t.Fatalf("GET /discussion/latest/50: %d %s", status, body)
	}
	var msgs []struct{ Message string }
	if err := json.Unmarshal([]byte(body), &msgs); err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, m := range msgs {
		got = append(got, m.Message)
	}
	if strings.Join(got, "|") != strings.Join(texts, "|") {
		t.Fatalf("history %q, want %q", got, texts)
	}
	status, page := getBody(t, base+"/")
	if status != 200 {
		t.Fatalf("GET /: %d", status)
	}
	for _, text := range texts {
		if !strings.Contains(page, text) {
			t.Fatalf("the chat page lacks %q", text)
		}
	}
}

func TestDiskFullRefusesSendsKeepsReadsAndRecovers(t *testing.T) {
	dir := mountTmpfs(t, "16m")
	s := start(t, map[string]string{"NOCHAT_DB": filepath.Join(dir, "nochat.db"), "NOCHAT_MSG_RATE": "0", "NOCHAT_ADMIN_PASSWORD": "disk"})
	sender := dialV1(t, s.url, "ann")
	other := dialV1(t, s.url, "bob")

	var stored []string
	for i := range 3 {
		text := fmt.Sprint("before the disk filled ", i)
		sender.sendOK(text, fmt.Sprint("ok-", i))
		other.expectMessage(text)
		stored = append(stored, text)
	}

	filler := fillDisk(t, dir)
	// Every commit appends at least one whole page to the WAL, so even a
	// short message needs space; this one is most of a page.
	big := strings.Repeat("full disk ", 150)
	for i := range 3 {
		sender.sendRefused(fmt.Sprint(big, i), fmt.Sprint("full-", i))
	}
	status, body := postStatus(t, s.url+"/discussion/"+url.PathEscape(big+"rest"))
	if status < 500 || !strings.Contains(body, `"error"`) {
		t.Fatalf("REST send on a full disk: %d %s, want a 5xx JSON error", status, body)
	}
	// Reads keep working, and show only what was stored.
	readsWork(t, s.url, stored...)
	// The admin sees what is wrong.
	if dash := adminLive(t, s.url, "disk"); !strings.Contains(dash, "database error") || !strings.Contains(dash, "full") {
		t.Fatal("the admin dashboard does not show the database error while the disk is full")
	}

	// Space comes back (the owner deletes something): sending works again,
	// without a restart, and the refused message can be sent again.
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	for i, text := range []string{"after space came back", big + "0"} {
		cid := fmt.Sprint("again-", i)
		if i == 1 {
			cid = "full-0" // the client re-sends what was refused, same cid
		}
		sender.sendOK(text, cid)
		// The other client sees it next: the refused messages never reached it.
		other.expectMessage(text)
		stored = append(stored, text)
	}
	readsWork(t, s.url, stored...)
	if status, body := postStatus(t, s.url+"/discussion/rest%20works%20too"); status != 200 {
		t.Fatalf("REST send after recovery: %d %s", status, body)
	}
	other.expectMessage("rest works too")
}

func TestDiskFillingUpMidStreamAnswersEverySend(t *testing.T) {
	dir := mountTmpfs(t, "16m")
	dbPath := filepath.Join(dir, "nochat.db")
	s := start(t, map[string]string{"NOCHAT_DB": dbPath, "NOCHAT_MSG_RATE": "0"})

	// Senders send without waiting, each send answered by an ack or a
	// store_failed for its cid, while the disk fills under them.
	type result struct {
		acked, refused map[string]bool
	}
	const senders, window = 3, 8
	results := make([]result, senders)
	filled := make(chan struct{})
	done := make(chan error, senders)
	for i := range senders {
		c := dialV1(t, s.url, fmt.Sprint("s", i))
		results[i] = result{map[string]bool{}, map[string]bool{}}
		go func() {
			res := results[i]
			sent := 0
			answers := make(chan v1Frame, 64)
			go func() {
				defer close(answers)
				for {
					c.conn.SetReadDeadline(time.Now().Add(10 * time.Second))
					var f v1Frame
					if err := c.conn.ReadJSON(&f); err != nil {
						return
					}
					if f.Type == "ack" || f.Type == "error" {
						answers <- f
					}
				}
			}()
			answer := func(f v1Frame) error {
				switch {
				case f.Type == "ack":
					res.acked[f.Data.CID] = true
				case f.Data.Code == "store_failed":
					res.refused[f.Data.CID] = true
				case f.Data.Code == "rate_limited":
					return fmt.Errorf("sender %d: rate limited; this test runs NoChat with NOCHAT_MSG_RATE=0", i)
				default:
					return fmt.Errorf("sender %d: unexpected %+v", i, f)
				}
				return nil
			}
			// Send until well after the disk is full; then collect an
			// answer for every send.
			refusedAfterFull := 0
			for refusedAfterFull < 20 {
				cid := fmt.Sprintf("s%d-%d", i, sent)
				if err := c.conn.WriteJSON(map[string]any{"type": "send", "data": map[string]string{"message": "filling " + cid, "cid": cid}}); err != nil {
					done <- err
					return
				}
				sent++
				// At most a window of sends waits for its answer: the hub
				// keeps room for 14 answers beside the message stream in a
				// session's buffer and drops what does not fit.
				for sent-len(res.acked)-len(res.refused) >= window {
					f, ok := <-answers
					if !ok {
						done <- fmt.Errorf("sender %d: connection lost", i)
						return
					}
					if err := answer(f); err != nil {
						done <- err
						return
					}
					select {
					case <-filled:
						if f.Type == "error" {
							refusedAfterFull++
						}
					default:
					}
				}
			}
			for len(res.acked)+len(res.refused) < sent {
				f, ok := <-answers
				if !ok {
					done <- fmt.Errorf("sender %d: %d sends, %d acked, %d refused: some never answered", i, sent, len(res.acked), len(res.refused))
					return
				}
				if err := answer(f); err != nil {
					done <- err
					return
				}
			}
			done <- nil
		}()
	}
	time.Sleep(200 * time.Millisecond) // some messages go through first
	filler := fillDisk(t, dir)
	close(filled)
	for range senders {
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
	readsWork := func() {
		if status, _ := getBody(t, s.url+"/discussion/latest/500"); status != 200 {
			t.Fatalf("history on a full disk: %d", status)
		}
		if status, _ := getBody(t, s.url+"/"); status != 200 {
			t.Fatalf("page on a full disk: %d", status)
		}
	}
	readsWork()

	// Space comes back: what was acked is stored, what was refused is not,
	// and sending works again.
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	c := dialV1(t, s.url, "after")
	c.sendOK("space is back", "back-1")
	conn := openIntact(t, dbPath)
	defer conn.Close()
	total := 0
	for i, res := range results {
		for cid := range res.acked {
			var n int
			conn.QueryRow("SELECT count(*) FROM messages WHERE cid = ?", cid).Scan(&n)
			if n != 1 {
				t.Fatalf("acked %s is stored %d times", cid, n)
			}
		}
		for cid := range res.refused {
			var n int
			conn.QueryRow("SELECT count(*) FROM messages WHERE cid = ?", cid).Scan(&n)
			if n != 0 {
				t.Fatalf("refused %s is stored", cid)
			}
		}
		if len(res.refused) == 0 {
			t.Fatalf("sender %d was never refused: the disk never filled under it", i)
		}
		total += len(res.acked)
		t.Logf("sender %d: %d acked, %d refused", i, len(res.acked), len(res.refused))
	}
	if total == 0 {
		t.Fatal("nothing was acked before the disk filled")
	}
}
