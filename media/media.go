// Package media turns an uploaded file into what NoChat stores and
// serves: a picture decoded and re-encoded in pure Go (which drops its
// metadata: EXIF, GPS, comments), turned upright and given a thumbnail;
// any other file as it came, with the type its content sniffs as.
package media

import (
	"bytes"
	"errors"
	"fmt"
	"image"
	"image/gif"
	"image/jpeg"
	"image/png"
	"net/http"
	"strings"

	"golang.org/x/image/draw"
	"golang.org/x/image/webp"
)

// Limits bound the pictures Process accepts and makes.
type Limits struct {
	// MaxPixels is the most pixels (width × height) a picture may have,
	// checked from its header before it is decoded: a small file that
	// claims a huge picture (a decompression bomb) never gets the memory
	// it asks for. Decoding takes about 1.5 bytes a pixel for a JPEG
	// photo, 4 for a PNG. 0: DefaultMaxPixels.
	MaxPixels int
	// MaxSide is the most pixels a picture may have across or down.
	// 0: DefaultMaxSide.
	MaxSide int
	// Thumb is the box a thumbnail fits in, in pixels. 0: DefaultThumb.
	Thumb int
}

// Defaults for Limits: 40 megapixels is more than a phone's camera makes
// (12 to 50), and 10,000 pixels a side more than a panorama's height.
const (
	DefaultMaxPixels = 40_000_000
	DefaultMaxSide   = 10_000
	DefaultThumb     = 480
)

func (l Limits) withDefaults() Limits {
	if l.MaxPixels <= 0 {
		l.MaxPixels = DefaultMaxPixels
	}
	if l.MaxSide <= 0 {
		l.MaxSide = DefaultMaxSide
	}
	if l.Thumb <= 0 {
		l.Thumb = DefaultThumb
	}
	return l
}

// Refusals. Each says what was wrong with the file, for its sender.
var (
	// ErrLyingType: the file says it is a picture and its content is not.
	ErrLyingType = errors.New("the file's content is not the picture its type says")
	// ErrTooManyPixels: the picture's header claims more pixels than
	// Limits allow.
	ErrTooManyPixels = errors.New("the picture is too large")
	// ErrBadPicture: the file looks like a picture and does not decode.
	ErrBadPicture = errors.New("the picture could not be read")
)

// File is an upload made ready to store. A picture's Type is image/jpeg or
// image/png, with Width and Height (upright) and a Thumb of the same type;
// another file's Type is what its content sniffs as (never one a browser
// would run: HTML, XML and scripts are application/octet-stream), Thumb
// nil.
type File struct {
	Type          string
	Width, Height int
	Data          []byte
	Thumb         []byte
}

// Image reports whether f is a picture.
func (f File) Image() bool { return f.Thumb != nil }

// pictures are the types Process decodes, by their sniffed type.
var pictures = map[string]bool{"image/jpeg": true, "image/png": true, "image/gif": true, "image/webp": true}

// Process makes data, uploaded as declared (its Content-Type, perhaps
// empty), ready to store. The content decides what it is: a file whose
// content sniffs as a JPEG, PNG, GIF or WebP picture is a picture whatever
// it says; one that says it is one of those and is not is refused
// (ErrLyingType). A picture's header is read first and one over the
// limits refused (ErrTooManyPixels) before anything is decoded; it is then
// decoded once (a GIF's first frame only: an animation is not kept) and
// re-encoded: a JPEG or an opaque WebP as a JPEG, anything with
// transparency (PNG, GIF, WebP) as a PNG, which keeps it. Re-encoding
// keeps the pixels only, so no metadata reaches the room; a JPEG's EXIF
// orientation is applied first, since dropping it would turn the picture
// on its side.
//
// Process does not keep data: once the picture is decoded, the caller's
// reference is the only one.
func Process(data []byte, declared string, l Limits) (File, error) {
	l = l.withDefaults()
	sniffed := http.DetectContentType(data)
	if !pictures[sniffed] {
		if pictures[mediaType(declared)] {
			return File{}, fmt.Errorf("%w: it says %s, and its content is %s", ErrLyingType, mediaType(declared), mediaType(sniffed))
		}
		return File{Type: servedType(sniffed), Data: data}, nil
	}
	cfg, err := decodeConfig(sniffed, data)
	if err != nil {
		return File{}, fmt.Errorf("%w: %v", ErrBadPicture, err)
	}
	if cfg.Width <= 0 || cfg.Height <= 0 {
		return File{}, fmt.Errorf("%w: it has no pixels", ErrBadPicture)
	}
	if cfg.Width > l.MaxSide || cfg.Height > l.MaxSide || int64(cfg.Width)*int64(cfg.Height) > int64(l.MaxPixels) {
		return File{}, fmt.Errorf("%w: %d×%d pixels; the most is %d megapixels and %d pixels a side", ErrTooManyPixels, cfg.Width, cfg.Height, l.MaxPixels/1_000_000, l.MaxSide)
	}
	orientation := 1
	if sniffed == "image/jpeg" {
		orientation = exifOrientation(data)
	}
	img, err := decode(sniffed, data)
	if err != nil {
		return File{}, fmt.Errorf("%w: %v", ErrBadPicture, err)
	}
	data = nil // decoded: the raw bytes are the caller's alone now
	img = orient(img, orientation)

	f := File{Type: "image/png", Width: img.Bounds().Dx(), Height: img.Bounds().Dy()}
	if sniffed == "image/jpeg" || sniffed == "image/webp" && opaque(img) {
		f.Type = "image/jpeg"
	}
	if f.Data, err = encode(f.Type, img); err != nil {
		return File{}, err
	}
	if f.Width <= l.Thumb && f.Height <= l.Thumb {
		f.Thumb = f.Data // small already: its own thumbnail
		return f, nil
	}
	if f.Thumb, err = encode(f.Type, thumbnail(img, l.Thumb)); err != nil {
		return File{}, err
	}
	return f, nil
}

// mediaType is a Content-Type without its parameters, lower case.
func mediaType(ct string) string {
	t, _, _ := strings.Cut(ct, ";")
	return strings.ToLower(strings.TrimSpace(t))
}

// servedType is the type a file that is not a picture is served with: its
// sniffed type, unless a browser could run it as a page (HTML, XML, SVG,
// scripts), which is served as application/octet-stream.
func servedType(sniffed string) string {
	t := mediaType(sniffed)
	for _, bad := range []string{"html", "xml", "svg", "script"} {
		if strings.Contains(t, bad) {
			return "application/octet-stream"
		}
	}
	return sniffed
}

func decodeConfig(typ string, data []byte) (image.Config, error) {
	r := bytes.NewReader(data)
	switch typ {
	case "image/jpeg":
		return jpeg.DecodeConfig(r)
	case "image/png":
		return png.DecodeConfig(r)
	case "image/gif":
		return gif.DecodeConfig(r)
	default:
		return webp.DecodeConfig(r)
	}
}

func decode(typ string, data []byte) (image.Image, error) {
	r := bytes.NewReader(data)
	switch typ {
	case "image/jpeg":
		return jpeg.Decode(r)
	case "image/png":
		return png.Decode(r)
	case "image/gif":
		return gif.Decode(r) // the first frame
	default:
		return webp.Decode(r)
	}
}

// jpegQuality is a phone photo's usual quality: no visible loss, about a
// third of the bytes of 95.
const jpegQuality = 85

func encode(typ string, img image.Image) ([]byte, error) {
	var b bytes.Buffer
	var err error
	if typ == "image/jpeg" {
		err = jpeg.Encode(&b, img, &jpeg.Options{Quality: jpegQuality})
	} else {
		err = (&png.Encoder{CompressionLevel: png.BestSpeed}).Encode(&b, img)
	}
	if err != nil {
		return nil, fmt.Errorf("encode %s: %w", typ, err)
	}
	return b.Bytes(), nil
}

func opaque(img image.Image) bool {
	o, ok := img.(interface{ Opaque() bool })
	return ok && o.Opaque()
}

// thumbnail is img scaled to fit in a side×side box, with Catmull-Rom.
// x/image/draw's kernel scalers keep a buffer of 32 bytes per source row
// per destination column (46 MB for a 12-megapixel photo into 480 wide),
// so a large picture is first averaged down, in boxes of whole pixels, to
// less than twice the thumbnail's size (a box average is a good filter
// for that; Catmull-Rom then makes the last step, under 2×, sharp).
func thumbnail(img image.Image, side int) image.Image {
	b := img.Bounds()
	w, h := b.Dx(), b.Dy()
	tw, th := side, side
	if w > h {
		th = max(1, h*side/w)
	} else {
		tw = max(1, w*side/h)
	}
	if k := min(w/tw, h/th); k >= 2 {
		img = shrink(img, k)
	}
	dst := image.NewRGBA(image.Rect(0, 0, tw, th))
	draw.CatmullRom.Scale(dst, dst.Bounds(), img, img.Bounds(), draw.Src, nil)
	return dst
}
