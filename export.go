package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"nochat/chat"
	"nochat/db"
	"nochat/handlers"
)

// parseOneArg parses flags that may come before or after one argument,
// which it returns ("" for none). A bad flag is a usageError; -h is
// flag.ErrHelp.
func parseOneArg(flags *flag.FlagSet, args []string, cmd string) (string, error) {
	var arg string
	for rest := args; ; rest = flags.Args()[1:] {
		if err := flags.Parse(rest); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return "", err
			}
			return "", usageError{err}
		}
		if flags.NArg() == 0 {
			return arg, nil
		}
		if arg != "" {
			return "", usageError{fmt.Errorf("%s: one FILE only, got %q and %q", cmd, arg, flags.Arg(0))}
		}
		arg = flags.Arg(0)
	}
}

// runExport is `nochat export [-db file] [-force] FILE`: the chat as one
// JSON Lines file (db.ExportFile), safe while the server runs. FILE "-"
// is standard output.
func runExport(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	dbPath := envOr(getenv, "NOCHAT_DB", defaultDB)
	flags := flag.NewFlagSet("nochat export", flag.ContinueOnError)
	flags.SetOutput(stderr)
	flags.Usage = func() {
		fmt.Fprintf(stderr, "Usage: nochat export [-db file] [-force] FILE\n\nWrites rooms, people (without passwords), messages with their edits, reactions and mentions,\nand files to FILE, one JSON Lines file, consistently, also while NoChat runs. FILE - is standard output.\nLoad it into a new database with nochat import.\n\nFlags:\n")
		flags.PrintDefaults()
	}
	flags.StringVar(&dbPath, "db", dbPath, "SQLite database `file` to export (NOCHAT_DB)")
	force := flags.Bool("force", false, "replace FILE if it exists")
	dest, err := parseOneArg(flags, args[1:], "export")
	if errors.Is(err, flag.ErrHelp) {
		return nil
	}
	if err != nil {
		return err
	}
	if dest == "" {
		return usageError{errors.New("export: FILE is missing: nochat export [-db file] [-force] FILE")}
	}
	if _, err := os.Stat(dbPath); err != nil {
		return fmt.Errorf("export: no database at %s (set -db or NOCHAT_DB): %w", dbPath, err)
	}
	if dest == "-" {
		st, err := db.ExportFile(ctx, dbPath, stdout, time.Now())
		if err != nil {
			return err
		}
		fmt.Fprintf(stderr, "exported %s: %s\n", dbPath, st)
		return nil
	}
	if _, err := os.Lstat(dest); err == nil && !*force {
		return fmt.Errorf("export: %s exists; -force replaces it", dest)
	}
	// Written beside dest and renamed into place once it is whole and on
	// disk: dest is never a half-written export.
	f, err := os.CreateTemp(filepath.Dir(dest), filepath.Base(dest)+".partial-*")
	if err != nil {
		return fmt.Errorf("export: %w", err)
	}
	st, err := db.ExportFile(ctx, dbPath, f, time.Now())
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(f.Name(), dest)
	}
	if err != nil {
		os.Remove(f.Name())
		return fmt.Errorf("export %s to %s: %w", dbPath, dest, err)
	}
	fi, err := os.Stat(dest)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "exported %s to %s (%d bytes): %s\n", dbPath, dest, fi.Size(), st)
	return nil
}

// runImport is `nochat import [-db file] [-tutorial] FILE`: an export
// file into an empty database, or the Node tutorial's history appended to
// the default room. FILE "-" is standard input.
func runImport(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	dbPath := envOr(getenv, "NOCHAT_DB", defaultDB)
	flags := flag.NewFlagSet("nochat import", flag.ContinueOnError)
	flags.SetOutput(stderr)
	flags.Usage = func() {
		fmt.Fprintf(stderr, "Usage: nochat import [-db file] [-tutorial] FILE\n\nLoads FILE, written by nochat export, into an empty database (a new -db file): ids are kept,\nso links to messages keep working. People have no password afterwards: the import prints a\none-time reset link for each admin. With -tutorial, FILE is the Node tutorial's history\n(a JSON array of {\"message\", \"user\", \"timestamp\"}), appended to the default room as\nguests' messages. FILE - is standard input. Stop NoChat while importing.\n\nFlags:\n")
		flags.PrintDefaults()
	}
	flags.StringVar(&dbPath, "db", dbPath, "SQLite database `file` to import into; created if missing (NOCHAT_DB)")
	tutorial := flags.Bool("tutorial", false, "FILE is the Node tutorial's history, not a NoChat export")
	maxLine := flags.String("max-line", "64MiB", "longest `size` of one line of an export file (a file's line holds it in base64)")
	maxMessage := flags.Int("max-message", envInt(getenv, "NOCHAT_MAX_MESSAGE", 2000), "most `characters` in one tutorial message, as the server's -max-message (NOCHAT_MAX_MESSAGE)")
	src, err := parseOneArg(flags, args[1:], "import")
	if errors.Is(err, flag.ErrHelp) {
		return nil
	}
	if err != nil {
		return err
	}
	if src == "" {
		return usageError{errors.New("import: FILE is missing: nochat import [-db file] [-tutorial] FILE")}
	}
	lineMax, err := parseBytes(*maxLine)
	if err != nil || lineMax < 1<<10 || lineMax > 1<<30 {
		return usageError{fmt.Errorf("-max-line %q: want a size from 1KiB to 1GiB", *maxLine)}
	}
	if *maxMessage < 1 || *maxMessage > 100000 {
		return usageError{fmt.Errorf("-max-message %d: want a whole number from 1 to 100000", *maxMessage)}
	}
	in := io.Reader(os.Stdin)
	if src != "-" {
		f, err := os.Open(src)
		if err != nil {
			return fmt.Errorf("import: %w", err)
		}
		defer f.Close()
		in = f
	}
	store, err := db.Open(ctx, dbPath, db.Options{})
	if err != nil {
		return err
	}
	defer store.Close()
	if err := refuseOnNode(ctx, store, "import", "a cluster takes no import yet; import into a single node's database"); err != nil {
		return err
	}
	if *tutorial {
		return importTutorial(ctx, store, in, *maxMessage, src, dbPath, stdout)
	}
	st, err := store.Import(ctx, in, int(lineMax))
	if err != nil {
		var le *db.LineError
		if errors.As(err, &le) {
			return fmt.Errorf("import %s: %w; nothing was imported", src, err)
		}
		return err
	}
	fmt.Fprintf(stdout, "imported %s into %s: %s\n", src, dbPath, st)
	return printResetLinks(ctx, store, stdout)
}

// printResetLinks gives each active admin a one-time reset link: an
// export has no passwords, and with admins present there is no set-up
// link. The admins then make links for the others on the dashboard.
func printResetLinks(ctx context.Context, store *db.Store, stdout io.Writer) error {
	people, err := store.People(ctx)
	if err != nil {
		return err
	}
	var admins, others int
	for _, p := range people {
		if p.Deactivated {
			continue
		}
		if p.Role != db.RoleAdmin {
			others++
			continue
		}
		if admins == 0 {
			fmt.Fprintln(stdout, "The export has no passwords. To sign in, each admin opens their one-time link at NoChat's address (as in http://pi.local:8080/reset/...) within 24 hours, and chooses a password:")
		}
		admins++
		path, err := handlers.NewResetPath(ctx, store, p.ID, time.Now())
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "  %s: %s\n", p.Name, path)
	}
	if others > 0 {
		fmt.Fprintf(stdout, "The %d other people get their links from an admin: Admin, People, Reset link.\n", others)
	}
	return nil
}

// tutorialMessage is one message of the Node tutorial's history. Other
// fields (NoChat's own /discussion/latest adds id and more) are ignored,
// so that history can be imported too.
type tutorialMessage struct {
	Message   *string `json:"message"`
	User      *string `json:"user"`
	Timestamp *int64  `json:"timestamp"`
}

// importTutorial appends the tutorial's history to the default room, all
// or nothing: every message is held to a live guest send's rules, and
// one that breaks them (too long, empty, a member's name) refuses the
// file with its position, rather than storing words nobody wrote.
func importTutorial(ctx context.Context, store *db.Store, in io.Reader, maxMessage int, src, dbPath string, stdout io.Writer) error {
	dec := json.NewDecoder(in)
	if tok, err := dec.Token(); err != nil || tok != json.Delim('[') {
		return errors.New(`import -tutorial: not the tutorial's history: want a JSON array of {"message": "...", "user": "...", "timestamp": ms}`)
	}
	const maxName = 32 // chat.Options' MaxNameLen: no flag sets it
	var msgs []db.GuestMessage
	for i := 1; dec.More(); i++ {
		var m tutorialMessage
		if err := dec.Decode(&m); err != nil {
			return fmt.Errorf("import -tutorial: message %d: %v; nothing was imported", i, err)
		}
		bad := func(why string) error {
			return fmt.Errorf("import -tutorial: message %d: %s; nothing was imported", i, why)
		}
		switch {
		case m.Message == nil:
			return bad(`no "message"`)
		case m.Timestamp == nil || *m.Timestamp <= 0:
			return bad(`no "timestamp" (Unix milliseconds)`)
		case m.User == nil:
			m.User = new(string) // the tutorial's clients may send none: the default name
		}
		user, text, err := chat.CleanGuestMessage(*m.User, *m.Message, maxName, maxMessage)
		if err != nil {
			return bad(err.Error())
		}
		if key, err := chat.NameKey(user); err == nil {
			if _, err := store.AccountByNameKey(ctx, key); err == nil {
				return bad(fmt.Sprintf("%q is a member's name: a guest's message may not pass for theirs", user))
			}
		}
		msgs = append(msgs, db.GuestMessage{User: user, Message: text, Timestamp: *m.Timestamp})
	}
	if tok, err := dec.Token(); err != nil || tok != json.Delim(']') {
		return errors.New("import -tutorial: the array does not end; nothing was imported")
	}
	first, last, err := store.ImportGuestMessages(ctx, db.DefaultRoom, msgs)
	if err != nil {
		return err
	}
	if len(msgs) == 0 {
		fmt.Fprintf(stdout, "imported %s into %s: no messages\n", src, dbPath)
		return nil
	}
	fmt.Fprintf(stdout, "imported %s into %s: %d messages in the default room, ids %d to %d\n", src, dbPath, len(msgs), first, last)
	return nil
}

// envInt is getenv's name as a whole number, def if unset or not one (the
// flag's own check then reports a bad value given on the command line).
func envInt(getenv func(string) string, name string, def int) int {
	if n, err := strconv.Atoi(getenv(name)); err == nil {
		return n
	}
	return def
}
