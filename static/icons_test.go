package static

import "testing"

// A pixel drawn without sampling, as wholly inside or outside the shapes,
// is what its 4×4 samples make it, in every icon: the shortcut changes no
// pixel. (It fails with reach, the margin it keeps, halved.)
func TestIconWholePixelsAreWhatTheirSamplesMake(t *testing.T) {
	for name, ic := range iconSizes {
		p := iconPixels(ic.size, ic.maskable)
		whole := 0
		for py := range ic.size {
			for px := range ic.size {
				body, dot, ok := p.whole(px, py)
				if !ok {
					continue
				}
				whole++
				if sb, sd := p.sample(px, py); sb != body || sd != dot {
					t.Fatalf("%s: pixel (%d, %d) drawn as body %v, dots %v; its samples make %v, %v", name, px, py, body, dot, sb, sd)
				}
			}
		}
		if whole < ic.size*ic.size*9/10 {
			t.Errorf("%s: %d of %d pixels whole, want most", name, whole, ic.size*ic.size)
		}
	}
}

// BenchmarkDrawIcons is what drawing and encoding the icons costs a start:
//
//	go test ./static -run '^$' -bench DrawIcons -benchtime 20x
func BenchmarkDrawIcons(b *testing.B) {
	for b.Loop() {
		drawIcons()
	}
}
