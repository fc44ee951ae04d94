package chat

import (
	"bytes"
	"encoding/json"
	"slices"
	"strings"
	"unicode/utf8"

	"nochat/db"
)

// Protocol is a WebSocket subprotocol NoChat speaks.
type Protocol string

// The subprotocols, in order of preference when a client offers both.
const (
	// V1 is NoChat's own: JSON frames {"type": ..., "data": {...}} with ids,
	// acks, errors and presence.
	V1 Protocol = "nochat.v1"
	// Echo is the Node.js tutorial's: plain text in, plain text out.
	Echo Protocol = "echo-protocol"
)

// Protocols lists the subprotocols NoChat accepts, preferred first.
var Protocols = []string{string(V1), string(Echo)}

// envelope is the nochat.v1 frame, in the tutorial's {type, data} shape.
type envelope struct {
	Type string          `json:"type"`
	Data json.RawMessage `json:"data"`
}

type outFrame struct {
	Type string `json:"type"`
	Data any    `json:"data"`
}

// Client → server payloads.
type (
	sendData struct {
		Room    int64   `json:"room"` // 0 or absent: the default room
		Message *string `json:"message"`
		CID     string  `json:"cid"`
		ReplyTo int64   `json:"reply_to"` // the message it answers; 0: none
	}
	// roomRef is typing's and read's data: a room, and for read the
	// newest message id read there.
	roomRef struct {
		Room int64 `json:"room"`
		ID   int64 `json:"id"`
	}
	nickData struct {
		User *string `json:"user"`
	}
	// changeData is edit's, delete's and react's data: the message, and
	// the new text or the emoji.
	changeData struct {
		ID      int64   `json:"id"`
		Message *string `json:"message"`
		Emoji   *string `json:"emoji"`
		On      *bool   `json:"on"`
		CID     string  `json:"cid"`
	}
)

// Server → client payloads.
type (
	// whoData is whom a session speaks for, as hello and presence show it.
	whoData struct {
		UserID *int64 `json:"user_id"` // null for a guest
		Role   string `json:"role"`    // "admin", "member" or "bot"; "guest" for a guest
		Guest  bool   `json:"guest"`
	}
	helloData struct {
		Session string `json:"session"`
		User    string `json:"user"`
		whoData
		LatestID int64 `json:"latest_id"`
		// Rooms is the rooms this connection receives messages of.
		Rooms []int64 `json:"rooms"`
	}
	ackData struct {
		CID string `json:"cid"`
		ID  int64  `json:"id"`
	}
	errorData struct {
		Code    string `json:"code"`
		Message string `json:"message"`
		CID     string `json:"cid,omitempty"`
	}
	presenceData struct {
		Online int              `json:"online"` // connections, the tutorial-era count
		Users  []string         `json:"users"`  // each name once
		People []presencePerson `json:"people"` // each person once
	}
	// presencePerson is one entry of presence: an account with how many
	// of its sessions are open, or a guest name with how many connections
	// go by it (see presenceKey).
	presencePerson struct {
		User string `json:"user"`
		whoData
		Devices int `json:"devices"` // open connections: tabs, devices
	}
	typingData struct {
		User   string `json:"user"`
		UserID *int64 `json:"user_id"` // null for a guest
		Room   int64  `json:"room"`
	}
	// membershipData is the membership frame: user joined or left room.
	// Info is the room, for a page that did not have it in its list.
	membershipData struct {
		Room   int64    `json:"room"`
		UserID int64    `json:"user_id"`
		User   string   `json:"user"`
		Joined bool     `json:"joined"`
		Info   *db.Room `json:"info"`
	}
	// roomData is the room frame: a room was created, updated (renamed, a
	// new topic or rules) or archived.
	roomData struct {
		db.Room
		Event string `json:"event"`
	}
	// readData is the read frame: the person read room up to last_read
	// in another tab.
	readData struct {
		Room     int64 `json:"room"`
		LastRead int64 `json:"last_read"`
	}
	// deletedData names a deleted message. A deletion in the log (by its
	// author, a room's manager, an admin, or a ban's, one for each of the
	// person's messages) carries its event id and room, and a page that
	// was away is handed it when it resumes. A ban's deletions in one
	// command, as a cluster's log written before each was an event of its
	// own holds them, come as ids, up to maxDeletedIDs a frame, its first
	// in id, with no event.
	deletedData struct {
		Event int64   `json:"event,omitempty"`
		ID    int64   `json:"id"`
		Room  int64   `json:"room,omitempty"`
		IDs   []int64 `json:"ids,omitempty"`
	}
	// personData is the person frame: an account's name changed. Clients
	// show the new name wherever the account appears: their own header,
	// presence, and every message with this user_id.
	personData struct {
		UserID int64  `json:"user_id"`
		User   string `json:"user"`
	}
)

// roleGuest is the role hello and presence give a guest.
const roleGuest = "guest"

// who is whom c speaks for, as hello and presence show it.
func (c *client) who() whoData {
	if c.userID == 0 {
		return whoData{Role: roleGuest, Guest: true}
	}
	id := c.userID
	return whoData{UserID: &id, Role: c.roleNow()}
}

func (p presencePerson) id() int64 {
	if p.UserID == nil {
		return 0
	}
	return *p.UserID
}

// Command is a decoded nochat.v1 client frame.
type Command struct {
	Type    string // "send", "nick", "typing", "read", "edit", "delete" or "react"
	Room    int64  // send, typing, read: the room (DefaultRoom if none)
	Message string // send, edit: the text; react: the emoji
	CID     string // send, and optional for edit, delete and react
	User    string // nick
	ID      int64  // read: the newest message read; edit, delete, react: the message
	On      *bool  // react: add (true) or take back (false); nil toggles
	ReplyTo int64  // send: the message it answers, 0 for none
}

var errBadFrame = &Refusal{"bad_request", "frame must be JSON {\"type\": ..., \"data\": {...}}"}

// DecodeCommand parses one nochat.v1 client frame. It checks the shape only;
// the message and name rules are applied by the hub.
func DecodeCommand(b []byte) (Command, error) {
	var env envelope
	if err := json.Unmarshal(b, &env); err != nil || env.Type == "" {
		return Command{}, errBadFrame
	}
	data := env.Data
	if len(data) == 0 || string(data) == "null" {
		data = []byte("{}")
	}
	switch env.Type {
	case "send":
		var d sendData
		if err := json.Unmarshal(data, &d); err != nil {
			return Command{}, &Refusal{"bad_request", "send: data must be {\"message\": string, \"cid\": string}"}
		}
		if d.Message == nil {
			return Command{}, &Refusal{"bad_request", "send: message is missing"}
		}
		if !ValidCID(d.CID) {
			return Command{}, ErrBadCID
		}
		if d.Room < 0 {
			return Command{}, &Refusal{"bad_request", "send: room must be a room's id"}
		}
		if d.ReplyTo < 0 {
			return Command{}, &Refusal{"bad_request", "send: reply_to must be a message's id"}
		}
		return Command{Type: "send", Room: roomOr(d.Room), Message: *d.Message, CID: d.CID, ReplyTo: d.ReplyTo}, nil
	case "nick":
		var d nickData
		if err := json.Unmarshal(data, &d); err != nil || d.User == nil {
			return Command{}, &Refusal{"bad_request", "nick: data must be {\"user\": string}"}
		}
		return Command{Type: "nick", User: *d.User}, nil
	case "typing", "read":
		var d roomRef
		if err := json.Unmarshal(data, &d); err != nil || d.Room < 0 || d.ID < 0 {
			shape := `{"room": id}`
			if env.Type == "read" {
				shape = `{"room": id, "id": message id}`
			}
			return Command{}, &Refusal{"bad_request", env.Type + ": data must be " + shape}
		}
		if env.Type == "read" && d.ID == 0 {
			return Command{}, &Refusal{"bad_request", "read: id is missing"}
		}
		cmd := Command{Type: env.Type, Room: roomOr(d.Room)}
		if env.Type == "read" {
			cmd.ID = d.ID // typing has no message
		}
		return cmd, nil
	case "edit", "delete", "react":
		var d changeData
		shape := map[string]string{
			"edit":   `{"id": message id, "message": string}`,
			"delete": `{"id": message id}`,
			"react":  `{"id": message id, "emoji": string}`,
		}[env.Type]
		if err := json.Unmarshal(data, &d); err != nil || d.ID <= 0 ||
			env.Type == "edit" && d.Message == nil || env.Type == "react" && d.Emoji == nil {
			return Command{}, &Refusal{"bad_request", env.Type + ": data must be " + shape}
		}
		if !ValidCID(d.CID) {
			return Command{}, ErrBadCID
		}
		cmd := Command{Type: env.Type, ID: d.ID, CID: d.CID, On: d.On}
		switch env.Type {
		case "edit":
			cmd.Message = *d.Message
		case "react":
			cmd.Message = *d.Emoji
		}
		return cmd, nil
	}
	return Command{}, &Refusal{"bad_request", "unknown type " + quote(env.Type) + ": want send, nick, typing, read, edit, delete or react"}
}

// roomOr is room, or the default room for none (a client from before rooms).
func roomOr(room int64) int64 {
	if room == 0 {
		return db.DefaultRoom
	}
	return room
}

// quote shows a client's string in a reason, as JSON: at most 32 bytes
// of it, and at most maxQuoted bytes quoted.
func quote(s string) string {
	// A control character quotes as six bytes (\u0001): fewer of such
	// bytes are quoted, so that the quote stays short too.
	for n := 32; ; n /= 2 {
		var b strings.Builder
		enc := json.NewEncoder(&b)
		enc.SetEscapeHTML(false) // & as itself, not six bytes of \u0026
		enc.Encode(Cut(s, n))
		if q := strings.TrimSuffix(b.String(), "\n"); len(q) <= maxQuoted || n == 0 {
			return q
		}
	}
}

// maxQuoted bounds a quote of what a client sent, in bytes.
const maxQuoted = 64

// Cut shortens s to at most n bytes, and marks that it did, at a character
// boundary: cut inside one, it would show as \ufffd garbage, or be invalid
// UTF-8 in the database. Other packages use it for displays and error-log
// subjects.
func Cut(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}

// encode marshals a server frame. The payloads are plain structs of strings
// and numbers, which always marshal. <, > and & stay themselves: a frame
// is read by JSON.parse, never as HTML, and escaped (\u003c, six bytes for
// one) a message's HTML, and any text of quotes or code, took up to twice
// the bytes, for every reader.
func encode(typ string, data any) []byte {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(outFrame{Type: typ, Data: data}); err != nil {
		panic("chat: encode " + typ + ": " + err.Error())
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n"))
}

func errorFrame(r *Refusal, cid string) []byte {
	return encode("error", errorData{Code: r.Code, Message: r.Text, CID: cid})
}

// frames is one entry of the log (a message, or a change to one) encoded
// once per protocol, shared by every recipient: fan-out costs no encoding
// per client. A change has no echo-protocol form: the tutorial's clients
// get messages as text, and nothing else.
type frames struct {
	id     int64
	room   int64
	msg    int64 // the message: its own id, or the one the change is to
	quote  int64 // the message a reply quotes, 0 for none: its deletion re-encodes
	userID int64 // a message's sender's account, 0 for a guest or a change: a rename re-encodes
	// The payloads, set with setV1 and setEcho: each lies within its whole
	// WebSocket frame, v1Wire and echoWire, which a direct write sends as
	// it is (coalesced.writeDirect).
	v1, v1Wire     []byte
	echo, echoWire []byte
}

func (f *frames) setV1(b []byte)   { f.v1Wire, f.v1 = textFrame(b) }
func (f *frames) setEcho(b []byte) { f.echoWire, f.echo = textFrame(b) }

func encodeMessage(m db.Message) *frames {
	m.HTML = MessageHTML(m.Message, m.Mentions)
	f := &frames{id: m.ID, room: roomOr(m.Room), msg: m.ID}
	f.setV1(encode("message", m))
	f.setEcho([]byte(echoText(m)))
	if m.UserID != nil {
		f.userID = *m.UserID
	}
	if m.ReplyTo != nil {
		f.quote = m.ReplyTo.ID
	}
	return f
}

// echoText is m as the tutorial's clients read it: its text; for a file
// sent with no text, the file's name, so that they see that something came.
func echoText(m db.Message) string {
	if m.Message == "" && m.File != nil {
		return m.File.Name
	}
	return m.Message
}

// Server frames of changes: edited, deleted, reacted. Event is the change's
// id in the log (where a client resumes from), ID the message's.
type (
	editedData struct {
		Event    int64  `json:"event"`
		ID       int64  `json:"id"`
		Room     int64  `json:"room"`
		Message  string `json:"message"`
		HTML     string `json:"html"`
		EditedAt int64  `json:"edited_at"`
		UserID   *int64 `json:"user_id"`
	}
	reactedData struct {
		Event     int64         `json:"event"`
		ID        int64         `json:"id"`
		Room      int64         `json:"room"`
		UserID    *int64        `json:"user_id"`
		Emoji     string        `json:"emoji"`
		On        bool          `json:"on"`
		Reactions []db.Reaction `json:"reactions"` // the message's, after the change
	}
)

func encodeChange(ch db.Change) *frames {
	f := &frames{id: ch.ID, room: ch.Room, msg: ch.Message}
	switch ch.Kind {
	case db.Edit:
		f.setV1(encode("edited", editedData{Event: ch.ID, ID: ch.Message, Room: ch.Room, Message: ch.Text, HTML: MessageHTML(ch.Text, ch.Mentions), EditedAt: ch.EditedAt, UserID: ch.UserID}))
	case db.Delete:
		f.setV1(encode("deleted", deletedData{Event: ch.ID, ID: ch.Message, Room: ch.Room}))
	case db.React:
		rs := ch.Reactions
		if rs == nil {
			rs = []db.Reaction{}
		}
		f.setV1(encode("reacted", reactedData{Event: ch.ID, ID: ch.Message, Room: ch.Room, UserID: ch.UserID, Emoji: ch.Emoji, On: ch.On, Reactions: rs}))
	default:
		panic("chat: encode a change of kind " + string(ch.Kind))
	}
	return f
}

// encodeEntry encodes an entry read back from the log.
func encodeEntry(e db.Entry) *frames {
	if e.Change != nil {
		return encodeChange(*e.Change)
	}
	return encodeMessage(*e.Message)
}

// renamed returns f with its sender called name on nochat.v1; the echo
// frame, the text alone, is shared.
func (f *frames) renamed(name string) *frames {
	return f.reencoded(func(m *db.Message) { m.User = name })
}

// quoteDeleted returns f, a reply, saying that what it quotes is deleted.
func (f *frames) quoteDeleted() *frames {
	return f.reencoded(func(m *db.Message) { m.ReplyTo = &db.Quote{ID: f.quote, Deleted: true} })
}

// reencoded returns the message frame f with change made to its message.
func (f *frames) reencoded(change func(*db.Message)) *frames {
	var env struct {
		Data db.Message `json:"data"`
	}
	if err := json.Unmarshal(f.v1, &env); err != nil {
		panic("chat: decode a message frame encode made: " + err.Error())
	}
	change(&env.Data)
	g := *f
	g.setV1(encode("message", env.Data))
	return &g
}

func (f *frames) size() int { return len(f.v1) + len(f.echo) }

func (f *frames) forProtocol(p Protocol) []byte {
	if p == Echo {
		return f.echo
	}
	return f.v1
}

// wire is forProtocol's frame whole, header and all; nil when f was made
// without one.
func (f *frames) wire(p Protocol) []byte {
	if p == Echo {
		return f.echoWire
	}
	return f.v1Wire
}

// roomIDs lists the rooms c sees, in id order.
func (c *client) roomIDs() []int64 {
	set := c.rooms.Load()
	if set == nil {
		return []int64{}
	}
	ids := make([]int64, 0, len(*set))
	for id := range *set {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids
}
