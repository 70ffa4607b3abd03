package runtime

import (
	"fmt"
	"math"

	"github.com/compressml/compress/internal/parallel"
)

// This file holds the com.microsoft quantised elementwise, concatenation
// and pooling ops onnxruntime's quantiser emits in QOperator format:
// QLinearAdd, QLinearMul, QLinearSigmoid, QLinearLeakyRelu, QLinearConcat,
// QLinearAveragePool and QLinearGlobalAveragePool. Each computes
// Quantize(op(Dequantize(inputs))) with per-tensor parameters; inputs and
// output share one 8-bit type. Unary ops and requantising copies go through
// a 256-entry table built with exactly the QuantizeLinear and
// DequantizeLinear arithmetic.

const msDomain = "com.microsoft"

func init() {
	Register(OpSpec{Type: "QLinearAdd", Domain: msDomain, MinInputs: 7, MaxInputs: 8, Outputs: 1, Compile: compileQLinearBinary(false)})
	Register(OpSpec{Type: "QLinearMul", Domain: msDomain, MinInputs: 7, MaxInputs: 8, Outputs: 1, Compile: compileQLinearBinary(true)})
	Register(OpSpec{Type: "QLinearSigmoid", Domain: msDomain, MinInputs: 4, MaxInputs: 5, Outputs: 1, Compile: compileQLinearUnary})
	Register(OpSpec{Type: "QLinearLeakyRelu", Domain: msDomain, MinInputs: 4, MaxInputs: 5, Outputs: 1, Compile: compileQLinearUnary})
	Register(OpSpec{Type: "QLinearConcat", Domain: msDomain, MinInputs: 3, Outputs: 1, Compile: compileQLinearConcat})
	Register(OpSpec{Type: "QLinearAveragePool", Domain: msDomain, MinInputs: 4, MaxInputs: 5, Outputs: 1, Compile: compileQLinearAveragePool})
	Register(OpSpec{Type: "QLinearGlobalAveragePool", Domain: msDomain, MinInputs: 4, MaxInputs: 5, Outputs: 1, Compile: compileQLinearGlobalAveragePool})
}

// qTensorParams are the per-tensor scale and zero point of one operand.
type qTensorParams struct {
	scale float32
	zp    int32
}

// qScalarParams checks and reads (when constant) the scale at index si and
// optional zero point at zi of a per-tensor operand of type dt. known is
// false when either is only known at run time.
func qScalarParams(in []ValueMeta, si, zi int, dt DType, what string) (p qTensorParams, known bool, err error) {
	if err := checkScalarMeta(what+" scale", in[si], Float32); err != nil {
		return p, false, err
	}
	zm := metaAt(in, zi)
	if err := checkScalarMeta(what+" zero point", zm, dt); err != nil {
		return p, false, err
	}
	if in[si].Const == nil || zm.DType != Undefined && zm.Const == nil {
		return p, false, nil
	}
	return readQScalar(in[si].Const, zm.Const), true, nil
}

// readQScalar reads a per-tensor scale and optional zero point.
func readQScalar(scale, zp *Tensor) qTensorParams {
	return qTensorParams{scale: scale.F32[0], zp: scalarZP(zp)}
}

// runQScalar reads the parameters at run time.
func runQScalar(in []*Tensor, si, zi int) qTensorParams {
	return readQScalar(in[si], tensorAt(in, zi))
}

// deq dequantises v like DequantizeLinear.
func (p qTensorParams) deq(v int32) float32 { return float32(v-p.zp) * p.scale }

// quantizer quantises float32 values to p's type like QuantizeLinear.
type quantizer struct {
	s      float32
	zp     int32
	lo, hi float32
}

func newQuantizer(p qTensorParams, dt DType) quantizer {
	lo, hi := qBounds(dt, p.zp, math.MinInt32, math.MaxInt32)
	return quantizer{s: p.scale, zp: p.zp, lo: lo, hi: hi}
}

func (q quantizer) q(v float32) int32 { return quantVal(v/q.s, q.lo, q.hi, q.zp) }

// qLUT is a 256-entry table from input byte to output byte.
type qLUT [256]uint8

// build fills the table with Q_out(f(DQ_in(x))) for every input value.
func (t *qLUT) build(dt DType, inP, outP qTensorParams, f func(float32) float32) {
	q := newQuantizer(outP, dt)
	for i := range t {
		v := int32(i)
		if dt == Int8 {
			v = int32(int8(uint8(i)))
		}
		t[i] = uint8(q.q(f(inP.deq(v))))
	}
}

// apply maps src through the table into dst (the same type, viewed as
// bytes).
func (t *qLUT) apply(threads int, src, dst []uint8) {
	parallel.For(threads, len(src), 1<<15, func(lo, hi int) {
		s, d := src[lo:hi], dst[lo:hi]
		for i, v := range s {
			d[i] = t[v]
		}
	})
}

// bytesOf views an int8 or uint8 tensor's data as bytes.
func bytesOf(t *Tensor) []uint8 {
	if t.DType == Int8 {
		return asU8(t.I8)
	}
	return t.U8
}

// ---------------------------------------------------------------- unary (table) ops

type qUnaryKernel struct {
	dt         DType
	sig        bool
	alpha      float32
	lut        qLUT
	constP     bool
	xs, xz, ys int
	yz         int
}

// compileQLinearUnary compiles QLinearSigmoid and QLinearLeakyRelu:
// X, X_scale, X_zero_point?, Y_scale, Y_zero_point?.
func compileQLinearUnary(n *Node, in []ValueMeta) (Kernel, []ValueMeta, error) {
	dt := in[0].DType
	if !isQType(dt) {
		return nil, nil, fmt.Errorf("X must be int8 or uint8, got %v", dt)
	}
	k := &qUnaryKernel{dt: dt, sig: n.OpType == "QLinearSigmoid", alpha: n.AttrFloat("alpha", 0.01), xs: 1, xz: 2, ys: 3, yz: 4}
	ip, ok1, err := qScalarParams(in, 1, 2, dt, "X")
	if err != nil {
		return nil, nil, err
	}
	op, ok2, err := qScalarParams(in, 3, 4, dt, "Y")
	if err != nil {
		return nil, nil, err
	}
	if ok1 && ok2 {
		k.build(ip, op)
		k.constP = true
	}
	return k, []ValueMeta{{DType: dt, Shape: in[0].Shape}}, nil
}

func (k *qUnaryKernel) build(ip, op qTensorParams) {
	if k.sig {
		k.lut.build(k.dt, ip, op, func(v float32) float32 { return float32(1 / (1 + math.Exp(-float64(v)))) })
		return
	}
	a := k.alpha
	k.lut.build(k.dt, ip, op, func(v float32) float32 {
		if v >= 0 {
			return v
		}
		return a * v
	})
}

func (k *qUnaryKernel) Run(ctx *ExecContext, in, out []*Tensor) error {
	if !k.constP {
		k.build(runQScalar(in, k.xs, k.xz), runQScalar(in, k.ys, k.yz))
	}
	k.lut.apply(ctx.Threads, bytesOf(in[0]), bytesOf(out[0]))
	return nil
}

// ---------------------------------------------------------------- QLinearAdd, QLinearMul

type qBinaryKernel struct {
	dt     DType
	mul    bool
	plan   *BroadcastPlan
	constP bool
	// Add: fa[x] = (sa/sc)*(x-za), fb likewise; Mul: mult = sa*sb/sc.
	fa, fb [256]float32
	za, zb int32
	mult   float32
	lo, hi float32
	zc     int32
}

// compileQLinearBinary compiles QLinearAdd or QLinearMul:
// A, A_scale, A_zero_point?, B, B_scale, B_zero_point?, C_scale, C_zero_point?.
func compileQLinearBinary(mul bool) CompileFunc {
	return func(n *Node, in []ValueMeta) (Kernel, []ValueMeta, error) {
		dt := in[0].DType
		if !isQType(dt) || in[3].DType != dt {
			return nil, nil, fmt.Errorf("A and B must both be int8 or both uint8, got %v and %v", dt, in[3].DType)
		}
		out, err := BroadcastShapes(in[0].Shape, in[3].Shape)
		if err != nil {
			return nil, nil, err
		}
		plan, err := NewBroadcastPlan(out, in[0].Shape, in[3].Shape)
		if err != nil {
			return nil, nil, err
		}
		k := &qBinaryKernel{dt: dt, mul: mul, plan: plan}
		pa, ok1, err := qScalarParams(in, 1, 2, dt, "A")
		if err != nil {
			return nil, nil, err
		}
		pb, ok2, err := qScalarParams(in, 4, 5, dt, "B")
		if err != nil {
			return nil, nil, err
		}
		pc, ok3, err := qScalarParams(in, 6, 7, dt, "C")
		if err != nil {
			return nil, nil, err
		}
		if ok1 && ok2 && ok3 {
			k.setParams(pa, pb, pc)
			k.constP = true
		}
		return k, []ValueMeta{{DType: dt, Shape: out}}, nil
	}
}

func (k *qBinaryKernel) setParams(pa, pb, pc qTensorParams) {
	k.za, k.zb, k.zc = pa.zp, pb.zp, pc.zp
	k.lo, k.hi = qBounds(k.dt, pc.zp, math.MinInt32, math.MaxInt32)
	if k.mul {
		k.mult = pa.scale * pb.scale / pc.scale
		return
	}
	ra, rb := pa.scale/pc.scale, pb.scale/pc.scale
	for i := 0; i < 256; i++ {
		v := int32(i)
		if k.dt == Int8 {
			v = int32(int8(uint8(i)))
		}
		k.fa[i] = ra * float32(v-pa.zp)
		k.fb[i] = rb * float32(v-pb.zp)
	}
}

func (k *qBinaryKernel) Run(ctx *ExecContext, in, out []*Tensor) error {
	if !k.constP {
		k.setParams(runQScalar(in, 1, 2), runQScalar(in, 4, 5), runQScalar(in, 6, 7))
	}
	a, b, c := bytesOf(in[0]), bytesOf(in[3]), bytesOf(out[0])
	if err := k.plan.Check(len(c), len(a), len(b)); err != nil {
		return err
	}
	sa, sb := k.plan.InnerStride(0), k.plan.InnerStride(1)
	signed := k.dt == Int8
	k.plan.ForEach(ctx.Threads, func(o, ia, ib, _, n int) {
		dst := c[o : o+n]
		for i := range dst {
			x, y := a[ia+i*sa], b[ib+i*sb]
			var v float32
			if k.mul {
				xv, yv := int32(x), int32(y)
				if signed {
					xv, yv = int32(int8(x)), int32(int8(y))
				}
				v = float32((xv-k.za)*(yv-k.zb)) * k.mult
			} else {
				v = k.fa[x] + k.fb[y]
			}
			dst[i] = uint8(quantVal(v, k.lo, k.hi, k.zc))
		}
	})
	return nil
}

// ---------------------------------------------------------------- QLinearConcat

type qConcatKernel struct {
	dt     DType
	axis   int
	outer  int
	chunks []int // per input: elements per outer index (dim_i * inner)
	out    qTensorParams
	constP bool
	copyIn []bool
	luts   []qLUT
}

// compileQLinearConcat compiles QLinearConcat: Y_scale, Y_zero_point, then
// (X, X_scale, X_zero_point) for each input.
func compileQLinearConcat(n *Node, in []ValueMeta) (Kernel, []ValueMeta, error) {
	if (len(in)-2)%3 != 0 || len(in) < 5 {
		return nil, nil, fmt.Errorf("inputs must be Y_scale, Y_zero_point and (tensor, scale, zero point) triples, got %d inputs", len(in))
	}
	dt := in[1].DType
	if !isQType(dt) {
		return nil, nil, fmt.Errorf("Y_zero_point must be int8 or uint8, got %v", dt)
	}
	if _, ok := n.Attrs["axis"]; !ok {
		return nil, nil, fmt.Errorf("attribute axis is required")
	}
	first := in[2].Shape
	r := len(first)
	axis := int(n.AttrInt("axis", 0))
	if axis < -r || axis >= r {
		return nil, nil, fmt.Errorf("axis %d is out of range for rank %d", n.AttrInt("axis", 0), r)
	}
	if axis < 0 {
		axis += r
	}
	k := &qConcatKernel{dt: dt, axis: axis, outer: NumElements(first[:axis])}
	inner := NumElements(first[axis+1:])
	outShape := append([]int{}, first...)
	outShape[axis] = 0
	ni := (len(in) - 2) / 3
	known := in[0].Const != nil && in[1].Const != nil
	if err := checkScalarMeta("Y_scale", in[0], Float32); err != nil {
		return nil, nil, err
	}
	if err := checkScalarMeta("Y_zero_point", in[1], dt); err != nil {
		return nil, nil, err
	}
	for i := 0; i < ni; i++ {
		x := in[2+3*i]
		if x.DType != dt {
			return nil, nil, fmt.Errorf("input %d is %v, the output is %v: QLinearConcat needs one type", i, x.DType, dt)
		}
		if len(x.Shape) != r {
			return nil, nil, fmt.Errorf("input %d has shape %v, input 0 has %v: ranks differ", i, x.Shape, first)
		}
		for d := range x.Shape {
			if d != axis && x.Shape[d] != first[d] {
				return nil, nil, fmt.Errorf("input %d has shape %v, input 0 has %v: only axis %d may differ", i, x.Shape, first, axis)
			}
		}
		if _, ok, err := qScalarParams(in, 3+3*i, 4+3*i, dt, fmt.Sprintf("input %d", i)); err != nil {
			return nil, nil, err
		} else if !ok {
			known = false
		}
		outShape[axis] += x.Shape[axis]
		k.chunks = append(k.chunks, x.Shape[axis]*inner)
	}
	k.copyIn = make([]bool, ni)
	k.luts = make([]qLUT, ni)
	if known {
		k.setParams(constTensors(in))
		k.constP = true
	}
	return k, []ValueMeta{{DType: dt, Shape: outShape}}, nil
}

func (k *qConcatKernel) setParams(in []*Tensor) {
	k.out = readQScalar(in[0], in[1])
	for i := range k.chunks {
		ip := runQScalar(in, 3+3*i, 4+3*i)
		k.copyIn[i] = ip == k.out
		if !k.copyIn[i] {
			k.luts[i].build(k.dt, ip, k.out, func(v float32) float32 { return v })
		}
	}
}

func (k *qConcatKernel) Run(ctx *ExecContext, in, out []*Tensor) error {
	if !k.constP {
		k.setParams(in)
	}
	dst := bytesOf(out[0])
	row := 0
	for _, c := range k.chunks {
		row += c
	}
	parallel.For(ctx.Threads, k.outer, max(1, (1<<14)/max(row, 1)), func(lo, hi int) {
		for o := lo; o < hi; o++ {
			off := o * row
			for i, c := range k.chunks {
				src := bytesOf(in[2+3*i])[o*c : (o+1)*c]
				d := dst[off : off+c]
				if k.copyIn[i] {
					copy(d, src)
				} else {
					lut := &k.luts[i]
					for j, v := range src {
						d[j] = lut[v]
					}
				}
				off += c
			}
		}
	})
	return nil
}

// ---------------------------------------------------------------- pooling

// qAvgPoolKernel is QLinearAveragePool (geometry from the float pooling
// kernel) or QLinearGlobalAveragePool (one window per plane).
type qAvgPoolKernel struct {
	pool         *poolKernel // nil for the global pool
	dt           DType
	planes, size int // global: planes and elements per plane
	channelsLast bool
	c            int // channels (channels_last)
	constP       bool
	ip, op       qTensorParams
	q            quantizer
}

// compileQLinearAveragePool compiles QLinearAveragePool: X, x_scale,
// x_zero_point?, y_scale, y_zero_point?.
func compileQLinearAveragePool(n *Node, in []ValueMeta) (Kernel, []ValueMeta, error) {
	dt := in[0].DType
	if !isQType(dt) {
		return nil, nil, fmt.Errorf("X must be int8 or uint8, got %v", dt)
	}
	if n.AttrInt("channels_last", 0) != 0 {
		return nil, nil, fmt.Errorf("channels_last=1 is not supported (NCHW only)")
	}
	pk, outShape, err := newPoolKernel(n, in, false)
	if err != nil {
		return nil, nil, err
	}
	pk.includePad = n.AttrInt("count_include_pad", 0) != 0
	if pk.includePad {
		g := &pk.g
		for a := 0; a < maxSpatial; a++ {
			for o := range pk.win[a] {
				w := &pk.win[a][o]
				plo, phi := kRange(w.start+g.pb[a], g.k[a], g.d[a], g.in[a]+g.pb[a]+g.pe[a])
				w.count = phi - plo
			}
		}
	}
	k := &qAvgPoolKernel{pool: pk, dt: dt}
	return k.finish(in, outShape)
}

// compileQLinearGlobalAveragePool compiles QLinearGlobalAveragePool (NCHW,
// or NHWC with channels_last=1).
func compileQLinearGlobalAveragePool(n *Node, in []ValueMeta) (Kernel, []ValueMeta, error) {
	dt := in[0].DType
	if !isQType(dt) {
		return nil, nil, fmt.Errorf("X must be int8 or uint8, got %v", dt)
	}
	xs := in[0].Shape
	if len(xs) < 3 {
		return nil, nil, fmt.Errorf("X must be [N C spatial...], got shape %v", xs)
	}
	k := &qAvgPoolKernel{dt: dt, channelsLast: n.AttrInt("channels_last", 0) != 0}
	outShape := make([]int, len(xs))
	for i := range outShape {
		outShape[i] = 1
	}
	outShape[0] = xs[0]
	if k.channelsLast {
		k.c = xs[len(xs)-1]
		outShape[len(xs)-1] = k.c
		k.planes, k.size = xs[0], NumElements(xs[1:len(xs)-1])
	} else {
		outShape[1] = xs[1]
		k.planes, k.size = xs[0]*xs[1], NumElements(xs[2:])
	}
	if k.size == 0 {
		return nil, nil, fmt.Errorf("X of shape %v has no spatial elements to average", xs)
	}
	return k.finish(in, outShape)
}

func (k *qAvgPoolKernel) finish(in []ValueMeta, outShape []int) (Kernel, []ValueMeta, error) {
	ip, ok1, err := qScalarParams(in, 1, 2, k.dt, "x")
	if err != nil {
		return nil, nil, err
	}
	op, ok2, err := qScalarParams(in, 3, 4, k.dt, "y")
	if err != nil {
		return nil, nil, err
	}
	if ok1 && ok2 {
		k.setParams(ip, op)
		k.constP = true
	}
	return k, []ValueMeta{{DType: k.dt, Shape: outShape}}, nil
}

func (k *qAvgPoolKernel) setParams(ip, op qTensorParams) {
	k.ip, k.op = ip, op
	k.q = newQuantizer(op, k.dt)
}

// avg quantises the mean of count dequantised values whose zero-point
// corrected sum is sum: Q(float32(sum)*x_scale/count).
func (k *qAvgPoolKernel) avg(sum int32, count int) uint8 {
	v := float32(sum) * k.ip.scale / float32(count)
	return uint8(k.q.q(v))
}

// MACs counts one add per window tap.
func (k *qAvgPoolKernel) MACs() int64 {
	if k.pool != nil {
		return k.pool.MACs()
	}
	return int64(k.planes) * int64(k.size) * int64(max(k.c, 1))
}

func (k *qAvgPoolKernel) Run(ctx *ExecContext, in, out []*Tensor) error {
	if !k.constP {
		k.setParams(runQScalar(in, 1, 2), runQScalar(in, 3, 4))
	}
	x, y := bytesOf(in[0]), bytesOf(out[0])
	signed := k.dt == Int8
	val := func(b uint8) int32 {
		if signed {
			return int32(int8(b))
		}
		return int32(b)
	}
	zx := k.ip.zp
	if k.pool == nil {
		if k.channelsLast {
			parallel.For(ctx.Threads, k.planes*k.c, max(1, (1<<14)/k.size), func(lo, hi int) {
				for pc := lo; pc < hi; pc++ {
					p, c := pc/k.c, pc%k.c
					var s int32
					for i := 0; i < k.size; i++ {
						s += val(x[(p*k.size+i)*k.c+c]) - zx
					}
					y[pc] = k.avg(s, k.size)
				}
			})
			return nil
		}
		parallel.For(ctx.Threads, k.planes, max(1, (1<<14)/k.size), func(lo, hi int) {
			for p := lo; p < hi; p++ {
				var s int32
				for _, b := range x[p*k.size : (p+1)*k.size] {
					s += val(b) - zx
				}
				y[p] = k.avg(s, k.size)
			}
		})
		return nil
	}
	pk := k.pool
	g := &pk.g
	parallel.For(ctx.Threads, pk.planes, pk.planesPerTask, func(lo, hi int) {
		for p := lo; p < hi; p++ {
			xp := x[p*pk.inSize : (p+1)*pk.inSize]
			yp := y[p*pk.outSize : (p+1)*pk.outSize]
			o := 0
			for od := 0; od < g.out[0]; od++ {
				wd := pk.win[0][od]
				for oh := 0; oh < g.out[1]; oh++ {
					wh := pk.win[1][oh]
					for ow := 0; ow < g.out[2]; ow++ {
						ww := pk.win[2][ow]
						var s int32
						for td := wd.lo; td < wd.hi; td++ {
							id := wd.start + td*g.d[0]
							for th := wh.lo; th < wh.hi; th++ {
								ih := wh.start + th*g.d[1]
								row := xp[(id*g.in[1]+ih)*g.in[2]:]
								for tw := ww.lo; tw < ww.hi; tw++ {
									s += val(row[ww.start+tw*g.d[2]]) - zx
								}
							}
						}
						cnt := wd.count * wh.count * ww.count
						if cnt == 0 {
							yp[o] = uint8(k.q.q(0))
						} else {
							yp[o] = k.avg(s, cnt)
						}
						o++
					}
				}
			}
		}
	})
	return nil
}
