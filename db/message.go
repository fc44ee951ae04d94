package db

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
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
}

// Draft is a message not yet stored. CID, when set, is the client's id for
// the send: a second draft with the same CID is not stored again.
type Draft struct {
	User    string
	Message string
	CID     string
}

// Stored is the outcome of storing one draft.
type Stored struct {
	Message   Message
	Duplicate bool // the CID was stored before; Message is that earlier message
}

const columns = "id, user, message, timestamp"

// Latest returns the newest n messages, oldest first.
func (s *Store) Latest(ctx context.Context, n int) ([]Message, error) {
	msgs, err := s.query(ctx, "SELECT "+columns+" FROM messages ORDER BY id DESC LIMIT ?", n)
	if err != nil {
		return nil, fmt.Errorf("latest messages: %w", err)
	}
	slices.Reverse(msgs)
	return msgs, nil
}

// Before returns the newest limit messages with ids below id, oldest first:
// the page of history above the oldest one a client shows.
func (s *Store) Before(ctx context.Context, id int64, limit int) ([]Message, error) {
	msgs, err := s.query(ctx, "SELECT "+columns+" FROM messages WHERE id < ? ORDER BY id DESC LIMIT ?", id, limit)
	if err != nil {
		return nil, fmt.Errorf("messages before %d: %w", id, err)
	}
	slices.Reverse(msgs)
	return msgs, nil
}

// After returns up to limit messages with ids above id, oldest first: what a
// client that has seen id has missed.
func (s *Store) After(ctx context.Context, id int64, limit int) ([]Message, error) {
	msgs, err := s.query(ctx, "SELECT "+columns+" FROM messages WHERE id > ? ORDER BY id LIMIT ?", id, limit)
	if err != nil {
		return nil, fmt.Errorf("messages after %d: %w", id, err)
	}
	return msgs, nil
}

// Get returns the message with the given id, or ErrNotFound.
func (s *Store) Get(ctx context.Context, id int64) (Message, error) {
	msgs, err := s.query(ctx, "SELECT "+columns+" FROM messages WHERE id = ?", id)
	if err != nil {
		return Message{}, fmt.Errorf("message %d: %w", id, err)
	}
	if len(msgs) == 0 {
		return Message{}, fmt.Errorf("message %d: %w", id, ErrNotFound)
	}
	return msgs[0], nil
}

// LatestID returns the id of the newest message, 0 in an empty room.
func (s *Store) LatestID(ctx context.Context) (int64, error) {
	var id sql.NullInt64
	if err := s.read.QueryRowContext(ctx, "SELECT max(id) FROM messages").Scan(&id); err != nil {
		return 0, fmt.Errorf("latest id: %w", err)
	}
	return id.Int64, nil
}

func (s *Store) query(ctx context.Context, query string, args ...any) ([]Message, error) {
	rows, err := s.read.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var msgs []Message
	for rows.Next() {
		var m Message
		if err := rows.Scan(&m.ID, &m.User, &m.Message, &m.Timestamp); err != nil {
			return nil, err
		}
		msgs = append(msgs, m)
	}
	return msgs, rows.Err()
}

// Insert stores drafts in one transaction, in order, and returns what each
// became. A draft whose CID is already stored is not stored again: its
// outcome is the earlier message, marked Duplicate. Either every draft is
// stored or, on error, none is. The Writer calls this; use it directly only
// where no Writer runs (tools, tests, the example database).
func (s *Store) Insert(ctx context.Context, drafts []Draft) ([]Stored, error) {
	out := make([]Stored, len(drafts))
	tx, err := s.write.BeginTx(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("insert messages: %w", err)
	}
	defer tx.Rollback()

	// The statements are prepared once, on the one write connection, and
	// bound to each transaction: no SQL is parsed per batch.
	ins := tx.StmtContext(ctx, s.insertStmt)
	defer ins.Close()
	find := tx.StmtContext(ctx, s.findCIDStmt)
	defer find.Close()

	now := time.Now().UnixMilli()
	for i, d := range drafts {
		if d.CID != "" {
			var m Message
			err := find.QueryRowContext(ctx, d.CID).Scan(&m.ID, &m.User, &m.Message, &m.Timestamp)
			if err == nil {
				out[i] = Stored{Message: m, Duplicate: true} // a re-send
				continue
			}
			if !errors.Is(err, sql.ErrNoRows) {
				return nil, fmt.Errorf("insert messages: find cid: %w", err)
			}
		}
		var cid sql.NullString
		if d.CID != "" {
			cid = sql.NullString{String: d.CID, Valid: true}
		}
		m := Message{User: d.User, Message: d.Message, Timestamp: now}
		if err := ins.QueryRowContext(ctx, m.User, m.Message, m.Timestamp, cid).Scan(&m.ID); err != nil {
			return nil, fmt.Errorf("insert messages: %w", err)
		}
		out[i] = Stored{Message: m}
	}
	fresh := 0
	for _, st := range out {
		if !st.Duplicate {
			fresh++
		}
	}
	if err := s.count.change(func() (int64, error) { return int64(fresh), tx.Commit() }); err != nil {
		return nil, fmt.Errorf("insert messages: commit: %w", err)
	}
	return out, nil
}
