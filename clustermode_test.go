//go:build !nocluster

package main

import (
	"errors"
	"io"
	"strings"
	"testing"
)

// The cluster's flags: a cluster that could not survive a failure, or that
// anyone on the network could join, is refused at the command line with
// its reason.
func TestClusterFlags(t *testing.T) {
	secret := map[string]string{"NOCHAT_CLUSTER_SECRET": "a-secret-of-24-characters"}
	parse := func(env map[string]string, args ...string) (config, error) {
		return parseFlags(append([]string{"nochat", "-db", "x.db"}, args...), func(k string) string { return env[k] }, io.Discard)
	}
	cfg, err := parse(secret, "-cluster-listen", "10.0.0.1:6222", "-cluster-peers", "10.0.0.2:6222, 10.0.0.3:6222", "-node-name", "pi1")
	if err != nil {
		t.Fatal(err)
	}
	c := cfg.cluster
	if c == nil || c.Replicas != 3 || len(c.Peers) != 2 || c.Peers[1] != "10.0.0.3:6222" || c.Dir != "x.db.jetstream" || c.Node != "pi1" || c.Name != "nochat" {
		t.Fatalf("cluster config: %+v", c)
	}
	if cfg, err := parse(nil); err != nil || cfg.cluster != nil {
		t.Fatalf("no cluster flag: %+v, %v; want a single node", cfg.cluster, err)
	}
	for _, tc := range []struct {
		env  map[string]string
		args []string
		want string
	}{
		{secret, []string{"-cluster-listen", "10.0.0.1:6222", "-cluster-peers", "10.0.0.2:6222", "-replicas", "1"}, "cannot survive losing a node"},
		{secret, []string{"-cluster-listen", "10.0.0.1:6222", "-cluster-peers", "10.0.0.2:6222"}, "the cluster has 2 nodes"},
		{nil, []string{"-cluster-listen", "10.0.0.1:6222", "-cluster-peers", "10.0.0.2:6222,10.0.0.3:6222"}, "secret"},
		{map[string]string{"NOCHAT_CLUSTER_SECRET": "short"}, []string{"-cluster-listen", "10.0.0.1:6222", "-cluster-peers", "10.0.0.2:6222,10.0.0.3:6222"}, "at least 16"},
		{secret, []string{"-cluster-peers", "10.0.0.2:6222,10.0.0.3:6222"}, "-cluster-listen and -cluster-peers go together"},
		{secret, []string{"-cluster-listen", "10.0.0.1:6222", "-cluster-peers", "10.0.0.2:6222,10.0.0.3:6222", "-replicas", "three"}, "want a whole number"},
		{secret, []string{"-cluster-listen", "10.0.0.1:6222", "-cluster-peers", "10.0.0.2:6222,10.0.0.3:6222", "-max-upload", "100MB"}, "lower -max-upload"},
		{secret, []string{"-cluster-listen", "10.0.0.1:6222", "-cluster-peers", "10.0.0.2:6222,10.0.0.3:6222", "-cluster-secret-file", "/nonexistent/secret"}, "-cluster-secret-file"},
	} {
		_, err := parse(tc.env, tc.args...)
		var usage usageError
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: %v, want an error saying %q", tc.args, err, tc.want)
		} else if !errors.As(err, &usage) {
			t.Errorf("%v: %v is not a usage error (exit status 2)", tc.args, err)
		}
	}
}
