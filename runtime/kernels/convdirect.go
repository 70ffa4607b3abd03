package kernels

import (
	"fmt"
	"math"
	"math/bits"

	"github.com/compressml/compress/internal/parallel"
)

// Direct convolution tile: cmr output channels by cblk blocks of 16
// outputs. Keep in sync with asmgen.
const (
	cmr  = 8
	cblk = 2
	cbw  = 16 // outputs per column block

	convFlagRelu  = 1 << 0
	convFlagBias  = 1 << 1
	convFlagResid = 1 << 2
)

// DirectConv is a 2-D convolution with constant weights (one group) that
// runs without an im2col matrix and without packing the input: an implicit
// GEMM whose micro-kernel reads its right operand straight from a padded
// copy of the input image.
//
// The image is first copied once into a prepared buffer: zero padded and,
// for strides above 1, split into stride phases (plane (py, px) holds the
// padded input rows py, py+sh, ... and columns px, px+sw, ...). Every kernel
// tap (c, kh, kw) then reads, for a run of 16 consecutive outputs of one
// output row, 16 consecutive values of the prepared buffer at a fixed
// offset: the tap's offset table replaces im2col. A tile of 8 output
// channels by two such runs accumulates over all taps in registers (weights
// packed once, 8 per tap), then adds the bias and an optional residual
// tensor, applies ReLU and stores with masks for partial runs. A 1x1
// convolution with unit strides and no padding reads the input in place.
//
// Each output value is a sum over the taps in one fixed order, so results
// do not depend on the thread count. Build it with NewDirectConv; it is
// immutable and safe for concurrent use.
type DirectConv struct {
	s       Conv2DShape
	m, k    int       // output channels, taps (C*KH*KW)
	oh, ow  int       // output size
	panels  int       // ceil(m/cmr)
	w       []float32 // packed weights: panel p, tap t, channel r at (p*k+t)*cmr+r
	offs    []int32   // per tap: element offset in the prepared input
	flat    bool      // the input is used in place, as one row of H*W
	hq, wq  int       // size of one prepared plane
	phases  [][2]int  // stride phases (py, px) that taps read, in plane order
	prepLen int       // floats of the prepared input
	pairs   []int32   // pairWords per pair of blocks: src0, src1, dst0, dst1, masks, 0
}

// pairWords is the int32 count of one block pair descriptor (the layout
// the assembly reads).
const pairWords = 6

// convBlock is a run of at most 16 outputs of one output row: its offset in
// the prepared input (src) and in the output plane (dst), and its length.
type convBlock struct {
	src, dst int32
	n        int32
}

// DirectConvFast reports whether DirectConv runs on an assembly kernel on
// this CPU (AVX-512 or AVX2+FMA). Without one it still works (portable Go)
// but is slower than the im2col and GEMM path.
func DirectConvFast() bool { return activeImpl == implAVX512 || activeImpl == implAVX2 }

// NewDirectConv prepares the convolution of geometry s with m output
// channels and weights w, laid out [m][C][KH][KW]. It returns an error when
// the geometry is invalid, the weights are short, or an offset would not
// fit the kernel's 32-bit offsets.
func NewDirectConv(s *Conv2DShape, m int, w []float32) (*DirectConv, error) {
	if err := s.Validate(); err != nil {
		return nil, err
	}
	k := s.C * s.KH * s.KW
	if m <= 0 || len(w) < m*k {
		return nil, fmt.Errorf("direct conv: %d output channels need %d weights, have %d", m, m*k, len(w))
	}
	d := &DirectConv{s: *s, m: m, k: k, oh: s.OutH(), ow: s.OutW(), panels: ceilDiv(m, cmr)}
	d.flat = s.KH == 1 && s.KW == 1 && s.StrideH == 1 && s.StrideW == 1 &&
		s.PadTop == 0 && s.PadLeft == 0 && s.PadBottom == 0 && s.PadRight == 0
	if d.flat {
		d.hq, d.wq = 1, s.H*s.W
		d.phases = [][2]int{{0, 0}}
	} else {
		hp, wp := s.H+s.PadTop+s.PadBottom, s.W+s.PadLeft+s.PadRight
		d.hq, d.wq = ceilDiv(hp, s.StrideH), ceilDiv(wp, s.StrideW)
		for py := 0; py < s.StrideH; py++ {
			for px := 0; px < s.StrideW; px++ {
				if d.phaseUsed(py, px) {
					d.phases = append(d.phases, [2]int{py, px})
				}
			}
		}
		d.prepLen = s.C * len(d.phases) * d.hq * d.wq
	}
	if total := int64(s.C) * int64(len(d.phases)) * int64(d.hq) * int64(d.wq); total > math.MaxInt32 || int64(d.oh)*int64(d.ow) > math.MaxInt32 {
		return nil, fmt.Errorf("direct conv: prepared input of %d values or output plane of %dx%d is too large for 32-bit offsets", total, d.oh, d.ow)
	}
	d.offs = make([]int32, k)
	for t := range d.offs {
		c, kh, kw := t/(s.KH*s.KW), t/s.KW%s.KH, t%s.KW
		ry, rx := kh*s.DilationH, kw*s.DilationW
		ph := d.phaseIndex(ry%s.StrideH, rx%s.StrideW)
		d.offs[t] = int32(((c*len(d.phases)+ph)*d.hq+ry/s.StrideH)*d.wq + rx/s.StrideW)
	}
	d.w = make([]float32, d.panels*k*cmr)
	for oc := 0; oc < m; oc++ {
		p, r := oc/cmr, oc%cmr
		for t := 0; t < k; t++ {
			d.w[(p*k+t)*cmr+r] = w[oc*k+t]
		}
	}
	var blocks []convBlock
	if d.flat {
		n := s.H * s.W
		for j := 0; j < n; j += cbw {
			blocks = append(blocks, convBlock{src: int32(j), dst: int32(j), n: int32(min(cbw, n-j))})
		}
	} else {
		for y := 0; y < d.oh; y++ {
			for x := 0; x < d.ow; x += cbw {
				blocks = append(blocks, convBlock{src: int32(y*d.wq + x), dst: int32(y*d.ow + x), n: int32(min(cbw, d.ow-x))})
			}
		}
	}
	for i := 0; i < len(blocks); i += cblk {
		b0 := blocks[i]
		b1 := b0
		mask := uint32(1)<<b0.n - 1
		if i+1 < len(blocks) {
			b1 = blocks[i+1]
			mask |= (uint32(1)<<b1.n - 1) << 16
		}
		d.pairs = append(d.pairs, b0.src, b1.src, b0.dst, b1.dst, int32(mask), 0)
	}
	return d, nil
}

// phaseUsed reports whether some tap reads stride phase (py, px).
func (d *DirectConv) phaseUsed(py, px int) bool {
	s := &d.s
	okY, okX := false, false
	for kh := 0; kh < s.KH; kh++ {
		okY = okY || kh*s.DilationH%s.StrideH == py
	}
	for kw := 0; kw < s.KW; kw++ {
		okX = okX || kw*s.DilationW%s.StrideW == px
	}
	return okY && okX
}

func (d *DirectConv) phaseIndex(py, px int) int {
	for i, p := range d.phases {
		if p == [2]int{py, px} {
			return i
		}
	}
	panic("kernels: DirectConv: unused phase") // unreachable: offsets only use used phases
}

// OutputChannels returns the number of output channels.
func (d *DirectConv) OutputChannels() int { return d.m }

// ScratchSize returns the float32 count of the scratch one Run needs (the
// prepared input of one image).
func (d *DirectConv) ScratchSize() int { return d.prepLen }

// MACs returns the multiply-adds of one image.
func (d *DirectConv) MACs() int64 { return int64(d.m) * int64(d.oh*d.ow) * int64(d.k) }

// ConvEpilogue is applied to each output of a DirectConv, in this order:
// y = acc + Bias[c]; y += Residual[i]; if Relu, y = max(y, 0) (NaN stays NaN).
type ConvEpilogue struct {
	Bias     []float32 // nil or one value per output channel
	Residual []float32 // nil or a tensor shaped like the output (one image)
	Relu     bool
}

// Run convolves one image: x is C x H x W, y receives M x OutH x OutW and
// is fully overwritten (y must not overlap x or the residual, except that y
// may be the residual itself). scratch holds at least ScratchSize() floats.
// threads goroutines split the output; the result is the same for every
// thread count. It panics on short buffers.
func (d *DirectConv) Run(x, y []float32, e ConvEpilogue, scratch []float32, threads int) {
	s := &d.s
	ohw := d.oh * d.ow
	if len(x) < s.C*s.H*s.W || len(y) < d.m*ohw || len(scratch) < d.prepLen ||
		(e.Bias != nil && len(e.Bias) < d.m) || (e.Residual != nil && len(e.Residual) < d.m*ohw) {
		panic(fmt.Sprintf("kernels: DirectConv.Run: buffers too short for C=%d H=%d W=%d M=%d output %dx%d",
			s.C, s.H, s.W, d.m, d.oh, d.ow))
	}
	src := x
	if !d.flat {
		src = scratch[:d.prepLen]
		d.prepare(x, src)
	}
	pairs := len(d.pairs) / pairWords
	if threads > 1 {
		perPair := int64(d.panels*cmr) * int64(cblk*cbw) * int64(d.k)
		threads = min(threads, int(max(1, int64(pairs)*perPair/minDirectMACsPerThread)))
	}
	if threads <= 1 {
		d.tiles(src, y, e, 0, pairs)
		return
	}
	parallel.For(threads, pairs, 1, func(lo, hi int) { d.tiles(src, y, e, lo, hi) })
}

// minDirectMACsPerThread is the least direct-convolution work worth a
// goroutine of its own.
const minDirectMACsPerThread = 1 << 19

// RunBatch convolves n images stored one after another (x: n x C x H x W,
// y and the residual: n x M x OutH x OutW). When there are at least as
// many images as threads, each goroutine convolves whole images with its
// own part of scratch, which must then hold threads*ScratchSize() floats
// (ScratchSize() otherwise). Results do not depend on threads.
func (d *DirectConv) RunBatch(n int, x, y []float32, e ConvEpilogue, scratch []float32, threads int) {
	s := &d.s
	in, out := s.C*s.H*s.W, d.m*d.oh*d.ow
	image := func(i int, buf []float32, th int) {
		ei := e
		if e.Residual != nil {
			ei.Residual = e.Residual[i*out : (i+1)*out]
		}
		d.Run(x[i*in:(i+1)*in], y[i*out:(i+1)*out], ei, buf, th)
	}
	if threads > 1 && n >= threads && len(scratch) >= threads*d.prepLen && d.MACs()*int64(n) >= int64(threads)*minDirectMACsPerThread {
		parallel.For(threads, threads, 1, func(lo, hi int) {
			for t := lo; t < hi; t++ {
				buf := scratch[t*d.prepLen : (t+1)*d.prepLen]
				for i := t * n / threads; i < (t+1)*n/threads; i++ {
					image(i, buf, 1)
				}
			}
		})
		return
	}
	for i := 0; i < n; i++ {
		image(i, scratch, threads)
	}
}

// prepare writes the zero-padded, phase-split copy of image x into q.
// Every value of q is written: the input rows by copyRows, which also
// zeroes up to 16 padding columns on each side of them, and the padding
// rows (and wider padding columns) by clear.
func (d *DirectConv) prepare(x, q []float32) {
	s := &d.s
	plane, nph := d.hq*d.wq, len(d.phases)
	for pi, ph := range d.phases {
		py, px := ph[0], ph[1]
		// Rows i and columns j whose input row i*sh+py-padTop and column
		// j*sw+px-padLeft are inside the image.
		ilo := max(0, ceilDiv(s.PadTop-py, s.StrideH))
		ihi := min(d.hq, ceilDiv(s.H+s.PadTop-py, s.StrideH))
		jlo := max(0, ceilDiv(s.PadLeft-px, s.StrideW))
		jhi := min(d.wq, ceilDiv(s.W+s.PadLeft-px, s.StrideW))
		if ilo >= ihi || jlo >= jhi {
			for c := 0; c < s.C; c++ {
				clear(q[(c*nph+pi)*plane : (c*nph+pi+1)*plane])
			}
			continue
		}
		lead, trail := jlo, d.wq-jhi
		if lead > cbw || trail > cbw {
			for c := 0; c < s.C; c++ {
				clear(q[(c*nph+pi)*plane : (c*nph+pi+1)*plane])
			}
			lead, trail = 0, 0
		} else {
			for c := 0; c < s.C; c++ {
				p := q[(c*nph+pi)*plane : (c*nph+pi+1)*plane]
				clear(p[:ilo*d.wq])
				clear(p[ihi*d.wq:])
			}
		}
		iy, ix := ilo*s.StrideH+py-s.PadTop, jlo*s.StrideW+px-s.PadLeft
		copyRows(q[pi*plane+ilo*d.wq+jlo-lead:], d.wq, nph*plane, lead, trail, x[iy*s.W+ix:], s.StrideH*s.W, s.H*s.W,
			jhi-jlo, ihi-ilo, s.C, s.StrideW)
	}
}

// copyRows copies, for plane p < planes and row r < rows, the n values
// src[p*srcPlane + r*srcRow + j*stride] (j < n) to
// dst[p*dstPlane + r*dstRow + lead + j], and zeroes the lead values before
// and the trail values after them (lead, trail <= 16). It panics if a
// slice is too short.
func copyRows(dst []float32, dstRow, dstPlane, lead, trail int, src []float32, srcRow, srcPlane, n, rows, planes, stride int) {
	if n <= 0 || rows <= 0 || planes <= 0 {
		return
	}
	if lead < 0 || trail < 0 || lead > cbw || trail > cbw {
		panic(fmt.Sprintf("kernels: copyRows: lead %d and trail %d must be in [0, %d]", lead, trail, cbw))
	}
	_ = dst[(planes-1)*dstPlane+(rows-1)*dstRow+lead+n+trail-1]
	_ = src[(planes-1)*srcPlane+(rows-1)*srcRow+(n-1)*stride]
	if activeImpl == implAVX512 && (stride == 1 || stride == 2) {
		if stride == 1 {
			copyRowsAVX512(&dst[lead], dstRow, dstPlane, &src[0], srcRow, srcPlane, n, rows, planes, lead, trail)
		} else {
			copyRows2AVX512(&dst[lead], dstRow, dstPlane, &src[0], srcRow, srcPlane, n, rows, planes, lead, trail)
		}
		return
	}
	copyRowsGeneric(dst, dstRow, dstPlane, lead, trail, src, srcRow, srcPlane, n, rows, planes, stride)
}

// copyRowsGeneric is the portable copyRows.
func copyRowsGeneric(dst []float32, dstRow, dstPlane, lead, trail int, src []float32, srcRow, srcPlane, n, rows, planes, stride int) {
	for p := 0; p < planes; p++ {
		for r := 0; r < rows; r++ {
			row := dst[p*dstPlane+r*dstRow:][:lead+n+trail]
			clear(row[:lead])
			clear(row[lead+n:])
			dr := row[lead : lead+n]
			sr := src[p*srcPlane+r*srcRow:][:(n-1)*stride+1]
			if stride == 1 {
				copy(dr, sr)
				continue
			}
			for j := range dr {
				dr[j] = sr[j*stride]
			}
		}
	}
}

// tiles computes block pairs [lo, hi) for every channel panel (the panels
// of a pair run back to back while its input rows are in the L1 cache).
func (d *DirectConv) tiles(src, y []float32, e ConvEpilogue, lo, hi int) {
	ohw := d.oh * d.ow
	var flags uint64
	if e.Relu {
		flags |= convFlagRelu
	}
	if e.Bias != nil {
		flags |= convFlagBias
	}
	if e.Residual != nil {
		flags |= convFlagResid
	}
	if full := d.m / cmr; full > 0 {
		convTiles(d.k, d.w[:full*d.k*cmr], d.offs, src, y[:d.m*ohw], ohw, e.Bias, e.Residual, d.pairs[lo*pairWords:hi*pairWords], full, flags)
	}
	if d.m%cmr == 0 {
		return
	}
	// Partial channel panel: compute the full panel into tmp (zero-padded
	// weights), then finish the valid rows.
	p := d.m / cmr
	a := d.w[p*d.k*cmr : (p+1)*d.k*cmr]
	oc, rows := p*cmr, d.m-p*cmr
	const ld = cblk * cbw
	var tmp [cmr * ld]float32
	for pr := lo; pr < hi; pr++ {
		desc := d.pairs[pr*pairWords : (pr+1)*pairWords]
		mask := uint64(uint32(desc[4]))
		one := [pairWords]int32{desc[0], desc[1], 0, cbw, desc[4], 0}
		convTiles(d.k, a, d.offs, src, tmp[:], ld, nil, nil, one[:], 1, 0)
		for r := 0; r < rows; r++ {
			for bi := 0; bi < cblk; bi++ {
				n := bits.TrailingZeros64(^(mask >> (16 * bi) & 0xffff))
				dst := int(desc[2+bi])
				out := y[(oc+r)*ohw+dst:][:n]
				t := tmp[r*ld+bi*cbw:][:n]
				var res []float32
				if e.Residual != nil {
					res = e.Residual[(oc+r)*ohw+dst:][:n]
				}
				for i, v := range t {
					if e.Bias != nil {
						v += e.Bias[oc+r]
					}
					if res != nil {
						v += res[i]
					}
					if e.Relu && v < 0 {
						v = 0
					}
					out[i] = v
				}
			}
		}
	}
}

// convTiles computes the tiles of the block pairs described by pairs for
// the first panels channel panels; see convTilesGeneric.
func convTiles(k int, a []float32, offs []int32, src, y []float32, ldc int, bias, res []float32, pairs []int32, panels int, flags uint64) {
	if len(pairs) == 0 {
		return
	}
	if activeImpl == implGeneric {
		convTilesGeneric(k, a, offs, src, y, ldc, bias, res, pairs, panels, flags)
		return
	}
	convTilesAsm(activeImpl, k, a, offs, src, y, ldc, bias, res, pairs, panels, flags)
}

// convTilesGeneric runs convTileGeneric for every block pair of pairs
// (pairWords values each: src0, src1, dst0, dst1, masks) and every panel p
// < panels: weights a[p*k*8:], bias[p*8:], inputs src[src0:] and
// src[src1:], outputs y[p*8*ldc+dst0:] and y[p*8*ldc+dst1:], residual
// likewise in res.
func convTilesGeneric(k int, a []float32, offs []int32, src, y []float32, ldc int, bias, res []float32, pairs []int32, panels int, flags uint64) {
	for i := 0; i+pairWords <= len(pairs); i += pairWords {
		desc := pairs[i : i+pairWords]
		for p := 0; p < panels; p++ {
			row := p * cmr * ldc
			var bp, r0, r1 []float32
			if flags&convFlagBias != 0 {
				bp = bias[p*cmr:]
			}
			if flags&convFlagResid != 0 {
				r0, r1 = res[row+int(desc[2]):], res[row+int(desc[3]):]
			}
			convTileGeneric(k, a[p*k*cmr:], offs, src[desc[0]:], src[desc[1]:], y[row+int(desc[2]):], y[row+int(desc[3]):], ldc,
				bp, r0, r1, uint64(uint32(desc[4])), flags)
		}
	}
}

// convTileGeneric is the portable direct-convolution tile. For channel
// r < 8 and output i < 16 of block j (0 or 1) whose bit i of
// masks>>(16*j) is set, with b, c and res the block's b0/b1, c0/c1, r0/r1:
//
//	t = sum over taps e < k, in order, of a[e*8+r] * b[offs[e]+i]
//	if flags&convFlagBias: t += bias[r]
//	if flags&convFlagResid: t += res[r*ldc+i]
//	if flags&convFlagRelu: t = max(t, 0)
//	c[r*ldc+i] = t
//
// Outputs whose mask bit is clear are neither read nor written.
func convTileGeneric(k int, a []float32, offs []int32, b0, b1, c0, c1 []float32, ldc int, bias, r0, r1 []float32, masks, flags uint64) {
	a = a[:k*cmr]
	offs = offs[:k]
	for j := 0; j < cblk; j++ {
		b, c, res := b0, c0, r0
		if j == 1 {
			b, c, res = b1, c1, r1
		}
		m := masks >> (16 * j) & 0xffff
		for i := 0; i < cbw; i++ {
			if m>>i&1 == 0 {
				continue
			}
			var acc [cmr]float32
			for e, off := range offs {
				v := b[int(off)+i]
				ae := (*[cmr]float32)(a[e*cmr:])
				for r := range acc {
					acc[r] += ae[r] * v
				}
			}
			for r, t := range acc {
				if flags&convFlagBias != 0 {
					t += bias[r]
				}
				if flags&convFlagResid != 0 {
					t += res[r*ldc+i]
				}
				if flags&convFlagRelu != 0 && t < 0 {
					t = 0
				}
				c[r*ldc+i] = t
			}
		}
	}
}
