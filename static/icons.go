package static

import (
	"bytes"
	"image"
	"image/color"
	"image/png"
	"math"
	"sync"
)

// The app's icons are drawn here, from the same shape as favicon.svg, so
// there is one drawing of NoChat's mark and no binary image to keep in step
// with it. They are drawn once, at start-up.

// brand is the mark's blue, favicon.svg's fill.
var brand = color.NRGBA{0x47, 0x56, 0xd6, 0xff}

// iconSizes are the PNG icons the manifest lists: name -> size and whether
// it is maskable (full-bleed, its mark inside the safe circle a launcher
// may cut it to).
var iconSizes = map[string]struct {
	size     int
	maskable bool
}{
	"icon-192.png":          {192, false},
	"icon-512.png":          {512, false},
	"icon-maskable-512.png": {512, true},
}

// icons are the icons drawn and encoded, once a process: they never change,
// and every Assets shares them (read only).
var icons = sync.OnceValue(drawIcons)

// drawIcons encodes every icon as PNG.
func drawIcons() map[string][]byte {
	out := make(map[string][]byte, len(iconSizes))
	for name, s := range iconSizes {
		var b bytes.Buffer
		if err := png.Encode(&b, drawIcon(s.size, s.maskable)); err != nil {
			panic(err) // encoding an in-memory NRGBA cannot fail
		}
		out[name] = b.Bytes()
	}
	return out
}

// drawIcon draws the speech bubble with its three dots at size×size pixels,
// antialiased by sampling each pixel 4×4 times where an edge crosses it. A
// plain icon is the bubble on transparency, as favicon.svg is; a maskable
// one is white on the blue, scaled into the middle 60% so no launcher's
// mask cuts into it.
func drawIcon(size int, maskable bool) *image.NRGBA {
	img := image.NewNRGBA(image.Rect(0, 0, size, size))
	p := iconPixels(size, maskable)
	for py := range size {
		for px := range size {
			body, dot, whole := p.whole(px, py)
			if !whole {
				body, dot = p.sample(px, py)
			}
			if maskable {
				// Blue everywhere, the bubble white, its dots blue again.
				img.SetNRGBA(px, py, mix(brand, color.NRGBA{0xff, 0xff, 0xff, 0xff}, body))
				continue
			}
			// The bubble blue, its dots white, the rest transparent.
			c := mix(brand, color.NRGBA{0xff, 0xff, 0xff, 0xff}, dot/math.Max(body+dot, 1e-9))
			c.A = uint8(math.Round(255 * (body + dot)))
			img.SetNRGBA(px, py, c)
		}
	}
	return img
}

// pixels maps an icon's pixels to favicon.svg's units: pixel (px, py) is
// the square of side scale from (px·scale+offX, py·scale+offY).
type pixels struct{ scale, offX, offY float64 }

// iconPixels is the mapping for an icon of size×size pixels: the 32×32
// units fill a plain icon, and the middle 60% of a maskable one.
func iconPixels(size int, maskable bool) pixels {
	if maskable {
		return pixels{scale: 32 / (0.6 * float64(size)), offX: -16 * (1/0.6 - 1), offY: -16.6 * (1/0.6 - 1)}
	}
	return pixels{scale: 32 / float64(size)}
}

// sample is how much of pixel (px, py) the bubble's blue (body) and the
// dots cover, from 4×4 samples.
func (p pixels) sample(px, py int) (body, dot float64) {
	const n = 4
	for sy := range n {
		for sx := range n {
			x := (float64(px)+(float64(sx)+0.5)/n)*p.scale + p.offX
			y := (float64(py)+(float64(sy)+0.5)/n)*p.scale + p.offY
			switch {
			case inDot(x, y):
				dot++
			case inBubble(x, y):
				body++
			}
		}
	}
	return body / (n * n), dot / (n * n)
}

// whole is sample's answer for a pixel that lies wholly inside a dot,
// wholly inside the bubble's rounded rectangle and outside the dots, or
// wholly outside the drawing, found from the distances of the pixel's
// centre to the shapes; whole is false for a pixel an edge may cross. Most
// of an icon's pixels are whole: they take no sampling, and the icons are
// drawn at every start (174 ms of a 2-core server's start when every pixel
// was sampled, more on a Pi's slower cores).
func (p pixels) whole(px, py int) (body, dot float64, whole bool) {
	// Every point of the pixel, and so every sample, is within reach of
	// its centre; the margin keeps rounding from deciding a sample on an
	// edge. Distances are compared squared.
	x := (float64(px)+0.5)*p.scale + p.offX
	y := (float64(py)+0.5)*p.scale + p.offY
	reach := p.scale*math.Sqrt2/2 + 1e-6
	within := func(d2, r float64) bool { return r > 0 && d2 < r*r }
	for _, cx := range dotsX {
		d2 := (x-cx)*(x-cx) + (y-dotY)*(y-dotY)
		if within(d2, dotR-reach) {
			return 0, 1, true
		}
		if !(d2 > (dotR+reach)*(dotR+reach)) {
			return 0, 0, false // a dot's edge may cross it
		}
	}
	// The squared distance to the rectangle's inner box, as inBubble
	// measures it.
	dx, dy := x-math.Max(6, math.Min(26, x)), y-math.Max(8, math.Min(20, y))
	d2 := dx*dx + dy*dy
	switch {
	case within(d2, bubbleR-reach):
		return 1, 0, true
	case d2 > (bubbleR+reach)*(bubbleR+reach) && (x+reach < 8 || x-reach > 14.5 || y+reach < 25 || y-reach > 30.2):
		// Outside the rectangle and the tail's bounding box.
		return 0, 0, true
	}
	return 0, 0, false
}

// mix is a blended toward b by t (0..1).
func mix(a, b color.NRGBA, t float64) color.NRGBA {
	m := func(x, y uint8) uint8 { return uint8(math.Round(float64(x) + (float64(y)-float64(x))*t)) }
	return color.NRGBA{m(a.R, b.R), m(a.G, b.G), m(a.B, b.B), 0xff}
}

// bubbleR is the radius of the bubble's corners.
const bubbleR = 5.0

// inBubble is favicon.svg's path: a rectangle from (1,3) to (31,25) with
// corners of radius bubbleR, and a tail down to (8,30.2).
func inBubble(x, y float64) bool {
	const r = bubbleR
	if x >= 1 && x <= 31 && y >= 3 && y <= 25 {
		cx, cy := math.Max(6, math.Min(26, x)), math.Max(8, math.Min(20, y))
		return (x-cx)*(x-cx)+(y-cy)*(y-cy) <= r*r
	}
	// The tail: the triangle (8,25), (14.5,25), (8,30.2).
	if x < 8 || y < 25 || y > 30.2 {
		return false
	}
	return x <= 14.5-(y-25)*(14.5-8)/(30.2-25)
}

// The three dots: radius dotR, centres at dotsX on the line y = dotY.
const dotR, dotY = 2.2, 14.0

var dotsX = [...]float64{10, 16, 22}

// inDot is whether (x, y) is in one of the three dots.
func inDot(x, y float64) bool {
	for _, cx := range dotsX {
		if (x-cx)*(x-cx)+(y-dotY)*(y-dotY) <= dotR*dotR {
			return true
		}
	}
	return false
}
