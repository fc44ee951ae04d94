package cluster

import (
	"context"
	"crypto/sha256"
	"fmt"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"nochat/cluster/clustertest"
	"nochat/db"
)

// BenchmarkCommands is what a write of accounts or rooms costs: a sign-in
// (a new session) and a new room, on a single node (a transaction of its
// own) and on a three-node cluster on loopback (published to the stream,
// written to disk by a majority of the nodes, applied by this one, which
// answers). A person keeps up to 10 sessions, as the server's default
// does. Every database at synchronous=FULL. Each run measures the two
// side by side; run it a few times:
//
//	for i in 1 2 3 4 5; do go test ./cluster -run '^$' -bench Commands -benchtime 200x; done
func BenchmarkCommands(b *testing.B) {
	ctx := context.Background()
	single, err := db.Open(ctx, filepath.Join(b.TempDir(), "single.db"), db.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer single.Close()
	nodes := startAll(b, configs(b, clustertest.LoopbackPorts(b, 3)))
	var made atomic.Int64 // names each session and room apart, run after run
	for _, where := range []struct {
		name  string
		store *db.Store
	}{{"single", single}, {"cluster", nodes[0].store}} {
		s := where.store
		owner, err := s.CreateAccount(ctx, db.Account{Name: "Ann", NameKey: "ann", PasswordHash: "h", Role: db.RoleMember, Created: time.Now()})
		if err != nil {
			b.Fatal(err)
		}
		b.Run("sign-in/"+where.name, func(b *testing.B) {
			now := time.Now()
			for range b.N {
				token := sha256.Sum256(fmt.Appendf(nil, "token %d", made.Add(1)))
				sess := db.Session{Kind: db.SessionAccount, AccountID: owner.ID, UserAgent: "bench", Created: now, Expires: now.Add(time.Hour)}
				if err := s.CreateSession(ctx, token[:], sess, 10); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run("new-room/"+where.name, func(b *testing.B) {
			for range b.N {
				slug := fmt.Sprintf("room-%d", made.Add(1))
				if _, _, err := s.CreateRoom(ctx, db.Room{Slug: slug, Name: slug, Kind: db.KindOpen, CreatedBy: owner.ID}, []int64{owner.ID}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
