package media

import (
	"image"
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
