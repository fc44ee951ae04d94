package chat_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"nochat/chat"
)

// isRefusal reports whether err is a refusal with the given code.
func isRefusal(err error, code string) bool {
	var r *chat.Refusal
	return errors.As(err, &r) && r.Code == code
}

func TestNameRefusalSaysTheLimitInForce(t *testing.T) {
	r := newRoom(t, chat.Options{MaxNameLen: 10})
	_, err := r.hub.Send(context.Background(), strings.Repeat("n", 11), "hi")
	if !isRefusal(err, "bad_name") || !strings.Contains(err.Error(), "1 to 10 characters") {
		t.Fatalf("a name of 11 characters with a limit of 10: %v, want a bad_name refusal saying 1 to 10", err)
	}
	c := r.dial(t, "nochat.v1", "")
	c.send(`{"type":"nick","data":{"user":"` + strings.Repeat("n", 11) + `"}}`)
	if e := c.expect("error"); e.Code != "bad_name" || !strings.Contains(e.Message, "1 to 10 characters") {
		t.Fatalf("nick of 11 characters: %+v, want bad_name saying 1 to 10", e)
	}
	if _, err := r.hub.Send(context.Background(), strings.Repeat("n", 10), "hi"); err != nil {
		t.Fatalf("a name of 10 characters: %v", err)
	}
}

// JSON whose escapes name half a surrogate pair is refused before
// decoding, which would turn it into U+FFFD; a whole pair, any case, and
// an escaped backslash before "ud800" are text.
func TestValidJSONText(t *testing.T) {
	for _, tt := range []struct {
		in   string
		want bool
	}{
		{`{"message":"hi"}`, true},
		{`{"message":"\ud83d\ude00"}`, true},
		{`{"message":"\uD83D\uDE00 and \u00e9"}`, true},
		{`{"message":"\\ud800"}`, true},
		{`{"message":"\\\ud83d\ude00"}`, true},
		{`{"message":"a\ud800b"}`, false},
		{`{"message":"\udc00"}`, false},
		{`{"message":"\ud800"}`, false},
		{`{"message":"\ud83d\u0041"}`, false},
		{`{"message":"\ud83d\ud83d"}`, false},
		{`{"message":"\ud83d\\ude00"}`, false},
		{`{"message":"\\\ud800"}`, false},
		{"{\"message\":\"\xff\"}", false},
		{`{"message":"\u12"}`, true}, // not JSON: the decoder refuses it
	} {
		if got := chat.ValidJSONText([]byte(tt.in)); got != tt.want {
			t.Errorf("ValidJSONText(%s) = %v, want %v", tt.in, got, tt.want)
		}
	}
}
