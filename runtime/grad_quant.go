package runtime

import (
	"fmt"
	"math"
)

// This file holds the fake-quantisation ops of quantisation-aware training
// (QAT) and their straight-through-estimator (STE) backward passes.
//
// Gradients only flow through float32 values, so a QuantizeLinear ->
// DequantizeLinear pair (whose middle value is int8 or uint8) cannot carry
// one. A training graph therefore holds each pair as one float op that
// computes exactly what the pair computes:
//
//	FakeQuantizeLinear(x, scale[, zero_point]) (domain com.compressml,
//	attribute axis as in QuantizeLinear): y = DequantizeLinear(QuantizeLinear(x))
//	= float32(clamp(roundHalfEven(x / scale), qmin-zp, qmax-zp)) * scale,
//	where [qmin, qmax] is the range of the zero point's type (uint8 when
//	absent). Backward (STE): dx = dy where the rounded value lies inside
//	[qmin-zp, qmax-zp], 0 where it saturates (and for NaN). The scale and
//	zero point get no gradient: they are fixed by calibration.
//
//	FakeQuantizeWeight(w) (domain com.compressml, attributes axis (0),
//	qmax (63), per_channel (1)): symmetric weight quantisation with the
//	scale taken from the current weights, amax/qmax per slice along axis
//	(or over the whole tensor when per_channel is 0; 1 when amax is 0):
//	y = float32(clamp(round(w / scale), -qmax, qmax)) * scale, rounding half
//	away from zero. This is what compress quantize does to weights, so the
//	int8 model written after training holds exactly the weights training
//	saw. Backward (STE): dw = dy (the range always covers every weight).
//
// quantize.PrepareQAT builds graphs with these ops from a QDQ model and
// Finalize turns them back into QuantizeLinear/DequantizeLinear pairs with
// int8 weights; the ops never appear in an exported model.

func init() {
	Register(OpSpec{Type: "FakeQuantizeLinear", Domain: FusedDomain, MinInputs: 2, MaxInputs: 3, Outputs: 1,
		Compile: compileFakeQuantizeLinear, Grad: gradFakeQuantizeLinear, NonDiff: []int{1, 2}})
	Register(OpSpec{Type: "FakeQuantizeWeight", Domain: FusedDomain, MinInputs: 1, MaxInputs: 1, Outputs: 1,
		Compile: compileFakeQuantizeWeight, Grad: gradFakeQuantizeWeight})
}

// ---------------------------------------------------------------- FakeQuantizeLinear

// fakeQuantKernel runs QuantizeLinear and DequantizeLinear in one pass,
// with the parameters and arithmetic of quantizeKernel.
type fakeQuantKernel struct{ q *quantizeKernel }

// newFakeQuant checks a FakeQuantizeLinear node and builds the
// quantizeKernel holding its parameters.
func newFakeQuant(n *Node, in []ValueMeta) (*quantizeKernel, error) {
	if in[0].DType != Float32 {
		return nil, fmt.Errorf("x must be float32, got %v", in[0].DType)
	}
	k, _, err := compileQuantizeLinear(n, in)
	if err != nil {
		return nil, err
	}
	return k.(*quantizeKernel), nil
}

func compileFakeQuantizeLinear(n *Node, in []ValueMeta) (Kernel, []ValueMeta, error) {
	q, err := newFakeQuant(n, in)
	if err != nil {
		return nil, nil, err
	}
	return &fakeQuantKernel{q: q}, []ValueMeta{{DType: Float32, Shape: in[0].Shape}}, nil
}

// fakeParams reads run-time scales and zero points when they are not
// constants.
func (k *quantizeKernel) fakeParams(in []*Tensor) error {
	if k.constP {
		return nil
	}
	var zp *Tensor
	if len(in) > 2 {
		zp = in[2]
	}
	return k.setParams(in[1], zp)
}

func (k *fakeQuantKernel) Run(ctx *ExecContext, in, out []*Tensor) error {
	q := k.q
	if err := q.fakeParams(in); err != nil {
		return err
	}
	x, y := in[0].F32, out[0].F32
	if len(x) != len(y) {
		return fmt.Errorf("input has %d elements, output %d", len(x), len(y))
	}
	q.ax.forRows(ctx.Threads, func(off, pi, pBase, n int) {
		xs, ys := x[off:off+n], y[off:off+n]
		if pi >= 0 {
			s, lo, hi := q.inv[pi], q.lo[pi], q.hi[pi]
			for i, v := range xs {
				ys[i] = float32(quantVal(v/s, lo, hi, 0)) * s
			}
			return
		}
		for i, v := range xs {
			p := pBase + i
			ys[i] = float32(quantVal(v/q.inv[p], q.lo[p], q.hi[p], 0)) * q.inv[p]
		}
	})
	return nil
}

// fakeQuantGrad is the STE backward of FakeQuantizeLinear.
type fakeQuantGrad struct{ q *quantizeKernel }

func gradFakeQuantizeLinear(n *Node, in, out []ValueMeta, needGrad []bool) (GradKernel, error) {
	q, err := newFakeQuant(n, in)
	if err != nil {
		return nil, err
	}
	return &fakeQuantGrad{q: q}, nil
}

// inRange reports whether v/s rounds into [lo, hi] (false for NaN).
func inRange(v, s, lo, hi float32) bool {
	r := roundEven(v / s)
	return r >= lo && r <= hi
}

// Backward adds gradOut where the input was representable.
func (k *fakeQuantGrad) Backward(ctx *ExecContext, in, out, gradOut, gradIn []*Tensor) error {
	if gradIn[0] == nil || gradOut[0] == nil {
		return nil
	}
	q := k.q
	if err := q.fakeParams(in); err != nil {
		return err
	}
	x, g, gi := in[0].F32, gradOut[0].F32, gradIn[0].F32
	if len(g) != len(x) || len(gi) != len(x) {
		return fmt.Errorf("backward: gradients have %d and %d elements, the input %d", len(g), len(gi), len(x))
	}
	q.ax.forRows(ctx.Threads, func(off, pi, pBase, n int) {
		for i := off; i < off+n; i++ {
			p := pi
			if p < 0 {
				p = pBase + i - off
			}
			if inRange(x[i], q.inv[p], q.lo[p], q.hi[p]) {
				gi[i] += g[i]
			}
		}
	})
	return nil
}

// ---------------------------------------------------------------- FakeQuantizeWeight

// fakeWeightKernel quantises a weight tensor symmetrically with scales from
// its current values.
type fakeWeightKernel struct {
	outer, dim, inner int
	perChannel        bool
	qmax              float32
	amax              []float32 // scratch: per-channel absolute maxima
}

func compileFakeQuantizeWeight(n *Node, in []ValueMeta) (Kernel, []ValueMeta, error) {
	if in[0].DType != Float32 {
		return nil, nil, fmt.Errorf("w must be float32, got %v", in[0].DType)
	}
	shape := in[0].Shape
	qmax := n.AttrFloat("qmax", 63)
	if !(qmax >= 1 && qmax <= 127) || qmax != float32(math.Trunc(float64(qmax))) {
		return nil, nil, fmt.Errorf("qmax %g must be an integer in [1, 127]", qmax)
	}
	k := &fakeWeightKernel{qmax: qmax, perChannel: n.AttrInt("per_channel", 1) != 0, outer: 1, dim: 1, inner: NumElements(shape)}
	if k.perChannel {
		if len(shape) == 0 {
			return nil, nil, fmt.Errorf("per-channel quantisation needs a weight of rank >= 1, got a scalar")
		}
		axis := int(n.AttrInt("axis", 0))
		if axis < -len(shape) || axis >= len(shape) {
			return nil, nil, fmt.Errorf("axis %d is out of range for a weight of shape %v", axis, shape)
		}
		if axis < 0 {
			axis += len(shape)
		}
		k.outer, k.dim, k.inner = NumElements(shape[:axis]), shape[axis], NumElements(shape[axis+1:])
	}
	k.amax = make([]float32, k.dim)
	return k, []ValueMeta{{DType: Float32, Shape: shape}}, nil
}

// scales computes the per-channel scales of w into k.amax (amax/qmax, 1 for
// an all-zero channel), like quantize.quantizeWeight.
func (k *fakeWeightKernel) scales(w []float32) []float32 {
	clear(k.amax)
	for o := 0; o < k.outer; o++ {
		for d := 0; d < k.dim; d++ {
			base := (o*k.dim + d) * k.inner
			a := k.amax[d]
			for _, v := range w[base : base+k.inner] {
				a = max(a, float32(math.Abs(float64(v))))
			}
			k.amax[d] = a
		}
	}
	for d, a := range k.amax {
		if a == 0 {
			k.amax[d] = 1
		} else {
			k.amax[d] = a / k.qmax
		}
	}
	return k.amax
}

func (k *fakeWeightKernel) Run(ctx *ExecContext, in, out []*Tensor) error {
	w, y := in[0].F32, out[0].F32
	if len(w) != k.outer*k.dim*k.inner || len(y) != len(w) {
		return fmt.Errorf("weight has %d elements, output %d, compiled for %d", len(w), len(y), k.outer*k.dim*k.inner)
	}
	sc := k.scales(w)
	qmax := float64(k.qmax)
	for o := 0; o < k.outer; o++ {
		for d := 0; d < k.dim; d++ {
			base := (o*k.dim + d) * k.inner
			s := sc[d]
			for i := base; i < base+k.inner; i++ {
				r := min(max(math.Round(float64(w[i]/s)), -qmax), qmax)
				y[i] = float32(int32(r)) * s
			}
		}
	}
	return nil
}

// fakeWeightGrad is the STE backward of FakeQuantizeWeight: the identity.
type fakeWeightGrad struct{}

func gradFakeQuantizeWeight(n *Node, in, out []ValueMeta, needGrad []bool) (GradKernel, error) {
	if in[0].DType != Float32 {
		return ewNoGrad{}, nil
	}
	return fakeWeightGrad{}, nil
}

// Backward adds gradOut to gradIn.
func (fakeWeightGrad) Backward(ctx *ExecContext, in, out, gradOut, gradIn []*Tensor) error {
	if gradIn[0] == nil || gradOut[0] == nil {
		return nil
	}
	gi, g := gradIn[0].F32, gradOut[0].F32
	if len(gi) != len(g) {
		return fmt.Errorf("backward: gradients have %d and %d elements", len(gi), len(g))
	}
	for i, v := range g {
		gi[i] += v
	}
	return nil
}
