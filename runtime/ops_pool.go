package runtime

import (
	"fmt"
	"math"

	"github.com/compressml/compress/internal/parallel"
	"github.com/compressml/compress/runtime/kernels"
)

// This file holds MaxPool, AveragePool, GlobalAveragePool and GlobalMaxPool
// for 1 to 3 spatial dimensions (see geom3 in ops_conv.go), in parallel
// over (image, channel) planes.

func init() {
	Register(OpSpec{Type: "MaxPool", MinInputs: 1, MaxInputs: 1, Outputs: 2, Compile: compileMaxPool, Grad: compilePoolGrad(true)})
	Register(OpSpec{Type: "AveragePool", MinInputs: 1, MaxInputs: 1, Outputs: 1, Compile: compileAveragePool, Grad: compilePoolGrad(false)})
	Register(OpSpec{Type: "GlobalAveragePool", MinInputs: 1, MaxInputs: 1, Outputs: 1, Compile: compileGlobalPool(false), Grad: compileGlobalPoolGrad(false)})
	Register(OpSpec{Type: "GlobalMaxPool", MinInputs: 1, MaxInputs: 1, Outputs: 1, Compile: compileGlobalPool(true), Grad: compileGlobalPoolGrad(true)})
}

// poolNum are the element types MaxPool supports.
type poolNum interface{ ~float32 | ~int8 | ~uint8 }

// poolKernel is a compiled MaxPool or AveragePool.
type poolKernel struct {
	g             geom3
	planes        int // N*C
	inSize        int
	outSize       int
	isMax         bool
	includePad    bool // AveragePool count_include_pad
	colMajor      bool // MaxPool storage_order 1
	withIndices   bool
	dtype         DType
	planesPerTask int
	win           [3][]poolWin // per axis and output index: the window's valid taps
}

// poolWin is the window of one output index along one axis: its first
// tap's input coordinate, the taps [lo, hi) that fall inside the input,
// and the number of taps counted by AveragePool's divisor.
type poolWin struct {
	start, lo, hi, count int
}

// poolGeom parses the window attributes of a pooling node for input shape xs.
func poolGeom(n *Node, xs []int) (geom3, error) {
	if len(xs) < 3 {
		return geom3{}, fmt.Errorf("X must be [N C spatial...], got shape %v", xs)
	}
	g, autoPad, err := windowAttrs(n, len(xs)-2, nil)
	if err != nil {
		return g, err
	}
	ceil := n.AttrInt("ceil_mode", 0) != 0
	for i := maxSpatial - g.rank; i < maxSpatial; i++ {
		if g.pb[i] < 0 || g.pe[i] < 0 {
			return g, fmt.Errorf("pads must not be negative")
		}
	}
	if err := forwardGeom(&g, xs[2:], autoPad, ceil); err != nil {
		return g, err
	}
	return g, nil
}

func newPoolKernel(n *Node, in []ValueMeta, isMax bool) (*poolKernel, []int, error) {
	xs := in[0].Shape
	g, err := poolGeom(n, xs)
	if err != nil {
		return nil, nil, err
	}
	k := &poolKernel{g: g, planes: xs[0] * xs[1], inSize: g.inSize(), outSize: g.outSize(), isMax: isMax, dtype: in[0].DType}
	work := max(1, k.outSize*g.kSize())
	k.planesPerTask = max(1, (1<<14)/work)
	for a := 0; a < maxSpatial; a++ {
		k.win[a] = make([]poolWin, g.out[a])
		for o := range k.win[a] {
			st := o*g.s[a] - g.pb[a]
			lo, hi := kRange(st, g.k[a], g.d[a], g.in[a])
			k.win[a][o] = poolWin{start: st, lo: lo, hi: hi, count: hi - lo}
		}
	}
	outShape := append([]int{xs[0], xs[1]}, g.outSpatial()...)
	if err := CheckShape(outShape); err != nil {
		return nil, nil, err
	}
	return k, outShape, nil
}

func compileMaxPool(n *Node, in []ValueMeta) (Kernel, []ValueMeta, error) {
	switch in[0].DType {
	case Float32, Int8, Uint8:
	default:
		return nil, nil, fmt.Errorf("X must be float32, int8 or uint8, got %v", in[0].DType)
	}
	k, outShape, err := newPoolKernel(n, in, true)
	if err != nil {
		return nil, nil, err
	}
	switch so := n.AttrInt("storage_order", 0); so {
	case 0:
	case 1:
		k.colMajor = true
	default:
		return nil, nil, fmt.Errorf("storage_order must be 0 or 1, got %d", so)
	}
	out := []ValueMeta{{DType: in[0].DType, Shape: outShape}}
	if len(n.Outputs) > 1 {
		k.withIndices = n.Outputs[1] != ""
		out = append(out, ValueMeta{DType: Int64, Shape: outShape})
	}
	return k, out, nil
}

func compileAveragePool(n *Node, in []ValueMeta) (Kernel, []ValueMeta, error) {
	if err := checkFloat("X", in[0]); err != nil {
		return nil, nil, err
	}
	k, outShape, err := newPoolKernel(n, in, false)
	if err != nil {
		return nil, nil, err
	}
	k.includePad = n.AttrInt("count_include_pad", 0) != 0
	if k.includePad {
		g := &k.g
		for a := 0; a < maxSpatial; a++ {
			for o := range k.win[a] {
				// Taps inside the padded input [-pb, in+pe).
				w := &k.win[a][o]
				plo, phi := kRange(w.start+g.pb[a], g.k[a], g.d[a], g.in[a]+g.pb[a]+g.pe[a])
				w.count = phi - plo
			}
		}
	}
	return k, []ValueMeta{{DType: Float32, Shape: outShape}}, nil
}

func (k *poolKernel) MACs() int64 {
	return int64(k.planes) * int64(k.outSize) * int64(k.g.kSize())
}

func (k *poolKernel) Run(ctx *ExecContext, in, out []*Tensor) error {
	var idx []int64
	if k.withIndices && len(out) > 1 && out[1] != nil {
		idx = out[1].I64
	}
	flat := idx == nil && (k.dtype == Uint8 || k.dtype == Int8) && k.maxPool2x2Planes()
	parallel.For(ctx.Threads, k.planes, k.planesPerTask, func(lo, hi int) {
		if flat {
			// Planes lo..hi-1 as one run of (hi-lo)*oh output rows.
			rows, ow, iw := (hi-lo)*k.g.out[1], k.g.out[2], k.g.in[2]
			if k.dtype == Uint8 {
				kernels.MaxPool2x2Int(out[0].U8[lo*k.outSize:hi*k.outSize], in[0].U8[lo*k.inSize:hi*k.inSize], rows, ow, iw)
			} else {
				kernels.MaxPool2x2Int(out[0].I8[lo*k.outSize:hi*k.outSize], in[0].I8[lo*k.inSize:hi*k.inSize], rows, ow, iw)
			}
			return
		}
		for p := lo; p < hi; p++ {
			if !k.isMax {
				x := in[0].F32[p*k.inSize : (p+1)*k.inSize]
				k.avgPlane(x, out[0].F32[p*k.outSize:(p+1)*k.outSize])
				continue
			}
			var ip []int64
			if idx != nil {
				ip = idx[p*k.outSize : (p+1)*k.outSize]
			}
			base := int64(p) * int64(k.inSize)
			switch k.dtype {
			case Float32:
				x, y := in[0].F32[p*k.inSize:(p+1)*k.inSize], out[0].F32[p*k.outSize:(p+1)*k.outSize]
				if ip == nil && maxPlaneF32Fast(k, x, y) {
					continue
				}
				maxPlane(k, x, y, ip, base, float32(math.Inf(-1)))
			case Int8:
				x, y := in[0].I8[p*k.inSize:(p+1)*k.inSize], out[0].I8[p*k.outSize:(p+1)*k.outSize]
				if ip == nil && maxPlaneIntFast(k, x, y, math.MinInt8) {
					continue
				}
				maxPlane(k, x, y, ip, base, math.MinInt8)
			case Uint8:
				x, y := in[0].U8[p*k.inSize:(p+1)*k.inSize], out[0].U8[p*k.outSize:(p+1)*k.outSize]
				if ip == nil && maxPlaneIntFast(k, x, y, 0) {
					continue
				}
				maxPlane(k, x, y, ip, base, 0)
			}
		}
	})
	return nil
}

// kRange returns the kernel taps [lo, hi) of one axis whose input
// coordinate start + t*d lies in [0, in).
func kRange(start, k, d, in int) (int, int) {
	lo := 0
	if start < 0 {
		lo = ceilDiv(-start, d)
	}
	hi := min(k, floorDiv(in-1-start, d)+1)
	if hi < lo {
		hi = lo
	}
	return lo, hi
}

// maxPlane max-pools one plane; ip (optional) receives the flat index of
// each maximum (the first one in scan order on ties), offset by base.
// Without indices NaN propagates; with indices NaN inputs are skipped.
func maxPlane[T poolNum](k *poolKernel, x, y []T, ip []int64, base int64, lowest T) {
	if ip != nil {
		maxPlaneIndices(k, x, y, ip, base, lowest)
		return
	}
	// Row by row: each input row of a window row-band updates the whole
	// output row, so the inner loops run over contiguous memory.
	g := &k.g
	ihw, iw, ow := g.in[1]*g.in[2], g.in[2], g.out[2]
	dd, dh := g.d[0], g.d[1]
	o := 0
	for _, wd := range k.win[0] {
		for _, wh := range k.win[1] {
			yr := y[o : o+ow]
			o += ow
			first := true
			for td := wd.lo; td < wd.hi; td++ {
				xd := x[(wd.start+td*dd)*ihw:]
				for th := wh.lo; th < wh.hi; th++ {
					row := xd[(wh.start+th*dh)*iw : (wh.start+th*dh+1)*iw]
					maxRow(k, row, yr, first, lowest)
					first = false
				}
			}
			if first {
				for i := range yr {
					yr[i] = lowest
				}
			}
		}
	}
}

// maxRow writes (first) or folds into yr the maximum of each W window of
// one input row.
func maxRow[T poolNum](k *poolKernel, row, yr []T, first bool, lowest T) {
	wins := k.win[2][:len(yr)]
	dw, kw := k.g.d[2], k.g.k[2]
	for ow := range wins {
		ww := &wins[ow]
		var m T
		switch {
		case dw == 1 && ww.lo == 0 && ww.hi == kw && kw == 2:
			s := row[ww.start : ww.start+2]
			m = max(s[0], s[1])
		case dw == 1 && ww.lo == 0 && ww.hi == kw && kw == 3:
			s := row[ww.start : ww.start+3]
			m = max(s[0], s[1], s[2])
		default:
			m = lowest
			for tw := ww.lo; tw < ww.hi; tw++ {
				m = max(m, row[ww.start+tw*dw])
			}
		}
		if first {
			yr[ow] = m
		} else {
			yr[ow] = max(yr[ow], m)
		}
	}
}

// maxPlaneIndices is maxPlane with the Indices output.
func maxPlaneIndices[T poolNum](k *poolKernel, x, y []T, ip []int64, base int64, lowest T) {
	g := &k.g
	ihw := g.in[1] * g.in[2]
	o := 0
	for _, wd := range k.win[0] {
		for _, wh := range k.win[1] {
			for _, ww := range k.win[2] {
				best, bi := lowest, -1
				for td := wd.lo; td < wd.hi; td++ {
					id := wd.start + td*g.d[0]
					for th := wh.lo; th < wh.hi; th++ {
						ih := wh.start + th*g.d[1]
						row := x[id*ihw+ih*g.in[2]:]
						for tw := ww.lo; tw < ww.hi; tw++ {
							iw := ww.start + tw*g.d[2]
							if v := row[iw]; v > best || bi < 0 {
								if v == v { // skip NaN
									best, bi = v, id*ihw+ih*g.in[2]+iw
								}
							}
						}
					}
				}
				y[o] = best
				if bi < 0 {
					ip[o] = -1
				} else {
					flat := bi
					if k.colMajor {
						iw := bi % g.in[2]
						ih := (bi / g.in[2]) % g.in[1]
						id := bi / ihw
						flat = id + ih*g.in[0] + iw*g.in[0]*g.in[1]
					}
					ip[o] = base + int64(flat)
				}
				o++
			}
		}
	}
}

// avgPlane average-pools one plane, row by row like maxPlane.
func (k *poolKernel) avgPlane(x, y []float32) {
	g := &k.g
	ihw, iw, ow := g.in[1]*g.in[2], g.in[2], g.out[2]
	dd, dh, dw, kw := g.d[0], g.d[1], g.d[2], g.k[2]
	wins := k.win[2]
	o := 0
	for _, wd := range k.win[0] {
		for _, wh := range k.win[1] {
			yr := y[o : o+ow]
			o += ow
			clear(yr)
			for td := wd.lo; td < wd.hi; td++ {
				xd := x[(wd.start+td*dd)*ihw:]
				for th := wh.lo; th < wh.hi; th++ {
					row := xd[(wh.start+th*dh)*iw : (wh.start+th*dh+1)*iw]
					for i := range yr {
						ww := &wins[i]
						var s float32
						if dw == 1 && ww.lo == 0 && ww.hi == kw && kw == 3 {
							r := row[ww.start : ww.start+3]
							s = r[0] + r[1] + r[2]
						} else {
							for tw := ww.lo; tw < ww.hi; tw++ {
								s += row[ww.start+tw*dw]
							}
						}
						yr[i] += s
					}
				}
			}
			cdh := wd.count * wh.count
			for i := range yr {
				if n := cdh * wins[i].count; n > 0 {
					yr[i] /= float32(n)
				} else {
					yr[i] = 0
				}
			}
		}
	}
}

// ---------------------------------------------------------------- global pools

// globalPoolKernel reduces every (image, channel) plane to one value.
type globalPoolKernel struct {
	planes, size int
	isMax        bool
	dtype        DType
}

func compileGlobalPool(isMax bool) CompileFunc {
	return func(n *Node, in []ValueMeta) (Kernel, []ValueMeta, error) {
		xs := in[0].Shape
		if len(xs) < 2 {
			return nil, nil, fmt.Errorf("X must be [N C spatial...], got shape %v", xs)
		}
		if isMax {
			switch in[0].DType {
			case Float32, Int8, Uint8:
			default:
				return nil, nil, fmt.Errorf("X must be float32, int8 or uint8, got %v", in[0].DType)
			}
		} else if err := checkFloat("X", in[0]); err != nil {
			return nil, nil, err
		}
		k := &globalPoolKernel{planes: xs[0] * xs[1], size: NumElements(xs[2:]), isMax: isMax, dtype: in[0].DType}
		if k.size == 0 {
			return nil, nil, fmt.Errorf("X of shape %v has empty spatial dimensions", xs)
		}
		outShape := []int{xs[0], xs[1]}
		for range xs[2:] {
			outShape = append(outShape, 1)
		}
		return k, []ValueMeta{{DType: in[0].DType, Shape: outShape}}, nil
	}
}

func (k *globalPoolKernel) Run(ctx *ExecContext, in, out []*Tensor) error {
	grain := max(1, 8192/k.size)
	parallel.For(ctx.Threads, k.planes, grain, func(lo, hi int) {
		for p := lo; p < hi; p++ {
			switch {
			case !k.isMax:
				// Accumulate in float64: planes can be large.
				s := kernels.SumFloat64(in[0].F32[p*k.size : (p+1)*k.size])
				out[0].F32[p] = float32(s / float64(k.size))
			case k.dtype == Float32:
				out[0].F32[p] = planeMax(in[0].F32[p*k.size:(p+1)*k.size], float32(math.Inf(-1)))
			case k.dtype == Int8:
				out[0].I8[p] = planeMax(in[0].I8[p*k.size:(p+1)*k.size], math.MinInt8)
			case k.dtype == Uint8:
				out[0].U8[p] = planeMax(in[0].U8[p*k.size:(p+1)*k.size], 0)
			}
		}
	})
	return nil
}

func planeMax[T poolNum](x []T, lowest T) T {
	m := lowest
	for _, v := range x {
		if v > m {
			m = v
		}
	}
	return m
}
