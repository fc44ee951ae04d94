package chat

import (
	"strings"
	"unicode"
)

// maxAvatarBytes bounds an avatar: the longest emoji sequences (a family
// of four joined by zero-width joiners, a flag of a region) fit.
const maxAvatarBytes = 32

// errAvatar refuses an avatar that is not one emoji.
var errAvatar = &Refusal{"bad_request", "avatar: give one emoji, such as 🤖, or nothing for the name's initials"}

// CleanAvatar checks an account's avatar: one emoji (a sequence joined
// by zero-width joiners, with its skin tone, variation selector or keycap,
// or a flag, counts as one), shown in its circle in place of the initials;
// "" for none. It returns it without the spaces around it.
func CleanAvatar(s string) (string, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return "", nil
	}
	if len(s) > maxAvatarBytes {
		return "", errAvatar
	}
	bases, symbol := 0, false
	joined, flag := false, false // after a zero-width joiner; half a flag
	for _, r := range s {
		switch {
		case r == '\u200d': // zero-width joiner: the next one is part of this one
			joined = true
			continue
		case r == '\u20e3': // a keycap makes the digit or sign before it one
			symbol = true
			continue
		case r == '\ufe0e' || r == '\ufe0f', // variation selectors
			r >= 0x1f3fb && r <= 0x1f3ff, // skin tones
			r >= 0xe0020 && r <= 0xe007f: // tags (the flags of England, Scotland, Wales)
			continue
		case r >= 0x1f1e6 && r <= 0x1f1ff: // regional indicators: two make a flag
			symbol = true
			if flag {
				flag = false
				continue
			}
			flag = true
		case unicode.IsLetter(r) || unicode.IsSpace(r) || unicode.IsControl(r) || unicode.In(r, unicode.Mn, unicode.Me, unicode.Mc):
			return "", errAvatar
		case unicode.Is(unicode.So, r):
			symbol = true
		case !unicode.IsNumber(r) && !strings.ContainsRune("#*", r):
			return "", errAvatar // punctuation and the like: not a picture
		}
		if !joined {
			bases++
		}
		joined = false
	}
	if bases != 1 || !symbol || joined || flag {
		return "", errAvatar
	}
	return s, nil
}
