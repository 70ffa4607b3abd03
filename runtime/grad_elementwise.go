package runtime

import (
	"fmt"
	"math"

	"github.com/compressml/compress/internal/parallel"
)

// This file holds the backward kernels of the elementwise operators
// (ops_unary.go, ops_binary.go, ops_elementwise.go) and of Softmax and
// LogSoftmax (ops_softmax.go). Every kernel ADDS its input gradients into
// gradIn and treats a nil gradOut as zero.
//
// Gradients of broadcast operands are summed back to the operand's shape
// with a ReducePlan (deterministic whatever the thread count). When an
// operand's gradient is the output gradient times something (Mul, Div, Pow,
// Where...), the product is formed in a scratch buffer of the output's size
// owned by the kernel, then reduced; operands with the output's shape are
// accumulated directly.
//
// Only float32 values carry gradients. A node whose output is not float32
// (a float input cast to an integer, say) passes no gradient back: its
// backward is ewNoGrad.

// ewNoGrad is the backward of a node through which no gradient flows.
type ewNoGrad struct{}

// Backward does nothing.
func (ewNoGrad) Backward(ctx *ExecContext, in, out, gradOut, gradIn []*Tensor) error { return nil }

// ewGradFloat reports whether input i and output 0 are float32, that is,
// whether a gradient can flow from the output to that input.
func ewGradFloat(in, out []ValueMeta, i int) bool {
	return i < len(in) && in[i].DType == Float32 && len(out) > 0 && out[0].DType == Float32
}

// ewSerial reports whether an elementwise backward over n elements runs on
// the calling goroutine (and so must not build a closure for parallel.For).
func ewSerial(threads, n int) bool { return threads <= 1 || n < ewParallelMin }

// ewLenErr describes tensors whose sizes do not match what a backward was
// compiled for.
func ewLenErr(what string, got, want int) error {
	return fmt.Errorf("backward: %s has %d elements, want %d", what, got, want)
}

// ---------------------------------------------------------------- unary

// ewUnaryGradFn adds the gradient of one elementwise function to gi:
// gi[i] += g[i] * f'(x[i]), where y[i] = f(x[i]) is the forward output.
type ewUnaryGradFn func(gi, g, x, y []float32)

// ewUnaryGradKernel runs an ewUnaryGradFn over same-shaped tensors.
type ewUnaryGradKernel struct {
	n int
	f ewUnaryGradFn
}

// Backward adds gradOut[0]*f'(x) into gradIn[0].
func (k *ewUnaryGradKernel) Backward(ctx *ExecContext, in, out, gradOut, gradIn []*Tensor) error {
	if gradIn[0] == nil || gradOut[0] == nil {
		return nil
	}
	gi, g, x, y := gradIn[0].F32, gradOut[0].F32, in[0].F32, out[0].F32
	for _, s := range [][]float32{gi, g, x, y} {
		if len(s) != k.n {
			return ewLenErr("a tensor", len(s), k.n)
		}
	}
	if ewSerial(ctx.Threads, k.n) {
		k.f(gi, g, x, y)
		return nil
	}
	f := k.f
	parallel.For(ctx.Threads, k.n, ewGrain, func(lo, hi int) { f(gi[lo:hi], g[lo:hi], x[lo:hi], y[lo:hi]) })
	return nil
}

// ewUnaryGrad compiles the backward of a float32 unary operator; mk builds
// the gradient function from the node's attributes.
func ewUnaryGrad(mk func(n *Node) ewUnaryGradFn) GradCompileFunc {
	return func(n *Node, in, out []ValueMeta, needGrad []bool) (GradKernel, error) {
		if !ewGradFloat(in, out, 0) {
			return ewNoGrad{}, nil
		}
		return &ewUnaryGradKernel{n: NumElements(in[0].Shape), f: mk(n)}, nil
	}
}

// ewFixedGrad wraps an attribute-free gradient function.
func ewFixedGrad(f ewUnaryGradFn) GradCompileFunc {
	return ewUnaryGrad(func(*Node) ewUnaryGradFn { return f })
}

// ewUnaryGradFor returns the backward of a unary operator of ops_unary.go,
// nil for those that are not differentiable (see ewUnaryNonDiff).
func ewUnaryGradFor(op string) GradCompileFunc {
	switch op {
	case "Relu":
		return ewFixedGrad(ewReluGrad)
	case "Neg":
		return ewFixedGrad(ewNegGrad)
	case "Abs":
		return ewFixedGrad(ewAbsGrad)
	case "Sqrt":
		return ewFixedGrad(ewSqrtGrad)
	case "Exp":
		return ewFixedGrad(ewExpGrad)
	case "Log":
		return ewFixedGrad(ewLogGrad)
	case "Erf":
		return ewFixedGrad(ewErfGrad)
	case "Reciprocal":
		return ewFixedGrad(ewReciprocalGrad)
	case "Softsign":
		return ewFixedGrad(ewSoftsignGrad)
	case "Softplus":
		return ewFixedGrad(ewSoftplusGrad)
	case "Sigmoid":
		return ewFixedGrad(ewSigmoidGrad)
	case "Tanh":
		return ewFixedGrad(ewTanhGrad)
	case "HardSwish":
		return ewFixedGrad(ewHardSwishGrad)
	case "LeakyRelu":
		return ewUnaryGrad(ewLeakyReluGrad)
	case "HardSigmoid":
		return ewUnaryGrad(ewHardSigmoidGrad)
	case "Elu":
		return ewUnaryGrad(ewEluGrad)
	case "Selu":
		return ewUnaryGrad(ewSeluGrad)
	}
	return nil
}

// ewUnaryNonDiff lists the inputs of a unary operator that carry no
// gradient: the piecewise-constant functions (Floor, Ceil, Round, Sign, whose
// derivative is zero wherever it exists) and the predicates.
func ewUnaryNonDiff(op string) []int {
	switch op {
	case "Floor", "Ceil", "Round", "Sign", "Not", "IsNaN", "IsInf":
		return []int{0}
	}
	return nil
}

// ewReluGrad passes g where y = relu(x) > 0, branch-free: the sign of
// -bits & ^bits is set exactly for positive y (not for +0 or -0).
func ewReluGrad(gi, g, _, y []float32) {
	g, y = g[:len(gi)], y[:len(gi)]
	for i, v := range y {
		b := int32(math.Float32bits(v))
		m := uint32((-b & ^b) >> 31)
		gi[i] += math.Float32frombits(math.Float32bits(g[i]) & m)
	}
}

func ewNegGrad(gi, g, _, _ []float32) {
	g = g[:len(gi)]
	for i, v := range g {
		gi[i] -= v
	}
}

func ewAbsGrad(gi, g, x, _ []float32) {
	g, x = g[:len(gi)], x[:len(gi)]
	for i, v := range x {
		switch {
		case v > 0:
			gi[i] += g[i]
		case v < 0:
			gi[i] -= g[i]
		}
	}
}

func ewSqrtGrad(gi, g, _, y []float32) {
	g, y = g[:len(gi)], y[:len(gi)]
	for i, v := range y {
		gi[i] += g[i] * 0.5 / v
	}
}

func ewExpGrad(gi, g, _, y []float32) {
	g, y = g[:len(gi)], y[:len(gi)]
	for i, v := range y {
		gi[i] += g[i] * v
	}
}

func ewLogGrad(gi, g, x, _ []float32) {
	g, x = g[:len(gi)], x[:len(gi)]
	for i, v := range x {
		gi[i] += g[i] / v
	}
}

func ewErfGrad(gi, g, x, _ []float32) {
	g, x = g[:len(gi)], x[:len(gi)]
	const c = 2 / math.SqrtPi
	for i, v := range x {
		d := float64(v)
		gi[i] += g[i] * float32(c*math.Exp(-d*d))
	}
}

func ewReciprocalGrad(gi, g, _, y []float32) {
	g, y = g[:len(gi)], y[:len(gi)]
	for i, v := range y {
		gi[i] -= g[i] * (v * v)
	}
}

func ewSoftsignGrad(gi, g, x, _ []float32) {
	g, x = g[:len(gi)], x[:len(gi)]
	for i, v := range x {
		d := 1 + float32(math.Abs(float64(v)))
		gi[i] += g[i] / (d * d)
	}
}

func ewSoftplusGrad(gi, g, x, _ []float32) {
	g, x = g[:len(gi)], x[:len(gi)]
	for i, v := range x {
		gi[i] += g[i] * actSigmoid(v)
	}
}

func ewSigmoidGrad(gi, g, _, y []float32) {
	g, y = g[:len(gi)], y[:len(gi)]
	for i, v := range y {
		gi[i] += g[i] * (v * (1 - v))
	}
}

func ewTanhGrad(gi, g, _, y []float32) {
	g, y = g[:len(gi)], y[:len(gi)]
	for i, v := range y {
		gi[i] += g[i] * (1 - v*v)
	}
}

// ewHardSwishGrad: y = x*h(x) with h = clamp(x/6 + 1/2, 0, 1), so
// dy/dx = h + x/6 inside the ramp, 0 below it and 1 above.
func ewHardSwishGrad(gi, g, x, _ []float32) {
	g, x = g[:len(gi)], x[:len(gi)]
	for i, v := range x {
		h := float32(v*(1.0/6)) + 0.5 // as actHardSigmoid(v, 1/6, 0.5) before clamping
		switch {
		case h >= 1:
			gi[i] += g[i]
		case h > 0:
			gi[i] += g[i] * (h + v*(1.0/6))
		}
	}
}

func ewLeakyReluGrad(n *Node) ewUnaryGradFn {
	alpha, _ := DefaultActivationParams(ActLeakyRelu)
	alpha = n.AttrFloat("alpha", alpha)
	return func(gi, g, x, _ []float32) {
		g, x = g[:len(gi)], x[:len(gi)]
		for i, v := range x {
			if v < 0 {
				gi[i] += alpha * g[i]
			} else {
				gi[i] += g[i]
			}
		}
	}
}

func ewHardSigmoidGrad(n *Node) ewUnaryGradFn {
	alpha, beta := DefaultActivationParams(ActHardSigmoid)
	alpha, beta = n.AttrFloat("alpha", alpha), n.AttrFloat("beta", beta)
	return func(gi, g, x, _ []float32) {
		g, x = g[:len(gi)], x[:len(gi)]
		for i, v := range x {
			if h := float32(alpha*v) + beta; h > 0 && h < 1 {
				gi[i] += alpha * g[i]
			}
		}
	}
}

// ewEluGrad: for x < 0, y = alpha*(exp(x)-1), so dy/dx = y + alpha.
func ewEluGrad(n *Node) ewUnaryGradFn {
	alpha := n.AttrFloat("alpha", 1)
	return func(gi, g, x, y []float32) {
		g, x, y = g[:len(gi)], x[:len(gi)], y[:len(gi)]
		for i, v := range x {
			if v < 0 {
				gi[i] += g[i] * (y[i] + alpha)
			} else {
				gi[i] += g[i]
			}
		}
	}
}

// ewSeluGrad: for x <= 0, y = gamma*alpha*(exp(x)-1), so dy/dx =
// y + gamma*alpha; for x > 0 it is gamma.
func ewSeluGrad(n *Node) ewUnaryGradFn {
	alpha := n.AttrFloat("alpha", 1.67326319217681884765625)
	gamma := n.AttrFloat("gamma", 1.05070102214813232421875)
	ga := gamma * alpha
	return func(gi, g, x, y []float32) {
		g, x, y = g[:len(gi)], x[:len(gi)], y[:len(gi)]
		for i, v := range x {
			if v > 0 {
				gi[i] += gamma * g[i]
			} else {
				gi[i] += g[i] * (y[i] + ga)
			}
		}
	}
}

// ---------------------------------------------------------------- Clip

// ewClipGradKernel passes the gradient where min <= x <= max (PyTorch's
// clamp convention at the bounds); the bounds are read at run time.
type ewClipGradKernel struct{ n int }

// Backward adds gradOut[0] into gradIn[0] where x is within the bounds.
func (k ewClipGradKernel) Backward(ctx *ExecContext, in, out, gradOut, gradIn []*Tensor) error {
	if gradIn[0] == nil || gradOut[0] == nil {
		return nil
	}
	lo, hi := float32(math.Inf(-1)), float32(math.Inf(1))
	for i, b := range []*float32{&lo, &hi} {
		if len(in) > i+1 && in[i+1] != nil {
			if len(in[i+1].F32) != 1 {
				return fmt.Errorf("backward: bound (input %d) must hold one float32 value", i+1)
			}
			*b = in[i+1].F32[0]
		}
	}
	gi, g, x := gradIn[0].F32, gradOut[0].F32, in[0].F32
	if len(gi) != k.n || len(g) != k.n || len(x) != k.n {
		return ewLenErr("a tensor", min(len(gi), len(g), len(x)), k.n)
	}
	f := func(a, b int) {
		for i, v := range x[a:b] {
			if v >= lo && v <= hi {
				gi[a+i] += g[a+i]
			}
		}
	}
	if ewSerial(ctx.Threads, k.n) {
		f(0, k.n)
		return nil
	}
	parallel.For(ctx.Threads, k.n, ewGrain, f)
	return nil
}

func gradClip(n *Node, in, out []ValueMeta, needGrad []bool) (GradKernel, error) {
	if !ewGradFloat(in, out, 0) {
		return ewNoGrad{}, nil
	}
	return ewClipGradKernel{n: NumElements(in[0].Shape)}, nil
}

// ---------------------------------------------------------------- binary

// ewBinGradFn adds one operand's gradient contribution over a run of n
// output elements: d, g and y (the forward output) are the run's slices of
// length n; the operands' elements are a[i*sa] and b[i*sb] (strides 0 or 1).
type ewBinGradFn func(d, g, y, a []float32, sa int, b []float32, sb int)

// ewBinGradKernel is the backward of a broadcasting binary operator.
// For operand k, fn[k] nil means its gradient is alpha[k]*gradOut summed to
// its shape (Add, Sub); otherwise fn[k] forms the contribution over the
// output's shape, directly into the operand's gradient when it has the
// output's elements, or in scratch followed by a reduction.
type ewBinGradKernel struct {
	plan    *BroadcastPlan
	red     [2]*ReducePlan
	fn      [2]ewBinGradFn
	alpha   [2]float32
	scratch []float32
	// exp holds a non-float32 exponent of Pow converted to float32.
	exp []float32
}

// Backward adds the operands' gradients into gradIn.
func (k *ewBinGradKernel) Backward(ctx *ExecContext, in, out, gradOut, gradIn []*Tensor) error {
	if gradOut[0] == nil || (gradIn[0] == nil && gradIn[1] == nil) {
		return nil
	}
	g, y := gradOut[0].F32, out[0].F32
	a, b := in[0].F32, in[1].F32
	if k.exp != nil {
		if in[1].Len() != len(k.exp) {
			return ewLenErr("the exponent", in[1].Len(), len(k.exp))
		}
		for i := range k.exp {
			k.exp[i] = float32(in[1].Float64At(i))
		}
		b = k.exp
	}
	n := k.plan.Len()
	if len(g) != n || len(y) != n {
		return ewLenErr("the output gradient", len(g), n)
	}
	for i := range 2 {
		gi := gradIn[i]
		if gi == nil {
			continue
		}
		if len(gi.F32) != k.red[i].DstLen() {
			return ewLenErr(fmt.Sprintf("the gradient of input %d", i), len(gi.F32), k.red[i].DstLen())
		}
		fn := k.fn[i]
		if fn == nil {
			if err := k.red[i].Run(ctx.Threads, gi.F32, g, k.alpha[i], true); err != nil {
				return err
			}
			continue
		}
		if err := k.plan.Check(n, len(a), len(b)); err != nil {
			return err
		}
		d := gi.F32
		direct := k.red[i].Identity()
		if !direct {
			d = k.scratch
			clear(d)
		}
		k.contrib(ctx.Threads, fn, d, g, y, a, b)
		if !direct {
			if err := k.red[i].Run(ctx.Threads, gi.F32, d, 1, true); err != nil {
				return err
			}
		}
	}
	return nil
}

// contrib runs fn over the output, accumulating into d (kept out of
// Backward so that the pure-reduction path builds no closure).
func (k *ewBinGradKernel) contrib(threads int, fn ewBinGradFn, d, g, y, a, b []float32) {
	sa, sb := k.plan.InnerStride(0), k.plan.InnerStride(1)
	k.plan.ForEach(threads, func(o, ia, ib, _, m int) {
		fn(d[o:o+m], g[o:o+m], y[o:o+m], a[ia:], sa, b[ib:], sb)
	})
}

// ewNewBinGrad compiles a binary backward with output shape outShape and
// operand shapes a and b; fns and alphas as in ewBinGradKernel.
func ewNewBinGrad(outShape, a, b []int, needGrad []bool, fns [2]ewBinGradFn, alpha [2]float32) (*ewBinGradKernel, error) {
	p, err := NewBroadcastPlan(outShape, a, b)
	if err != nil {
		return nil, err
	}
	k := &ewBinGradKernel{plan: p, fn: fns, alpha: alpha}
	for i, s := range [][]int{a, b} {
		if k.red[i], err = NewReducePlan(outShape, s); err != nil {
			return nil, err
		}
		if i < len(needGrad) && needGrad[i] && fns[i] != nil && !k.red[i].Identity() && k.scratch == nil {
			k.scratch = make([]float32, p.Len())
		}
	}
	return k, nil
}

// gradArith compiles the backward of Add, Sub, Mul, Div (and float Mod).
func gradArith(op string) GradCompileFunc {
	return func(n *Node, in, out []ValueMeta, needGrad []bool) (GradKernel, error) {
		if !ewGradFloat(in, out, 0) || in[1].DType != Float32 {
			return ewNoGrad{}, nil
		}
		var fns [2]ewBinGradFn
		alpha := [2]float32{1, 1}
		switch op {
		case "Sub":
			alpha[1] = -1
		case "Mul":
			fns = [2]ewBinGradFn{ewMulGradA, ewMulGradB}
		case "Div":
			fns = [2]ewBinGradFn{ewDivGradA, ewDivGradB}
		case "Mod":
			fns[1] = ewModGradB
		}
		return ewNewBinGrad(out[0].Shape, in[0].Shape, in[1].Shape, needGrad, fns, alpha)
	}
}

// ewMulGradA: d(a*b)/da = b.
func ewMulGradA(d, g, _, _ []float32, _ int, b []float32, sb int) {
	g = g[:len(d)]
	if sb == 0 {
		s := b[0]
		for i, v := range g {
			d[i] += v * s
		}
		return
	}
	b = b[:len(d)]
	for i, v := range g {
		d[i] += v * b[i]
	}
}

// ewMulGradB: d(a*b)/db = a.
func ewMulGradB(d, g, y, a []float32, sa int, _ []float32, _ int) {
	ewMulGradA(d, g, y, nil, 0, a, sa)
}

// ewDivGradA: d(a/b)/da = 1/b.
func ewDivGradA(d, g, _, _ []float32, _ int, b []float32, sb int) {
	g = g[:len(d)]
	for i, v := range g {
		d[i] += v / b[i*sb]
	}
}

// ewDivGradB: d(a/b)/db = -a/b^2 = -y/b.
func ewDivGradB(d, g, y, _ []float32, _ int, b []float32, sb int) {
	g, y = g[:len(d)], y[:len(d)]
	for i, v := range g {
		d[i] -= v / b[i*sb] * y[i]
	}
}

// ewModGradB: fmod(a, b) = a - trunc(a/b)*b, so the derivative in b is
// -trunc(a/b).
func ewModGradB(d, g, _, a []float32, sa int, b []float32, sb int) {
	g = g[:len(d)]
	for i, v := range g {
		d[i] -= v * float32(math.Trunc(float64(a[i*sa])/float64(b[i*sb])))
	}
}

// gradPow compiles Pow's backward: d/da = b*a^(b-1) and, for a float32
// exponent, d/db = a^b*ln(a) where a > 0 (0 elsewhere).
func gradPow(n *Node, in, out []ValueMeta, needGrad []bool) (GradKernel, error) {
	if !ewGradFloat(in, out, 0) {
		return ewNoGrad{}, nil
	}
	fns := [2]ewBinGradFn{ewPowGradA, ewPowGradB}
	k, err := ewNewBinGrad(out[0].Shape, in[0].Shape, in[1].Shape, needGrad, fns, [2]float32{1, 1})
	if err != nil {
		return nil, err
	}
	if in[1].DType != Float32 {
		k.exp = make([]float32, NumElements(in[1].Shape))
	}
	return k, nil
}

func ewPowGradA(d, g, _, a []float32, sa int, b []float32, sb int) {
	g = g[:len(d)]
	for i, v := range g {
		e := float64(b[i*sb])
		d[i] += v * float32(e*math.Pow(float64(a[i*sa]), e-1))
	}
}

func ewPowGradB(d, g, y, a []float32, sa int, _ []float32, _ int) {
	g, y = g[:len(d)], y[:len(d)]
	for i, v := range g {
		if x := a[i*sa]; x > 0 {
			d[i] += v * float32(float64(y[i])*math.Log(float64(x)))
		}
	}
}

// gradPRelu compiles PRelu's backward: dx = x < 0 ? slope*g : g and
// dslope = sum of x*g over x < 0, reduced to the slope's shape.
func gradPRelu(n *Node, in, out []ValueMeta, needGrad []bool) (GradKernel, error) {
	if !ewGradFloat(in, out, 0) {
		return ewNoGrad{}, nil
	}
	fns := [2]ewBinGradFn{ewPReluGradX, ewPReluGradSlope}
	return ewNewBinGrad(out[0].Shape, in[0].Shape, in[1].Shape, needGrad, fns, [2]float32{1, 1})
}

func ewPReluGradX(d, g, _, x []float32, sx int, s []float32, ss int) {
	g = g[:len(d)]
	for i, v := range g {
		if x[i*sx] < 0 {
			v *= s[i*ss]
		}
		d[i] += v
	}
}

func ewPReluGradSlope(d, g, _, x []float32, sx int, _ []float32, _ int) {
	g = g[:len(d)]
	for i, v := range g {
		if xv := x[i*sx]; xv < 0 {
			d[i] += v * xv
		}
	}
}

// ---------------------------------------------------------------- variadic

// ewVarGradKernel is the backward of Sum, Mean, Min and Max. Sum and Mean
// reduce the (scaled) output gradient to every input's shape; Min and Max
// route it to the input the forward selected: for ties the last input equal
// to the output, like the forward's left fold.
type ewVarGradKernel struct {
	red     []*ReducePlan
	alpha   float32
	sel     bool             // Min or Max
	plans   []*BroadcastPlan // per input: (out; out, input), for selection
	win     []int32          // selected input per output element
	scratch []float32
}

// Backward adds the inputs' gradients into gradIn.
func (k *ewVarGradKernel) Backward(ctx *ExecContext, in, out, gradOut, gradIn []*Tensor) error {
	if gradOut[0] == nil {
		return nil
	}
	g := gradOut[0].F32
	if len(in) != len(k.red) {
		return fmt.Errorf("backward: %d inputs, compiled for %d", len(in), len(k.red))
	}
	for i, r := range k.red {
		if gradIn[i] != nil && len(gradIn[i].F32) != r.DstLen() {
			return ewLenErr(fmt.Sprintf("the gradient of input %d", i), len(gradIn[i].F32), r.DstLen())
		}
	}
	if !k.sel {
		for i, gi := range gradIn {
			if gi != nil {
				if err := k.red[i].Run(ctx.Threads, gi.F32, g, k.alpha, true); err != nil {
					return err
				}
			}
		}
		return nil
	}
	y, win := out[0].F32, k.win
	if len(y) != len(win) || len(g) != len(win) {
		return ewLenErr("the output", len(y), len(win))
	}
	for i := range win {
		win[i] = -1
	}
	for i, p := range k.plans {
		x := in[i].F32
		if err := p.Check(len(y), len(y), len(x)); err != nil {
			return err
		}
		sx, id := p.InnerStride(1), int32(i)
		p.ForEach(ctx.Threads, func(o, _, ix, _, m int) {
			for j, v := range y[o : o+m] {
				if x[ix+j*sx] == v {
					win[o+j] = id
				}
			}
		})
	}
	for i, gi := range gradIn {
		if gi == nil {
			continue
		}
		direct := k.red[i].Identity()
		d := gi.F32
		if !direct {
			d = k.scratch
			clear(d)
		}
		id := int32(i)
		ewParallel(ctx.Threads, len(g), func(lo, hi int) {
			for j, w := range win[lo:hi] {
				if w == id {
					d[lo+j] += g[lo+j]
				}
			}
		})
		if !direct {
			if err := k.red[i].Run(ctx.Threads, gi.F32, d, 1, true); err != nil {
				return err
			}
		}
	}
	return nil
}

// gradVariadic compiles the backward of Sum, Mean, Min or Max.
func gradVariadic(op string) GradCompileFunc {
	return func(n *Node, in, out []ValueMeta, needGrad []bool) (GradKernel, error) {
		if !ewGradFloat(in, out, 0) {
			return ewNoGrad{}, nil
		}
		k := &ewVarGradKernel{alpha: 1, sel: op == "Min" || op == "Max"}
		if op == "Mean" {
			k.alpha = 1 / float32(len(in))
		}
		outShape := out[0].Shape
		scratch := false
		for i, m := range in {
			r, err := NewReducePlan(outShape, m.Shape)
			if err != nil {
				return nil, err
			}
			k.red = append(k.red, r)
			if !k.sel {
				continue
			}
			p, err := NewBroadcastPlan(outShape, outShape, m.Shape)
			if err != nil {
				return nil, err
			}
			k.plans = append(k.plans, p)
			if i < len(needGrad) && needGrad[i] && !r.Identity() {
				scratch = true
			}
		}
		if k.sel {
			k.win = make([]int32, NumElements(outShape))
			if scratch {
				k.scratch = make([]float32, NumElements(outShape))
			}
		}
		return k, nil
	}
}

// ---------------------------------------------------------------- Where

// ewWhereGradKernel routes the gradient to X (input 1) where the condition
// holds and to Y (input 2) elsewhere, reduced to their shapes.
type ewWhereGradKernel struct {
	plan    *BroadcastPlan // (out; condition)
	red     [3]*ReducePlan
	scratch []float32
}

// Backward adds the gradients of X and Y into gradIn[1] and gradIn[2].
func (k *ewWhereGradKernel) Backward(ctx *ExecContext, in, out, gradOut, gradIn []*Tensor) error {
	if gradOut[0] == nil {
		return nil
	}
	g, c := gradOut[0].F32, in[0].B
	if err := k.plan.Check(len(g), len(c)); err != nil {
		return err
	}
	sc := k.plan.InnerStride(0)
	for i := 1; i <= 2; i++ {
		gi := gradIn[i]
		if gi == nil {
			continue
		}
		if len(gi.F32) != k.red[i].DstLen() {
			return ewLenErr(fmt.Sprintf("the gradient of input %d", i), len(gi.F32), k.red[i].DstLen())
		}
		direct := k.red[i].Identity()
		d := gi.F32
		if !direct {
			d = k.scratch
			clear(d)
		}
		want := i == 1
		k.plan.ForEach(ctx.Threads, func(o, ic, _, _, m int) {
			for j, v := range g[o : o+m] {
				if c[ic+j*sc] == want {
					d[o+j] += v
				}
			}
		})
		if !direct {
			if err := k.red[i].Run(ctx.Threads, gi.F32, d, 1, true); err != nil {
				return err
			}
		}
	}
	return nil
}

func gradWhere(n *Node, in, out []ValueMeta, needGrad []bool) (GradKernel, error) {
	if !ewGradFloat(in, out, 1) {
		return ewNoGrad{}, nil
	}
	outShape := out[0].Shape
	p, err := NewBroadcastPlan(outShape, in[0].Shape)
	if err != nil {
		return nil, err
	}
	k := &ewWhereGradKernel{plan: p}
	for i := 1; i <= 2; i++ {
		if k.red[i], err = NewReducePlan(outShape, in[i].Shape); err != nil {
			return nil, err
		}
		if i < len(needGrad) && needGrad[i] && !k.red[i].Identity() && k.scratch == nil {
			k.scratch = make([]float32, p.Len())
		}
	}
	return k, nil
}

// ---------------------------------------------------------------- Expand, Cast

// ewReduceGradKernel adds gradOut[0], summed to input 0's shape, into
// gradIn[0]: the backward of Expand and of float-to-float Cast.
type ewReduceGradKernel struct{ red *ReducePlan }

// Backward adds the reduced output gradient into gradIn[0].
func (k ewReduceGradKernel) Backward(ctx *ExecContext, in, out, gradOut, gradIn []*Tensor) error {
	if gradIn[0] == nil || gradOut[0] == nil {
		return nil
	}
	return k.red.Run(ctx.Threads, gradIn[0].F32, gradOut[0].F32, 1, true)
}

func gradExpand(n *Node, in, out []ValueMeta, needGrad []bool) (GradKernel, error) {
	if !ewGradFloat(in, out, 0) {
		return ewNoGrad{}, nil
	}
	r, err := NewReducePlan(out[0].Shape, in[0].Shape)
	if err != nil {
		return nil, err
	}
	return ewReduceGradKernel{r}, nil
}

// gradCast passes the gradient through a float32-to-float32 Cast (or
// CastLike); a cast to or from another type is not differentiable and
// passes nothing.
func gradCast(n *Node, in, out []ValueMeta, needGrad []bool) (GradKernel, error) {
	if !ewGradFloat(in, out, 0) {
		return ewNoGrad{}, nil
	}
	r, err := NewReducePlan(out[0].Shape, in[0].Shape)
	if err != nil {
		return nil, err
	}
	return ewReduceGradKernel{r}, nil
}

// ---------------------------------------------------------------- Softmax

// ewSoftmaxGradKernel is the backward of Softmax (dx = y*(g - sum(g*y)))
// and LogSoftmax (dx = g - exp(y)*sum(g)) along lines of length n and
// stride inner. Sums run in float64 in a fixed order.
type ewSoftmaxGradKernel struct {
	outer, n, inner int
	log             bool
}

// Backward adds the input gradient into gradIn[0].
func (k *ewSoftmaxGradKernel) Backward(ctx *ExecContext, in, out, gradOut, gradIn []*Tensor) error {
	if gradIn[0] == nil || gradOut[0] == nil {
		return nil
	}
	gi, g, y := gradIn[0].F32, gradOut[0].F32, out[0].F32
	total := k.outer * k.n * k.inner
	if len(gi) != total || len(g) != total || len(y) != total {
		return ewLenErr("a tensor", min(len(gi), len(g), len(y)), total)
	}
	if total == 0 {
		return nil
	}
	lines := k.outer * k.inner
	if ewSerial(ctx.Threads, total) {
		k.lines(0, lines, gi, g, y)
		return nil
	}
	parallel.For(ctx.Threads, lines, max(1, ewGrain/k.n), func(lo, hi int) { k.lines(lo, hi, gi, g, y) })
	return nil
}

// lines does lines [lo, hi).
func (k *ewSoftmaxGradKernel) lines(lo, hi int, gi, g, y []float32) {
	n, s := k.n, k.inner
	for l := lo; l < hi; l++ {
		o, i := l/s, l%s
		base := o*n*s + i
		if s == 1 {
			switch {
			case k.log:
				ewLogSoftmaxGradLine(gi[base:base+n], g[base:base+n], y[base:base+n])
			default:
				ewSoftmaxGradLine(gi[base:base+n], g[base:base+n], y[base:base+n])
			}
			continue
		}
		end := base + (n-1)*s + 1
		ewSoftmaxGradStrided(gi[base:end], g[base:end], y[base:end], s, k.log)
	}
}

// ewSoftmaxGradLine is the contiguous Softmax backward of one line.
func ewSoftmaxGradLine(gi, g, y []float32) {
	g, y = g[:len(gi)], y[:len(gi)]
	var s0, s1 float64
	i := 0
	for ; i+2 <= len(g); i += 2 {
		s0 += float64(g[i]) * float64(y[i])
		s1 += float64(g[i+1]) * float64(y[i+1])
	}
	if i < len(g) {
		s0 += float64(g[i]) * float64(y[i])
	}
	dot := float32(s0 + s1)
	for i, v := range y {
		gi[i] += v * (g[i] - dot)
	}
}

// ewLogSoftmaxGradLine is the contiguous LogSoftmax backward of one line.
func ewLogSoftmaxGradLine(gi, g, y []float32) {
	g, y = g[:len(gi)], y[:len(gi)]
	sum := float32(sum64(g))
	for i, v := range y {
		gi[i] += g[i] - float32(math.Exp(float64(v)))*sum
	}
}

// ewSoftmaxGradStrided is the backward of one line of stride s.
func ewSoftmaxGradStrided(gi, g, y []float32, s int, log bool) {
	acc := 0.0
	for j := 0; j < len(g); j += s {
		if log {
			acc += float64(g[j])
		} else {
			acc += float64(g[j]) * float64(y[j])
		}
	}
	a := float32(acc)
	for j := 0; j < len(g); j += s {
		if log {
			gi[j] += g[j] - float32(math.Exp(float64(y[j])))*a
		} else {
			gi[j] += y[j] * (g[j] - a)
		}
	}
}

func gradSoftmax(log bool) GradCompileFunc {
	return func(n *Node, in, out []ValueMeta, needGrad []bool) (GradKernel, error) {
		if !ewGradFloat(in, out, 0) {
			return ewNoGrad{}, nil
		}
		shape := in[0].Shape
		r := len(shape)
		axis := n.AttrInt("axis", -1)
		if axis < -int64(r) || axis >= int64(r) {
			return nil, fmt.Errorf("axis %d is out of range for rank %d", axis, r)
		}
		if axis < 0 {
			axis += int64(r)
		}
		a := int(axis)
		return &ewSoftmaxGradKernel{
			outer: NumElements(shape[:a]),
			n:     shape[a],
			inner: NumElements(shape[a+1:]),
			log:   log,
		}, nil
	}
}
