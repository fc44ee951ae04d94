package chat

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"

	"nochat/db"
)

// Fuzz targets for what a client controls: the nochat.v1 frame decoder and
// the message and name rules. The seed corpus is in testdata/fuzz; .ci/fuzz
// runs each target for a while:
//
//	go test -run '^$' -fuzz '^FuzzDecodeCommand$' -fuzztime 20s ./chat

func FuzzDecodeCommand(f *testing.F) {
	for _, s := range []string{
		`{"type":"send","data":{"message":"hi","cid":"1b4e28ba-2fa1-11d2-883f-0016d3cca427"}}`,
		`{"type":"nick","data":{"user":"ann"}}`,
		`{"type":"typing","data":{}}`,
		`{"type":"typing"}`,
		`{"type":"send","data":{"message":42}}`,
		`{"type":"send","data":null}`,
		`{"type":"shout","data":{}}`,
		`{"type":"ééééééééééééééééééééééééééééééééééé"}`,
		`{"type":"€€€€€€€€€€€€€€€€€€€€"}`,
		`{"TYPE":"send","Data":{"Message":"case"}}`,
		`{"type":"send","type":"nick","data":{"user":"dup","message":"dup"}}`,
		`{"type":"send","data":{"message":"\ud800\udc00 \ud800"}}`,
		`[1,2]`, `null`, ``, `{`, "\xff",
		// Rooms: send, typing and read name one.
		`{"type":"send","data":{"room":2,"message":"in a room","cid":"c2"}}`,
		`{"type":"send","data":{"room":-1,"message":"x","cid":"c"}}`,
		`{"type":"send","data":{"room":"2","message":"x","cid":"c"}}`,
		`{"type":"send","data":{"room":1e3,"message":"x","cid":"c"}}`,
		`{"type":"send","data":{"room":9223372036854775808,"message":"x","cid":"c"}}`,
		`{"type":"typing","data":{"room":7}}`,
		`{"type":"typing","data":{"room":-7}}`,
		`{"type":"typing","data":{"room":0,"id":-1}}`,
		`{"type":"read","data":{"room":3,"id":42}}`,
		`{"type":"read","data":{"room":3,"id":0}}`,
		`{"type":"read","data":{"room":3}}`,
		`{"type":"read","data":{"room":-3,"id":42}}`,
		`{"type":"read","data":{"room":3,"id":-42}}`,
		`{"type":"read","data":{"room":3.5,"id":42}}`,
		`{"type":"read","data":{"room":null,"id":42}}`,
		`{"type":"read","data":{"id":1,"ID":2,"room":1,"Room":-1}}`,
		`{"type":"read"}`,
		`{"type":"read","data":[3,42]}`,
		`{"type":"send","data":{"message":"yes","cid":"c","reply_to":7}}`,
		`{"type":"send","data":{"message":"yes","cid":"c","reply_to":-7}}`,
		`{"type":"edit","data":{"id":7,"message":"fixed","cid":"e"}}`,
		`{"type":"edit","data":{"id":7}}`,
		`{"type":"delete","data":{"id":7}}`,
		`{"type":"delete","data":{"id":0}}`,
		`{"type":"react","data":{"id":7,"emoji":"👍","on":true}}`,
		`{"type":"react","data":{"id":7,"emoji":"👍","on":null,"cid":"bad cid"}}`,
		`{"type":"typing","data":{"id":1}}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		cmd, err := DecodeCommand(b)
		if err != nil {
			var r *Refusal
			if !errors.As(err, &r) || r.Code != "bad_request" {
				t.Fatalf("error %#v, want a bad_request refusal", err)
			}
			if r.Text == "" || !utf8.ValidString(r.Text) || len(r.Text) > 200 {
				t.Fatalf("refusal text %q: want a short valid UTF-8 reason", r.Text)
			}
			// The reason quotes what the client sent, not bytes of its own
			// making (a quote cut inside a character shows as U+FFFD).
			if (strings.ContainsRune(r.Text, utf8.RuneError) || strings.Contains(r.Text, `\ufffd`)) && utf8.Valid(b) && !strings.ContainsRune(string(b), utf8.RuneError) && !strings.Contains(string(b), `\u`) {
				t.Fatalf("refusal text %q has U+FFFD that %q does not", r.Text, b)
			}
			return
		}
		// What decodes is a command NoChat knows, with valid UTF-8 text (the
		// hub refuses invalid UTF-8 before decoding) and a usable cid.
		switch cmd.Type {
		case "send":
			if !ValidCID(cmd.CID) {
				t.Fatalf("decoded cid %q is not valid", cmd.CID)
			}
		case "read":
			if cmd.ID < 1 {
				t.Fatalf("decoded a read of message id %d", cmd.ID)
			}
		case "edit", "delete", "react":
			if cmd.ID < 1 || !ValidCID(cmd.CID) {
				t.Fatalf("decoded a change of message %d with cid %q", cmd.ID, cmd.CID)
			}
		case "nick", "typing":
		default:
			t.Fatalf("decoded unknown type %q", cmd.Type)
		}
		// A room is a room's id: none is the default room, never 0 or less.
		// (A change names its message, whose room the hub looks up.)
		if cmd.Type != "nick" && cmd.Type != "edit" && cmd.Type != "delete" && cmd.Type != "react" && cmd.Room < 1 {
			t.Fatalf("decoded %s in room %d", cmd.Type, cmd.Room)
		}
		if !utf8.ValidString(cmd.Message) || !utf8.ValidString(cmd.User) {
			t.Fatalf("decoded invalid UTF-8: %+v", cmd)
		}
		// The same command, encoded the way clients do, decodes the same.
		var data any
		switch cmd.Type {
		case "send":
			data = map[string]any{"room": cmd.Room, "message": cmd.Message, "cid": cmd.CID, "reply_to": cmd.ReplyTo}
		case "edit":
			data = map[string]any{"id": cmd.ID, "message": cmd.Message, "cid": cmd.CID}
		case "delete":
			data = map[string]any{"id": cmd.ID, "cid": cmd.CID}
		case "react":
			data = map[string]any{"id": cmd.ID, "emoji": cmd.Message, "cid": cmd.CID, "on": cmd.On}
		case "nick":
			data = map[string]string{"user": cmd.User}
		case "read":
			data = map[string]int64{"room": cmd.Room, "id": cmd.ID}
		default:
			data = map[string]int64{"room": cmd.Room}
		}
		again, err := DecodeCommand(encode(cmd.Type, data))
		// On is a pointer: the same when both are nil or point at the same.
		sameOn := (again.On == nil) == (cmd.On == nil) && (cmd.On == nil || *again.On == *cmd.On)
		again.On, cmd.On = nil, nil
		if err != nil || again != cmd || !sameOn {
			t.Fatalf("re-encoded %+v decodes as %+v, %v", cmd, again, err)
		}
	})
}

// A read frame moves a read marker: it must name a room and a message.
func TestDecodeCommandRefusesReadsOfNothing(t *testing.T) {
	for _, frame := range []string{
		`{"type":"read","data":{"room":3,"id":0}}`,
		`{"type":"read","data":{"room":3}}`,
		`{"type":"read"}`,
		`{"type":"read","data":null}`,
		`{"type":"read","data":{"room":3,"id":-1}}`,
		`{"type":"read","data":{"room":-1,"id":5}}`,
		`{"type":"read","data":{"room":"3","id":5}}`,
		`{"type":"read","data":{"room":3,"id":5.5}}`,
		`{"type":"typing","data":{"room":-1}}`,
		`{"type":"send","data":{"room":-1,"message":"x","cid":"c"}}`,
	} {
		cmd, err := DecodeCommand([]byte(frame))
		var r *Refusal
		if !errors.As(err, &r) || r.Code != "bad_request" {
			t.Errorf("%s: decoded %+v, %v; want a bad_request refusal", frame, cmd, err)
		}
	}
	for frame, want := range map[string]Command{
		`{"type":"read","data":{"room":3,"id":5}}`:                 {Type: "read", Room: 3, ID: 5},
		`{"type":"read","data":{"id":5}}`:                          {Type: "read", Room: db.DefaultRoom, ID: 5},
		`{"type":"typing","data":{"room":4}}`:                      {Type: "typing", Room: 4},
		`{"type":"typing"}`:                                        {Type: "typing", Room: db.DefaultRoom},
		`{"type":"send","data":{"room":2,"message":"m","cid":""}}`: {Type: "send", Room: 2, Message: "m"},
	} {
		if cmd, err := DecodeCommand([]byte(frame)); err != nil || cmd != want {
			t.Errorf("%s: decoded %+v, %v; want %+v", frame, cmd, err, want)
		}
	}
}

func FuzzCleanMessage(f *testing.F) {
	for _, s := range []string{
		"hello", "  padded  ", "a\x00b", "one\r\ntwo\rthree", "\x1b[31mred", "tab\tinside",
		"\u0085\u2028\u00a0", "\xff", "é" + strings.Repeat("x", 1999), strings.Repeat("🎉", 2001),
		"Robert'); DROP TABLE messages;--", "<script>alert(1)</script>", "\u202eevil", "",
	} {
		f.Add(s)
	}
	const limit = 2000
	f.Fuzz(func(t *testing.T, s string) {
		out, err := cleanMessage(s, limit)
		if !utf8.ValidString(s) {
			if err != ErrInvalidUTF8 {
				t.Fatalf("invalid UTF-8 %q: got %q, %v, want ErrInvalidUTF8", s, out, err)
			}
			return
		}
		if err != nil {
			var r *Refusal
			if !errors.As(err, &r) || (r != ErrEmpty && r.Code != "too_long") {
				t.Fatalf("%q: error %v, want empty or too_long", s, err)
			}
			return
		}
		if out == "" || utf8.RuneCountInString(out) > limit {
			t.Fatalf("%q cleaned to %d characters", s, utf8.RuneCountInString(out))
		}
		for _, r := range out {
			if unicode.IsControl(r) && r != '\n' && r != '\t' {
				t.Fatalf("%q cleaned to %q, which keeps control character %U", s, out, r)
			}
		}
		if first, _ := utf8.DecodeRuneInString(out); unicode.IsSpace(first) {
			t.Fatalf("%q cleaned to %q, which starts with a space", s, out)
		}
		if last, _ := utf8.DecodeLastRuneInString(out); unicode.IsSpace(last) {
			t.Fatalf("%q cleaned to %q, which ends with a space", s, out)
		}
		if again, err := cleanMessage(out, limit); err != nil || again != out {
			t.Fatalf("cleaning %q twice gives %q, %v: not idempotent", out, again, err)
		}
		// Text with nothing to clean is stored verbatim.
		if clean(s) && out != s {
			t.Fatalf("%q has nothing to clean but became %q", s, out)
		}
	})
}

// clean reports whether s has no control characters besides newline and tab
// and no surrounding whitespace: text cleanMessage must leave alone.
func clean(s string) bool {
	if strings.TrimSpace(s) != s {
		return false
	}
	for _, r := range s {
		if unicode.IsControl(r) && r != '\n' && r != '\t' {
			return false
		}
	}
	return true
}

func FuzzCleanName(f *testing.F) {
	for _, s := range []string{
		"ann", "  Zoë \t the\n great ", "a\x00nn", "\x00", "", "<b>bob</b>", "\xff",
		strings.Repeat("é", 32), strings.Repeat("é", 33), "a\u00a0\u2003b", "guest",
		"A\u200Bnn", "\u202Enna", "ann ❤\ufe0f", "a\ufe0fnn",
	} {
		f.Add(s)
	}
	const limit = 32
	f.Fuzz(func(t *testing.T, s string) {
		out, err := cleanName(s, limit)
		if err != nil {
			if r, ok := err.(*Refusal); !ok || r.Code != "bad_name" {
				t.Fatalf("%q: error %v, want a bad_name refusal", s, err)
			}
			_, invisibleAt := invisibleInName(s)
			if utf8.ValidString(s) && utf8.RuneCountInString(s) <= limit && invisibleAt < 0 {
				t.Fatalf("%q (valid, %d characters, all visible) refused: %v", s, utf8.RuneCountInString(s), err)
			}
			return
		}
		if !utf8.ValidString(out) || out == "" || utf8.RuneCountInString(out) > limit {
			t.Fatalf("%q cleaned to %q", s, out)
		}
		if r, i := invisibleInName(out); i >= 0 {
			t.Fatalf("%q cleaned to %q, which keeps invisible character %U", s, out, r)
		}
		for i, r := range out {
			if unicode.IsControl(r) {
				t.Fatalf("%q cleaned to %q, which keeps control character %U", s, out, r)
			}
			if unicode.IsSpace(r) && (r != ' ' || i == 0 || i == len(out)-1 || strings.Contains(out, "  ")) {
				t.Fatalf("%q cleaned to %q: spaces not collapsed and trimmed", s, out)
			}
		}
		if again, err := cleanName(out, limit); err != nil || again != out {
			t.Fatalf("cleaning %q twice gives %q, %v: not idempotent", out, again, err)
		}
		if strings.Join(strings.Fields(s), " ") == s && clean(s) && s != "" && out != s {
			t.Fatalf("%q has nothing to clean but became %q", s, out)
		}
	})
}

// The encoder must never fail on what a client can put in a frame (encode
// panics if it does): a stored message comes back as a JSON frame whose
// message field is exactly the stored text.
func FuzzEncodeMessageRoundTrips(f *testing.F) {
	f.Add("ann", "hello <b>&</b> \u2028 \"quoted\"")
	f.Fuzz(func(t *testing.T, user, text string) {
		if !utf8.ValidString(user) || !utf8.ValidString(text) {
			return // refused before storing
		}
		fr := encodeMessage(db.Message{ID: 1, User: user, Message: text, Timestamp: 1})
		var got struct {
			Type string
			Data struct{ User, Message string }
		}
		if err := json.Unmarshal(fr.v1, &got); err != nil {
			t.Fatalf("frame %q: %v", fr.v1, err)
		}
		if got.Type != "message" || got.Data.User != user || got.Data.Message != text {
			t.Fatalf("frame %q carries %+v, want %q from %q", fr.v1, got, text, user)
		}
		if string(fr.echo) != text {
			t.Fatalf("echo frame %q, want %q", fr.echo, text)
		}
	})
}

// NameKey never panics, refuses only with bad_name, and gives one key to
// the spellings of a name: its key is itself a spelling of the name (the
// key of a key is the key), and composing, decomposing or compatibility
// mapping the name does not change its key.
func FuzzNameKey(f *testing.F) {
	for _, s := range []string{
		"Ann", "ann", "\u0410nn", "A\u200Bnn", "\u202Enna", "b0b", "BOB", "Zoë", "Zoe\u0308",
		"ΟΣ", "Straße", "Ａｎｎ", "李小龍", "Ann ❤\ufe0f", "Ann 👩\u200D💻", "ǅ", "m", "rn", "", " ", "\xff",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		key, err := NameKey(s)
		if err != nil {
			if r, ok := err.(*Refusal); !ok || r.Code != "bad_name" || r.Text == "" {
				t.Fatalf("%q: error %v, want a bad_name refusal", s, err)
			}
			return
		}
		if key == "" {
			t.Fatalf("%q: empty key without a refusal", s)
		}
		if again, err := NameKey(key); err == nil && again != key {
			t.Fatalf("%q: key %q has key %q: not idempotent", s, key, again)
		}
		for form, spelling := range map[string]string{"NFC": norm.NFC.String(s), "NFD": norm.NFD.String(s), "NFKC": norm.NFKC.String(s)} {
			if k, err := NameKey(spelling); err == nil && k != key {
				t.Fatalf("%q: key %q, but its %s %q has key %q", s, key, form, spelling, k)
			}
		}
	})
}
