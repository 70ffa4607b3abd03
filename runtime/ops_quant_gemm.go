package runtime

import (
	"fmt"
	"math"

	"github.com/compressml/compress/internal/parallel"
	"github.com/compressml/compress/runtime/kernels"
)

// This file holds the integer matrix product every quantised matrix op
// runs on, and the ops QLinearMatMul, MatMulInteger, com.microsoft QGemm
// and com.compressml QGemm (the fused op FuseQDQ makes from QDQ
// Gemm/MatMul).
//
// The product is always u8 x s8 -> s32: an int8 left operand is moved to
// uint8 by adding 128 (flipping the top bit) and its zero point with it, a
// uint8 right operand to int8 by subtracting 128, both exact. With the
// zero points za (per tensor or per row) and zb (per column),
//
//	acc[i,j] = sum_k (a[i,k]-za)(b[k,j]-zb[j])
//	         = sum_k a*b - zb[j]*rowsum(a)[i] - za*colsum(b)[j] + K*za*zb[j]
//
// in wrapping int32 arithmetic (exact modulo 2^32, like onnxruntime). An
// output stage then either stores acc, or scales it per column to float32,
// or requantises it to uint8/int8, adding an int32 bias first and clamping
// for a fused ReLU/Clip.

func init() {
	Register(OpSpec{Type: "QLinearMatMul", MinInputs: 8, MaxInputs: 8, Outputs: 1, Compile: compileQLinearMatMul})
	Register(OpSpec{Type: "MatMulInteger", MinInputs: 2, MaxInputs: 4, Outputs: 1, Compile: compileMatMulInteger})
	Register(OpSpec{Type: "QGemm", Domain: "com.microsoft", MinInputs: 5, MaxInputs: 9, Outputs: 1, Compile: compileQGemm})
	Register(OpSpec{Type: "QGemm", Domain: FusedDomain, MinInputs: 5, MaxInputs: 10, Outputs: 1, Compile: compileQGemm})
}

// FusedDomain is the operator domain of the executor-only ops the
// optimisation passes create (FuseQDQ). Graphs containing them are not
// valid ONNX.
const FusedDomain = "com.compressml"

// ---------------------------------------------------------------- right operand

// qmatB is the right operand of the integer product: K x N int8 values
// with a zero point per column, stored column by column (bt[j*k + p] is
// B[p, j]) with their column sums.
type qmatB struct {
	k, n   int
	bt     []int8
	zb     []int32
	colSum []int32
	fast   *kernels.QPackedB // packed for the int8 kernels (constant operands)
}

// setB fills q from B (int8 or uint8, row-major [K x N] or [N x K] when
// transB) and zero points zb (one value or one per column). It reuses q's
// storage when it is large enough.
func (q *qmatB) setB(k, n int, b *Tensor, off int, transB bool, zb *Tensor) {
	q.k, q.n = k, n
	if cap(q.bt) < k*n {
		q.bt = make([]int8, k*n)
	}
	q.bt = q.bt[:k*n]
	if cap(q.zb) < n {
		q.zb, q.colSum = make([]int32, n), make([]int32, n)
	}
	q.zb, q.colSum = q.zb[:n], q.colSum[:n]
	var flip int8
	var src []int8
	if b.DType == Uint8 {
		flip = -128 // u8 -> s8: x ^ 0x80 == x - 128
		src = asI8(b.U8)
	} else {
		src = b.I8
	}
	for j := 0; j < n; j++ {
		col := q.bt[j*k : (j+1)*k]
		var s int32
		for p := range col {
			var v int8
			if transB {
				v = src[off+j*k+p]
			} else {
				v = src[off+p*n+j]
			}
			v ^= flip
			col[p] = v
			s += int32(v)
		}
		q.colSum[j] = s
		z := int32(0)
		if zb != nil && zb.Len() > 0 {
			z = qElem(zb, min(j, zb.Len()-1))
		}
		if b.DType == Uint8 {
			z -= 128
		}
		q.zb[j] = z
	}
}

// ---------------------------------------------------------------- output stage

// qoutKind selects what the output stage writes.
type qoutKind uint8

const (
	qoutInt32 qoutKind = iota // the accumulator
	qoutFloat                 // float32(acc+bias) * scale[j], clamped to [fLo, fHi]
	qoutQuant                 // requantised to uint8/int8
)

// qStage is the output stage of an integer product.
type qStage struct {
	kind     qoutKind
	outDT    DType     // Uint8 or Int8 for qoutQuant
	scale    []float32 // per column (qoutFloat, qoutQuant)
	bias     []int32   // per column, added to the accumulator; nil for none
	fbias    []float32 // per column, added after scaling (qoutFloat); nil for none
	zy       int32     // output zero point
	lo, hi   float32   // saturation bounds minus zy (qoutQuant)
	fLo, fHi float32   // float clamp (qoutFloat)
}

// qDst is where a product's output goes: element (i, j) of the product is
// element off + i*ldc + j of the output tensor, or off + j*ldc + i with
// trans (a convolution's NCHW planes).
type qDst struct {
	t     *Tensor
	off   int
	ldc   int
	trans bool
}

// store writes row i of the product, the accumulators acc[j] for columns
// [j0, j0+len(acc)).
func (st *qStage) store(d qDst, i, j0 int, acc []int32) {
	base, step := d.off+i*d.ldc+j0, 1
	if d.trans {
		base, step = d.off+j0*d.ldc+i, d.ldc
	}
	if st.bias != nil {
		b := st.bias[j0 : j0+len(acc)]
		for j := range acc {
			acc[j] += b[j]
		}
	}
	switch st.kind {
	case qoutInt32:
		y := d.t.I32
		for j, v := range acc {
			y[base+j*step] = v
		}
	case qoutFloat:
		y, sc := d.t.F32, st.scale[j0:j0+len(acc)]
		for j, v := range acc {
			f := float32(v) * sc[j]
			if st.fbias != nil {
				f += st.fbias[j0+j]
			}
			if f < st.fLo {
				f = st.fLo
			} else if f > st.fHi {
				f = st.fHi
			}
			y[base+j*step] = f
		}
	case qoutQuant:
		sc := st.scale[j0 : j0+len(acc)]
		if st.outDT == Uint8 {
			y := d.t.U8
			for j, v := range acc {
				y[base+j*step] = uint8(quantVal(float32(v)*sc[j], st.lo, st.hi, st.zy))
			}
		} else {
			y := d.t.I8
			for j, v := range acc {
				y[base+j*step] = int8(quantVal(float32(v)*sc[j], st.lo, st.hi, st.zy))
			}
		}
	}
}

// ---------------------------------------------------------------- the product

// qgemmBlock is the column block of the reference product.
const qgemmBlock = 64

// qgemm computes the m x b.n product of the uint8 rows a (leading
// dimension lda, zero point za, or rowZA[i] per row when rowZA is non-nil)
// and b through the output stage st into d, splitting rows across threads.
// Every output element is computed by the same integer operations whatever
// the split.
func qgemm(m int, a []uint8, lda int, za int32, rowZA []int32, b *qmatB, st *qStage, d qDst, threads int) error {
	if m == 0 || b.n == 0 {
		return nil
	}
	if ran, err := fastGemm(m, a, lda, za, rowZA, b, st, d, threads); ran {
		return err
	}
	grain := max(1, (1<<16)/max(1, b.n*b.k))
	parallel.For(threads, m, grain, func(lo, hi int) {
		var acc [qgemmBlock]int32
		k := b.k
		for i := lo; i < hi; i++ {
			row := a[i*lda : i*lda+k]
			var rs int32
			for _, v := range row {
				rs += int32(v)
			}
			z := za
			if rowZA != nil {
				z = rowZA[i]
			}
			kz := int32(k) * z
			for j0 := 0; j0 < b.n; j0 += qgemmBlock {
				nb := min(qgemmBlock, b.n-j0)
				for jj := 0; jj < nb; jj++ {
					j := j0 + jj
					dot := dotU8S8(row, b.bt[j*k:(j+1)*k])
					acc[jj] = dot - b.zb[j]*rs - z*b.colSum[j] + kz*b.zb[j]
				}
				st.store(d, i, j0, acc[:nb])
			}
		}
	})
	return nil
}

// dotU8S8 is sum a[p]*b[p] in int32.
func dotU8S8(a []uint8, b []int8) int32 {
	b = b[:len(a)]
	var s0, s1, s2, s3 int32
	p := 0
	for ; p+4 <= len(a); p += 4 {
		s0 += int32(a[p]) * int32(b[p])
		s1 += int32(a[p+1]) * int32(b[p+1])
		s2 += int32(a[p+2]) * int32(b[p+2])
		s3 += int32(a[p+3]) * int32(b[p+3])
	}
	for ; p < len(a); p++ {
		s0 += int32(a[p]) * int32(b[p])
	}
	return s0 + s1 + s2 + s3
}

// ---------------------------------------------------------------- parameters

// qParams are the quantisation parameters of a product, resolved from the
// node's inputs: za (per tensor, or per row for MatMulInteger), the B zero
// points (inside qmatB), and the output stage.
type qParams struct {
	za    int32
	rowZA []int32
	st    qStage
}

// qVecF32 reads a float32 input holding one value or n values into dst.
func qVecF32(t *Tensor, n int, dst []float32) {
	for j := range dst[:n] {
		dst[j] = t.F32[min(j, t.Len()-1)]
	}
}

// checkVecMeta checks that a scale or zero point input holds one value or
// n values (a 1-D tensor).
func checkVecMeta(what string, m ValueMeta, dt DType, n int, along string) error {
	if m.DType == Undefined {
		return nil
	}
	if dt == Undefined {
		if !isQType(m.DType) {
			return fmt.Errorf("%s must be int8 or uint8, got %v", what, m.DType)
		}
	} else if m.DType != dt {
		return fmt.Errorf("%s must be %v, got %v", what, dt, m.DType)
	}
	c := NumElements(m.Shape)
	if c == 1 && len(m.Shape) <= 1 {
		return nil
	}
	if len(m.Shape) != 1 || c != n {
		return fmt.Errorf("%s of shape %v must be a scalar or a 1-D tensor of %d values (one per %s)", what, m.Shape, n, along)
	}
	return nil
}

// actBounds returns the clamp a fused Relu or Clip imposes on the real
// output (only these two can be applied after requantisation exactly).
func actBounds(act fusedAct) (lo, hi float32, err error) {
	switch act.kind {
	case ActNone:
		return float32(math.Inf(-1)), float32(math.Inf(1)), nil
	case ActRelu:
		return 0, float32(math.Inf(1)), nil
	case ActClip:
		return act.alpha, act.beta, nil
	}
	return 0, 0, fmt.Errorf("fused activation %v is not supported on quantised ops (Relu and Clip are)", act.kind)
}

// setQuantOut fills the requantisation stage: multipliers mult[j] =
// real[j]/ys, the output zero point and the saturation bounds narrowed by
// the real clamp [rlo, rhi] (quantised with the output parameters, which is
// exact because quantisation is monotonic).
func (st *qStage) setQuantOut(outDT DType, ys float32, zy int32, rlo, rhi float32) {
	st.kind, st.outDT, st.zy = qoutQuant, outDT, zy
	tlo, thi := qRange(outDT)
	clo, chi := tlo, thi
	if !math.IsInf(float64(rlo), -1) {
		lo, hi := qBounds(outDT, zy, tlo, thi)
		clo = quantVal(rlo/ys, lo, hi, zy)
	}
	if !math.IsInf(float64(rhi), 1) {
		lo, hi := qBounds(outDT, zy, tlo, thi)
		chi = quantVal(rhi/ys, lo, hi, zy)
	}
	st.lo, st.hi = qBounds(outDT, zy, clo, chi)
}

// ---------------------------------------------------------------- the matrix ops

// qmmKernel is a compiled quantised matrix product with numpy MatMul
// batching (QLinearMatMul, MatMulInteger) or a 2-D Gemm (QGemm).
type qmmKernel struct {
	mm             *matMulKernel // batching geometry (m rows per product)
	m, n, k        int
	transA, transB bool
	aDT            DType
	// input indices (-1 when absent)
	iA, iAS, iAZ, iB, iBS, iBZ, iC, iYS, iYZ int
	iFB                                      int // float bias (fused op only)
	outKind                                  qoutKind
	outDT                                    DType
	alpha                                    float32
	act                                      fusedAct
	actLo, actHi                             float32

	constB  *qmatB // B packed once (constant, shared by every product)
	dynB    qmatB  // B repacked per product otherwise
	params  qParams
	constP  bool
	scratch int // workspace bytes for a converted A
}

func compileQLinearMatMul(n *Node, in []ValueMeta) (Kernel, []ValueMeta, error) {
	k := &qmmKernel{iA: 0, iAS: 1, iAZ: 2, iB: 3, iBS: 4, iBZ: 5, iC: -1, iYS: 6, iYZ: 7, iFB: -1, outKind: qoutQuant, alpha: 1}
	return k.compile(n, in)
}

func compileMatMulInteger(n *Node, in []ValueMeta) (Kernel, []ValueMeta, error) {
	k := &qmmKernel{iA: 0, iAS: -1, iAZ: 2, iB: 1, iBS: -1, iBZ: 3, iC: -1, iYS: -1, iYZ: -1, iFB: -1, outKind: qoutInt32, alpha: 1}
	return k.compile(n, in)
}

// compileQGemm compiles com.microsoft QGemm and the fused com.compressml
// QGemm (the same inputs; the fused op also takes N-D A with transA 0, a
// fused Relu/Clip, and a float bias added after dequantisation):
//
//	A, a_scale, a_zero_point, B, b_scale, b_zero_point?, C?, y_scale?, y_zero_point?, float_bias?
//
// Without y_scale the output is float32.
func compileQGemm(n *Node, in []ValueMeta) (Kernel, []ValueMeta, error) {
	k := &qmmKernel{iA: 0, iAS: 1, iAZ: 2, iB: 3, iBS: 4, iBZ: 5, iC: 6, iYS: 7, iYZ: 8, iFB: -1, alpha: n.AttrFloat("alpha", 1)}
	if n.Domain == FusedDomain {
		k.iFB = 9
	}
	k.transA = n.AttrInt("transA", 0) != 0
	k.transB = n.AttrInt("transB", 0) != 0
	k.outKind = qoutFloat
	if present(in, k.iYS) {
		k.outKind = qoutQuant
	}
	var err error
	if k.act, err = parseFusedAct(n); err != nil {
		return nil, nil, err
	}
	if k.actLo, k.actHi, err = actBounds(k.act); err != nil {
		return nil, nil, err
	}
	if n.Domain != FusedDomain && (len(in[0].Shape) != 2 || len(in[3].Shape) != 2) {
		return nil, nil, fmt.Errorf("A and B must be 2-D, got shapes %v and %v", in[0].Shape, in[3].Shape)
	}
	return k.compile(n, in)
}

func (k *qmmKernel) compile(n *Node, in []ValueMeta) (Kernel, []ValueMeta, error) {
	a, b := in[k.iA], in[k.iB]
	if !isQType(a.DType) {
		return nil, nil, fmt.Errorf("A must be int8 or uint8, got %v", a.DType)
	}
	if !isQType(b.DType) {
		return nil, nil, fmt.Errorf("B must be int8 or uint8, got %v", b.DType)
	}
	k.aDT = a.DType
	if k.act.kind == ActNone {
		k.actLo, k.actHi, _ = actBounds(k.act)
	}
	as, bs := a.Shape, b.Shape
	if k.transA {
		if len(as) != 2 {
			return nil, nil, fmt.Errorf("transA needs a 2-D A, got shape %v", as)
		}
		as = []int{as[1], as[0]}
	}
	if k.transB {
		if len(bs) != 2 {
			return nil, nil, fmt.Errorf("transB needs a 2-D B, got shape %v", bs)
		}
		bs = []int{bs[1], bs[0]}
	}
	mm, outShape, err := newMatMulKernel([]ValueMeta{{DType: Float32, Shape: as}, {DType: Float32, Shape: bs}})
	if err != nil {
		return nil, nil, err
	}
	k.mm, k.m, k.n, k.k = mm, mm.m, mm.n, mm.k
	// Zero points must have the type of their operand.
	if present(in, k.iAZ) && in[k.iAZ].DType != a.DType {
		return nil, nil, fmt.Errorf("a_zero_point is %v, A is %v: they must have the same type", in[k.iAZ].DType, a.DType)
	}
	if present(in, k.iBZ) && in[k.iBZ].DType != b.DType {
		return nil, nil, fmt.Errorf("b_zero_point is %v, B is %v: they must have the same type", in[k.iBZ].DType, b.DType)
	}
	rowsPerMatrix := 1
	if len(as) >= 2 {
		rowsPerMatrix = as[len(as)-2]
	}
	if k.outKind == qoutInt32 {
		// MatMulInteger: a_zero_point per tensor or per row of A.
		if present(in, k.iAZ) {
			c := NumElements(in[k.iAZ].Shape)
			if !(c == 1 && len(in[k.iAZ].Shape) <= 1) && (len(in[k.iAZ].Shape) != 1 || c != rowsPerMatrix) {
				return nil, nil, fmt.Errorf("a_zero_point of shape %v must be a scalar or hold one value per row of A (%d)", in[k.iAZ].Shape, rowsPerMatrix)
			}
		}
	} else if err := checkScalarMeta("a_zero_point", metaAt(in, k.iAZ), Undefined); err != nil {
		return nil, nil, err
	}
	if err := checkVecMeta("b_zero_point", metaAt(in, k.iBZ), Undefined, k.n, "column of B"); err != nil {
		return nil, nil, err
	}
	if k.outKind != qoutInt32 {
		if err := checkScalarMeta("a_scale", in[k.iAS], Float32); err != nil {
			return nil, nil, err
		}
		if err := checkVecMeta("b_scale", in[k.iBS], Float32, k.n, "column of B"); err != nil {
			return nil, nil, err
		}
	}
	if present(in, k.iC) {
		c := in[k.iC]
		if c.DType != Int32 {
			return nil, nil, fmt.Errorf("C must be int32 (quantised with scale a_scale*b_scale, zero point 0), got %v", c.DType)
		}
		cn := NumElements(c.Shape)
		if !(cn == 1 || cn == k.n && (len(c.Shape) == 1 || len(c.Shape) == 2 && c.Shape[0] == 1)) {
			return nil, nil, fmt.Errorf("C of shape %v must be a scalar or a row of %d values", c.Shape, k.n)
		}
	}
	if present(in, k.iFB) {
		if err := checkFloatBias(in[k.iFB], k.n, k.outKind); err != nil {
			return nil, nil, err
		}
	}
	k.outDT = Float32
	switch k.outKind {
	case qoutInt32:
		k.outDT = Int32
	case qoutQuant:
		if err := checkScalarMeta("y_scale", in[k.iYS], Float32); err != nil {
			return nil, nil, err
		}
		if !present(in, k.iYZ) {
			k.outDT = Uint8
		} else {
			if err := checkScalarMeta("y_zero_point", in[k.iYZ], Undefined); err != nil {
				return nil, nil, err
			}
			k.outDT = in[k.iYZ].DType
		}
	}
	if k.aDT == Int8 || k.transA {
		k.scratch = k.m * k.k
	}
	// Constant parameters are resolved once.
	k.constP = true
	for _, i := range []int{k.iAS, k.iAZ, k.iBS, k.iBZ, k.iC, k.iYS, k.iYZ, k.iFB} {
		if present(in, i) && in[i].Const == nil {
			k.constP = false
		}
	}
	if k.constP {
		if err := k.setParams(constTensors(in), &k.params); err != nil {
			return nil, nil, err
		}
	}
	if b.Const != nil && mm.sharedB {
		k.constB = &qmatB{}
		var zb *Tensor
		if present(in, k.iBZ) {
			zb = in[k.iBZ].Const
		}
		if zb != nil || !present(in, k.iBZ) {
			k.constB.setB(k.k, k.n, b.Const, 0, k.transB, zb)
			if err := k.constB.packFast(); err != nil {
				return nil, nil, err
			}
		} else {
			k.constB = nil
		}
	}
	return k, []ValueMeta{{DType: k.outDT, Shape: outShape}}, nil
}

// metaAt returns in[i], or an absent ValueMeta for i < 0 or beyond in.
func metaAt(in []ValueMeta, i int) ValueMeta {
	if i < 0 || i >= len(in) {
		return ValueMeta{}
	}
	return in[i]
}

// constTensors returns the constant values of in (nil where unknown).
func constTensors(in []ValueMeta) []*Tensor {
	out := make([]*Tensor, len(in))
	for i, m := range in {
		out[i] = m.Const
	}
	return out
}

// tensorAt returns in[i], or nil for i < 0 or beyond in.
func tensorAt(in []*Tensor, i int) *Tensor {
	if i < 0 || i >= len(in) {
		return nil
	}
	return in[i]
}

// setParams resolves the zero points and output stage from the parameter
// tensors.
func (k *qmmKernel) setParams(in []*Tensor, p *qParams) error {
	p.za, p.rowZA = 0, nil
	if t := tensorAt(in, k.iAZ); t != nil {
		if t.Len() == 1 {
			p.za = qElem(t, 0)
		} else {
			p.rowZA = make([]int32, t.Len())
			for i := range p.rowZA {
				p.rowZA[i] = qElem(t, i)
			}
		}
	}
	if k.aDT == Int8 {
		p.za += 128
		for i := range p.rowZA {
			p.rowZA[i] += 128
		}
	}
	st := &p.st
	*st = qStage{kind: k.outKind}
	if c := tensorAt(in, k.iC); c != nil {
		st.bias = make([]int32, k.n)
		for j := range st.bias {
			st.bias[j] = c.I32[min(j, c.Len()-1)]
		}
	}
	if k.outKind == qoutInt32 {
		return nil
	}
	sa := scalarF32(in[k.iAS])
	st.scale = make([]float32, k.n)
	qVecF32(in[k.iBS], k.n, st.scale)
	for j := range st.scale {
		st.scale[j] = k.alpha * sa * st.scale[j]
	}
	if k.outKind == qoutFloat {
		st.fLo, st.fHi = k.actLo, k.actHi
		if fb := tensorAt(in, k.iFB); fb != nil {
			st.fbias = fb.F32
		}
		return nil
	}
	ys := scalarF32(in[k.iYS])
	if ys == 0 || ys != ys || math.IsInf(float64(ys), 0) {
		return fmt.Errorf("y_scale = %g, it must be non-zero and finite", ys)
	}
	for j := range st.scale {
		st.scale[j] /= ys
	}
	st.setQuantOut(k.outDT, ys, scalarZP(tensorAt(in, k.iYZ)), k.actLo, k.actHi)
	return nil
}

// WorkspaceSize is the bytes of a converted A (int8 or transposed), as
// float32s.
func (k *qmmKernel) WorkspaceSize() int { return bytesToFloats(k.scratch) }

// MACs is the number of multiply-accumulates of one run.
func (k *qmmKernel) MACs() int64 {
	return int64(k.mm.batch) * int64(k.m) * int64(k.n) * int64(k.k)
}

func (k *qmmKernel) Run(ctx *ExecContext, in, out []*Tensor) error {
	p := &k.params
	if !k.constP {
		p = &qParams{}
		if err := k.setParams(in, p); err != nil {
			return err
		}
	}
	if p.rowZA != nil && k.m%len(p.rowZA) != 0 {
		return fmt.Errorf("a_zero_point has %d values, A has %d rows", len(p.rowZA), k.m)
	}
	a, b := in[k.iA], in[k.iB]
	var aU8 []uint8
	if a.DType == Uint8 {
		aU8 = a.U8
	} else {
		aU8 = asU8(a.I8)
	}
	var ws []byte
	if k.scratch > 0 {
		ws = wsBytes(ctx.Workspace)
		if len(ws) < k.scratch {
			return fmt.Errorf("workspace has %d bytes, the product needs %d", len(ws), k.scratch)
		}
	}
	threads := max(ctx.Threads, 1)
	for bi := 0; bi < k.mm.batch; bi++ {
		rows := aU8[k.mm.aOff[bi]:]
		lda := k.k
		if ws != nil {
			// int8 A moves to uint8 (+128); a transposed A is copied row-major.
			buf := ws[:k.m*k.k]
			for i := 0; i < k.m; i++ {
				for p := 0; p < k.k; p++ {
					var v uint8
					if k.transA {
						v = rows[p*k.m+i]
					} else {
						v = rows[i*k.k+p]
					}
					if k.aDT == Int8 {
						v ^= 0x80
					}
					buf[i*k.k+p] = v
				}
			}
			rows = buf
		}
		B := k.constB
		if B == nil {
			k.dynB.setB(k.k, k.n, b, k.mm.bOff[bi], k.transB, tensorAt(in, k.iBZ))
			B = &k.dynB
		}
		rowZA := p.rowZA
		if rowZA != nil && len(rowZA) != k.m {
			rowZA = nil // per-row zero points of a batched A: expanded below
		}
		if p.rowZA != nil && rowZA == nil {
			for i := 0; i < k.m; i++ {
				z := p.rowZA[i%len(p.rowZA)]
				if err := qgemm(1, rows[i*lda:], lda, z, nil, B, &p.st, qDst{t: out[0], off: (bi*k.m + i) * k.n, ldc: k.n}, threads); err != nil {
					return err
				}
			}
			continue
		}
		if err := qgemm(k.m, rows, lda, p.za, rowZA, B, &p.st, qDst{t: out[0], off: bi * k.m * k.n, ldc: k.n}, threads); err != nil {
			return err
		}
	}
	return nil
}

// checkFloatBias validates the float bias input of a fused op: n float32
// values ([n] or [1, n]), only with a float32 output.
func checkFloatBias(m ValueMeta, n int, kind qoutKind) error {
	if kind != qoutFloat {
		return fmt.Errorf("a float bias needs a float32 output (no y_scale)")
	}
	if m.DType != Float32 || NumElements(m.Shape) != n || len(m.Shape) > 2 || len(m.Shape) == 2 && m.Shape[0] != 1 {
		return fmt.Errorf("float bias must be float32 with %d values, got %v %v", n, m.DType, m.Shape)
	}
	return nil
}
