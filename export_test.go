package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"nochat/chat"
	"nochat/db"
)

// fillForExport stores, through the db API the server uses, a chat with
// everything an export carries: people (an admin, a member with a
// Unicode name, a banned one), rooms of every kind (open, private, an
// archived one, a direct one), memberships with read marks, guests' and
// members' messages, a bot with an avatar, a reply, mentions, an edit, reactions, a deletion,
// a picture with its thumbnail and another file, and an audit line.
func fillForExport(t *testing.T, path string) {
	t.Helper()
	ctx := context.Background()
	s, err := db.Open(ctx, path, db.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	account := func(name, role string) db.Account {
		key, err := chat.NameKey(name)
		if err != nil {
			t.Fatal(err)
		}
		a, err := s.CreateAccount(ctx, db.Account{Name: name, NameKey: key, PasswordHash: "$2a$10$notarealhashbutsecretenough", Role: role, Created: time.Now()})
		if err != nil {
			t.Fatal(err)
		}
		return a
	}
	ann, zoe, bo := account("Ann", db.RoleAdmin), account("Zoë 🦊", db.RoleMember), account("Bo", db.RoleMember)
	washer, err := s.CreateBot(ctx, "Washer", "washer", nil, []byte("the SHA-256 of a token, 32 byte"), "nochat_bot_ab", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if err := s.SetBotAvatar(ctx, washer.ID, "🧺"); err != nil {
		t.Fatal(err)
	}
	if _, _, _, err := s.Ban(ctx, bo.ID, []string{"192.0.2.7"}, nil, time.Now()); err != nil {
		t.Fatal(err)
	}
	if err := s.BanAddress(ctx, "2001:db8:7::/64", "Zed", time.Now()); err != nil { // a guest's, no account
		t.Fatal(err)
	}
	room := func(r db.Room, members ...int64) db.Room {
		r, _, err := s.CreateRoom(ctx, r, members)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	club := room(db.Room{Slug: "club", Name: "Ünïcode Club ☕", Topic: "crêpes", Kind: db.KindPrivate, Post: "members", CreatedBy: ann.ID}, ann.ID, zoe.ID)
	old := room(db.Room{Slug: "old", Name: "Old", Kind: db.KindOpen, Post: "everyone", Guests: true, CreatedBy: ann.ID}, ann.ID)
	old.Archived = time.Now().UnixMilli()
	if err := s.UpdateRoom(ctx, old); err != nil {
		t.Fatal(err)
	}
	direct := room(db.Room{Slug: "dm-1-2", Name: "", Kind: db.KindDirect}, ann.ID, zoe.ID)

	insert := func(d db.Draft) db.Stored {
		st, err := s.Insert(ctx, []db.Draft{d})
		if err != nil {
			t.Fatal(err)
		}
		if st[0].Refused != nil {
			t.Fatalf("insert %+v: %v", d, st[0].Refused)
		}
		return st[0]
	}
	insert(db.Draft{User: "guest ☃", Message: "hello from a guest <b>&</b>", CID: "c1"})
	first := insert(db.Draft{User: ann.Name, UserID: ann.ID, Room: club.ID, Message: "@Zoë 🦊 crème brûlée?",
		Mentions: []db.Mention{{UserID: zoe.ID, Start: 0, Length: len("@Zoë 🦊")}}})
	insert(db.Draft{User: zoe.Name, UserID: zoe.ID, Room: club.ID, Message: "yes\n\ttabs and \"quotes\"", ReplyTo: first.Message.ID})
	insert(db.Draft{User: ann.Name, UserID: ann.ID, Room: direct.ID, Message: "just us"})
	gone := insert(db.Draft{User: zoe.Name, UserID: zoe.ID, Room: club.ID, Message: "oops"})
	insert(db.Draft{User: ann.Name, UserID: ann.ID, Room: club.ID, Message: "@room look", Mentions: []db.Mention{{UserID: 0, Start: 0, Length: 5}}})

	var pic bytes.Buffer
	img := image.NewNRGBA(image.Rect(0, 0, 3, 2))
	img.Set(1, 1, color.NRGBA{200, 10, 10, 255})
	if err := png.Encode(&pic, img); err != nil {
		t.Fatal(err)
	}
	insert(db.Draft{User: ann.Name, UserID: ann.ID, Room: club.ID, Message: "a picture",
		File: &db.Upload{Name: "tårta.png", Type: "image/png", Width: 3, Height: 2, Data: pic.Bytes(), Thumb: pic.Bytes()[:len(pic.Bytes())-1]}})
	insert(db.Draft{User: zoe.Name, UserID: zoe.ID, Message: "",
		File: &db.Upload{Name: "notes.bin", Type: "application/octet-stream", Data: []byte{0, 1, 2, 0xff, '\n', '"'}}})

	change := func(d db.Draft) {
		t.Helper()
		insert(d)
	}
	change(db.Draft{Change: db.Edit, Target: first.Message.ID, Room: club.ID, UserID: ann.ID, User: ann.Name, Message: "@Zoë 🦊 crème brûlée, edited",
		Mentions: []db.Mention{{UserID: zoe.ID, Start: 0, Length: len("@Zoë 🦊")}}})
	yes := true
	change(db.Draft{Change: db.React, Target: first.Message.ID, Room: club.ID, UserID: zoe.ID, User: zoe.Name, Message: "👍", On: &yes})
	change(db.Draft{Change: db.React, Target: first.Message.ID, Room: club.ID, UserID: ann.ID, User: ann.Name, Message: "🎉", On: &yes})
	change(db.Draft{Change: db.Delete, Target: gone.Message.ID, Room: club.ID, UserID: zoe.ID, User: zoe.Name})
	if _, err := s.MarkRead(ctx, club.ID, zoe.ID, first.Message.ID); err != nil {
		t.Fatal(err)
	}
	if err := s.Audit(ctx, db.AuditEntry{At: time.Now(), ActorID: ann.ID, Actor: ann.Name, Action: "ban", Target: bo.Name, Detail: "spam"}); err != nil {
		t.Fatal(err)
	}
}

// nochat runs a subcommand through run(), as the binary does.
func nochat(ctx context.Context, env map[string]string, args ...string) (string, error) {
	var out, errOut strings.Builder
	err := run(ctx, append([]string{"nochat"}, args...), func(k string) string { return env[k] }, &out, &errOut)
	return out.String() + errOut.String(), err
}

// withoutExportedAt is an export file with its header's time blanked: the
// one part two exports of the same chat may differ in.
func withoutExportedAt(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	re := regexp.MustCompile(`^(\{"nochat_export":1,"schema":\d+,"exported_at":)"[^"]+"\}\n`)
	if !re.Match(b) {
		t.Fatalf("%s does not start with the header: %.200q", name, b)
	}
	return re.ReplaceAll(b, []byte(`$1""}`+"\n"))
}

// exportLines reads an export file's lines as objects.
func exportLines(t *testing.T, name string) []map[string]any {
	t.Helper()
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	var lines []map[string]any
	for i, l := range strings.Split(strings.TrimSuffix(string(b), "\n"), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("line %d of %s: %v", i+1, name, err)
		}
		lines = append(lines, m)
	}
	return lines
}

// TestExportImportRoundTrip exports a chat with everything in it while
// the server runs on it and takes messages, imports the file into a new
// database, exports that, and finds the same file: nothing lost, ids kept.
// The first export is one snapshot: its messages run up to the log's
// counter as of the same moment, though messages kept coming.
func TestExportImportRoundTrip(t *testing.T) {
	dir := t.TempDir()
	dbA := filepath.Join(dir, "a.db")
	fillForExport(t, dbA)
	env := map[string]string{"NOCHAT_DB": dbA, "NOCHAT_MSG_RATE": "0"}
	s := start(t, env)

	ctx, cancel := context.WithCancel(t.Context())
	posting := make(chan int, 1)
	go func() {
		n := 0
		for ; ctx.Err() == nil && n < 100000; n++ {
			resp, err := http.Post(s.url+"/discussion/"+url.PathEscape(fmt.Sprint("during the export ", n)), "", nil)
			if err != nil {
				break
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				t.Errorf("POST during the export: %d", resp.StatusCode)
				break
			}
		}
		posting <- n
	}()
	s.post(t, "eve", "before the export") // the poster is under way
	fileA := filepath.Join(dir, "a.jsonl")
	out, err := nochat(ctx, env, "export", fileA)
	cancel()
	t.Logf("messages posted meanwhile: %d", <-posting)
	if err != nil {
		t.Fatalf("nochat export: %v\n%s", err, out)
	}
	t.Logf("nochat export: %s", strings.TrimSpace(out))

	// One snapshot: the log's counter (read last) is the last message's
	// id (read first), as no change came after the posts.
	lines := exportLines(t, fileA)
	var lastMessage, seq float64
	types := map[string]int{}
	for _, l := range lines[1:] {
		types[l["type"].(string)]++
		row, _ := l["row"].(map[string]any)
		switch l["type"] {
		case "message":
			lastMessage = row["id"].(float64)
		case "sequence":
			if l["name"] == "messages" {
				seq = l["seq"].(float64)
			}
		case "person":
			if _, ok := row["password_hash"]; ok {
				t.Errorf("a person line has a password hash: %v", l)
			}
		}
	}
	if lastMessage == 0 || seq != lastMessage {
		t.Errorf("last message %v, messages counter %v: want one snapshot, the same", lastMessage, seq)
	}
	for _, typ := range []string{"person", "room", "member", "message", "event", "reaction", "mention", "file", "audit", "ban", "sequence", "end"} {
		if types[typ] == 0 {
			t.Errorf("no %q line in the export: the round trip would not test it", typ)
		}
	}

	dbB := filepath.Join(dir, "b.db")
	envB := map[string]string{"NOCHAT_DB": dbB}
	out, err = nochat(t.Context(), envB, "import", fileA)
	if err != nil {
		t.Fatalf("nochat import: %v\n%s", err, out)
	}
	t.Logf("nochat import: %s", strings.TrimSpace(out))
	link := regexp.MustCompile(`Ann: (/reset/\S+)`).FindStringSubmatch(out)
	if link == nil {
		t.Fatalf("import printed no reset link for the admin:\n%s", out)
	}
	fileB := filepath.Join(dir, "b.jsonl")
	if out, err := nochat(t.Context(), envB, "export", fileB); err != nil {
		t.Fatalf("nochat export of the import: %v\n%s", err, out)
	}
	a, b := withoutExportedAt(t, fileA), withoutExportedAt(t, fileB)
	if !bytes.Equal(a, b) {
		al, bl := strings.Split(string(a), "\n"), strings.Split(string(b), "\n")
		for i := range min(len(al), len(bl)) {
			if al[i] != bl[i] {
				t.Fatalf("the re-export differs at line %d:\n%.300s\n%.300s", i+1, al[i], bl[i])
			}
		}
		t.Fatalf("the re-export has %d lines, the export %d", len(bl), len(al))
	}

	// The imported database works as the old one did: search finds the
	// words, new ids continue the log, the admin's reset link opens.
	ctx2 := t.Context()
	store, err := db.Open(ctx2, dbB, db.Options{})
	if err != nil {
		t.Fatal(err)
	}
	matches, err := store.Search(ctx2, db.SearchQuery{Text: "creme", Rooms: []int64{2}})
	if err != nil || len(matches) != 1 {
		t.Errorf("search for creme in the imported club: %v, %v; want the edited message", matches, err)
	}
	st, err := store.Insert(ctx2, []db.Draft{{User: "guest", Message: "after the import"}})
	if err != nil || st[0].Refused != nil {
		t.Fatalf("insert after import: %v %v", err, st)
	}
	if got, want := float64(st[0].Message.ID), seq+1; got != want {
		t.Errorf("first id after the import = %v, want %v", got, want)
	}
	if matches, err := store.Search(ctx2, db.SearchQuery{Text: "after", Rooms: []int64{db.DefaultRoom}}); err != nil || len(matches) != 1 {
		t.Errorf("search for a message stored after the import: %v, %v; want it", matches, err)
	}
	// The index's triggers are back: an edit and a deletion of an imported
	// message keep it whole (new messages the store indexes itself).
	if len(matches) != 1 || matches[0].UserID == nil {
		t.Fatalf("the imported crème brûlée: %+v, want one member's message", matches)
	}
	m := matches[0].Message
	for _, c := range []struct {
		d        db.Draft
		recooked int // messages search then finds for "recooked"
	}{
		{db.Draft{Change: db.Edit, Target: m.ID, Room: m.Room, UserID: *m.UserID, User: m.User, Message: "crème brûlée, recooked"}, 1},
		{db.Draft{Change: db.Delete, Target: m.ID, Room: m.Room, UserID: *m.UserID, User: m.User}, 0},
	} {
		d := c.d
		st, err := store.Insert(ctx2, []db.Draft{d})
		if err != nil || st[0].Refused != nil {
			t.Fatalf("%s of an imported message: %v %+v", d.Change, err, st)
		}
		if found, err := store.Search(ctx2, db.SearchQuery{Text: "recooked", Rooms: []int64{m.Room}}); err != nil || len(found) != c.recooked {
			t.Errorf("after the %s of an imported message, search for recooked: %d matches, %v; want %d", d.Change, len(found), err, c.recooked)
		}
		if err := store.SearchIndexCheck(ctx2); err != nil {
			t.Errorf("after the %s of an imported message: %v", d.Change, err)
		}
	}
	store.Close()

	sb := start(t, envB)
	if status, body := getBody(t, sb.url+link[1]); status != http.StatusOK || !strings.Contains(body, "Ann") {
		t.Errorf("GET the printed reset link: %d %.300s", status, body)
	}
}

// TestImportRefusesANonEmptyDatabase: an import never mixes two chats.
func TestImportRefusesANonEmptyDatabase(t *testing.T) {
	dir := t.TempDir()
	dbA := filepath.Join(dir, "a.db")
	fillForExport(t, dbA)
	env := map[string]string{"NOCHAT_DB": dbA}
	file := filepath.Join(dir, "a.jsonl")
	if out, err := nochat(t.Context(), env, "export", file); err != nil {
		t.Fatalf("export: %v\n%s", err, out)
	}
	before := withoutExportedAt(t, file)
	out, err := nochat(t.Context(), env, "import", file)
	if err == nil || !errors.Is(err, db.ErrNotEmpty) || !strings.Contains(err.Error(), "import into a new database") {
		t.Fatalf("import into the database it came from: %v\n%s; want it refused as not empty", err, out)
	}
	var usage usageError
	if errors.As(err, &usage) {
		t.Errorf("refusal is a usage error (exit status 2); want exit status 1")
	}
	if out, err := nochat(t.Context(), env, "export", "-force", file); err != nil {
		t.Fatalf("export: %v\n%s", err, out)
	}
	if !bytes.Equal(before, withoutExportedAt(t, file)) {
		t.Errorf("the refused import changed the database")
	}
}

// TestImportRefusesABadLineWhole: a bad line is named by its number and
// nothing of the file is imported, even the lines before it.
func TestImportRefusesABadLineWhole(t *testing.T) {
	dir, file := exportFilled(t)
	good, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.SplitAfter(string(good), "\n")
	var firstMessage int
	for i, l := range lines {
		if strings.HasPrefix(l, `{"type":"message","row":{`) {
			firstMessage = i
			break
		}
	}
	cases := []struct {
		name string
		edit func([]string) []string
		line int
		want string
	}{
		{"not JSON", func(l []string) []string { l[firstMessage+1] = "{\"type\":\"message\",\n"; return l }, firstMessage + 2, "not a JSON object"},
		{"a string for an id", func(l []string) []string {
			l[firstMessage+1] = strings.Replace(l[firstMessage+1], `"id":`, `"id":"x","was":`, 1)
			return l
		}, firstMessage + 2, "unknown field"},
		{"text for a number", func(l []string) []string {
			l[firstMessage+1] = regexp.MustCompile(`"timestamp":\d+`).ReplaceAllString(l[firstMessage+1], `"timestamp":"noon"`)
			return l
		}, firstMessage + 2, "want a whole number"},
		{"a password hash", func(l []string) []string {
			l[1] = strings.Replace(l[1], `"id":`, `"password_hash":"$2a$","id":`, 1)
			return l
		}, 2, "never exported"},
		{"cut off", func(l []string) []string { return l[:len(l)-2] }, len(lines) - 2, `without its "end" line`},
		{"a counter below the ids", func(l []string) []string {
			for i, s := range l {
				if strings.HasPrefix(s, `{"type":"sequence","name":"messages"`) {
					l[i] = `{"type":"sequence","name":"messages","seq":2}` + "\n"
					return l
				}
			}
			panic("no sequence line")
		}, len(lines) - 1, "handed out twice"},
		{"a message in a room that is not there", func(l []string) []string {
			for i, s := range l {
				if strings.HasPrefix(s, `{"type":"member","row":{`) {
					l[i] = regexp.MustCompile(`"room_id":\d+`).ReplaceAllString(s, `"room_id":99`)
					return l
				}
			}
			panic("no member line")
		}, -1, "FOREIGN KEY"},
	}
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			bad := filepath.Join(dir, fmt.Sprintf("bad%d.jsonl", i))
			if err := os.WriteFile(bad, []byte(strings.Join(c.edit(slicesClone(lines)), "")), 0o600); err != nil {
				t.Fatal(err)
			}
			target := filepath.Join(dir, fmt.Sprintf("target%d.db", i))
			out, err := nochat(t.Context(), map[string]string{"NOCHAT_DB": target}, "import", bad)
			var le *db.LineError
			if !errors.As(err, &le) || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), "nothing was imported") {
				t.Fatalf("import: %v\n%s; want a line error with %q", err, out, c.want)
			}
			if c.line > 0 && le.Line != c.line {
				t.Errorf("refused line %d, want %d (%v)", le.Line, c.line, err)
			}
			// Nothing is left: the target imports the good file.
			if out, err := nochat(t.Context(), map[string]string{"NOCHAT_DB": target}, "import", file); err != nil {
				t.Fatalf("import of the good file after the refused one: %v\n%s", err, out)
			}
		})
	}
}

func slicesClone(s []string) []string { return append([]string(nil), s...) }

// exportFilled exports a database filled by fillForExport into a file in a
// new directory, and returns both.
func exportFilled(t *testing.T) (dir, file string) {
	t.Helper()
	dir = t.TempDir()
	dbA := filepath.Join(dir, "a.db")
	fillForExport(t, dbA)
	file = filepath.Join(dir, "a.jsonl")
	if out, err := nochat(t.Context(), map[string]string{"NOCHAT_DB": dbA}, "export", file); err != nil {
		t.Fatalf("export: %v\n%s", err, out)
	}
	return dir, file
}

// A file exported before accounts had avatars imports, each avatar none.
func TestImportAFileFromBeforeAvatars(t *testing.T) {
	dir, file := exportFilled(t)
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), `"avatar":"🧺"`) {
		t.Fatal(`the export has no "avatar":"🧺"`)
	}
	old := regexp.MustCompile(`,"avatar":"[^"]*"|"avatar":"[^"]*",`).ReplaceAll(b, nil)
	oldFile := filepath.Join(dir, "old.jsonl")
	if err := os.WriteFile(oldFile, old, 0o600); err != nil {
		t.Fatal(err)
	}
	dbB := filepath.Join(dir, "b.db")
	if out, err := nochat(t.Context(), map[string]string{"NOCHAT_DB": dbB}, "import", oldFile); err != nil {
		t.Fatalf("import of a file without avatars: %v\n%s", err, out)
	}
	s, err := db.Open(t.Context(), dbB, db.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	bots, err := s.Bots(t.Context())
	if err != nil || len(bots) != 1 || bots[0].Name != "Washer" || bots[0].Avatar != "" {
		t.Fatalf("bots after the import: %+v, %v; want Washer with no avatar", bots, err)
	}
}

// TestImportTutorialHistory loads the Node tutorial's history into the
// default room as guests' messages, names and times kept, in order; a
// file with one message the chat would refuse is refused whole.
func TestImportTutorialHistory(t *testing.T) {
	dir := t.TempDir()
	dbPath := filepath.Join(dir, "nochat.db")
	env := map[string]string{"NOCHAT_DB": dbPath}
	history := `[
		{"message": "hi all", "user": "ann", "timestamp": 1500000000000},
		{"message": "héllo wörld 👋", "user": "Zoë", "timestamp": 1500000001000},
		{"message": "no name", "timestamp": 1500000002000, "id": 7}
	]`
	file := filepath.Join(dir, "history.json")
	if err := os.WriteFile(file, []byte(history), 0o600); err != nil {
		t.Fatal(err)
	}
	for round := 1; round <= 2; round++ { // the second appends
		out, err := nochat(t.Context(), env, "import", "-tutorial", file)
		if err != nil {
			t.Fatalf("import -tutorial (round %d): %v\n%s", round, err, out)
		}
		t.Logf("round %d: %s", round, strings.TrimSpace(out))
	}
	store, err := db.Open(t.Context(), dbPath, db.Options{})
	if err != nil {
		t.Fatal(err)
	}
	got, err := store.Latest(t.Context(), 10)
	if err != nil {
		store.Close()
		t.Fatal(err)
	}
	// Search finds them: the index took them in the import's transaction.
	found, err := store.Search(t.Context(), db.SearchQuery{Text: "world", Rooms: []int64{db.DefaultRoom}})
	if err != nil || len(found) != 2 {
		t.Errorf("search for world after the imports: %d matches, %v; want 2", len(found), err)
	}
	if err := store.SearchIndexCheck(t.Context()); err != nil {
		t.Error(err)
	}
	store.Close()
	if len(got) != 6 {
		t.Fatalf("%d messages, want 6: %+v", len(got), got)
	}
	want := []struct {
		user, message string
		ts            int64
	}{{"ann", "hi all", 1500000000000}, {"Zoë", "héllo wörld 👋", 1500000001000}, {chat.DefaultUser, "no name", 1500000002000}}
	for i, m := range got {
		w := want[i%3]
		if m.User != w.user || m.Message != w.message || m.Timestamp != w.ts || !m.Guest || m.Room != db.DefaultRoom || (i > 0 && m.ID <= got[i-1].ID) {
			t.Errorf("message %d = %+v; want %+v as a guest's in the default room, ids rising", i, m, w)
		}
	}

	// The server shows them through the tutorial's own route.
	s := start(t, env)
	if status, body := getBody(t, s.url+"/discussion/latest/1"); status != 200 || !strings.Contains(body, `"no name"`) {
		t.Errorf("GET /discussion/latest/1: %d %s", status, body)
	}
	s.shutdown(t)

	refused := []struct{ name, file, want string }{
		{"too long", `[{"message": "ok", "user": "a", "timestamp": 1}, {"message": "` + strings.Repeat("x", 2001) + `", "user": "a", "timestamp": 2}]`, "message 2"},
		{"no timestamp", `[{"message": "ok", "user": "a"}]`, "timestamp"},
		{"empty message", `[{"message": "  ", "user": "a", "timestamp": 1}]`, "message 1"},
		{"not an array", `{"message": "ok"}`, "JSON array"},
		{"cut off", `[{"message": "ok", "user": "a", "timestamp": 1}`, "does not end"},
	}
	for _, c := range refused {
		t.Run(c.name, func(t *testing.T) {
			bad := filepath.Join(t.TempDir(), "bad.json")
			if err := os.WriteFile(bad, []byte(c.file), 0o600); err != nil {
				t.Fatal(err)
			}
			out, err := nochat(t.Context(), env, "import", "-tutorial", bad)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("import -tutorial: %v\n%s; want refused with %q", err, out, c.want)
			}
			store, err := db.Open(t.Context(), dbPath, db.Options{})
			if err != nil {
				t.Fatal(err)
			}
			defer store.Close()
			if n, err := store.Count(t.Context()); err != nil || n != 6 {
				t.Errorf("messages after the refused file: %d, %v; want 6, nothing imported", n, err)
			}
		})
	}

	// A guest's message under a member's name would pass for theirs.
	t.Run("a member's name", func(t *testing.T) {
		dir := t.TempDir()
		members := filepath.Join(dir, "members.db")
		fillForExport(t, members) // Ann is a member
		bad := filepath.Join(dir, "bad.json")
		if err := os.WriteFile(bad, []byte(`[{"message": "hi", "user": "guest", "timestamp": 1}, {"message": "it is me", "user": "ANN", "timestamp": 2}]`), 0o600); err != nil {
			t.Fatal(err)
		}
		out, err := nochat(t.Context(), map[string]string{"NOCHAT_DB": members}, "import", "-tutorial", bad)
		if err == nil || !strings.Contains(err.Error(), "message 2") || !strings.Contains(err.Error(), "member's name") {
			t.Fatalf("import -tutorial: %v\n%s; want message 2 refused for a member's name", err, out)
		}
	})
}

// TestExportToStandardOutput: FILE "-" writes the same export to standard
// output, and the summary to standard error, out of the file's way.
func TestExportToStandardOutput(t *testing.T) {
	dir := t.TempDir()
	dbPath := filepath.Join(dir, "nochat.db")
	fillForExport(t, dbPath)
	env := map[string]string{"NOCHAT_DB": dbPath}
	file := filepath.Join(dir, "a.jsonl")
	if out, err := nochat(t.Context(), env, "export", file); err != nil {
		t.Fatalf("export: %v\n%s", err, out)
	}
	var stdout, stderr strings.Builder
	if err := run(t.Context(), []string{"nochat", "export", "-"}, func(k string) string { return env[k] }, &stdout, &stderr); err != nil {
		t.Fatalf("export -: %v\n%s", err, stderr.String())
	}
	piped := filepath.Join(dir, "piped.jsonl")
	if err := os.WriteFile(piped, []byte(stdout.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(withoutExportedAt(t, file), withoutExportedAt(t, piped)) {
		t.Errorf("export - wrote another file than export FILE")
	}
	if !strings.Contains(stderr.String(), "exported") {
		t.Errorf("export - said %q on standard error; want its summary", stderr.String())
	}
}
