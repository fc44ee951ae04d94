package main

import (
	"context"
	"fmt"
	"log/slog"

	"nochat/chat"
	"nochat/db"
)

// rekeyAccounts brings the stored accounts' name keys up to the current
// chat.NameKey, which a new version may have changed (it now reads Cyrillic
// and Greek look-alike capitals as Latin ones), before anyone can sign up
// under a name the old keys would let through. Two accounts the new rule
// finds alike both stay, each signing in by its own name; the admin is
// told, in a warning for each pair.
func rekeyAccounts(ctx context.Context, store *db.Store, log *slog.Logger) error {
	changed, conflicts, err := store.RekeyAccounts(ctx, storedNameKey)
	if err != nil {
		return err
	}
	if changed > 0 {
		log.Info("account name keys recomputed", "changed", changed)
	}
	for _, c := range conflicts {
		// The accounts go in the message, not only in attributes: the log
		// collapses lines with one message, and each pair must be seen.
		log.Warn(fmt.Sprintf("accounts %d %q and %d %q look alike as names are now compared; one may want renaming",
			c.ID, c.Name, c.OtherID, c.OtherName),
			"account", c.ID, "name", c.Name, "other_account", c.OtherID, "other_name", c.OtherName)
	}
	return nil
}

// storedNameKey is chat.NameKey for a name already stored: a name refused
// only for invisible characters (accepted by an older version) still has
// the key of its visible part, as NameKey returns it.
func storedNameKey(name string) (string, error) {
	key, err := chat.NameKey(name)
	if key != "" {
		return key, nil
	}
	return "", err
}
