package db

import (
	"cmp"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math/bits"
	"slices"
	"strings"
	"time"
)

// Message is one chat line as stored, served over REST and broadcast. The
// names are the Node.js tutorial's (message, user, timestamp), plus the id
// that orders the room.
type Message struct {
	ID        int64  `json:"id"`
	User      string `json:"user"`
	Message   string `json:"message"`
	Timestamp int64  `json:"timestamp"` // Unix milliseconds
	// UserID is the sender's account, null for a guest. A member's name is
	// theirs alone (guests may not take it), so User still names one person.
	UserID *int64 `json:"user_id"`
	// Guest is whether the sender had no account (UserID is null): pages
	// and clients mark a guest's name as a guest's.
	Guest bool `json:"guest"`
	// Bot is whether the sender is a bot account: pages and clients mark
	// its name as a bot's.
	Bot bool `json:"bot,omitempty"`
	// Avatar is the emoji the sender's account shows in place of its
	// initials; "" for the initials (every person, for now).
	Avatar string `json:"avatar,omitempty"`
	// Room is the room's id; DefaultRoom for the tutorial's messages.
	Room int64 `json:"room"`
	// HTML is the text as the page shows it (links, the small markup),
	// sanitized: made by chat.RenderHTML where a message is served, not
	// stored.
	HTML string `json:"html,omitempty"`
	// EditedAt is when its author last edited it (Unix milliseconds), nil
	// if never.
	EditedAt *int64 `json:"edited_at,omitempty"`
	// Reactions are its reactions now, in the order each emoji was first
	// used; none is left out.
	Reactions []Reaction `json:"reactions,omitempty"`
	// ReplyTo is the message this one answers, as a one-line quote.
	ReplyTo *Quote `json:"reply_to,omitempty"`
	// Mentions are the people it mentions, in text order, under their
	// names now.
	Mentions []Mention `json:"mentions,omitempty"`
	// File is the picture or file it came with, if any.
	File *File `json:"file,omitempty"`
}

// Quote is the message a reply answers, as the reply shows it: its first
// line, cut; or that it was deleted.
type Quote struct {
	ID      int64  `json:"id"`
	User    string `json:"user,omitempty"`
	UserID  *int64 `json:"user_id,omitempty"`
	Message string `json:"message,omitempty"`
	Deleted bool   `json:"deleted,omitempty"`
}

// Mention is one "@Name" in a message's text: the bytes Start to
// Start+Length of the text as written, naming the account UserID (0:
// everyone in the room), whose name is now User.
type Mention struct {
	UserID int64  `json:"user_id"`
	User   string `json:"user"`
	Start  int    `json:"start"`
	Length int    `json:"length"`
}

// Draft is a message not yet stored. CID, when set, is the sender's id for
// the send (a nochat.v1 cid, a REST Idempotency-Key): within the Store's
// DedupWindow, a later draft from the same sender (the same UserID for a
// member, whatever their name is now; the same User for a guest) with the
// same CID is that send again and is not stored again.
type Draft struct {
	User    string
	UserID  int64  // the sender's account; 0 for a guest
	Bot     bool   // the sender's account is a bot's
	Avatar  string // the sender's account's avatar (Message.Avatar)
	Message string
	CID     string
	Room    int64 // the room; 0 is DefaultRoom

	// Change, when set, makes the draft a change to the message Target of
	// Room rather than a new message (see applyChange): an edit to the text
	// in Message, a deletion, or a reaction with the emoji in Message, On
	// or taken back (nil: the opposite of what it is). UserID is who makes
	// it (0: the admin dashboard, for a deletion). An edit is refused for a
	// message stored before EditSince (Unix milliseconds); a deletion of
	// another's message unless Moderator.
	Change    ChangeKind
	Target    int64
	On        *bool
	Moderator bool
	EditSince int64

	// ReplyTo is the message a new message answers (0: none); Mentions
	// the people a new message, or an edit, mentions.
	ReplyTo  int64
	Mentions []Mention
	// File is the file a new message comes with (nil: none), stored in
	// the same transaction; UserID must be an account's.
	File *Upload

	// ID and At, when set, are the draft's id in the log and its time
	// (Unix milliseconds), named by a replicated log (ReplicatedWriter),
	// so that every node's projection stores it alike. Unset, the store
	// takes the next id and its own clock.
	ID int64 `json:",omitempty"`
	At int64 `json:",omitempty"`
}

// roomOr is the draft's room, DefaultRoom for none.
func (d Draft) roomOr() int64 { return cmp.Or(d.Room, DefaultRoom) }

// Stored is the outcome of storing one draft. With Duplicate or Reused set,
// nothing was stored and Message is the earlier message the CID names; for
// a change draft, Change is the change its CID names (id, kind, room and
// message only), and Message is not read.
type Stored struct {
	Message   Message
	Duplicate bool // the same send again: the CID names a message with this text
	Reused    bool // the CID names a message with another text: refused
	// A change draft's outcome: the change stored (nil when it changed
	// nothing, or was refused) and Message as it is after it; or why it was
	// refused (ErrNoMessage, ErrNotAuthor, ErrEditWindow,
	// ErrTooManyReactions), nothing stored.
	Change  *Change
	Refused error
}

// sendKey is what a CID is unique within: one sender's sends. A sender is
// a member's account id, or a guest's name (userID 0), as in the find
// statement and the index messages_sender_cid: a member who renames is
// still the same sender, so their re-send after a rename is still found.
type sendKey struct {
	userID int64
	user   string // a guest's name; "" for a member
	cid    string
}

func (d Draft) key() sendKey { return senderKey(d.UserID, d.User, d.CID) }

func senderKey(userID int64, user, cid string) sendKey {
	if userID != 0 {
		return sendKey{userID: userID, cid: cid}
	}
	return sendKey{user: user, cid: cid}
}

// sender is the key's sender as the find statement compares it with
// ifnull(user_id, user): an integer for a member, text for a guest.
func (k sendKey) sender() any {
	if k.userID != 0 {
		return k.userID
	}
	return k.user
}

// columns are a message's columns, read from messagesFrom. A member's
// message shows the account's current name, so a rename reaches every
// message they wrote; a guest's shows the name it was sent under.
const columns = "messages.id, coalesce(accounts.name, messages.user), messages.message, messages.timestamp, messages.user_id, messages.room_id, messages.edited, messages.reply_to, accounts.role IS 'bot', coalesce(accounts.avatar, '')"

// messagesFrom joins each message to its sender's account (by its primary
// key: one lookup a row).
const messagesFrom = " FROM messages LEFT JOIN accounts ON accounts.id = messages.user_id"

// Latest returns the default room's newest n messages, oldest first.
func (s *Store) Latest(ctx context.Context, n int) ([]Message, error) {
	return s.LatestIn(ctx, DefaultRoom, n)
}

// Before returns the default room's newest limit messages with ids below
// id, oldest first: the page of history above the oldest one a client shows.
func (s *Store) Before(ctx context.Context, id int64, limit int) ([]Message, error) {
	return s.BeforeIn(ctx, DefaultRoom, id, limit)
}

// After returns up to limit messages with ids above id, oldest first, of
// every room: what a client that has seen id has missed (the caller keeps
// the rooms its client may see).
func (s *Store) After(ctx context.Context, id int64, limit int) ([]Message, error) {
	msgs, err := s.query(ctx, "SELECT "+columns+messagesFrom+" WHERE messages.id > ? ORDER BY messages.id LIMIT ?", id, limit)
	if err != nil {
		return nil, fmt.Errorf("messages after %d: %w", id, err)
	}
	return msgs, nil
}

// Get returns the message with the given id, or ErrNotFound.
func (s *Store) Get(ctx context.Context, id int64) (Message, error) {
	msgs, err := s.query(ctx, "SELECT "+columns+messagesFrom+" WHERE messages.id = ?", id)
	if err == nil {
		msgs, err = withState(ctx, s.read, msgs)
	}
	if err != nil {
		return Message{}, fmt.Errorf("message %d: %w", id, err)
	}
	if len(msgs) == 0 {
		return Message{}, fmt.Errorf("message %d: %w", id, ErrNotFound)
	}
	return msgs[0], nil
}

// LatestID returns the newest id the log has handed out (a message or a
// change, perhaps deleted since), 0 for an empty log.
func (s *Store) LatestID(ctx context.Context) (int64, error) {
	var id sql.NullInt64
	if err := s.read.QueryRowContext(ctx, "SELECT max(ifnull((SELECT seq FROM sqlite_sequence WHERE name = 'messages'), 0), ifnull((SELECT max(id) FROM messages), 0))").Scan(&id); err != nil {
		return 0, fmt.Errorf("latest id: %w", err)
	}
	return id.Int64, nil
}

func (s *Store) query(ctx context.Context, query string, args ...any) ([]Message, error) {
	return queryOn(ctx, s.read, query, args...)
}

// queryOn reads messages with q: the read pool, or a transaction.
func queryOn(ctx context.Context, q queryer, query string, args ...any) ([]Message, error) {
	rows, err := q.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var msgs []Message
	for rows.Next() {
		var m Message
		var uid, edited, reply sql.NullInt64
		if err := rows.Scan(&m.ID, &m.User, &m.Message, &m.Timestamp, &uid, &m.Room, &edited, &reply, &m.Bot, &m.Avatar); err != nil {
			return nil, err
		}
		m.setState(uid, edited, reply)
		msgs = append(msgs, m)
	}
	return msgs, rows.Err()
}

// Insert stores drafts in one transaction, in order, and returns what each
// became. A draft whose sender stored its CID within the DedupWindow is not
// stored again: its outcome is the earlier message, marked Duplicate when
// the text is the same and Reused when it is not. Either every draft is
// stored or, on error, none is. The Writer calls this; use it directly only
// where no Writer runs (tools, tests, the example database).
//
// A batch costs a few statements, not one or two per draft: one looks up
// up to maxChunk CIDs, one inserts up to maxChunk rows. On 2 cores the
// per-statement work of database/sql and SQLite, not the fsync, was what
// bounded the Writer.
func (s *Store) Insert(ctx context.Context, drafts []Draft) ([]Stored, error) {
	out, _, err := s.insert(ctx, drafts, 0)
	return out, err
}

// insert is Insert, also returning the time spent in COMMIT (writing and
// fsyncing the WAL), which the Writer reports apart from the rest of the
// transaction. A replicated log's drafts carry their ids and times, and
// upTo, the position in that log of the last of them, is stored in the
// same transaction (LogPosition); 0 for the local Writer.
func (s *Store) insert(ctx context.Context, drafts []Draft, upTo int64) (_ []Stored, inCommit time.Duration, _ error) {
	out := make([]Stored, len(drafts))
	tx, err := s.write.BeginTx(ctx, nil)
	if err != nil {
		return nil, 0, fmt.Errorf("insert messages: %w", err)
	}
	defer tx.Rollback()

	if upTo != 0 {
		if _, err := tx.ExecContext(ctx, "UPDATE log_position SET seq = ?", upTo); err != nil {
			return nil, 0, fmt.Errorf("insert messages: log position: %w", err)
		}
	}
	now := s.now().UnixMilli()
	var added int64 // messages stored, less those deleted
	// In submission order: runs of new messages a few statements a run,
	// each change on its own.
	for i := 0; i < len(drafts); {
		if drafts[i].Change != "" {
			removed, err := s.applyChange(ctx, tx, drafts[i], cmp.Or(drafts[i].At, now), &out[i])
			if err != nil {
				return nil, 0, fmt.Errorf("insert messages: %s %d: %w", drafts[i].Change, drafts[i].Target, err)
			}
			added -= removed
			i++
			continue
		}
		j := i + 1
		for j < len(drafts) && drafts[j].Change == "" {
			j++
		}
		n, err := s.insertMessages(ctx, tx, drafts[i:j], cmp.Or(drafts[i].At, now), out[i:j])
		if err != nil {
			return nil, 0, fmt.Errorf("insert messages: %w", err)
		}
		added += n
		i = j
	}
	err = s.count.change(func() (int64, error) {
		began := time.Now()
		defer func() { inCommit = time.Since(began) }()
		return added, tx.Commit()
	})
	if err != nil {
		return nil, inCommit, fmt.Errorf("insert messages: commit: %w", err)
	}
	return out, inCommit, nil
}

// insertMessages stores new-message drafts in tx and fills in their
// outcomes; it returns how many it stored.
func (s *Store) insertMessages(ctx context.Context, tx *sql.Tx, drafts []Draft, now int64, out []Stored) (int64, error) {
	fresh, first, err := s.findStored(ctx, tx, drafts, now-s.dedupWindow.Milliseconds(), out)
	if err != nil {
		return 0, fmt.Errorf("find cid: %w", err)
	}
	if fresh, err = overQuota(ctx, tx, drafts, fresh, out); err != nil {
		return 0, err
	}
	args := make([]any, 0, 7*min(len(fresh), maxChunk))
	for rest := fresh; len(rest) > 0; {
		// The largest chunk that fits: a batch of n takes one statement
		// per bit set in n (below maxChunk).
		k := bits.Len(uint(min(len(rest), maxChunk))) - 1
		if err := s.insertChunk(ctx, tx, k, drafts, rest[:1<<k], now, args, out); err != nil {
			return 0, err
		}
		rest = rest[1<<k:]
	}
	if err := s.indexRun(ctx, tx, fresh, out); err != nil {
		return 0, fmt.Errorf("search index: %w", err)
	}
	// A draft repeating the CID of an earlier draft of its sender in the
	// batch names what that one named: the message stored just now or
	// before.
	for i, d := range drafts {
		if f, ok := first[d.key()]; ok && f != i {
			if out[f].Refused != nil {
				out[i] = out[f] // not stored: refused again
				continue
			}
			out[i] = outcome(out[f].Message, d)
		}
	}
	return int64(len(fresh)), nil
}

// outcome is what a draft becomes whose CID names the stored message m: the
// same send again, or a CID reused for another text.
// An edited message was that send whatever its text is now: its first text
// is not kept.
func outcome(m Message, d Draft) Stored {
	if m.Message == d.Message || m.EditedAt != nil {
		return Stored{Message: m, Duplicate: true}
	}
	return Stored{Message: m, Reused: true}
}

// findStored marks in out each draft whose sender stored its CID at or after
// since (Duplicate or Reused), and returns the indexes of the drafts to
// store, in order, and the index of the first draft of the batch with each
// sender's CID.
//
// CIDs are looked up before inserting rather than refused with ON CONFLICT
// DO NOTHING: a refused insert would still use up an AUTOINCREMENT id,
// leaving a hole in the room's ids for every re-send. The lookup is by CID
// and sender together, so however many senders use one CID, it reads only
// the rows of the senders in the batch.
func (s *Store) findStored(ctx context.Context, tx *sql.Tx, drafts []Draft, since int64, out []Stored) (fresh []int, first map[sendKey]int, err error) {
	var keys []sendKey
	for i, d := range drafts {
		if d.CID == "" {
			continue
		}
		if first == nil {
			// Sized for the whole batch: most drafts carry a CID or none do.
			first = make(map[sendKey]int, len(drafts))
			keys = make([]sendKey, 0, len(drafts))
		}
		if _, ok := first[d.key()]; !ok {
			first[d.key()] = i
			keys = append(keys, d.key())
		}
	}
	args := make([]any, 0, 2*maxChunk+1)
	for len(keys) > 0 {
		// The smallest statement that holds the chunk, the rest of its
		// pairs NULL, which no (cid, user) IN (...) matches.
		n := min(len(keys), maxChunk)
		k := bits.Len(uint(n - 1))
		args = args[:2<<k+1]
		clear(args)
		for j, key := range keys[:n] {
			args[2*j], args[2*j+1] = key.cid, key.sender()
		}
		args[2<<k] = since
		keys = keys[n:]
		rows, err := tx.StmtContext(ctx, s.stmts[k].find).QueryContext(ctx, args...)
		if err != nil {
			return nil, nil, err
		}
		for rows.Next() {
			var m Message
			var cid, sent string
			var uid, edited, reply sql.NullInt64
			if err := rows.Scan(&m.ID, &m.User, &m.Message, &m.Timestamp, &uid, &m.Room, &edited, &reply, &m.Bot, &m.Avatar, &cid, &sent); err != nil {
				rows.Close()
				return nil, nil, err
			}
			m.setState(uid, edited, reply)
			// In id order: with several in the window (a clock set back),
			// the newest is what the CID names.
			if i, ok := first[senderKey(uid.Int64, sent, cid)]; ok {
				out[i] = outcome(m, drafts[i])
			}
		}
		if err := rows.Close(); err != nil {
			return nil, nil, err
		}
		if err := rows.Err(); err != nil {
			return nil, nil, err
		}
	}
	fresh = make([]int, 0, len(drafts))
	for i, d := range drafts {
		if d.CID == "" || (first[d.key()] == i && !out[i].Duplicate && !out[i].Reused) {
			fresh = append(fresh, i)
		}
	}
	return fresh, first, nil
}

// insertChunk stores the drafts at idx, 1<<k of them, with one statement,
// and fills in their outcomes. args is scratch space for the parameters.
func (s *Store) insertChunk(ctx context.Context, tx *sql.Tx, k int, drafts []Draft, idx []int, now int64, args []any, out []Stored) error {
	args = args[:0]
	for _, i := range idx {
		var cid any // NULL without a CID
		if d := drafts[i]; d.CID != "" {
			cid = d.CID
		}
		args = append(args, drafts[i].User, drafts[i].Message, cmp.Or(drafts[i].At, now), cid, nullID(drafts[i].UserID), cmp.Or(drafts[i].Room, DefaultRoom), nullID(drafts[i].ReplyTo))
	}
	if drafts[idx[0]].ID != 0 {
		return s.insertAt(ctx, tx, drafts, idx, now, args, out)
	}
	res, err := tx.StmtContext(ctx, s.stmts[k].insert).ExecContext(ctx, args...)
	if err != nil {
		return err
	}
	// The rows took the ids last-n+1 ... last, in VALUES order. SQLite
	// inserts a multi-row VALUES one row after the other, and AUTOINCREMENT
	// gives each new row one more than the largest id the table ever had;
	// nothing else can take an id meanwhile, since this transaction holds
	// the database's write lock (BEGIN IMMEDIATE) and no trigger inserts
	// into messages. (RETURNING would name the ids too, but SQLite leaves
	// the order of its rows unspecified.)
	n, err := res.RowsAffected()
	if err != nil {
		return err
	}
	if n != int64(len(idx)) {
		return fmt.Errorf("stored %d rows of %d", n, len(idx))
	}
	last, err := res.LastInsertId()
	if err != nil {
		return err
	}
	for j, i := range idx {
		if err := stored(ctx, tx, drafts[i], last-n+1+int64(j), now, &out[i]); err != nil {
			return err
		}
	}
	return nil
}

// insertAt stores the drafts at idx under the ids they carry, one row a
// statement: a replicated log's, whose ids are its own. args holds their
// rows' parameters as insertChunk lays them out.
func (s *Store) insertAt(ctx context.Context, tx *sql.Tx, drafts []Draft, idx []int, now int64, args []any, out []Stored) error {
	const cols = 7
	for j, i := range idx {
		row := append([]any{drafts[i].ID}, args[j*cols:(j+1)*cols]...)
		if _, err := tx.StmtContext(ctx, s.insertAtStmt).ExecContext(ctx, row...); err != nil {
			return err
		}
		if err := stored(ctx, tx, drafts[i], drafts[i].ID, now, &out[i]); err != nil {
			return err
		}
	}
	return nil
}

// indexRun adds the messages just stored for the drafts at fresh to the
// search index: one statement for each run of consecutive ids, so one for
// the new messages between two changes of a batch (all of a batch without
// edits, deletions or reactions), whose ids AUTOINCREMENT gives in a row.
// FTS5 writes a new segment of the index for what it holds at each
// statement that opens a savepoint (migration 0024), and at the commit:
// indexing the run last, it writes one segment for the run rather than one
// for each statement that stored it. A range of n ids holding n messages
// stored in this transaction holds those messages and no other.
func (s *Store) indexRun(ctx context.Context, tx *sql.Tx, fresh []int, out []Stored) error {
	if len(fresh) == 0 {
		return nil
	}
	stmt := tx.StmtContext(ctx, s.indexStmt)
	for len(fresh) > 0 {
		first, n := out[fresh[0]].Message.ID, 1
		for n < len(fresh) && out[fresh[n]].Message.ID == first+int64(n) {
			n++
		}
		if _, err := stmt.ExecContext(ctx, first, first+int64(n)-1); err != nil {
			return err
		}
		fresh = fresh[n:]
	}
	return nil
}

// stored writes what goes with the new message d stored as id (its
// mentions, its file) and fills in its outcome.
func stored(ctx context.Context, tx *sql.Tx, d Draft, id, now int64, out *Stored) error {
	m := Message{ID: id, User: d.User, Message: d.Message, Timestamp: cmp.Or(d.At, now), UserID: userID(d.UserID), Guest: d.UserID == 0, Bot: d.Bot, Avatar: d.Avatar, Room: cmp.Or(d.Room, DefaultRoom), Mentions: d.Mentions}
	if d.ReplyTo != 0 {
		m.ReplyTo = &Quote{ID: d.ReplyTo}
	}
	if err := insertMentions(ctx, tx, m.ID, d.Mentions); err != nil {
		return err
	}
	if d.File != nil {
		if err := insertFile(ctx, tx, m, d); err != nil {
			return err
		}
		m.File = d.File.file(m.ID)
	}
	*out = Stored{Message: m}
	return nil
}

// chunkSizes is how many statement sizes Store prepares: 1, 2, 4 ...
// maxChunk rows. A batch of n drafts then takes a statement per bit of n
// (and one per maxChunk above it), and no SQL is parsed per batch. Up to 64
// rows: the larger statements cost more memory to keep prepared (about a
// third of a MiB for 128 and 256) than the few statements they save.
const chunkSizes = 7

// maxChunk is the most drafts one statement inserts or looks up. At five
// parameters a row it stays far below SQLite's limit of 32,766.
const maxChunk = 1 << (chunkSizes - 1)

// chunkStmts are the statements for one chunk size n.
type chunkStmts struct {
	insert *sql.Stmt // stores n messages
	find   *sql.Stmt // returns the stored messages of n (cid, sender) pairs since a time
}

// prepare prepares every chunk size's statements on the write connection.
func (s *Store) prepare(ctx context.Context) error {
	for k := range s.stmts {
		n := 1 << k
		var err error
		st := &s.stmts[k]
		if st.insert, err = s.write.PrepareContext(ctx, "INSERT INTO messages (user, message, timestamp, cid, user_id, room_id, reply_to) VALUES "+list("(?, ?, ?, ?, ?, ?, ?)", n)); err != nil {
			return err
		}
		if st.find, err = s.write.PrepareContext(ctx, findSQL(n)); err != nil {
			return err
		}
	}
	var err error
	s.insertAtStmt, err = s.write.PrepareContext(ctx, "INSERT INTO messages (id, user, message, timestamp, cid, user_id, room_id, reply_to) VALUES (?, ?, ?, ?, ?, ?, ?, ?)")
	if err != nil {
		return err
	}
	if s.indexStmt, err = s.write.PrepareContext(ctx, indexRangeSQL); err != nil {
		return err
	}
	return s.prepareChanges(ctx)
}

// findSQL returns the messages of n (cid, sender) pairs stored at or after a
// time, each with its cid and the name it was sent under. The pairs are a
// table joined to messages on cid and the sender written as the index
// writes it, ifnull(user_id, user), so that SQLite searches the partial
// index messages_sender_cid once per pair rather than scan the room.
// (SQLite uses only an index's first column for a row-value IN whose
// second column is an expression: a join is how it uses both. CROSS JOIN
// keeps the pairs the outer loop, which SQLite's planner would otherwise
// not choose for 64 pairs over an unanalysed table.)
func findSQL(n int) string {
	return "SELECT " + columns + ", messages.cid, messages.user FROM (VALUES " + list("(?, ?)", n) + ") AS sent" +
		" CROSS JOIN messages ON messages.cid = sent.column1 AND ifnull(messages.user_id, messages.user) = sent.column2" +
		" LEFT JOIN accounts ON accounts.id = messages.user_id" +
		" WHERE messages.cid IS NOT NULL AND messages.timestamp >= ? ORDER BY messages.id"
}

// setState fills in what columns read besides the plain fields: the
// sender's account, when it was edited, what it replies to (the quote's id
// only: withState reads the rest).
func (m *Message) setState(uid, edited, reply sql.NullInt64) {
	m.UserID, m.Guest = userID(uid.Int64), !uid.Valid
	if edited.Valid {
		m.EditedAt = &edited.Int64
	}
	if reply.Valid {
		m.ReplyTo = &Quote{ID: reply.Int64}
	}
}

// userID is an account id as a message carries it: nil for a guest (0).
func userID(id int64) *int64 {
	if id == 0 {
		return nil
	}
	return &id
}

// list is n copies of item, comma-separated.
func list(item string, n int) string {
	return strings.TrimSuffix(strings.Repeat(item+", ", n), ", ")
}

func (s *Store) closeStmts() error {
	var errs []error
	c := s.change
	stmts := []*sql.Stmt{s.insertAtStmt, s.indexStmt, c.get, c.delete, c.event, c.named, c.next, c.nextAt}
	for _, st := range s.stmts {
		stmts = append(stmts, st.insert, st.find)
	}
	for _, stmt := range stmts {
		if stmt != nil {
			errs = append(errs, stmt.Close())
		}
	}
	return errors.Join(errs...)
}

// Filter selects a page of messages for the admin's list: those whose text
// or user contains Text (ASCII case-insensitive; empty matches all), below
// Before or else above After (0: no bound), at most Limit of them.
type Filter struct {
	Text   string
	Before int64
	After  int64
	Limit  int
	// OpenRooms keeps to the messages of open rooms: what an admin reads
	// without being in a room (SECURITY.md).
	OpenRooms bool
}

// Find returns the page Filter selects, oldest first. With After it is the
// page just above After; otherwise the newest page below Before. The match
// scans messages newest first and stops at Limit, so a common word is cheap
// and a rare one costs one pass over the table.
func (s *Store) Find(ctx context.Context, f Filter) ([]Message, error) {
	where, args := []string{"1"}, []any{}
	if f.Text != "" {
		// LIKE with every wildcard escaped: the filter is plain text.
		pattern := "%" + likeEscaper.Replace(f.Text) + "%"
		where = append(where, `(messages.message LIKE ? ESCAPE '\' OR coalesce(accounts.name, messages.user) LIKE ? ESCAPE '\')`)
		args = append(args, pattern, pattern)
	}
	if f.OpenRooms {
		where = append(where, "messages.room_id IN (SELECT id FROM rooms WHERE kind = 'open')")
	}
	order := "DESC"
	switch {
	case f.After > 0:
		where, order = append(where, "messages.id > ?"), "ASC"
		args = append(args, f.After)
	case f.Before > 0:
		where = append(where, "messages.id < ?")
		args = append(args, f.Before)
	}
	args = append(args, f.Limit)
	msgs, err := s.query(ctx, "SELECT "+columns+messagesFrom+" WHERE "+strings.Join(where, " AND ")+" ORDER BY messages.id "+order+" LIMIT ?", args...)
	if err != nil {
		return nil, fmt.Errorf("find messages: %w", err)
	}
	if order == "DESC" {
		slices.Reverse(msgs)
	}
	// A file sent without text is shown by its name: read the files of
	// those only.
	var bare []int64
	for _, m := range msgs {
		if m.Message == "" {
			bare = append(bare, m.ID)
		}
	}
	files, err := filesIn(ctx, s.read, bare)
	if err != nil {
		return nil, fmt.Errorf("find messages: %w", err)
	}
	for i := range msgs {
		msgs[i].File = files[msgs[i].ID]
	}
	return msgs, nil
}

var likeEscaper = strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`)
