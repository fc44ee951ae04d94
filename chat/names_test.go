package chat_test

import (
	"errors"
	"strings"
	"testing"

	"nochat/chat"
)

func TestNameKeyMakesOneNameOfItsSpellings(t *testing.T) {
	same := []struct {
		name     string
		spelling []string
	}{
		{"the issue's four spellings of Ann", []string{"Ann", "ann", "\u0410nn", "ANN", "Ａｎｎ"}},
		{"composed and decomposed accents", []string{"Zoë", "Zoe\u0308", "ZOË", "zoe\u0308"}},
		{"spaces are compared collapsed", []string{"Ann Lee", "ann  lee", "Ann\u00a0Lee"}},
		{"Greek final sigma folds", []string{"ΟΣ", "ος", "οσ"}},
		{"sharp s folds to ss", []string{"Straße", "STRASSE", "strasse"}},
		{"digit zero is a capital O", []string{"bob", "b0b", "B0B", "BOB"}},
		{"digit one is an l", []string{"lvan", "1van"}},
		{"emoji with and without a presentation selector", []string{"Ann ❤\ufe0f", "ann ❤"}},
		{"CJK", []string{"李小龍", "李小龍"}},
		{"full-width ligature", []string{"ﬁona", "Fiona"}},
		{"capital I is i, not l", []string{"Ivan", "ivan", "IVAN"}},
		{"Cyrillic capital В is B", []string{"Bob", "bob", "\u0412ob", "\u0432ob", "\u0412\u041e\u0412"}},
		{"Cyrillic capitals Н and А are H and A", []string{"Hanna", "\u041d\u0410NN\u0410", "hanna"}},
		{"Cyrillic capital М is M", []string{"Max", "\u041c\u0430\u0445"}},
		{"Cyrillic capitals Т and К are T and K", []string{"Tom Kay", "\u0422om \u041aay"}},
		{"Greek capitals Β Η Κ Μ Ν Τ Υ are Latin ones", []string{"BHKMNTY", "\u0392\u0397\u039a\u039c\u039d\u03a4\u03a5", "bhkmnty"}},
		{"Greek capital Η is H", []string{"Hanna", "\u0397anna"}},
		{"Greek capital Ν is N", []string{"Nick", "\u039dick"}},
		{"Cyrillic names in any case", []string{"Вова", "ВОВА", "вова"}},
		{"Greek names in any case", []string{"Κωστας", "ΚΩΣΤΑΣ", "κωστας"}},
	}
	for _, tt := range same {
		t.Run(tt.name, func(t *testing.T) {
			want, err := chat.NameKey(tt.spelling[0])
			if err != nil || want == "" {
				t.Fatalf("NameKey(%q) = %q, %v", tt.spelling[0], want, err)
			}
			for _, s := range tt.spelling[1:] {
				if got, err := chat.NameKey(s); err != nil || got != want {
					t.Errorf("NameKey(%q) = %q, %v; want %q, the key of %q", s, got, err, want, tt.spelling[0])
				}
			}
		})
	}

	distinct := [][2]string{
		{"Ann", "Anne"},
		{"Ann", "Ana"},
		{"Ivan", "lvan"}, // capital I folds to i before the skeleton sees it
		// Greek Ν is read as N (to catch "Νick") but ν looks like v: the
		// price of the first, spelt out in NameKey's comment.
		{"\u0391\u039d\u039d\u0391", "\u0391\u03bd\u03bd\u03b1"},
		{"Zoë", "Zoe"},
		{"李小龍", "李小龙"},
		{"Ann 🎉", "Ann 🎊"},
		{"Ann 👍", "Ann 👍🏽"},
		{"ann", "ann 1"},
	}
	for _, p := range distinct {
		t.Run(p[0]+" is not "+p[1], func(t *testing.T) {
			a, errA := chat.NameKey(p[0])
			b, errB := chat.NameKey(p[1])
			if errA != nil || errB != nil || a == b {
				t.Fatalf("NameKey(%q) = %q, %v; NameKey(%q) = %q, %v; want two keys", p[0], a, errA, p[1], b, errB)
			}
		})
	}
}

func TestNameKeyRefusesInvisibleAndBidiCharacters(t *testing.T) {
	tests := []struct {
		name, in, says string
	}{
		{"zero width space", "A\u200Bnn", "U+200B"},
		{"zero width non-joiner", "An\u200Cn", "U+200C"},
		{"zero width joiner", "An\u200Dn", "U+200D"},
		{"word joiner", "Ann\u2060", "U+2060"},
		{"byte order mark", "\uFEFFAnn", "U+FEFF"},
		{"soft hyphen", "An\u00ADn", "U+00AD"},
		{"right-to-left override", "\u202Enna", "U+202E"},
		{"left-to-right embedding", "\u202AAnn", "U+202A"},
		{"right-to-left isolate", "Ann\u2067", "U+2067"},
		{"left-to-right mark", "Ann\u200E", "U+200E"},
		{"right-to-left mark", "Ann\u200F", "U+200F"},
		{"Arabic letter mark", "Ann\u061C", "U+061C"},
		{"variation selector after a letter", "An\uFE0Fn", "U+FE0F"},
		{"variation selector 1", "Ann\uFE00", "U+FE00"},
		{"tag character", "Ann\U000E0041", "U+E0041"},
		{"Hangul filler", "Ann\u3164", "U+3164"},
		{"combining grapheme joiner", "An\u034Fn", "U+034F"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			key, err := chat.NameKey(tt.in)
			var r *chat.Refusal
			if !errors.As(err, &r) || r.Code != "bad_name" {
				t.Fatalf("NameKey(%q) = %q, %v; want a bad_name refusal", tt.in, key, err)
			}
			if !strings.Contains(r.Text, tt.says) {
				t.Errorf("refusal %q does not name %s", r.Text, tt.says)
			}
			// The key of the visible name comes back all the same, so that
			// a name stored before the refusal can still be told apart.
			// (Each name here is ASCII but for the refused character.)
			visible := strings.Map(func(r rune) rune {
				if r < 0x80 {
					return r
				}
				return -1
			}, tt.in)
			if want, _ := chat.NameKey(visible); key != want {
				t.Errorf("NameKey(%q) key = %q, want %q, the key of %q", tt.in, key, want, visible)
			}
		})
	}
	t.Run("an emoji ZWJ sequence is refused for its joiner", func(t *testing.T) {
		_, err := chat.NameKey("Ann 👩\u200D💻")
		if !isRefusal(err, "bad_name") || !strings.Contains(err.Error(), "U+200D") {
			t.Fatalf("%v, want a bad_name refusal naming U+200D", err)
		}
	})
}

func TestNameKeyRefusesWhatPRECISRefuses(t *testing.T) {
	tests := []struct {
		name, in, says string
	}{
		{"empty", "", "empty"},
		{"only spaces", "   ", "empty"},
		{"unassigned code point", "Ann\U000E0FFF", "U+E0FFF"}, // also ignorable: ours refuses it first
		{"private use", "Ann\uE000", "U+E000"},
		{"control character", "Ann\x07", "U+0007"},
		{"noncharacter", "Ann\uFFFF", "U+FFFF"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			key, err := chat.NameKey(tt.in)
			if !isRefusal(err, "bad_name") || !strings.Contains(err.Error(), tt.says) {
				t.Fatalf("NameKey(%q) = %q, %v; want a bad_name refusal saying %s", tt.in, key, err, tt.says)
			}
		})
	}
}

// A name longer than any person's is refused before the key's rounds,
// whose cost grows with the input (the fuzzer stalled on such inputs).
func TestNameKeyRefusesOverlongInput(t *testing.T) {
	if _, err := chat.NameKey(strings.Repeat("a\u0301", 1024)); err == nil || !strings.Contains(err.Error(), "too long") {
		t.Fatalf("NameKey of %d bytes: err %v, want too long", 3*1024, err)
	}
	if _, err := chat.NameKey(strings.Repeat("a", 32)); err != nil {
		t.Fatalf("NameKey of 32 letters: %v", err)
	}
}
