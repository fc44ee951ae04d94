package db

import (
	"bufio"
	"bytes"
	"context"
	"database/sql"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
)

// ErrNotEmpty is returned by Import into a database that has people or
// messages already.
var ErrNotEmpty = errors.New("the database is not empty")

// DefaultMaxImportLine is the longest line Import reads: a file's line
// holds its bytes and its thumbnail in base64 (4/3 of them), and uploads
// are 10 MB by default.
const DefaultMaxImportLine = 64 << 20

// LineError is a refused line of an import file.
type LineError struct {
	Line int // from 1
	Err  error
}

// Error names the line.
func (e *LineError) Error() string { return fmt.Sprintf("line %d: %v", e.Line, e.Err) }

// Unwrap is the refusal.
func (e *LineError) Unwrap() error { return e.Err }

// Import loads an export file (ExportFile) into the database, which must be
// empty: no people, no messages, nothing but what the migrations made (the
// default room, which the file's replaces). Ids are kept, so permalinks and
// resume points stay valid, and the AUTOINCREMENT counters are set from
// the file so new ids continue after the old ones. It is one transaction:
// a refused line (a *LineError with its number) leaves nothing imported.
// The search index is rebuilt in the same transaction. maxLine bounds one
// line; 0 means DefaultMaxImportLine.
func (s *Store) Import(ctx context.Context, r io.Reader, maxLine int) (ExportStats, error) {
	if maxLine <= 0 {
		maxLine = DefaultMaxImportLine
	}
	st := ExportStats{Rows: map[string]int{}}
	tx, err := s.write.BeginTx(ctx, nil)
	if err != nil {
		return st, fmt.Errorf("import: %w", err)
	}
	defer tx.Rollback()
	if err := checkEmpty(ctx, tx); err != nil {
		return st, err
	}
	im, err := newImporter(ctx, tx)
	if err != nil {
		return st, fmt.Errorf("import: %w", err)
	}
	defer im.close()
	if err := im.run(ctx, bufio.NewReaderSize(r, 64<<10), maxLine, &st); err != nil {
		return st, err
	}
	// Counted under the counter's lock, as every change of the count is.
	err = s.count.change(func() (int64, error) { return int64(st.Rows["message"]), tx.Commit() })
	if err != nil {
		return st, fmt.Errorf("import: %w", err)
	}
	return st, nil
}

// checkEmpty refuses a database with people, messages or anything else an
// export carries besides the default room a migration made.
func checkEmpty(ctx context.Context, q querier) error {
	for _, t := range exportTables {
		where := ""
		if t.table == "rooms" {
			where = " WHERE id <> 1"
		}
		var n int
		if err := q.QueryRowContext(ctx, "SELECT count(*) FROM "+t.table+where).Scan(&n); err != nil {
			return fmt.Errorf("import: %w", err)
		}
		if n > 0 {
			return fmt.Errorf("import: %w: it has %d rows in %s; import into a new database (a -db path that does not exist yet)", ErrNotEmpty, n, t.table)
		}
	}
	return nil
}

type importer struct {
	tx      *sql.Tx
	tables  map[string]*importTable
	seqs    map[string]int64
	dropped []string // the triggers' CREATE statements, made again at the end
}

type importTable struct {
	exportTable
	types map[string]string
	stmt  *sql.Stmt
}

func newImporter(ctx context.Context, tx *sql.Tx) (*importer, error) {
	im := &importer{tx: tx, tables: map[string]*importTable{}, seqs: map[string]int64{}}
	if err := checkCoverage(ctx, tx); err != nil {
		return nil, err
	}
	// The triggers go while the rows come in: a person's row must not add
	// a lobby membership the file does not have (accounts_join_lobby), and
	// the search index is rebuilt once at the end rather than row by row.
	rows, err := tx.QueryContext(ctx, "SELECT name, sql FROM sqlite_master WHERE type = 'trigger' ORDER BY name")
	if err != nil {
		return nil, err
	}
	var names []string
	for rows.Next() {
		var name, sqlText string
		if err := rows.Scan(&name, &sqlText); err != nil {
			rows.Close()
			return nil, err
		}
		names = append(names, name)
		im.dropped = append(im.dropped, sqlText)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	for _, name := range names {
		if _, err := tx.ExecContext(ctx, `DROP TRIGGER "`+name+`"`); err != nil {
			return nil, err
		}
	}
	// The file's default room replaces the migration's.
	if _, err := tx.ExecContext(ctx, "DELETE FROM rooms"); err != nil {
		return nil, err
	}
	for _, t := range exportTables {
		types, err := columnTypes(ctx, tx, t.table)
		if err != nil {
			return nil, err
		}
		it := &importTable{exportTable: t, types: types}
		// The statement's columns: exported, then left out (filled).
		var cols, marks []string
		for _, c := range append(slices.Clone(t.columns), t.omitted()...) {
			cols, marks = append(cols, `"`+c+`"`), append(marks, "?")
		}
		if it.stmt, err = tx.PrepareContext(ctx, "INSERT INTO "+t.table+" ("+strings.Join(cols, ", ")+") VALUES ("+strings.Join(marks, ", ")+")"); err != nil {
			im.close()
			return nil, err
		}
		im.tables[t.typ] = it
	}
	return im, nil
}

func (im *importer) close() {
	for _, t := range im.tables {
		if t.stmt != nil {
			t.stmt.Close()
		}
	}
}

func (im *importer) run(ctx context.Context, r *bufio.Reader, maxLine int, st *ExportStats) error {
	n := 0
	ended := false
	for {
		line, err := readLine(r, maxLine)
		if err == io.EOF {
			break
		}
		n++
		if err != nil {
			return &LineError{n, err}
		}
		if ended {
			return &LineError{n, errors.New(`a line after the "end" line`)}
		}
		if n == 1 {
			if st.Schema, err = readHeader(line); err != nil {
				return &LineError{n, err}
			}
			continue
		}
		if ended, err = im.line(ctx, line, st); err != nil {
			return &LineError{n, err}
		}
	}
	switch {
	case n == 0:
		return errors.New("import: the file is empty")
	case !ended:
		return &LineError{n, errors.New(`the file ends without its "end" line: it was cut off`)}
	}
	// The log's counter hands out message and event ids alike: one below
	// an id the file has would hand it out again.
	var top int64
	if err := im.tx.QueryRowContext(ctx, "SELECT max((SELECT ifnull(max(id), 0) FROM messages), (SELECT ifnull(max(id), 0) FROM events))").Scan(&top); err != nil {
		return fmt.Errorf("import: %w", err)
	}
	if seq, ok := im.seqs["messages"]; top > 0 && (!ok || seq < top) {
		return &LineError{n, fmt.Errorf(`the messages counter (a "sequence" line) is %d, below the file's id %d: ids would be handed out twice`, seq, top)}
	}
	for name, seq := range im.seqs {
		if _, err := im.tx.ExecContext(ctx, "DELETE FROM sqlite_sequence WHERE name = ?", name); err != nil {
			return fmt.Errorf("import: %w", err)
		}
		if _, err := im.tx.ExecContext(ctx, "INSERT INTO sqlite_sequence (name, seq) VALUES (?, ?)", name, seq); err != nil {
			return fmt.Errorf("import: %w", err)
		}
	}
	for _, q := range im.dropped {
		if _, err := im.tx.ExecContext(ctx, q); err != nil {
			return fmt.Errorf("import: restore trigger: %w", err)
		}
	}
	if _, err := im.tx.ExecContext(ctx, "INSERT INTO messages_fts (messages_fts) VALUES ('rebuild')"); err != nil {
		return fmt.Errorf("import: rebuild the search index: %w", err)
	}
	return nil
}

// readLine reads one line without its newline, refusing one longer than max.
func readLine(r *bufio.Reader, max int) ([]byte, error) {
	var line []byte
	for {
		chunk, err := r.ReadSlice('\n')
		if len(line)+len(chunk) > max+1 {
			return nil, fmt.Errorf("longer than %d bytes", max)
		}
		line = append(line, chunk...)
		switch {
		case err == bufio.ErrBufferFull:
			continue
		case err == io.EOF && len(line) > 0:
			return line, nil // a last line without a newline
		case err != nil:
			return nil, err
		}
		return bytes.TrimSuffix(line, []byte("\n")), nil
	}
}

func readHeader(line []byte) (int, error) {
	var h struct {
		NochatExport *int    `json:"nochat_export"`
		Schema       *int    `json:"schema"`
		ExportedAt   *string `json:"exported_at"`
	}
	if err := strictJSON(line, &h); err != nil || h.NochatExport == nil || h.Schema == nil {
		hint := ""
		if bytes.HasPrefix(bytes.TrimSpace(line), []byte("[")) {
			hint = " (a JSON array: the tutorial's history? import it with -tutorial)"
		}
		return 0, errors.New(`not a NoChat export: the first line is not {"nochat_export": 1, "schema": N, ...}` + hint)
	}
	if *h.NochatExport != ExportVersion {
		return 0, fmt.Errorf("export format %d; this NoChat reads format %d", *h.NochatExport, ExportVersion)
	}
	latest := LatestSchemaVersion()
	switch {
	case *h.Schema > latest:
		return 0, fmt.Errorf("exported from schema %d, newer than this NoChat's (%d): import it with a newer NoChat", *h.Schema, latest)
	case *h.Schema < latest:
		// A migration may change what rows mean, not only add columns, so
		// an older file is not read as if it were this schema's.
		return 0, fmt.Errorf("exported from schema %d, older than this NoChat's (%d): import it with the NoChat version that exported it, start that once with this version (it migrates the database), then export again", *h.Schema, latest)
	}
	return *h.Schema, nil
}

func strictJSON(line []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(line))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if dec.More() {
		return errors.New("more than one JSON value on the line")
	}
	return nil
}

// line imports one line after the header; ended reports the "end" line.
func (im *importer) line(ctx context.Context, line []byte, st *ExportStats) (ended bool, err error) {
	var fields map[string]json.RawMessage
	dec := json.NewDecoder(bytes.NewReader(line))
	if err := dec.Decode(&fields); err != nil || dec.More() {
		return false, errors.New("not a JSON object")
	}
	var typ string
	if err := json.Unmarshal(fields["type"], &typ); err != nil || typ == "" {
		return false, errors.New(`no "type"`)
	}
	switch typ {
	case "sequence":
		var s struct {
			Type string `json:"type"`
			Name string `json:"name"`
			Seq  int64  `json:"seq"`
		}
		if err := strictJSON(line, &s); err != nil {
			return false, fmt.Errorf("sequence: %v", err)
		}
		if !im.hasTable(s.Name) || s.Seq < 0 {
			return false, fmt.Errorf("sequence of %q: not an exported table", s.Name)
		}
		im.seqs[s.Name] = s.Seq
		return false, nil
	case "end":
		var e struct {
			Type  string `json:"type"`
			Lines int    `json:"lines"`
		}
		if err := strictJSON(line, &e); err != nil {
			return false, fmt.Errorf("end: %v", err)
		}
		if e.Lines != st.Lines {
			return false, fmt.Errorf("the file says it has %d rows, and %d came before its end", e.Lines, st.Lines)
		}
		return true, nil
	}
	t, ok := im.tables[typ]
	if !ok {
		return false, fmt.Errorf("unknown type %q", typ)
	}
	var row map[string]json.RawMessage
	for k, v := range fields {
		switch k {
		case "type":
		case "row":
			if err := json.Unmarshal(v, &row); err != nil || row == nil {
				return false, fmt.Errorf(`%s: "row" is not an object`, typ)
			}
		default:
			return false, fmt.Errorf("%s: unknown field %q", typ, k)
		}
	}
	for k := range row {
		if _, left := t.omit[k]; left {
			return false, fmt.Errorf("%s: %q is never exported", typ, k)
		}
		if !slices.Contains(t.columns, k) {
			return false, fmt.Errorf("%s: unknown field %q", typ, k)
		}
	}
	args := make([]any, 0, len(t.columns)+len(t.omit))
	for _, c := range t.columns {
		raw, ok := row[c]
		if v, later := t.later[c]; !ok && later {
			args = append(args, v) // a file from before the column
			continue
		}
		if !ok {
			return false, fmt.Errorf("%s: %q is missing", typ, c)
		}
		v, err := decodeValue(raw, t.types[c])
		if err != nil {
			return false, fmt.Errorf("%s: %s: %v", typ, c, err)
		}
		args = append(args, v)
	}
	for _, c := range t.omitted() {
		args = append(args, t.omit[c].fill)
	}
	if _, err := t.stmt.ExecContext(ctx, args...); err != nil {
		return false, fmt.Errorf("%s: %v", typ, err)
	}
	st.Rows[typ]++
	st.Lines++
	return false, nil
}

func (im *importer) hasTable(name string) bool {
	for _, t := range im.tables {
		if t.table == name {
			return true
		}
	}
	return false
}

// decodeValue reads a JSON value as a column of type typ.
func decodeValue(raw json.RawMessage, typ string) (any, error) {
	if string(raw) == "null" {
		return nil, nil
	}
	switch typ {
	case "INTEGER":
		n, err := strconv.ParseInt(string(raw), 10, 64)
		if err != nil {
			return nil, fmt.Errorf("want a whole number, got %.40s", raw)
		}
		return n, nil
	case "TEXT":
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return nil, fmt.Errorf("want a string, got %.40s", raw)
		}
		return s, nil
	case "BLOB":
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return nil, fmt.Errorf("want a base64 string, got %.40s", raw)
		}
		b, err := base64.StdEncoding.DecodeString(s)
		if err != nil {
			return nil, fmt.Errorf("want base64: %v", err)
		}
		return b, nil
	}
	return nil, fmt.Errorf("a column of type %q, which no NoChat table has", typ)
}

// GuestMessage is one message of an imported history, sent by a guest
// (no account) under a name.
type GuestMessage struct {
	User      string
	Message   string
	Timestamp int64 // Unix milliseconds
}

// ImportGuestMessages appends msgs to room as guests' messages, in order,
// with their names and timestamps, in one transaction: all or none. Their
// ids continue the log's, after every message already stored; the search
// index takes them in the same transaction. It returns the first and last
// id given (0, 0 for none).
func (s *Store) ImportGuestMessages(ctx context.Context, room int64, msgs []GuestMessage) (first, last int64, err error) {
	tx, err := s.write.BeginTx(ctx, nil)
	if err != nil {
		return 0, 0, fmt.Errorf("import messages: %w", err)
	}
	defer tx.Rollback()
	var exists int
	if err := tx.QueryRowContext(ctx, "SELECT count(*) FROM rooms WHERE id = ?", room).Scan(&exists); err != nil {
		return 0, 0, fmt.Errorf("import messages: %w", err)
	}
	if exists == 0 {
		return 0, 0, fmt.Errorf("import messages: room %d: %w", room, ErrNotFound)
	}
	stmt, err := tx.PrepareContext(ctx, "INSERT INTO messages (user, message, timestamp, room_id) VALUES (?, ?, ?, ?)")
	if err != nil {
		return 0, 0, fmt.Errorf("import messages: %w", err)
	}
	defer stmt.Close()
	for i, m := range msgs {
		res, err := stmt.ExecContext(ctx, m.User, m.Message, m.Timestamp, room)
		if err != nil {
			return 0, 0, fmt.Errorf("import message %d: %w", i, err)
		}
		id, err := res.LastInsertId()
		if err != nil {
			return 0, 0, fmt.Errorf("import message %d: %w", i, err)
		}
		if first == 0 {
			first = id
		}
		last = id
	}
	if first != 0 {
		// AUTOINCREMENT gave the messages ids in a row: nothing else
		// writes while this transaction holds the write lock.
		if _, err := tx.ExecContext(ctx, indexRangeSQL, first, last); err != nil {
			return 0, 0, fmt.Errorf("import messages: search index: %w", err)
		}
	}
	// Only the commit runs under the counter's lock (see counter.change).
	if err := s.count.change(func() (int64, error) { return int64(len(msgs)), tx.Commit() }); err != nil {
		return 0, 0, fmt.Errorf("import messages: %w", err)
	}
	return first, last, nil
}
