package views

import "testing"

// The same names and initials as app.js's initials gives: the page
// rendered by the server and the one app.js changes must agree.
func TestInitials(t *testing.T) {
	for _, c := range []struct{ name, want string }{
		{"Ann", "A"},
		{"ann lee", "AL"},
		{"  bob   the builder x", "BT"},
		{"élan vital", "ÉV"},
		{"e\u0301mile", "E\u0301"}, // the mark stays with its letter
		{"Zoë Ångström", "ZÅ"},
		{"李 小龙", "李小"},
		{"_x_ 2pac", "X2"},
		{"👍🏽 ok", "O"},
		{"❤️", "❤️"}, // no letter: the first character, with its selector
		{"@@", "@"},
		{"ß", "ß"},
		{"", ""},
	} {
		if got := Initials(c.name); got != c.want {
			t.Errorf("Initials(%q) = %q, want %q", c.name, got, c.want)
		}
	}
}
