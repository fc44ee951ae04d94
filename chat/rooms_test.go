package chat_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"nochat/chat"
	"nochat/db"
)

// A room created with people in it is theirs at once, even when their
// rooms are first read (a socket opening, a list asked for) while it is
// being created: the directory must not keep a list read from before the
// room.
func TestNewRoomIsInItsPeoplesListsWhileTheyAreFirstRead(t *testing.T) {
	r := newRoom(t, chat.Options{})
	ctx := context.Background()
	const people = 200
	newAccount := func(name string) chat.Identity {
		key, _ := chat.NameKey(name)
		id, err := r.store.CreateAccount(ctx, db.Account{Name: name, NameKey: key, PasswordHash: "x", Role: db.RoleMember, Created: time.Now()})
		if err != nil {
			t.Fatal(err)
		}
		return chat.Identity{UserID: id.ID, Name: name, Role: db.RoleMember}
	}
	ann := newAccount("Ann")
	for i := range people {
		them := newAccount(fmt.Sprintf("P%d", i))
		var (
			wg      sync.WaitGroup
			created chat.RoomView
			errA    error
		)
		wg.Add(2)
		go func() {
			defer wg.Done()
			created, _, errA = r.hub.CreateRoom(ctx, ann, chat.NewRoom{Kind: db.KindDirect, Members: []string{them.Name}})
		}()
		go func() {
			defer wg.Done()
			r.hub.Rooms(ctx, them)
		}()
		wg.Wait()
		if errA != nil {
			t.Fatal(errA)
		}
		rooms, err := r.hub.Rooms(ctx, them)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.ContainsFunc(rooms, func(v chat.RoomView) bool { return v.ID == created.ID && v.Member }) {
			t.Fatalf("try %d: %s's rooms lack the direct room %d Ann just made with them", i, them.Name, created.ID)
		}
	}
}

// Unarchiving checks the name the room has now, not the caller's copy of
// it: renamed while archived, its new name may have been given to another
// room meanwhile, and unarchived it would stand beside it under that name.
func TestUnarchivingChecksTheRoomsNameAsItIsNow(t *testing.T) {
	r := newRoom(t, chat.Options{})
	ctx := context.Background()
	acct, err := r.store.CreateAccount(ctx, db.Account{Name: "Boss", NameKey: "boss", PasswordHash: "x", Role: db.RoleAdmin, Created: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	boss := chat.Identity{UserID: acct.ID, Name: "Boss", Role: db.RoleAdmin}
	yes, no, baz := true, false, "Baz"
	foo, _, err := r.hub.CreateRoom(ctx, boss, chat.NewRoom{Name: "Foo", Kind: db.KindOpen})
	if err != nil {
		t.Fatal(err)
	}
	stale, err := r.hub.ChangeRoom(ctx, boss, foo.Room, chat.RoomChange{Archive: &yes})
	if err != nil {
		t.Fatal(err)
	}
	// Another admin renames the archived room; someone takes the name.
	if _, err := r.hub.ChangeRoom(ctx, boss, stale, chat.RoomChange{Name: &baz}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := r.hub.CreateRoom(ctx, boss, chat.NewRoom{Name: "baz", Kind: db.KindOpen}); err != nil {
		t.Fatalf("a new room named baz beside the archived one: %v", err)
	}
	// The first admin unarchives from the page they loaded before.
	_, err = r.hub.ChangeRoom(ctx, boss, stale, chat.RoomChange{Archive: &no})
	var refusal *chat.Refusal
	if !errors.As(err, &refusal) || refusal.Code != "name_taken" {
		t.Fatalf("unarchiving the room now named Baz beside another baz: %v, want name_taken", err)
	}
}
