package media

import (
	"encoding/binary"
	"image"

	"golang.org/x/image/draw"
)

// exifOrientation reads a JPEG's EXIF Orientation (1 to 8; 1, upright,
// when there is none or it cannot be read): the segments before the
// image data, the first APP1 "Exif" one, its first IFD's tag 0x0112.
func exifOrientation(jpg []byte) int {
	if len(jpg) < 4 || jpg[0] != 0xFF || jpg[1] != 0xD8 {
		return 1
	}
	for p := 2; p+4 <= len(jpg); {
		if jpg[p] != 0xFF {
			return 1
		}
		marker := jpg[p+1]
		if marker == 0xDA || marker == 0xD9 { // the image data, or its end
			return 1
		}
		n := int(binary.BigEndian.Uint16(jpg[p+2:]))
		if n < 2 || p+2+n > len(jpg) {
			return 1
		}
		seg := jpg[p+4 : p+2+n]
		if marker == 0xE1 && len(seg) > 6 && string(seg[:6]) == "Exif\x00\x00" {
			return tiffOrientation(seg[6:])
		}
		p += 2 + n
	}
	return 1
}

// tiffOrientation reads Orientation from a TIFF header's first IFD.
func tiffOrientation(t []byte) int {
	if len(t) < 8 {
		return 1
	}
	var bo binary.ByteOrder
	switch string(t[:2]) {
	case "II":
		bo = binary.LittleEndian
	case "MM":
		bo = binary.BigEndian
	default:
		return 1
	}
	ifd := int(bo.Uint32(t[4:]))
	if ifd < 8 || ifd+2 > len(t) {
		return 1
	}
	count := int(bo.Uint16(t[ifd:]))
	for i := range count {
		e := ifd + 2 + 12*i
		if e+12 > len(t) {
			return 1
		}
		if bo.Uint16(t[e:]) == 0x0112 && bo.Uint16(t[e+2:]) == 3 { // Orientation, SHORT
			if o := int(bo.Uint16(t[e+8:])); o >= 1 && o <= 8 {
				return o
			}
			return 1
		}
	}
	return 1
}

// orient turns img upright as EXIF orientation o says. It works on the
// decoder's own planes, one copy of the picture: a JPEG decodes to YCbCr,
// Gray or CMYK. A picture it cannot turn (chroma subsampled 4:1:1 or
// 4:1:0, rare) is kept as it is.
func orient(img image.Image, o int) image.Image {
	if o <= 1 || o > 8 {
		return img
	}
	swap := o >= 5 // the sides trade places
	switch m := img.(type) {
	case *image.YCbCr:
		ratio := m.SubsampleRatio
		if swap {
			switch ratio {
			case image.YCbCrSubsampleRatio422:
				ratio = image.YCbCrSubsampleRatio440
			case image.YCbCrSubsampleRatio440:
				ratio = image.YCbCrSubsampleRatio422
			case image.YCbCrSubsampleRatio444, image.YCbCrSubsampleRatio420:
			default:
				return img
			}
		}
		w, h := m.Rect.Dx(), m.Rect.Dy()
		if swap {
			w, h = h, w
		}
		out := image.NewYCbCr(image.Rect(0, 0, w, h), ratio)
		turn(out.Y, out.YStride, m.Y[m.YOffset(m.Rect.Min.X, m.Rect.Min.Y):], m.YStride, m.Rect.Dx(), m.Rect.Dy(), 1, o)
		// A picture not at the origin (never a decoder's) may have a
		// chroma sample more a side than the turned one holds.
		cw, ch := chromaSize(m)
		ow, oh := chromaSize(out)
		if swap {
			ow, oh = oh, ow
		}
		cw, ch = min(cw, ow), min(ch, oh)
		c := m.COffset(m.Rect.Min.X, m.Rect.Min.Y)
		turn(out.Cb, out.CStride, m.Cb[c:], m.CStride, cw, ch, 1, o)
		turn(out.Cr, out.CStride, m.Cr[c:], m.CStride, cw, ch, 1, o)
		return out
	case *image.Gray:
		out := image.NewGray(turned(m.Rect, swap))
		turn(out.Pix, out.Stride, m.Pix[m.PixOffset(m.Rect.Min.X, m.Rect.Min.Y):], m.Stride, m.Rect.Dx(), m.Rect.Dy(), 1, o)
		return out
	case *image.CMYK:
		out := image.NewCMYK(turned(m.Rect, swap))
		turn(out.Pix, out.Stride, m.Pix[m.PixOffset(m.Rect.Min.X, m.Rect.Min.Y):], m.Stride, m.Rect.Dx(), m.Rect.Dy(), 4, o)
		return out
	}
	return img
}

func turned(r image.Rectangle, swap bool) image.Rectangle {
	if swap {
		return image.Rect(0, 0, r.Dy(), r.Dx())
	}
	return image.Rect(0, 0, r.Dx(), r.Dy())
}

// chromaSize is the size of m's Cb and Cr planes, in samples: as
// image.NewYCbCr lays them out, for every subsampling the JPEG decoder
// makes (4:1:1 and 4:1:0 among them, which some cameras write).
func chromaSize(m *image.YCbCr) (int, int) {
	r := m.Rect
	halve := func(lo, hi int) int { return (hi+1)/2 - lo/2 }
	quarter := func(lo, hi int) int { return (hi+3)/4 - lo/4 }
	switch m.SubsampleRatio {
	case image.YCbCrSubsampleRatio422:
		return halve(r.Min.X, r.Max.X), r.Dy()
	case image.YCbCrSubsampleRatio420:
		return halve(r.Min.X, r.Max.X), halve(r.Min.Y, r.Max.Y)
	case image.YCbCrSubsampleRatio440:
		return r.Dx(), halve(r.Min.Y, r.Max.Y)
	case image.YCbCrSubsampleRatio411:
		return quarter(r.Min.X, r.Max.X), r.Dy()
	case image.YCbCrSubsampleRatio410:
		return quarter(r.Min.X, r.Max.X), halve(r.Min.Y, r.Max.Y)
	}
	return r.Dx(), r.Dy()
}

// turn writes the w×h plane src (px bytes a sample) into dst as EXIF
// orientation o turns it: the source sample of each destination one.
func turn(dst []byte, dstStride int, src []byte, srcStride, w, h, px, o int) {
	dw, dh := w, h
	if o >= 5 {
		dw, dh = h, w
	}
	for dy := range dh {
		row := dst[dy*dstStride:]
		for dx := range dw {
			var sx, sy int
			switch o {
			case 2:
				sx, sy = w-1-dx, dy
			case 3:
				sx, sy = w-1-dx, h-1-dy
			case 4:
				sx, sy = dx, h-1-dy
			case 5:
				sx, sy = dy, dx
			case 6:
				sx, sy = dy, h-1-dx
			case 7:
				sx, sy = w-1-dy, h-1-dx
			case 8:
				sx, sy = w-1-dy, dx
			}
			copy(row[dx*px:dx*px+px], src[sy*srcStride+sx*px:])
		}
	}
}

// shrink averages img down by k in each direction, in k×k boxes, working
// on the planes of the types decoders make (the box at the right and
// bottom edges takes what pixels there are). Other types are sampled
// bilinearly to the same size.
func shrink(img image.Image, k int) image.Image {
	r := img.Bounds()
	w, h := (r.Dx()+k-1)/k, (r.Dy()+k-1)/k
	switch m := img.(type) {
	case *image.YCbCr:
		out := image.NewYCbCr(image.Rect(0, 0, w, h), m.SubsampleRatio)
		box(out.Y, out.YStride, w, h, m.Y[m.YOffset(r.Min.X, r.Min.Y):], m.YStride, r.Dx(), r.Dy(), 1, k)
		cw, ch := chromaSize(m)
		ow, oh := chromaSize(out)
		c := m.COffset(r.Min.X, r.Min.Y)
		box(out.Cb, out.CStride, ow, oh, m.Cb[c:], m.CStride, cw, ch, 1, k)
		box(out.Cr, out.CStride, ow, oh, m.Cr[c:], m.CStride, cw, ch, 1, k)
		return out
	case *image.Gray:
		out := image.NewGray(image.Rect(0, 0, w, h))
		box(out.Pix, out.Stride, w, h, m.Pix[m.PixOffset(r.Min.X, r.Min.Y):], m.Stride, r.Dx(), r.Dy(), 1, k)
		return out
	case *image.RGBA:
		out := image.NewRGBA(image.Rect(0, 0, w, h))
		box(out.Pix, out.Stride, w, h, m.Pix[m.PixOffset(r.Min.X, r.Min.Y):], m.Stride, r.Dx(), r.Dy(), 4, k)
		return out
	case *image.NRGBA:
		out := image.NewNRGBA(image.Rect(0, 0, w, h))
		box(out.Pix, out.Stride, w, h, m.Pix[m.PixOffset(r.Min.X, r.Min.Y):], m.Stride, r.Dx(), r.Dy(), 4, k)
		return out
	}
	out := image.NewRGBA(image.Rect(0, 0, w, h))
	draw.ApproxBiLinear.Scale(out, out.Bounds(), img, r, draw.Src, nil)
	return out
}

// box writes into the dw×dh plane dst the averages of k×k boxes of the
// sw×sh plane src, channel by channel (px bytes a sample). A destination
// sample past the source's edge repeats the last box.
func box(dst []byte, dstStride, dw, dh int, src []byte, srcStride, sw, sh, px, k int) {
	sum := make([]int, dw*px)
	for dy := range dh {
		y0 := min(dy*k, sh-1)
		y1 := min(y0+k, sh)
		clear(sum)
		for sy := y0; sy < y1; sy++ {
			row := src[sy*srcStride:]
			for dx := range dw {
				x0 := min(dx*k, sw-1)
				x1 := min(x0+k, sw)
				for sx := x0; sx < x1; sx++ {
					for c := range px {
						sum[dx*px+c] += int(row[sx*px+c])
					}
				}
			}
		}
		out := dst[dy*dstStride:]
		for dx := range dw {
			x0 := min(dx*k, sw-1)
			n := (min(x0+k, sw) - x0) * (y1 - y0)
			for c := range px {
				out[dx*px+c] = byte(sum[dx*px+c] / n)
			}
		}
	}
}
