package runtime

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
)

// gradCase is one finite-difference gradient check: a single node whose
// float inputs are trainable parameters. Inputs listed in fixed stay
// constants (indices, shapes, or inputs the op does not differentiate).
type gradCase struct {
	name   string
	node   *Node
	inputs []*Tensor
	fixed  []int
	tol    float64 // relative tolerance; 0 means 2e-2
	// train runs the node in training mode (BatchNormalization with batch
	// statistics); by default every node stays in inference mode.
	train bool
}

// checkGrad compares the analytic gradient of L = sum(w * out0) for random
// fixed w against central differences of float64-accumulated forwards.
func checkGrad(t *testing.T, c gradCase) {
	t.Helper()
	g := NewGraph(c.name)
	n := *c.node
	n.Inputs = make([]string, len(c.inputs))
	for i, in := range c.inputs {
		if in == nil {
			continue
		}
		name := fmt.Sprintf("in%d", i)
		n.Inputs[i] = name
		g.AddParam(name, in.Clone(), in.DType == Float32 && !contains(c.fixed, i))
	}
	if len(n.Outputs) == 0 {
		n.Outputs = []string{"out"}
	}
	g.Nodes = []*Node{&n}
	g.Outputs = []ValueInfo{{Name: n.Outputs[0]}}
	evalMode := func(*Graph, *Node) bool { return !c.train }
	ex, err := NewGradExecutor(g, TrainOptions{Threads: 1, EvalMode: evalMode})
	if err != nil {
		t.Fatalf("%s: %v", c.name, err)
	}
	ctx := context.Background()
	out, err := ex.Forward(ctx, nil, true)
	if err != nil {
		t.Fatalf("%s: forward: %v", c.name, err)
	}
	y := out[n.Outputs[0]]
	rng := rand.New(rand.NewPCG(1, 2))
	w := New(Float32, y.Shape...)
	for i := range w.F32 {
		w.F32[i] = float32(rng.Float64()*2 - 1)
	}
	if err := ex.Backward(ctx, map[string]*Tensor{n.Outputs[0]: w}); err != nil {
		t.Fatalf("%s: backward: %v", c.name, err)
	}
	loss := func() float64 {
		out, err := ex.Forward(ctx, nil, true)
		if err != nil {
			t.Fatalf("%s: forward: %v", c.name, err)
		}
		s := 0.0
		for i, v := range out[n.Outputs[0]].F32 {
			s += float64(v) * float64(w.F32[i])
		}
		return s
	}
	tol := c.tol
	if tol == 0 {
		tol = 2e-2
	}
	for i := range c.inputs {
		name := fmt.Sprintf("in%d", i)
		prm, ok := g.Params[name]
		if !ok || !prm.Trainable {
			continue
		}
		grad := ex.Grad(name)
		if grad == nil {
			t.Errorf("%s: no gradient for input %d", c.name, i)
			continue
		}
		grad = grad.Clone()
		x := prm.T.F32
		for j := range x {
			orig := x[j]
			h := float32(1e-2 * math.Max(1, math.Abs(float64(orig))))
			x[j] = orig + h
			lp := loss()
			x[j] = orig - h
			lm := loss()
			x[j] = orig
			num := (lp - lm) / float64(2*h)
			got := float64(grad.F32[j])
			if math.Abs(num-got) > tol*math.Max(1, math.Abs(num)) {
				t.Errorf("%s: d/d input %d [%d]: analytic %.6g, numeric %.6g", c.name, i, j, got, num)
				break
			}
		}
	}
}

// randTensor returns a float32 tensor with values uniform in [lo, hi).
func randTensor(seed uint64, lo, hi float64, shape ...int) *Tensor {
	rng := rand.New(rand.NewPCG(seed, 7))
	t := New(Float32, shape...)
	for i := range t.F32 {
		t.F32[i] = float32(lo + (hi-lo)*rng.Float64())
	}
	return t
}

// gradCases collects the gradient checks of every op file; each ops file's
// test adds its own cases in an init function.
var gradCases []gradCase

func TestGradients(t *testing.T) {
	if len(gradCases) == 0 {
		t.Skip("no gradient cases registered")
	}
	for _, c := range gradCases {
		t.Run(c.name, func(t *testing.T) { checkGrad(t, c) })
	}
}
