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
