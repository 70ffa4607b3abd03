package runtime

import (
	"fmt"
	"math"

	"github.com/compressml/compress/internal/parallel"
)

// This file holds Softmax and LogSoftmax with their opset-13 semantics: the
// normalization runs along the single dimension `axis` (default -1).

func init() {
	Register(OpSpec{Type: "Softmax", MinInputs: 1, MaxInputs: 1, Outputs: 1, Compile: ewCompileSoftmax(false), Grad: gradSoftmax(false)})
	Register(OpSpec{Type: "LogSoftmax", MinInputs: 1, MaxInputs: 1, Outputs: 1, Compile: ewCompileSoftmax(true), Grad: gradSoftmax(true)})
}

// ewSoftmaxKernel normalizes outer*inner lines of length n and stride
// inner. The maximum is subtracted first; sums run in float64 in a fixed
// order, so results do not depend on the thread count.
type ewSoftmaxKernel struct {
	ewCount
	outer, n, inner int
	log             bool
}

func (k *ewSoftmaxKernel) Run(ctx *ExecContext, in, out []*Tensor) error {
	x, y := in[0].F32, out[0].F32
	if len(x) != k.outer*k.n*k.inner || len(y) != len(x) {
		return fmt.Errorf("input has %d elements, output %d, want %d", len(x), len(y), k.outer*k.n*k.inner)
	}
	if k.n == 0 {
		return nil
	}
	lines := k.outer * k.inner
	threads := ctx.Threads
	if len(x) < ewParallelMin {
		threads = 1
	}
	grain := max(1, ewGrain/k.n)
	parallel.For(threads, lines, grain, func(lo, hi int) {
		for l := lo; l < hi; l++ {
			o, i := l/k.inner, l%k.inner
			base := o*k.n*k.inner + i
			k.line(x[base:], y[base:])
		}
	})
	return nil
}

// line normalizes x[0], x[inner], ... x[(n-1)*inner] into y.
func (k *ewSoftmaxKernel) line(x, y []float32) {
	s, n := k.inner, k.n
	x, y = x[:(n-1)*s+1], y[:(n-1)*s+1]
	m := x[0]
	for j := s; j < len(x); j += s {
		if v := x[j]; v > m || v != v {
			m = v
		}
	}
	mx := float64(m) // infinities and NaN propagate like in the reference
	sum := 0.0
	if k.log {
		for j := 0; j < len(x); j += s {
			sum += math.Exp(float64(x[j]) - mx)
		}
		ls := math.Log(sum) + mx
		for j := 0; j < len(x); j += s {
			y[j] = float32(float64(x[j]) - ls)
		}
		return
	}
	for j := 0; j < len(x); j += s {
		e := float32(math.Exp(float64(x[j]) - mx))
		y[j] = e
		sum += float64(e)
	}
	for j := 0; j < len(x); j += s {
		y[j] = float32(float64(y[j]) / sum)
	}
}

func ewCompileSoftmax(log bool) CompileFunc {
	return func(n *Node, in []ValueMeta) (Kernel, []ValueMeta, error) {
		if err := ewCheckDType("input 0", in[0].DType, ewFloatOnly); err != nil {
			return nil, nil, err
		}
		shape := in[0].Shape
		r := len(shape)
		axis := n.AttrInt("axis", -1)
		if axis < -int64(r) || axis >= int64(r) {
			return nil, nil, fmt.Errorf("axis %d is out of range for rank %d (want [%d, %d])", axis, r, -r, r-1)
		}
		if axis < 0 {
			axis += int64(r)
		}
		a := int(axis)
		k := &ewSoftmaxKernel{
			ewCount: ewCount{int64(NumElements(shape))},
			outer:   NumElements(shape[:a]),
			n:       shape[a],
			inner:   NumElements(shape[a+1:]),
			log:     log,
		}
		return k, []ValueMeta{{DType: Float32, Shape: append([]int{}, shape...)}}, nil
	}
}
