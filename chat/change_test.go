package chat

import "testing"

// A reaction is one emoji, however it is built; never text.
func TestValidEmoji(t *testing.T) {
	for s, want := range map[string]bool{
		"👍":                  true,
		"❤️":                 true, // with a variation selector
		"👍🏽":                 true, // a skin tone
		"👩‍👩‍👧":              true, // joined into one
		"🇳🇱":                 true, // a flag: two regional indicators
		"1️⃣":                true, // a keycap
		"🏴󠁧󠁢󠁳󠁣󠁴󠁿":            true, // a subdivision flag, with tags
		"":                   false,
		"a":                  false,
		"lol":                false,
		"1":                  false,
		" 👍":                 false,
		"👍 ":                 false,
		"👍👍":                 false, // two: a message, not a reaction
		"🇳🇱🇳🇱":               false,
		"<b>":                false,
		"👍\n":                false,
		"\u200d":             false,
		"\ufe0f":             false,
		"👍\u202e":            false, // a direction override
		"☺":                  true,
		"→":                  false, // an arrow is a math symbol, not an emoji
		string(rune(0xFFFD)): false,
	} {
		if got := ValidEmoji(s); got != want {
			t.Errorf("ValidEmoji(%q) = %v, want %v", s, got, want)
		}
	}
}
