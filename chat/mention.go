package chat

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"html"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"nochat/db"
)

// Mentions. "@Name" in a message names a person of the room: found when
// the message is sent (or edited), stored with their account id, and shown
// under their name now, so a rename breaks none. "@room" and "@everyone"
// name everyone in the room, from an admin or the room's creator; from
// anyone else they are words.

// everyone are the words that mention everyone in the room.
var everyone = []string{"room", "everyone"}

// mentionable reports whether an "@" at i of text may start a mention:
// at the start, or after a space or an opening bracket or quote, never
// inside a word, an address or a link (a@b.org, https://host/@x).
func mentionable(text string, i int) bool {
	if i == 0 {
		return true
	}
	r, _ := utf8.DecodeLastRuneInString(text[:i])
	return unicode.IsSpace(r) || strings.ContainsRune(`([{<"'`, r)
}

// nameEnds reports whether a name that ends at j of text ends there: at the
// end, or before a character that cannot continue a name.
func nameEnds(text string, j int) bool {
	if j == len(text) {
		return true
	}
	r, _ := utf8.DecodeRuneInString(text[j:])
	return !(unicode.IsLetter(r) || unicode.IsDigit(r) || r == '_' || r == '-')
}

// FindMentions returns the mentions in text of people, the longest name
// that fits at each "@" (so "@Ann Lee" is Ann Lee, not Ann), case aside;
// and of everyone, when mayAll. A name typed in letters that look like the
// person's (a Latin A for the Cyrillic А of "Аnna") names them too, as
// names are compared for being taken (NameKey), for the first few "@"s
// that match no name as typed.
func FindMentions(text string, people []db.Member, mayAll bool) []db.Mention {
	var out []db.Mention
	lookalikes := maxLookalikeTries
	for i := 0; i < len(text); i++ {
		if text[i] != '@' || !mentionable(text, i) {
			continue
		}
		rest := text[i+1:]
		best := db.Mention{Length: 0}
		for _, p := range people {
			n := len(p.User)
			if n > best.Length-1 && n <= len(rest) && strings.EqualFold(rest[:n], p.User) && nameEnds(text, i+1+n) {
				best = db.Mention{UserID: p.UserID, User: p.User, Start: i, Length: n + 1}
			}
		}
		if best.Length == 0 && lookalikes > 0 && len(rest) > 0 {
			lookalikes--
			best = lookalikeMention(text, i, people)
		}
		if mayAll && best.Length == 0 {
			for _, w := range everyone {
				if len(rest) >= len(w) && strings.EqualFold(rest[:len(w)], w) && nameEnds(text, i+1+len(w)) {
					best = db.Mention{UserID: 0, User: "room", Start: i, Length: len(w) + 1}
				}
			}
		}
		if best.Length > 0 {
			out = append(out, best)
			i += best.Length - 1
		}
	}
	return out
}

// maxLookalikeTries bounds the "@"s of one message tried for look-alike
// names (each costs a NameKey per length of name in the room).
const maxLookalikeTries = 4

// lookalikeMention is the longest of people whose name, as names are
// compared (NameKey), is what follows the "@" at i of text, as many
// characters long as the name; none is Length 0.
func lookalikeMention(text string, i int, people []db.Member) db.Mention {
	rest := text[i+1:]
	type prefix struct {
		n   int    // bytes of rest's first k characters
		key string // their NameKey; "" when they are no name at all
	}
	prefixes := map[int]prefix{} // by k
	best := db.Mention{Length: 0}
	for _, p := range people {
		k := utf8.RuneCountInString(p.User)
		if p.NameKey == "" || k == 0 {
			continue
		}
		pre, ok := prefixes[k]
		if !ok {
			pre.n = byteLen(rest, k)
			if pre.n > 0 && nameEnds(text, i+1+pre.n) {
				pre.key, _ = NameKey(rest[:pre.n])
			}
			prefixes[k] = pre
		}
		if pre.key != "" && pre.key == p.NameKey && pre.n+1 > best.Length {
			best = db.Mention{UserID: p.UserID, User: p.User, Start: i, Length: pre.n + 1}
		}
	}
	return best
}

// byteLen is how many bytes s's first k characters take; 0 when s has
// fewer.
func byteLen(s string, k int) int {
	n := 0
	for range k {
		if n >= len(s) {
			return 0
		}
		_, size := utf8.DecodeRuneInString(s[n:])
		n += size
	}
	return n
}

// mentionsIn finds the mentions of text, sent to room r by w: its people
// (from the store, only when the text has an "@").
func (h *Hub) mentionsIn(ctx context.Context, r db.Room, userID int64, role, text string) ([]db.Mention, error) {
	if !strings.Contains(text, "@") {
		return nil, nil
	}
	people, err := h.store.Members(ctx, r.ID)
	if err != nil {
		return nil, err
	}
	mayAll := userID != 0 && (role == db.RoleAdmin || r.Kind != db.KindDirect && r.CreatedBy == userID)
	return FindMentions(text, people, mayAll), nil
}

// mark is what placeholders are made of: characters from Unicode's private
// use area, which no markup touches and the sanitizer keeps, with a random
// part of this process's own, so that no text can hold one.
var mark = func() string {
	b := make([]byte, 8)
	rand.Read(b)
	return "\ue000" + hex.EncodeToString(b)
}()

// placeholder stands for mention i while the text is rendered.
func placeholder(i int) string { return mark + strconv.Itoa(i) + "\ue001" }

// MessageHTML is a message's text as the page shows it (RenderHTML), its
// mentions highlighted under the names their people have now.
func MessageHTML(text string, ms []db.Mention) string {
	if len(ms) == 0 || strings.Contains(text, mark) {
		return RenderHTML(text)
	}
	var b strings.Builder
	last := 0
	var used []int
	for i, m := range ms {
		if m.Start < last || m.Length < 2 || m.Start+m.Length > len(text) || text[m.Start] != '@' {
			continue // not a mention of this text: an old edit's, or a bad row
		}
		b.WriteString(text[last:m.Start])
		b.WriteString(placeholder(i))
		last = m.Start + m.Length
		used = append(used, i)
	}
	b.WriteString(text[last:])
	out := RenderHTML(b.String())
	for _, i := range used {
		m := ms[i]
		name := "@" + m.User
		if m.UserID == 0 {
			name = text[m.Start : m.Start+m.Length] // @room or @everyone, as written
		}
		span := `<span class="mention" data-user-id="` + strconv.FormatInt(m.UserID, 10) + `">` + html.EscapeString(name) + `</span>`
		if strings.Count(out, placeholder(i)) != 1 {
			continue // cut by the markup, or doubled: left as it is
		}
		out = strings.Replace(out, placeholder(i), span, 1)
	}
	return out
}
