package kernels

import (
	"fmt"
	"math"
	"unsafe"
)

// QOutKind selects what the output stage of a quantized product writes.
type QOutKind int

// Output kinds of QOutput.
const (
	// QOutInt32 writes the zero-point corrected int32 accumulators (plus
	// BiasI32, then ReLU), as ONNX MatMulInteger and ConvInteger.
	QOutInt32 QOutKind = iota
	// QOutFloat32 dequantises: float32(v)*Scale, plus Bias, then ReLU.
	QOutFloat32
	// QOutUint8 requantises to uint8 as ONNX QLinearMatMul/QLinearConv:
	// saturate(roundHalfEven(float32(v)*Scale) + ZeroPoint) to [0, 255].
	QOutUint8
	// QOutInt8 requantises to int8, saturating to [-128, 127].
	QOutInt8
)

// String returns the name of the output kind.
func (k QOutKind) String() string {
	switch k {
	case QOutInt32:
		return "int32"
	case QOutFloat32:
		return "float32"
	case QOutUint8:
		return "uint8"
	case QOutInt8:
		return "int8"
	}
	return fmt.Sprintf("QOutKind(%d)", int(k))
}

// QOutput is the fused output stage of a quantized product. For each output
// element (i, j) with channel ch (the column j for QGemm, the row i for
// QGemmA, QConv2D and QDepthwiseConv2D) it computes
//
//	v = sum_k (a - za)(b - zb) + BiasI32[ch]          (int32, wrapping)
//
// and then, by Kind:
//
//	QOutInt32:   v, or max(v, 0) with Relu
//	QOutFloat32: f = float32(v) * Scale[ch]; f += Bias[ch]; with Relu f = max(f, 0)
//	QOutUint8/QOutInt8: clamp(roundHalfEven(float32(v)*Scale[ch]) + ZeroPoint)
//	             to the type's range, or to [ZeroPoint, max] with Relu
//
// Scale is the combined multiplier: sa*sb[ch] to dequantise, sa*sb[ch]/sy
// to requantise to an output of scale sy. Scale, Bias and BiasI32 hold one
// value per channel; Scale may also hold a single per-tensor value. Every
// floating-point operation is rounded to float32 separately (no fused
// multiply-add), so the assembly and Go stages agree bit for bit.
type QOutput struct {
	Kind QOutKind
	// Exactly one of the buffers, matching Kind, receives the output, row
	// i starting at i*LDC.
	I32 []int32
	F32 []float32
	U8  []uint8
	I8  []int8
	// LDC is the row stride of the output; 0 means the number of columns.
	// QConv2D's rows are output channels, so LDC = OutH*OutW writes NCHW
	// planes.
	LDC int
	// Scale is the multiplier per channel or per tensor (len 1); required
	// except for QOutInt32, and must be finite.
	Scale []float32
	// Bias is an optional float bias per channel, QOutFloat32 only.
	Bias []float32
	// BiasI32 is an optional int32 bias per channel (in accumulator units,
	// scale sa*sb, as the bias of ONNX QLinearConv).
	BiasI32 []int32
	// ZeroPoint is the output zero point of QOutUint8 and QOutInt8.
	ZeroPoint int32
	// Relu clamps the result at zero (at ZeroPoint when requantising).
	Relu bool
}

// qClampF bounds requantised values before rounding: anything beyond it
// saturates anyway, and it keeps the float to int32 conversion in range.
const qClampF = 65536

// qEpi is a QOutput checked against the shape of one product.
type qEpi struct {
	kind           QOutKind
	ldc            int
	perRow         bool // channel parameters are indexed by row
	scale          []float32
	bias           []float32
	biasI32        []int32
	zo, qmin, qmax int32
	relu           bool
	i32            []int32
	f32            []float32
	b8             []byte // U8, or I8 viewed as bytes
}

// resolve checks o for an m x n output whose channels are the rows
// (perRow) or the columns.
func (o *QOutput) resolve(op string, m, n int, perRow bool, e *qEpi) error {
	if o == nil {
		return fmt.Errorf("kernels: %s: output is nil", op)
	}
	ch, chName := n, "columns"
	if perRow {
		ch, chName = m, "rows"
	}
	*e = qEpi{kind: o.Kind, ldc: o.LDC, perRow: perRow, relu: o.Relu}
	if e.ldc == 0 {
		e.ldc = n
	}
	if e.ldc < n {
		return fmt.Errorf("kernels: %s: output LDC %d is less than its %d columns", op, o.LDC, n)
	}
	need := (m-1)*e.ldc + n
	var have int
	switch o.Kind {
	case QOutInt32:
		e.i32, have = o.I32, len(o.I32)
	case QOutFloat32:
		e.f32, have = o.F32, len(o.F32)
	case QOutUint8:
		e.b8, have = o.U8, len(o.U8)
		e.qmin, e.qmax = 0, 255
	case QOutInt8:
		if len(o.I8) > 0 {
			e.b8 = unsafe.Slice((*byte)(unsafe.Pointer(&o.I8[0])), len(o.I8))
		}
		have = len(o.I8)
		e.qmin, e.qmax = -128, 127
	default:
		return fmt.Errorf("kernels: %s: unknown output kind %d", op, int(o.Kind))
	}
	if have < need {
		return fmt.Errorf("kernels: %s: %s output has %d values, need %d for %dx%d with LDC %d",
			op, o.Kind, have, need, m, n, e.ldc)
	}
	if o.Kind != QOutInt32 {
		if len(o.Scale) != 1 && len(o.Scale) != ch {
			return fmt.Errorf("kernels: %s: output Scale needs 1 or %d values (one per %s), got %d", op, ch, chName, len(o.Scale))
		}
		for _, s := range o.Scale {
			if math.IsNaN(float64(s)) || math.IsInf(float64(s), 0) {
				return fmt.Errorf("kernels: %s: output Scale %v is not finite", op, s)
			}
		}
		e.scale = o.Scale
	}
	if o.Bias != nil {
		if o.Kind != QOutFloat32 {
			return fmt.Errorf("kernels: %s: a float Bias needs QOutFloat32 output, not %s; use BiasI32", op, o.Kind)
		}
		if len(o.Bias) != ch {
			return fmt.Errorf("kernels: %s: output Bias needs %d values (one per %s), got %d", op, ch, chName, len(o.Bias))
		}
		e.bias = o.Bias
	}
	if o.BiasI32 != nil {
		if len(o.BiasI32) != ch {
			return fmt.Errorf("kernels: %s: output BiasI32 needs %d values (one per %s), got %d", op, ch, chName, len(o.BiasI32))
		}
		e.biasI32 = o.BiasI32
	}
	if o.Kind == QOutUint8 || o.Kind == QOutInt8 {
		if o.ZeroPoint < e.qmin || o.ZeroPoint > e.qmax {
			return fmt.Errorf("kernels: %s: output zero point %d is outside [%d, %d]", op, o.ZeroPoint, e.qmin, e.qmax)
		}
		e.zo = o.ZeroPoint
		if o.Relu {
			e.qmin = o.ZeroPoint
		}
	}
	return nil
}

// qRowArgs is one row segment of the output stage:
//
//	v[j] = acc[j] + r + c[j] (+ x*y[j] when y != nil)
//
// followed by the conversion of the output kind with scale[j] (scaleVec) or
// scale[0], and bias[j] (biasVec) or bias[0] when bias != nil.
type qRowArgs struct {
	acc, c, y      []int32
	r, x           int32
	scale          []float32
	scaleVec       bool
	bias           []float32
	biasVec        bool
	zo, qmin, qmax int32
	relu           bool
}

// qStageArgs is a block of the output stage: rows x n outputs, row t from
// the accumulators acc[t*ldacc:] with the row terms r[t] (and x[t]) and the
// column terms c (and y), written to the output at t*ldo. The scale (and
// bias) is per column (scaleVec, n values) or a scalar per row: scale[t*
// scaleStep] with scaleStep 1 (per row) or 0 (per tensor).
type qStageArgs struct {
	rows, n        int
	acc            []int32
	ldacc          int
	c, y           []int32
	r, x           []int32
	scale          []float32
	scaleVec       bool
	scaleStep      int
	bias           []float32
	biasVec        bool
	biasStep       int
	zo, qmin, qmax int32
	relu           bool
	kind           QOutKind
	i32            []int32
	f32            []float32
	b8             []byte
	ldo            int
}

// row returns the arguments of row t, columns [j, n).
func (a *qStageArgs) row(t, j int) qRowArgs {
	ra := qRowArgs{acc: a.acc[t*a.ldacc+j : t*a.ldacc+a.n], c: a.c[j:a.n], r: a.r[t],
		zo: a.zo, qmin: a.qmin, qmax: a.qmax, relu: a.relu}
	if a.y != nil {
		ra.x, ra.y = a.x[t], a.y[j:a.n]
	}
	switch {
	case a.scaleVec:
		ra.scale, ra.scaleVec = a.scale[j:a.n], true
	case a.scale != nil:
		ra.scale = a.scale[t*a.scaleStep : t*a.scaleStep+1]
	}
	switch {
	case a.biasVec:
		ra.bias, ra.biasVec = a.bias[j:a.n], true
	case a.bias != nil:
		ra.bias = a.bias[t*a.biasStep : t*a.biasStep+1]
	}
	return ra
}

// qStageGeneric applies the output stage to columns [j0, n) of every row
// with the portable row functions.
func qStageGeneric(a qStageArgs, j0 int) {
	if j0 >= a.n {
		return
	}
	for t := 0; t < a.rows; t++ {
		ra := a.row(t, j0)
		o0, o1 := t*a.ldo+j0, t*a.ldo+a.n
		switch a.kind {
		case QOutInt32:
			qStageI32Generic(ra, a.i32[o0:o1])
		case QOutFloat32:
			qStageF32Generic(ra, a.f32[o0:o1])
		default:
			qStageQGeneric(ra, a.b8[o0:o1])
		}
	}
}

// stageBlock applies the output stage to rows [i0, i1) and columns
// [j0, j1) from acc (row stride ldacc).
func (s *QScratch) stageBlock(i0, i1, j0, j1 int, acc []int32, ldacc int) {
	q := &s.q
	if q.wideW == 0 {
		s.stageSeg(i0, i1, j0, j1, j0, acc, ldacc)
		return
	}
	// Product columns j = y*wideW + x are output column y*outW + x when
	// x < outW and are dropped otherwise.
	for j := j0; j < j1; {
		y, x := j/q.wideW, j%q.wideW
		e := min(j1, (y+1)*q.wideW)
		if xe := min(e-y*q.wideW, q.outW); x < xe {
			s.stageSeg(i0, i1, j, y*q.wideW+xe, y*q.outW+x, acc[j-j0:], ldacc)
		}
		j = e
	}
}

// stageSeg applies the output stage to rows [i0, i1) and product columns
// [j0, j1), writing output columns from jo.
func (s *QScratch) stageSeg(i0, i1, j0, j1, jo int, acc []int32, ldacc int) {
	q, ep := &s.q, &s.ep
	rows, n := i1-i0, j1-j0
	a := qStageArgs{rows: rows, n: n, acc: acc[:(rows-1)*ldacc+n], ldacc: ldacc,
		c: q.c[j0:j1], r: q.r[i0:i1], zo: ep.zo, qmin: ep.qmin, qmax: ep.qmax, relu: ep.relu,
		kind: ep.kind, ldo: ep.ldc}
	if q.y != nil {
		a.x, a.y = q.x[i0:i1], q.y[j0:j1]
	}
	switch {
	case ep.scale == nil:
	case len(ep.scale) == 1:
		a.scale = ep.scale
	case ep.perRow:
		a.scale, a.scaleStep = ep.scale[i0:i1], 1
	default:
		a.scale, a.scaleVec = ep.scale[jo:jo+n], true
	}
	if ep.bias != nil {
		if ep.perRow {
			a.bias, a.biasStep = ep.bias[i0:i1], 1
		} else {
			a.bias, a.biasVec = ep.bias[jo:jo+n], true
		}
	}
	off, end := i0*ep.ldc+jo, (i1-1)*ep.ldc+jo+n
	switch ep.kind {
	case QOutInt32:
		a.i32 = ep.i32[off:end]
	case QOutFloat32:
		a.f32 = ep.f32[off:end]
	default:
		a.b8 = ep.b8[off:end]
	}
	s.kern.stage(a)
}

// qStageI32Generic writes v (max(v, 0) with relu) for len(out) columns.
func qStageI32Generic(a qRowArgs, out []int32) {
	acc, c := a.acc[:len(out)], a.c[:len(out)]
	for j := range out {
		v := acc[j] + a.r + c[j]
		if a.y != nil {
			v += a.x * a.y[j]
		}
		if a.relu && v < 0 {
			v = 0
		}
		out[j] = v
	}
}

// qStageF32Generic dequantises len(out) columns.
func qStageF32Generic(a qRowArgs, out []float32) {
	acc, c := a.acc[:len(out)], a.c[:len(out)]
	for j := range out {
		v := acc[j] + a.r + c[j]
		if a.y != nil {
			v += a.x * a.y[j]
		}
		s := a.scale[0]
		if a.scaleVec {
			s = a.scale[j]
		}
		f := float32(float32(v) * s)
		if a.bias != nil {
			b := a.bias[0]
			if a.biasVec {
				b = a.bias[j]
			}
			f = float32(f + b)
		}
		if a.relu && f < 0 {
			f = 0
		}
		out[j] = f
	}
}

// qStageQGeneric requantises len(out) columns to bytes (uint8 or int8
// two's complement, per qmin/qmax).
func qStageQGeneric(a qRowArgs, out []byte) {
	acc, c := a.acc[:len(out)], a.c[:len(out)]
	for j := range out {
		v := acc[j] + a.r + c[j]
		if a.y != nil {
			v += a.x * a.y[j]
		}
		s := a.scale[0]
		if a.scaleVec {
			s = a.scale[j]
		}
		f := float32(float32(v) * s)
		if f < -qClampF {
			f = -qClampF
		}
		if f > qClampF {
			f = qClampF
		}
		q := int32(math.RoundToEven(float64(f))) + a.zo
		q = min(max(q, a.qmin), a.qmax)
		out[j] = byte(q)
	}
}
