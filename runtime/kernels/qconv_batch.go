package kernels

import (
	"encoding/binary"
	"fmt"
	"math"
	"sync"
	"unsafe"

	"github.com/compressml/compress/internal/parallel"
)

// Batched int8 convolution for small images.
//
// QConv2D convolves one image per call and rebuilds its columns with
// general im2col code; on the small images of a compact CNN (28x28 and
// less, 16-64 channels) the packing, the per-row output stage and the
// per-call set-up cost more than the multiply-adds. QConvBatch runs a
// whole batch through one prepared convolution:
//
//   - The input image is copied once into "phase planes" of zero-point
//     padded channels (with stride 1, rows share their left and right
//     padding): with stride s, phase (py, px) of a channel holds the
//     padded pixels (s*i+py, s*j+px), so that every tap (kh, kw) of a
//     strided convolution reads a contiguous slice of one phase plane
//     (phase ((kh*DH)%s, (kw*DW)%s), offset ((kh*DH)/s)*Wph + (kw*DW)/s).
//     The product then computes "wide" output rows of Wph columns (the
//     phase plane's width); the Wph-OutW extra columns of each row are
//     dropped afterwards. Only the phases some tap reads are built.
//   - Each group of four im2col rows is interleaved straight from those
//     slices into the uint8 panel layout (no column matrix).
//   - The tiles of the weights (the packed row operand, as QConv2D) times
//     the panels accumulate the whole K at once (small K), and the output
//     stage runs once per image on all output channels.
//   - The images are split between the threads; each worker has its own
//     scratch, reused from call to call (no allocation once warm).
//
// With AVX-512 (F and BW) the row copies, the even/odd split of stride 2,
// the panel interleave (without the column sums QGemm needs, as the weight
// zero point is 0) and a one-pass output stage (requantisation straight
// from the wide accumulator rows to the output rows, and the residual Add)
// run in qconv_amd64.s; otherwise portable Go code and the QGemm stage do
// the same work, with bit-identical results.
//
// An optional residual input fuses a quantised Add after the convolution
// (the QDQ pattern Conv -> Q -> DQ -> Add(DQ(r)) -> Relu -> Q of a
// residual block): the convolution is requantised to its uint8 output q,
// then combined with the residual value r by the same float32 operations
// the unfused DequantizeLinear, Add, Relu and QuantizeLinear perform (a
// 65536-entry table of all (q, r) pairs in the portable code), so the
// result equals the unfused chain's exactly.
//
// Weight zero points must be zero (symmetric weights, the convention of
// compress quantize and onnxruntime's default). The integer results equal
// QConv2D's bit for bit.

// QConvBatch is a prepared int8 2-D convolution of one group: the shape of
// one image and the packed weights (M x C*KH*KW, zero point 0).
type QConvBatch struct {
	s        Conv2DShape
	pa       *QPackedA
	oh, ow   int
	hph, wph int   // phase plane size
	pstride  int   // bytes from one phase plane to the next: hph*wph plus slack
	phases   []int // phase index per (py*s + px), -1 when unused
	nph      int   // phases used
	nw       int   // product columns per image: oh*wph
	np       int   // panels per image
	srcLen   int   // bytes of the phase planes plus read margin
	rowOff   []int // source offset of each padded im2col row
	rowDst   []int // per input row: offset of its phase row within its phase plane
	rowPy    []int // per input row: its phase row
	colIw0   []int // per phase column px (stride > 1): first input column
	colJ0    []int // and its column in the phase plane
	zeros    []int32
	pool     sync.Pool
	kern     *qKernels // the implementation (tests set it)
}

// qconvWork is one worker's scratch.
type qconvWork struct {
	src    []byte
	panels []byte
	acc    []int32
	tmp8   []byte
	tmpF   []float32
	colsum []int32
	r      []int32
	srcZX  int // zero point the padding of src holds, -1 before the first fill
}

// NewQConvBatch prepares the convolution of shape s (one group) with the
// packed weights pa.
func NewQConvBatch(s Conv2DShape, pa *QPackedA) (*QConvBatch, error) {
	const op = "NewQConvBatch"
	if err := s.Validate(); err != nil {
		return nil, fmt.Errorf("kernels: %s: %w", op, err)
	}
	if pa == nil {
		return nil, fmt.Errorf("kernels: %s: packed weights are nil", op)
	}
	k := s.C * s.KH * s.KW
	if pa.K != k {
		return nil, fmt.Errorf("kernels: %s: packed weights have K=%d, the convolution needs C*KH*KW = %d", op, pa.K, k)
	}
	b := &QConvBatch{s: s, pa: pa, oh: s.OutH(), ow: s.OutW(), kern: qDefault}
	sh, sw := s.StrideH, s.StrideW
	hp, wp := s.H+s.PadTop+s.PadBottom, s.W+s.PadLeft+s.PadRight
	if sw == 1 {
		// Consecutive rows share their horizontal padding: a tap reading
		// past the end of a padded row lands in the next row's left
		// padding, which holds the zero point too. Fewer wide columns are
		// computed and dropped.
		wp = max(s.W+max(s.PadLeft, s.PadRight), b.ow)
	}
	b.hph, b.wph = qCeilDiv(hp, sh), qCeilDiv(wp, sw)
	b.phases = make([]int, sh*sw)
	for i := range b.phases {
		b.phases[i] = -1
	}
	for kh := 0; kh < s.KH; kh++ {
		for kw := 0; kw < s.KW; kw++ {
			ph := (kh*s.DilationH%sh)*sw + kw*s.DilationW%sw
			if b.phases[ph] < 0 {
				b.phases[ph] = b.nph
				b.nph++
			}
		}
	}
	b.nw = b.oh * b.wph
	b.np = qCeilDiv(b.nw, qNR)
	if b.np%4 == 3 {
		// One more (discarded) panel lets the 4-panel tile kernel do the
		// work of three single-panel calls.
		b.np++
	}
	// The AVX-512 fill writes whole vectors of 64 bytes per row, the row
	// completed with the zero point: the slack after each plane takes what
	// passes its end.
	b.pstride = b.hph*b.wph + 64
	plane := b.pstride
	b.rowOff = make([]int, pa.kp)
	maxOff := 0
	for kk := 0; kk < k; kk++ {
		c, kh, kw := kk/(s.KH*s.KW), kk/s.KW%s.KH, kk%s.KW
		dy, dx := kh*s.DilationH, kw*s.DilationW
		ph := b.phases[(dy%sh)*sw+dx%sw]
		b.rowOff[kk] = (c*b.nph+ph)*plane + (dy/sh)*b.wph + dx/sw
		maxOff = max(maxOff, b.rowOff[kk])
	}
	b.rowDst, b.rowPy = make([]int, s.H), make([]int, s.H)
	for ih := 0; ih < s.H; ih++ {
		r := ih + s.PadTop
		b.rowPy[ih] = r % sh
		b.rowDst[ih] = (r / sh) * b.wph
	}
	b.colIw0, b.colJ0 = make([]int, sw), make([]int, sw)
	for px := 0; px < sw; px++ {
		iw0 := ((px-s.PadLeft)%sw + sw) % sw
		b.colIw0[px], b.colJ0[px] = iw0, (iw0+s.PadLeft)/sw
	}
	// The rows of the K padding meet zero weights: any bytes do.
	b.srcLen = max(maxOff+b.np*qNR, s.C*b.nph*plane) + 64
	b.zeros = make([]int32, b.np*qNR)
	b.pool.New = func() any { return &qconvWork{srcZX: -1} }
	return b, nil
}

// OutH and OutW return the output size of one image.
func (b *QConvBatch) OutH() int { return b.oh }

// OutW returns the output width of one image.
func (b *QConvBatch) OutW() int { return b.ow }

// QConvResidual is the fused residual Add of QConvBatch.Run: R holds the
// uint8 residual (laid out like the output); for the convolution's
// requantised uint8 value q and the residual value r, each output value is
// U8.Value(q, r) (uint8 output) or F32.Value(q, r) (float32 output).
// Exactly one of U8 and F32 is set.
type QConvResidual struct {
	R   []uint8
	U8  *QResidualU8
	F32 *QResidualF32
}

// QResidualF32 is a residual Add with a float32 output: QResidualU8
// without the final quantisation, t = float32(q-ZQ)*SQ + float32(r-ZR)*SR,
// then max(t, 0) with Relu.
type QResidualF32 struct {
	p      qResParams
	tq, tr [256]float32
}

// NewQResidualF32 returns the float residual Add with the given parameters.
func NewQResidualF32(zq int32, sq float32, zr int32, sr float32, relu bool) (*QResidualF32, error) {
	u, err := NewQResidualU8(zq, sq, zr, sr, 1, 0, relu)
	if err != nil {
		return nil, err
	}
	f := &QResidualF32{p: u.p}
	for i := range f.tq {
		f.tq[i] = float32(float32(int32(i)-zq) * sq)
		f.tr[i] = float32(float32(int32(i)-zr) * sr)
	}
	return f, nil
}

// Value returns the output for the convolution value q and the residual
// value x.
func (f *QResidualF32) Value(q, x uint8) float32 {
	t := float32(f.tq[q] + f.tr[x])
	if t < f.p.floor {
		t = f.p.floor
	}
	return t
}

// QResidualU8 is a requantised residual Add: for uint8 q and r (zero
// points ZQ and ZR, scales SQ and SR) it computes, with every operation
// rounded to float32 as DequantizeLinear, Add, Relu and QuantizeLinear do
// one after the other,
//
//	t = float32(q-ZQ)*SQ + float32(r-ZR)*SR;  with Relu t = max(t, 0)
//	out = clamp(roundHalfEven(t/SZ), -ZZ, 255-ZZ) + ZZ
type QResidualU8 struct {
	p     qResParams
	table *[65536]uint8
}

// qResParams is the parameter block of qResidualU8AVX512 (keep the layout
// in sync with qconv_amd64.s).
type qResParams struct {
	zq     int32
	sq     float32
	zr     int32
	sr     float32
	sz     float32
	lo, hi float32 // -zz and 255-zz
	zz     int32
	floor  float32 // 0 with Relu, -Inf without
}

// NewQResidualU8 returns the residual Add with the given parameters.
func NewQResidualU8(zq int32, sq float32, zr int32, sr float32, sz float32, zz int32, relu bool) (*QResidualU8, error) {
	for _, z := range []int32{zq, zr, zz} {
		if z < 0 || z > 255 {
			return nil, fmt.Errorf("kernels: residual Add: zero point %d is outside [0, 255]", z)
		}
	}
	for _, v := range []float32{sq, sr, sz} {
		if v == 0 || v != v || math.IsInf(float64(v), 0) {
			return nil, fmt.Errorf("kernels: residual Add: scale %g must be finite and non-zero", v)
		}
	}
	r := &QResidualU8{p: qResParams{zq: zq, sq: sq, zr: zr, sr: sr, sz: sz, lo: float32(-zz), hi: float32(255 - zz), zz: zz,
		floor: float32(math.Inf(-1))}, table: new([65536]uint8)}
	if relu {
		r.p.floor = 0
	}
	for i := range r.table {
		r.table[i] = r.value(uint8(i>>8), uint8(i))
	}
	return r, nil
}

// value computes one output value.
func (r *QResidualU8) value(q, x uint8) uint8 {
	p := &r.p
	a := float32(float32(int32(q)-p.zq) * p.sq)
	b := float32(float32(int32(x)-p.zr) * p.sr)
	t := float32(a + b)
	if t < p.floor {
		t = p.floor
	}
	v := float32(t / p.sz)
	if !(v >= p.lo) {
		v = p.lo
	} else if v > p.hi {
		v = p.hi
	}
	const magic = 12582912 // 1.5 * 2^23: round half to even
	return uint8(int32(float32(v+magic)-magic) + p.zz)
}

// qOutParams is the per-channel parameter block of qConvOutAVX512 (keep
// the layout in sync with qconv_amd64.s).
type qOutParams struct {
	rterm           int32
	scale           float32
	zo, qmin, qmax  int32
	clamp, negClamp float32
}

// Value returns the output for the convolution value q and the residual
// value x.
func (r *QResidualU8) Value(q, x uint8) uint8 { return r.table[uint16(q)<<8|uint16(x)] }

// Run convolves n NCHW images x (n*C*H*W uint8 values, zero point zx) and
// writes the n outputs (M x OutH x OutW each) through the output stage o
// (o.LDC is ignored; the channel parameters are indexed by output
// channel). With res, o must requantise to uint8 (the convolution's value
// q) and the output is written to res's table type instead: o.U8 for
// Table8, o.F32 for TableF.
func (b *QConvBatch) Run(n int, x []uint8, zx int32, o *QOutput, res *QConvResidual, threads int) error {
	const op = "QConvBatch"
	s := &b.s
	m := b.pa.M
	if n <= 0 {
		return fmt.Errorf("kernels: %s: batch must be positive, got %d", op, n)
	}
	if len(x) < n*s.C*s.H*s.W {
		return fmt.Errorf("kernels: %s: input has %d values, need %d images of %dx%dx%d", op, len(x), n, s.C, s.H, s.W)
	}
	if zx < 0 || zx > 255 {
		return fmt.Errorf("kernels: %s: input zero point %d is outside [0, 255]", op, zx)
	}
	outImg := m * b.oh * b.ow
	var ep qEpi
	if res != nil {
		if o.Kind != QOutUint8 {
			return fmt.Errorf("kernels: %s: a fused residual needs the uint8 output stage, not %s", op, o.Kind)
		}
		if len(res.R) < n*outImg {
			return fmt.Errorf("kernels: %s: residual has %d values, need %d", op, len(res.R), n*outImg)
		}
		switch {
		case res.U8 != nil && res.F32 == nil:
			if len(o.U8) < n*outImg {
				return fmt.Errorf("kernels: %s: output has %d values, need %d", op, len(o.U8), n*outImg)
			}
		case res.U8 == nil && res.F32 != nil:
			if len(o.F32) < n*outImg {
				return fmt.Errorf("kernels: %s: output has %d values, need %d", op, len(o.F32), n*outImg)
			}
		default:
			return fmt.Errorf("kernels: %s: the residual needs exactly one of U8 and F32", op)
		}
		// The stage's own buffer is never written (the values go through
		// the table); resolve it against the residual, of the right size.
		chk := *o
		chk.U8, chk.LDC = res.R, 0
		if err := chk.resolve(op, m, n*b.oh*b.ow, true, &ep); err != nil {
			return err
		}
	} else {
		chk := *o
		chk.LDC = 0
		if err := chk.resolve(op, m, n*b.oh*b.ow, true, &ep); err != nil {
			return err
		}
	}
	workers := max(1, min(threads, n))
	run := func(w int) {
		wk := b.pool.Get().(*qconvWork)
		defer b.pool.Put(wk)
		for img := w * n / workers; img < (w+1)*n/workers; img++ {
			b.image(wk, x[img*s.C*s.H*s.W:(img+1)*s.C*s.H*s.W], uint8(zx), o, &ep, res, img)
		}
	}
	if workers == 1 {
		run(0)
		return nil
	}
	parallel.For(workers, workers, 1, func(lo, hi int) {
		for w := lo; w < hi; w++ {
			run(w)
		}
	})
	return nil
}

// image convolves one image with worker scratch wk.
func (b *QConvBatch) image(wk *qconvWork, x []uint8, zx uint8, o *QOutput, ep *qEpi, res *QConvResidual, img int) {
	kern := b.kern
	pa := b.pa
	m, kp := pa.M, pa.kp
	ldc := b.np * qNR
	mp := qRoundUp(m, qMR)
	if len(wk.src) != b.srcLen || wk.srcZX != int(zx) {
		// The padding and the margin never change: fill them once.
		wk.src = qGrowBytes(wk.src, b.srcLen)
		qFill(wk.src, zx)
		wk.srcZX = int(zx)
	}
	wk.panels = qGrowBytes(wk.panels, b.np*kp*qNR)
	wk.acc = qGrowInt32(wk.acc, mp*ldc)
	wk.colsum = qGrowInt32(wk.colsum, ldc)
	wk.r = qGrowInt32(wk.r, m)
	b.fillSource(wk.src, x, zx)

	// Panels: k group g of panel q at q*kp*16 + g*64.
	if qconvAVX512 {
		_, _ = wk.src[b.srcLen-1], wk.panels[(b.np-1)*kp*qNR+kp*4*qNR/4-1]
		for g := 0; g < kp/4; g++ {
			r := b.rowOff[4*g : 4*g+4]
			qInterleaveAVX512(b.np, &wk.src[r[0]], &wk.src[r[1]], &wk.src[r[2]], &wk.src[r[3]], &wk.panels[g*qGroup], kp*qNR)
		}
	} else {
		for g := 0; g < kp/4; g++ {
			r := b.rowOff[4*g : 4*g+4]
			kern.interleave(b.np, wk.src[r[0]:], wk.src[r[1]:], wk.src[r[2]:], wk.src[r[3]:], wk.panels[g*qGroup:], kp*qNR, wk.colsum)
		}
	}

	// Tiles: all output channels, the whole K.
	kg, mt := kp/4, mp/qMR
	pstride := kp * qNR
	tile, tile4 := kern.tileA, kern.tileA4
	if !pa.Exact && !kern.exactAll {
		tile, tile4 = kern.tileAWide, nil
	}
	jr := 0
	if tile4 != nil {
		for ; jr+4*qNR <= ldc; jr += 4 * qNR {
			tile4(kg, mt, pa.data, kp, wk.panels[(jr/qNR)*pstride:], pstride, wk.acc[jr:], ldc, false)
		}
	}
	for ; jr < ldc; jr += qNR {
		tile(kg, mt, pa.data, kp, wk.panels[(jr/qNR)*pstride:], wk.acc[jr:], ldc, false)
	}

	// Output stage: row terms -zx*rowsum(W) + bias.
	for i := 0; i < m; i++ {
		v := -int32(zx) * pa.rowSum[i]
		if ep.biasI32 != nil {
			v += ep.biasI32[i]
		}
		wk.r[i] = v
	}
	ohw := b.oh * b.ow
	base := img * m * ohw
	if qconvAVX512 && b.ow <= 64 && ep.kind == QOutUint8 && ep.bias == nil {
		// One pass from the accumulators to the output rows (and the
		// residual Add).
		_ = wk.acc[(m-1)*ldc+(b.oh-1)*b.wph+b.ow-1]
		p := qOutParams{zo: ep.zo, qmin: ep.qmin, qmax: ep.qmax, clamp: qClampF, negClamp: -qClampF}
		mode, rp := 0, (*qResParams)(nil)
		var r []uint8
		switch {
		case res != nil && res.U8 != nil:
			mode, rp, r = 1, &res.U8.p, res.R[base:base+m*ohw]
			_ = o.U8[base+m*ohw-1]
		case res != nil:
			mode, rp, r = 2, &res.F32.p, res.R[base:base+m*ohw]
			_ = o.F32[base+m*ohw-1]
		default:
			_ = ep.b8[base+m*ohw-1]
		}
		for i := 0; i < m; i++ {
			p.rterm, p.scale = wk.r[i], ep.scale[0]
			if len(ep.scale) > 1 {
				p.scale = ep.scale[i]
			}
			var out *byte
			var ri *byte
			switch mode {
			case 0:
				out = &ep.b8[base+i*ohw]
			case 1:
				out, ri = &o.U8[base+i*ohw], &r[i*ohw]
			default:
				out, ri = (*byte)(unsafe.Pointer(&o.F32[base+i*ohw])), &r[i*ohw]
			}
			qConvOutAVX512(b.oh, b.ow, &wk.acc[i*ldc], b.wph, &p, ri, rp, out, mode)
		}
		return
	}
	direct := res == nil && b.wph == b.ow
	// Staged columns per channel: the wide rows, rounded up to whole
	// vectors of 8 when they go to a temporary buffer.
	ns := b.nw
	if !direct {
		ns = min(qRoundUp(b.nw, 8), ldc)
	}
	a := qStageArgs{rows: m, n: ns, acc: wk.acc[:(m-1)*ldc+ns], ldacc: ldc, c: b.zeros[:ns], r: wk.r[:m],
		zo: ep.zo, qmin: ep.qmin, qmax: ep.qmax, relu: ep.relu, kind: ep.kind}
	if len(ep.scale) == 1 {
		a.scale = ep.scale
	} else if ep.scale != nil {
		a.scale, a.scaleStep = ep.scale, 1
	}
	if ep.bias != nil {
		a.bias, a.biasStep = ep.bias, 1
	}
	if direct {
		// Wide rows are output rows: write the image's planes in place.
		a.ldo = ohw
		switch ep.kind {
		case QOutFloat32:
			a.f32 = ep.f32[base : base+m*ohw]
		case QOutInt32:
			a.i32 = ep.i32[base : base+m*ohw]
		default:
			a.b8 = ep.b8[base : base+m*ohw]
		}
		kern.stage(a)
		return
	}
	a.ldo = ns
	switch ep.kind {
	case QOutFloat32:
		wk.tmpF = qGrowF32(wk.tmpF, m*ns)
		a.f32 = wk.tmpF
	case QOutInt32:
		// Not produced by the runtime's fused ops; keep the generic route.
		tmp := make([]int32, m*ns)
		a.i32 = tmp
		kern.stage(a)
		for i := 0; i < m; i++ {
			for y := 0; y < b.oh; y++ {
				copy(ep.i32[base+(i*b.oh+y)*b.ow:base+(i*b.oh+y+1)*b.ow], tmp[i*ns+y*b.wph:])
			}
		}
		return
	default:
		wk.tmp8 = qGrowBytes(wk.tmp8, m*ns)
		a.b8 = wk.tmp8
	}
	kern.stage(a)
	switch {
	case res != nil && res.U8 != nil:
		qconvResidual8(wk.tmp8, ns, b.wph, m, b.oh, b.ow, res.R[base:base+m*ohw], res.U8, o.U8[base:base+m*ohw])
	case res != nil:
		qconvResidualF(wk.tmp8, ns, b.wph, m, b.oh, b.ow, res.R[base:base+m*ohw], res.F32, o.F32[base:base+m*ohw])
	case ep.kind == QOutFloat32:
		for i := 0; i < m; i++ {
			for y := 0; y < b.oh; y++ {
				copy(ep.f32[base+(i*b.oh+y)*b.ow:base+(i*b.oh+y+1)*b.ow], wk.tmpF[i*ns+y*b.wph:])
			}
		}
	default:
		qconvCompact8(wk.tmp8, ns, b.wph, m, b.oh, b.ow, ep.b8[base:base+m*ohw])
	}
}

func qGrowF32(b []float32, n int) []float32 {
	if cap(b) < n {
		return make([]float32, n, n+n/8)
	}
	return b[:n]
}

// qconvCompact8 copies the ow first columns of each wide row (wph bytes,
// oh rows per channel, channel stride nw) to the output planes.
func qconvCompact8(tmp []byte, nw, wph, m, oh, ow int, out []byte) {
	for i := 0; i < m; i++ {
		src := tmp[i*nw : i*nw+nw]
		dst := out[i*oh*ow : (i+1)*oh*ow]
		for y := 0; y < oh; y++ {
			qCopyRow(dst[y*ow:(y+1)*ow], src[y*wph:y*wph+ow])
		}
	}
}

// qconvResidual8 writes tab[q<<8|r] for the convolution values q (wide
// rows, as qconvCompact8) and the residual r (output layout).
func qconvResidual8(tmp []byte, nw, wph, m, oh, ow int, r []uint8, res *QResidualU8, out []uint8) {
	if qconvAVX512 && ow <= 64 {
		_, _ = tmp[(m-1)*nw+(oh-1)*wph+ow-1], r[m*oh*ow-1]
		_ = out[m*oh*ow-1]
		for i := 0; i < m; i++ {
			qResidualU8AVX512(oh, ow, &tmp[i*nw], wph, &r[i*oh*ow], &out[i*oh*ow], &res.p)
		}
		return
	}
	tab := res.table
	for i := 0; i < m; i++ {
		src := tmp[i*nw : i*nw+nw]
		for y := 0; y < oh; y++ {
			q := src[y*wph : y*wph+ow]
			o := (i*oh + y) * ow
			rr := r[o : o+ow]
			d := out[o : o+ow]
			for x, v := range q {
				d[x] = tab[uint16(v)<<8|uint16(rr[x])]
			}
		}
	}
}

// qconvResidualF is qconvResidual8 with a float32 output.
func qconvResidualF(tmp []byte, nw, wph, m, oh, ow int, r []uint8, res *QResidualF32, out []float32) {
	if qconvAVX512 && ow <= 64 {
		_, _ = tmp[(m-1)*nw+(oh-1)*wph+ow-1], r[m*oh*ow-1]
		_ = out[m*oh*ow-1]
		for i := 0; i < m; i++ {
			qResidualF32AVX512(oh, ow, &tmp[i*nw], wph, &r[i*oh*ow], &out[i*oh*ow], &res.p)
		}
		return
	}
	for i := 0; i < m; i++ {
		src := tmp[i*nw : i*nw+nw]
		for y := 0; y < oh; y++ {
			q := src[y*wph : y*wph+ow]
			o := (i*oh + y) * ow
			rr := r[o : o+ow]
			d := out[o : o+ow]
			for x, v := range q {
				d[x] = res.Value(v, rr[x])
			}
		}
	}
}

// fillSource copies image x into the phase planes of src, whose padding
// already holds the zero point.
func (b *QConvBatch) fillSource(src []byte, x []uint8, zx uint8) {
	s := &b.s
	sw := s.StrideW
	plane := b.pstride
	if qconvAVX512 && s.W <= 64 && (sw == 1 || sw == 2) && s.StrideH <= 2 {
		b.fillSourceAVX512(src, x, zx)
		return
	}
	for c := 0; c < s.C; c++ {
		xc := x[c*s.H*s.W : (c+1)*s.H*s.W]
		planes := src[c*b.nph*plane:]
		for ih := 0; ih < s.H; ih++ {
			row := xc[ih*s.W : (ih+1)*s.W]
			py, off := b.rowPy[ih], b.rowDst[ih]
			if sw == 1 {
				if ph := b.phases[py]; ph >= 0 {
					qCopyRow(planes[ph*plane+off+s.PadLeft:ph*plane+off+s.PadLeft+s.W], row)
				}
				continue
			}
			if sw == 2 {
				// Both column phases from one pass over the row.
				var d [2][]byte
				for px := 0; px < 2; px++ {
					if ph, iw0 := b.phases[py*2+px], b.colIw0[px]; ph >= 0 && iw0 < s.W {
						o := ph*plane + off + b.colJ0[px]
						d[iw0] = planes[o : o+(s.W-iw0+1)/2]
					}
				}
				qUnzip2(xc[ih*s.W:], s.W, d[0], d[1])
				continue
			}
			for px := 0; px < sw; px++ {
				ph, iw0 := b.phases[py*sw+px], b.colIw0[px]
				if ph < 0 || iw0 >= s.W {
					continue
				}
				d := planes[ph*plane+off+b.colJ0[px]:]
				j := 0
				for iw := iw0; iw < s.W; iw += sw {
					d[j] = row[iw]
					j++
				}
			}
		}
	}
}

// fillSourceAVX512 is fillSource with the AVX-512 row helpers (W <= 64,
// strides 1 or 2).
func (b *QConvBatch) fillSourceAVX512(src []byte, x []uint8, zx uint8) {
	s := &b.s
	sh, sw := s.StrideH, s.StrideW
	plane := b.pstride
	_, _ = x[s.C*s.H*s.W-1], src[b.srcLen-1]
	for c := 0; c < s.C; c++ {
		planes := c * b.nph * plane
		// Input rows ih = py0, py0+sh, ... go to phase row py.
		for py := 0; py < sh; py++ {
			ih0 := ((py-s.PadTop)%sh + sh) % sh
			if ih0 >= s.H {
				continue
			}
			rows := (s.H - ih0 + sh - 1) / sh
			xr := &x[c*s.H*s.W+ih0*s.W]
			off := b.rowDst[ih0]
			if sw == 1 {
				if ph := b.phases[py]; ph >= 0 {
					qCopyRowsAVX512(rows, s.W, xr, sh*s.W, &src[planes+ph*plane+off+s.PadLeft], b.wph, int(zx))
				}
				continue
			}
			var d [2]*byte
			any := false
			for px := 0; px < 2; px++ {
				if ph, iw0 := b.phases[py*2+px], b.colIw0[px]; ph >= 0 && iw0 < s.W {
					d[iw0] = &src[planes+ph*plane+off+b.colJ0[px]]
					any = true
				}
			}
			if any {
				qUnzip2RowsAVX512(rows, s.W, xr, sh*s.W, d[0], d[1], b.wph, int(zx))
			}
		}
	}
}

// qUnzip2 writes the even bytes src[0], src[2], ... of the first n bytes
// of src to even ((n+1)/2 values) and the odd ones to odd (n/2 values),
// each when not nil. It may read src beyond n (within len(src)).
func qUnzip2(src []byte, n int, even, odd []byte) {
	ne, no := (n+1)/2, n/2
	if even != nil {
		even = even[:ne]
	}
	if odd != nil {
		odd = odd[:no]
	}
	j := 0
	for ; j+8 <= no && 2*j+16 <= len(src); j += 8 {
		x0 := binary.LittleEndian.Uint64(src[2*j:])
		x1 := binary.LittleEndian.Uint64(src[2*j+8:])
		if even != nil {
			binary.LittleEndian.PutUint64(even[j:], qPack4(x0)|qPack4(x1)<<32)
		}
		if odd != nil {
			binary.LittleEndian.PutUint64(odd[j:], qPack4(x0>>8)|qPack4(x1>>8)<<32)
		}
	}
	for ; j+4 <= no && 2*j+8 <= len(src); j += 4 {
		x0 := binary.LittleEndian.Uint64(src[2*j:])
		if even != nil {
			binary.LittleEndian.PutUint32(even[j:], uint32(qPack4(x0)))
		}
		if odd != nil {
			binary.LittleEndian.PutUint32(odd[j:], uint32(qPack4(x0>>8)))
		}
	}
	for ; j < ne; j++ {
		if even != nil {
			even[j] = src[2*j]
		}
		if odd != nil && j < no {
			odd[j] = src[2*j+1]
		}
	}
}

// qPack4 returns bytes 0, 2, 4 and 6 of x in its low 4 bytes.
func qPack4(x uint64) uint64 {
	x &= 0x00FF00FF00FF00FF
	x = (x | x>>8) & 0x0000FFFF0000FFFF
	return (x | x>>16) & 0xFFFFFFFF
}

// qCopyRow copies src to dst (same length) with word moves: a short row
// costs less than a call of memmove.
func qCopyRow(dst, src []byte) {
	n := len(dst)
	src = src[:n]
	switch {
	case n >= 8 && n <= 64:
		for o := 0; o < n-8; o += 8 {
			binary.LittleEndian.PutUint64(dst[o:], binary.LittleEndian.Uint64(src[o:]))
		}
		binary.LittleEndian.PutUint64(dst[n-8:], binary.LittleEndian.Uint64(src[n-8:]))
	case n >= 4 && n < 8:
		binary.LittleEndian.PutUint32(dst, binary.LittleEndian.Uint32(src))
		binary.LittleEndian.PutUint32(dst[n-4:], binary.LittleEndian.Uint32(src[n-4:]))
	default:
		copy(dst, src)
	}
}

// qQuantParams is the parameter block of qQuantizeAVX512 (keep the layout
// in sync with qconv_amd64.s).
type qQuantParams struct {
	s, lo, hi float32
	zp        int32
}

// QuantizeFloat32 quantizes x into y (QuantizeLinear with one scale s and
// zero point zp): y[i] = round_half_even(clamp(x[i]/s, lo, hi)) + zp, with
// NaN giving lo, where lo and hi are T's range minus zp (or narrower), so
// that every result fits. It reports false, writing nothing, where no
// vector kernel runs (no AVX-512, or len(y) < len(x)); the caller then
// runs its own loop, which gives the same values.
func QuantizeFloat32[T int8 | uint8](y []T, x []float32, s, lo, hi float32, zp int32) bool {
	if !qconvAVX512 || len(x) == 0 || len(y) < len(x) {
		return false
	}
	p := qQuantParams{s: s, lo: lo, hi: hi, zp: zp}
	signed := 0
	if signBias[T]() != 0 {
		signed = 1
	}
	qQuantizeAVX512(len(x), &x[0], &asBytes(y)[0], &p, signed)
	return true
}
