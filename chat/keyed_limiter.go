package chat

import (
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// KeyedLimiter is a token bucket per key: a client address, IPv6 addresses
// by their /64 (AddressKey), or an account's id. It holds at most maxBuckets buckets however
// many addresses come by: buckets idle for a while are forgotten, and when
// the table is full and none is idle, one is dropped to make room.
type KeyedLimiter struct {
	limit rate.Limit
	burst int

	mu      sync.Mutex
	buckets map[string]*bucket
	swept   time.Time
}

type bucket struct {
	lim  *rate.Limiter
	seen time.Time
}

// idleAfter is how long an unused bucket is kept. A full bucket refills in
// far less, so forgetting it changes nothing for its owner.
const idleAfter = 10 * time.Minute

// maxBuckets bounds the table: about 1.8 MB at some 180 bytes a bucket. Without
// it, 100,000 distinct IPv6 addresses took 17 MiB, kept for idleAfter.
//
// A dropped bucket comes back full, so an honest client loses nothing. What
// an attacker with more than maxBuckets addresses (/64 networks) gains is
// that its own spent buckets are dropped too, and so each of its addresses
// gets a fresh burst more often than the rate allows; an attacker with that
// many addresses already has that many bursts. The login gate, which holds
// across all addresses, does not depend on this table.
const maxBuckets = 10_000

func NewKeyedLimiter(limit rate.Limit, burst int) *KeyedLimiter {
	return &KeyedLimiter{limit: limit, burst: burst, buckets: make(map[string]*bucket), swept: time.Now()}
}

// Allow takes a token from addr's bucket, reporting false when it is empty.
func (k *KeyedLimiter) Allow(addr string) bool { return k.AllowAt(addr, time.Now()) }

// AllowAt is Allow at the given time.
func (k *KeyedLimiter) AllowAt(addr string, now time.Time) bool {
	key := AddressKey(addr)
	k.mu.Lock()
	defer k.mu.Unlock()
	if now.Sub(k.swept) > idleAfter {
		k.sweep(now)
	}
	b, ok := k.buckets[key]
	if !ok {
		if len(k.buckets) >= maxBuckets {
			k.makeRoom(now)
		}
		b = &bucket{lim: rate.NewLimiter(k.limit, k.burst)}
		k.buckets[key] = b
	}
	b.seen = now
	return b.lim.AllowN(now, 1)
}

// sweep forgets the buckets idle for idleAfter.
func (k *KeyedLimiter) sweep(now time.Time) {
	for key, b := range k.buckets {
		if now.Sub(b.seen) > idleAfter {
			delete(k.buckets, key)
		}
	}
	k.swept = now
}

// makeRoom frees a place in a full table: the idle buckets if there are
// any (a sweep at most once a second, so that a stream of new addresses
// does not walk the table each time), else one bucket, whichever the map
// yields first.
func (k *KeyedLimiter) makeRoom(now time.Time) {
	if now.Sub(k.swept) > time.Second {
		k.sweep(now)
	}
	for key := range k.buckets {
		if len(k.buckets) < maxBuckets {
			return
		}
		delete(k.buckets, key)
	}
}
