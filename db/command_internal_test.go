package db

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
)

// Every command knownOps names is one applyCommand applies: one left out
// of either would be waited on as a later version's, or skipped.
func TestEveryKnownCommandIsApplied(t *testing.T) {
	ctx := context.Background()
	s, err := Open(ctx, filepath.Join(t.TempDir(), "nochat.db"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for op := range knownOps {
		tx, err := s.write.BeginTx(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		// Empty commands: most are refused or malformed, none is news.
		if _, err := applyCommand(ctx, tx, command{Op: op}, 0); errors.Is(err, ErrLaterVersion) {
			t.Errorf("%s: known, but applyCommand does not apply it", op)
		}
		tx.Rollback()
	}
	tx, err := s.write.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	if _, err := applyCommand(ctx, tx, command{Op: "move_the_moon"}, 0); !errors.Is(err, ErrLaterVersion) {
		t.Errorf("an unknown op: %v, want ErrLaterVersion", err)
	}
}
