package data

import (
	"fmt"
	"math"
	"math/rand/v2"

	rt "github.com/compressml/compress/runtime"
)

// Augment configures random data augmentation of image examples, applied
// by a Loader to every example before preprocessing (so Fill is in stored
// units: 0 is black for 0-255 pixels). The transforms are, in this order:
// a random resized crop (resized back to the full size), a horizontal
// flip, a rotation about the centre and a translation. They are composed
// into one affine map and sampled once with bilinear interpolation;
// pixels from outside the image take the value Fill.
//
// The random draws of an example depend only on Seed, Epoch and the
// example's index in the underlying data set (through any Subsets), never on
// batch order or goroutine scheduling: the same (Seed, Epoch, index) always
// gives the same image. A trainer sets Epoch (see Loader.WithEpoch) to get
// new draws every epoch.
type Augment struct {
	// RotateDegrees rotates by an angle drawn uniformly from
	// [-RotateDegrees, RotateDegrees] (positive: counter-clockwise).
	RotateDegrees float64
	// FlipHorizontal mirrors the image left-right with probability 1/2.
	FlipHorizontal bool
	// CropScale, when CropScale[1] > 0, crops a random area fraction drawn
	// from [CropScale[0], CropScale[1]] of the image with a random aspect
	// ratio (width/height) drawn log-uniformly from CropRatio, and resizes
	// it to the full image (torchvision's RandomResizedCrop, e.g. 0.08-1).
	CropScale [2]float64
	// CropRatio bounds the crop's aspect ratio; zero means [3/4, 4/3].
	CropRatio [2]float64
	// TranslatePixels shifts the image by whole pixels drawn uniformly from
	// [-TranslatePixels, TranslatePixels], independently along each axis.
	TranslatePixels int
	// Fill is the value of pixels that come from outside the image.
	Fill float32
	// Seed seeds the draws; Epoch varies them from one epoch to the next.
	Seed  uint64
	Epoch int
}

// Enabled reports whether a (possibly nil) Augment changes anything.
func (a *Augment) Enabled() bool {
	return a != nil && (a.RotateDegrees != 0 || a.FlipHorizontal || a.CropScale[1] > 0 || a.TranslatePixels != 0)
}

// Validate checks the ranges.
func (a *Augment) Validate() error {
	if a == nil {
		return nil
	}
	finite := func(v float64) bool { return !math.IsNaN(v) && !math.IsInf(v, 0) }
	if !finite(a.RotateDegrees) || a.RotateDegrees < 0 || a.RotateDegrees > 360 {
		return fmt.Errorf("augmentation: rotation of %v degrees: give a value in 0..360", a.RotateDegrees)
	}
	if a.CropScale[1] > 0 {
		s := a.CropScale
		if !finite(s[0]) || !finite(s[1]) || s[0] <= 0 || s[0] > s[1] || s[1] > 1 {
			return fmt.Errorf("augmentation: crop scale %v..%v: give 0 < min <= max <= 1 (fractions of the image area)", s[0], s[1])
		}
	} else if a.CropScale[0] != 0 || a.CropScale[1] < 0 {
		return fmt.Errorf("augmentation: crop scale %v..%v: give 0 < min <= max <= 1, or 0..0 for no crop", a.CropScale[0], a.CropScale[1])
	}
	if r := a.CropRatio; r != [2]float64{} && (!finite(r[0]) || !finite(r[1]) || r[0] <= 0 || r[0] > r[1]) {
		return fmt.Errorf("augmentation: crop aspect ratio %v..%v: give 0 < min <= max", r[0], r[1])
	}
	if a.TranslatePixels < 0 {
		return fmt.Errorf("augmentation: translation of %d pixels: must not be negative", a.TranslatePixels)
	}
	if !finite(float64(a.Fill)) {
		return fmt.Errorf("augmentation: fill value %v is not a finite number", a.Fill)
	}
	return nil
}

// augShape splits an example shape into channels (the product of all but
// the last two dimensions), height and width.
func augShape(shape []int) (c, h, w int, err error) {
	if len(shape) < 2 {
		return 0, 0, 0, fmt.Errorf("augmentation needs image examples of shape [C H W] or [H W], not %v; give the model input's image shape", shape)
	}
	h, w = shape[len(shape)-2], shape[len(shape)-1]
	c = rt.NumElements(shape[:len(shape)-2])
	return c, h, w, nil
}

// xform is the random transform drawn for one example: the crop box
// (x0, y0, cw, ch in source pixels), a flip, a rotation (radians) and a
// translation (pixels).
type xform struct {
	x0, y0, cw, ch float64
	flip           bool
	angle          float64
	tx, ty         float64
}

// splitmix64 scrambles v (used to derive a per-example stream).
func splitmix64(v uint64) uint64 {
	v += 0x9e3779b97f4a7c15
	v = (v ^ (v >> 30)) * 0xbf58476d1ce4e5b9
	v = (v ^ (v >> 27)) * 0x94d049bb133111eb
	return v ^ (v >> 31)
}

// draw picks the transform of example index for an h×w image.
func (a *Augment) draw(index, h, w int) xform {
	src := rand.NewPCG(a.Seed, splitmix64(splitmix64(uint64(a.Epoch))^uint64(index)))
	r := rand.New(src)
	t := xform{cw: float64(w), ch: float64(h)}
	if a.CropScale[1] > 0 {
		t.x0, t.y0, t.cw, t.ch = a.cropBox(r, h, w)
	}
	if a.FlipHorizontal {
		t.flip = r.IntN(2) == 1
	}
	if a.RotateDegrees != 0 {
		t.angle = (2*r.Float64() - 1) * a.RotateDegrees * math.Pi / 180
	}
	if n := a.TranslatePixels; n != 0 {
		t.tx = float64(r.IntN(2*n+1) - n)
		t.ty = float64(r.IntN(2*n+1) - n)
	}
	return t
}

// cropBox draws a crop as torchvision's RandomResizedCrop does: ten tries
// at a random area and aspect ratio that fit, then a centre crop of the
// full image clamped to the ratio range.
func (a *Augment) cropBox(r *rand.Rand, h, w int) (x0, y0, cw, ch float64) {
	ratio := a.CropRatio
	if ratio == [2]float64{} {
		ratio = [2]float64{3.0 / 4, 4.0 / 3}
	}
	area := float64(h * w)
	lr0, lr1 := math.Log(ratio[0]), math.Log(ratio[1])
	for range 10 {
		target := area * (a.CropScale[0] + r.Float64()*(a.CropScale[1]-a.CropScale[0]))
		ar := math.Exp(lr0 + r.Float64()*(lr1-lr0))
		cw := int(math.Round(math.Sqrt(target * ar)))
		ch := int(math.Round(math.Sqrt(target / ar)))
		if cw > 0 && cw <= w && ch > 0 && ch <= h {
			i := r.IntN(h - ch + 1)
			j := r.IntN(w - cw + 1)
			return float64(j), float64(i), float64(cw), float64(ch)
		}
	}
	in := float64(w) / float64(h)
	cwi, chi := w, h
	switch {
	case in < ratio[0]:
		chi = min(h, max(1, int(math.Round(float64(w)/ratio[0]))))
	case in > ratio[1]:
		cwi = min(w, max(1, int(math.Round(float64(h)*ratio[1]))))
	}
	return float64((w - cwi) / 2), float64((h - chi) / 2), float64(cwi), float64(chi)
}

// identity reports whether t leaves the image unchanged.
func (t xform) identity(h, w int) bool {
	return t.x0 == 0 && t.y0 == 0 && t.cw == float64(w) && t.ch == float64(h) && !t.flip && t.angle == 0 && t.tx == 0 && t.ty == 0
}

// snap rounds v to the nearest integer when it is within float error of it,
// so that flips, 90-degree rotations and whole-pixel shifts copy pixels
// exactly.
func snap(v float64) float64 {
	if r := math.Round(v); math.Abs(v-r) < 1e-6 {
		return r
	}
	return v
}

// Apply augments one example x of the given shape ([C H W] or [H W]) in
// place, drawing the transform of the example with data-set index index.
func (a *Augment) Apply(x []float32, shape []int, index int) error {
	_, err := a.apply(x, shape, index, nil)
	return err
}

// apply is Apply with a reusable scratch buffer, which it returns.
func (a *Augment) apply(x []float32, shape []int, index int, scratch []float32) ([]float32, error) {
	if !a.Enabled() {
		return scratch, nil
	}
	c, h, w, err := augShape(shape)
	if err != nil {
		return scratch, err
	}
	if len(x) != c*h*w {
		return scratch, fmt.Errorf("augmentation: %d values for an example of shape %v", len(x), shape)
	}
	t := a.draw(index, h, w)
	if t.identity(h, w) {
		return scratch, nil
	}
	if cap(scratch) < len(x) {
		scratch = make([]float32, len(x))
	}
	src := scratch[:len(x)]
	copy(src, x)
	warp(x, src, c, h, w, t, a.Fill)
	return scratch, nil
}

// warp writes to x (c planes of h×w) the image src transformed by t:
// every output pixel centre is mapped back through the translation, the
// rotation about the centre, the flip and the crop, and src is sampled
// there bilinearly (fill outside).
func warp(x, src []float32, c, h, w int, t xform, fill float32) {
	fw, fh := float64(w), float64(h)
	cx, cy := fw/2, fh/2
	cos, sin := math.Cos(t.angle), math.Sin(t.angle)
	sx, sy := t.cw/fw, t.ch/fh
	hw := h * w
	at := func(plane []float32, xi, yi int) float32 {
		if xi < 0 || xi >= w || yi < 0 || yi >= h {
			return fill
		}
		return plane[yi*w+xi]
	}
	for oy := range h {
		for ox := range w {
			// Output pixel centre, mapped back through each transform.
			px, py := float64(ox)+0.5-t.tx, float64(oy)+0.5-t.ty
			dx, dy := px-cx, py-cy
			px, py = cx+dx*cos-dy*sin, cy+dx*sin+dy*cos
			if t.flip {
				px = fw - px
			}
			px, py = t.x0+px*sx, t.y0+py*sy
			fx, fy := snap(px-0.5), snap(py-0.5)
			x0, y0 := math.Floor(fx), math.Floor(fy)
			wx, wy := float32(fx-x0), float32(fy-y0)
			xi, yi := int(x0), int(y0)
			for ch := range c {
				plane := src[ch*hw : (ch+1)*hw]
				v := at(plane, xi, yi)
				if wx != 0 {
					v = v*(1-wx) + at(plane, xi+1, yi)*wx
				}
				if wy != 0 {
					v2 := at(plane, xi, yi+1)
					if wx != 0 {
						v2 = v2*(1-wx) + at(plane, xi+1, yi+1)*wx
					}
					v = v*(1-wy) + v2*wy
				}
				x[ch*hw+oy*w+ox] = v
			}
		}
	}
}
