package static

import (
	"bytes"
	"image"
	"image/color"
	"image/png"
	"math"
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
// antialiased by sampling each pixel 4×4 times. A plain icon is the bubble
// on transparency, as favicon.svg is; a maskable one is white on the blue,
// scaled into the middle 60% so no launcher's mask cuts into it.
func drawIcon(size int, maskable bool) *image.NRGBA {
	img := image.NewNRGBA(image.Rect(0, 0, size, size))
	// From pixels to favicon.svg's 32×32 units.
	scale, offX, offY := 32/float64(size), 0.0, 0.0
	if maskable {
		scale = 32 / (0.6 * float64(size))
		offX, offY = -16*(1/0.6-1), -16.6*(1/0.6-1)
	}
	const n = 4
	for py := range size {
		for px := range size {
			var body, dot float64
			for sy := range n {
				for sx := range n {
					x := (float64(px)+(float64(sx)+0.5)/n)*scale + offX
					y := (float64(py)+(float64(sy)+0.5)/n)*scale + offY
					switch {
					case inDot(x, y):
						dot++
					case inBubble(x, y):
						body++
					}
				}
			}
			body, dot = body/(n*n), dot/(n*n)
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

// mix is a blended toward b by t (0..1).
func mix(a, b color.NRGBA, t float64) color.NRGBA {
	m := func(x, y uint8) uint8 { return uint8(math.Round(float64(x) + (float64(y)-float64(x))*t)) }
	return color.NRGBA{m(a.R, b.R), m(a.G, b.G), m(a.B, b.B), 0xff}
}

// inBubble is favicon.svg's path: a rectangle from (1,3) to (31,25) with
// corners of radius 5, and a tail down to (8,30.2).
func inBubble(x, y float64) bool {
	const r = 5.0
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

// inDot is one of the three dots of radius 2.2 at y 14.
func inDot(x, y float64) bool {
	for _, cx := range []float64{10, 16, 22} {
		if (x-cx)*(x-cx)+(y-14)*(y-14) <= 2.2*2.2 {
			return true
		}
	}
	return false
}
