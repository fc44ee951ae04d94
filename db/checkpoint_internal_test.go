package db

import (
	"context"
	"path/filepath"
	"testing"
)

// The writer's connection never checkpoints inside its COMMIT: that is the
// checkpointer's job, on its own connection.
func TestWriterConnectionDoesNotAutoCheckpoint(t *testing.T) {
	s, err := Open(context.Background(), filepath.Join(t.TempDir(), "nochat.db"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var pages int
	if err := s.write.QueryRow("PRAGMA wal_autocheckpoint").Scan(&pages); err != nil {
		t.Fatal(err)
	}
	if pages != 0 {
		t.Errorf("writer's wal_autocheckpoint = %d pages, want 0 (checkpoints off the commit)", pages)
	}
}
