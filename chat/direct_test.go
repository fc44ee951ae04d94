package chat

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"testing"
	"time"
)

// tcpPair returns the two ends of a real TCP connection on the loopback:
// the server's, taking direct writes, and the client's.
func tcpPair(t *testing.T, more func() bool) (*coalesced, net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		conn, _ := ln.Accept()
		accepted <- conn
	}()
	client, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	server := <-accepted
	if server == nil {
		t.Fatal("accept failed")
	}
	c := newCoalesced(server, more)
	c.enableDirect(2*time.Second, nil)
	if c.raw == nil {
		t.Fatal("a TCP connection takes no direct writes")
	}
	t.Cleanup(func() { c.Close(); client.Close() })
	client.SetReadDeadline(time.Now().Add(10 * time.Second)) // a cut frame fails, not hangs
	return c, client
}

// readFrame reads one unmasked server frame, as a browser would.
func readFrame(r *bufio.Reader) (opcode byte, payload []byte, err error) {
	var h [2]byte
	if _, err := io.ReadFull(r, h[:]); err != nil {
		return 0, nil, err
	}
	if h[0]&0x80 == 0 || h[1]&0x80 != 0 {
		return 0, nil, fmt.Errorf("header % x: not a final unmasked frame", h)
	}
	n := uint64(h[1] & 0x7f)
	switch n {
	case 126:
		var l [2]byte
		if _, err := io.ReadFull(r, l[:]); err != nil {
			return 0, nil, err
		}
		n = uint64(binary.BigEndian.Uint16(l[:]))
	case 127:
		var l [8]byte
		if _, err := io.ReadFull(r, l[:]); err != nil {
			return 0, nil, err
		}
		n = binary.BigEndian.Uint64(l[:])
	}
	payload = make([]byte, n)
	_, err = io.ReadFull(r, payload)
	return h[0] & 0x0f, payload, err
}

func payloadN(i, size int) []byte {
	b := bytes.Repeat([]byte{'.'}, size)
	copy(b, fmt.Sprintf("frame %04d ", i))
	return b
}

// A frame gorilla writes in two parts (larger than its buffer) must not
// have a direct write land between them: the client would read garbage.
func TestADirectWriteWaitsForTheFrameUnderWay(t *testing.T) {
	c, client := tcpPair(t, func() bool { return false })
	big, _ := textFrame(payloadN(0, 6000))
	if _, err := c.Write(big[:4096]); err != nil { // as gorilla: its buffer, then the rest
		t.Fatal(err)
	}
	small, _ := textFrame(payloadN(1, 20))
	if c.writeDirect(small) {
		t.Fatal("a direct write went inside a frame gorilla was writing")
	}
	if _, err := c.Write(big[4096:]); err != nil {
		t.Fatal(err)
	}
	if !c.writeDirect(small) {
		t.Fatal("no direct write between frames, on an idle socket")
	}
	r := bufio.NewReader(client)
	for i, size := range []int{6000, 20} {
		op, p, err := readFrame(r)
		if err != nil || op != 1 || !bytes.Equal(p, payloadN(i, size)) {
			t.Fatalf("frame %d: opcode %d, %d bytes %.12q, %v", i, op, len(p), p, err)
		}
	}
}

// melody sets a deadline before each of its writes; one that has passed
// since must not stop a direct write, which never waits.
func TestADirectWriteAfterMelodysDeadlinePassed(t *testing.T) {
	c, client := tcpPair(t, func() bool { return false })
	c.SetWriteDeadline(time.Now().Add(50 * time.Millisecond))
	f, _ := textFrame([]byte("through melody"))
	if _, err := c.Write(f); err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond)
	f, _ = textFrame([]byte("direct"))
	if !c.writeDirect(f) {
		t.Fatal("no direct write once melody's deadline had passed")
	}
	f, _ = textFrame([]byte("through melody again"))
	c.SetWriteDeadline(time.Now().Add(time.Second))
	if _, err := c.Write(f); err != nil {
		t.Fatal(err)
	}
	r := bufio.NewReader(client)
	for _, want := range []string{"through melody", "direct", "through melody again"} {
		if _, p, err := readFrame(r); err != nil || string(p) != want {
			t.Fatalf("read %q, %v; want %q", p, err, want)
		}
	}
}

// Nothing may follow a close frame, not even a direct write.
func TestNoDirectWriteAfterACloseFrame(t *testing.T) {
	c, _ := tcpPair(t, func() bool { return false })
	if _, err := c.Write([]byte{0x88, 2, 0x03, 0xe8}); err != nil { // close 1000
		t.Fatal(err)
	}
	f, _ := textFrame([]byte("too late"))
	if c.writeDirect(f) {
		t.Fatal("a direct write after the close frame")
	}
}

// A client that stops reading fills its socket: a direct write the socket
// takes only part of leaves the rest to follow, before anything else, and
// the next direct writes stand back until it has; then the client, reading
// again, gets every frame whole and in order.
func TestADirectWriteTheSocketTakesPartOfArrivesWhole(t *testing.T) {
	c, client := tcpPair(t, func() bool { return false })
	var sent [][]byte
	for i := 0; ; i++ {
		p := payloadN(i, 3000)
		f, _ := textFrame(p)
		if !c.writeDirect(f) {
			break
		}
		sent = append(sent, p)
		if i > 100_000 {
			t.Fatal("the socket never filled up")
		}
	}
	// Through melody, as the queue would hand it over once direct writes
	// stand back: after the rest of the cut frame.
	last := payloadN(len(sent), 10)
	lastFrame, _ := textFrame(last)
	wrote := make(chan error, 1)
	go func() {
		_, err := c.Write(lastFrame)
		wrote <- err
	}()
	sent = append(sent, last)

	r := bufio.NewReader(client)
	for i, want := range sent {
		op, p, err := readFrame(r)
		if err != nil || op != 1 || !bytes.Equal(p, want) {
			t.Fatalf("frame %d of %d: opcode %d, %d bytes %.12q, %v", i, len(sent), op, len(p), p, err)
		}
	}
	if err := <-wrote; err != nil {
		t.Fatal(err)
	}
	again, _ := textFrame([]byte("and on"))
	if !c.writeDirect(again) {
		t.Fatal("no direct write once the client caught up")
	}
	if _, p, err := readFrame(r); err != nil || string(p) != "and on" {
		t.Fatalf("after catching up: %q, %v", p, err)
	}
}

// What is left of a cut frame waits for the client only as long as a slow
// client is given; then the connection goes.
func TestTheRestOfADirectWriteIsBoundedByTheSlowClientWait(t *testing.T) {
	c, client := tcpPair(t, func() bool { return false })
	c.wait = 200 * time.Millisecond
	cut := false
	for i := 0; i < 100_000 && !cut; i++ {
		f, _ := textFrame(payloadN(i, 3001))
		if !c.writeDirect(f) {
			// Full without a cut on a frame boundary; try a size that
			// does not divide the socket's buffer.
			f, _ = textFrame(payloadN(i, 7))
			if !c.writeDirect(f) {
				t.Skip("the socket filled on a frame boundary: nothing was cut")
			}
		}
		c.mu.Lock()
		cut = c.buf != nil
		c.mu.Unlock()
	}
	if !cut {
		t.Fatal("the socket never filled up")
	}
	time.Sleep(time.Second)
	client.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.Copy(io.Discard, client); err != nil {
		t.Fatalf("the connection was not closed: %v", err)
	}
}

// A direct write is made for every recipient of a quiet chat's message:
// it allocates nothing (a closure made for each was two allocations a
// recipient, most of what a message cost the server beyond its encoding).
func TestADirectWriteAllocatesNothing(t *testing.T) {
	c, client := tcpPair(t, func() bool { return false })
	go io.Copy(io.Discard, client)
	f, _ := textFrame([]byte("a message for every recipient"))
	var failed int
	allocs := testing.AllocsPerRun(200, func() {
		if !c.writeDirect(f) {
			failed++
		}
	})
	if failed > 0 {
		t.Fatalf("%d of the direct writes to an idle socket were refused", failed)
	}
	if allocs != 0 {
		t.Errorf("a direct write allocates %v times, want none", allocs)
	}
}

// A backlog written in line goes after the bytes held back, as frames a
// client reads one by one, in writes of at most coalesceLimit (a frame
// longer than that alone).
func TestWriteFramesSendsABacklogAfterWhatWasHeld(t *testing.T) {
	c, client := tcpPair(t, func() bool { return true })
	held, _ := textFrame(payloadN(0, 30))
	if _, err := c.Write(held); err != nil { // melody's frame, more said to follow
		t.Fatal(err)
	}
	sizes := []int{30}
	var payloads [][]byte
	for i := 1; i < 1000; i++ {
		size := 100
		if i == 500 {
			size = coalesceLimit + 1
		}
		sizes = append(sizes, size)
		payloads = append(payloads, payloadN(i, size))
	}
	done := make(chan error, 1)
	go func() { done <- c.writeFrames(payloads, nil) }()
	r := bufio.NewReader(client)
	for i, size := range sizes {
		op, p, err := readFrame(r)
		if err != nil || op != 1 || !bytes.Equal(p, payloadN(i, size)) {
			t.Fatalf("frame %d: opcode %d, %d bytes %.12q, %v", i, op, len(p), p, err)
		}
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if c.buf != nil {
		t.Error("bytes still held back after writeFrames")
	}
}

// A client that takes nothing within the slow-client bound loses its
// connection, and the hub hears of it, as with melody's own writes.
func TestWriteFramesToAClientThatDoesNotRead(t *testing.T) {
	c, client := tcpPair(t, func() bool { return false })
	// Small socket buffers: what is written below is far more than they hold.
	c.Conn.(*net.TCPConn).SetWriteBuffer(4096)
	client.(*net.TCPConn).SetReadBuffer(4096)
	stalled := make(chan struct{}, 1)
	c.enableDirect(200*time.Millisecond, func() { stalled <- struct{}{} })
	payloads := make([][]byte, 4096)
	for i := range payloads {
		payloads[i] = payloadN(i, 1000)
	}
	if err := c.writeFrames(payloads, nil); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("writeFrames to a client that does not read: %v, want a deadline exceeded", err)
	}
	select {
	case <-stalled:
	default:
		t.Error("the stall went unheard")
	}
	client.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.Copy(io.Discard, client); err != nil {
		t.Fatalf("the connection was not closed: %v", err)
	}
}

// Bytes held back that leave no room for a backlog's first frame are
// written alone, the frames after them: no write is larger than
// coalesceLimit, so the pooled buffer is never grown and let go for it.
func TestWriteFramesAfterAFullBufferStayWithinTheLimit(t *testing.T) {
	rc := &recordingConn{}
	c := newCoalesced(rc, func() bool { return true })
	held := bytes.Repeat([]byte("h"), coalesceLimit-100)
	if _, err := c.Write(held); err != nil || c.buf == nil {
		t.Fatalf("%v: nothing held back", err)
	}
	payloads := [][]byte{payloadN(0, 200), payloadN(1, 200)}
	if err := c.writeFrames(payloads, nil); err != nil {
		t.Fatal(err)
	}
	want := held
	for _, p := range payloads {
		want = append(appendHeader(want, len(p)), p...)
	}
	if !bytes.Equal(rc.stream(), want) {
		t.Fatal("the bytes on the wire are not what was held back and the frames, in order")
	}
	for i, w := range rc.writes {
		if len(w) > coalesceLimit {
			t.Errorf("write %d of %d: %d bytes, more than coalesceLimit (%d)", i, len(rc.writes), len(w), coalesceLimit)
		}
	}
}

// A backlog written in line notes each write as it goes through, not only
// the last: a client reading a long backlog slowly is reading, and the
// catch-up's stall check, which reads the last write's time, must not take
// it for stalled before the whole backlog is through (noted once at its
// end, a backlog longer than the slow-client bound closed a client that
// read). Here the client stops halfway.
func TestABacklogWrittenInLineNotesEachWrite(t *testing.T) {
	c, client := tcpPair(t, func() bool { return false })
	// Buffers of 32 KiB: what is written below is far more than they hold
	// (smaller ones slow loopback TCP to a crawl).
	c.Conn.(*net.TCPConn).SetWriteBuffer(32 << 10)
	client.(*net.TCPConn).SetReadBuffer(32 << 10)
	q := &queue{conn: c, drained: make(chan struct{}, 1)}
	const n, size = 2000, 1000 // 2 MB: about 60 writes, 30 of them before the reader stops
	for i := range n {
		q.wait = append(q.wait, payloadN(i, size))
	}
	q.waitN.Store(n)
	done := make(chan struct{})
	go func() {
		q.drain()
		close(done)
	}()
	// Read half of it, then stop: the rest waits on the socket, and the
	// backlog is not through.
	client.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.CopyN(io.Discard, client, n*size/2); err != nil {
		t.Fatal(err)
	}
	select {
	case <-done:
		t.Fatal("the backlog went through before half of it was read")
	default:
	}
	if q.lastWrite.Load() == 0 {
		t.Error("half the backlog read, and no write of it noted")
	}
	frame := len(appendHeader(nil, size)) + size
	if _, err := io.CopyN(io.Discard, client, int64(n*frame-n*size/2)); err != nil {
		t.Fatal(err)
	}
	<-done
	if got := q.sent.Load(); got != n {
		t.Errorf("%d frames counted sent, want %d", got, n)
	}
}

// Nothing may follow a close frame: writeFrames refuses, on a socket and
// on a connection that is not one (TLS's).
func TestWriteFramesAfterACloseFrame(t *testing.T) {
	socket, _ := tcpPair(t, func() bool { return false })
	other := newCoalesced(&recordingConn{}, func() bool { return false })
	other.enableDirect(time.Second, nil)
	for name, c := range map[string]*coalesced{"socket": socket, "not a socket": other} {
		if _, err := c.Write([]byte{0x88, 2, 0x03, 0xe8}); err != nil { // close 1000
			t.Fatal(err)
		}
		if err := c.writeFrames([][]byte{[]byte("after the close")}, nil); !errors.Is(err, errAfterClose) {
			t.Errorf("%s: writeFrames after a close frame: %v", name, err)
		}
	}
}

// gorilla writes a pong from the goroutine that reads, holding its own
// lock only. While a backlog written in line waits for a client that does
// not read, the pong waits no longer than gorilla would for its lock and is
// dropped, as gorilla drops one then; the backlog then arrives whole, and
// the connection still works. Written past its deadline it failed (and over
// TLS would have broken the connection), after waiting for the whole
// backlog.
func TestAPongWaitsForABacklogNoLongerThanGorillaWould(t *testing.T) {
	c, client := tcpPair(t, func() bool { return false })
	c.enableDirect(30*time.Second, nil)
	payloads := make([][]byte, 8192) // 8 MB: more than the socket buffers hold
	for i := range payloads {
		payloads[i] = payloadN(i, 1000)
	}
	done := make(chan error, 1)
	go func() { done <- c.writeFrames(payloads, nil) }()
	time.Sleep(100 * time.Millisecond)
	began := time.Now()
	c.SetWriteDeadline(began.Add(time.Second)) // as gorilla's WriteControl does
	if _, err := c.Write([]byte{0x8A, 0}); err != nil {
		t.Fatalf("the pong: %v, want it dropped quietly", err)
	}
	if waited := time.Since(began); waited > controlWait+500*time.Millisecond {
		t.Fatalf("the pong waited %v for the backlog, want at most about %v", waited, controlWait)
	}
	r := bufio.NewReader(client)
	for i := range payloads {
		op, p, err := readFrame(r)
		if err == nil && op == 0xA { // a pong that did go between two writes
			op, p, err = readFrame(r)
		}
		if err != nil || op != 1 || !bytes.Equal(p, payloads[i]) {
			t.Fatalf("frame %d: opcode %d, %d bytes %.12q, %v", i, op, len(p), p, err)
		}
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	c.SetWriteDeadline(time.Now().Add(time.Second))
	if _, err := c.Write([]byte{0x8A, 0}); err != nil {
		t.Fatalf("a pong once the backlog went: %v", err)
	}
	if op, _, err := readFrame(r); err != nil || op != 0xA {
		t.Fatalf("after the backlog: opcode %d, %v; want the pong", op, err)
	}
}
