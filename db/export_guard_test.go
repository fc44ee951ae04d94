package db

import (
	"context"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestExportCoversEveryTable lists the tables of a freshly migrated
// database and fails for one that an export neither carries nor leaves out
// for a stated reason, and for a column of an exported table in neither
// list: whoever adds a table or a column (bots, webhooks, their tokens)
// decides whether an export carries it.
func TestExportCoversEveryTable(t *testing.T) {
	ctx := context.Background()
	s, err := Open(ctx, filepath.Join(t.TempDir(), "nochat.db"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	rows, err := s.write.QueryContext(ctx, "SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
	if err != nil {
		t.Fatal(err)
	}
	var tables []string
	for rows.Next() {
		var name string
		if err := rows.Scan(&name); err != nil {
			t.Fatal(err)
		}
		tables = append(tables, name)
	}
	rows.Close()
	for _, name := range tables {
		exported := slices.ContainsFunc(exportTables, func(t exportTable) bool { return t.table == name })
		_, left := notExported[name]
		left = left || slices.ContainsFunc(notExportedPrefixes, func(p string) bool { return strings.HasPrefix(name, p) })
		switch {
		case exported && left:
			t.Errorf("table %s is both exported and left out", name)
		case !exported && !left:
			t.Errorf("table %s is neither exported nor left out for a reason: add it to exportTables or notExported in db/export.go", name)
		}
	}
	if err := checkCoverage(ctx, s.write); err != nil {
		t.Errorf("checkCoverage: %v", err)
	}

	// The guard catches what a later migration could add: a table, and a
	// secret column in an exported table.
	for _, q := range []string{
		"CREATE TABLE gadgets (id INTEGER PRIMARY KEY, secret TEXT) STRICT",
		"ALTER TABLE accounts ADD COLUMN token_hash BLOB",
	} {
		if _, err := s.write.ExecContext(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	err = checkCoverage(ctx, s.write)
	if err == nil || !strings.Contains(err.Error(), "table gadgets is neither exported") || !strings.Contains(err.Error(), "column accounts.token_hash is neither exported") {
		t.Fatalf("checkCoverage with a new table and column = %v; want both named", err)
	}
}
