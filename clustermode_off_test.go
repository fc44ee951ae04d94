//go:build nocluster

package main

import (
	"io"
	"testing"
)

// Built without the cluster, NoChat refuses its flags rather than run as
// a single node where a cluster was asked for.
func TestNoClusterRefusesClusterFlags(t *testing.T) {
	_, err := parseFlags([]string{"nochat", "-cluster-listen", "10.0.0.1:6222", "-cluster-peers", "10.0.0.2:6222"}, func(string) string { return "" }, io.Discard)
	if err == nil || err.Error() != errNoCluster.Error() {
		t.Fatalf("cluster flags in a nocluster build: %v, want errNoCluster", err)
	}
	if _, err := parseFlags([]string{"nochat"}, func(string) string { return "" }, io.Discard); err != nil {
		t.Fatalf("a single node in a nocluster build: %v", err)
	}
}
