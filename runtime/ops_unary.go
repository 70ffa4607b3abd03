package runtime

import (
	"fmt"
	"math"
)

// This file holds the unary elementwise operators: math functions,
// activations, Clip, Not, IsNaN and IsInf. Float math is evaluated in float64
// and rounded once where float32 evaluation would lose accuracy (Exp, Log,
// Tanh, Sigmoid, Erf, Softplus), and in float32 where the ONNX reference and
// onnxruntime compute in float32 (Elu, Selu, HardSigmoid, HardSwish).

func init() {
	floatOps := map[string]func(n *Node) (func(d, s []float32), error){
		"Sqrt":        ewF64Func(math.Sqrt),
		"Exp":         ewF64Func(math.Exp),
		"Log":         ewF64Func(math.Log),
		"Erf":         ewF64Func(math.Erf),
		"Floor":       ewF64Func(math.Floor),
		"Ceil":        ewF64Func(math.Ceil),
		"Round":       ewF64Func(math.RoundToEven),
		"Reciprocal":  ewF32Func(func(v float32) float32 { return 1 / v }),
		"Softsign":    ewF32Func(func(v float32) float32 { return v / (1 + float32(math.Abs(float64(v)))) }),
		"Softplus":    ewF64Func(ewSoftplus),
		"Sigmoid":     ewActFunc(ActSigmoid, nil),
		"Tanh":        ewActFunc(ActTanh, nil),
		"HardSwish":   ewActFunc(ActHardSwish, nil),
		"LeakyRelu":   ewActFunc(ActLeakyRelu, []string{"alpha"}),
		"HardSigmoid": ewActFunc(ActHardSigmoid, []string{"alpha", "beta"}),
		"Elu":         ewElu,
		"Selu":        ewSelu,
	}
	for op, f := range floatOps {
		Register(OpSpec{Type: op, MinInputs: 1, MaxInputs: 1, Outputs: 1, Compile: ewFloatUnaryOp(f),
			Grad: ewUnaryGradFor(op), NonDiff: ewUnaryNonDiff(op)})
	}
	for op, compile := range map[string]CompileFunc{
		"Relu": compileRelu, "Neg": compileNeg, "Abs": compileAbs, "Sign": compileSign,
		"Not": compileNot, "IsNaN": compileIsNaN, "IsInf": compileIsInf,
	} {
		Register(OpSpec{Type: op, MinInputs: 1, MaxInputs: 1, Outputs: 1, Compile: compile,
			Grad: ewUnaryGradFor(op), NonDiff: ewUnaryNonDiff(op)})
	}
	Register(OpSpec{Type: "Clip", MinInputs: 1, MaxInputs: 3, Outputs: 1, Compile: compileClip,
		Grad: gradClip, NonDiff: []int{1, 2}})
}

// ewFloatUnaryOp compiles a float32-only unary operator.
func ewFloatUnaryOp(f func(n *Node) (func(d, s []float32), error)) CompileFunc {
	return func(n *Node, in []ValueMeta) (Kernel, []ValueMeta, error) {
		if err := ewCheckDType("input 0", in[0].DType, ewFloatOnly); err != nil {
			return nil, nil, err
		}
		fn, err := f(n)
		if err != nil {
			return nil, nil, err
		}
		return ewUnary(in[0], Float32, fn)
	}
}

// ewF64Func evaluates f in float64 and rounds to float32.
func ewF64Func(f func(float64) float64) func(*Node) (func(d, s []float32), error) {
	return func(*Node) (func(d, s []float32), error) {
		return ewMap(func(v float32) float32 { return float32(f(float64(v))) }), nil
	}
}

// ewF32Func is a float32 element function.
func ewF32Func(f func(float32) float32) func(*Node) (func(d, s []float32), error) {
	return func(*Node) (func(d, s []float32), error) { return ewMap(f), nil }
}

// ewActFunc is an Activation with parameters read from the named float
// attributes (alpha, beta).
func ewActFunc(kind Activation, attrs []string) func(*Node) (func(d, s []float32), error) {
	return func(n *Node) (func(d, s []float32), error) {
		p := [2]float32{}
		p[0], p[1] = DefaultActivationParams(kind)
		for i, a := range attrs {
			p[i] = n.AttrFloat(a, p[i])
		}
		return func(d, s []float32) { actApply(kind, p[0], p[1], d, s) }, nil
	}
}

// ewSoftplus is log(1 + exp(x)) without overflow.
func ewSoftplus(x float64) float64 {
	return math.Max(x, 0) + math.Log1p(math.Exp(-math.Abs(x)))
}

// ewExp32 is exp rounded to float32.
func ewExp32(v float32) float32 { return float32(math.Exp(float64(v))) }

// ewElu is x for x >= 0 and alpha*(exp(x)-1) otherwise, in float32 like the
// ONNX reference and onnxruntime.
func ewElu(n *Node) (func(d, s []float32), error) {
	alpha := n.AttrFloat("alpha", 1)
	return ewMap(func(v float32) float32 {
		if v < 0 {
			return alpha * (ewExp32(v) - 1)
		}
		return v
	}), nil
}

// ewSelu is gamma*x for x > 0 and gamma*(alpha*exp(x) - alpha) otherwise.
func ewSelu(n *Node) (func(d, s []float32), error) {
	alpha := n.AttrFloat("alpha", 1.67326319217681884765625)
	gamma := n.AttrFloat("gamma", 1.05070102214813232421875)
	return ewMap(func(v float32) float32 {
		if v > 0 {
			return gamma * v
		}
		return gamma * (float32(alpha*ewExp32(v)) - alpha)
	}), nil
}

// ewSignedKernel instantiates a generic unary function over the signed
// numeric dtypes (and uint8 when f8u is non-nil).
func ewSignedKernel(in ValueMeta, f32 func(d, s []float32), i8 func(d, s []int8), i32 func(d, s []int32),
	i64 func(d, s []int64), u8 func(d, s []uint8)) (Kernel, []ValueMeta, error) {
	switch in.DType {
	case Float32:
		return ewUnary(in, Float32, f32)
	case Int8:
		return ewUnary(in, Int8, i8)
	case Int32:
		return ewUnary(in, Int32, i32)
	case Int64:
		return ewUnary(in, Int64, i64)
	case Uint8:
		if u8 != nil {
			return ewUnary(in, Uint8, u8)
		}
	}
	allowed := ewSignedSet
	if u8 != nil {
		allowed = ewNumeric
	}
	return nil, nil, ewCheckDType("input 0", in.DType, allowed)
}

func ewRelu[T ewSigned](d, s []T) {
	s = s[:len(d)]
	for i, v := range s {
		if v < 0 {
			v = 0
		}
		d[i] = v
	}
}

func compileRelu(n *Node, in []ValueMeta) (Kernel, []ValueMeta, error) {
	f32 := func(d, s []float32) { actApply(ActRelu, 0, 0, d, s) }
	return ewSignedKernel(in[0], f32, ewRelu[int8], ewRelu[int32], ewRelu[int64], nil)
}

func ewNeg[T ewSigned](d, s []T) {
	s = s[:len(d)]
	for i, v := range s {
		d[i] = -v
	}
}

func compileNeg(n *Node, in []ValueMeta) (Kernel, []ValueMeta, error) {
	return ewSignedKernel(in[0], ewNeg[float32], ewNeg[int8], ewNeg[int32], ewNeg[int64], nil)
}

func ewAbs[T ewNum](d, s []T) {
	s = s[:len(d)]
	for i, v := range s {
		if v < 0 {
			v = -v
		}
		d[i] = v
	}
}

func ewAbsF32(d, s []float32) {
	s = s[:len(d)]
	for i, v := range s {
		d[i] = math.Float32frombits(math.Float32bits(v) &^ (1 << 31))
	}
}

func compileAbs(n *Node, in []ValueMeta) (Kernel, []ValueMeta, error) {
	return ewSignedKernel(in[0], ewAbsF32, ewAbs[int8], ewAbs[int32], ewAbs[int64], func(d, s []uint8) { copy(d, s) })
}

// ewSign is -1, 0 or 1 (NaN stays NaN).
func ewSign[T ewNum](d, s []T) {
	s = s[:len(d)]
	for i, v := range s {
		switch {
		case v > 0:
			d[i] = 1
		case v < 0:
			d[i] = 0
			d[i]-- // -1 without a constant conversion unsigned types reject
		case v == 0:
			d[i] = 0
		default: // NaN
			d[i] = v
		}
	}
}

func compileSign(n *Node, in []ValueMeta) (Kernel, []ValueMeta, error) {
	return ewSignedKernel(in[0], ewSign[float32], ewSign[int8], ewSign[int32], ewSign[int64], ewSign[uint8])
}

func compileNot(n *Node, in []ValueMeta) (Kernel, []ValueMeta, error) {
	if err := ewCheckDType("input 0", in[0].DType, ewBoolOnly); err != nil {
		return nil, nil, err
	}
	return ewUnary(in[0], Bool, func(d, s []bool) {
		s = s[:len(d)]
		for i, v := range s {
			d[i] = !v
		}
	})
}

func compileIsNaN(n *Node, in []ValueMeta) (Kernel, []ValueMeta, error) {
	if err := ewCheckDType("input 0", in[0].DType, ewFloatOnly); err != nil {
		return nil, nil, err
	}
	return ewUnary(in[0], Bool, ewMap(func(v float32) bool { return v != v }))
}

func compileIsInf(n *Node, in []ValueMeta) (Kernel, []ValueMeta, error) {
	if err := ewCheckDType("input 0", in[0].DType, ewFloatOnly); err != nil {
		return nil, nil, err
	}
	neg, pos := n.AttrInt("detect_negative", 1) != 0, n.AttrInt("detect_positive", 1) != 0
	return ewUnary(in[0], Bool, ewMap(func(v float32) bool {
		return pos && v > math.MaxFloat32 || neg && v < -math.MaxFloat32
	}))
}

// ---------------------------------------------------------------- Clip

// ewLimits returns the lowest and highest values of T (infinities for
// float32).
func ewLimits[T ewNum]() (lo, hi T) {
	var z T
	var l, h any
	switch any(z).(type) {
	case float32:
		l, h = float32(math.Inf(-1)), float32(math.Inf(1))
	case int8:
		l, h = int8(math.MinInt8), int8(math.MaxInt8)
	case uint8:
		l, h = uint8(0), uint8(math.MaxUint8)
	case int32:
		l, h = int32(math.MinInt32), int32(math.MaxInt32)
	case int64:
		l, h = int64(math.MinInt64), int64(math.MaxInt64)
	}
	return l.(T), h.(T)
}

// ewClipKernel clamps to bounds read at run time from the optional inputs
// 1 (min) and 2 (max).
type ewClipKernel[T ewNum] struct{}

func (ewClipKernel[T]) Run(ctx *ExecContext, in, out []*Tensor) error {
	lo, hi := ewLimits[T]()
	if len(in) > 1 && in[1] != nil {
		v := ewData[T](in[1])
		if len(v) != 1 {
			return fmt.Errorf("min (input 1) must hold one value, has %d", len(v))
		}
		lo = v[0]
	}
	if len(in) > 2 && in[2] != nil {
		v := ewData[T](in[2])
		if len(v) != 1 {
			return fmt.Errorf("max (input 2) must hold one value, has %d", len(v))
		}
		hi = v[0]
	}
	s, d := ewData[T](in[0]), ewData[T](out[0])
	if len(s) != len(d) {
		return fmt.Errorf("input has %d elements, output %d", len(s), len(d))
	}
	if df, ok := any(d).([]float32); ok {
		sf := any(s).([]float32)
		l, h := any(lo).(float32), any(hi).(float32)
		ewParallel(ctx.Threads, len(d), func(a, b int) { actApply(ActClip, l, h, df[a:b], sf[a:b]) })
		return nil
	}
	ewParallel(ctx.Threads, len(d), func(a, b int) {
		for i, v := range s[a:b] {
			d[a+i] = min(max(v, lo), hi)
		}
	})
	return nil
}

func compileClip(n *Node, in []ValueMeta) (Kernel, []ValueMeta, error) {
	dt := in[0].DType
	if err := ewCheckDType("input 0", dt, ewNumeric); err != nil {
		return nil, nil, err
	}
	for i, what := range []string{"", "min (input 1)", "max (input 2)"} {
		if i == 0 || i >= len(in) || in[i].DType == Undefined {
			continue
		}
		if in[i].DType != dt {
			return nil, nil, fmt.Errorf("%s has dtype %v, input 0 has %v", what, in[i].DType, dt)
		}
		if NumElements(in[i].Shape) != 1 {
			return nil, nil, fmt.Errorf("%s must be a scalar, has shape %s", what, ewShape(in[i].Shape))
		}
	}
	var k Kernel
	switch dt {
	case Float32:
		k = ewClipKernel[float32]{}
	case Int8:
		k = ewClipKernel[int8]{}
	case Uint8:
		k = ewClipKernel[uint8]{}
	case Int32:
		k = ewClipKernel[int32]{}
	case Int64:
		k = ewClipKernel[int64]{}
	}
	return k, []ValueMeta{{DType: dt, Shape: append([]int{}, in[0].Shape...)}}, nil
}
