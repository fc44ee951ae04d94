//go:build !nocluster

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
	"nochat/views"
)

// clusterConfig is how this node joins its cluster.
type clusterConfig = cluster.Config

// config is the cluster's Config, or nil for a single node (no cluster
// flag given).
func (f *clusterFlags) config(dbPath string, maxUpload int64, getenv func(string) string) (*clusterConfig, error) {
	if !f.given() {
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
		// The host name up to its first dot, as a node's name may be
		// only letters, digits, - and _.
		host, _, _ := strings.Cut(hostname(), ".")
		c.Node = strings.Map(func(r rune) rune {
			if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' {
				return r
			}
			return '-'
		}, host)
		if c.Node == "" {
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
func startCluster(ctx context.Context, c clusterConfig, log *slog.Logger) (clusterLog, error) {
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
	applied := "unknown (" + *dbPath + " cannot be read)"
	if pos, err := db.LogPositionOf(ctx, *dbPath); err == nil {
		applied = fmt.Sprintf("%d (%d behind)", pos, max(0, int64(st.LastSeq)-pos))
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

// clusterDashboard is the dashboard's view of the cluster from node n,
// joined as c says, whose database is store.
func clusterDashboard(n clusterLog, store *db.Store, c clusterConfig) func(context.Context) views.ClusterView {
	node := n.(*cluster.Node)
	return func(ctx context.Context) views.ClusterView {
		v := views.ClusterView{Node: c.Node}
		v.Applied, _ = store.LogPosition(ctx)
		st, err := node.Status(ctx)
		if errors.Is(err, context.DeadlineExceeded) {
			err = context.DeadlineExceeded // the view words this one itself
		}
		if err != nil {
			v.Unreachable = err.Error()
			return v
		}
		v.Last, v.Nodes = int64(st.LastSeq), len(st.Nodes)
		for _, p := range st.Nodes {
			if p.Leader {
				v.Leader = p.Name
			}
			if p.Current && !p.Offline {
				v.Current++
			}
		}
		return v
	}
}
