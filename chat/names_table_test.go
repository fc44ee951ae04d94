package chat

import (
	"testing"
	"unicode"
	"unicode/utf8"
)

// The hand-written table of invisible characters holds at least what Go's
// own Unicode tables call ignorable: the Other_Default_Ignorable_Code_Point
// property, the variation selectors and the format characters (Cf) other
// than the few that are drawn (Arabic number signs and the like, which
// Default_Ignorable_Code_Point leaves out too).
func TestInvisibleHoldsTheDefaultIgnorables(t *testing.T) {
	drawn := map[rune]bool{0x0600: true, 0x0601: true, 0x0602: true, 0x0603: true, 0x0604: true, 0x0605: true,
		0x06DD: true, 0x070F: true, 0x0890: true, 0x0891: true, 0x08E2: true, 0x110BD: true, 0x110CD: true,
		0xFFF9: true, 0xFFFA: true, 0xFFFB: true}
	for _, table := range []*unicode.RangeTable{unicode.Other_Default_Ignorable_Code_Point, unicode.Variation_Selector, unicode.Cf} {
		for r := rune(0); r <= unicode.MaxRune; r++ {
			if !unicode.Is(table, r) || drawn[r] || unicode.IsSpace(r) {
				continue
			}
			if r >= 0x13430 && r <= 0x1345F { // Egyptian hieroglyph format controls shape what is drawn
				continue
			}
			if !unicode.Is(invisible, r) {
				t.Errorf("%U is ignorable but not refused in names", r)
			}
		}
	}
}

// The look-alike tables read only non-Latin capitals as Latin ones, and
// never make one ASCII letter another: Latin I stays i, Greek ν's v stays v.
func TestLookalikeTablesLeaveLatinLettersAlone(t *testing.T) {
	look := lookalikes()
	for from, to := range look.capital {
		if from < utf8.RuneSelf || to < 'A' || to > 'Z' {
			t.Errorf("capital %U (%c) -> %U (%c), want a non-ASCII capital read as A–Z", from, from, to, to)
		}
	}
	for from, to := range look.small {
		if from < utf8.RuneSelf || to < 'a' || to > 'z' {
			t.Errorf("small %U (%c) -> %U (%c), want a non-ASCII prototype read as a–z", from, from, to, to)
		}
	}
	if got, want := look.capital['\u0412'], 'B'; got != want {
		t.Errorf("Cyrillic В reads as %q, want %q", got, want)
	}
}
