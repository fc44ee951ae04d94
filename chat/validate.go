package chat

import (
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Refusal is why a message, a name or a frame was not accepted. Its Code is
// what nochat.v1 clients see in an error frame; its Text is for people.
type Refusal struct {
	Code string
	Text string
}

func (r *Refusal) Error() string { return r.Text }

// Refusals a sender can get. Each is an error frame on nochat.v1 and an HTTP
// 400 (or 503) with a JSON reason on REST.
var (
	ErrEmpty       = &Refusal{"empty", "message is empty"}
	ErrInvalidUTF8 = &Refusal{"invalid_utf8", "message is not valid UTF-8"}
	ErrBadCID      = &Refusal{"bad_request", "cid must be at most 64 printable ASCII characters"}
	ErrBinary      = &Refusal{"binary_unsupported", "binary frames are not supported: send text"}
	ErrStore       = &Refusal{"store_failed", "the message could not be stored; try again"}
	ErrShutdown    = &Refusal{"unavailable", "the server is shutting down; reconnect shortly"}
	// ErrNotShared: on a cluster, a room or an account one node made
	// alone, before the cluster shared rooms and accounts, takes no
	// messages (db.ErrNotReplicated).
	ErrNotShared = &Refusal{"not_shared", "this chat runs on several servers, and this room or account was made on one of them alone, before they shared rooms and accounts: it takes no messages"}
	// ErrUnavailable: a cluster node cut off from most of the others
	// cannot have a message confirmed, so it refuses rather than accept it.
	ErrUnavailable = &Refusal{"unavailable", "too few of the chat's servers are reachable to store messages; try again shortly"}
	ErrRateLimited = &Refusal{"rate_limited", "you are sending too fast; wait a moment"}
	ErrCIDReused   = &Refusal{"cid_reused", "this cid was used for another message or change: give each new one a new cid"}
	// ErrUnconfirmed is a REST send whose sender stopped waiting after it
	// was queued: it is stored, or is about to be; a retry with the same
	// Idempotency-Key tells which without storing it twice.
	ErrUnconfirmed = &Refusal{"unconfirmed", "the message was queued but not confirmed, so it may be stored: a send with an Idempotency-Key can be sent again with the same key without being stored twice"}
)

// errBadName refuses a name over the limit, saying the limit.
func errBadName(limit int) *Refusal {
	return &Refusal{"bad_name", "name must be 1 to " + strconv.Itoa(limit) + " characters"}
}

// errNameUTF8 refuses a name that is not text.
var errNameUTF8 = &Refusal{"bad_name", "name is not valid UTF-8"}

func errTooLong(limit int) *Refusal {
	return &Refusal{"too_long", "message is longer than " + strconv.Itoa(limit) + " characters"}
}

// DefaultUser is the name of a client that has not chosen one.
const DefaultUser = "guest"

// cleanMessage normalises a chat line: line endings become \n, control
// characters other than newline and tab are removed (they have no business
// in a chat line and NUL breaks some clients), surrounding whitespace is
// trimmed. It refuses invalid UTF-8, empty lines and lines over limit
// characters (counted after cleaning, as the reader would count them).
func cleanMessage(s string, limit int) (string, error) {
	if !utf8.ValidString(s) {
		return "", ErrInvalidUTF8
	}
	s = strings.ReplaceAll(s, "\r\n", "\n")
	s = strings.Map(func(r rune) rune {
		if r == '\n' || r == '\t' {
			return r
		}
		if r == '\r' {
			return '\n'
		}
		if unicode.IsControl(r) {
			return -1
		}
		return r
	}, s)
	s = strings.TrimSpace(s)
	if s == "" {
		return "", ErrEmpty
	}
	if utf8.RuneCountInString(s) > limit {
		return "", errTooLong(limit)
	}
	return s, nil
}

// CleanName is cleanName, for a name the handlers take that is not a
// sender's (the guest's name an address is banned for).
func CleanName(s string, limit int) (string, error) { return cleanName(s, limit) }

// cleanName normalises a user name: control characters removed, runs of
// whitespace collapsed to one space, trimmed. An empty name is the default
// user; a name over limit characters is refused, and so is a name with an
// invisible or bidi control character (see invisibleInName): those are
// refused, not removed, so that nobody is silently given a name other than
// the one they typed, and "A\u200Bnn" can never pass for "Ann".
func cleanName(s string, limit int) (string, error) {
	if !utf8.ValidString(s) {
		return "", errNameUTF8
	}
	if r, i := invisibleInName(s); i >= 0 {
		return "", errInvisibleInName(r)
	}
	// Control characters are removed, not taken for spaces: "a\x00nn" is
	// "ann", as in messages. Tab, newline and CR are both; they are spaces.
	s = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) && !unicode.IsSpace(r) {
			return -1
		}
		return r
	}, s)
	s = strings.Join(strings.Fields(s), " ")
	if s == "" {
		return DefaultUser, nil
	}
	if utf8.RuneCountInString(s) > limit {
		return "", errBadName(limit)
	}
	return s, nil
}

// ValidCID reports whether s may be a client id (a nochat.v1 cid or a REST
// Idempotency-Key): at most 64 printable ASCII characters, no spaces, as the
// ids browsers make (UUIDs) and anything similar; "" is no id.
func ValidCID(s string) bool {
	if len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] <= ' ' || s[i] > '~' {
			return false
		}
	}
	return true
}

// CleanGuestMessage cleans a guest's name and message by the rules a live
// send follows (control characters out, spaces folded, at most maxName
// and maxMessage characters): `nochat import -tutorial` holds an imported
// history to them, so it shows as if sent here.
func CleanGuestMessage(user, message string, maxName, maxMessage int) (string, string, error) {
	user, err := cleanName(user, maxName)
	if err != nil {
		return "", "", err
	}
	message, err = cleanMessage(message, maxMessage)
	if err != nil {
		return "", "", err
	}
	return user, message, nil
}

// ValidJSONText reports whether b, JSON, is valid UTF-8 and none of its
// \u escapes names half a surrogate pair on its own ("\ud800"):
// encoding/json quietly turns either into U+FFFD, which would store a
// text the sender did not write. Checked before decoding.
func ValidJSONText(b []byte) bool {
	if !utf8.Valid(b) {
		return false
	}
	for i := 0; i < len(b); i++ {
		if b[i] != '\\' {
			continue
		}
		i++ // the escaped character: `\\u` is a backslash, then a u
		if i >= len(b) || b[i] != 'u' {
			continue
		}
		r, ok := hex4(b[i+1:])
		if !ok {
			continue // not JSON: the decoder refuses it
		}
		i += 4
		switch {
		case r >= 0xDC00 && r <= 0xDFFF:
			return false // a low half first
		case r >= 0xD800 && r <= 0xDBFF:
			// A high half: its low half must follow, escaped.
			if i+6 >= len(b) || b[i+1] != '\\' || b[i+2] != 'u' {
				return false
			}
			if lo, ok := hex4(b[i+3:]); !ok || lo < 0xDC00 || lo > 0xDFFF {
				return false
			}
			i += 6
		}
	}
	return true
}

// hex4 reads four hex digits at the start of b.
func hex4(b []byte) (rune, bool) {
	if len(b) < 4 {
		return 0, false
	}
	var r rune
	for _, c := range b[:4] {
		var d byte
		switch {
		case '0' <= c && c <= '9':
			d = c - '0'
		case 'a' <= c && c <= 'f':
			d = c - 'a' + 10
		case 'A' <= c && c <= 'F':
			d = c - 'A' + 10
		default:
			return 0, false
		}
		r = r<<4 | rune(d)
	}
	return r, true
}
