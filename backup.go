package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"

	"nochat/db"
)

// runBackup is `nochat backup [-db file] [-force] DEST`: a consistent copy of
// the database, safe while the server runs, as a plain SQLite file.
func runBackup(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	dbPath := envOr(getenv, "NOCHAT_DB", defaultDB)
	flags := flag.NewFlagSet("nochat backup", flag.ContinueOnError)
	flags.SetOutput(stderr)
	flags.Usage = func() {
		fmt.Fprintf(stderr, "Usage: nochat backup [-db file] [-force] DEST\n\nCopies the database to DEST, a plain SQLite file, consistently, also while NoChat runs.\nTo restore: stop NoChat, copy the backup into place (as the -db file), start NoChat.\n\nFlags:\n")
		flags.PrintDefaults()
	}
	flags.StringVar(&dbPath, "db", dbPath, "SQLite database `file` to back up (NOCHAT_DB)")
	force := flags.Bool("force", false, "replace DEST if it exists")
	// Flags may come before or after DEST.
	var dest string
	for rest := args[1:]; ; rest = flags.Args()[1:] {
		if err := flags.Parse(rest); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil
			}
			return usageError{err}
		}
		if flags.NArg() == 0 {
			break
		}
		if dest != "" {
			return usageError{fmt.Errorf("backup: one DEST only, got %q and %q", dest, flags.Arg(0))}
		}
		dest = flags.Arg(0)
	}
	if dest == "" {
		return usageError{errors.New("backup: DEST is missing: nochat backup [-db file] [-force] DEST")}
	}
	if _, err := os.Stat(dbPath); err != nil {
		return fmt.Errorf("backup: no database at %s (set -db or NOCHAT_DB): %w", dbPath, err)
	}

	backup := db.BackupFile
	if *force {
		backup = db.ReplaceBackup
	}
	err := backup(ctx, dbPath, dest)
	if errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("backup: %s exists; -force replaces it", dest)
	}
	if err != nil {
		return err
	}
	fi, err := os.Stat(dest)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "backed up %s to %s (%d bytes)\n", dbPath, dest, fi.Size())
	return nil
}
