// NoChat is a real-time chat room in one Go binary beside one SQLite file.
//
// Run it with no arguments to serve on :8080 with nochat.db in the current
// directory; see README.md for flags and protocols.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"nochat/chat"
	"nochat/db"
	"nochat/handlers"
	"nochat/static"
)

func main() {
	err := run(context.Background(), os.Args, os.Getenv, os.Stdout, os.Stderr)
	var usage usageError
	switch {
	case errors.As(err, &usage):
		fmt.Fprintln(os.Stderr, "nochat:", err)
		os.Exit(2)
	case err != nil:
		fmt.Fprintln(os.Stderr, "nochat:", err)
		os.Exit(1)
	}
}

// usageError is a bad flag or argument: the process exits with status 2.
type usageError struct{ error }

// shutdownTimeout bounds a graceful stop: clients told, queue committed.
const shutdownTimeout = 5 * time.Second

// config is everything run reads from flags and the environment.
type config struct {
	addr       string
	dbPath     string
	durability db.Durability
	logLevel   slog.Level
}

// parseFlags reads flags, each defaulting to its NOCHAT_* environment
// variable and then to the built-in default.
func parseFlags(args []string, getenv func(string) string, stderr io.Writer) (config, error) {
	env := func(name, def string) string {
		if v := getenv(name); v != "" {
			return v
		}
		return def
	}
	fs := flag.NewFlagSet("nochat", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: nochat [flags]\n\nNoChat serves a chat room over HTTP and WebSocket, storing it in one SQLite file.\nEvery flag can also be set with the environment variable shown.\n\nFlags:\n")
		fs.PrintDefaults()
	}
	var cfg config
	var durability, level string
	fs.StringVar(&cfg.addr, "addr", env("NOCHAT_ADDR", ":8080"), "`host:port` to listen on (NOCHAT_ADDR)")
	fs.StringVar(&cfg.dbPath, "db", env("NOCHAT_DB", "nochat.db"), "SQLite database `file`, created if missing (NOCHAT_DB)")
	fs.StringVar(&durability, "durability", env("NOCHAT_DURABILITY", "full"), "`full` survives power loss; normal is faster and may lose the last messages on power loss (NOCHAT_DURABILITY)")
	fs.StringVar(&level, "log-level", env("NOCHAT_LOG_LEVEL", "info"), "log `level`: debug, info, warn or error (NOCHAT_LOG_LEVEL)")
	if err := fs.Parse(args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return cfg, err
		}
		return cfg, usageError{err}
	}
	if fs.NArg() > 0 {
		return cfg, usageError{fmt.Errorf("unexpected argument %q", fs.Arg(0))}
	}
	var err error
	if cfg.durability, err = db.ParseDurability(durability); err != nil {
		return cfg, usageError{fmt.Errorf("-durability: %w", err)}
	}
	if err := cfg.logLevel.UnmarshalText([]byte(level)); err != nil {
		return cfg, usageError{fmt.Errorf("-log-level %q: want debug, info, warn or error", level)}
	}
	if _, _, err := net.SplitHostPort(cfg.addr); err != nil {
		return cfg, usageError{fmt.Errorf("-addr %q: want host:port, for example :8080 or 127.0.0.1:8080", cfg.addr)}
	}
	if cfg.dbPath == "" {
		return cfg, usageError{errors.New("-db: a database file is needed")}
	}
	return cfg, nil
}

// run is NoChat. With no subcommand it serves until ctx ends or SIGINT or
// SIGTERM arrives, then shuts down in order; a subcommand does its one job.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()

	if len(args) > 1 {
		if cmd, ok := subcommands[args[1]]; ok {
			return cmd(ctx, args[1:], getenv, stdout, stderr)
		}
	}
	return serve(ctx, args, getenv, stderr)
}

// subcommands are the jobs besides serving: nochat NAME [flags].
var subcommands = map[string]func(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error{
	"version": runVersion,
	"bench":   runBench,
}

// serve runs the chat server.
func serve(ctx context.Context, args []string, getenv func(string) string, stderr io.Writer) error {
	cfg, err := parseFlags(args, getenv, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return nil
	}
	if err != nil {
		return err
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: cfg.logLevel}))

	store, err := db.Open(ctx, cfg.dbPath, db.Options{Durability: cfg.durability})
	if err != nil {
		return err
	}
	hub, err := chat.New(store, chat.Options{Log: log})
	if err != nil {
		store.Close()
		return err
	}
	srv := &http.Server{
		Handler: handlers.New(handlers.Deps{Log: log, Store: store, Hub: hub, Assets: static.New()}),
		// Bounded header reads and idle keep-alives, so clients that open
		// sockets and go quiet cannot hold them forever.
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelDebug),
	}

	ln, err := net.Listen("tcp", cfg.addr)
	if err != nil {
		hub.Close(ctx)
		store.Close()
		return fmt.Errorf("listen: %w", err)
	}
	log.Info("NoChat is serving", "url", browseURL(ln.Addr()), "db", cfg.dbPath, "durability", string(cfg.durability), "version", buildVersion().Version)

	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(ln) }()

	select {
	case <-ctx.Done():
		log.Info("shutting down")
	case err = <-serveErr:
		log.Error("server stopped", "err", err)
	}

	// The order matters. Stop accepting connections and let REST requests
	// finish (their sends still go through the hub); then the hub commits
	// every queued message, delivers it and closes each WebSocket with 1001;
	// only then can the store close, so nothing queued is lost. Each step
	// has its own share of the bound: a browser's idle pre-opened socket
	// must not eat the time the WebSockets need.
	errs := []error{err}
	httpCtx, cancel := context.WithTimeout(context.Background(), shutdownTimeout*2/5)
	defer cancel()
	if err := srv.Shutdown(httpCtx); err != nil {
		srv.Close() // cut what did not finish in time
	}
	hubCtx, cancel := context.WithTimeout(context.Background(), shutdownTimeout*3/5)
	defer cancel()
	if err := hub.Close(hubCtx); err != nil {
		log.Warn("closing WebSockets", "err", err)
	}
	if err := store.Close(); err != nil {
		errs = append(errs, fmt.Errorf("close database: %w", err))
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	log.Info("stopped")
	return nil
}

// browseURL is the address to open in a browser for a listener address.
func browseURL(a net.Addr) string {
	host, port, err := net.SplitHostPort(a.String())
	if err != nil {
		return "http://" + a.String() + "/"
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		host = "localhost"
	}
	if strings.Contains(host, ":") {
		host = "[" + host + "]"
	}
	return "http://" + host + ":" + port + "/"
}
