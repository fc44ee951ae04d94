package chat

import (
	"fmt"
	"net/netip"
	"testing"
	"time"

	"golang.org/x/time/rate"
)

// The table of buckets stays bounded however many addresses come by, even
// all within the idle time; and a client that keeps its bucket in use is
// still limited.
func TestKeyedLimiterIsBounded(t *testing.T) {
	k := NewKeyedLimiter(rate.Every(time.Hour), 1)
	now := time.Now()
	if !k.AllowAt("198.51.100.1", now) || k.AllowAt("198.51.100.1", now) {
		t.Fatal("burst of 1: want one allowed, then refused")
	}
	base := netip.MustParseAddr("2001:db8::")
	for i := range 100_000 {
		a := base.As16()
		a[4], a[5], a[6], a[7] = byte(i>>24), byte(i>>16), byte(i>>8), byte(i) // a new /64 each time
		k.AllowAt(netip.AddrFrom16(a).String(), now.Add(time.Duration(i)*time.Microsecond))
	}
	if n := len(k.buckets); n > 10_000 {
		t.Fatalf("%d buckets after 100,000 addresses, want at most 10,000", n)
	}
	// A bucket made just now, spent, is in the table and still refuses.
	now = now.Add(time.Second)
	k.AllowAt("198.51.100.2", now)
	if k.AllowAt("198.51.100.2", now) {
		t.Fatal("a spent bucket allowed a second request")
	}
}

// Addresses in one IPv6 /64 share a bucket: one person may use any of them.
func TestKeyedLimiterKeysIPv6By64(t *testing.T) {
	k := NewKeyedLimiter(rate.Every(time.Hour), 2)
	now := time.Now()
	for i := range 2 {
		if !k.AllowAt(fmt.Sprintf("2001:db8:0:1::%x", i+1), now) {
			t.Fatalf("send %d within the burst refused", i+1)
		}
	}
	if k.AllowAt("2001:db8:0:1:aaaa::3", now) {
		t.Fatal("a third address in the same /64 got a fresh bucket")
	}
	if !k.AllowAt("2001:db8:0:2::1", now) {
		t.Fatal("an address in another /64 was refused")
	}
}
