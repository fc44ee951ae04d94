package chat

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"unicode"
	"unicode/utf8"

	"go.mau.fi/util/confusable"
	"golang.org/x/text/cases"
	"golang.org/x/text/secure/precis"
	"golang.org/x/text/unicode/norm"
)

// NameKey is the comparison key of a display name that cleanName has
// already cleaned: two names with the same key mean one person, however they
// are spelt. "Ann", "ann", "Аnn" (Cyrillic А), "Ａｎｎ" (full width) and
// "Zoë" composed or decomposed compare equal to their plain spellings. The
// key is for comparing and indexing only, never for display (it mixes
// scripts and may hold capitals: see below).
//
// It refuses, with a bad_name *Refusal, names that hold invisible or bidi
// control characters (see invisibleInName; the message names the character
// as U+XXXX) and names the PRECIS Nickname profile refuses (unassigned code
// points, control characters, empty names). For a name refused only for
// invisible characters it still returns the key of the name without them,
// so "A\u200Bnn" keys as "Ann" does: a caller holding such a name from
// before the refusal (an old message) can still tell whose it is.
//
// The key is built in four steps:
//
//  0. A capital that looks like a different Latin capital is read as that
//     capital (see capitalLookalikes): Cyrillic "Вob", "НАNNА", "Мах" and
//     Greek "Βob", "Ηanna", "Νick" are "Bob", "HANNA", "Max", "Bob",
//     "Hanna", "Nick". Step 1 lower-cases, and the small letters of these
//     capitals look like small capitals or other letters (в is ʙ, н is ʜ,
//     ν is v), so without this step a capital drawn exactly as B or H
//     escaped the skeleton. Latin I, whose prototype is small l, is left
//     alone: "Ivan" is "ivan", not "lvan".
//  1. precis.Nickname (RFC 8266) in its comparison form: NFKC (so full-width
//     and compatibility letters are plain letters), non-ASCII spaces mapped,
//     runs of spaces collapsed, trimmed, lower-cased. Nickname rather than
//     UsernameCaseMapped because display names have spaces, punctuation and
//     emoji, all of which the username profiles refuse.
//  2. Full Unicode case folding (cases.Fold): Nickname lower-cases in
//     context, so "ΟΣ" lower-cases to "ος" but "οσ" stays "οσ"; folding
//     makes ς σ and ß ss, so spellings that differ only in case agree.
//  3. The UTS #39 confusables skeleton (go.mau.fi/util/confusable, generated
//     from Unicode 17.0's confusables.txt and kept current by the mautrix
//     project; github.com/mtibben/confusables, the other Go one, stopped at
//     Unicode 13.0 in 2021): NFD, each character mapped to its prototype,
//     NFD again, so Cyrillic "а" and Latin "a" are one letter. Then each
//     non-ASCII prototype of a step-0 capital's small letter (ʙ, ʜ, ʍ, ᴛ,
//     ĸ, ...) becomes the small Latin letter the capital looks like, so
//     "вob" keys as "Вob" does and case still does not matter.
//
// Where a small letter looks like another Latin letter than its capital
// does, one of the two has to give: Latin I and i (like l and i) keep case
// from mattering, at the cost of "Ivan" and "lvan" being two names; Greek Η,
// Ν and Υ (η, ν, υ look like n, v, u) catch "Ηanna", "Νick" and "Υves", at
// the cost of "ΑΝΝΑ" and "Αννα" being two names. The first would be met by
// every Latin name with an I; the second only by Greek names written with
// different capitals, which also look different.
//
// Steps 0–3 are repeated until the key no longer changes (at most
// maxKeyRounds times), which makes a key a name with itself as key. That
// matters because the skeleton maps some characters to capitals: UTS #39
// maps digit 0 to capital O and digit 1 to l, so one round turns "b0b" into
// "bOb", and the next folds that to "bob". Hence "b0b", "B0B" and "BOB" are
// all "bob": a 0 for an O is exactly the look-alike spelling the key is
// meant to catch. Likewise "m" and "rn", and "1van" and "lvan", are one name.
//
// A key depends on this rule and on the Unicode tables of x/text and of the
// confusables package: a store that keeps keys must recompute them from the
// names when either changes, rather than trust old ones (the server does at
// every start: db's RekeyAccounts).
func NameKey(name string) (string, error) {
	if len(name) > maxKeyInput {
		// No name is this long (cleanName allows MaxNameLen characters);
		// refused before the rounds, whose cost grows with the input.
		return "", &Refusal{"bad_name", "name is too long"}
	}
	var refusal error
	if r, i := invisibleInName(name); i >= 0 {
		refusal = errInvisibleInName(r)
	}
	// Dropped whether refused or not: the presentation selectors allowed
	// after symbols are ignorable to PRECIS, which would refuse them.
	name = strings.Map(func(r rune) rune {
		if unicode.Is(invisible, r) {
			return -1
		}
		return r
	}, name)
	key, err := nameKeyRound(name)
	if err != nil {
		return "", &Refusal{"bad_name", "name " + err.Error()}
	}
	for range maxKeyRounds {
		next, err := nameKeyRound(key)
		if err != nil || next == key {
			// A skeleton PRECIS refuses cannot be taken further; it is
			// still the same key for every spelling that reached it.
			break
		}
		key = next
	}
	return key, refusal
}

// maxKeyRounds bounds the repetition in NameKey. Each round can only map
// look-alikes to prototypes and capitals to small letters, so keys settle
// in two or three rounds; the bound is there so a bad table cannot loop.
const maxKeyRounds = 8

// maxKeyInput is the longest input NameKey reads, in bytes: far above
// any name a person may have (32 characters of up to 4 bytes, plus the
// combining marks and selectors a spelling may carry).
const maxKeyInput = 1024

// nameKeyRound is one round of NameKey's steps 0–3. Its error says why in
// words that follow "name ".
func nameKeyRound(name string) (string, error) {
	look := lookalikes()
	k, err := precis.Nickname.CompareKey(look.readCapitals(name))
	if err != nil {
		return "", nameRefusedByPRECIS(name)
	}
	return look.readSmall(confusable.Skeleton(cases.Fold().String(k))), nil
}

// capitalLookalikes holds NameKey's step 0 and the end of its step 3,
// built once from the confusables table.
type capitalLookalikes struct {
	// capital maps a capital (one that NFD and NFKC leave whole) to the
	// Latin capital A–Z it is drawn as, when that is another letter:
	// Cyrillic В to B, Greek Η to H, Cherokee Ꮋ to H. Latin I (prototype small l)
	// and capitals whose prototype is not A–Z (Greek Σ, whose prototype is
	// the esh Ʃ) are not in it.
	capital map[rune]rune
	// small maps the prototype of such a capital's small letter to the
	// small Latin letter of the capital, when that prototype is not ASCII:
	// ʙ (of в) to b, ĸ (of к and κ) to k. An ASCII prototype is a letter
	// of its own and stays (ν's v is not made n).
	small map[rune]rune
}

// lookalikes builds the tables on first use, walking Unicode's Lu ranges
// (about 1,900 capitals; 97 go in capital, 30 prototypes in small).
var lookalikes = sync.OnceValue(func() *capitalLookalikes {
	look := &capitalLookalikes{capital: map[rune]rune{}, small: map[rune]rune{}}
	fold := cases.Fold()
	clash := map[rune]bool{}
	for _, rr := range unicode.Lu.R16 {
		for r := rune(rr.Lo); r <= rune(rr.Hi); r += rune(rr.Stride) {
			look.add(r, fold, clash)
		}
	}
	for _, rr := range unicode.Lu.R32 {
		for r := rune(rr.Lo); r <= rune(rr.Hi); r += rune(rr.Stride) {
			look.add(r, fold, clash)
		}
	}
	for p := range clash {
		delete(look.small, p)
	}
	return look
})

// add enters capital r in the tables if its prototype is another Latin
// capital. A small-letter prototype two capitals would send to different
// letters goes in clash, to be left out.
func (look *capitalLookalikes) add(r rune, fold cases.Caser, clash map[rune]bool) {
	if !norm.NFD.IsNormalString(string(r)) || !norm.NFKC.IsNormalString(string(r)) {
		// Composed (Ё): NFD gives its letter (Е), which is entered.
		// Compatibility (Ｂ, 𝐁, ℍ): PRECIS's NFKC makes it a Latin letter.
		return
	}
	to, ok := singleRune(confusable.GetReplacement(r))
	if !ok || to == r || to < 'A' || to > 'Z' {
		return
	}
	look.capital[r] = to
	p, ok := singleRune(confusable.Skeleton(fold.String(string(r))))
	letter := unicode.ToLower(to)
	if !ok || p < utf8.RuneSelf || p == letter {
		return
	}
	if had, ok := look.small[p]; ok && had != letter {
		clash[p] = true
	}
	look.small[p] = letter
}

// readCapitals is step 0: name with each look-alike capital replaced by
// the Latin capital. An ASCII name has none, and is returned as it is.
// NFKD first, so that a capital hidden in a compatibility character (ϓ is
// ϒ with an acute, and ϒ is Υ) is read as the one its NFKC form shows:
// PRECIS's NFKC comes next and would otherwise bring it back unread.
func (look *capitalLookalikes) readCapitals(name string) string {
	for i := 0; i < len(name); i++ {
		if name[i] >= utf8.RuneSelf {
			return strings.Map(look.mapCapital, norm.NFKD.String(name))
		}
	}
	return name
}

func (look *capitalLookalikes) mapCapital(r rune) rune {
	if to, ok := look.capital[r]; ok {
		return to
	}
	return r
}

// readSmall is the end of step 3: a skeleton with the prototypes in small
// replaced by their Latin letters.
func (look *capitalLookalikes) readSmall(skeleton string) string {
	return strings.Map(func(r rune) rune {
		if to, ok := look.small[r]; ok {
			return to
		}
		return r
	}, skeleton)
}

// singleRune returns the one rune s holds, if it holds exactly one.
func singleRune(s string) (rune, bool) {
	r, n := utf8.DecodeRuneInString(s)
	return r, s != "" && n == len(s) && r != utf8.RuneError
}

// nameRefusedByPRECIS says why PRECIS refused a name: which character, when
// one is to blame, found by checking each on its own.
func nameRefusedByPRECIS(name string) error {
	if strings.TrimSpace(name) == "" {
		return errors.New("is empty")
	}
	for _, r := range name {
		if r == ' ' {
			continue
		}
		if _, err := precis.Nickname.String(string(r)); err != nil && !unicode.Is(unicode.Mn, r) && !unicode.Is(unicode.Me, r) {
			return fmt.Errorf("may not contain %U: it is unassigned, a control or not allowed in names", r)
		}
	}
	return errors.New("is not allowed: it has characters that cannot be compared safely")
}

// invisible is the set of characters refused in names because they cannot
// be seen or turn the text around it: Unicode's Default_Ignorable_Code_Point
// (DerivedCoreProperties.txt, Unicode 16), which holds the zero-width
// characters, the bidi controls (U+061C, U+200E–U+200F, U+202A–U+202E,
// U+2066–U+2069), the soft hyphen, the Hangul fillers, variation selectors
// and tag characters; and the braille blank. With them one name can be written in many ways that
// look the same ("A\u200Bnn"), or be drawn backwards ("\u202Enna").
var invisible = &unicode.RangeTable{
	R16: []unicode.Range16{
		{0x00AD, 0x00AD, 1}, // soft hyphen
		{0x034F, 0x034F, 1}, // combining grapheme joiner
		{0x061C, 0x061C, 1}, // Arabic letter mark
		{0x115F, 0x1160, 1}, // Hangul choseong and jungseong fillers
		{0x17B4, 0x17B5, 1}, // Khmer inherent vowels
		{0x180B, 0x180F, 1}, // Mongolian variation selectors and vowel separator
		{0x200B, 0x200F, 1}, // zero width space, (non-)joiner, LRM, RLM
		{0x202A, 0x202E, 1}, // bidi embeddings and overrides
		{0x2060, 0x206F, 1}, // word joiner, invisible operators, bidi isolates, deprecated format controls
		{0x2800, 0x2800, 1}, // braille pattern blank: not ignorable, but a blank the width of a letter
		{0x3164, 0x3164, 1}, // Hangul filler
		{0xFE00, 0xFE0F, 1}, // variation selectors (see invisibleInName for emoji)
		{0xFEFF, 0xFEFF, 1}, // zero width no-break space (BOM)
		{0xFFA0, 0xFFA0, 1}, // half-width Hangul filler
		{0xFFF0, 0xFFF8, 1}, // unassigned, reserved as ignorable
	},
	R32: []unicode.Range32{
		{0x1BCA0, 0x1BCA3, 1}, // shorthand format controls
		{0x1D173, 0x1D17A, 1}, // musical symbol format controls
		{0xE0000, 0xE0FFF, 1}, // tags and variation selectors supplement
	},
}

// invisibleInName returns the first character of name that invisible holds
// and its byte offset, or -1. U+FE0E and U+FE0F (text and emoji
// presentation) right after a symbol are let through: phones put them after
// many emoji ("❤️"), where they choose how the symbol is drawn and hide
// nothing. NameKey drops them, so "❤️" and "❤" are one name.
func invisibleInName(name string) (rune, int) {
	prev := rune(-1)
	for i, r := range name {
		if unicode.Is(invisible, r) && !(isPresentationSelector(r) && prev >= 0 && unicode.IsSymbol(prev)) {
			return r, i
		}
		prev = r
	}
	return 0, -1
}

func isPresentationSelector(r rune) bool { return r == 0xFE0E || r == 0xFE0F }

// errInvisibleInName refuses a name for an invisible or bidi character,
// naming it so the person can find it.
func errInvisibleInName(r rune) *Refusal {
	what := "an invisible character"
	switch {
	case r == 0x061C || r == 0x200E || r == 0x200F || (r >= 0x202A && r <= 0x202E) || (r >= 0x2066 && r <= 0x2069):
		what = "a bidi control, which turns text around"
	case r == 0x200B || r == 0x200C || r == 0x200D || r == 0x2060 || r == 0xFEFF:
		what = "a zero-width character"
	case r >= 0xE0000:
		what = "an invisible tag or variation selector"
	case r >= 0xFE00 && r <= 0xFE0F:
		what = "a variation selector not after a symbol"
	}
	return &Refusal{"bad_name", fmt.Sprintf("name may not contain %U (%s): names are compared as people see them", r, what)}
}
