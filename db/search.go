package db

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"html"
	"log/slog"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// Search: the FTS5 index messages_fts (migration 0012), kept in step with
// messages in the transaction of every change (new messages by indexRun,
// edits and deletions by triggers), and the query over it. Which rooms a
// person may search is decided by the caller (chat's room rules), never
// here.

// indexRangeSQL adds the messages with ids from the first parameter to the
// second to the search index. They must not be in it yet.
const indexRangeSQL = "INSERT INTO messages_fts (rowid, message) SELECT id, message FROM messages WHERE id BETWEEN ? AND ?"

// SearchQuery is one search. Text is what the person typed (free words,
// without filters); Rooms are the rooms they may see, and nothing outside
// them is returned (none: no result).
type SearchQuery struct {
	Text  string
	Rooms []int64
	// From keeps to one sender, by the name messages show (an account's
	// current name, or a guest's), in any case; "" is anyone.
	From string
	// Before and After keep to messages stamped before Before and at or
	// after After; zero: no bound.
	Before, After time.Time
	// BeforeID and AfterID keep to ids below BeforeID and above AfterID
	// (0: no bound): BeforeID is how the next page of results is asked for.
	BeforeID, AfterID int64
	Limit             int // at most this many; 0 or less means DefaultSearchLimit
}

// Search limits.
const (
	DefaultSearchLimit = 20
	MaxSearchLimit     = 100
)

// Match is one message a search found, with a snippet of its text: HTML,
// escaped, with the words found in <mark></mark>.
type Match struct {
	Message
	Snippet string `json:"snippet"`
}

// Snippet markers: private-use characters that the FTS5 snippet puts around
// each word found, and that become <mark> only after the text is escaped.
const (
	markOpen  = '\uE000'
	markClose = '\uE001'
)

// Search returns the messages of q.Rooms that hold every word of q.Text (each
// as a prefix: "prin" finds "printer"), newest first. With no word in
// q.Text it lists the messages its other fields keep (see list).
func (s *Store) Search(ctx context.Context, q SearchQuery) ([]Match, error) {
	if len(q.Rooms) == 0 {
		return nil, nil
	}
	match := MatchExpr(q.Text)
	if match == "" {
		return s.list(ctx, q)
	}
	where := []string{"messages_fts MATCH ?", "messages.room_id IN (" + list("?", len(q.Rooms)) + ")"}
	args := []any{string(markOpen), string(markClose), match}
	for _, r := range q.Rooms {
		args = append(args, r)
	}
	if q.From != "" {
		where = append(where, "coalesce(accounts.name, messages.user) = ? COLLATE NOCASE")
		args = append(args, q.From)
	}
	where, args = q.timeBounds(where, args)
	// On the FTS table's rowid, which FTS5 bounds itself.
	if q.BeforeID > 0 {
		where = append(where, "messages_fts.rowid < ?")
		args = append(args, q.BeforeID)
	}
	if q.AfterID > 0 {
		where = append(where, "messages_fts.rowid > ?")
		args = append(args, q.AfterID)
	}
	args = append(args, q.limit())
	// The index is the outer loop (CROSS JOIN), walked newest first by
	// rowid, so a common word stops at the limit instead of sorting every
	// match; each match is then one primary-key lookup in messages.
	query := "SELECT " + columns + ", snippet(messages_fts, 0, ?, ?, '…', 12)" +
		" FROM messages_fts CROSS JOIN messages ON messages.id = messages_fts.rowid" +
		" LEFT JOIN accounts ON accounts.id = messages.user_id" +
		" WHERE " + strings.Join(where, " AND ") +
		" ORDER BY messages_fts.rowid DESC LIMIT ?"
	return s.matches(ctx, query, args, markSnippet)
}

// list is a search without words: the messages of q.Rooms that its sender,
// dates and ids keep, newest first, each with its opening words as the
// snippet ("from:ann" alone lists what Ann wrote). The plan walks messages
// newest first and stops at the limit: by the account's index when From
// is an account's name, by the room's index for one room, else by id.
func (s *Store) list(ctx context.Context, q SearchQuery) ([]Match, error) {
	table := "messages NOT INDEXED"
	var where []string
	var args []any
	if len(q.Rooms) == 1 {
		table = "messages INDEXED BY messages_room"
		where, args = append(where, "messages.room_id = ?"), append(args, q.Rooms[0])
	} else {
		where = append(where, "messages.room_id IN ("+list("?", len(q.Rooms))+")")
		for _, r := range q.Rooms {
			args = append(args, r)
		}
	}
	if q.From != "" {
		var account int64
		err := s.read.QueryRowContext(ctx, "SELECT id FROM accounts WHERE name = ? COLLATE NOCASE", q.From).Scan(&account)
		switch {
		case err == nil:
			// An account's messages are its own by id, whatever name
			// they were sent under.
			table = "messages INDEXED BY messages_user"
			where, args = append(where, "messages.user_id = ?"), append(args, account)
		case errors.Is(err, sql.ErrNoRows):
			where, args = append(where, "messages.user_id IS NULL AND messages.user = ? COLLATE NOCASE"), append(args, q.From)
		default:
			return nil, fmt.Errorf("search: %w", err)
		}
	}
	where, args = q.timeBounds(where, args)
	if q.BeforeID > 0 {
		where, args = append(where, "messages.id < ?"), append(args, q.BeforeID)
	}
	if q.AfterID > 0 {
		where, args = append(where, "messages.id > ?"), append(args, q.AfterID)
	}
	args = append(args, q.limit())
	query := "SELECT " + columns + ", messages.message FROM " + table +
		" LEFT JOIN accounts ON accounts.id = messages.user_id" +
		" WHERE " + strings.Join(where, " AND ") +
		" ORDER BY messages.id DESC LIMIT ?"
	return s.matches(ctx, query, args, openingWords)
}

// timeBounds adds q's Before and After to a query's conditions.
func (q SearchQuery) timeBounds(where []string, args []any) ([]string, []any) {
	if !q.Before.IsZero() {
		where, args = append(where, "messages.timestamp < ?"), append(args, q.Before.UnixMilli())
	}
	if !q.After.IsZero() {
		where, args = append(where, "messages.timestamp >= ?"), append(args, q.After.UnixMilli())
	}
	return where, args
}

// limit is how many results q asks for, within MaxSearchLimit.
func (q SearchQuery) limit() int {
	if q.Limit <= 0 {
		return DefaultSearchLimit
	}
	return min(q.Limit, MaxSearchLimit)
}

// matches runs a search's query, whose last column is the snippet's text,
// made HTML by snippet.
func (s *Store) matches(ctx context.Context, query string, args []any, snippet func(string) string) ([]Match, error) {
	rows, err := s.read.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("search: %w", err)
	}
	defer rows.Close()
	var out []Match
	for rows.Next() {
		var m Match
		var uid, edited, reply sql.NullInt64
		if err := rows.Scan(&m.ID, &m.User, &m.Message.Message, &m.Timestamp, &uid, &m.Room, &edited, &reply, &m.Bot, &m.Avatar, &m.Snippet); err != nil {
			return nil, fmt.Errorf("search: %w", err)
		}
		m.setState(uid, edited, reply)
		m.Snippet = snippet(m.Snippet)
		out = append(out, m)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("search: %w", err)
	}
	// Their files: a result shows its file, and one sent without text
	// (listed by a filter) is shown by the file's name, not as nothing.
	ids := make([]int64, len(out))
	for i, m := range out {
		ids[i] = m.ID
	}
	files, err := filesIn(ctx, s.read, ids)
	if err != nil {
		return nil, fmt.Errorf("search: %w", err)
	}
	for i := range out {
		m := &out[i]
		if m.File = files[m.ID]; m.File != nil && m.Snippet == "" {
			m.Snippet = html.EscapeString(m.File.Name)
		}
	}
	return out, nil
}

// openingWords is a listed message's snippet: its first twelve words (as
// FTS5's snippet keeps twelve), at most 200 characters, escaped.
func openingWords(text string) string {
	words := strings.Fields(text)
	more := len(words) > 12
	s := strings.Join(words[:min(len(words), 12)], " ")
	if utf8.RuneCountInString(s) > 200 {
		s, more = string([]rune(s)[:200]), true
	}
	if more {
		s += "…"
	}
	return html.EscapeString(s)
}

// MatchExpr turns what a person typed into an FTS5 query that cannot be an
// FTS5 syntax error: each word becomes a quoted string (quotes inside
// doubled) searched as a prefix (a one-character word as itself), and
// the words are ANDed. FTS5's operators
// (AND, OR, NOT, NEAR, column filters, ^, *, parentheses) are then plain
// text that the tokenizer splits or drops. A word with no letter or digit
// finds nothing and is left out; "" when no word is left.
func MatchExpr(text string) string {
	// A NUL would end the FTS5 query's string early: control characters
	// separate words.
	text = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return ' '
		}
		return r
	}, text)
	var b strings.Builder
	for _, w := range strings.Fields(text) {
		if !strings.ContainsFunc(w, func(r rune) bool { return unicode.IsLetter(r) || unicode.IsNumber(r) }) {
			continue
		}
		if b.Len() > 0 {
			b.WriteByte(' ')
		}
		b.WriteByte('"')
		b.WriteString(strings.ReplaceAll(w, `"`, `""`))
		b.WriteByte('"')
		// A one-letter word is searched as itself: as a prefix it would
		// stand for a large part of the vocabulary, which the prefix
		// indexes (2 to 4 characters, migration 0012) do not cover.
		if utf8.RuneCountInString(w) > 1 {
			b.WriteByte('*')
		}
	}
	return b.String()
}

// markSnippet escapes a snippet's text and turns its markers into <mark>
// elements, always balanced: a marker a message itself held (the
// characters are private-use, but anyone may type them) can open or close
// a <mark>, never anything else.
func markSnippet(s string) string {
	var b strings.Builder
	open := false
	for len(s) > 0 {
		i := strings.IndexAny(s, string(markOpen)+string(markClose))
		if i < 0 {
			b.WriteString(html.EscapeString(s))
			break
		}
		b.WriteString(html.EscapeString(s[:i]))
		r := []rune(s[i : i+3])[0] // both markers are 3 bytes in UTF-8
		switch {
		case r == markOpen && !open:
			b.WriteString("<mark>")
			open = true
		case r == markClose && open:
			b.WriteString("</mark>")
			open = false
		}
		s = s[i+3:]
	}
	if open {
		b.WriteString("</mark>")
	}
	return b.String()
}

// settingSearchBackfill holds the id at and below which messages stored
// before migration 0012 still wait for the search index.
const settingSearchBackfill = "search_backfill"

// searchBackfillBatch is how many ids one back-fill transaction indexes.
const searchBackfillBatch = 50_000

// backfillSearch indexes the messages stored before the search index
// existed, newest first, searchBackfillBatch ids a transaction, logging its
// progress. It runs in Open, before any other write: the delete trigger
// must never take out of the index a message that was not yet put in.
func (s *Store) backfillSearch(ctx context.Context, log *slog.Logger) error {
	var v string
	err := s.write.QueryRowContext(ctx, "SELECT value FROM settings WHERE key = ?", settingSearchBackfill).Scan(&v)
	if errors.Is(err, sql.ErrNoRows) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("search index: %w", err)
	}
	top, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		return fmt.Errorf("search index: back-fill bound %q: %w", v, err)
	}
	var lo, n sql.NullInt64
	if err := s.write.QueryRowContext(ctx, "SELECT min(id), count(*) FROM messages WHERE id <= ?", top).Scan(&lo, &n); err != nil {
		return fmt.Errorf("search index: %w", err)
	}
	start := time.Now()
	if lo.Valid {
		log.Info("building the search index for the messages stored before it", "messages", n.Int64)
	}
	done := int64(0)
	for lo.Valid && top >= lo.Int64 {
		next := top - searchBackfillBatch
		tx, err := s.write.BeginTx(ctx, nil)
		if err != nil {
			return fmt.Errorf("search index: %w", err)
		}
		res, err := tx.ExecContext(ctx, indexRangeSQL, next+1, top)
		if err == nil {
			_, err = tx.ExecContext(ctx, "UPDATE settings SET value = ? WHERE key = ?", strconv.FormatInt(next, 10), settingSearchBackfill)
		}
		if err == nil {
			err = tx.Commit()
		}
		if err != nil {
			tx.Rollback()
			return fmt.Errorf("search index: %w", err)
		}
		k, _ := res.RowsAffected()
		done += k
		top = next
		log.Info("search index", "indexed", done, "of", n.Int64, "elapsed", time.Since(start).Round(time.Millisecond))
	}
	if _, err := s.write.ExecContext(ctx, "DELETE FROM settings WHERE key = ?", settingSearchBackfill); err != nil {
		return fmt.Errorf("search index: %w", err)
	}
	if lo.Valid {
		log.Info("search index built", "messages", done, "elapsed", time.Since(start).Round(time.Millisecond))
	}
	return nil
}

// SearchIndexCheck runs FTS5's integrity check, which compares the index
// with the messages table: nil when they agree.
func (s *Store) SearchIndexCheck(ctx context.Context) error {
	if _, err := s.write.ExecContext(ctx, "INSERT INTO messages_fts (messages_fts, rank) VALUES ('integrity-check', 1)"); err != nil {
		return fmt.Errorf("search index check: %w", err)
	}
	return nil
}
