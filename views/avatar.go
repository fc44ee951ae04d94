package views

import (
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"nochat/chat"
	"nochat/db"
)

// A person's avatar is a circle of their initials in their colour: for a
// member the colour comes from the account's id, so it stays through a
// rename; for a guest, who has nothing else, from the name, and the circle
// is drawn hollow and dashed, a guest's mark. The initials are drawn by
// CSS from data-initials (the circle is aria-hidden: the name beside it
// says who it is), and app.js computes them and the colour the same way
// (initials, colorFor).

// Initials are what a person's avatar shows: the first letter (or digit)
// of each of the first two words of their name, capitalised, with the
// marks that belong to it ("élan vital" is ÉV, "Zoë" Z); for a name with
// no letter at all (an emoji), its first character.
func Initials(name string) string {
	var b strings.Builder
	n := 0
	for _, word := range strings.Fields(name) {
		if i := strings.IndexFunc(word, func(r rune) bool { return unicode.IsLetter(r) || unicode.IsNumber(r) }); i >= 0 {
			r, size := utf8.DecodeRuneInString(word[i:])
			b.WriteRune(unicode.ToUpper(r))
			b.WriteString(leadingMarks(word[i+size:]))
			if n++; n == 2 {
				break
			}
		}
	}
	if n == 0 {
		name = strings.TrimSpace(name)
		if r, size := utf8.DecodeRuneInString(name); size > 0 {
			b.WriteRune(r)
			b.WriteString(leadingMarks(name[size:]))
		}
	}
	return b.String()
}

// leadingMarks is the run of combining marks, variation selectors and
// skin-tone modifiers at the start of s: what draws as part of the
// character before it.
func leadingMarks(s string) string {
	end := 0
	for i, r := range s {
		if !unicode.In(r, unicode.Mn, unicode.Me, unicode.Mc) && !(r >= 0xFE00 && r <= 0xFE0F) && !(r >= 0x1F3FB && r <= 0x1F3FF) {
			return s[:i]
		}
		end = i + utf8.RuneLen(r)
	}
	return s[:end]
}

// colorOf is the colour class of a person (see userColors): by account
// for a member, by name for a guest.
func colorOf(userID *int64, name string) string {
	if userID != nil {
		return "c" + strconv.FormatInt(*userID%userColors, 10)
	}
	return "c" + strconv.Itoa(int(nameHash(name)%userColors))
}

// avatarClass is the class list of a person's avatar.
func avatarClass(userID *int64, name string) string {
	if userID == nil {
		return "avatar guest " + colorOf(nil, name)
	}
	return "avatar " + colorOf(userID, name)
}

// userIDAttr is a message's data-user-id: the account's id, "" for a guest.
func userIDAttr(m db.Message) string {
	if m.UserID == nil {
		return ""
	}
	return strconv.FormatInt(*m.UserID, 10)
}

// personID is a connection group's account for its avatar: nil for guests.
func personID(p chat.Person) *int64 {
	if p.Guest() {
		return nil
	}
	return &p.UserID
}
