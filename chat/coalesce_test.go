package chat

import (
	"bytes"
	"fmt"
	"net"
	"sync"
	"testing"
	"time"
)

// recordingConn keeps each Write it is given, as the kernel would get it.
type recordingConn struct {
	net.Conn
	mu     sync.Mutex
	writes [][]byte
	closed bool
}

func (r *recordingConn) Write(p []byte) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return 0, net.ErrClosed
	}
	r.writes = append(r.writes, bytes.Clone(p))
	return len(p), nil
}

func (r *recordingConn) Close() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.closed = true
	return nil
}

func (r *recordingConn) stream() []byte { return bytes.Join(r.writes, nil) }

func frameN(i int) []byte { return fmt.Appendf(nil, "frame %03d;", i) }

func TestCoalescedWritesALoneFrameAtOnce(t *testing.T) {
	rc := &recordingConn{}
	c := newCoalesced(rc, func() bool { return false })
	for i := range 3 {
		if n, err := c.Write(frameN(i)); err != nil || n != len(frameN(i)) {
			t.Fatalf("Write = %d, %v", n, err)
		}
		if len(rc.writes) != i+1 {
			t.Fatalf("after frame %d with nothing behind it: %d writes reached the connection, want %d", i, len(rc.writes), i+1)
		}
	}
}

func TestCoalescedSendsABacklogInOneWrite(t *testing.T) {
	rc := &recordingConn{}
	waiting := 10 // frames queued, the one being written included
	c := newCoalesced(rc, func() bool { return waiting > 1 })
	var want []byte
	for i := range 10 {
		f := frameN(i)
		want = append(want, f...)
		c.Write(f)
		waiting--
		if i < 9 && len(rc.writes) != 0 {
			t.Fatalf("frame %d written with %d more behind it", i, waiting)
		}
	}
	if len(rc.writes) != 1 {
		t.Fatalf("%d writes for a backlog of 10 small frames, want 1", len(rc.writes))
	}
	if !bytes.Equal(rc.stream(), want) {
		t.Fatalf("bytes on the wire:\n%s\nwant\n%s", rc.stream(), want)
	}
}

func TestCoalescedBoundsWhatItHolds(t *testing.T) {
	rc := &recordingConn{}
	c := newCoalesced(rc, func() bool { return true })
	var want []byte
	big := bytes.Repeat([]byte("x"), coalesceLimit+1)
	for i := range 2000 {
		f := frameN(i)
		if i == 1000 {
			f = big // larger than the buffer: written through, in order
		}
		want = append(want, f...)
		c.Write(f)
	}
	c.Close()
	if !bytes.Equal(rc.stream(), want) {
		t.Fatal("the bytes on the wire are not the frames in order")
	}
	for i, w := range rc.writes {
		if len(w) > coalesceLimit && !bytes.Equal(w, big) {
			t.Fatalf("write %d holds %d bytes, over the %d limit", i, len(w), coalesceLimit)
		}
	}
	if n := len(rc.writes); n < 3 || n > 2000*len(frameN(0))/coalesceLimit+4 {
		t.Fatalf("%d writes for 2000 frames and one big one", n)
	}
}

func TestCoalescedCloseSendsWhatItHeld(t *testing.T) {
	rc := &recordingConn{}
	c := newCoalesced(rc, func() bool { return true })
	c.Write([]byte("last words"))
	if len(rc.writes) != 0 {
		t.Fatal("written with more said to follow")
	}
	c.Close()
	if got := string(rc.stream()); got != "last words" || !rc.closed {
		t.Fatalf("after Close: wire %q, closed %v", got, rc.closed)
	}
}

// A client that stops reading blocks the write under way; Close is what
// ends it, so Close must not wait for it.
func TestCoalescedCloseDoesNotWaitForABlockedWrite(t *testing.T) {
	server, client := net.Pipe()
	defer client.Close()
	c := newCoalesced(server, func() bool { return false })
	wrote := make(chan error, 1)
	go func() {
		_, err := c.Write([]byte("nobody reads this"))
		wrote <- err
	}()
	time.Sleep(10 * time.Millisecond) // let the write block on the pipe
	closed := make(chan struct{})
	go func() {
		c.Close()
		close(closed)
	}()
	select {
	case <-closed:
	case <-time.After(10 * time.Second):
		t.Fatal("Close waited for a write the client will never read")
	}
	select {
	case err := <-wrote:
		if err == nil {
			t.Fatal("the blocked write succeeded with nobody reading")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the blocked write did not end when the connection closed")
	}
}

// deadlineConn records the write deadlines the connection is given.
type deadlineConn struct {
	recordingConn
	deadlines []time.Time
}

func (d *deadlineConn) SetWriteDeadline(t time.Time) error {
	d.deadlines = append(d.deadlines, t)
	return nil
}

func TestCoalescedSetsTheDeadlineOncePerWrite(t *testing.T) {
	dc := &deadlineConn{}
	waiting := 5
	c := newCoalesced(dc, func() bool { return waiting > 1 })
	base := time.Now()
	for i := range 5 {
		c.SetWriteDeadline(base.Add(10*time.Second + time.Duration(i)*time.Millisecond))
		c.Write(frameN(i))
		waiting--
	}
	if len(dc.writes) != 1 || len(dc.deadlines) != 1 {
		t.Fatalf("%d writes, %d deadlines set for a backlog of 5: want 1 and 1", len(dc.writes), len(dc.deadlines))
	}
	if want := base.Add(10*time.Second + 4*time.Millisecond); !dc.deadlines[0].Equal(want) {
		t.Fatalf("deadline %v, want the last one asked for, %v", dc.deadlines[0], want)
	}
	// A deadline moved later by a little is left as it is; an earlier one,
	// or one much later, is set.
	for _, tc := range []struct {
		at  time.Duration
		set bool
	}{{10*time.Second + 100*time.Millisecond, false}, {9 * time.Second, true}, {20 * time.Second, true}} {
		n := len(dc.deadlines)
		c.SetWriteDeadline(base.Add(tc.at))
		c.Write([]byte("x"))
		if set := len(dc.deadlines) > n; set != tc.set {
			t.Errorf("deadline moved to +%v: set %v, want %v", tc.at, set, tc.set)
		}
	}
	c.SetWriteDeadline(time.Time{})
	c.Write([]byte("x"))
	if last := dc.deadlines[len(dc.deadlines)-1]; !last.IsZero() {
		t.Errorf("no deadline asked for, the connection has %v", last)
	}
}
