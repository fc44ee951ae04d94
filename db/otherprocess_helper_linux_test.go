package db

import (
	"fmt"
	"os"
	"os/exec"
	"syscall"
	"testing"
)

// The tests of a second process beside a Store (here and in package
// db_test) share these: SQLite coordinates processes with POSIX advisory
// locks on the database's -shm file, and a process loses all of its locks
// on a file when it closes any descriptor of it, SQLite's own or not.

// OtherProcess runs this test binary again as the helper named by what
// (db_test's TestHelperProcess), with the database's path, and returns
// what it printed.
func OtherProcess(t *testing.T, what, path string) string {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperProcess$")
	cmd.Env = append(os.Environ(), "NOCHAT_HELPER="+what, "NOCHAT_HELPER_DB="+path)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("helper %s: %v\n%s", what, err, out)
	}
	return string(out)
}

// LockedByUs is what the "lock" helper prints when this process holds
// SQLite's read lock on the WAL index's DMS byte.
func LockedByUs() string { return fmt.Sprintf("type=%d pid=%d", syscall.F_RDLCK, os.Getpid()) }
