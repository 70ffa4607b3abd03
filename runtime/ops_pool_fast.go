package runtime

import (
	"math"

	"github.com/compressml/compress/runtime/kernels"
)

// Fast MaxPool forward (float32, int8 and uint8) for the common case: 1-D or 2-D, no
// dilation, every window complete along W (no padding there and no partial
// window at the right edge). It gives the same values as maxPlane (Go's max
// semantics: NaN propagates, max(-0, +0) = +0, in any order): the window
// rows are combined element by element (kernels.MaxRows, MaxRowsInt), then
// each output takes the max of its columns; 2x2 windows with stride 2 run
// in one kernels.MaxPool2x2 (MaxPool2x2Int) call per plane. For int8 and
// uint8 the results are exact, so they equal maxPlane's.

// maxPoolRowMax is the longest input row the fast path handles (its row
// buffer lives on the stack).
const maxPoolRowMax = 1024

// maxPlaneF32Fast max-pools one float32 plane without indices and reports
// whether it could (false: the geometry needs the general maxPlane).
func maxPlaneF32Fast(k *poolKernel, x, y []float32) bool {
	return maxPlaneFast(k, x, y, kernels.MaxPool2x2, kernels.MaxRows, float32(math.Inf(-1)))
}

// maxPlaneIntFast is maxPlaneF32Fast for int8 and uint8 planes (the
// quantized models' MaxPool, which runs on the stored values: max commutes
// with the monotonic dequantization).
func maxPlaneIntFast[T int8 | uint8](k *poolKernel, x, y []T, lowest T) bool {
	return maxPlaneFast(k, x, y, kernels.MaxPool2x2Int[T], kernels.MaxRowsInt[T], lowest)
}

// maxPlaneFast is the fast path of one element type: pool2x2 handles 2x2
// windows with stride 2, maxRows combines two rows element by element and
// lowest fills outputs whose window is empty.
func maxPlaneFast[T poolNum](k *poolKernel, x, y []T, pool2x2 func(y, x []T, rows, ow, iw int), maxRows func(dst, a, b []T), lowest T) bool {
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
		pool2x2(y, x, oh, ow, iw)
		return true
	}
	// The row buffer is on the stack, sized to the span (Go zeroes it).
	switch {
	case span <= 64:
		var buf [64]T
		maxPlaneRows(k, x, y, buf[:span], maxRows, lowest)
	case span <= 256:
		var buf [256]T
		maxPlaneRows(k, x, y, buf[:span], maxRows, lowest)
	default:
		var buf [maxPoolRowMax]T
		maxPlaneRows(k, x, y, buf[:span], maxRows, lowest)
	}
	return true
}

// maxPlaneRows is maxPlaneFast's general case, with tmp a buffer of one
// window row span.
func maxPlaneRows[T poolNum](k *poolKernel, x, y, tmp []T, maxRows func(dst, a, b []T), lowest T) {
	g := &k.g
	kw, sw, iw, ow := g.k[2], g.s[2], g.in[2], g.out[2]
	span := len(tmp)
	for o, wh := range k.win[1] {
		yr := y[o*ow : (o+1)*ow]
		if wh.lo >= wh.hi {
			for i := range yr {
				yr[i] = lowest
			}
			continue
		}
		r := wh.start + wh.lo
		src := x[r*iw : r*iw+span]
		if wh.hi-wh.lo > 1 {
			maxRows(tmp, src, x[(r+1)*iw:])
			for th := wh.lo + 2; th < wh.hi; th++ {
				r := wh.start + th
				maxRows(tmp, tmp, x[r*iw:])
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

// maxPool2x2Planes reports whether whole runs of planes can be pooled as one
// (int8 and uint8 MaxPool without indices): 2x2 windows with stride 2 and
// no padding over planes of exactly twice the output height, so that the
// row pairs of consecutive planes follow each other in memory.
func (k *poolKernel) maxPool2x2Planes() bool {
	g := &k.g
	return k.isMax && g.k[0] == 1 && g.in[0] == 1 && g.d[1] == 1 && g.d[2] == 1 &&
		g.k[1] == 2 && g.s[1] == 2 && g.k[2] == 2 && g.s[2] == 2 && g.pb[1] == 0 && g.pb[2] == 0 &&
		g.out[2] > 0 && g.in[1] == 2*g.out[1] && 2*g.out[2] <= g.in[2]
}
