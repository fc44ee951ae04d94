package db

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"
)

// Changes to stored messages: an edit, a deletion, a reaction. Each is an
// event of the one ordered log, like a message: the Writer stores it in the
// batch it came in, in submission order, with an id from the messages'
// sequence, and hands it on after the commit (Stored.Change). The messages
// and reactions tables hold the current state; the events table what a
// client that was away replays (Store.LogAfter).

// ChangeKind is what a change does.
type ChangeKind string

// The changes.
const (
	Edit   ChangeKind = "edit"   // new text for the message
	Delete ChangeKind = "delete" // the message is gone
	React  ChangeKind = "react"  // a reaction added (On) or taken back
)

// Refusals of a change, found in its transaction against the message as
// stored: the draft's other checks (room access, text, emoji) are the
// caller's.
var (
	// ErrNoMessage: no message with the target id in the draft's room
	// (never stored, deleted, or of another room).
	ErrNoMessage = errors.New("no such message")
	// ErrNotAuthor: an edit, or a deletion without Moderator, of a message
	// the draft's account did not write.
	ErrNotAuthor = errors.New("not the author")
	// ErrEditWindow: an edit of a message stored before Draft.EditSince.
	ErrEditWindow = errors.New("too old to edit")
	// ErrTooManyReactions: the message has MaxReactionKinds emoji already.
	ErrTooManyReactions = errors.New("too many kinds of reaction")
)

// MaxReactionKinds is how many different emoji one message may carry.
const MaxReactionKinds = 20

// Change is a stored change to a message: what clients are told, live and
// on resume.
type Change struct {
	ID        int64      `json:"event"` // its id in the log
	Kind      ChangeKind `json:"-"`
	Room      int64      `json:"room"`
	Message   int64      `json:"id"` // the message it changes
	UserID    *int64     `json:"user_id"`
	Timestamp int64      `json:"timestamp"`
	// Edit: the new text, and when (Timestamp) as edited_at.
	Text     string `json:"message,omitempty"`
	EditedAt int64  `json:"edited_at,omitempty"`
	// React: the emoji, whether it was added or taken back, and the
	// message's reactions after the change.
	Emoji     string     `json:"emoji,omitempty"`
	On        bool       `json:"on,omitempty"`
	Reactions []Reaction `json:"reactions,omitempty"`
	// Edit: the new text's mentions.
	Mentions []Mention `json:"mentions,omitempty"`
}

// Reaction is one emoji on a message and who put it there, in the order
// they did.
type Reaction struct {
	Emoji   string   `json:"emoji"`
	Count   int      `json:"count"`
	UserIDs []int64  `json:"user_ids"`
	Users   []string `json:"users"`
}

// Entry is one entry of the log: a message in its current state, or a
// change.
type Entry struct {
	Message *Message
	Change  *Change
}

// ID is the entry's id in the log.
func (e Entry) ID() int64 {
	if e.Change != nil {
		return e.Change.ID
	}
	return e.Message.ID
}

// applyChange stores one change draft in tx, at time now, and fills in its
// outcome: the change, or a refusal in Refused (the rest of the batch goes
// on). It returns how many messages it removed. An edit to the same text
// and a reaction already as asked change nothing: no event, no id.
func (s *Store) applyChange(ctx context.Context, tx *sql.Tx, d Draft, now int64, out *Stored) (removed int64, err error) {
	// A change sent again under its cid: chat answers most before they
	// reach the log (ChangeUnderCID); this catches one that came while the
	// first was still on its way. Not on a cluster's log, whose nodes may
	// run versions that apply it without this look, and would then differ.
	if d.CID != "" && d.UserID != 0 && s.shared == nil {
		row := tx.StmtContext(ctx, s.change.named).QueryRowContext(ctx, s.namedArgs(d, now)...)
		named, err := changeNamed(row, d, out)
		if named || err != nil {
			return 0, err
		}
	}
	var (
		m      Message
		author sql.NullInt64
		edited sql.NullInt64
	)
	var reply sql.NullInt64
	err = tx.StmtContext(ctx, s.change.get).QueryRowContext(ctx, d.Target).
		Scan(&m.ID, &m.User, &m.Message, &m.Timestamp, &author, &m.Room, &edited, &reply, &m.Bot, &m.Avatar)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		out.Refused = ErrNoMessage
		return 0, nil
	case err != nil:
		return 0, err
	case m.Room != d.roomOr():
		out.Refused = ErrNoMessage
		return 0, nil
	}
	m.setState(author, edited, reply)
	mine := d.UserID != 0 && author.Int64 == d.UserID
	ch := Change{Kind: d.Change, Room: m.Room, Message: m.ID, UserID: userID(d.UserID), Timestamp: now}
	body, on := "", false
	switch d.Change {
	case Edit:
		switch {
		case !mine:
			out.Refused = ErrNotAuthor
			return 0, nil
		case m.Timestamp < d.EditSince:
			out.Refused = ErrEditWindow
			return 0, nil
		case m.Message == d.Message:
			out.Message = m
			return 0, nil
		}
		if _, err := tx.ExecContext(ctx, "UPDATE messages SET message = ?, edited = ? WHERE id = ?", d.Message, now, m.ID); err != nil {
			return 0, err
		}
		// The text's mentions are the new text's.
		if _, err := tx.ExecContext(ctx, "DELETE FROM mentions WHERE message_id = ?", m.ID); err != nil {
			return 0, err
		}
		if err := insertMentions(ctx, tx, m.ID, d.Mentions); err != nil {
			return 0, err
		}
		body, ch.Text, ch.EditedAt, ch.Mentions = d.Message, d.Message, now, d.Mentions
		m.Message, m.EditedAt, m.Mentions = d.Message, &now, d.Mentions
	case Delete:
		if !mine && !d.Moderator {
			out.Refused = ErrNotAuthor
			return 0, nil
		}
		if _, err := tx.StmtContext(ctx, s.change.delete).ExecContext(ctx, m.ID); err != nil {
			return 0, err
		}
		removed = 1
	case React:
		var had bool
		if err := tx.QueryRowContext(ctx, "SELECT EXISTS (SELECT 1 FROM reactions WHERE message_id = ? AND emoji = ? AND user_id = ?)",
			m.ID, d.Message, d.UserID).Scan(&had); err != nil {
			return 0, err
		}
		on = !had
		if d.On != nil {
			on = *d.On
		}
		if on == had {
			out.Message = m
			return 0, nil
		}
		if on {
			var kinds int
			var known bool
			if err := tx.QueryRowContext(ctx, "SELECT count(DISTINCT emoji), ifnull(max(emoji = ?), 0) FROM reactions WHERE message_id = ?",
				d.Message, m.ID).Scan(&kinds, &known); err != nil {
				return 0, err
			}
			if !known && kinds >= MaxReactionKinds {
				out.Refused = ErrTooManyReactions
				return 0, nil
			}
			// created is the reaction's id in the log: the order people
			// reacted, also within one millisecond.
			if ch.ID, err = s.nextID(ctx, tx, d.ID); err != nil {
				return 0, err
			}
			_, err = tx.ExecContext(ctx, "INSERT INTO reactions (message_id, emoji, user_id, created) VALUES (?, ?, ?, ?)", m.ID, d.Message, d.UserID, ch.ID)
		} else {
			_, err = tx.ExecContext(ctx, "DELETE FROM reactions WHERE message_id = ? AND emoji = ? AND user_id = ?", m.ID, d.Message, d.UserID)
		}
		if err != nil {
			return 0, err
		}
		body, ch.Emoji, ch.On = d.Message, d.Message, on
		if ch.Reactions, err = reactionsOf(ctx, tx, m.ID); err != nil {
			return 0, err
		}
		m.Reactions = ch.Reactions
	default:
		return 0, fmt.Errorf("unknown change %q", d.Change)
	}
	if ch.ID == 0 {
		if ch.ID, err = s.nextID(ctx, tx, d.ID); err != nil {
			return 0, err
		}
	}
	if _, err := tx.StmtContext(ctx, s.change.event).ExecContext(ctx, ch.ID, ch.Kind, ch.Room, ch.Message, nullID(d.UserID), body, on, now, nullText(d.CID)); err != nil {
		return 0, err
	}
	out.Message, out.Change = m, &ch
	return removed, nil
}

// namedSQL finds the change an account made under a cid since a time.
const namedSQL = `SELECT id, kind, room_id, message_id, body, "on" FROM events WHERE user_id = ? AND cid = ? AND timestamp >= ?`

// ChangeUnderCID reports whether d, a change draft with a cid, is a change
// its account sent before under that cid, within the de-duplication
// window: a copy sent again after a reconnect lost the first one's ack.
// If so, the outcome is that change again (Duplicate, Change its id, kind,
// room and message), or a refusal (Reused) when the cid named another
// change. Chat asks before anything else, since by the time a copy comes
// the message may be gone, or too old to edit, which would refuse the copy
// of a change that was made. A change that changed nothing (an edit to
// the same text, a reaction already as asked) kept no event, and its cid
// names nothing.
func (s *Store) ChangeUnderCID(ctx context.Context, d Draft) (Stored, bool, error) {
	var out Stored
	row := s.read.QueryRowContext(ctx, namedSQL, s.namedArgs(d, s.now().UnixMilli())...)
	named, err := changeNamed(row, d, &out)
	if err != nil {
		return Stored{}, false, fmt.Errorf("change under cid: %w", err)
	}
	return out, named, nil
}

// namedArgs are namedSQL's arguments for d at time now: its account, its
// cid, and the start of the de-duplication window.
func (s *Store) namedArgs(d Draft, now int64) []any {
	return []any{d.UserID, d.CID, now - s.dedupWindow.Milliseconds()}
}

// changeNamed reads row, namedSQL's answer for d: the change d's cid
// names, if its account made one under it within the de-duplication
// window. Found, d's outcome is that change again, nothing made, or
// Reused when the cid named another change (another kind, message, text
// or emoji, or a reaction's other way); named says whether it was found.
func changeNamed(row *sql.Row, d Draft, out *Stored) (named bool, err error) {
	var (
		ch   Change
		body string
		on   bool
	)
	err = row.Scan(&ch.ID, &ch.Kind, &ch.Room, &ch.Message, &body, &on)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("find cid: %w", err)
	}
	same := ch.Kind == d.Change && ch.Message == d.Target
	if d.Change == Edit || d.Change == React {
		same = same && body == d.Message
	}
	if d.Change == React && d.On != nil {
		same = same && on == *d.On
	}
	if !same {
		out.Reused = true
		return true, nil
	}
	ch.UserID = userID(d.UserID)
	out.Duplicate, out.Change = true, &ch
	return true, nil
}

// nextID takes the next id of the one sequence: AUTOINCREMENT gives the
// next message one more than the largest it has handed out, which this is
// then. A replicated log names the id itself (given, not 0): the sequence
// then moves up to it, so that ids stay the log's.
func (s *Store) nextID(ctx context.Context, tx *sql.Tx, given int64) (int64, error) {
	var id int64
	stmt, args := s.change.next, []any(nil)
	if given != 0 {
		stmt, args = s.change.nextAt, []any{given, given}
	}
	if err := tx.StmtContext(ctx, stmt).QueryRowContext(ctx, args...).Scan(&id); err != nil {
		return 0, fmt.Errorf("next id: %w", err)
	}
	return id, nil
}

// changeStmts are the statements of applyChange that every change runs,
// and a deletion's, prepared on the write connection like the inserts'
// (chunkStmts): parsed again for each change, with the triggers a deletion
// fires, they were two fifths of a deletion's time, which a ban's
// thousands of deletions pay.
type changeStmts struct {
	get    *sql.Stmt // the message a change is to
	delete *sql.Stmt // a deletion's
	event  *sql.Stmt // the change's event in the log
	named  *sql.Stmt // the change an account's cid names (changeNamed)
	next   *sql.Stmt // the next id of the sequence
	nextAt *sql.Stmt // the sequence moved up to an id a replicated log gave
}

// prepareChanges prepares applyChange's statements.
func (s *Store) prepareChanges(ctx context.Context) error {
	for _, p := range []struct {
		stmt **sql.Stmt
		sql  string
	}{
		{&s.change.get, "SELECT " + columns + messagesFrom + " WHERE messages.id = ?"},
		{&s.change.delete, "DELETE FROM messages WHERE id = ?"},
		{&s.change.event, `INSERT INTO events (id, kind, room_id, message_id, user_id, body, "on", timestamp, cid) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`},
		{&s.change.named, namedSQL},
		{&s.change.next, "UPDATE sqlite_sequence SET seq = seq + 1 WHERE name = 'messages' RETURNING seq"},
		{&s.change.nextAt, "UPDATE sqlite_sequence SET seq = max(seq, ?) WHERE name = 'messages' RETURNING ?"},
	} {
		var err error
		if *p.stmt, err = s.write.PrepareContext(ctx, p.sql); err != nil {
			return err
		}
	}
	return nil
}

// queryer is what reads reactions: the read pool, or a transaction.
type queryer interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

// reactionsOf returns a message's reactions: each emoji in the order it was
// first used, its people in the order they reacted.
func reactionsOf(ctx context.Context, q queryer, id int64) ([]Reaction, error) {
	byMsg, err := reactionsIn(ctx, q, []int64{id})
	return byMsg[id], err
}

// maxIDsRead is how many message ids one reactions statement looks up.
const maxIDsRead = 256

// reactionsIn returns the reactions of the messages ids, by message: a few
// index lookups a message, however far apart their ids are.
func reactionsIn(ctx context.Context, q queryer, ids []int64) (map[int64][]Reaction, error) {
	out := make(map[int64][]Reaction)
	for chunk := range slices.Chunk(ids, maxIDsRead) {
		rows, err := q.QueryContext(ctx, `SELECT r.message_id, r.emoji, r.user_id, a.name FROM reactions r JOIN accounts a ON a.id = r.user_id
			WHERE r.message_id IN (`+list("?", len(chunk))+`) ORDER BY r.message_id, r.created`, anys(chunk)...)
		if err != nil {
			return nil, fmt.Errorf("reactions: %w", err)
		}
		if err := scanReactions(rows, out); err != nil {
			return nil, fmt.Errorf("reactions: %w", err)
		}
	}
	return out, nil
}

func scanReactions(rows *sql.Rows, out map[int64][]Reaction) error {
	defer rows.Close()
	for rows.Next() {
		var id, user int64
		var emoji, name string
		if err := rows.Scan(&id, &emoji, &user, &name); err != nil {
			return err
		}
		rs := out[id]
		i := slices.IndexFunc(rs, func(r Reaction) bool { return r.Emoji == emoji })
		if i < 0 {
			rs, i = append(rs, Reaction{Emoji: emoji}), len(rs)
		}
		rs[i].Count++
		rs[i].UserIDs = append(rs[i].UserIDs, user)
		rs[i].Users = append(rs[i].Users, name)
		out[id] = rs
	}
	return rows.Err()
}

// withState fills in the reactions, mentions, quotes and files of msgs, read from
// the read pool: a page of history in its current state.
func withState(ctx context.Context, q queryer, msgs []Message) ([]Message, error) {
	if len(msgs) == 0 {
		return msgs, nil
	}
	ids := make([]int64, len(msgs))
	var quoted []int64
	for i, m := range msgs {
		ids[i] = m.ID
		if m.ReplyTo != nil {
			quoted = append(quoted, m.ReplyTo.ID)
		}
	}
	reactions, err := reactionsIn(ctx, q, ids)
	if err != nil {
		return nil, err
	}
	mentions, err := mentionsIn(ctx, q, ids)
	if err != nil {
		return nil, err
	}
	quotes, err := quotesOf(ctx, q, quoted)
	if err != nil {
		return nil, err
	}
	files, err := filesIn(ctx, q, ids)
	if err != nil {
		return nil, err
	}
	for i := range msgs {
		m := &msgs[i]
		m.Reactions, m.Mentions, m.File = reactions[m.ID], mentions[m.ID], files[m.ID]
		if m.ReplyTo != nil {
			if q, ok := quotes[m.ReplyTo.ID]; ok {
				m.ReplyTo = &q
			} else {
				m.ReplyTo = &Quote{ID: m.ReplyTo.ID, Deleted: true}
			}
		}
	}
	return msgs, nil
}

// QuoteLen is how many characters of a replied-to message a reply shows.
const QuoteLen = 140

// QuoteOf is m as a reply quotes it: its first line, cut to QuoteLen
// characters; a file sent without text, its file's name.
func QuoteOf(m Message) Quote {
	text := m.Message
	if text == "" && m.File != nil {
		text = m.File.Name
	}
	line, _, more := strings.Cut(text, "\n")
	if r := []rune(line); len(r) > QuoteLen {
		line, more = string(r[:QuoteLen]), true
	}
	if more {
		line += "…"
	}
	return Quote{ID: m.ID, User: m.User, UserID: m.UserID, Message: line}
}

// quotes reads the messages ids as replies quote them; a deleted one is
// not in the map.
func quotesOf(ctx context.Context, q queryer, ids []int64) (map[int64]Quote, error) {
	msgs, err := messagesIn(ctx, q, ids)
	if err != nil {
		return nil, fmt.Errorf("quotes: %w", err)
	}
	// A file sent without text is quoted by its name: read the files of
	// those only (none, most pages).
	var bare []int64
	for _, m := range msgs {
		if m.Message == "" {
			bare = append(bare, m.ID)
		}
	}
	files, err := filesIn(ctx, q, bare)
	if err != nil {
		return nil, fmt.Errorf("quotes: %w", err)
	}
	out := make(map[int64]Quote, len(msgs))
	for _, m := range msgs {
		m.File = files[m.ID]
		out[m.ID] = QuoteOf(m)
	}
	return out, nil
}

// messagesIn reads the messages ids (those still stored), in id order
// within each chunk of maxIDsRead.
func messagesIn(ctx context.Context, q queryer, ids []int64) ([]Message, error) {
	var out []Message
	for chunk := range slices.Chunk(ids, maxIDsRead) {
		msgs, err := queryOn(ctx, q, "SELECT "+columns+messagesFrom+" WHERE messages.id IN ("+list("?", len(chunk))+")", anys(chunk)...)
		if err != nil {
			return nil, err
		}
		out = append(out, msgs...)
	}
	return out, nil
}

// insertMentions stores a message's mentions.
func insertMentions(ctx context.Context, tx *sql.Tx, id int64, ms []Mention) error {
	for _, m := range ms {
		if _, err := tx.ExecContext(ctx, "INSERT INTO mentions (message_id, start, length, user_id) VALUES (?, ?, ?, ?)", id, m.Start, m.Length, m.UserID); err != nil {
			return fmt.Errorf("mentions: %w", err)
		}
	}
	return nil
}

// mentionsIn returns the mentions of the messages ids, by message, in text
// order, each under its person's name now ("room" for everyone).
func mentionsIn(ctx context.Context, q queryer, ids []int64) (map[int64][]Mention, error) {
	out := make(map[int64][]Mention)
	for chunk := range slices.Chunk(ids, maxIDsRead) {
		rows, err := q.QueryContext(ctx, `SELECT n.message_id, n.start, n.length, n.user_id, ifnull(a.name, 'room') FROM mentions n
			LEFT JOIN accounts a ON a.id = n.user_id WHERE n.message_id IN (`+list("?", len(chunk))+`) ORDER BY n.message_id, n.start`, anys(chunk)...)
		if err != nil {
			return nil, fmt.Errorf("mentions: %w", err)
		}
		for rows.Next() {
			var id int64
			var m Mention
			if err := rows.Scan(&id, &m.Start, &m.Length, &m.UserID, &m.User); err != nil {
				rows.Close()
				return nil, fmt.Errorf("mentions: %w", err)
			}
			out[id] = append(out[id], m)
		}
		if err := rows.Close(); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// LogAfter returns up to limit entries of the log with ids above id, in id
// order, of every room: the messages in their current state and the changes
// since. It is what a client that has seen id has missed (the caller keeps
// the rooms its client may see).
func (s *Store) LogAfter(ctx context.Context, id int64, limit int) ([]Entry, error) {
	// One snapshot for both reads: two would let a batch commit between
	// them, and the changes read then hold an id above a message the
	// messages read did not see.
	tx, err := s.read.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return nil, fmt.Errorf("log after %d: %w", id, err)
	}
	defer tx.Rollback()
	msgs, err := queryOn(ctx, tx, "SELECT "+columns+messagesFrom+" WHERE messages.id > ? ORDER BY messages.id LIMIT ?", id, limit)
	if err == nil {
		msgs, err = withState(ctx, tx, msgs)
	}
	if err != nil {
		return nil, fmt.Errorf("log after %d: %w", id, err)
	}
	changes, err := changesAfter(ctx, tx, id, limit)
	if err != nil {
		return nil, fmt.Errorf("log after %d: %w", id, err)
	}
	out := make([]Entry, 0, min(limit, len(msgs)+len(changes)))
	for len(out) < limit && (len(msgs) > 0 || len(changes) > 0) {
		if len(changes) == 0 || len(msgs) > 0 && msgs[0].ID < changes[0].ID {
			out = append(out, Entry{Message: &msgs[0]})
			msgs = msgs[1:]
		} else {
			out = append(out, Entry{Change: &changes[0]})
			changes = changes[1:]
		}
	}
	return out, nil
}

// changesAfter returns up to limit changes with ids above id, in id order. A
// reaction carries its message's reactions as they are now: replayed in
// order, the changes leave a client with the current state.
func changesAfter(ctx context.Context, q queryer, id int64, limit int) ([]Change, error) {
	rows, err := q.QueryContext(ctx, `SELECT id, kind, room_id, message_id, user_id, body, "on", timestamp FROM events WHERE id > ? ORDER BY id LIMIT ?`, id, limit)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Change
	var changed []int64 // the messages reacted to or edited
	for rows.Next() {
		var ch Change
		var uid sql.NullInt64
		var body string
		if err := rows.Scan(&ch.ID, &ch.Kind, &ch.Room, &ch.Message, &uid, &body, &ch.On, &ch.Timestamp); err != nil {
			return nil, err
		}
		ch.UserID = userID(uid.Int64)
		switch ch.Kind {
		case Edit:
			ch.Text, ch.EditedAt = body, ch.Timestamp
			changed = append(changed, ch.Message)
		case React:
			ch.Emoji = body
			changed = append(changed, ch.Message)
		}
		out = append(out, ch)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	if len(changed) == 0 {
		return out, nil
	}
	slices.Sort(changed)
	changed = slices.Compact(changed)
	reactions, err := reactionsIn(ctx, q, changed)
	if err != nil {
		return nil, err
	}
	mentions, err := mentionsIn(ctx, q, changed)
	if err != nil {
		return nil, err
	}
	texts, err := messagesIn(ctx, q, changed)
	if err != nil {
		return nil, err
	}
	now := make(map[int64]string, len(texts))
	for _, m := range texts {
		now[m.ID] = m.Message
	}
	for i := range out {
		switch ch := &out[i]; ch.Kind {
		case React:
			ch.Reactions = reactions[ch.Message]
		case Edit:
			// The stored mentions are the message's text now: an edit to
			// that text (its newest) carries them; an older one, none.
			if now[ch.Message] == ch.Text {
				ch.Mentions = mentions[ch.Message]
			}
		}
	}
	return out, nil
}

// anys is ids as statement arguments.
func anys(ids []int64) []any {
	out := make([]any, len(ids))
	for i, id := range ids {
		out[i] = id
	}
	return out
}
