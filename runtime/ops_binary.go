package runtime

import (
	"fmt"
	"math"
)

// This file holds the broadcasting binary and variadic operators:
// arithmetic (Add, Sub, Mul, Div, Pow, Mod), comparisons (Equal, Greater,
// Less, GreaterOrEqual, LessOrEqual), logic (And, Or, Xor), PRelu, and the
// variadic Min, Max, Sum and Mean.

func init() {
	for _, op := range []string{"Add", "Sub", "Mul", "Div"} {
		Register(OpSpec{Type: op, MinInputs: 2, MaxInputs: 2, Outputs: 1, Compile: ewCompileArith(op), Grad: gradArith(op)})
	}
	for _, op := range []string{"Equal", "Greater", "Less", "GreaterOrEqual", "LessOrEqual"} {
		Register(OpSpec{Type: op, MinInputs: 2, MaxInputs: 2, Outputs: 1, Compile: ewCompileCompare(op), NonDiff: []int{0, 1}})
	}
	for _, op := range []string{"And", "Or", "Xor"} {
		Register(OpSpec{Type: op, MinInputs: 2, MaxInputs: 2, Outputs: 1, Compile: ewCompileLogic(op), NonDiff: []int{0, 1}})
	}
	for _, op := range []string{"Min", "Max", "Sum", "Mean"} {
		Register(OpSpec{Type: op, MinInputs: 1, Outputs: 1, Compile: ewCompileVariadic(op), Grad: gradVariadic(op)})
	}
	Register(OpSpec{Type: "Pow", MinInputs: 2, MaxInputs: 2, Outputs: 1, Compile: compilePow, Grad: gradPow})
	Register(OpSpec{Type: "Mod", MinInputs: 2, MaxInputs: 2, Outputs: 1, Compile: compileMod, Grad: gradArith("Mod")})
	Register(OpSpec{Type: "PRelu", MinInputs: 2, MaxInputs: 2, Outputs: 1, Compile: compilePRelu, Grad: gradPRelu})
}

// ---------------------------------------------------------------- arithmetic

// ewArith returns the run loops of Add, Sub, Mul or Div (and Sum's Add).
func ewArith[T ewNum](op string) ewBin[T, T, T] {
	switch op {
	case "Add", "Sum", "Mean":
		return ewBin[T, T, T]{
			vv: func(d, a, b []T) {
				a, b = a[:len(d)], b[:len(d)]
				for i := range d {
					d[i] = a[i] + b[i]
				}
			},
			vs: func(d, a []T, s T) {
				a = a[:len(d)]
				for i := range d {
					d[i] = a[i] + s
				}
			},
			sv: func(d []T, s T, b []T) {
				b = b[:len(d)]
				for i := range d {
					d[i] = s + b[i]
				}
			},
		}
	case "Sub":
		return ewBin[T, T, T]{
			vv: func(d, a, b []T) {
				a, b = a[:len(d)], b[:len(d)]
				for i := range d {
					d[i] = a[i] - b[i]
				}
			},
			vs: func(d, a []T, s T) {
				a = a[:len(d)]
				for i := range d {
					d[i] = a[i] - s
				}
			},
			sv: func(d []T, s T, b []T) {
				b = b[:len(d)]
				for i := range d {
					d[i] = s - b[i]
				}
			},
		}
	case "Mul":
		return ewBin[T, T, T]{
			vv: func(d, a, b []T) {
				a, b = a[:len(d)], b[:len(d)]
				for i := range d {
					d[i] = a[i] * b[i]
				}
			},
			vs: func(d, a []T, s T) {
				a = a[:len(d)]
				for i := range d {
					d[i] = a[i] * s
				}
			},
			sv: func(d []T, s T, b []T) {
				b = b[:len(d)]
				for i := range d {
					d[i] = s * b[i]
				}
			},
		}
	case "Div":
		return ewBin[T, T, T]{
			vv: func(d, a, b []T) {
				a, b = a[:len(d)], b[:len(d)]
				for i := range d {
					d[i] = a[i] / b[i]
				}
			},
			vs: func(d, a []T, s T) {
				a = a[:len(d)]
				for i := range d {
					d[i] = a[i] / s
				}
			},
			sv: func(d []T, s T, b []T) {
				b = b[:len(d)]
				for i := range d {
					d[i] = s / b[i]
				}
			},
		}
	case "Min":
		return ewBinOf(func(a, b T) T {
			if a < b || a != a { // NaN propagates, like numpy.minimum
				return a
			}
			return b
		})
	case "Max":
		return ewBinOf(func(a, b T) T {
			if a > b || a != a {
				return a
			}
			return b
		})
	}
	panic("runtime: unknown arithmetic op " + op) // unreachable: ops are fixed at init
}

// ewIsFloat reports whether T is float32.
func ewIsFloat[T ewElem]() bool {
	var z T
	_, ok := any(z).(float32)
	return ok
}

// ewNoZero returns a check that the integer divisor (input 1) has no zero.
func ewNoZero[T ewNum]() func(in []*Tensor) error {
	return func(in []*Tensor) error {
		for i, v := range ewData[T](in[1]) {
			if v == 0 {
				return fmt.Errorf("integer division by zero (element %d of input 1)", i)
			}
		}
		return nil
	}
}

func ewArithKernel[T ewNum](op string, p *BroadcastPlan) Kernel {
	k := ewNewBin(p, ewArith[T](op))
	if op == "Div" && !ewIsFloat[T]() {
		k.check = ewNoZero[T]()
	}
	return k
}

func ewCompileArith(op string) CompileFunc {
	return func(n *Node, in []ValueMeta) (Kernel, []ValueMeta, error) {
		p, err := ewBinaryPlan(in, ewNumeric, false)
		if err != nil {
			return nil, nil, err
		}
		var k Kernel
		switch in[0].DType {
		case Float32:
			k = ewArithKernel[float32](op, p)
		case Int8:
			k = ewArithKernel[int8](op, p)
		case Uint8:
			k = ewArithKernel[uint8](op, p)
		case Int32:
			k = ewArithKernel[int32](op, p)
		case Int64:
			k = ewArithKernel[int64](op, p)
		}
		return k, []ValueMeta{{DType: in[0].DType, Shape: append([]int{}, p.Shape()...)}}, nil
	}
}

// ---------------------------------------------------------------- comparisons

func ewCompareKernel[T ewNum](op string, p *BroadcastPlan) Kernel {
	var f func(a, b T) bool
	switch op {
	case "Equal":
		f = func(a, b T) bool { return a == b }
	case "Greater":
		f = func(a, b T) bool { return a > b }
	case "Less":
		f = func(a, b T) bool { return a < b }
	case "GreaterOrEqual":
		f = func(a, b T) bool { return a >= b }
	case "LessOrEqual":
		f = func(a, b T) bool { return a <= b }
	}
	return ewNewBin(p, ewBinOf(f))
}

func ewCompileCompare(op string) CompileFunc {
	return func(n *Node, in []ValueMeta) (Kernel, []ValueMeta, error) {
		allowed := ewNumeric
		if op == "Equal" {
			allowed = ewAllDTypes
		}
		p, err := ewBinaryPlan(in, allowed, false)
		if err != nil {
			return nil, nil, err
		}
		var k Kernel
		switch in[0].DType {
		case Float32:
			k = ewCompareKernel[float32](op, p)
		case Int8:
			k = ewCompareKernel[int8](op, p)
		case Uint8:
			k = ewCompareKernel[uint8](op, p)
		case Int32:
			k = ewCompareKernel[int32](op, p)
		case Int64:
			k = ewCompareKernel[int64](op, p)
		case Bool:
			k = ewNewBin(p, ewBinOf(func(a, b bool) bool { return a == b }))
		}
		return k, []ValueMeta{{DType: Bool, Shape: append([]int{}, p.Shape()...)}}, nil
	}
}

// ---------------------------------------------------------------- logic

func ewCompileLogic(op string) CompileFunc {
	return func(n *Node, in []ValueMeta) (Kernel, []ValueMeta, error) {
		p, err := ewBinaryPlan(in, ewBoolOnly, false)
		if err != nil {
			return nil, nil, err
		}
		var f func(a, b bool) bool
		switch op {
		case "And":
			f = func(a, b bool) bool { return a && b }
		case "Or":
			f = func(a, b bool) bool { return a || b }
		case "Xor":
			f = func(a, b bool) bool { return a != b }
		}
		return ewNewBin(p, ewBinOf(f)), []ValueMeta{{DType: Bool, Shape: append([]int{}, p.Shape()...)}}, nil
	}
}

// ---------------------------------------------------------------- variadic

// ewVarKernel folds a binary operator over its inputs into the output:
// out = in0 op in1, then out = out op in_k; Mean divides by the count.
type ewVarKernel[T ewNum] struct {
	ewCount
	plans []*BroadcastPlan // plans[0]: (in0, in1) or in0 alone; plans[k-1]: (out, in_k)
	f     ewBin[T, T, T]
	mean  bool
}

func (k *ewVarKernel[T]) Run(ctx *ExecContext, in, out []*Tensor) error {
	d := ewData[T](out[0])
	if len(in) != len(k.plans)+1 && !(len(in) == 1 && len(k.plans) == 1) {
		return fmt.Errorf("%d inputs, compiled for %d", len(in), len(k.plans)+1)
	}
	for i, p := range k.plans {
		var err error
		switch {
		case len(in) == 1:
			err = p.Check(len(d), len(ewData[T](in[0])))
		case i == 0:
			err = p.Check(len(d), len(ewData[T](in[0])), len(ewData[T](in[1])))
		default:
			err = p.Check(len(d), len(d), len(ewData[T](in[i+1])))
		}
		if err != nil {
			return err
		}
	}
	if len(in) == 1 {
		ewBroadcastCopy(k.plans[0], ctx.Threads, d, ewData[T](in[0]))
		return nil
	}
	ewRunBin(k.plans[0], ctx.Threads, k.f, d, ewData[T](in[0]), ewData[T](in[1]))
	for i := 2; i < len(in); i++ {
		ewRunBin(k.plans[i-1], ctx.Threads, k.f, d, d, ewData[T](in[i]))
	}
	if k.mean {
		c := T(len(in))
		ewParallel(ctx.Threads, len(d), func(lo, hi int) {
			for i := lo; i < hi; i++ {
				d[i] /= c
			}
		})
	}
	return nil
}

func ewNewVar[T ewNum](op string, plans []*BroadcastPlan) Kernel {
	return &ewVarKernel[T]{ewCount: ewCount{int64(plans[0].Len())}, plans: plans, f: ewArith[T](op), mean: op == "Mean"}
}

func ewCompileVariadic(op string) CompileFunc {
	return func(n *Node, in []ValueMeta) (Kernel, []ValueMeta, error) {
		allowed := ewNumeric
		if op == "Mean" {
			allowed = ewFloatOnly
		}
		dt := in[0].DType
		shapes := make([][]int, len(in))
		for i, m := range in {
			if m.DType == Undefined {
				return nil, nil, fmt.Errorf("input %d is empty; every input of %s must be present", i, op)
			}
			if m.DType != dt {
				return nil, nil, fmt.Errorf("input %d has dtype %v, input 0 has %v; insert a Cast", i, m.DType, dt)
			}
			shapes[i] = m.Shape
		}
		if err := ewCheckDType("input 0", dt, allowed); err != nil {
			return nil, nil, err
		}
		outShape, err := ewBroadcastAll(shapes...)
		if err != nil {
			return nil, nil, err
		}
		plans := make([]*BroadcastPlan, max(1, len(in)-1))
		for i := range plans {
			var err error
			switch {
			case len(in) == 1:
				plans[i], err = NewBroadcastPlan(outShape, shapes[0])
			case i == 0:
				plans[i], err = NewBroadcastPlan(outShape, shapes[0], shapes[1])
			default:
				plans[i], err = NewBroadcastPlan(outShape, outShape, shapes[i+1])
			}
			if err != nil {
				return nil, nil, err
			}
		}
		var k Kernel
		switch dt {
		case Float32:
			k = ewNewVar[float32](op, plans)
		case Int8:
			k = ewNewVar[int8](op, plans)
		case Uint8:
			k = ewNewVar[uint8](op, plans)
		case Int32:
			k = ewNewVar[int32](op, plans)
		case Int64:
			k = ewNewVar[int64](op, plans)
		}
		return k, []ValueMeta{{DType: dt, Shape: outShape}}, nil
	}
}

// ---------------------------------------------------------------- Pow

// ewPowOf is Pow for base T and exponent U, evaluated in float64 (exact for
// integer results below 2^53; float32 results are rounded once).
func ewPowOf[T, U ewNum](p *BroadcastPlan) Kernel {
	return ewNewBin(p, ewBinOf(func(a T, b U) T { return T(math.Pow(float64(a), float64(b))) }))
}

// ewSquare is x*x (Pow with a constant exponent 2), identical to
// math.Pow's result rounded to float32.
func ewSquare() ewBin[float32, float32, float32] {
	sq := func(d, a []float32) {
		a = a[:len(d)]
		for i, v := range a {
			d[i] = v * v
		}
	}
	return ewBin[float32, float32, float32]{
		vv: func(d, a, _ []float32) { sq(d, a) },
		vs: func(d, a []float32, _ float32) { sq(d, a) },
		sv: func(d []float32, a float32, _ []float32) {
			for i := range d {
				d[i] = a * a
			}
		},
	}
}

func ewPowBase[T ewNum](p *BroadcastPlan, exp DType) Kernel {
	switch exp {
	case Float32:
		return ewPowOf[T, float32](p)
	case Int8:
		return ewPowOf[T, int8](p)
	case Uint8:
		return ewPowOf[T, uint8](p)
	case Int32:
		return ewPowOf[T, int32](p)
	case Int64:
		return ewPowOf[T, int64](p)
	}
	return nil
}

func compilePow(n *Node, in []ValueMeta) (Kernel, []ValueMeta, error) {
	p, err := ewBinaryPlan(in, ewNumeric, true)
	if err != nil {
		return nil, nil, err
	}
	if err := ewCheckDType("exponent (input 1)", in[1].DType, ewNumeric); err != nil {
		return nil, nil, err
	}
	out := []ValueMeta{{DType: in[0].DType, Shape: append([]int{}, p.Shape()...)}}
	if c := in[1].Const; in[0].DType == Float32 && c != nil && c.Len() == 1 && c.Float64At(0) == 2 {
		return ewNewBin(p, ewSquare()), out, nil
	}
	var k Kernel
	switch in[0].DType {
	case Float32:
		k = ewPowBase[float32](p, in[1].DType)
	case Int8:
		k = ewPowBase[int8](p, in[1].DType)
	case Uint8:
		k = ewPowBase[uint8](p, in[1].DType)
	case Int32:
		k = ewPowBase[int32](p, in[1].DType)
	case Int64:
		k = ewPowBase[int64](p, in[1].DType)
	}
	return k, out, nil
}

// ---------------------------------------------------------------- Mod

// ewModKernel is Mod for integers: with fmod the remainder takes the sign
// of the dividend (C fmod, Go %), without it the sign of the divisor
// (Python %).
func ewModKernel[T ewInt](p *BroadcastPlan, fmod bool) Kernel {
	var f func(a, b T) T
	if fmod {
		f = func(a, b T) T { return a % b }
	} else {
		f = func(a, b T) T {
			r := a % b
			if r != 0 && (r < 0) != (b < 0) {
				r += b
			}
			return r
		}
	}
	k := ewNewBin(p, ewBinOf(f))
	k.check = ewNoZero[T]()
	return k
}

func compileMod(n *Node, in []ValueMeta) (Kernel, []ValueMeta, error) {
	p, err := ewBinaryPlan(in, ewNumeric, false)
	if err != nil {
		return nil, nil, err
	}
	fmod := n.AttrInt("fmod", 0)
	if fmod != 0 && fmod != 1 {
		return nil, nil, fmt.Errorf("attribute fmod must be 0 or 1, got %d", fmod)
	}
	var k Kernel
	switch in[0].DType {
	case Float32:
		if fmod != 1 {
			return nil, nil, fmt.Errorf("attribute fmod must be 1 for float32 inputs (the ONNX spec requires it)")
		}
		k = ewNewBin(p, ewBinOf(func(a, b float32) float32 { return float32(math.Mod(float64(a), float64(b))) }))
	case Int8:
		k = ewModKernel[int8](p, fmod == 1)
	case Uint8:
		k = ewModKernel[uint8](p, fmod == 1)
	case Int32:
		k = ewModKernel[int32](p, fmod == 1)
	case Int64:
		k = ewModKernel[int64](p, fmod == 1)
	}
	return k, []ValueMeta{{DType: in[0].DType, Shape: append([]int{}, p.Shape()...)}}, nil
}

// ---------------------------------------------------------------- PRelu

func ewPRelu[T ewSigned](p *BroadcastPlan) Kernel {
	return ewNewBin(p, ewBinOf(func(x, s T) T {
		if x < 0 {
			return x * s
		}
		return x
	}))
}

func compilePRelu(n *Node, in []ValueMeta) (Kernel, []ValueMeta, error) {
	x, slope := in[0], in[1]
	if err := ewCheckDType("X (input 0)", x.DType, ewSignedSet); err != nil {
		return nil, nil, err
	}
	if slope.DType != x.DType {
		return nil, nil, fmt.Errorf("slope (input 1) has dtype %v, X has %v", slope.DType, x.DType)
	}
	p, err := NewBroadcastPlan(x.Shape, x.Shape, slope.Shape)
	if err != nil {
		return nil, nil, fmt.Errorf("slope must broadcast to X: %w", err)
	}
	var k Kernel
	switch x.DType {
	case Float32:
		k = ewPRelu[float32](p)
	case Int8:
		k = ewPRelu[int8](p)
	case Int32:
		k = ewPRelu[int32](p)
	case Int64:
		k = ewPRelu[int64](p)
	}
	return k, []ValueMeta{{DType: x.DType, Shape: append([]int{}, x.Shape...)}}, nil
}
