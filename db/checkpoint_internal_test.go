package db

import (
	"context"
	"path/filepath"
	"testing"
)

// The writer's connection checkpoints inside its COMMIT only past twice
// the checkpointer's threshold: a backstop under back-to-back commits.
func TestWriterCheckpointsOnlyAsABackstop(t *testing.T) {
	s, err := Open(context.Background(), filepath.Join(t.TempDir(), "nochat.db"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var pages int
	if err := s.write.QueryRow("PRAGMA wal_autocheckpoint").Scan(&pages); err != nil {
		t.Fatal(err)
	}
	if want := int(backstopPages(DefaultCheckpointAfter)); pages != want || want != 2000 {
		t.Errorf("writer's wal_autocheckpoint = %d pages, want %d (twice the checkpointer's threshold)", pages, want)
	}
}
