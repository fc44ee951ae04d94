//go:build nocluster

package main

import (
	"context"
	"errors"
	"io"
	"log/slog"

	"nochat/db"
	"nochat/views"
)

// A build without the cluster (-tags nocluster): the same flags, refused.

// clusterConfig is empty: there is no cluster to join.
type clusterConfig struct{}

var errNoCluster = errors.New("this NoChat was built without cluster support (-tags nocluster): use a release binary, or build without the tag")

func (f *clusterFlags) config(string, int64, func(string) string) (*clusterConfig, error) {
	if f.given() {
		return nil, errNoCluster
	}
	return nil, nil
}

func startCluster(context.Context, clusterConfig, *slog.Logger) (clusterLog, error) {
	return nil, errNoCluster
}

func clusterDashboard(clusterLog, *db.Store, clusterConfig) func(context.Context) views.ClusterView {
	return nil
}

func runCluster(context.Context, []string, func(string) string, io.Writer, io.Writer) error {
	return errNoCluster
}
