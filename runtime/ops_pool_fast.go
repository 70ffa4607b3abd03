package runtime

import (
	"math"

	"github.com/compressml/compress/runtime/kernels"
)

// Fast float32 MaxPool forward for the common case: 1-D or 2-D, no
// dilation, every window complete along W (no padding there and no partial
// window at the right edge). It gives the same values as maxPlane (Go's max
// semantics: NaN propagates, max(-0, +0) = +0, in any order): the window
// rows are combined element by element (kernels.MaxRows), then each
// output takes the max of its columns; 2x2 windows with stride 2 run in
// one kernels.MaxPool2x2 call per plane.

// maxPoolRowMax is the longest input row the fast path handles (its row
// buffer lives on the stack).
const maxPoolRowMax = 1024

// maxPlaneF32Fast max-pools one float32 plane without indices and reports
// whether it could (false: the geometry needs the general maxPlane).
func maxPlaneF32Fast(k *poolKernel, x, y []float32) bool {
	g := &k.g
	if g.k[0] != 1 || g.in[0] != 1 || g.d[1] != 1 || g.d[2] != 1 {
		return false
	}
	kw, sw, iw, ow, oh := g.k[2], g.s[2], g.in[2], g.out[2], g.out[1]
	span := (ow-1)*sw + kw // input columns the windows read
	if ow == 0 || g.pb[2] != 0 || span > iw || span > maxPoolRowMax {
		return false
	}
	if kw == 2 && sw == 2 && g.k[1] == 2 && g.s[1] == 2 && g.pb[1] == 0 && 2*oh <= g.in[1] {
		kernels.MaxPool2x2(y, x, oh, ow, iw)
		return true
	}
	// The row buffer is on the stack, sized to the span (Go zeroes it).
	switch {
	case span <= 64:
		var buf [64]float32
		maxPlaneRows(k, x, y, buf[:span])
	case span <= 256:
		var buf [256]float32
		maxPlaneRows(k, x, y, buf[:span])
	default:
		var buf [maxPoolRowMax]float32
		maxPlaneRows(k, x, y, buf[:span])
	}
	return true
}

// maxPlaneRows is maxPlaneF32Fast's general case, with tmp a buffer of
// one window row span.
func maxPlaneRows(k *poolKernel, x, y, tmp []float32) {
	g := &k.g
	kw, sw, iw, ow := g.k[2], g.s[2], g.in[2], g.out[2]
	span := len(tmp)
	for o, wh := range k.win[1] {
		yr := y[o*ow : (o+1)*ow]
		if wh.lo >= wh.hi {
			for i := range yr {
				yr[i] = float32(math.Inf(-1))
			}
			continue
		}
		r := wh.start + wh.lo
		src := x[r*iw : r*iw+span]
		if wh.hi-wh.lo > 1 {
			kernels.MaxRows(tmp, src, x[(r+1)*iw:])
			for th := wh.lo + 2; th < wh.hi; th++ {
				r := wh.start + th
				kernels.MaxRows(tmp, tmp, x[r*iw:])
			}
			src = tmp
		}
		switch {
		case kw == 1:
			for i := range yr {
				yr[i] = src[i*sw]
			}
		case kw == 2:
			for i := range yr {
				w := src[i*sw : i*sw+2]
				yr[i] = max(w[0], w[1])
			}
		case kw == 3:
			for i := range yr {
				w := src[i*sw : i*sw+3]
				yr[i] = max(w[0], w[1], w[2])
			}
		default:
			for i := range yr {
				w := src[i*sw : i*sw+kw]
				m := w[0]
				for _, v := range w[1:] {
					m = max(m, v)
				}
				yr[i] = m
			}
		}
	}
}
