package db

import (
	"bufio"
	"context"
	"database/sql"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"
)

// ExportVersion is the export file format's version, the header's
// "nochat_export" field. It changes only if the lines' shape does; the
// schema a file was written from is the header's "schema".
const ExportVersion = 1

// An export file is JSON Lines: a header, then one object per row of an
// exported table, {"type": T, "row": {...}}, T naming its table and the row
// having one field per column (by the column's name, in a fixed order; a
// row of its own, as a column may be called "type"), then the
// AUTOINCREMENT counters ("sequence" lines) and a last "end" line with the
// number of row lines, so that a cut-off file is refused. INTEGER columns
// are JSON numbers, TEXT columns strings, BLOB columns base64 strings, NULL
// is null.

// exportTable is a table whose rows an export carries, in the order an
// import can replay them: a row's foreign keys name rows of tables before
// it (accounts before rooms, which name their creator).
type exportTable struct {
	typ   string // the lines' "type"
	table string
	order string // ORDER BY: ids in order, so resume points and the log keep theirs
	// columns are the exported columns, omit those left out on purpose, each
	// with the value an import stores in its place and why. Every column of
	// the table is in one of the two (TestExportCoversEveryColumn): a column
	// added by a migration must be decided on, not leaked or lost.
	columns []string
	omit    map[string]omitted
	// later are exported columns that files from an earlier version lack,
	// with the value an import of such a file stores.
	later map[string]any
}

// omitted lists t's left-out columns, in one order.
func (t exportTable) omitted() []string {
	return slices.Sorted(maps.Keys(t.omit))
}

type omitted struct {
	fill   any // what an import stores in the column
	reason string
}

var exportTables = []exportTable{
	{typ: "person", table: "accounts", order: "id",
		columns: []string{"id", "name", "name_key", "role", "created", "deactivated", "banned", "last_seen", "avatar"},
		later:   map[string]any{"avatar": ""},
		omit: map[string]omitted{
			"password_hash": {"", "a password hash is a secret of the old server; an imported person gets in through a reset link"},
			"from_log":      {0, "whether a cluster's log made the account; an import is a new chat's start"},
		}},
	{typ: "room", table: "rooms", order: "id",
		columns: []string{"id", "slug", "name", "topic", "kind", "post", "guests", "direct_key", "created_by", "created", "archived"},
		omit: map[string]omitted{
			"from_log": {0, "whether a cluster's log made the room; an import is a new chat's start"},
		}},
	{typ: "bot", table: "bots", order: "account_id",
		columns: []string{"account_id", "created", "last_used"},
		omit: map[string]omitted{
			"token_hash": {nil, "a bot's token is a secret of the old server; an imported bot has none until an admin gives it a new one"},
			"prefix":     {"", "the prefix names the token left behind"},
		}},
	{typ: "member", table: "members", order: "room_id, user_id",
		columns: []string{"room_id", "user_id", "last_read", "joined", "notify"}},
	{typ: "message", table: "messages", order: "id",
		columns: []string{"id", "user", "message", "timestamp", "cid", "user_id", "room_id", "edited", "reply_to"}},
	{typ: "event", table: "events", order: "id",
		columns: []string{"id", "kind", "room_id", "message_id", "user_id", "body", "on", "timestamp"},
		omit: map[string]omitted{
			"cid": {nil, "a client's id for a change names it against a re-send for a day; the new server's clients send afresh"},
		}},
	{typ: "reaction", table: "reactions", order: "message_id, emoji, user_id",
		columns: []string{"message_id", "emoji", "user_id", "created"}},
	{typ: "mention", table: "mentions", order: "message_id, start",
		columns: []string{"message_id", "start", "length", "user_id"}},
	{typ: "file", table: "files", order: "message_id",
		columns: []string{"message_id", "room_id", "uploader", "name", "type", "size", "width", "height", "thumb", "data"}},
	{typ: "audit", table: "audit", order: "id",
		columns: []string{"id", "at", "actor_id", "actor", "action", "target", "detail"}},
	{typ: "ban", table: "bans", order: "address",
		columns: []string{"address", "account_id", "name", "at"},
		later:   map[string]any{"name": ""}},
}

// notExported are the tables an export leaves out, and why. A table in
// neither list fails TestExportCoversEveryTable: whoever adds one decides.
var notExported = map[string]string{
	"sessions":           "sign-ins and reset links are secrets of the old server; people sign in again",
	"settings":           "the admin password's hash, the set-up token, the invite code, push keys: secrets or this server's own state",
	"errors":             "the recent-errors log is this machine's diagnostics",
	"acme_cache":         "ACME account key and certificates are this server's; the new one obtains its own",
	"messages_fts":       "the search index is rebuilt from the messages on import",
	"sqlite_sequence":    "carried as the \"sequence\" lines",
	"log_position":       "a place in this cluster's log; an import is a new chat's start",
	"bot_tokens_version": "a counter the server watches for token changes; it starts afresh",
	"push_subscriptions": "they belong to sessions, which are not exported; browsers subscribe again",
	"webhooks":           "an incoming webhook's URL holds a secret of the old server; its bot account is exported, make a new webhook",
	"bot_webhooks":       "a bot's outgoing webhook is signed with a secret of the old server; set the webhook again",
}

// notExportedPrefixes are the FTS5 index's own tables (messages_fts_data,
// _idx, _docsize, _config): rebuilt with it.
var notExportedPrefixes = []string{"messages_fts_"}

// ExportStats says what an export or import carried.
type ExportStats struct {
	Schema int
	Rows   map[string]int // by line type
	Lines  int            // row lines, without header, sequences and end
}

// String is the row counts in words, as the subcommands print them.
func (st ExportStats) String() string {
	var parts []string
	for _, t := range exportTables {
		if n := st.Rows[t.typ]; n > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", n, t.typ))
		}
	}
	if len(parts) == 0 {
		return "nothing"
	}
	return strings.Join(parts, ", ")
}

type exportHeader struct {
	NochatExport int    `json:"nochat_export"`
	Schema       int    `json:"schema"`
	ExportedAt   string `json:"exported_at"`
}

// ExportFile writes the database at path to w as an export file. It reads
// in one read transaction on a connection of its own: the file is the
// database as of one commit, and, the database being in WAL mode, the
// server's writer goes on meanwhile. Rows are streamed, one line at a
// time. Like BackupFile, the source is opened read-only and not as a Store.
func ExportFile(ctx context.Context, path string, w io.Writer, now time.Time) (ExportStats, error) {
	if _, err := os.Stat(path); err != nil {
		return ExportStats{}, fmt.Errorf("export: %w", err) // never create an empty database to export
	}
	src, err := sql.Open("sqlite", dsn(path, []string{"busy_timeout(5000)", "query_only(1)"}, "mode=ro"))
	if err != nil {
		return ExportStats{}, err
	}
	defer src.Close()
	src.SetMaxOpenConns(1)
	tx, err := src.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return ExportStats{}, fmt.Errorf("export: %w", err)
	}
	defer tx.Rollback()
	return export(ctx, tx, w, now)
}

func export(ctx context.Context, tx querier, w io.Writer, now time.Time) (ExportStats, error) {
	st := ExportStats{Rows: map[string]int{}}
	// The first read starts the snapshot; everything after reads the same.
	if err := tx.QueryRowContext(ctx, "PRAGMA user_version").Scan(&st.Schema); err != nil {
		return st, fmt.Errorf("export: %w", err)
	}
	if err := checkCoverage(ctx, tx); err != nil {
		return st, fmt.Errorf("export: %w", err)
	}
	bw := bufio.NewWriterSize(w, 64<<10)
	enc := json.NewEncoder(bw)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(exportHeader{ExportVersion, st.Schema, now.UTC().Format(time.RFC3339Nano)}); err != nil {
		return st, err
	}
	for _, t := range exportTables {
		types, err := columnTypes(ctx, tx, t.table)
		if err != nil {
			return st, fmt.Errorf("export %s: %w", t.table, err)
		}
		n, err := exportRows(ctx, tx, bw, t, types)
		st.Rows[t.typ] = n
		st.Lines += n
		if err != nil {
			return st, fmt.Errorf("export %s: %w", t.table, err)
		}
	}
	rows, err := tx.QueryContext(ctx, "SELECT name, seq FROM sqlite_sequence ORDER BY name")
	if err != nil {
		return st, fmt.Errorf("export sequences: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var s struct {
			Type string `json:"type"`
			Name string `json:"name"`
			Seq  int64  `json:"seq"`
		}
		s.Type = "sequence"
		if err := rows.Scan(&s.Name, &s.Seq); err != nil {
			return st, fmt.Errorf("export sequences: %w", err)
		}
		if err := enc.Encode(s); err != nil {
			return st, err
		}
	}
	if err := rows.Err(); err != nil {
		return st, fmt.Errorf("export sequences: %w", err)
	}
	if err := enc.Encode(struct {
		Type  string `json:"type"`
		Lines int    `json:"lines"`
	}{"end", st.Lines}); err != nil {
		return st, err
	}
	return st, bw.Flush()
}

// exportRows writes each row of t as one line: its columns in the order
// of t.columns, so that two exports of the same rows are the same bytes.
func exportRows(ctx context.Context, tx querier, w *bufio.Writer, t exportTable, types map[string]string) (int, error) {
	quoted := make([]string, len(t.columns))
	for i, c := range t.columns {
		quoted[i] = `"` + c + `"`
	}
	rows, err := tx.QueryContext(ctx, "SELECT "+strings.Join(quoted, ", ")+" FROM "+t.table+" ORDER BY "+t.order)
	if err != nil {
		return 0, err
	}
	defer rows.Close()
	vals := make([]any, len(t.columns))
	ptrs := make([]any, len(t.columns))
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	n := 0
	var line []byte
	for rows.Next() {
		if err := rows.Scan(ptrs...); err != nil {
			return n, err
		}
		line = append(line[:0], `{"type":"`...)
		line = append(line, t.typ...)
		line = append(line, `","row":{`...)
		for i, c := range t.columns {
			if i > 0 {
				line = append(line, ',')
			}
			line = append(line, '"')
			line = append(line, c...)
			line = append(line, `":`...)
			if line, err = appendValue(line, vals[i], types[c]); err != nil {
				return n, fmt.Errorf("column %s: %w", c, err)
			}
		}
		line = append(line, "}}\n"...)
		if _, err := w.Write(line); err != nil {
			return n, err
		}
		n++
	}
	return n, rows.Err()
}

// appendValue appends v, a value of a column of type typ, as JSON.
func appendValue(b []byte, v any, typ string) ([]byte, error) {
	switch v := v.(type) {
	case nil:
		return append(b, "null"...), nil
	case int64:
		return strconv.AppendInt(b, v, 10), nil
	case string:
		if typ == "BLOB" {
			return appendBase64(b, []byte(v)), nil
		}
		return appendString(b, v)
	case []byte:
		if typ == "TEXT" {
			return appendString(b, string(v))
		}
		return appendBase64(b, v), nil
	}
	return b, fmt.Errorf("a %T value, which no NoChat table holds", v)
}

func appendBase64(b, v []byte) []byte {
	b = append(b, '"')
	b = base64.StdEncoding.AppendEncode(b, v)
	return append(b, '"')
}

func appendString(b []byte, s string) ([]byte, error) {
	var sb strings.Builder
	enc := json.NewEncoder(&sb)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(s); err != nil {
		return b, err
	}
	return append(b, strings.TrimSuffix(sb.String(), "\n")...), nil
}

// querier is a transaction or a connection pool.
type querier interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// columnTypes maps table's columns to their declared types.
func columnTypes(ctx context.Context, q querier, table string) (map[string]string, error) {
	rows, err := q.QueryContext(ctx, "SELECT name, type FROM pragma_table_info(?)", table)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	types := map[string]string{}
	for rows.Next() {
		var name, typ string
		if err := rows.Scan(&name, &typ); err != nil {
			return nil, err
		}
		types[name] = strings.ToUpper(typ)
	}
	return types, rows.Err()
}

// checkCoverage is the guard for later migrations: every table is exported
// or left out for a stated reason, and every column of an exported table
// is exported or left out.
func checkCoverage(ctx context.Context, q querier) error {
	rows, err := q.QueryContext(ctx, "SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
	if err != nil {
		return err
	}
	var tables []string
	for rows.Next() {
		var name string
		if err := rows.Scan(&name); err != nil {
			rows.Close()
			return err
		}
		tables = append(tables, name)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	var problems []string
	for _, name := range tables {
		i := slices.IndexFunc(exportTables, func(t exportTable) bool { return t.table == name })
		if i < 0 {
			if _, ok := notExported[name]; !ok && !slices.ContainsFunc(notExportedPrefixes, func(p string) bool { return strings.HasPrefix(name, p) }) {
				problems = append(problems, fmt.Sprintf("table %s is neither exported nor left out for a reason (db/export.go)", name))
			}
			continue
		}
		t := exportTables[i]
		types, err := columnTypes(ctx, q, name)
		if err != nil {
			return err
		}
		for c := range types {
			if _, left := t.omit[c]; !left && !slices.Contains(t.columns, c) {
				problems = append(problems, fmt.Sprintf("column %s.%s is neither exported nor left out for a reason (db/export.go)", name, c))
			}
		}
		for _, c := range t.columns {
			if _, ok := types[c]; !ok {
				problems = append(problems, fmt.Sprintf("column %s.%s is exported but not in the schema", name, c))
			}
		}
	}
	if len(problems) > 0 {
		slices.Sort(problems)
		return errors.New(strings.Join(problems, "; "))
	}
	return nil
}
