package main

import "flag"

// Several nodes, one chat: the flags that make this node one of them. The
// cluster itself (package cluster, NATS JetStream inside the process) is
// in clustermode.go; a build with -tags nocluster leaves it out, about
// 10 MB of binary, and refuses these flags (clustermode_off.go).

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

// given reports whether any flag asks for a cluster.
func (f *clusterFlags) given() bool {
	return f.listen != "" || f.peers != "" || f.natsURL != ""
}
