package media

import (
	"bytes"
	"image"
	"image/jpeg"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// Each EXIF orientation turns the picture upright, sample by sample.
func TestOrient(t *testing.T) {
	src := &image.Gray{Pix: []byte{1, 2, 3, 4, 5, 6}, Stride: 3, Rect: image.Rect(0, 0, 3, 2)}
	for o, want := range map[int][]byte{
		1: {1, 2, 3, 4, 5, 6},
		2: {3, 2, 1, 6, 5, 4},
		3: {6, 5, 4, 3, 2, 1},
		4: {4, 5, 6, 1, 2, 3},
		5: {1, 4, 2, 5, 3, 6},
		6: {4, 1, 5, 2, 6, 3},
		7: {6, 3, 5, 2, 4, 1},
		8: {3, 6, 2, 5, 1, 4},
	} {
		got := orient(src, o).(*image.Gray)
		w, h := 3, 2
		if o >= 5 {
			w, h = 2, 3
		}
		if got.Rect.Dx() != w || got.Rect.Dy() != h || !slices.Equal(got.Pix, want) {
			t.Errorf("orientation %d: %v %v, want %d×%d %v", o, got.Rect, got.Pix, w, h, want)
		}
	}
	// A 4:2:2 picture on its side is 4:4:0: its chroma planes turn too.
	ycc := image.NewYCbCr(image.Rect(0, 0, 4, 2), image.YCbCrSubsampleRatio422)
	turned := orient(ycc, 6).(*image.YCbCr)
	if turned.Rect.Dx() != 2 || turned.Rect.Dy() != 4 || turned.SubsampleRatio != image.YCbCrSubsampleRatio440 {
		t.Errorf("a 4:2:2 4×2 picture turned: %v %v", turned.Rect, turned.SubsampleRatio)
	}
}

// shrink averages whole boxes; the last box takes what pixels are left.
func TestShrink(t *testing.T) {
	src := &image.Gray{Pix: []byte{0, 10, 100, 200, 50, 20, 100, 100, 7}, Stride: 3, Rect: image.Rect(0, 0, 3, 3)}
	got := shrink(src, 2).(*image.Gray)
	if want := []byte{(0 + 10 + 200 + 50) / 4, (100 + 20) / 2, (100 + 100) / 2, 7}; !slices.Equal(got.Pix, want) || got.Rect.Dx() != 2 {
		t.Fatalf("shrink = %v %v, want %v", got.Rect, got.Pix, want)
	}
}

// exifOrientation reads what a stranger uploads: whatever the bytes, it
// answers 1 to 8 and never reads out of bounds.
func FuzzExifOrientation(f *testing.F) {
	f.Add([]byte("\xff\xd8\xff\xe1\x00\x22Exif\x00\x00MM\x00\x2a\x00\x00\x00\x08\x00\x01\x01\x12\x00\x03\x00\x00\x00\x01\x00\x06\x00\x00\x00\x00\x00\x00"))
	f.Add([]byte("\xff\xd8\xff\xe1\x00\x22Exif\x00\x00II\x2a\x00\x08\x00\x00\x00\xff\xff"))
	f.Add([]byte("\xff\xd8\xff\xda"))
	f.Fuzz(func(t *testing.T, b []byte) {
		if o := exifOrientation(b); o < 1 || o > 8 {
			t.Fatalf("orientation %d", o)
		}
	})
}

// Every subsampling the JPEG decoder makes has its chroma planes sized as
// the image package lays them out; 4:1:1 and 4:1:0 were taken for 4:4:4,
// and turning or shrinking such a picture read past its planes (a panic,
// and an upload slot never given back).
func TestChromaPlanesOfEverySubsampling(t *testing.T) {
	for _, ratio := range []image.YCbCrSubsampleRatio{
		image.YCbCrSubsampleRatio444, image.YCbCrSubsampleRatio422, image.YCbCrSubsampleRatio420,
		image.YCbCrSubsampleRatio440, image.YCbCrSubsampleRatio411, image.YCbCrSubsampleRatio410,
	} {
		for _, r := range []image.Rectangle{image.Rect(0, 0, 37, 21), image.Rect(3, 1, 40, 22), image.Rect(1, 1, 3, 3)} {
			m := image.NewYCbCr(r, ratio)
			cw, ch := chromaSize(m)
			// The plane's last sample is the one under the last pixel.
			if last := m.COffset(r.Max.X-1, r.Max.Y-1) - m.COffset(r.Min.X, r.Min.Y); last != (ch-1)*m.CStride+cw-1 || len(m.Cb) != ch*m.CStride {
				t.Errorf("%v %v: chroma %d×%d, but the planes hold %d samples, the last at %d", ratio, r, cw, ch, len(m.Cb), last)
			}
			for o := 2; o <= 8; o++ {
				orient(m, o)
			}
			shrink(m, 2)
			shrink(m, 3)
		}
	}
}

// A 4:1:1 JPEG, as some cameras write (made by a copy of image/jpeg's
// encoder that samples chroma so): turned upright, and given a thumbnail.
func TestProcess411(t *testing.T) {
	for _, c := range []struct {
		file string
		w, h int
	}{
		{"411-orientation3.jpg", 64, 48}, // EXIF orientation 3: upside down
		{"411-wide.jpg", 1200, 24},       // wide enough to be shrunk for its thumbnail
	} {
		data, err := os.ReadFile(filepath.Join("testdata", c.file))
		if err != nil {
			t.Fatal(err)
		}
		if m, err := jpeg.Decode(bytes.NewReader(data)); err != nil || m.(*image.YCbCr).SubsampleRatio != image.YCbCrSubsampleRatio411 {
			t.Fatalf("%s: %v, want a 4:1:1 JPEG", c.file, err)
		}
		f, err := Process(data, "image/jpeg", Limits{})
		if err != nil {
			t.Fatalf("%s: %v", c.file, err)
		}
		if f.Type != "image/jpeg" || f.Width != c.w || f.Height != c.h || len(f.Thumb) == 0 {
			t.Errorf("%s: %s %d×%d, thumbnail %d bytes; want a %d×%d JPEG with a thumbnail", c.file, f.Type, f.Width, f.Height, len(f.Thumb), c.w, c.h)
		}
	}
}
