package runtime

import (
	"fmt"
	"math"
	goruntime "runtime"

	"github.com/compressml/compress/internal/parallel"
	"github.com/compressml/compress/runtime/kernels"
)

// This file adapts the quantised ops to the int8 kernels of package
// kernels (QGemm with weights packed once, QConv2D, QDepthwiseConv2D):
// the ops describe a product with a qmatB (right operand), a qStage
// (output stage) and a qDst; these helpers translate them to the kernels'
// QOutput and report whether the fast path applies. Where it does not
// (per-row zero points, weights known only at run time, 3-D convolutions)
// the reference loops of ops_quant_gemm.go and ops_quant_conv.go run
// instead; both give the same integers.

// kernelStage translates st for a product writing rows x cols at element
// off of t with leading dimension ldc, channel parameters [ch0, ch0+nch).
// The kernels apply ReLU but not a general clamp; for a fused Clip, post
// holds the clamp to apply to the written values afterwards.
func (st *qStage) kernelStage(t *Tensor, off, ldc, ch0, nch int) (o kernels.QOutput, post *qClamp) {
	o.LDC = ldc
	if st.bias != nil {
		o.BiasI32 = st.bias[ch0 : ch0+nch]
	}
	if st.scale != nil {
		o.Scale = st.scale[ch0 : ch0+nch]
	}
	if st.fbias != nil {
		o.Bias = st.fbias[ch0 : ch0+nch]
	}
	switch st.kind {
	case qoutInt32:
		o.Kind, o.I32 = kernels.QOutInt32, t.I32[off:]
	case qoutFloat:
		o.Kind, o.F32 = kernels.QOutFloat32, t.F32[off:]
		inf := float32(math.Inf(1))
		switch {
		case st.fLo == -inf && st.fHi == inf:
		case st.fLo == 0 && st.fHi == inf:
			o.Relu = true
		default:
			post = &qClamp{flo: st.fLo, fhi: st.fHi}
		}
	case qoutQuant:
		o.ZeroPoint = st.zy
		if st.outDT == Uint8 {
			o.Kind, o.U8 = kernels.QOutUint8, t.U8[off:]
		} else {
			o.Kind, o.I8 = kernels.QOutInt8, t.I8[off:]
		}
		tlo, thi := qRange(st.outDT)
		lo, hi := int32(st.lo)+st.zy, int32(st.hi)+st.zy
		switch {
		case lo == tlo && hi == thi:
		case lo == st.zy && hi == thi:
			o.Relu = true
		default:
			post = &qClamp{lo: lo, hi: hi}
		}
	}
	return o, post
}

// qClamp is a clamp the kernels' output stage cannot apply (a fused Clip):
// on quantised values [lo, hi], on float values [flo, fhi].
type qClamp struct {
	lo, hi   int32
	flo, fhi float32
}

// apply clamps rows x cols values of t starting at off with leading
// dimension ldc.
func (c *qClamp) apply(t *Tensor, off, rows, cols, ldc int) {
	for i := 0; i < rows; i++ {
		o := off + i*ldc
		switch t.DType {
		case Float32:
			for j, v := range t.F32[o : o+cols] {
				t.F32[o+j] = min(max(v, c.flo), c.fhi)
			}
		case Uint8:
			for j, v := range t.U8[o : o+cols] {
				t.U8[o+j] = uint8(min(max(int32(v), c.lo), c.hi))
			}
		case Int8:
			for j, v := range t.I8[o : o+cols] {
				t.I8[o+j] = int8(min(max(int32(v), c.lo), c.hi))
			}
		}
	}
}

// packFast packs q for kernels.QGemm (q.bt is N x K, the transposed
// layout).
func (q *qmatB) packFast() error {
	if q.k == 0 || q.n == 0 {
		return nil
	}
	pb, err := kernels.PackQB(q.k, q.n, q.bt, q.k, true)
	if err != nil {
		return err
	}
	q.fast = pb
	return nil
}

// fastGemm runs the product of qgemm on the kernels when it can: B packed,
// one zero point for all rows, a row-major destination. It reports whether
// it ran.
func fastGemm(m int, a []uint8, lda int, za int32, rowZA []int32, b *qmatB, st *qStage, d qDst, threads int) (bool, error) {
	if b.fast == nil || rowZA != nil || d.trans || m == 0 {
		return false, nil
	}
	o, post := st.kernelStage(d.t, d.off, d.ldc, 0, b.n)
	if err := kernels.QGemm(m, a, lda, za, b.fast, b.zb, &o, threads); err != nil {
		return true, err
	}
	if post != nil {
		post.apply(d.t, d.off, m, b.n, d.ldc)
	}
	return true, nil
}

// qconvFast is the kernels' form of a 1-D or 2-D convolution with
// constant weights: per group packed weights (or, depthwise, all weights
// in one slice) with their zero points.
type qconvFast struct {
	shape     kernels.Conv2DShape // one image and one group (depthwise: all channels)
	packed    []*kernels.QPackedA
	zw        [][]int32
	depthwise bool
	dwW       []int8
	dwZW      []int32
	// batch runs whole batches (one group, weight zero points 0): see
	// kernels.QConvBatch.
	batch *kernels.QConvBatch
}

// newQConvFast prepares the kernels' path for k, or returns nil when it
// does not apply.
func newQConvFast(k *qconvKernel) (*qconvFast, error) {
	g := &k.g
	if k.wB == nil || g.in[0] != 1 || g.k[0] != 1 || k.outSize == 0 || k.colRows == 0 {
		return nil, nil
	}
	f := &qconvFast{shape: kernels.Conv2DShape{C: k.cg, H: g.in[1], W: g.in[2], KH: g.k[1], KW: g.k[2],
		PadTop: g.pb[1], PadLeft: g.pb[2], PadBottom: g.pe[1], PadRight: g.pe[2],
		StrideH: g.s[1], StrideW: g.s[2], DilationH: g.d[1], DilationW: g.d[2]}}
	if f.shape.Validate() != nil || f.shape.OutH() != g.out[1] || f.shape.OutW() != g.out[2] {
		return nil, nil
	}
	if k.cg == 1 && k.mg == 1 && k.group > 1 {
		f.depthwise = true
		f.shape.C = k.c
		f.dwW = make([]int8, 0, k.c*k.kSize)
		f.dwZW = make([]int32, 0, k.c)
		for _, q := range k.wB {
			f.dwW = append(f.dwW, q.bt...)
			f.dwZW = append(f.dwZW, q.zb[0])
		}
		return f, nil
	}
	for _, q := range k.wB {
		pa, err := kernels.PackQA(q.n, q.k, q.bt, q.k)
		if err != nil {
			return nil, err
		}
		f.packed = append(f.packed, pa)
		f.zw = append(f.zw, q.zb)
	}
	if k.group == 1 && allZeroI32(f.zw[0]) {
		b, err := kernels.NewQConvBatch(f.shape, f.packed[0])
		if err != nil {
			return nil, err
		}
		f.batch = b
	}
	return f, nil
}

func allZeroI32(v []int32) bool {
	for _, x := range v {
		if x != 0 {
			return false
		}
	}
	return true
}

// runBatch runs the whole batch on f.batch when it applies (uint8 input,
// an output stage the kernels apply completely) and reports whether it
// ran. res, when set, is the fused residual Add.
func (f *qconvFast) runBatch(k *qconvKernel, p *qParams, x []uint8, flip uint8, y *Tensor, res *kernels.QConvResidual, threads int) (bool, error) {
	if f.batch == nil || flip != 0 {
		return false, nil
	}
	t := y
	if res != nil {
		// The stage requantises to the convolution's uint8 values; the
		// table writes y.
		t = &Tensor{DType: Uint8, Shape: y.Shape}
	}
	o, post := p.st.kernelStage(t, 0, 0, 0, k.m)
	if post != nil {
		return false, nil
	}
	if res != nil {
		o.U8, o.F32 = y.U8, y.F32
	}
	if err := f.batch.Run(k.n, x, p.za, &o, res, threads); err != nil {
		return true, fmt.Errorf("int8 convolution: %w", err)
	}
	return true, nil
}

// convSlots bounds the images convolved concurrently.
func convSlots() int { return min(goruntime.NumCPU(), 8) }

// scratch is the workspace bytes the fast path needs: an int8 input image
// moved to uint8, per concurrently convolved image.
func (f *qconvFast) scratch(k *qconvKernel) int {
	if k.xDT == Int8 {
		return convSlots() * k.c * k.inSize
	}
	return 0
}

// run computes the convolution of every image on the kernels. With at
// least as many images as threads, images run concurrently on one thread
// each; otherwise the threads split each product. Either way every output
// element is computed by the same integer operations.
func (f *qconvFast) run(k *qconvKernel, p *qParams, x []uint8, flip uint8, ws []byte, y *Tensor, threads int) error {
	imgIn := k.c * k.inSize
	slots := 1
	if threads > 1 && k.n >= threads {
		slots = min(threads, convSlots())
	}
	if slots == 1 {
		for img := 0; img < k.n; img++ {
			if err := f.image(k, p, x, flip, ws, y, img, threads); err != nil {
				return err
			}
		}
		return nil
	}
	errs := make([]error, slots)
	parallel.For(slots, slots, 1, func(lo, hi int) {
		for s := lo; s < hi; s++ {
			var buf []byte
			if flip != 0 {
				buf = ws[s*imgIn : (s+1)*imgIn]
			}
			for img := s * k.n / slots; img < (s+1)*k.n/slots && errs[s] == nil; img++ {
				errs[s] = f.image(k, p, x, flip, buf, y, img, 1)
			}
		}
	})
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// image convolves image img (buf holds its uint8 copy for int8 input).
func (f *qconvFast) image(k *qconvKernel, p *qParams, x []uint8, flip uint8, buf []byte, y *Tensor, img, threads int) error {
	imgIn := k.c * k.inSize
	xi := x[img*imgIn : (img+1)*imgIn]
	if flip != 0 {
		buf = buf[:imgIn]
		for i, v := range xi {
			buf[i] = v ^ flip
		}
		xi = buf
	}
	if f.depthwise {
		off := img * k.m * k.outSize
		o, post := p.st.kernelStage(y, off, k.outSize, 0, k.m)
		if err := kernels.QDepthwiseConv2D(&f.shape, xi, p.za, f.dwW, f.dwZW, &o, threads); err != nil {
			return fmt.Errorf("int8 depthwise convolution: %w", err)
		}
		if post != nil {
			post.apply(y, off, k.m, k.outSize, k.outSize)
		}
		return nil
	}
	for grp := 0; grp < k.group; grp++ {
		xg := xi[grp*k.cg*k.inSize : (grp+1)*k.cg*k.inSize]
		off := (img*k.m + grp*k.mg) * k.outSize
		o, post := p.st.kernelStage(y, off, k.outSize, grp*k.mg, k.mg)
		if err := kernels.QConv2D(&f.shape, xg, p.za, f.packed[grp], f.zw[grp], &o, threads); err != nil {
			return fmt.Errorf("int8 convolution: %w", err)
		}
		if post != nil {
			post.apply(y, off, k.mg, k.outSize, k.outSize)
		}
	}
	return nil
}
