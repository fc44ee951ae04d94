package db

import "context"

// DeleteMessagesOfInOneCommand makes the command a ban's deletions were
// before each became an event of the log (opDeleteMessagesOf): for the
// tests of a log that still holds it.
func (s *Store) DeleteMessagesOfInOneCommand(ctx context.Context, accountID int64) (map[int64][]int64, error) {
	r, err := s.command(ctx, command{Op: opDeleteMessagesOf, AccountID: accountID})
	return r.Deleted, err
}
