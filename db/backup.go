package db

import (
	"context"
	"database/sql"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// BackupFile writes a consistent copy of the SQLite database at path to dest,
// a new file: a plain database, restored by copying it back into place. It
// refuses a dest that exists (an error wrapping fs.ErrExist) and removes a
// half-written dest when it fails.
//
// It is SQLite's VACUUM INTO, run in one read transaction on a connection of
// its own: the copy is the database as of one commit, and, the database being
// in WAL mode, writers go on while it runs. The source is opened read-only
// and not as a Store: nothing is migrated or written, so `nochat backup` can
// run beside a server of another version.
func BackupFile(ctx context.Context, path, dest string) error {
	if _, err := os.Stat(path); err != nil {
		return fmt.Errorf("backup: %w", err) // never create an empty database to back up
	}
	if _, err := os.Lstat(dest); err == nil {
		return fmt.Errorf("backup: %s: %w", dest, fs.ErrExist)
	}
	// mode=ro: this connection cannot write to the source. The read pool's
	// query_only would refuse VACUUM INTO, which counts as a write.
	src, err := sql.Open("sqlite", dsn(path, []string{"busy_timeout(5000)"}, "mode=ro"))
	if err != nil {
		return fmt.Errorf("backup: open %s: %w", path, err)
	}
	defer src.Close()
	src.SetMaxOpenConns(1)

	if _, err := src.ExecContext(ctx, "VACUUM INTO ?", dest); err != nil {
		os.Remove(dest)
		return fmt.Errorf("backup %s to %s: %w", path, dest, err)
	}
	// VACUUM INTO writes the copy without syncing it: make it durable before
	// calling it a backup, file and directory entry both.
	if err := syncFile(dest); err != nil {
		os.Remove(dest)
		return fmt.Errorf("backup: %w", err)
	}
	// Best effort: some filesystems (FAT on a USB stick) cannot sync a
	// directory, and the file itself is already on disk.
	syncFile(filepath.Dir(dest))
	return nil
}

func syncFile(name string) error {
	f, err := os.Open(name)
	if err != nil {
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("sync %s: %w", name, err)
	}
	return f.Close()
}
