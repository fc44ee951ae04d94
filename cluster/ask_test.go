package cluster

import (
	"context"
	"maps"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"nochat/cluster/clustertest"
)

// A node asks the others (the dashboard's questions) and hears each
// one's answer under its name: every other node's, or the one node's it
// asked, never its own; a question nobody answers ends with ctx.
func TestNodesAskEachOtherAndAnswer(t *testing.T) {
	nodes := startAll(t, configs(t, clustertest.LoopbackPorts(t, 3)))
	var asked [3]atomic.Int32 // the questions of kind "one" each node heard
	for i, nd := range nodes {
		name := nd.cfg.Node
		nd.n.Answer(func(kind string, doc []byte) []byte {
			if kind == "silent" {
				return nil
			}
			if kind == "one" {
				asked[i].Add(1)
			}
			if kind == "slow" && name == "n3" {
				time.Sleep(300 * time.Millisecond) // n2 answers first
			}
			return []byte(kind + ":" + string(doc) + " from " + name)
		})
	}
	ask := func(to, kind string, expect []string, wait time.Duration) map[string]string {
		ctx, cancel := context.WithTimeout(context.Background(), wait)
		defer cancel()
		got := map[string]string{}
		for node, doc := range nodes[0].n.Ask(ctx, to, kind, []byte("hi"), expect) {
			got[node] = string(doc)
		}
		return got
	}

	// Every other node, and not the asker (the subscriptions may take a
	// moment to reach the other servers).
	deadline := time.Now().Add(10 * time.Second)
	for {
		got := ask("", "echo", []string{"n2", "n3"}, time.Second)
		want := map[string]string{"n2": "echo:hi from n2", "n3": "echo:hi from n3"}
		if maps.Equal(got, want) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("asked every node, heard %v; want %v", got, want)
		}
	}
	// One node: only it hears the question, although the asker waits for
	// two answers.
	if got := ask("n3", "one", []string{"n2", "n3"}, 500*time.Millisecond); !maps.Equal(got, map[string]string{"n3": "one:hi from n3"}) {
		t.Errorf("asked n3, heard %v", got)
	}
	if n1, n2, n3 := asked[0].Load(), asked[1].Load(), asked[2].Load(); n1 != 0 || n2 != 0 || n3 != 1 {
		t.Errorf("a question for n3 reached n1 %d, n2 %d and n3 %d times; want n3 once", n1, n2, n3)
	}
	// An answer from a node the asker does not wait for does not end
	// the wait for the one it does: n2 answers first, n3 is awaited.
	if got := ask("", "slow", []string{"n3"}, 5*time.Second); got["n3"] != "slow:hi from n3" {
		t.Errorf("waiting for n3 only, heard %v", got)
	}
	// Nobody to wait for: nothing asked, nothing heard.
	if got := ask("", "echo", nil, time.Second); len(got) != 0 {
		t.Errorf("waiting for nobody, heard %v", got)
	}
	// A question without answers is over when ctx is.
	began := time.Now()
	if got := ask("", "silent", []string{"n2", "n3"}, 300*time.Millisecond); len(got) != 0 {
		t.Errorf("nobody answers, yet heard %v", slices.Collect(maps.Keys(got)))
	}
	if took := time.Since(began); took > 5*time.Second {
		t.Errorf("an unanswered question took %v", took)
	}
}
