package cluster

import (
	"context"
	"crypto/sha256"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"nochat/db"
)

// BenchmarkCommands is what a write of accounts or rooms costs: a sign-in
// (a new session) and a new room, on a single node (a transaction of its
// own) and on a three-node cluster on loopback (published to the stream,
// written to disk by a majority of the nodes, applied by this one, which
// answers). Every database at synchronous=FULL. Run with -count to
// alternate the two:
//
//	go test ./cluster -run '^$' -bench Commands -benchtime 200x -count 5
func BenchmarkCommands(b *testing.B) {
	ctx := context.Background()
	single, err := db.Open(ctx, filepath.Join(b.TempDir(), "single.db"), db.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer single.Close()
	nodes := startAll(b, configs(b, freePorts(b, 3)))
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
			for i := range b.N {
				token := sha256.Sum256(fmt.Appendf(nil, "%s %d %d", where.name, b.N, i))
				sess := db.Session{Kind: db.SessionAccount, AccountID: owner.ID, UserAgent: "bench", Created: now, Expires: now.Add(time.Hour)}
				if err := s.CreateSession(ctx, token[:], sess, 1<<20); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run("new-room/"+where.name, func(b *testing.B) {
			for i := range b.N {
				slug := fmt.Sprintf("room-%d-%d", b.N, i)
				if _, _, err := s.CreateRoom(ctx, db.Room{Slug: slug, Name: slug, Kind: db.KindOpen, CreatedBy: owner.ID}, []int64{owner.ID}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
