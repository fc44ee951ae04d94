package main

import (
	"cmp"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"nochat/cluster"
	"nochat/db"
)

// Several nodes, one chat (package cluster): the flags that make this node
// one of them, and `nochat cluster status`.

// clusterFlags are the cluster's flags as given.
type clusterFlags struct {
	listen, advertise, peers, name, node, replicas, dir, secretFile, natsURL, creds string
}

// define adds the cluster's flags to fs.
func (f *clusterFlags) define(fs *flag.FlagSet, env func(name, def string) string) {
	fs.StringVar(&f.listen, "cluster-listen", env("NOCHAT_CLUSTER_LISTEN", ""), "`host:port` this node's cluster routes listen on; with -cluster-peers, makes NoChat one node of several serving one chat (NOCHAT_CLUSTER_LISTEN)")
	fs.StringVar(&f.advertise, "cluster-advertise", env("NOCHAT_CLUSTER_ADVERTISE", ""), "`host:port` the other nodes reach this node's routes at, when not -cluster-listen's (NOCHAT_CLUSTER_ADVERTISE)")
	fs.StringVar(&f.peers, "cluster-peers", env("NOCHAT_CLUSTER_PEERS", ""), "comma-separated `host:port` route addresses of the other nodes (NOCHAT_CLUSTER_PEERS)")
	fs.StringVar(&f.name, "cluster-name", env("NOCHAT_CLUSTER_NAME", "nochat"), "the cluster's `name`, the same on every node (NOCHAT_CLUSTER_NAME)")
	fs.StringVar(&f.node, "node-name", env("NOCHAT_NODE_NAME", ""), "this node's `name` in the cluster; default the host name (NOCHAT_NODE_NAME)")
	fs.StringVar(&f.replicas, "replicas", env("NOCHAT_REPLICAS", "3"), "how many `nodes` store every message before it is acknowledged; at least 3 (NOCHAT_REPLICAS)")
	fs.StringVar(&f.dir, "cluster-dir", env("NOCHAT_CLUSTER_DIR", ""), "`directory` for the cluster's log (NATS JetStream); default the database's name with .jetstream (NOCHAT_CLUSTER_DIR)")
	fs.StringVar(&f.secretFile, "cluster-secret-file", env("NOCHAT_CLUSTER_SECRET_FILE", ""), "`file` holding the secret every node shares, at least 16 characters; or set NOCHAT_CLUSTER_SECRET (NOCHAT_CLUSTER_SECRET_FILE)")
	fs.StringVar(&f.natsURL, "nats-url", env("NOCHAT_NATS_URL", ""), "use an existing NATS cluster with JetStream at these comma-separated `URLs` instead of running one (NOCHAT_NATS_URL)")
	fs.StringVar(&f.creds, "nats-creds", env("NOCHAT_NATS_CREDS", ""), "credentials `file` for -nats-url (NOCHAT_NATS_CREDS)")
}

// config is the cluster's Config, or nil for a single node (no cluster
// flag given).
func (f *clusterFlags) config(dbPath string, maxUpload int64, getenv func(string) string) (*cluster.Config, error) {
	if f.listen == "" && f.peers == "" && f.natsURL == "" {
		return nil, nil
	}
	c := &cluster.Config{Listen: f.listen, Advertise: f.advertise, Name: f.name, Node: f.node, URL: f.natsURL, Creds: f.creds}
	for _, p := range strings.Split(f.peers, ",") {
		if p = strings.TrimSpace(p); p != "" {
			c.Peers = append(c.Peers, p)
		}
	}
	var err error
	if c.Replicas, err = strconv.Atoi(f.replicas); err != nil {
		return nil, fmt.Errorf("-replicas %q: want a whole number, 3 or more", f.replicas)
	}
	if c.Node == "" {
		if c.Node = hostname(); c.Node == "" {
			return nil, errors.New("-node-name: this machine has no host name; give the node one")
		}
	}
	c.Dir = cmp.Or(f.dir, dbPath+".jetstream")
	c.Secret = getenv("NOCHAT_CLUSTER_SECRET")
	if f.secretFile != "" {
		b, err := os.ReadFile(f.secretFile)
		if err != nil {
			return nil, fmt.Errorf("-cluster-secret-file: %w", err)
		}
		c.Secret = strings.TrimSpace(string(b))
	}
	// An entry is a message with its file, base64 in JSON: a third
	// larger, and a thumbnail beside it.
	entry := maxUpload*3/2 + 1<<20
	if entry > maxEntry {
		return nil, fmt.Errorf("-max-upload: a cluster's log takes files up to %dMB; lower -max-upload", (maxEntry-1<<20)*2/3/1_000_000)
	}
	c.MaxEntry = int32(entry)
	if err := c.Check(); err != nil {
		return nil, err
	}
	return c, nil
}

// maxEntry is the largest entry the log takes: NATS's own bound on a
// message.
const maxEntry = 64 << 20

// startCluster joins the cluster cfg names: it returns once the cluster's
// stream is there, which on a first start waits for a quorum of nodes.
func startCluster(ctx context.Context, c cluster.Config, log *slog.Logger) (*cluster.Node, error) {
	c.Log = log
	log.Info("joining the cluster", "node", c.Node, "listen", c.Listen, "peers", strings.Join(c.Peers, ","), "nats", c.URL, "replicas", c.Replicas)
	began := time.Now()
	n, err := cluster.Start(ctx, c)
	if err != nil {
		return nil, fmt.Errorf("cluster: %w", err)
	}
	log.Info("joined the cluster", "took", time.Since(began).Round(time.Millisecond))
	return n, nil
}

// runCluster is `nochat cluster status`: the stream's leader, its replicas
// and how far each is behind, and how far this node's database has
// applied it.
func runCluster(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("nochat cluster", flag.ContinueOnError)
	fs.SetOutput(stderr)
	dbPath := fs.String("db", envOr(getenv, "NOCHAT_DB", defaultDB), "this node's SQLite database `file` (NOCHAT_DB)")
	dir := fs.String("cluster-dir", envOr(getenv, "NOCHAT_CLUSTER_DIR", ""), "this node's cluster `directory`; default the database's name with .jetstream (NOCHAT_CLUSTER_DIR)")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: nochat cluster status [-db file] [-cluster-dir dir]\n\nPrints the cluster's nodes as this node sees them: the stream's leader, its replicas and their lag.\n\nFlags:\n")
		fs.PrintDefaults()
	}
	if len(args) < 2 || args[1] != "status" {
		fs.Usage()
		return usageError{errors.New("cluster: the one command is status")}
	}
	if err := fs.Parse(args[2:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return usageError{err}
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	st, err := cluster.ReadStatus(ctx, cmp.Or(*dir, *dbPath+".jetstream"))
	if err != nil {
		return err
	}
	applied := "unknown"
	if store, err := db.Open(ctx, *dbPath, db.Options{ReadConns: 1}); err == nil {
		if pos, err := store.LogPosition(ctx); err == nil {
			applied = fmt.Sprintf("%d (%d behind)", pos, max(0, int64(st.LastSeq)-pos))
		}
		store.Close()
	}
	fmt.Fprintf(stdout, "stream %s: %d entries, last %d, %d replicas\n", st.Stream, st.Entries, st.LastSeq, st.Replicas)
	fmt.Fprintf(stdout, "this node's database has applied up to %s\n\n", applied)
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NODE\tROLE\tCURRENT\tLAG\tSEEN")
	for _, p := range st.Nodes {
		role, current, seen := "replica", "yes", p.Seen.Round(time.Millisecond).String()
		if p.Leader {
			role, seen = "leader", "-"
		}
		if !p.Current {
			current = "no"
		}
		if p.Offline {
			current = "offline"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\n", p.Name, role, current, p.Lag, seen)
	}
	return tw.Flush()
}
