package runtime

import (
	"fmt"
	"strings"

	"github.com/compressml/compress/internal/parallel"
)

// This file holds the machinery shared by the elementwise operators
// (ops_unary.go, ops_binary.go, ops_softmax.go) and the operators that only
// move or convert elements: Where, Expand, Cast and CastLike.
//
// Kernels are written once with Go generics over the element types and
// instantiated per dtype at compile time. Hot binary operators are given as
// three slice loops (vector-vector, vector-scalar, scalar-vector) that the
// broadcast plan calls once per contiguous run, so the common cases (same
// shape, scalar, per-channel bias, row vector) run tight loops without a
// function call per element.

// ewElem is every element type a Tensor can hold.
type ewElem interface {
	float32 | int8 | uint8 | int32 | int64 | bool
}

// ewNum is the numeric element types.
type ewNum interface {
	float32 | int8 | uint8 | int32 | int64
}

// ewInt is the integer element types.
type ewInt interface {
	int8 | uint8 | int32 | int64
}

// ewSigned is the signed numeric element types.
type ewSigned interface {
	float32 | int8 | int32 | int64
}

// Dtype sets used in validation.
var (
	ewNumeric    = []DType{Float32, Int8, Uint8, Int32, Int64}
	ewSignedSet  = []DType{Float32, Int8, Int32, Int64}
	ewFloatOnly  = []DType{Float32}
	ewBoolOnly   = []DType{Bool}
	ewAllDTypes  = []DType{Float32, Int8, Uint8, Int32, Int64, Bool}
	ewIntegerSet = []DType{Int8, Uint8, Int32, Int64}
)

// ewData returns t's data slice for the element type T. It returns nil
// when t holds another dtype.
func ewData[T ewElem](t *Tensor) []T {
	var z T
	var s any
	switch any(z).(type) {
	case float32:
		s = t.F32
	case int8:
		s = t.I8
	case uint8:
		s = t.U8
	case int32:
		s = t.I32
	case int64:
		s = t.I64
	case bool:
		s = t.B
	}
	r, _ := s.([]T)
	return r
}

// ewCheckDType reports an error unless dt is one of allowed.
func ewCheckDType(what string, dt DType, allowed []DType) error {
	for _, a := range allowed {
		if dt == a {
			return nil
		}
	}
	names := make([]string, len(allowed))
	for i, a := range allowed {
		names[i] = a.String()
	}
	return fmt.Errorf("%s has dtype %v; supported: %s", what, dt, strings.Join(names, ", "))
}

// ewParallel runs fn over [0, n) split across threads when n is large.
func ewParallel(threads, n int, fn func(lo, hi int)) {
	if n < ewParallelMin {
		threads = 1
	}
	parallel.For(threads, n, ewGrain, fn)
}

// ewCount is embedded by kernels that report one operation per output
// element as their MACs.
type ewCount struct{ n int64 }

// MACs reports the number of output elements.
func (c ewCount) MACs() int64 { return c.n }

// ---------------------------------------------------------------- unary

// ewUnaryKernel applies a slice function to same-sized input and output.
type ewUnaryKernel[A, R ewElem] struct {
	f func(d []R, a []A)
}

func (k *ewUnaryKernel[A, R]) Run(ctx *ExecContext, in, out []*Tensor) error {
	a, d := ewData[A](in[0]), ewData[R](out[0])
	if len(a) != len(d) {
		return fmt.Errorf("input has %d elements, output %d", len(a), len(d))
	}
	ewParallel(ctx.Threads, len(d), func(lo, hi int) { k.f(d[lo:hi], a[lo:hi]) })
	return nil
}

// ewMap lifts an element function to a slice function.
func ewMap[A, R ewElem](f func(A) R) func(d []R, a []A) {
	return func(d []R, a []A) {
		a = a[:len(d)]
		for i, v := range a {
			d[i] = f(v)
		}
	}
}

// ewUnary returns a unary kernel and the output metadata (same shape).
func ewUnary[A, R ewElem](in ValueMeta, outDT DType, f func(d []R, a []A)) (Kernel, []ValueMeta, error) {
	return &ewUnaryKernel[A, R]{f: f}, []ValueMeta{{DType: outDT, Shape: append([]int{}, in.Shape...)}}, nil
}

// ---------------------------------------------------------------- binary

// ewBin is a binary operator as three run loops: both operands walking,
// the second fixed, the first fixed.
type ewBin[A, B, R ewElem] struct {
	vv func(d []R, a []A, b []B)
	vs func(d []R, a []A, b B)
	sv func(d []R, a A, b []B)
}

// ewBinOf builds the run loops from an element function (a call per
// element: for the less common operators).
func ewBinOf[A, B, R ewElem](f func(A, B) R) ewBin[A, B, R] {
	return ewBin[A, B, R]{
		vv: func(d []R, a []A, b []B) {
			a, b = a[:len(d)], b[:len(d)]
			for i := range d {
				d[i] = f(a[i], b[i])
			}
		},
		vs: func(d []R, a []A, b B) {
			a = a[:len(d)]
			for i := range d {
				d[i] = f(a[i], b)
			}
		},
		sv: func(d []R, a A, b []B) {
			b = b[:len(d)]
			for i := range d {
				d[i] = f(a, b[i])
			}
		},
	}
}

// ewRunBin runs f over a two-operand plan.
func ewRunBin[A, B, R ewElem](p *BroadcastPlan, threads int, f ewBin[A, B, R], d []R, a []A, b []B) {
	sa, sb := p.InnerStride(0), p.InnerStride(1)
	p.ForEach(threads, func(o, ia, ib, _, n int) {
		switch {
		case sa == 1 && sb == 1:
			f.vv(d[o:o+n], a[ia:ia+n], b[ib:ib+n])
		case sa == 1:
			f.vs(d[o:o+n], a[ia:ia+n], b[ib])
		case sb == 1:
			f.sv(d[o:o+n], a[ia], b[ib:ib+n])
		default:
			f.vv(d[o:o+1], a[ia:ia+1], b[ib:ib+1])
			for i := o + 1; i < o+n; i++ {
				d[i] = d[o]
			}
		}
	})
}

// ewBinKernel is a broadcasting binary operator.
type ewBinKernel[A, B, R ewElem] struct {
	ewCount
	plan *BroadcastPlan
	f    ewBin[A, B, R]
	// check, when set, validates the inputs before running (integer
	// division by zero).
	check func(in []*Tensor) error
}

func (k *ewBinKernel[A, B, R]) Run(ctx *ExecContext, in, out []*Tensor) error {
	if k.check != nil {
		if err := k.check(in); err != nil {
			return err
		}
	}
	a, b, d := ewData[A](in[0]), ewData[B](in[1]), ewData[R](out[0])
	if err := k.plan.Check(len(d), len(a), len(b)); err != nil {
		return err
	}
	ewRunBin(k.plan, ctx.Threads, k.f, d, a, b)
	return nil
}

// ewNewBin returns a binary kernel over plan.
func ewNewBin[A, B, R ewElem](p *BroadcastPlan, f ewBin[A, B, R]) *ewBinKernel[A, B, R] {
	return &ewBinKernel[A, B, R]{ewCount: ewCount{int64(p.Len())}, plan: p, f: f}
}

// ewBinaryPlan validates a two-input operator's inputs (both present, same
// dtype unless mixed is set, dtype in allowed) and plans their broadcast.
func ewBinaryPlan(in []ValueMeta, allowed []DType, mixed bool) (*BroadcastPlan, error) {
	if len(in) < 2 || in[0].DType == Undefined || in[1].DType == Undefined {
		return nil, fmt.Errorf("needs two inputs")
	}
	if err := ewCheckDType("input 0", in[0].DType, allowed); err != nil {
		return nil, err
	}
	if !mixed && in[1].DType != in[0].DType {
		return nil, fmt.Errorf("inputs have different dtypes (%v and %v); insert a Cast", in[0].DType, in[1].DType)
	}
	out, err := BroadcastShapes(in[0].Shape, in[1].Shape)
	if err != nil {
		return nil, err
	}
	if err := CheckShape(out); err != nil {
		return nil, err
	}
	return NewBroadcastPlan(out, in[0].Shape, in[1].Shape)
}

// ---------------------------------------------------------------- copy

// ewBroadcastCopy writes a broadcast to plan's output into d.
func ewBroadcastCopy[T ewElem](p *BroadcastPlan, threads int, d, a []T) {
	s := p.InnerStride(0)
	p.ForEach(threads, func(o, ia, _, _, n int) {
		if s == 1 {
			copy(d[o:o+n], a[ia:ia+n])
			return
		}
		v := a[ia]
		for i := o; i < o+n; i++ {
			d[i] = v
		}
	})
}

// ---------------------------------------------------------------- Where

func init() {
	Register(OpSpec{Type: "Where", MinInputs: 3, MaxInputs: 3, Outputs: 1, Compile: compileWhere,
		Grad: gradWhere, NonDiff: []int{0}})
	Register(OpSpec{Type: "Expand", MinInputs: 2, MaxInputs: 2, Outputs: 1, Compile: compileExpand,
		Grad: gradExpand, StaticInputs: []int{1}, NonDiff: []int{1}})
	Register(OpSpec{Type: "Cast", MinInputs: 1, MaxInputs: 1, Outputs: 1, Compile: compileCast, Grad: gradCast})
	Register(OpSpec{Type: "CastLike", MinInputs: 2, MaxInputs: 2, Outputs: 1, Compile: compileCastLike,
		Grad: gradCast, NonDiff: []int{1}})
}

type ewWhereKernel[T ewElem] struct{ plan *BroadcastPlan }

func (k *ewWhereKernel[T]) Run(ctx *ExecContext, in, out []*Tensor) error {
	c, x, y, d := in[0].B, ewData[T](in[1]), ewData[T](in[2]), ewData[T](out[0])
	if err := k.plan.Check(len(d), len(c), len(x), len(y)); err != nil {
		return err
	}
	sc, sx, sy := k.plan.InnerStride(0), k.plan.InnerStride(1), k.plan.InnerStride(2)
	k.plan.ForEach(ctx.Threads, func(o, ic, ix, iy, n int) {
		dd := d[o : o+n]
		for i := range dd {
			if c[ic+i*sc] {
				dd[i] = x[ix+i*sx]
			} else {
				dd[i] = y[iy+i*sy]
			}
		}
	})
	return nil
}

func compileWhere(n *Node, in []ValueMeta) (Kernel, []ValueMeta, error) {
	if in[0].DType != Bool {
		return nil, nil, fmt.Errorf("condition (input 0) must be bool, got %v", in[0].DType)
	}
	if in[1].DType != in[2].DType {
		return nil, nil, fmt.Errorf("X and Y (inputs 1 and 2) have different dtypes (%v and %v)", in[1].DType, in[2].DType)
	}
	if err := ewCheckDType("X (input 1)", in[1].DType, ewAllDTypes); err != nil {
		return nil, nil, err
	}
	out, err := ewBroadcastAll(in[0].Shape, in[1].Shape, in[2].Shape)
	if err != nil {
		return nil, nil, err
	}
	p, err := NewBroadcastPlan(out, in[0].Shape, in[1].Shape, in[2].Shape)
	if err != nil {
		return nil, nil, err
	}
	var k Kernel
	switch in[1].DType {
	case Float32:
		k = &ewWhereKernel[float32]{p}
	case Int8:
		k = &ewWhereKernel[int8]{p}
	case Uint8:
		k = &ewWhereKernel[uint8]{p}
	case Int32:
		k = &ewWhereKernel[int32]{p}
	case Int64:
		k = &ewWhereKernel[int64]{p}
	case Bool:
		k = &ewWhereKernel[bool]{p}
	}
	return k, []ValueMeta{{DType: in[1].DType, Shape: out}}, nil
}

// ---------------------------------------------------------------- Expand

type ewExpandKernel[T ewElem] struct{ plan *BroadcastPlan }

func (k *ewExpandKernel[T]) Run(ctx *ExecContext, in, out []*Tensor) error {
	a, d := ewData[T](in[0]), ewData[T](out[0])
	if err := k.plan.Check(len(d), len(a)); err != nil {
		return err
	}
	ewBroadcastCopy(k.plan, ctx.Threads, d, a)
	return nil
}

// ewCopyKernel returns a kernel copying (broadcasting) input 0 to out of
// the plan's shape, for any dtype.
func ewCopyKernel(dt DType, p *BroadcastPlan) Kernel {
	switch dt {
	case Float32:
		return &ewExpandKernel[float32]{p}
	case Int8:
		return &ewExpandKernel[int8]{p}
	case Uint8:
		return &ewExpandKernel[uint8]{p}
	case Int32:
		return &ewExpandKernel[int32]{p}
	case Int64:
		return &ewExpandKernel[int64]{p}
	case Bool:
		return &ewExpandKernel[bool]{p}
	}
	return nil
}

func compileExpand(n *Node, in []ValueMeta) (Kernel, []ValueMeta, error) {
	if err := ewCheckDType("input 0", in[0].DType, ewAllDTypes); err != nil {
		return nil, nil, err
	}
	if in[1].Const == nil {
		return nil, nil, fmt.Errorf("the shape (input 1) must be known when the graph is planned (a constant or computed from constants)")
	}
	if len(in[1].Shape) != 1 {
		return nil, nil, fmt.Errorf("the shape (input 1) must be a 1-D tensor, got shape %s", ewShape(in[1].Shape))
	}
	vals, err := in[1].Const.Int64s()
	if err != nil {
		return nil, nil, fmt.Errorf("the shape (input 1): %w", err)
	}
	shape := make([]int, len(vals))
	for i, v := range vals {
		if v < 0 || v > MaxElements {
			return nil, nil, fmt.Errorf("the shape (input 1) has invalid dimension %d at index %d", v, i)
		}
		shape[i] = int(v)
	}
	out, err := BroadcastShapes(in[0].Shape, shape)
	if err != nil {
		return nil, nil, err
	}
	if err := CheckShape(out); err != nil {
		return nil, nil, err
	}
	p, err := NewBroadcastPlan(out, in[0].Shape)
	if err != nil {
		return nil, nil, err
	}
	return ewCopyKernel(in[0].DType, p), []ValueMeta{{DType: in[0].DType, Shape: out}}, nil
}

// ---------------------------------------------------------------- Cast

// ONNX TensorProto.DataType codes Cast accepts.
const (
	onnxFloat   = 1
	onnxUint8   = 2
	onnxInt8    = 3
	onnxUint16  = 4
	onnxInt16   = 5
	onnxInt32   = 6
	onnxInt64   = 7
	onnxString  = 8
	onnxBool    = 9
	onnxFloat16 = 10
	onnxDouble  = 11
	onnxUint32  = 12
	onnxUint64  = 13
	onnxBF16    = 16
)

// ewCastTarget maps Cast's "to" attribute to a runtime dtype. DOUBLE maps to
// float32: the runtime has no float64, so a cast to double keeps float32
// precision (the importer likewise stores double tensors as float32).
func ewCastTarget(to int64) (DType, error) {
	switch to {
	case onnxFloat, onnxDouble:
		return Float32, nil
	case onnxUint8:
		return Uint8, nil
	case onnxInt8:
		return Int8, nil
	case onnxInt32:
		return Int32, nil
	case onnxInt64:
		return Int64, nil
	case onnxBool:
		return Bool, nil
	}
	name := map[int64]string{onnxUint16: "UINT16", onnxInt16: "INT16", onnxString: "STRING", onnxFloat16: "FLOAT16",
		onnxUint32: "UINT32", onnxUint64: "UINT64", onnxBF16: "BFLOAT16"}[to]
	if name == "" {
		name = "unknown"
	}
	return Undefined, fmt.Errorf("cast to ONNX data type %d (%s) is not supported; supported: FLOAT(1), UINT8(2), INT8(3), INT32(6), INT64(7), BOOL(9), DOUBLE(11, computed as float32)", to, name)
}

// ewConvert converts numeric elements with Go conversion semantics
// (floats truncate toward zero, integers wrap).
func ewConvert[S, D ewNum](d []D, s []S) {
	s = s[:len(d)]
	for i, v := range s {
		d[i] = D(v)
	}
}

func ewToBool[S ewNum](d []bool, s []S) {
	s = s[:len(d)]
	for i, v := range s {
		d[i] = v != 0
	}
}

func ewFromBool[D ewNum](d []D, s []bool) {
	s = s[:len(d)]
	for i, v := range s {
		if v {
			d[i] = 1
		} else {
			d[i] = 0
		}
	}
}

// ewCastFrom returns the kernel converting S elements to dt.
func ewCastFrom[S ewNum](dt DType, shape []int) (Kernel, []ValueMeta, error) {
	in := ValueMeta{Shape: shape}
	switch dt {
	case Float32:
		return ewUnary(in, dt, ewConvert[S, float32])
	case Int8:
		return ewUnary(in, dt, ewConvert[S, int8])
	case Uint8:
		return ewUnary(in, dt, ewConvert[S, uint8])
	case Int32:
		return ewUnary(in, dt, ewConvert[S, int32])
	case Int64:
		return ewUnary(in, dt, ewConvert[S, int64])
	case Bool:
		return ewUnary(in, dt, ewToBool[S])
	}
	return nil, nil, fmt.Errorf("cannot cast to %v", dt)
}

// ewCast compiles a conversion from src to dst dtype.
func ewCast(src, dst DType, shape []int) (Kernel, []ValueMeta, error) {
	in := ValueMeta{Shape: shape}
	switch src {
	case Float32:
		return ewCastFrom[float32](dst, shape)
	case Int8:
		return ewCastFrom[int8](dst, shape)
	case Uint8:
		return ewCastFrom[uint8](dst, shape)
	case Int32:
		return ewCastFrom[int32](dst, shape)
	case Int64:
		return ewCastFrom[int64](dst, shape)
	case Bool:
		switch dst {
		case Float32:
			return ewUnary(in, dst, ewFromBool[float32])
		case Int8:
			return ewUnary(in, dst, ewFromBool[int8])
		case Uint8:
			return ewUnary(in, dst, ewFromBool[uint8])
		case Int32:
			return ewUnary(in, dst, ewFromBool[int32])
		case Int64:
			return ewUnary(in, dst, ewFromBool[int64])
		case Bool:
			return ewUnary(in, dst, func(d, s []bool) { copy(d, s) })
		}
	}
	return nil, nil, fmt.Errorf("cannot cast %v to %v", src, dst)
}

func compileCast(n *Node, in []ValueMeta) (Kernel, []ValueMeta, error) {
	a, ok := n.Attrs["to"]
	if !ok || a.Kind != AttrInt {
		return nil, nil, fmt.Errorf("attribute \"to\" (an int, the ONNX data type) is required")
	}
	dst, err := ewCastTarget(a.I)
	if err != nil {
		return nil, nil, err
	}
	if err := ewCheckDType("input 0", in[0].DType, ewAllDTypes); err != nil {
		return nil, nil, err
	}
	return ewCast(in[0].DType, dst, in[0].Shape)
}

func compileCastLike(n *Node, in []ValueMeta) (Kernel, []ValueMeta, error) {
	if err := ewCheckDType("input 0", in[0].DType, ewAllDTypes); err != nil {
		return nil, nil, err
	}
	if err := ewCheckDType("target_type (input 1)", in[1].DType, ewAllDTypes); err != nil {
		return nil, nil, err
	}
	return ewCast(in[0].DType, in[1].DType, in[0].Shape)
}
