package chat

import (
	"strconv"
	"strings"
	"testing"

	"nochat/db"
)

func TestFindMentions(t *testing.T) {
	people := []db.Member{
		{UserID: 1, User: "Ann"},
		{UserID: 2, User: "Ann Lee"},
		{UserID: 3, User: "50%"},
		{UserID: 4, User: "a_b"},
		{UserID: 5, User: "Zoë"},
	}
	cases := []struct {
		text   string
		mayAll bool
		want   string // "id@start+len ..."
	}{
		{"hi @ann", false, "1@3+4"},
		{"@Ann Lee, lunch?", false, "2@0+8"},
		{"@Anne is someone else", false, ""},
		{"mail ann@example.org or see https://x.org/@Ann", false, ""},
		{"(@ANN) and \"@zoë\"", false, "1@1+4 5@12+5"},
		{"@50 and @axb and 50% off", false, ""},
		{"cc @50% and @A_B", false, "3@3+4 4@12+4"},
		{"@room lunch", false, ""},
		{"@room lunch", true, "0@0+5"},
		{"@Everyone! and @Ann", true, "0@0+9 1@15+4"},
		{"@", false, ""},
		{"@@Ann", false, ""},
	}
	for _, c := range cases {
		var got []string
		for _, m := range FindMentions(c.text, people, c.mayAll) {
			got = append(got, strings.Join([]string{itoa(m.UserID), "@", itoa(int64(m.Start)), "+", itoa(int64(m.Length))}, ""))
		}
		if g := strings.Join(got, " "); g != c.want {
			t.Errorf("FindMentions(%q, all %v) = %q, want %q", c.text, c.mayAll, g, c.want)
		}
	}
}

// A mention shows under the person's name now, highlighted, whatever the
// name holds; the rest of the text renders as ever.
func TestMessageHTMLShowsMentionsUnderTheirNamesNow(t *testing.T) {
	text := "hey @Ann, *see* @room"
	ms := []db.Mention{
		{UserID: 1, User: `<img src=x onerror=alert(1)>`, Start: 4, Length: 4},
		{UserID: 0, User: "room", Start: 16, Length: 5},
	}
	got := MessageHTML(text, ms)
	want := `<p>hey <span class="mention" data-user-id="1">@&lt;img src=x onerror=alert(1)&gt;</span>, <strong>see</strong> <span class="mention" data-user-id="0">@room</span></p>`
	if got != want {
		t.Fatalf("MessageHTML = %s\nwant %s", got, want)
	}
	// A mention that does not fit the text (an old row) is left out.
	if got := MessageHTML("short", []db.Mention{{UserID: 1, User: "Ann", Start: 3, Length: 9}}); got != "<p>short</p>" {
		t.Fatalf("a mention past the text: %s", got)
	}
	// In code, a mention is still the person.
	if got := MessageHTML("`@Ann`", []db.Mention{{UserID: 1, User: "Ann", Start: 1, Length: 4}}); !strings.Contains(got, `<code><span class="mention" data-user-id="1">@Ann</span></code>`) {
		t.Fatalf("a mention in code: %s", got)
	}
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

// Text that looks like a placeholder cannot take a mention's place.
func TestMessageHTMLPlaceholdersCannotBeTyped(t *testing.T) {
	text := "\ue0000\ue001 says hi @bob"
	got := MessageHTML(text, []db.Mention{{UserID: 2, User: "Bob", Start: strings.Index(text, "@"), Length: 4}})
	if !strings.HasSuffix(got, `says hi <span class="mention" data-user-id="2">@Bob</span></p>`) {
		t.Fatalf("MessageHTML = %q", got)
	}
}

// A name typed in letters that look like the person's names them, as the
// name would be refused as taken: "@Anna" in Latin letters is the account
// "Аnna" whose А is Cyrillic. Only the first few "@"s that match no name
// as typed are tried so (each costs a NameKey per length of name).
func TestFindMentionsOfLookalikeNames(t *testing.T) {
	member := func(id int64, name string) db.Member {
		key, err := NameKey(name)
		if err != nil {
			t.Fatal(err)
		}
		return db.Member{UserID: id, User: name, NameKey: key}
	}
	people := []db.Member{member(1, "\u0410nna"), member(2, "Bob"), member(3, "\u0410nna Lee")}
	for _, c := range []struct{ text, want string }{
		{"@Anna welcome", "1@0+5"},
		{"hi @ANNA!", "1@3+5"},
		{"@Anna Lee, lunch?", "3@0+9"},
		{"@Annabel is someone else", ""},
		{"@x @y @z @w @Anna", ""}, // past the tries
		{"@x @y @z @Anna", "1@9+5"},
	} {
		var got []string
		for _, m := range FindMentions(c.text, people, false) {
			got = append(got, itoa(m.UserID)+"@"+itoa(int64(m.Start))+"+"+itoa(int64(m.Length)))
		}
		if g := strings.Join(got, " "); g != c.want {
			t.Errorf("FindMentions(%q) = %q, want %q", c.text, g, c.want)
		}
	}
}
