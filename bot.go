package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"nochat/chat"
	"nochat/db"
	"nochat/handlers"
	"nochat/outhook"
)

// Bots from the shell: `nochat bot create|list|rotate|revoke`, against the
// same database the server uses, also while it runs (WAL and a busy
// timeout let both write). The server checks tokens against the database
// at each request and watches for revocations (handlers.WatchBotTokens),
// so a change made here counts there at once.

const (
	// botBurst is how many messages a bot may send at once before
	// -bot-rate holds it back: a few alerts that come together (several
	// sensors at once) pass, a looping script does not flood the room.
	botBurst = 5
	// botWatchEvery is how soon the server closes the sockets of a bot
	// whose token another process revoked: one small read a second.
	botWatchEvery = time.Second
	// actorShell names `nochat bot` in the audit list.
	actorShell = "shell"
)

// runBot is `nochat bot COMMAND [-db file] ...`.
func runBot(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	usage := "Usage:\n  nochat bot create NAME [-rooms a,b] [-avatar EMOJI] [-webhook URL] [-db file]   make a bot, print its token (and webhook secret) once\n  nochat bot list [-db file]\n  nochat bot rotate NAME [-db file]               a new token; the old one stops at once\n  nochat bot revoke NAME [-db file]               no token; its sockets close within a second\n"
	if len(args) < 2 {
		fmt.Fprint(stderr, usage)
		return usageError{errors.New("bot: a command is missing: create, list, rotate or revoke")}
	}
	cmd := args[1]
	dbPath := envOr(getenv, "NOCHAT_DB", defaultDB)
	flags := flag.NewFlagSet("nochat bot "+cmd, flag.ContinueOnError)
	flags.SetOutput(stderr)
	flags.Usage = func() { fmt.Fprint(stderr, usage+"\nFlags:\n"); flags.PrintDefaults() }
	flags.StringVar(&dbPath, "db", dbPath, "SQLite database `file` (NOCHAT_DB)")
	var rooms, avatar, webhook, webhookAllow *string
	if cmd == "create" {
		rooms = flags.String("rooms", "", "the `slugs` of the rooms the bot may read and post in, comma-separated")
		avatar = flags.String("avatar", "", "one `emoji` the bot shows in place of its initials")
		webhook = flags.String("webhook", "", "the bot's outgoing webhook `URL`, called when it is @mentioned or sent a direct message")
		webhookAllow = flags.String("webhook-allow", envOr(getenv, "NOCHAT_WEBHOOK_ALLOW", ""), "`hosts` and host:port pairs a webhook may call though private or loopback, as the server's -webhook-allow (NOCHAT_WEBHOOK_ALLOW)")
	}
	// Flags may come before or after NAME.
	var names []string
	for rest := args[2:]; ; rest = flags.Args()[1:] {
		if err := flags.Parse(rest); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil
			}
			return usageError{err}
		}
		if flags.NArg() == 0 {
			break
		}
		names = append(names, flags.Arg(0))
	}
	switch cmd {
	case "list":
		if len(names) != 0 {
			return usageError{errors.New("bot list: takes no NAME")}
		}
	case "create", "rotate", "revoke":
		if len(names) != 1 {
			return usageError{fmt.Errorf("bot %s: one NAME, please: nochat bot %s NAME", cmd, cmd)}
		}
	default:
		fmt.Fprint(stderr, usage)
		return usageError{fmt.Errorf("bot: unknown command %q: create, list, rotate or revoke", cmd)}
	}
	if cmd == "create" {
		a, err := chat.CleanAvatar(*avatar)
		if err != nil {
			return usageError{fmt.Errorf("bot create: -%w", err)}
		}
		*avatar = a
	}
	if cmd == "create" && *webhook != "" {
		// Checked before the database is opened: a refused URL makes no bot.
		allow, err := outhook.ParseAllow(*webhookAllow)
		if err != nil {
			return usageError{err}
		}
		if err := outhook.NewGuard(allow, nil).CheckURL(ctx, *webhook); err != nil {
			return fmt.Errorf("bot create: -webhook refused: %w", err)
		}
	}
	if _, err := os.Stat(dbPath); err != nil {
		return fmt.Errorf("bot: no database at %s (set -db or NOCHAT_DB): %w", dbPath, err)
	}
	store, err := db.Open(ctx, dbPath, db.Options{})
	if err != nil {
		return err
	}
	defer store.Close()
	if cmd != "list" {
		if err := refuseOnNode(ctx, store, "bot", "make and change bots on the dashboard (Bots) of any node, which every node shares"); err != nil {
			return err
		}
	}
	switch cmd {
	case "create":
		return botCreate(ctx, store, names[0], *rooms, *avatar, *webhook, stdout, stderr)
	case "list":
		return botList(ctx, store, stdout)
	case "rotate":
		return botRotate(ctx, store, names[0], stdout, stderr)
	default:
		return botRevoke(ctx, store, names[0], stdout, stderr)
	}
}

// refuseOnNode refuses a command's write to the database of a cluster's
// node: written there alone, behind the cluster's log, it would make that
// node differ from the others for good. instead says what to do.
func refuseOnNode(ctx context.Context, store *db.Store, command, instead string) error {
	pos, err := store.LogPosition(ctx)
	if err != nil {
		return err
	}
	if pos > 0 {
		return fmt.Errorf("%s: this database is a cluster node's, and a change made here would be this node's alone: %s", command, instead)
	}
	return nil
}

// botCreate makes a bot named name in the rooms with the comma-separated
// slugs, with the avatar and the outgoing webhook url (both checked
// already; "" for none), and prints its token, and its webhook's secret,
// once.
func botCreate(ctx context.Context, store *db.Store, name, slugs, avatar, webhook string, stdout, stderr io.Writer) error {
	display, key, err := chat.CleanAccountName(name, chat.DefaultMaxNameLen)
	if err != nil {
		return fmt.Errorf("bot create: %q: %w", name, err)
	}
	all, err := store.Rooms(ctx)
	if err != nil {
		return err
	}
	var ids []int64
	var granted []string
	for _, slug := range strings.Split(slugs, ",") {
		if slug = strings.TrimSpace(slug); slug == "" {
			continue
		}
		found := false
		for _, r := range all {
			if r.Slug == slug && r.Kind != db.KindDirect { // a direct room's people are fixed
				ids, granted, found = append(ids, r.ID), append(granted, r.Slug), true
				break
			}
		}
		if !found {
			return fmt.Errorf("bot create: there is no room %q (nochat bot create NAME -rooms slug,slug)", slug)
		}
	}
	token, hash, prefix := handlers.NewBotToken()
	now := time.Now()
	bot, err := store.CreateBot(ctx, display, key, ids, hash, prefix, now)
	if errors.Is(err, db.ErrNameTaken) {
		return fmt.Errorf("bot create: the name %q is taken (by a person or a bot, or one that looks the same)", display)
	}
	if err != nil {
		return err
	}
	if avatar != "" {
		if err := store.SetBotAvatar(ctx, bot.ID, avatar); err != nil {
			return fmt.Errorf("bot create: the bot is made, its avatar is not: %w", err)
		}
	}
	audit(ctx, store, stderr, "bot create", bot.Name, "rooms: "+orNone(strings.Join(granted, ", ")))
	fmt.Fprintf(stdout, "created bot %s (rooms: %s)\ntoken (shown this once; keep it secret):\n%s\n", bot.Name, orNone(strings.Join(granted, ", ")), token)
	if webhook != "" {
		secret := outhook.NewSecret()
		if err := store.SetBotWebhook(ctx, bot.ID, webhook, secret, now); err != nil {
			return fmt.Errorf("bot create: the bot is made, its webhook is not: %w", err)
		}
		audit(ctx, store, stderr, "bot webhook", bot.Name, "calls "+outhook.Host(webhook))
		fmt.Fprintf(stdout, "webhook: %s\nwebhook secret, to check the X-NoChat-Signature of its requests (shown this once):\n%s\n", webhook, secret)
	}
	return nil
}

// botNamed finds the bot called name.
func botNamed(ctx context.Context, store *db.Store, name string) (db.Account, error) {
	_, key, err := chat.CleanAccountName(name, chat.DefaultMaxNameLen)
	if err != nil {
		return db.Account{}, fmt.Errorf("no bot is called %q", name)
	}
	a, err := store.AccountByNameKey(ctx, key)
	if errors.Is(err, db.ErrNotFound) || err == nil && a.Role != db.RoleBot {
		return db.Account{}, fmt.Errorf("no bot is called %q", name)
	}
	return a, err
}

func botRotate(ctx context.Context, store *db.Store, name string, stdout, stderr io.Writer) error {
	bot, err := botNamed(ctx, store, name)
	if err != nil {
		return fmt.Errorf("bot rotate: %w", err)
	}
	token, hash, prefix := handlers.NewBotToken()
	if err := store.SetBotToken(ctx, bot.ID, hash, prefix); err != nil {
		return err
	}
	audit(ctx, store, stderr, "bot rotate", bot.Name, "a new token; the old one stopped")
	fmt.Fprintf(stdout, "new token for bot %s (shown this once; the old one no longer works):\n%s\n", bot.Name, token)
	return nil
}

func botRevoke(ctx context.Context, store *db.Store, name string, stdout, stderr io.Writer) error {
	bot, err := botNamed(ctx, store, name)
	if err != nil {
		return fmt.Errorf("bot revoke: %w", err)
	}
	if err := store.SetBotToken(ctx, bot.ID, nil, ""); err != nil {
		return err
	}
	audit(ctx, store, stderr, "bot revoke", bot.Name, "no token; its open sockets close")
	fmt.Fprintf(stdout, "revoked the token of bot %s: it opens nothing now (nochat bot rotate %s gives it a new one)\n", bot.Name, bot.Name)
	return nil
}

func botList(ctx context.Context, store *db.Store, stdout io.Writer) error {
	bots, err := store.Bots(ctx)
	if err != nil {
		return err
	}
	all, err := store.Rooms(ctx)
	if err != nil {
		return err
	}
	slug := make(map[int64]string, len(all))
	for _, r := range all {
		slug[r.ID] = r.Slug
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tROOMS\tTOKEN\tCREATED\tLAST USED\tWEBHOOK\tAVATAR") // last: an emoji's width is the terminal's guess
	for _, b := range bots {
		var rooms []string
		for _, id := range b.Rooms {
			rooms = append(rooms, slug[id])
		}
		token := "revoked"
		if b.HasToken {
			token = b.Prefix + "…"
		}
		used := "never"
		if !b.LastUsed.IsZero() {
			used = b.LastUsed.UTC().Format(time.DateTime)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", b.Name, orNone(strings.Join(rooms, ",")), token, b.Created.UTC().Format(time.DateTime), used, orNone(b.Webhook), orNone(b.Avatar))
	}
	return tw.Flush()
}

// audit adds a shell action to the audit list; the action is done by
// then, so a line that cannot be stored is only reported.
func audit(ctx context.Context, store *db.Store, stderr io.Writer, action, target, detail string) {
	if err := store.Audit(ctx, db.AuditEntry{At: time.Now(), Actor: actorShell, Action: action, Target: target, Detail: detail}); err != nil {
		fmt.Fprintln(stderr, "audit line not stored:", err)
	}
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}
