// NoChat is a real-time chat room in one Go binary beside one SQLite file.
//
// Run it with no arguments to serve on :8080 with nochat.db in the current
// directory; see README.md for flags and protocols.
package main

import (
	"cmp"
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"maps"
	"math"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/crypto/acme/autocert"

	"nochat/chat"
	"nochat/db"
	"nochat/handlers"
	"nochat/outhook"
	"nochat/push"
	"nochat/static"
	"nochat/views"
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
	addr          string
	dbPath        string
	durability    db.Durability
	logLevel      slog.Level
	adminPassword string
	metrics       bool
	trustProxy    bool
	allowOrigins  []string
	msgRate       float64
	botRate       float64
	maxConns      int
	maxConnsPerIP int
	maxHTTPPerIP  int
	allowHosts    []string
	publicURL     string   // where people and bots reach NoChat ("https://chat.example.org/"); "" for the listener's
	webhookAllow  []string // hosts and host:port pairs outgoing webhooks may reach though private
	maxMessage    int
	replayLimit   int
	retention     retention
	dedupWindow   time.Duration
	editWindow    time.Duration
	guests        chat.Guests
	newSetupLink  bool
	memoryLimit   memoryLimit
	giveBack      giveBack // when a quiet heap's free memory goes back to the OS
	maxUpload     int64    // bytes in one uploaded file
	uploadQuota   int64    // bytes of files one account may store; -1: no quota
	// cluster makes this node one of several serving one chat; nil for a
	// single node, the default.
	cluster *clusterConfig

	// HTTPS: a certificate's files, or ACME names (each with its
	// certificate from the CA at acmeCA), or neither for plain HTTP.
	tlsCert, tlsKey  string
	acmeDomains      []string
	acmeCA           string
	acmeEmail        string
	httpRedirectAddr string // "off" for none
	httpRedirectSet  bool   // given by the admin, so failing to open it is an error
	debugAddr        string // -debug-addr: the Go runtime's profiles on loopback; "" for none
	// acmeHTTPClient talks to the ACME CA: not a flag, nil for Go's
	// default; tests set one that trusts their local CA.
	acmeHTTPClient *http.Client
	// retainEvery is how often retention runs: not a flag, a minute; tests
	// shorten it to see passes.
	retainEvery time.Duration
	// writeTimeout bounds an HTTP response: not a flag, writeTimeout;
	// tests shorten it.
	writeTimeout time.Duration
	// assets are the page's files: not a flag, the ones built in; tests
	// serve others to see what a new version does to an open page.
	assets fs.FS
	// pushSubject is the VAPID subject pushes are sent under.
	pushSubject string
	// push tunes Web Push beyond the flags: tests point it at a stand-in
	// on loopback (AllowLoopback, RootCAs); pushGrace is how long a person
	// is away before pushes reach them (chat.DefaultPushGrace).
	push      push.Options
	pushGrace time.Duration
}

// writeTimeout is how long a plain HTTP request may take, from its headers
// to the last byte of the answer. A client that asks for a large answer
// (a history page can be about 6 MB of JSON) and never reads it would
// otherwise hold its socket, and the goroutine writing to it, for ever.
// A minute sends 6 MB at 1 Mbit/s. WebSockets are not bound by it: gorilla
// clears the server's deadlines when it takes the connection, and melody
// sets one per frame (chat/edge.go).
const writeTimeout = time.Minute

// parseFlags reads flags, each defaulting to its NOCHAT_* environment
// variable and then to the built-in default.
func parseFlags(args []string, getenv func(string) string, stderr io.Writer) (config, error) {
	env := func(name, def string) string { return envOr(getenv, name, def) }
	fs := flag.NewFlagSet("nochat", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, `Usage: nochat [flags]
       nochat backup [-db file] [-force] DEST      a consistent copy of the database
       nochat export [-db file] [-force] FILE      the chat as one JSON Lines file
       nochat import [-db file] [-tutorial] FILE   an export into a new database
       nochat bot create|list|rotate|revoke ...    bots (nochat bot -h)
       nochat webhook create|list|delete ...       incoming webhooks (nochat webhook -h)
       nochat cluster status                       a cluster's nodes, as this one sees them
       nochat bench [flags]                        load tests (nochat bench -h)
       nochat version

NoChat serves a chat over HTTP and WebSocket, storing it in one SQLite file.
Every flag can also be set with the environment variable shown.

Flags:
`)
		fs.PrintDefaults()
	}
	var cfg config
	// A boolean flag is a real boolean (-trust-proxy alone means true, and
	// does not swallow the next argument); its default comes from its
	// variable, whose bad value is an error unless the flag is given.
	badEnv := map[string]error{}
	boolVar := func(p *bool, name, envName string, def bool, usage string) {
		if v := getenv(envName); v != "" {
			b, err := strconv.ParseBool(v)
			if err != nil {
				badEnv[name] = fmt.Errorf("%s=%q (for -%s): want true or false", envName, v, name)
			} else {
				def = b
			}
		}
		fs.BoolVar(p, name, def, usage)
	}
	var botRate, webhookAllow string
	var durability, level, origins, msgRate, maxConns, maxConnsPerIP, maxMessage, replayLimit, retainDays, retainMessages string
	var hosts, maxHTTPPerIP, publicURL string
	fs.StringVar(&cfg.addr, "addr", env("NOCHAT_ADDR", ":8080"), "`host:port` to listen on (NOCHAT_ADDR)")
	fs.StringVar(&cfg.dbPath, "db", env("NOCHAT_DB", defaultDB), "SQLite database `file`, created if missing (NOCHAT_DB)")
	fs.StringVar(&durability, "durability", env("NOCHAT_DURABILITY", "full"), "`full` survives power loss; normal is faster and may lose the last messages on power loss (NOCHAT_DURABILITY)")
	fs.StringVar(&level, "log-level", env("NOCHAT_LOG_LEVEL", "info"), "log `level`: debug, info, warn or error (NOCHAT_LOG_LEVEL)")
	fs.StringVar(&cfg.adminPassword, "admin-password", env("NOCHAT_ADMIN_PASSWORD", ""), "`password` for /admin from earlier versions, until the first admin account exists (then it is retired); empty keeps the stored one. A new database has none: it logs a one-time set-up link instead (NOCHAT_ADMIN_PASSWORD)")
	boolVar(&cfg.metrics, "metrics", "NOCHAT_METRICS", true, "serve Prometheus metrics at /metrics; -metrics=false turns them off (NOCHAT_METRICS)")
	boolVar(&cfg.newSetupLink, "new-setup-link", "NOCHAT_NEW_SETUP_LINK", false, "while no admin account exists, log a new one-time set-up link in place of the first (lost) one (NOCHAT_NEW_SETUP_LINK)")
	boolVar(&cfg.trustProxy, "trust-proxy", "NOCHAT_TRUST_PROXY", false, "take client addresses from X-Forwarded-For, behind a reverse proxy (NOCHAT_TRUST_PROXY)")
	fs.StringVar(&origins, "allow-origin", env("NOCHAT_ALLOW_ORIGIN", ""), "comma-separated `origins` (https://example.org) of pages elsewhere that may use the socket and the API, or * for any (NOCHAT_ALLOW_ORIGIN)")
	fs.StringVar(&hosts, "allow-host", env("NOCHAT_ALLOW_HOST", ""), "comma-separated host `names` NoChat is reached by besides IP addresses, localhost and this machine's name (and NAME.local), or * for any; others get 421 (NOCHAT_ALLOW_HOST)")
	fs.StringVar(&publicURL, "public-url", env("NOCHAT_PUBLIC_URL", ""), "the `URL` people and bots reach NoChat at, as https://chat.example.org, when it is not the address it listens on (behind a reverse proxy): for the set-up link and outgoing webhooks' reply_url; its host is allowed as by -allow-host (NOCHAT_PUBLIC_URL)")
	fs.StringVar(&webhookAllow, "webhook-allow", env("NOCHAT_WEBHOOK_ALLOW", ""), "comma-separated `hosts` and host:port pairs that bots' outgoing webhooks may call though they are (or resolve to) loopback, private or link-local addresses, which are refused otherwise (NOCHAT_WEBHOOK_ALLOW)")
	fs.StringVar(&botRate, "bot-rate", env("NOCHAT_BOT_RATE", "1"), "`messages` per second each bot may send (and edit, delete, react), over all its sockets and REST, in bursts of 5; 0 turns the limit off (NOCHAT_BOT_RATE)")
	fs.StringVar(&msgRate, "msg-rate", env("NOCHAT_MSG_RATE", "10"), "`messages` per second one connection or address may send, in bursts of twice that; 0 turns the limit off (NOCHAT_MSG_RATE)")
	fs.StringVar(&maxConns, "max-conns", env("NOCHAT_MAX_CONNS", "10000"), "most WebSocket `connections` in total (NOCHAT_MAX_CONNS)")
	fs.StringVar(&maxConnsPerIP, "max-conns-per-ip", env("NOCHAT_MAX_CONNS_PER_IP", "100"), "most WebSocket `connections` from one address; 0 turns the limit off (NOCHAT_MAX_CONNS_PER_IP)")
	fs.StringVar(&maxHTTPPerIP, "max-http-conns-per-ip", env("NOCHAT_MAX_HTTP_CONNS_PER_IP", "128"), "most HTTP `connections` open at once from one address, WebSockets aside; 0 turns the limit off, and -trust-proxy does (NOCHAT_MAX_HTTP_CONNS_PER_IP)")
	fs.StringVar(&maxMessage, "max-message", env("NOCHAT_MAX_MESSAGE", "2000"), "most `characters` in one message (NOCHAT_MAX_MESSAGE)")
	fs.StringVar(&replayLimit, "replay-limit", env("NOCHAT_REPLAY_LIMIT", "1000"), "most `messages` replayed to a client resuming with ?after=; past that it reloads history (NOCHAT_REPLAY_LIMIT)")
	fs.StringVar(&retainDays, "retain-days", env("NOCHAT_RETAIN_DAYS", "0"), "delete messages older than `days`; 0 keeps them all (NOCHAT_RETAIN_DAYS)")
	fs.StringVar(&retainMessages, "retain-messages", env("NOCHAT_RETAIN_MESSAGES", "0"), "keep only the newest `n` messages; 0 keeps them all (NOCHAT_RETAIN_MESSAGES)")
	var dedupWindow, editWindow, guests, maxUpload, uploadQuota string
	fs.StringVar(&maxUpload, "max-upload", env("NOCHAT_MAX_UPLOAD", "10MB"), "most `bytes` in one uploaded file, as 10MB, 512kB or 10000000 (NOCHAT_MAX_UPLOAD)")
	var memLimit string
	fs.StringVar(&cfg.debugAddr, "debug-addr", env("NOCHAT_DEBUG_ADDR", ""), "loopback `host:port` (127.0.0.1:6060) serving the Go runtime's profiles at /debug/pprof/, for go tool pprof; off unless given (NOCHAT_DEBUG_ADDR)")
	fs.StringVar(&memLimit, "memory-limit", env("NOCHAT_MEMORY_LIMIT", ""), "the Go runtime's soft memory `size` (64MiB, 200MB): as the heap nears it the GC runs more often, instead of the OS swapping; 0 or off for none. Default: GOMEMLIMIT if set, else half the machine's memory (the cgroup's limit if lower) (NOCHAT_MEMORY_LIMIT)")
	fs.StringVar(&uploadQuota, "upload-quota", env("NOCHAT_UPLOAD_QUOTA", "200MB"), "most `bytes` of files one account may have stored, as 200MB or 1GB; 0 turns the quota off (NOCHAT_UPLOAD_QUOTA)")
	fs.StringVar(&guests, "guests", env("NOCHAT_GUESTS", "on"), "what people without an account may do: `on` (read and send, as the tutorial's clients do), read, or off (sign in to read too) (NOCHAT_GUESTS)")
	// The default is db.DefaultDedupWindow, written as people write it.
	fs.StringVar(&editWindow, "edit-window", env("NOCHAT_EDIT_WINDOW", "15m"), "how long after sending a person may edit their message: a `duration` from 1m to 720h (NOCHAT_EDIT_WINDOW)")
	fs.StringVar(&dedupWindow, "dedup-window", env("NOCHAT_DEDUP_WINDOW", "24h"), "how long a sender's cid or Idempotency-Key names its send, so a retry is not stored twice: a `duration` from 1m to 720h (NOCHAT_DEDUP_WINDOW)")
	var acmeDomains string
	fs.StringVar(&cfg.tlsCert, "tls-cert", env("NOCHAT_TLS_CERT", ""), "serve HTTPS with the certificate chain in this PEM `file`, read again when it changes; needs -tls-key (NOCHAT_TLS_CERT)")
	fs.StringVar(&cfg.tlsKey, "tls-key", env("NOCHAT_TLS_KEY", ""), "the private key of -tls-cert, a PEM `file` (NOCHAT_TLS_KEY)")
	fs.StringVar(&acmeDomains, "acme-domain", env("NOCHAT_ACME_DOMAIN", ""), "serve HTTPS for these comma-separated public DNS `names`, with certificates from an ACME CA kept in the database; needs ports 443 and 80 reachable from the internet (NOCHAT_ACME_DOMAIN)")
	fs.StringVar(&cfg.acmeCA, "acme-ca", env("NOCHAT_ACME_CA", autocert.DefaultACMEDirectory), "the ACME directory `URL` -acme-domain gets certificates from (NOCHAT_ACME_CA)")
	fs.StringVar(&cfg.acmeEmail, "acme-email", env("NOCHAT_ACME_EMAIL", ""), "contact `address` the ACME CA may write to about the certificates; optional (NOCHAT_ACME_EMAIL)")
	fs.StringVar(&cfg.httpRedirectAddr, "http-redirect-addr", env("NOCHAT_HTTP_REDIRECT_ADDR", defaultRedirectAddr), "with HTTPS on, `host:port` where plain HTTP is redirected to HTTPS (and ACME's HTTP-01 answered), or off (NOCHAT_HTTP_REDIRECT_ADDR)")
	var clusterFlags clusterFlags
	clusterFlags.define(fs, env)
	fs.StringVar(&cfg.pushSubject, "push-subject", env("NOCHAT_PUSH_SUBJECT", ""), "`contact` (mailto:address or https://URL) push services may reach this server's operator at, sent with every Web Push; empty means mailto:admin@ this machine's name (NOCHAT_PUSH_SUBJECT)")
	if err := fs.Parse(args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return cfg, err
		}
		return cfg, usageError{err}
	}
	if fs.NArg() > 0 {
		if _, err := strconv.ParseBool(fs.Arg(0)); err == nil {
			// -metrics false: a boolean flag's value follows an =.
			return cfg, usageError{fmt.Errorf("unexpected argument %q: give a true or false flag its value after =, as in -metrics=false", fs.Arg(0))}
		}
		return cfg, usageError{fmt.Errorf("unexpected argument %q", fs.Arg(0))}
	}
	fs.Visit(func(f *flag.Flag) { delete(badEnv, f.Name) })
	if cfg.pushSubject == "" {
		cfg.pushSubject = "mailto:admin@" + cmp.Or(hostname(), "localhost")
	}
	if len(badEnv) > 0 {
		return cfg, usageError{badEnv[slices.Sorted(maps.Keys(badEnv))[0]]}
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
	if cfg.botRate, err = strconv.ParseFloat(botRate, 64); err != nil || cfg.botRate < 0 || math.IsInf(cfg.botRate, 0) || math.IsNaN(cfg.botRate) {
		return cfg, usageError{fmt.Errorf("-bot-rate %q: want a number of messages per second, 0 or more", botRate)}
	}
	if cfg.msgRate, err = strconv.ParseFloat(msgRate, 64); err != nil || cfg.msgRate < 0 || math.IsInf(cfg.msgRate, 0) || math.IsNaN(cfg.msgRate) {
		return cfg, usageError{fmt.Errorf("-msg-rate %q: want a number of messages per second, 0 or more", msgRate)}
	}
	if cfg.maxConns, err = strconv.Atoi(maxConns); err != nil || cfg.maxConns < 1 {
		return cfg, usageError{fmt.Errorf("-max-conns %q: want a whole number, 1 or more", maxConns)}
	}
	if cfg.maxConnsPerIP, err = strconv.Atoi(maxConnsPerIP); err != nil || cfg.maxConnsPerIP < 0 {
		return cfg, usageError{fmt.Errorf("-max-conns-per-ip %q: want a whole number, 0 or more", maxConnsPerIP)}
	}
	if cfg.maxHTTPPerIP, err = strconv.Atoi(maxHTTPPerIP); err != nil || cfg.maxHTTPPerIP < 0 {
		return cfg, usageError{fmt.Errorf("-max-http-conns-per-ip %q: want a whole number, 0 or more", maxHTTPPerIP)}
	}
	if cfg.maxMessage, err = strconv.Atoi(maxMessage); err != nil || cfg.maxMessage < 1 || cfg.maxMessage > 100000 {
		return cfg, usageError{fmt.Errorf("-max-message %q: want a whole number from 1 to 100000", maxMessage)}
	}
	if cfg.replayLimit, err = strconv.Atoi(replayLimit); err != nil || cfg.replayLimit < 1 {
		return cfg, usageError{fmt.Errorf("-replay-limit %q: want a whole number, 1 or more", replayLimit)}
	}
	for _, o := range strings.Split(origins, ",") {
		o = strings.TrimSpace(o)
		if o == "" {
			continue
		}
		if u, err := url.Parse(o); o != "*" && (err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || strings.Trim(u.Path, "/") != "") {
			return cfg, usageError{fmt.Errorf("-allow-origin %q: want origins like https://example.org, or *", o)}
		}
		cfg.allowOrigins = append(cfg.allowOrigins, strings.TrimSuffix(o, "/"))
	}
	if cfg.editWindow, err = time.ParseDuration(editWindow); err != nil || cfg.editWindow < time.Minute || cfg.editWindow > 720*time.Hour {
		return cfg, usageError{fmt.Errorf("-edit-window %q: want a duration from 1m to 720h, for example 15m", editWindow)}
	}
	if cfg.dedupWindow, err = time.ParseDuration(dedupWindow); err != nil || cfg.dedupWindow < time.Minute || cfg.dedupWindow > 720*time.Hour {
		return cfg, usageError{fmt.Errorf("-dedup-window %q: want a duration from 1m to 720h, for example 24h", dedupWindow)}
	}
	for _, h := range strings.Split(hosts, ",") {
		if h = strings.TrimSpace(h); h == "" {
			continue
		}
		if h != "*" && (strings.ContainsAny(h, ":/[]@ ") || strings.Trim(h, ".") == "") {
			return cfg, usageError{fmt.Errorf("-allow-host %q: want host names like chat.example.org (no scheme, no port), or *", h)}
		}
		cfg.allowHosts = append(cfg.allowHosts, h)
	}
	if publicURL != "" {
		if cfg.publicURL, err = parsePublicURL(publicURL); err != nil {
			return cfg, usageError{err}
		}
		if !slices.Contains(cfg.allowHosts, "*") {
			u, _ := url.Parse(cfg.publicURL)
			cfg.allowHosts = append(cfg.allowHosts, u.Hostname())
		}
	}
	if cfg.webhookAllow, err = outhook.ParseAllow(webhookAllow); err != nil {
		return cfg, usageError{err}
	}
	if cfg.guests, err = chat.ParseGuests(guests); err != nil {
		return cfg, usageError{fmt.Errorf("-guests %q: %w", guests, err)}
	}
	if cfg.maxUpload, err = parseBytes(maxUpload); err != nil || cfg.maxUpload < 1 || cfg.maxUpload > 1<<30 {
		return cfg, usageError{fmt.Errorf("-max-upload %q: want a size from 1 byte to 1GB, for example 10MB", maxUpload)}
	}
	if cfg.uploadQuota, err = parseBytes(uploadQuota); err != nil {
		return cfg, usageError{fmt.Errorf("-upload-quota %q: want a size, for example 200MB, or 0 for no quota", uploadQuota)}
	}
	if cfg.uploadQuota == 0 {
		cfg.uploadQuota = -1 // handlers.Deps: no quota
	}
	if cfg.retention, err = parseRetention(retainDays, retainMessages); err != nil {
		return cfg, usageError{err}
	}
	if cfg.cluster, err = clusterFlags.config(cfg.dbPath, cfg.maxUpload, getenv); err != nil {
		return cfg, usageError{err}
	}
	set := func(name string) bool {
		given := getenv("NOCHAT_"+strings.ToUpper(strings.ReplaceAll(name, "-", "_"))) != ""
		fs.Visit(func(f *flag.Flag) { given = given || f.Name == name })
		return given
	}
	cfg.httpRedirectSet = set("http-redirect-addr")
	if cfg.debugAddr, err = parseDebugAddr(cfg.debugAddr); err != nil {
		return cfg, usageError{err}
	}
	if cfg.memoryLimit, err = parseMemoryLimit(memLimit, set("memory-limit"), getenv); err != nil {
		return cfg, usageError{err}
	}
	cfg.giveBack = defaultGiveBack()
	if err := parseTLSFlags(&cfg, acmeDomains, set); err != nil {
		return cfg, usageError{err}
	}
	cfg.retainEvery = time.Minute
	cfg.writeTimeout = writeTimeout
	return cfg, nil
}

// parseBytes reads a size as people write it: a whole number of bytes,
// or one with kB, MB or GB (powers of 1000) or KiB, MiB or GiB (of 1024).
func parseBytes(s string) (int64, error) {
	s = strings.TrimSpace(s)
	num := strings.TrimRightFunc(s, func(r rune) bool { return r < '0' || r > '9' })
	unit := strings.ToLower(strings.TrimSpace(s[len(num):]))
	scale := map[string]int64{"": 1, "b": 1, "kb": 1e3, "mb": 1e6, "gb": 1e9, "kib": 1 << 10, "mib": 1 << 20, "gib": 1 << 30}[unit]
	n, err := strconv.ParseInt(num, 10, 64)
	if err != nil || scale == 0 || n < 0 || n > math.MaxInt64/scale {
		return 0, fmt.Errorf("size %q: want a whole number with an optional unit: kB, MB, GB, KiB, MiB or GiB", s)
	}
	return n * scale, nil
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
	"bot":     runBot,
	"webhook": runWebhook,
	"version": runVersion,
	"backup":  runBackup,
	"bench":   runBench,
	"cluster": runCluster,
	"export":  runExport,
	"import":  runImport,
}

// clusterLog is this node's place in a cluster: the log and the presence
// it shares with the others, closed when the node stops.
type clusterLog interface {
	db.Stream
	chat.Peers
	Close()
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
	return serveConfig(ctx, cfg, stderr)
}

// serveConfig runs the chat server as cfg says.
func serveConfig(ctx context.Context, cfg config, stderr io.Writer) error {
	logs := newCollapseHandler(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: cfg.logLevel}), logRepeatWindow, logRepeatKeys, time.Now)
	defer logs.flush() // the last window's counts
	log := slog.New(logs)
	limit := cfg.memoryLimit.apply()
	log.Info("memory limit", "limit", sizeText(limit), "from", cfg.memoryLimit.source)
	giveCtx, stopGiving := context.WithCancel(ctx)
	givingDone := make(chan struct{})
	go func() { defer close(givingDone); cfg.giveBack.run(giveCtx, log) }()
	defer func() { stopGiving(); <-givingDone }()
	// Profiles asked for but not served would be a surprise found only
	// when needed: a port that cannot be had stops the start.
	if cfg.debugAddr != "" {
		stopDebug, err := startDebug(cfg.debugAddr, log)
		if err != nil {
			return err
		}
		defer stopDebug()
	}

	store, err := db.Open(ctx, cfg.dbPath, db.Options{Durability: cfg.durability, DedupWindow: cfg.dedupWindow, Log: log})
	if err != nil {
		return err
	}
	if err := rekeyAccounts(ctx, store, log); err != nil {
		store.Close()
		return err
	}
	auth, err := handlers.NewAuth(ctx, store, cfg.adminPassword, log)
	if err != nil {
		store.Close()
		return err
	}
	// HTTPS is prepared before anything else starts: a bad certificate
	// pair stops the start with its reason.
	var https *httpsSetup
	if cfg.tlsOn() {
		if https, err = newHTTPS(cfg, store, log); err != nil {
			store.Close()
			return err
		}
	}
	var metrics *handlers.Metrics
	var observer chat.Observer
	if cfg.metrics {
		metrics = handlers.NewMetrics()
		observer = metrics
	}
	pushOpts := cfg.push
	pushOpts.Log, pushOpts.Subject, pushOpts.Shared = log, cfg.pushSubject, cfg.cluster != nil
	pusher, err := push.New(ctx, store, pushOpts)
	if err != nil {
		store.Close()
		return err
	}
	// A connection, and an address sending over REST, may send bursts of
	// twice the rate.
	burst := int(max(1, 2*cfg.msgRate))
	// Bots' outgoing webhooks: the hub hands them each new message, and
	// they post the bots' replies through the hub (run below).
	hooks := outhook.New(store, outhook.Options{Log: log, Allow: cfg.webhookAllow})
	var stream db.Stream // nil: this node's own writer
	var peers chat.Peers
	var clusterView func(context.Context) views.ClusterView
	if cfg.cluster != nil {
		if err := store.CheckJoin(ctx); err != nil {
			store.Close()
			return fmt.Errorf("%s: %w", cfg.dbPath, err)
		}
		node, err := startCluster(ctx, *cfg.cluster, log)
		if err != nil {
			store.Close()
			return err
		}
		// Closed last, when serveConfig returns: the hub publishes
		// through it until it has closed.
		defer node.Close()
		stream, peers = node, node
		clusterView = clusterDashboard(node, store, *cfg.cluster)
	}
	hub, err := chat.New(store, chat.Options{
		Stream:        stream,
		Bans:          auth.BansChanged,
		Refused:       auth.Banned,
		Peers:         peers,
		Posted:        hooks.Posted,
		Log:           log,
		MsgRate:       orOff(cfg.msgRate),
		MsgBurst:      burst,
		BotRate:       orOff(cfg.botRate),
		BotBurst:      botBurst,
		MaxConns:      cfg.maxConns,
		MaxConnsPerIP: orOff(cfg.maxConnsPerIP),
		AllowOrigins:  cfg.allowOrigins,
		TrustProxy:    cfg.trustProxy,
		Observer:      observer,
		MaxMessageLen: cfg.maxMessage,
		ReplayLimit:   cfg.replayLimit,
		Guests:        cfg.guests,
		EditWindow:    cfg.editWindow,
		Pusher:        pusher,
		PushGrace:     cfg.pushGrace,
	})
	if err != nil {
		store.Close()
		return err
	}
	version := buildVersion().Version
	handler := handlers.New(handlers.Deps{
		Log:          log,
		Store:        store,
		Hub:          hub,
		Assets:       newAssets(cfg.assets),
		Auth:         auth,
		Metrics:      metrics,
		Version:      version,
		Cluster:      clusterView,
		TrustProxy:   cfg.trustProxy,
		AllowOrigins: cfg.allowOrigins,
		SendRate:     cfg.msgRate,
		SendBurst:    burst,
		Hostname:     hostname(),
		// The ACME names are the names NoChat is reached by.
		AllowHosts:  append(slices.Clone(cfg.allowHosts), cfg.acmeDomains...),
		MaxUpload:   cfg.maxUpload,
		UploadQuota: cfg.uploadQuota,
		Push:        pusher,
		Webhooks:    hooks.Guard(),
	})
	if https != nil {
		handler = withHSTS(handler)
	}
	srv := &http.Server{
		Handler: handler,
		// Bounded header reads, idle keep-alives and answers, so clients
		// that open sockets and go quiet, or never read what they asked
		// for, cannot hold them forever.
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		WriteTimeout:      cfg.writeTimeout,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelDebug),
	}

	ln, err := net.Listen("tcp", cfg.addr)
	if err != nil {
		hub.Close(ctx)
		store.Close()
		return fmt.Errorf("listen: %w", err)
	}
	// Behind a proxy every connection comes from the proxy, so there is no
	// client address to count: the proxy holds the clients' connections.
	var conns *connLimit
	if cfg.maxHTTPPerIP > 0 && !cfg.trustProxy {
		conns = newConnLimit(cfg.maxHTTPPerIP, func(ip string) {
			hub.RecordErrorAt(chat.KindTooMany, "HTTP connections", "too many HTTP connections from one address", ip)
		})
		var conf *tls.Config
		if https != nil {
			conf = https.tls
		}
		ln = conns.listener(ln, conf)
		srv.ConnState = conns.connState
	}
	serveURL := browseURL(ln.Addr())
	var redirect *http.Server
	if https != nil {
		serveURL = httpsURL(cfg, ln.Addr())
		rln, err := listenRedirect(cfg, log)
		if err != nil {
			ln.Close()
			hub.Close(ctx)
			store.Close()
			return err
		}
		if rln != nil {
			redirect = &http.Server{
				Handler:           https.redirect(redirectToHTTPS(ln.Addr())),
				ReadHeaderTimeout: srv.ReadHeaderTimeout,
				IdleTimeout:       srv.IdleTimeout,
				WriteTimeout:      srv.WriteTimeout,
				ErrorLog:          srv.ErrorLog,
			}
			if conns != nil { // one count per address over both listeners
				rln = conns.listener(rln, nil)
				redirect.ConnState = conns.connState
			}
			log.Info("redirecting plain HTTP to HTTPS", "addr", rln.Addr().String())
			go serveRedirect(redirect, rln, log)
		}
		ln = tls.NewListener(ln, https.tls)
	}
	// Where people and bots reach NoChat: behind a proxy, -public-url;
	// else the address it listens on, known only now.
	publicURL := cmp.Or(cfg.publicURL, serveURL)
	if err := auth.AnnounceSetup(ctx, publicURL, cfg.newSetupLink); err != nil {
		log.Error("set-up link", "err", err)
	}
	stopRetention := startRetention(ctx, log, hub, hub, cfg.retention, cfg.retainEvery)
	// Pushes go out until the hub has closed; whatever is still queued
	// then is dropped (a push is a courtesy, the message is stored).
	pushCtx, stopPush := context.WithCancel(context.Background())
	pushDone := make(chan struct{})
	go func() { defer close(pushDone); pusher.Run(pushCtx) }()
	// A bot token revoked by `nochat bot` (another process) closes the
	// bot's sockets within botWatchEvery.
	watchCtx, stopWatch := context.WithCancel(ctx)
	watchDone := make(chan struct{})
	go func() {
		defer close(watchDone)
		handlers.WatchBotTokens(watchCtx, store, hub, log, botWatchEvery)
	}()
	hooksCtx, stopHooks := context.WithCancel(ctx)
	hooksDone := make(chan struct{})
	go func() {
		defer close(hooksDone)
		hooks.Run(hooksCtx, hub, publicURL)
	}()
	serving := []any{"url", serveURL}
	if cfg.publicURL != "" {
		serving = append(serving, "public_url", cfg.publicURL)
	}
	log.Info("NoChat is serving", append(serving, "db", cfg.dbPath, "durability", string(cfg.durability), "version", version)...)

	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(ln) }() // net/http recovers each connection's panics

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
	shutdownRedirect(httpCtx, redirect)
	// Webhook calls end before the hub closes: a reply they would post
	// finds it open or not at all.
	stopHooks()
	<-hooksDone
	hubCtx, cancel := context.WithTimeout(context.Background(), shutdownTimeout*3/5)
	defer cancel()
	if err := hub.Close(hubCtx); err != nil {
		log.Warn("closing WebSockets", "err", err)
	}
	// The reads back of the bans the hub's last commands changed, and
	// retention: both before the store closes under them.
	auth.Wait()
	stopRetention()
	stopPush()
	<-pushDone
	stopWatch()
	<-watchDone
	if err := store.Close(); err != nil {
		errs = append(errs, fmt.Errorf("close database: %w", err))
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	log.Info("stopped")
	return nil
}

// newAssets serves fsys, or the files built in when it is nil.
func newAssets(fsys fs.FS) *static.Assets {
	if fsys == nil {
		return static.New()
	}
	return static.NewFS(fsys)
}

// orOff maps a flag's 0 ("no limit") to the hub's "off", a negative value.
func orOff[T int | float64](v T) T {
	if v == 0 {
		return -1
	}
	return v
}

// hostname is the machine's host name, or none if it has none.
func hostname() string {
	name, err := os.Hostname()
	if err != nil {
		return ""
	}
	return name
}

// defaultDB is the database file when neither -db nor NOCHAT_DB names one.
const defaultDB = "nochat.db"

// envOr is the environment variable name, or def when it is unset or empty.
func envOr(getenv func(string) string, name, def string) string {
	if v := getenv(name); v != "" {
		return v
	}
	return def
}

// browseURL is the address to open in a browser for a listener address.
// parsePublicURL checks -public-url: http or https, a host, nothing after
// it (NoChat serves from its root), and returns it ending in "/".
func parsePublicURL(raw string) (string, error) {
	u, err := url.Parse(strings.TrimSpace(raw))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Hostname() == "" || u.User != nil ||
		(u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" {
		return "", fmt.Errorf("-public-url %q: want the address NoChat is reached at, as https://chat.example.org or http://pi.local:8080 (no path: NoChat serves from the root)", raw)
	}
	return u.Scheme + "://" + u.Host + "/", nil
}

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
