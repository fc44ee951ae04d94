package views

import (
	"strconv"

	"nochat/db"
)

// A message's file shows as app.js shows it (fileBlock): a picture as its
// thumbnail, sized before it loads so nothing below it moves, linking to
// the full size; another file as a download with its name and size.

// ShownBox is the box, in CSS pixels, a picture's thumbnail is shown in
// (its thumbnail has 1.5 times as many pixels, for sharp screens).
const ShownBox = 320

// ShownSize is the size a w×h picture is shown at: fitted in ShownBox,
// never enlarged (app.js: shownSize).
func ShownSize(w, h int) (int, int) {
	if w <= ShownBox && h <= ShownBox {
		return max(1, w), max(1, h)
	}
	if w >= h {
		return ShownBox, max(1, h*ShownBox/w)
	}
	return max(1, w*ShownBox/h), ShownBox
}

// HumanSize is a file's size as the page shows it: 812 B, 2.4 kB, 340 kB,
// 9.8 MB, cut (not rounded) to a tenth below 10 (app.js: humanSize).
func HumanSize(n int64) string {
	if n < 1000 {
		return strconv.FormatInt(n, 10) + " B"
	}
	unit, name := int64(1000), "kB"
	switch {
	case n >= 1_000_000_000:
		unit, name = 1_000_000_000, "GB"
	case n >= 1_000_000:
		unit, name = 1_000_000, "MB"
	}
	if tenths := n * 10 / unit; tenths < 100 {
		return strconv.FormatInt(tenths/10, 10) + "." + strconv.FormatInt(tenths%10, 10) + " " + name
	}
	return strconv.FormatInt(n/unit, 10) + " " + name
}

// msgClass is a message's classes: focus for a permalink's message, bare
// for a file sent without text (app.js: fillMessage).
func msgClass(m db.Message, focus bool) string {
	c := "msg"
	if focus {
		c += " focus"
	}
	if m.File != nil && m.Message == "" {
		c += " bare"
	}
	return c
}

func shownW(f *db.File) string { w, _ := ShownSize(f.Width, f.Height); return strconv.Itoa(w) }
func shownH(f *db.File) string { _, h := ShownSize(f.Width, f.Height); return strconv.Itoa(h) }
