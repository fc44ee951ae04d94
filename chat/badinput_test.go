package chat_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/gorilla/websocket"

	"nochat/chat"
)

// Bad input over WebSocket. Every case checks three things: what the
// sender is told, that nothing was stored, and that the room still works for
// everyone else (a watcher's next message is one sent after the bad input,
// so nothing slipped out in between).

// frameLimit is the default largest incoming frame (chat.Options.MaxFrameBytes).
const frameLimit = 16 << 10

// watch is a client that sees everything broadcast while bad input arrives.
type watch struct {
	r      *room
	c      *wsClient
	before int64 // the room's newest id when the bad input was sent
	seen   int64 // the newest id the watcher has read
}

func (r *room) watch(t *testing.T) *watch {
	t.Helper()
	w := &watch{r: r, c: r.dial(t, "nochat.v1", "?user=watcher")}
	w.mark(t)
	return w
}

// mark records the room's newest id before a case sends its input, first
// reading whatever the watcher has not read yet (after a failed case), so
// that one failure does not cascade into the next cases.
func (w *watch) mark(t *testing.T) {
	t.Helper()
	w.c.t = t
	id, err := w.r.store.LatestID(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for w.seen < id {
		w.seen = w.c.expect("message").ID
	}
	w.before = id
}

// next reads the watcher's next message.
func (w *watch) next(t *testing.T) msgData {
	t.Helper()
	w.c.t = t
	m := w.c.expect("message")
	w.seen = m.ID
	return m
}

// unharmed checks that nothing was stored since mark and that the watcher's
// next message is a new one: nothing was broadcast in between.
func (w *watch) unharmed(t *testing.T) {
	t.Helper()
	defer w.mark(t)
	if id, err := w.r.store.LatestID(context.Background()); err != nil || id != w.before {
		t.Fatalf("newest id is %d (%v), was %d: the refused input was stored", id, err, w.before)
	}
	m, err := w.r.hub.Send(context.Background(), "check", "still working after "+t.Name())
	if err != nil {
		t.Fatalf("the room refuses a good message after the bad input: %v", err)
	}
	if got := w.next(t); got.ID != m.ID || got.Message != m.Message {
		t.Fatalf("watcher got %+v next, want the good message %+v", got, m)
	}
}

// stored checks that exactly one message was stored since mark, with the
// given user and text, that the watcher saw it, and returns its id.
func (w *watch) stored(t *testing.T, user, text string) int64 {
	t.Helper()
	defer w.mark(t)
	got := w.next(t)
	if got.User != user || got.Message != text {
		t.Fatalf("watcher got %q from %q, want %q from %q", got.Message, got.User, text, user)
	}
	if got.ID != w.before+1 {
		t.Fatalf("watcher got id %d, want %d", got.ID, w.before+1)
	}
	m, err := w.r.store.Get(context.Background(), got.ID)
	if err != nil || m.Message != text || m.User != user {
		t.Fatalf("stored %+v (%v), want %q from %q", m, err, text, user)
	}
	return got.ID
}

var cids atomic.Int64

// sendAcked sends a message on c with a fresh cid and returns the message
// its ack names, skipping messages from others that arrive first.
func sendAcked(t *testing.T, c *wsClient, text string) msgData {
	t.Helper()
	c.t = t
	cid := fmt.Sprintf("cid-%d", cids.Add(1))
	c.say(text, cid)
	for {
		f, raw := c.next()
		switch f.Type {
		case "message":
			continue // someone else's
		case "ack":
			var a msgData
			json.Unmarshal(f.Data, &a)
			if a.CID != cid {
				t.Fatalf("ack %s, want cid %q", raw, cid)
			}
			m := c.expect("message")
			if m.ID != a.ID {
				t.Fatalf("ack for id %d, then message %d", a.ID, m.ID)
			}
			return m
		default:
			t.Fatalf("got %s, want an ack for %q", raw, cid)
		}
	}
}

func TestBadV1FramesAreRefusedAndHarmNoOne(t *testing.T) {
	// Unlimited: every case's guest socket is of this one address, whose
	// guests share a message limit.
	r := newRoom(t, chat.Options{MsgRate: -1})
	w := r.watch(t)
	sendFrame := func(body string) string {
		return `{"type":"send","data":` + body + `}`
	}
	atLimit := sendFrame(`{"cid":"lim","message":"`)
	atLimit += strings.Repeat("x", frameLimit-len(atLimit)-len(`"}}`)) + `"}}`
	tests := []struct {
		name  string
		frame string
		code  string
		cid   string // the cid the error frame names, when the send was readable
	}{
		// Not UTF-8: refused before any JSON decoding, which would quietly
		// turn the bytes into U+FFFD and store what nobody wrote.
		{"invalid UTF-8 in the message", sendFrame("{\"message\":\"ok \xff\xfe\",\"cid\":\"a\"}"), "invalid_utf8", ""},
		{"invalid UTF-8 outside strings", "\xff{}", "invalid_utf8", ""},
		{"overlong encoding of /", sendFrame("{\"message\":\"\xc0\xaf\"}"), "invalid_utf8", ""},
		{"UTF-8 encoded surrogate", sendFrame("{\"message\":\"\xed\xa0\x80\"}"), "invalid_utf8", ""},
		{"half a surrogate pair escaped", sendFrame(`{"message":"a\ud800b","cid":"s1"}`), "invalid_utf8", ""},
		{"a name with a low half alone", `{"type":"nick","data":{"user":"ann\uDC00"}}`, "invalid_utf8", ""},
		{"truncated sequence", sendFrame("{\"message\":\"\xe2\x82\"}"), "invalid_utf8", ""},
		{"invalid UTF-8 in the cid", sendFrame("{\"message\":\"hi\",\"cid\":\"\xff\"}"), "invalid_utf8", ""},

		// Malformed JSON.
		{"empty frame", ``, "bad_request", ""},
		{"truncated object", `{"type": "send", `, "bad_request", ""},
		{"null", `null`, "bad_request", ""},
		{"a string", `"send"`, "bad_request", ""},
		{"a number", `42`, "bad_request", ""},
		{"an array", `[{"type":"send","data":{"message":"hi"}}]`, "bad_request", ""},
		{"trailing garbage", sendFrame(`{"message":"hi"}`) + ` x`, "bad_request", ""},
		{"two objects", sendFrame(`{"message":"a"}`) + sendFrame(`{"message":"b"}`), "bad_request", ""},
		{"single quotes", `{'type':'send','data':{'message':'hi'}}`, "bad_request", ""},
		{"deep nesting", sendFrame(strings.Repeat("[", 8000) + strings.Repeat("]", 8000)), "bad_request", ""},

		// Unknown or missing type.
		{"unknown type", `{"type":"shout","data":{"message":"hi"}}`, "bad_request", ""},
		{"type in other case", `{"type":"SEND","data":{"message":"hi"}}`, "bad_request", ""},
		{"empty type", `{"type":"","data":{"message":"hi"}}`, "bad_request", ""},
		{"no type", `{"data":{"message":"hi"}}`, "bad_request", ""},
		{"empty object", `{}`, "bad_request", ""},
		{"server frame type sent back", `{"type":"message","data":{"id":1,"message":"hi"}}`, "bad_request", ""},

		// Wrong field types.
		{"type not a string", `{"type":5,"data":{"message":"hi"}}`, "bad_request", ""},
		{"data a string", sendFrame(`"hi"`), "bad_request", ""},
		{"data an array", sendFrame(`["hi"]`), "bad_request", ""},
		{"message a number", sendFrame(`{"message":42}`), "bad_request", ""},
		{"message an array", sendFrame(`{"message":["hi"]}`), "bad_request", ""},
		{"message an object", sendFrame(`{"message":{"text":"hi"}}`), "bad_request", ""},
		{"cid a number", sendFrame(`{"message":"hi","cid":7}`), "bad_request", ""},
		{"user a boolean", `{"type":"nick","data":{"user":true}}`, "bad_request", ""},

		// Missing fields.
		{"send without data", `{"type":"send"}`, "bad_request", ""},
		{"send with null data", `{"type":"send","data":null}`, "bad_request", ""},
		{"message null", sendFrame(`{"message":null,"cid":"n"}`), "bad_request", ""},
		{"nick without data", `{"type":"nick"}`, "bad_request", ""},
		{"nick with null user", `{"type":"nick","data":{"user":null}}`, "bad_request", ""},

		// Bad cids: not printable ASCII, or too long.
		{"cid with a space", sendFrame(`{"message":"hi","cid":"a b"}`), "bad_request", ""},
		{"cid with a NUL", sendFrame(`{"message":"hi","cid":"a\u0000"}`), "bad_request", ""},
		{"cid not ASCII", sendFrame(`{"message":"hi","cid":"é"}`), "bad_request", ""},
		{"cid of 65 characters", sendFrame(`{"message":"hi","cid":"` + strings.Repeat("c", 65) + `"}`), "bad_request", ""},

		// Readable sends whose text is refused: the error names the cid.
		{"empty message", sendFrame(`{"message":"","cid":"e1"}`), "empty", "e1"},
		{"whitespace only", sendFrame(`{"message":" \n\t\r\n \u3000","cid":"e2"}`), "empty", "e2"},
		{"control characters only", sendFrame(`{"message":"\u0000\u0007\u001b\u007f\u0085","cid":"e3"}`), "empty", "e3"},
		{"2,001 characters", sendFrame(`{"message":"` + strings.Repeat("é", 2001) + `","cid":"l1"}`), "too_long", "l1"},
		{"a frame exactly at the size limit", atLimit, "too_long", "lim"},

		// Names.
		{"name of 33 characters", `{"type":"nick","data":{"user":"` + strings.Repeat("n", 33) + `"}}`, "bad_name", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := r.dial(t, "nochat.v1", "")
			c.send(tt.frame)
			e := c.expect("error")
			if e.Code != tt.code || e.CID != tt.cid {
				t.Fatalf("error %+v, want code %q cid %q", e, tt.code, tt.cid)
			}
			if e.Message == "" {
				t.Fatal("error frame without a message for people")
			}
			w.unharmed(t)
			// The sender's connection still works.
			sendAcked(t, c, "after "+tt.name)
			w.stored(t, "guest", "after "+tt.name)
		})
	}

	t.Run("binary frame", func(t *testing.T) {
		c := r.dial(t, "nochat.v1", "")
		if err := c.conn.WriteMessage(websocket.BinaryMessage, []byte(sendFrame(`{"message":"hi","cid":"b"}`))); err != nil {
			t.Fatal(err)
		}
		if e := c.expect("error"); e.Code != "binary_unsupported" {
			t.Fatalf("error %+v, want binary_unsupported", e)
		}
		w.unharmed(t)
	})

	t.Run("frame over the size limit", func(t *testing.T) {
		c := r.dial(t, "nochat.v1", "")
		big := sendFrame(`{"cid":"big","message":"` + strings.Repeat("x", frameLimit) + `"}`)
		c.send(big)
		c.expectClose(websocket.CloseMessageTooBig)
		w.unharmed(t)
	})
}

func TestBadEchoFramesCloseWithACodeAndHarmNoOne(t *testing.T) {
	r := newRoom(t, chat.Options{})
	w := r.watch(t)
	tests := []struct {
		name  string
		typ   int
		frame string
		close int
	}{
		{"binary frame", websocket.BinaryMessage, "hello", websocket.CloseUnsupportedData},
		{"invalid UTF-8", websocket.TextMessage, "hi \xff", websocket.CloseInvalidFramePayloadData},
		{"UTF-8 encoded surrogate", websocket.TextMessage, "\xed\xa0\x80", websocket.CloseInvalidFramePayloadData},
		{"empty frame", websocket.TextMessage, "", websocket.ClosePolicyViolation},
		{"whitespace only", websocket.TextMessage, " \r\n\t ", websocket.ClosePolicyViolation},
		{"NUL only", websocket.TextMessage, "\x00\x00", websocket.ClosePolicyViolation},
		{"2,001 characters", websocket.TextMessage, strings.Repeat("x", 2001), websocket.CloseMessageTooBig},
		{"frame over the size limit", websocket.TextMessage, strings.Repeat("x", frameLimit+1), websocket.CloseMessageTooBig},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := r.dial(t, "echo-protocol", "")
			if err := c.conn.WriteMessage(tt.typ, []byte(tt.frame)); err != nil {
				t.Fatal(err)
			}
			c.expectClose(tt.close)
			w.unharmed(t)
		})
	}
}

func TestControlCharactersAreStrippedBeforeStoring(t *testing.T) {
	// Decided (README, Limits): control characters other than newline and
	// tab are removed, not refused, and line endings become \n; what is
	// stored is what everyone sees.
	r := newRoom(t, chat.Options{})
	w := r.watch(t)
	tests := []struct {
		name, sent, stored string
	}{
		{"NUL inside", "a\x00b", "ab"},
		{"bell, escape, delete", "\x07ring\x1b[31mred\x7f", "ring[31mred"},
		{"C1 controls", "next\u0085line\u009b", "nextline"},
		{"CRLF and CR become LF", "one\r\ntwo\rthree", "one\ntwo\nthree"},
		{"tab and newline kept inside", "a\tb\nc", "a\tb\nc"},
		{"surrounding whitespace trimmed", " \x00 padded \t\n", "padded"},
	}
	t.Run("nochat.v1", func(t *testing.T) {
		c := r.dial(t, "nochat.v1", "")
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				if got := sendAcked(t, c, tt.sent); got.Message != tt.stored {
					t.Fatalf("sender got %q, want %q", got.Message, tt.stored)
				}
				w.stored(t, "guest", tt.stored)
			})
		}
	})
	t.Run("echo-protocol", func(t *testing.T) {
		c := r.dial(t, "echo-protocol", "")
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				c.t = t
				c.send(tt.sent)
				if got := c.expectText(); got != tt.stored {
					t.Fatalf("echo sender got %q, want %q", got, tt.stored)
				}
				w.stored(t, "guest", tt.stored)
			})
		}
	})
	t.Run("REST", func(t *testing.T) {
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				m, err := r.hub.Send(context.Background(), "curl", tt.sent)
				if err != nil || m.Message != tt.stored {
					t.Fatalf("Send = %q, %v, want %q", m.Message, err, tt.stored)
				}
				w.stored(t, "curl", tt.stored)
			})
		}
	})
}

func TestNamesAreCleanedOrRefused(t *testing.T) {
	r := newRoom(t, chat.Options{})
	w := r.watch(t)
	tests := []struct {
		name, sent, stored string
	}{
		{"NUL inside is removed", "a\x00nn", "ann"},
		{"escape sequence is removed", "\x1b[1mbold", "[1mbold"},
		{"whitespace runs collapse", "  Zoë \t the\n\r great ", "Zoë the great"},
		{"controls around spaces", "a \x00 b", "a b"},
		{"only controls is the default name", "\x00\x07", "guest"},
		{"HTML is kept as text", "<b>bob</b>", "<b>bob</b>"},
		{"script tag is kept as text", "<script>alert(1)</script>", "<script>alert(1)</script>"},
		{"SQL metacharacters are kept", "Bobby'); DROP TABLE messages;--", "Bobby'); DROP TABLE messages;--"},
		{"32 characters", strings.Repeat("é", 32), strings.Repeat("é", 32)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Run("nick", func(t *testing.T) {
				w.mark(t)
				c := r.dial(t, "nochat.v1", "")
				c.send(map[string]any{"type": "nick", "data": map[string]any{"user": tt.sent}})
				if got := sendAcked(t, c, "from a nick"); got.User != tt.stored {
					t.Fatalf("user %q, want %q", got.User, tt.stored)
				}
				w.stored(t, tt.stored, "from a nick")
			})
			t.Run("user query", func(t *testing.T) {
				w.mark(t)
				c := r.dial(t, "nochat.v1", "?user="+queryEscape(tt.sent))
				if got := sendAcked(t, c, "from the query"); got.User != tt.stored {
					t.Fatalf("user %q, want %q", got.User, tt.stored)
				}
				w.stored(t, tt.stored, "from the query")
			})
			t.Run("REST", func(t *testing.T) {
				w.mark(t)
				m, err := r.hub.Send(context.Background(), tt.sent, "from REST")
				if err != nil || m.User != tt.stored {
					t.Fatalf("Send: user %q, %v, want %q", m.User, err, tt.stored)
				}
				w.stored(t, tt.stored, "from REST")
			})
		})
	}
	t.Run("33 characters are refused", func(t *testing.T) {
		long := strings.Repeat("é", 33)
		if _, err := r.hub.Send(context.Background(), long, "hi"); !isRefusal(err, "bad_name") {
			t.Fatalf("REST: %v, want a bad_name refusal", err)
		}
		d := websocket.Dialer{Subprotocols: []string{"nochat.v1"}}
		if _, resp, err := d.Dial(r.url+"?user="+queryEscape(long), nil); err == nil || resp.StatusCode != 400 {
			t.Fatalf("upgrade with a long name: %v %v, want 400", err, resp)
		}
		w.unharmed(t)
	})
	t.Run("invalid UTF-8 is refused", func(t *testing.T) {
		if _, err := r.hub.Send(context.Background(), "a\xffb", "hi"); !isRefusal(err, "bad_name") {
			t.Fatalf("REST: %v, want a bad_name refusal", err)
		}
		d := websocket.Dialer{Subprotocols: []string{"nochat.v1"}}
		if _, resp, err := d.Dial(r.url+"?user=a%FFb", nil); err == nil || resp.StatusCode != 400 {
			t.Fatalf("upgrade with a bad name: %v %v, want 400", err, resp)
		}
		w.unharmed(t)
	})
}

func TestSQLAndHTMLAreStoredVerbatim(t *testing.T) {
	r := newRoom(t, chat.Options{})
	w := r.watch(t)
	echo := r.dial(t, "echo-protocol", "")
	texts := []string{
		"Robert'); DROP TABLE messages;--",
		`" OR ""="`,
		`' OR 1=1 --`,
		`100% _sure_ \ back\\slash`,
		`?; $1 :name @p ?1 */ /*`,
		"'; PRAGMA writable_schema=1; --",
		`<script>alert("x")</script>`,
		`<img src=x onerror=alert(1)>`,
		`&lt;already escaped&gt; &amp;`,
		"emoji 🎉 and RTL \u202eevil",
	}
	c := r.dial(t, "nochat.v1", "")
	for _, text := range texts {
		got := sendAcked(t, c, text)
		if got.Message != text {
			t.Fatalf("sender got %q, want %q", got.Message, text)
		}
		if got := echo.expectText(); got != text {
			t.Fatalf("echo client got %q, want %q", got, text)
		}
		if id := w.stored(t, "guest", text); id != got.ID {
			t.Fatalf("stored as %d, acked as %d", id, got.ID)
		}
	}
	// The table is still there, with exactly these rows.
	msgs, err := r.store.Latest(context.Background(), 100)
	if err != nil || len(msgs) != len(texts) {
		t.Fatalf("%d messages stored (%v), want %d", len(msgs), err, len(texts))
	}
}

// queryEscape escapes a query value byte by byte, keeping invalid UTF-8 as
// it is (url.QueryEscape does too, but says nothing about it).
func queryEscape(s string) string {
	const hex = "0123456789ABCDEF"
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_' || c == '.' || c == '~' {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('%')
		b.WriteByte(hex[c>>4])
		b.WriteByte(hex[c&15])
	}
	return b.String()
}
