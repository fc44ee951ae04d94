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
// refuses a dest that exists (an error wrapping fs.ErrExist). The copy is
// written beside dest and renamed into place once it is on disk, so dest is
// never a half-written backup; a failed one leaves nothing behind.
//
// It is SQLite's VACUUM INTO, run in one read transaction on a connection of
// its own: the copy is the database as of one commit, and, the database being
// in WAL mode, writers go on while it runs. The source is opened read-only
// and not as a Store: nothing is migrated or written, so `nochat backup` can
// run beside a server of another version.
func BackupFile(ctx context.Context, path, dest string) error {
	return backup(ctx, path, dest, false)
}

// ReplaceBackup is BackupFile over a dest that may exist: the old backup is
// replaced only by a whole new one.
func ReplaceBackup(ctx context.Context, path, dest string) error {
	return backup(ctx, path, dest, true)
}

func backup(ctx context.Context, path, dest string, replace bool) error {
	if _, err := os.Stat(path); err != nil {
		return fmt.Errorf("backup: %w", err) // never create an empty database to back up
	}
	exists := func() error {
		if _, err := os.Lstat(dest); err == nil && !replace {
			return fmt.Errorf("backup: %s: %w", dest, fs.ErrExist)
		}
		return nil
	}
	if err := exists(); err != nil {
		return err
	}
	// A fresh name beside dest (same file system, so the rename is atomic);
	// VACUUM INTO wants one that does not exist yet.
	f, err := os.CreateTemp(filepath.Dir(dest), filepath.Base(dest)+".partial-*")
	if err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	tmp := f.Name()
	f.Close()
	os.Remove(tmp)
	if err := vacuumInto(ctx, path, tmp); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("backup %s to %s: %w", path, dest, err)
	}
	if err := exists(); err != nil { // taken meanwhile
		os.Remove(tmp)
		return err
	}
	if err := os.Rename(tmp, dest); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("backup: %w", err)
	}
	// Best effort: some filesystems (FAT on a USB stick) cannot sync a
	// directory, and the file itself is already on disk.
	syncFile(filepath.Dir(dest))
	return nil
}

// vacuumInto writes the copy to dest, a name that does not exist, and syncs
// it: VACUUM INTO does not.
func vacuumInto(ctx context.Context, path, dest string) error {
	// mode=ro: this connection cannot write to the source. The read pool's
	// query_only would refuse VACUUM INTO, which counts as a write.
	src, err := sql.Open("sqlite", dsn(path, []string{"busy_timeout(5000)"}, "mode=ro"))
	if err != nil {
		return err
	}
	defer src.Close()
	src.SetMaxOpenConns(1)
	if _, err := src.ExecContext(ctx, "VACUUM INTO ?", dest); err != nil {
		return err
	}
	return syncFile(dest)
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
