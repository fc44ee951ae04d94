package dbtest

import (
	"context"
	"database/sql"
	"testing"

	"nochat/db"
)

// AppliedBefore makes the closed database at path a node that applied the
// first entry of l (which it publishes: a guest's message) before, as an
// earlier version's cluster did, when it shared guests' messages only: the
// accounts and rooms the database holds are its own, not the log's.
func AppliedBefore(t testing.TB, path string, l db.Stream) {
	t.Helper()
	l.Publish(context.Background(), []db.StreamEntry{{Key: "k1", Data: []byte(`{"User":"cy","Message":"an earlier entry","At":1}`)}})
	raw, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	if _, err := raw.Exec("UPDATE log_position SET seq = 1"); err != nil {
		t.Fatal(err)
	}
}
