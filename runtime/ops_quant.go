package runtime

import (
	"fmt"
	"math"
	"unsafe"

	"github.com/compressml/compress/internal/parallel"
	"github.com/compressml/compress/runtime/kernels"
)

// This file holds the linear quantisation ops QuantizeLinear,
// DequantizeLinear and DynamicQuantizeLinear, and the helpers every
// quantised op shares: reading scales and zero points, saturation, and
// rounding half to even.
//
// Arithmetic follows onnxruntime (MLAS), so that models quantised by it give
// the same integers here:
//
//	QuantizeLinear:   q = clamp(roundHalfEven(x / scale), qmin-zp, qmax-zp) + zp
//	                  (float32 division; NaN saturates to qmin)
//	DequantizeLinear: x = float32(q - zp) * scale
//	requantisation:   q = clamp(roundHalfEven(float32(acc) * multiplier), ...) + zp
//
// Scales are float32; zero points and data are int8 or uint8 (DequantizeLinear
// also reads int32 with zero point 0). Per-tensor, per-axis (axis attribute,
// default 1) and, for opset 21 models, blocked (block_size) parameters are
// supported.

func init() {
	for _, dom := range []string{"", "com.microsoft"} {
		Register(OpSpec{Type: "QuantizeLinear", Domain: dom, MinInputs: 2, MaxInputs: 3, Outputs: 1, Compile: compileQuantizeLinear, NonDiff: []int{0, 1, 2}})
		Register(OpSpec{Type: "DequantizeLinear", Domain: dom, MinInputs: 2, MaxInputs: 3, Outputs: 1, Compile: compileDequantizeLinear, NonDiff: []int{0, 1, 2}})
	}
	Register(OpSpec{Type: "DynamicQuantizeLinear", MinInputs: 1, MaxInputs: 1, Outputs: 3, Compile: compileDynamicQuantizeLinear, NonDiff: []int{0}})
}

// qRange is the representable range of a quantised element type.
func qRange(dt DType) (lo, hi int32) {
	if dt == Int8 {
		return math.MinInt8, math.MaxInt8
	}
	return 0, math.MaxUint8
}

// isQType reports whether dt is a quantised (8-bit) element type.
func isQType(dt DType) bool { return dt == Int8 || dt == Uint8 }

// roundMagic is 1.5*2^23: adding and subtracting it rounds a float32 of
// magnitude below 2^22 to an integer, half to even (the FPU's rounding mode).
const roundMagic = 12582912

// roundEven rounds v (|v| < 2^22) half to even.
func roundEven(v float32) float32 { return float32(v+roundMagic) - roundMagic }

// quantVal saturates v to [lo, hi] (NaN gives lo), rounds it half to even and
// adds zp. lo and hi are the type's range minus zp, so the result always
// fits.
func quantVal(v, lo, hi float32, zp int32) int32 {
	if !(v >= lo) {
		v = lo
	} else if v > hi {
		v = hi
	}
	return int32(roundEven(v)) + zp
}

// qBounds returns the float saturation bounds for a type and zero point:
// the type's range shifted by -zp, narrowed to [clo, chi] (in the quantised
// domain, before the shift) when an activation clamps the output.
func qBounds(dt DType, zp, clo, chi int32) (lo, hi float32) {
	tlo, thi := qRange(dt)
	return float32(max(tlo, clo) - zp), float32(min(thi, chi) - zp)
}

// qElem reads element i of an int8, uint8 or int32 tensor.
func qElem(t *Tensor, i int) int32 {
	switch t.DType {
	case Int8:
		return int32(t.I8[i])
	case Uint8:
		return int32(t.U8[i])
	case Int32:
		return t.I32[i]
	case Int64:
		return int32(t.I64[i])
	}
	return 0
}

// asU8 views int8 data as bytes (no copy).
func asU8(s []int8) []uint8 {
	if len(s) == 0 {
		return nil
	}
	return unsafe.Slice((*uint8)(unsafe.Pointer(unsafe.SliceData(s))), len(s))
}

// asI8 views bytes as int8 data (no copy).
func asI8(s []uint8) []int8 {
	if len(s) == 0 {
		return nil
	}
	return unsafe.Slice((*int8)(unsafe.Pointer(unsafe.SliceData(s))), len(s))
}

// wsBytes views the float32 workspace as bytes.
func wsBytes(ws []float32) []byte {
	if len(ws) == 0 {
		return nil
	}
	return unsafe.Slice((*byte)(unsafe.Pointer(unsafe.SliceData(ws))), 4*len(ws))
}

// wsInt32 views the float32 workspace as int32s.
func wsInt32(ws []float32) []int32 {
	if len(ws) == 0 {
		return nil
	}
	return unsafe.Slice((*int32)(unsafe.Pointer(unsafe.SliceData(ws))), len(ws))
}

// bytesToFloats is the float32 count holding n bytes.
func bytesToFloats(n int) int { return (n + 3) / 4 }

// checkScalarMeta checks that an input of a quantised op is a one-element
// tensor of the given type ("" for any of int8/uint8).
func checkScalarMeta(what string, m ValueMeta, dt DType) error {
	if m.DType == Undefined {
		return nil
	}
	if NumElements(m.Shape) != 1 || len(m.Shape) > 1 {
		return fmt.Errorf("%s must be a scalar (per-tensor quantisation), got shape %v", what, m.Shape)
	}
	if dt == Undefined {
		if !isQType(m.DType) {
			return fmt.Errorf("%s must be int8 or uint8, got %v", what, m.DType)
		}
	} else if m.DType != dt {
		return fmt.Errorf("%s must be %v, got %v", what, dt, m.DType)
	}
	return nil
}

// scalarF32 returns the value of a one-element float32 input.
func scalarF32(t *Tensor) float32 { return t.F32[0] }

// scalarZP returns the value of an optional one-element zero point (0 when
// absent).
func scalarZP(t *Tensor) int32 {
	if t == nil || t.Len() == 0 {
		return 0
	}
	return qElem(t, 0)
}

// ---------------------------------------------------------------- layout of per-axis parameters

// qAxis describes how a scale (and zero point) tensor maps onto the data:
// the data is viewed as [outer, dim, inner] around the quantisation axis;
// the parameters are per tensor (n == 1), per axis (n == dim, index d) or
// blocked (index (o*nb + d/block)*inner + i).
type qAxis struct {
	outer, dim, inner int
	block, nb         int // block size and blocks per axis (blocked only)
	n                 int // parameter count
}

// newQAxis validates the scale shape ss against the data shape xs for a
// Quantize/DequantizeLinear node.
func newQAxis(n *Node, xs, ss []int) (qAxis, error) {
	var a qAxis
	a.n = NumElements(ss)
	block := int(n.AttrInt("block_size", 0))
	if block < 0 {
		return a, fmt.Errorf("block_size must not be negative, got %d", block)
	}
	if block == 0 && a.n == 1 && len(ss) <= 1 {
		a.outer, a.dim, a.inner = 1, 1, NumElements(xs)
		return a, nil
	}
	axis := int(n.AttrInt("axis", 1))
	r := len(xs)
	if axis < -r || axis >= r {
		return a, fmt.Errorf("axis %d is out of range for input of shape %v", axis, xs)
	}
	if axis < 0 {
		axis += r
	}
	a.outer, a.dim, a.inner = NumElements(xs[:axis]), xs[axis], NumElements(xs[axis+1:])
	if block == 0 {
		if len(ss) != 1 || ss[0] != a.dim {
			return a, fmt.Errorf("scale of shape %v must be a scalar or a 1-D tensor of %d values (axis %d of the input %v)", ss, a.dim, axis, xs)
		}
		return a, nil
	}
	a.block, a.nb = block, ceilDiv(a.dim, block)
	want := append([]int{}, xs...)
	want[axis] = a.nb
	if !SameShape(ss, want) {
		return a, fmt.Errorf("blocked scale must have shape %v (block_size %d on axis %d of %v), got %v", want, block, axis, xs, ss)
	}
	return a, nil
}

// forRows calls fn for rows (o, d) of the [outer, dim, inner] view in
// parallel, with the data offset of the row and, when the parameters do not
// vary along the row, their index (pi >= 0); for blocked parameters pi is
// -1 and pBase is the index of the row's first element (stride 1 along it).
func (a *qAxis) forRows(threads int, fn func(off, pi, pBase, n int)) {
	if a.n == 1 {
		parallel.For(threads, a.inner, 1<<15, func(lo, hi int) { fn(lo, 0, 0, hi-lo) })
		return
	}
	rows := a.outer * a.dim
	grain := max(1, (1<<15)/max(a.inner, 1))
	parallel.For(threads, rows, grain, func(lo, hi int) {
		for r := lo; r < hi; r++ {
			o, d := r/a.dim, r%a.dim
			if a.block == 0 {
				fn(r*a.inner, d, 0, a.inner)
			} else {
				fn(r*a.inner, -1, (o*a.nb+d/a.block)*a.inner, a.inner)
			}
		}
	})
}

// ---------------------------------------------------------------- QuantizeLinear

type quantizeKernel struct {
	ax    qAxis
	outDT DType
	// per-parameter saturation bounds and zero points, filled at compile
	// time when the parameters are constant, at run time otherwise.
	inv    []float32
	zp     []int32
	lo, hi []float32
	constP bool
}

func compileQuantizeLinear(n *Node, in []ValueMeta) (Kernel, []ValueMeta, error) {
	if in[0].DType != Float32 && in[0].DType != Int32 {
		return nil, nil, fmt.Errorf("x must be float32 or int32, got %v", in[0].DType)
	}
	if in[1].DType != Float32 {
		return nil, nil, fmt.Errorf("y_scale must be float32, got %v", in[1].DType)
	}
	ax, err := newQAxis(n, in[0].Shape, in[1].Shape)
	if err != nil {
		return nil, nil, err
	}
	outDT := Uint8
	switch od := n.AttrInt("output_dtype", 0); od {
	case 0, onnxUint8:
	case onnxInt8:
		outDT = Int8
	default:
		return nil, nil, fmt.Errorf("output_dtype %d is not supported (compress quantises to uint8 (2) and int8 (3))", od)
	}
	hasZP := len(in) > 2 && in[2].DType != Undefined
	if hasZP {
		if !isQType(in[2].DType) {
			return nil, nil, fmt.Errorf("y_zero_point must be int8 or uint8 (compress does not support %v outputs)", in[2].DType)
		}
		if _, set := n.Attrs["output_dtype"]; set && in[2].DType != outDT {
			return nil, nil, fmt.Errorf("output_dtype says %v but y_zero_point is %v", outDT, in[2].DType)
		}
		outDT = in[2].DType
		if !SameShape(in[2].Shape, in[1].Shape) && !(NumElements(in[2].Shape) == 1 && ax.n == 1) {
			return nil, nil, fmt.Errorf("y_zero_point of shape %v must have the shape of y_scale %v", in[2].Shape, in[1].Shape)
		}
	}
	k := &quantizeKernel{ax: ax, outDT: outDT}
	k.inv = make([]float32, ax.n)
	k.zp = make([]int32, ax.n)
	k.lo, k.hi = make([]float32, ax.n), make([]float32, ax.n)
	if in[1].Const != nil && (!hasZP || in[2].Const != nil) {
		var zpT *Tensor
		if hasZP {
			zpT = in[2].Const
		}
		if err := k.setParams(in[1].Const, zpT); err != nil {
			return nil, nil, err
		}
		k.constP = true
	}
	return k, []ValueMeta{{DType: outDT, Shape: in[0].Shape}}, nil
}

// setParams reads scales and zero points; inv holds the scales (the kernel
// divides, like onnxruntime).
func (k *quantizeKernel) setParams(scale, zp *Tensor) error {
	for i := 0; i < k.ax.n; i++ {
		s := scale.F32[i]
		if s == 0 || s != s || math.IsInf(float64(s), 0) {
			return fmt.Errorf("y_scale[%d] = %g, scales must be non-zero and finite", i, s)
		}
		z := int32(0)
		if zp != nil {
			z = qElem(zp, min(i, zp.Len()-1))
		}
		k.inv[i], k.zp[i] = s, z
		k.lo[i], k.hi[i] = qBounds(k.outDT, z, math.MinInt32, math.MaxInt32)
	}
	return nil
}

func (k *quantizeKernel) Run(ctx *ExecContext, in, out []*Tensor) error {
	if !k.constP {
		var zp *Tensor
		if len(in) > 2 {
			zp = in[2]
		}
		if err := k.setParams(in[1], zp); err != nil {
			return err
		}
	}
	x, y := in[0], out[0]
	k.ax.forRows(ctx.Threads, func(off, pi, pBase, n int) {
		if x.DType == Float32 {
			quantizeRow(k, x.F32[off:off+n], y, off, pi, pBase)
		} else {
			quantizeRowInt(k, x.I32[off:off+n], y, off, pi, pBase)
		}
	})
	return nil
}

func quantizeRow(k *quantizeKernel, x []float32, y *Tensor, off, pi, pBase int) {
	if y.DType == Uint8 {
		quantizeTo(k, x, y.U8[off:off+len(x)], pi, pBase)
	} else {
		quantizeTo(k, x, y.I8[off:off+len(x)], pi, pBase)
	}
}

func quantizeRowInt(k *quantizeKernel, x []int32, y *Tensor, off, pi, pBase int) {
	// int32 input: converted to float32 like onnxruntime does.
	var buf [256]float32
	for i := 0; i < len(x); i += len(buf) {
		n := min(len(buf), len(x)-i)
		for j := 0; j < n; j++ {
			buf[j] = float32(x[i+j])
		}
		b := pBase
		if pi < 0 {
			b += i
		}
		quantizeRow(k, buf[:n], y, off+i, pi, b)
	}
}

func quantizeTo[T int8 | uint8](k *quantizeKernel, x []float32, y []T, pi, pBase int) {
	y = y[:len(x)]
	if pi >= 0 {
		s, z, lo, hi := k.inv[pi], k.zp[pi], k.lo[pi], k.hi[pi]
		if kernels.QuantizeFloat32(y, x, s, lo, hi, z) {
			return // the same values, 16 at a time (AVX-512)
		}
		for i, v := range x {
			y[i] = T(quantVal(v/s, lo, hi, z))
		}
		return
	}
	for i, v := range x {
		p := pBase + i
		y[i] = T(quantVal(v/k.inv[p], k.lo[p], k.hi[p], k.zp[p]))
	}
}

// ---------------------------------------------------------------- DequantizeLinear

type dequantizeKernel struct {
	ax     qAxis
	scale  []float32
	zp     []int32
	constP bool
}

func compileDequantizeLinear(n *Node, in []ValueMeta) (Kernel, []ValueMeta, error) {
	xdt := in[0].DType
	if !isQType(xdt) && xdt != Int32 {
		return nil, nil, fmt.Errorf("x must be int8, uint8 or int32, got %v", xdt)
	}
	if in[1].DType != Float32 {
		return nil, nil, fmt.Errorf("x_scale must be float32, got %v", in[1].DType)
	}
	ax, err := newQAxis(n, in[0].Shape, in[1].Shape)
	if err != nil {
		return nil, nil, err
	}
	hasZP := len(in) > 2 && in[2].DType != Undefined
	if hasZP {
		if in[2].DType != xdt {
			return nil, nil, fmt.Errorf("x_zero_point is %v, x is %v: they must have the same type", in[2].DType, xdt)
		}
		if !SameShape(in[2].Shape, in[1].Shape) && !(NumElements(in[2].Shape) == 1 && ax.n == 1) {
			return nil, nil, fmt.Errorf("x_zero_point of shape %v must have the shape of x_scale %v", in[2].Shape, in[1].Shape)
		}
	}
	k := &dequantizeKernel{ax: ax, scale: make([]float32, ax.n), zp: make([]int32, ax.n)}
	if in[1].Const != nil && (!hasZP || in[2].Const != nil) {
		var zpT *Tensor
		if hasZP {
			zpT = in[2].Const
		}
		if err := k.setParams(in[1].Const, zpT, xdt); err != nil {
			return nil, nil, err
		}
		k.constP = true
	}
	return k, []ValueMeta{{DType: Float32, Shape: in[0].Shape}}, nil
}

func (k *dequantizeKernel) setParams(scale, zp *Tensor, xdt DType) error {
	copy(k.scale, scale.F32)
	for i := range k.zp {
		k.zp[i] = 0
		if zp != nil {
			k.zp[i] = qElem(zp, min(i, zp.Len()-1))
		}
		if xdt == Int32 && k.zp[i] != 0 {
			return fmt.Errorf("x_zero_point[%d] = %d, int32 inputs must have zero point 0", i, k.zp[i])
		}
	}
	return nil
}

func (k *dequantizeKernel) Run(ctx *ExecContext, in, out []*Tensor) error {
	if !k.constP {
		var zp *Tensor
		if len(in) > 2 {
			zp = in[2]
		}
		if err := k.setParams(in[1], zp, in[0].DType); err != nil {
			return err
		}
	}
	x, y := in[0], out[0].F32
	k.ax.forRows(ctx.Threads, func(off, pi, pBase, n int) {
		switch x.DType {
		case Uint8:
			dequantizeFrom(k, x.U8[off:off+n], y[off:off+n], pi, pBase)
		case Int8:
			dequantizeFrom(k, x.I8[off:off+n], y[off:off+n], pi, pBase)
		case Int32:
			dequantizeFrom(k, x.I32[off:off+n], y[off:off+n], pi, pBase)
		}
	})
	return nil
}

func dequantizeFrom[T int8 | uint8 | int32](k *dequantizeKernel, x []T, y []float32, pi, pBase int) {
	y = y[:len(x)]
	if pi >= 0 {
		s, z := k.scale[pi], k.zp[pi]
		for i, v := range x {
			y[i] = float32(int32(v)-z) * s
		}
		return
	}
	for i, v := range x {
		p := pBase + i
		y[i] = float32(int32(v)-k.zp[p]) * k.scale[p]
	}
}

// ---------------------------------------------------------------- DynamicQuantizeLinear

// dynQuantKernel computes uint8 quantisation parameters from the data's
// range (extended to include 0) and quantises with them:
//
//	scale = (max - min) / 255 (1 when max == min), zp = roundHalfEven(clamp(0 - min/scale, 0, 255)).
type dynQuantKernel struct{ n int }

func compileDynamicQuantizeLinear(n *Node, in []ValueMeta) (Kernel, []ValueMeta, error) {
	if err := checkFloat("x", in[0]); err != nil {
		return nil, nil, err
	}
	return &dynQuantKernel{n: NumElements(in[0].Shape)}, []ValueMeta{
		{DType: Uint8, Shape: in[0].Shape},
		{DType: Float32, Shape: []int{}},
		{DType: Uint8, Shape: []int{}},
	}, nil
}

// dynQuantParams returns the uint8 scale and zero point onnxruntime's
// DynamicQuantizeLinear derives from the range of x (NaNs are ignored).
func dynQuantParams(x []float32) (scale float32, zp int32) {
	var mn, mx float32
	for _, v := range x {
		if v < mn {
			mn = v
		}
		if v > mx {
			mx = v
		}
	}
	if math.IsInf(float64(mn), 0) || math.IsInf(float64(mx), 0) {
		// An infinite range has no usable scale; saturate like a huge one.
		mn, mx = max(mn, -math.MaxFloat32), min(mx, math.MaxFloat32)
	}
	scale = 1
	if mx != mn {
		scale = (mx - mn) / 255
	}
	z := 0 - mn/scale
	z = min(max(z, 0), 255)
	return scale, int32(roundEven(z))
}

func (k *dynQuantKernel) Run(ctx *ExecContext, in, out []*Tensor) error {
	x := in[0].F32
	scale, zp := dynQuantParams(x)
	out[1].F32[0] = scale
	out[2].U8[0] = uint8(zp)
	lo, hi := qBounds(Uint8, zp, math.MinInt32, math.MaxInt32)
	y := out[0].U8
	parallel.For(ctx.Threads, len(x), 1<<15, func(a, b int) {
		for i := a; i < b; i++ {
			y[i] = uint8(quantVal(x[i]/scale, lo, hi, zp))
		}
	})
	return nil
}
