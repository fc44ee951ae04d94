package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"nochat/chat"
	"nochat/db"
	"nochat/handlers"
)

// Incoming webhooks from the shell: `nochat webhook create|list|delete`,
// against the same database the server uses, also while it runs. The
// server reads a webhook from the database at every request, so one made
// here works there at once, and one deleted here is 404 there at once.
// The checks are the dashboard's (handlers.CreateWebhook).

// runWebhook is `nochat webhook COMMAND [-db file] ...`.
func runWebhook(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	usage := "Usage:\n  nochat webhook create -room SLUG [-name NAME] [-url https://chat.example.org] [-db file]\n                                      make one, print its URL once\n  nochat webhook list [-db file]\n  nochat webhook delete ID [-db file]  its URL stops working at once\n"
	if len(args) < 2 {
		fmt.Fprint(stderr, usage)
		return usageError{errors.New("webhook: a command is missing: create, list or delete")}
	}
	cmd := args[1]
	dbPath := envOr(getenv, "NOCHAT_DB", defaultDB)
	flags := flag.NewFlagSet("nochat webhook "+cmd, flag.ContinueOnError)
	flags.SetOutput(stderr)
	flags.Usage = func() { fmt.Fprint(stderr, usage+"\nFlags:\n"); flags.PrintDefaults() }
	flags.StringVar(&dbPath, "db", dbPath, "SQLite database `file` (NOCHAT_DB)")
	var room, name, base *string
	if cmd == "create" {
		room = flags.String("room", "", "the `slug` of the room the webhook posts in")
		name = flags.String("name", handlers.DefaultWebhookName, "the `name` its messages are from (a bot's)")
		base = flags.String("url", "", "the server's public `address` (https://chat.example.org), to print the whole URL; without it the path is printed")
	}
	// Flags may come before or after ID.
	var rest []string
	for more := args[2:]; ; more = flags.Args()[1:] {
		if err := flags.Parse(more); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil
			}
			return usageError{err}
		}
		if flags.NArg() == 0 {
			break
		}
		rest = append(rest, flags.Arg(0))
	}
	switch cmd {
	case "create", "list":
		if len(rest) != 0 {
			return usageError{fmt.Errorf("webhook %s: unexpected %q", cmd, rest[0])}
		}
	case "delete":
		if len(rest) != 1 {
			return usageError{errors.New("webhook delete: one ID, please: nochat webhook delete ID (nochat webhook list shows them)")}
		}
	default:
		fmt.Fprint(stderr, usage)
		return usageError{fmt.Errorf("webhook: unknown command %q: create, list or delete", cmd)}
	}
	if cmd == "create" && *room == "" {
		return usageError{errors.New("webhook create: which room? nochat webhook create -room SLUG")}
	}
	if _, err := os.Stat(dbPath); err != nil {
		return fmt.Errorf("webhook: no database at %s (set -db or NOCHAT_DB): %w", dbPath, err)
	}
	store, err := db.Open(ctx, dbPath, db.Options{})
	if err != nil {
		return err
	}
	defer store.Close()
	if cmd != "list" {
		if err := refuseOnNode(ctx, store, "webhook", "make and delete webhooks on the dashboard (Webhooks) of any node, which every node shares"); err != nil {
			return err
		}
	}
	switch cmd {
	case "create":
		return webhookCreate(ctx, store, *room, *name, *base, stdout, stderr)
	case "list":
		return webhookList(ctx, store, stdout)
	default:
		return webhookDelete(ctx, store, rest[0], stdout, stderr)
	}
}

// webhookCreate makes a webhook for the room with slug, and prints its
// URL (on base, if given) and curl lines once.
func webhookCreate(ctx context.Context, store *db.Store, slug, name, base string, stdout, stderr io.Writer) error {
	base = strings.TrimRight(base, "/")
	if base != "" && !strings.HasPrefix(base, "https://") && !strings.HasPrefix(base, "http://") {
		return fmt.Errorf("webhook create: -url %q: give the address as https://chat.example.org", base)
	}
	rooms, err := store.Rooms(ctx)
	if err != nil {
		return err
	}
	var room db.Room
	for _, r := range rooms {
		if r.Slug == slug {
			room = r
		}
	}
	if room.ID == 0 {
		return fmt.Errorf("webhook create: there is no room %q (nochat webhook create -room SLUG)", slug)
	}
	h, secret, err := handlers.CreateWebhook(ctx, store, room, name, actorShell, chat.DefaultMaxNameLen, time.Now())
	if err != nil {
		return fmt.Errorf("webhook create: %w", err)
	}
	audit(ctx, store, stderr, "webhook create", h.Name, "room "+room.Slug+", webhook "+strconv.FormatInt(h.ID, 10))
	url := base + handlers.WebhookPath(h.ID, secret)
	fmt.Fprintf(stdout, "created webhook %d, %s, posting in %s\nURL (shown this once; anyone with it can post in the room):\n%s\n", h.ID, h.Name, room.Slug, url)
	if base == "" {
		url = "https://YOUR-CHAT" + url
		fmt.Fprintln(stdout, "(put the server's address before it, or give -url https://chat.example.org)")
	}
	plain, json := handlers.WebhookCurl(url)
	fmt.Fprintf(stdout, "try it:\n%s\n%s\n", plain, json)
	return nil
}

func webhookList(ctx context.Context, store *db.Store, stdout io.Writer) error {
	hooks, err := store.Webhooks(ctx, 0)
	if err != nil {
		return err
	}
	rooms, err := store.Rooms(ctx)
	if err != nil {
		return err
	}
	slug := make(map[int64]string, len(rooms))
	for _, r := range rooms {
		slug[r.ID] = r.Slug
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tNAME\tROOM\tCREATED\tBY\tLAST USED")
	for _, h := range hooks {
		used := "never"
		if !h.LastUsed.IsZero() {
			used = h.LastUsed.UTC().Format(time.DateTime)
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\n", h.ID, h.Name, slug[h.Room], h.Created.UTC().Format(time.DateTime), orNone(h.CreatedBy), used)
	}
	return tw.Flush()
}

func webhookDelete(ctx context.Context, store *db.Store, arg string, stdout, stderr io.Writer) error {
	id, err := strconv.ParseInt(arg, 10, 64)
	if err != nil || id < 1 {
		return fmt.Errorf("webhook delete: %q is not a webhook's ID (nochat webhook list shows them)", arg)
	}
	h, err := store.DeleteWebhook(ctx, id)
	if errors.Is(err, db.ErrNotFound) {
		return fmt.Errorf("webhook delete: there is no webhook %d (nochat webhook list shows them)", id)
	}
	if err != nil {
		return err
	}
	audit(ctx, store, stderr, "webhook delete", h.Name, "webhook "+strconv.FormatInt(h.ID, 10))
	fmt.Fprintf(stdout, "deleted webhook %d (%s): its URL no longer works\n", h.ID, h.Name)
	return nil
}
