package bench

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"strconv"
)

// Every message the generator sends carries, in its text, what is needed to
// account for each delivery: the run, the sender, the sender's sequence
// number and the send time. So loss, duplicates and latency are computed
// from the text alone, which is all an echo-protocol server gives back:
//
//	bench 3fa81c02 4 117 2083310722 xxxxxxxx…
//
// "bench", the run id (random, so messages of other runs and other traffic
// are told apart), the sender's index, its sequence number (0, 1, 2, …) and
// the nanoseconds since the run started on the generator's monotonic clock
// (the generator both sends and receives, so one clock measures latency).
// Padding of x brings the text to the requested size. Only [a-z0-9 ] appear,
// so the text is the same inside a JSON string as outside: no escaping.
//
// The warm-up messages that check every client is in the room before the
// measurement starts read "bench RUN warmup K".

// textKind is what a received text turned out to be.
type textKind int

const (
	foreignText textKind = iota // not a message of this run
	dataText                    // a measured message
	warmupText                  // a warm-up message of this run
)

// codec writes and parses the texts of one run.
type codec struct {
	run    string // 8 hex digits
	prefix []byte // "bench RUN "
	size   int    // wanted text length in bytes
}

func newCodec(size int) *codec {
	var b [4]byte
	rand.Read(b[:])
	run := hex.EncodeToString(b[:])
	return &codec{run: run, prefix: []byte("bench " + run + " "), size: size}
}

// minTextSize is the shortest text the generator writes: the header with
// large numbers. A smaller -size is raised to it.
const minTextSize = len("bench 01234567 99999 9999999999 999999999999999")

// appendText appends the text of a measured message to dst.
func (c *codec) appendText(dst []byte, sender int, seq, sentNS int64) []byte {
	start := len(dst)
	dst = append(dst, c.prefix...)
	dst = strconv.AppendInt(dst, int64(sender), 10)
	dst = append(dst, ' ')
	dst = strconv.AppendInt(dst, seq, 10)
	dst = append(dst, ' ')
	dst = strconv.AppendInt(dst, sentNS, 10)
	if pad := c.size - (len(dst) - start); pad >= 2 {
		dst = append(dst, ' ')
		for range pad - 1 {
			dst = append(dst, 'x')
		}
	}
	return dst
}

// warmupText is the text of warm-up round k.
func (c *codec) warmupText(k int) string {
	return string(c.prefix) + "warmup " + strconv.Itoa(k)
}

// parse reads a text. For a measured message it returns the sender, the
// sequence number and the send time. It reads only the header, so b may
// run on past the text (a JSON frame's closing quote and brace).
func (c *codec) parse(b []byte) (kind textKind, sender int, seq, sentNS int64) {
	if !bytes.HasPrefix(b, c.prefix) {
		return foreignText, 0, 0, 0
	}
	b = b[len(c.prefix):]
	if bytes.HasPrefix(b, []byte("warmup ")) {
		return warmupText, 0, 0, 0
	}
	s, b, ok := number(b)
	if !ok || len(b) == 0 || b[0] != ' ' {
		return foreignText, 0, 0, 0
	}
	seq, b, ok = number(b[1:])
	if !ok || len(b) == 0 || b[0] != ' ' {
		return foreignText, 0, 0, 0
	}
	sentNS, _, ok = number(b[1:])
	if !ok {
		return foreignText, 0, 0, 0
	}
	return dataText, int(s), seq, sentNS
}

// number reads a decimal number of at most 18 digits at the start of b and
// returns it with what follows it.
func number(b []byte) (int64, []byte, bool) {
	var n int64
	i := 0
	for ; i < len(b) && i < 18 && b[i] >= '0' && b[i] <= '9'; i++ {
		n = n*10 + int64(b[i]-'0')
	}
	if i == 0 || (i < len(b) && b[i] >= '0' && b[i] <= '9') {
		return 0, b, false
	}
	return n, b[i:], true
}

// header returns the identifying part of a measured message's text, for
// reports: "bench RUN SENDER SEQ".
func (c *codec) header(sender int, seq int64) string {
	return string(c.prefix) + strconv.Itoa(sender) + " " + strconv.FormatInt(seq, 10)
}
