package runtime

import (
	"fmt"
	"math"

	"github.com/compressml/compress/internal/parallel"
)

// This file holds the backward kernels of MaxPool, AveragePool,
// GlobalAveragePool and GlobalMaxPool (ops_pool.go). Every (image,
// channel) plane is independent: planes run in parallel, and inside a
// plane the windows are visited in output order, so overlapping windows
// add into the input gradient in a fixed order and the result does not
// depend on the thread count.
//
// MaxPool sends each output's gradient to the first maximum of its window
// in scan order (NaN inputs skipped), the element the forward's Indices
// output names; the argmax is recomputed from the input, which costs one
// forward-like scan and no extra memory in the forward pass. AveragePool
// spreads dY/count over the window's taps inside the input, count being
// the forward's divisor (with or without padding, count_include_pad).

// poolGradKernel is the backward of MaxPool and AveragePool.
type poolGradKernel struct {
	f          *poolKernel
	xLen, yLen int
}

func compilePoolGrad(isMax bool) GradCompileFunc {
	return func(n *Node, in, out []ValueMeta, needGrad []bool) (GradKernel, error) {
		if in[0].DType != Float32 {
			return nil, fmt.Errorf("X must be float32 to take a gradient, got %v", in[0].DType)
		}
		var fk Kernel
		var err error
		if isMax {
			fk, _, err = compileMaxPool(n, in)
		} else {
			fk, _, err = compileAveragePool(n, in)
		}
		if err != nil {
			return nil, err
		}
		f := fk.(*poolKernel)
		return &poolGradKernel{f: f, xLen: f.planes * f.inSize, yLen: f.planes * f.outSize}, nil
	}
}

// Backward adds the gradient of X.
func (k *poolGradKernel) Backward(ctx *ExecContext, in, out, gradOut, gradIn []*Tensor) error {
	if gradOut[0] == nil || gradIn[0] == nil {
		return nil
	}
	f := k.f
	x, dy, dx := in[0].F32, gradOut[0].F32, gradIn[0].F32
	if len(x) != k.xLen || len(dx) != k.xLen {
		return convLenErr("X or its gradient", min(len(x), len(dx)), k.xLen)
	}
	if len(dy) != k.yLen {
		return convLenErr("the output gradient", len(dy), k.yLen)
	}
	if ctx.Threads <= 1 {
		k.planes(x, dy, dx, 0, f.planes)
		return nil
	}
	parallel.For(ctx.Threads, f.planes, f.planesPerTask, func(lo, hi int) { k.planes(x, dy, dx, lo, hi) })
	return nil
}

// planes adds the input gradients of planes [lo, hi).
func (k *poolGradKernel) planes(x, dy, dx []float32, lo, hi int) {
	f := k.f
	for p := lo; p < hi; p++ {
		xp := x[p*f.inSize : (p+1)*f.inSize]
		dxp := dx[p*f.inSize : (p+1)*f.inSize]
		dyp := dy[p*f.outSize : (p+1)*f.outSize]
		if f.isMax {
			f.maxPlaneGrad(xp, dyp, dxp)
		} else {
			f.avgPlaneGrad(dyp, dxp)
		}
	}
}

// maxPlaneGrad adds each output gradient of one plane to the first
// maximum of its window (see maxPlaneIndices). The scan compares order-
// preserving integer keys of the values (maxKey), which the compiler turns
// into conditional moves: random data makes a float comparison branch
// unpredictable. A window whose maximum is NaN (or without values) takes
// the exact float scan of firstMax.
func (k *poolKernel) maxPlaneGrad(x, dy, dx []float32) {
	g := &k.g
	ihw, iw := g.in[1]*g.in[2], g.in[2]
	dd, dh, dw := g.d[0], g.d[1], g.d[2]
	winD, winH, winW := k.win[0], k.win[1], k.win[2]
	o := 0
	for di := range winD {
		wd := &winD[di]
		for hi := range winH {
			wh := &winH[hi]
			dyr := dy[o : o+len(winW)]
			o += len(winW)
			for wi := range winW {
				ww := &winW[wi]
				best, bi := int32(math.MinInt32), -1
				for td := wd.lo; td < wd.hi; td++ {
					for th := wh.lo; th < wh.hi; th++ {
						base := (wd.start+td*dd)*ihw + (wh.start+th*dh)*iw + ww.start
						best, bi = rowMaxKey(x, base, ww.lo, ww.hi, dw, best, bi)
					}
				}
				if bi < 0 || x[bi] != x[bi] {
					bi = k.firstMax(x, wd, wh, ww)
				}
				if bi >= 0 {
					dx[bi] += dyr[wi]
				}
			}
		}
	}
}

// rowMaxKey folds the values x[base+t*dw], t in [lo, hi), into the
// running maximum key best at index bi (the first one on ties). It is
// kept out of line: only in a function of its own does the compiler turn
// the comparison into conditional moves.
//
//go:noinline
func rowMaxKey(x []float32, base, lo, hi, dw int, best int32, bi int) (int32, int) {
	for t := lo; t < hi; t++ {
		i := base + t*dw
		if key := maxKey(x[i]); key > best {
			best, bi = key, i
		}
	}
	return best, bi
}

// maxKey maps a float32 to an int32 with the same order for every value
// but NaN (which sorts above +Inf, or at the bottom for the negative NaN
// of all ones); -0 and +0 map to the same key.
func maxKey(v float32) int32 {
	b := int32(math.Float32bits(v + 0)) // v + 0 turns -0 into +0
	return b ^ (b >> 31 & 0x7fffffff)
}

// firstMax returns the index of the first maximum of a window in scan
// order, skipping NaN values (maxPlaneIndices' choice), or -1 when every
// value is NaN.
func (k *poolKernel) firstMax(x []float32, wd, wh, ww *poolWin) int {
	g := &k.g
	ihw, iw := g.in[1]*g.in[2], g.in[2]
	var best float32
	bi := -1
	for td := wd.lo; td < wd.hi; td++ {
		for th := wh.lo; th < wh.hi; th++ {
			base := (wd.start+td*g.d[0])*ihw + (wh.start+th*g.d[1])*iw + ww.start
			for tw := ww.lo; tw < ww.hi; tw++ {
				i := base + tw*g.d[2]
				if v := x[i]; (v > best || bi < 0) && v == v {
					best, bi = v, i
				}
			}
		}
	}
	return bi
}

// avgPlaneGrad adds dy/count of each output of one plane to the taps of
// its window inside the input.
func (k *poolKernel) avgPlaneGrad(dy, dx []float32) {
	g := &k.g
	ihw, iw := g.in[1]*g.in[2], g.in[2]
	dd, dh, dw := g.d[0], g.d[1], g.d[2]
	o := 0
	for _, wd := range k.win[0] {
		for _, wh := range k.win[1] {
			cdh := wd.count * wh.count
			for _, ww := range k.win[2] {
				n := cdh * ww.count
				if n <= 0 || ww.lo >= ww.hi {
					o++
					continue
				}
				v := dy[o] / float32(n)
				o++
				for td := wd.lo; td < wd.hi; td++ {
					xd := (wd.start + td*dd) * ihw
					for th := wh.lo; th < wh.hi; th++ {
						base := xd + (wh.start+th*dh)*iw + ww.start
						if dw == 1 {
							r := dx[base+ww.lo : base+ww.hi]
							for i := range r {
								r[i] += v
							}
							continue
						}
						for tw := ww.lo; tw < ww.hi; tw++ {
							dx[base+tw*dw] += v
						}
					}
				}
			}
		}
	}
}

// ---------------------------------------------------------------- global pools

// globalPoolGradKernel is the backward of GlobalAveragePool and
// GlobalMaxPool.
type globalPoolGradKernel struct {
	planes, size int
	isMax        bool
}

func compileGlobalPoolGrad(isMax bool) GradCompileFunc {
	return func(n *Node, in, out []ValueMeta, needGrad []bool) (GradKernel, error) {
		if in[0].DType != Float32 {
			return nil, fmt.Errorf("X must be float32 to take a gradient, got %v", in[0].DType)
		}
		fk, _, err := compileGlobalPool(isMax)(n, in)
		if err != nil {
			return nil, err
		}
		f := fk.(*globalPoolKernel)
		return &globalPoolGradKernel{planes: f.planes, size: f.size, isMax: isMax}, nil
	}
}

// Backward adds the gradient of X: dY/size over each plane (average), or
// dY at the plane's first maximum (max).
func (k *globalPoolGradKernel) Backward(ctx *ExecContext, in, out, gradOut, gradIn []*Tensor) error {
	if gradOut[0] == nil || gradIn[0] == nil {
		return nil
	}
	x, dy, dx := in[0].F32, gradOut[0].F32, gradIn[0].F32
	if n := k.planes * k.size; len(x) != n || len(dx) != n {
		return convLenErr("X or its gradient", min(len(x), len(dx)), n)
	}
	if len(dy) != k.planes {
		return convLenErr("the output gradient", len(dy), k.planes)
	}
	if ctx.Threads <= 1 {
		k.planeRange(x, dy, dx, 0, k.planes)
		return nil
	}
	parallel.For(ctx.Threads, k.planes, max(1, 8192/k.size), func(lo, hi int) { k.planeRange(x, dy, dx, lo, hi) })
	return nil
}

// planeRange adds the input gradients of planes [lo, hi).
func (k *globalPoolGradKernel) planeRange(x, dy, dx []float32, lo, hi int) {
	for p := lo; p < hi; p++ {
		dxp := dx[p*k.size : (p+1)*k.size]
		if !k.isMax {
			v := dy[p] / float32(k.size)
			for i := range dxp {
				dxp[i] += v
			}
			continue
		}
		var best float32
		bi := -1
		for i, v := range x[p*k.size : (p+1)*k.size] {
			if (v > best || bi < 0) && v == v {
				best, bi = v, i
			}
		}
		if bi >= 0 {
			dxp[bi] += dy[p]
		}
	}
}
