// Package clustertest has what tests of several nodes share: addresses
// for their routes.
package clustertest

import (
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"strconv"
	"strings"
	"testing"
)

// LoopbackPorts returns n free addresses on 127.0.0.1 for nodes to listen
// on, drawn below the kernel's ephemeral range: a port the kernel handed
// out and took back (127.0.0.1:0) may be given to an outgoing connection
// before the node binds it, and the node then cannot listen ("address
// already in use") or a route reaches the wrong end.
func LoopbackPorts(t testing.TB, n int) []string {
	t.Helper()
	low := 32768 // Linux's default start of the range
	if b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range"); err == nil {
		if f := strings.Fields(string(b)); len(f) == 2 {
			if v, err := strconv.Atoi(f[0]); err == nil {
				low = v
			}
		}
	}
	var addrs []string
	for range n {
		var l net.Listener
		for try := 0; l == nil && low > 12000 && try < 50; try++ {
			l, _ = net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", 10000+rand.IntN(low-10000)))
		}
		if l == nil { // no room below the range: one from it
			var err error
			if l, err = net.Listen("tcp", "127.0.0.1:0"); err != nil {
				t.Fatal(err)
			}
		}
		// Held until all n are drawn, so that no two are the same.
		defer l.Close()
		addrs = append(addrs, l.Addr().String())
	}
	return addrs
}
