package runtime

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"testing"
)

// Gradient tests of the shape, data-movement and reduction operators
// (ops_shape.go, ops_shape_move.go, ops_reduce.go) and of training-mode
// Dropout.

// sgtNode is a node of type op with the given attributes and outputs
// (nil: the harness names output 0).
func sgtNode(op string, attrs map[string]Attr, outputs ...string) *Node {
	return &Node{Name: "sg_" + op, OpType: op, Attrs: attrs, Outputs: outputs}
}

func sgtInts(v ...int64) *Tensor { return FromInt64(v, len(v)) }

func sgtInt32(v ...int32) *Tensor {
	t := New(Int32, len(v))
	copy(t.I32, v)
	return t
}

// sgtDistinct returns a tensor of distinct values 0.1 apart in random
// order, so that max/min ties never happen and finite-difference steps
// (at most 0.03 here) never reorder two elements.
func sgtDistinct(seed uint64, shape ...int) *Tensor {
	t := New(Float32, shape...)
	rng := rand.New(rand.NewPCG(seed, 3))
	perm := rng.Perm(len(t.F32))
	for i, p := range perm {
		t.F32[i] = 0.1 * float32(p-len(perm)/2)
	}
	return t
}

// sgtAway is randTensor with every value moved at least d away from 0.
func sgtAway(seed uint64, lo, hi float64, d float32, shape ...int) *Tensor {
	t := randTensor(seed, lo, hi, shape...)
	for i, v := range t.F32 {
		if v > -d && v < d {
			if v >= 0 {
				t.F32[i] = d
			} else {
				t.F32[i] = -d
			}
		}
	}
	return t
}

func init() {
	r := randTensor
	a := shpAttrs
	add := func(name string, n *Node, fixed []int, ins ...*Tensor) {
		gradCases = append(gradCases, gradCase{name: "shape/" + n.OpType + "/" + name, node: n, inputs: ins, fixed: fixed})
	}

	// Transpose: default (reversed), 3-D permutations, and an NCHW->NHWC
	// whose forward and backward both take the blocked 2-D path.
	add("default", sgtNode("Transpose", nil), nil, r(1, -1, 1, 2, 3, 4))
	add("021", sgtNode("Transpose", a("perm", []int64{0, 2, 1})), nil, r(2, -1, 1, 2, 3, 4))
	add("102", sgtNode("Transpose", a("perm", []int64{1, 0, 2})), nil, r(3, -1, 1, 2, 3, 4))
	add("201", sgtNode("Transpose", a("perm", []int64{2, 0, 1})), nil, r(4, -1, 1, 2, 3, 4))
	add("nhwc-tiled", sgtNode("Transpose", a("perm", []int64{0, 2, 3, 1})), nil, r(5, -1, 1, 1, 4, 3, 5))
	add("2d", sgtNode("Transpose", nil), nil, r(6, -1, 1, 5, 7))

	// Slice: inputs data, starts, ends, axes, steps.
	x345 := func(seed uint64) *Tensor { return r(seed, -1, 1, 3, 4, 5) }
	add("axis1", sgtNode("Slice", nil), nil, x345(10), sgtInts(1), sgtInts(3), sgtInts(1))
	add("neg-axis-step2", sgtNode("Slice", nil), nil, x345(11), sgtInts(0), sgtInts(5), sgtInts(-1), sgtInts(2))
	add("neg-step", sgtNode("Slice", nil), nil, x345(12), sgtInts(-1), sgtInts(-100), sgtInts(2), sgtInts(-2))
	add("two-axes", sgtNode("Slice", nil), nil, x345(13), sgtInts(0, 1), sgtInts(2, -1), sgtInts(0, 2))
	add("no-axes", sgtNode("Slice", nil), nil, x345(14), sgtInts(1, 0), sgtInts(3, 2))
	add("clamped", sgtNode("Slice", nil), nil, x345(15), sgtInts(-100, 2), sgtInts(100, 100), sgtInts(0, -2), sgtInts(1, 1))
	add("neg-steps-two-axes", sgtNode("Slice", nil), nil, x345(16), sgtInts(3, 4), sgtInts(0, -100), sgtInts(-2, -1), sgtInts(-1, -3))

	// Concat.
	add("axis0", sgtNode("Concat", a("axis", 0)), nil, r(20, -1, 1, 2, 3), r(21, -1, 1, 1, 3))
	add("axis1-three", sgtNode("Concat", a("axis", 1)), nil, r(22, -1, 1, 2, 1, 3), r(23, -1, 1, 2, 2, 3), r(24, -1, 1, 2, 3, 3))
	add("axis-1", sgtNode("Concat", a("axis", -1)), nil, r(25, -1, 1, 2, 3, 2), r(26, -1, 1, 2, 3, 4))
	add("one-frozen", sgtNode("Concat", a("axis", -2)), []int{1}, r(27, -1, 1, 2, 2, 3), r(28, -1, 1, 2, 4, 3), r(29, -1, 1, 2, 1, 3))

	// Split (the harness checks output 0; TestGradSplitAllOutputs the rest).
	add("sizes", sgtNode("Split", a("axis", 1), "out", "s1"), nil, r(30, -1, 1, 2, 4, 3), sgtInts(1, 3))
	add("num-outputs", sgtNode("Split", a("axis", -1, "num_outputs", 2), "out", "s1"), nil, r(31, -1, 1, 2, 5))
	add("even", sgtNode("Split", nil, "out", "s1", "s2"), nil, r(32, -1, 1, 6, 2))
	add("middle", sgtNode("Split", a("axis", 1), "s0", "out"), nil, r(33, -1, 1, 2, 4, 3), sgtInts(3, 1))

	// Pad: data, pads, constant_value, axes.
	add("constant", sgtNode("Pad", nil), nil, r(40, -1, 1, 2, 3, 4), sgtInts(0, 1, 2, 1, 0, 1))
	add("constant-value", sgtNode("Pad", nil), []int{2}, r(41, -1, 1, 2, 3), sgtInts(1, 1, 1, 1), FromFloat32([]float32{0.5}))
	add("crop", sgtNode("Pad", nil), nil, r(42, -1, 1, 2, 3, 4), sgtInts(0, -1, 1, 0, 1, -1))
	add("neg-axes", sgtNode("Pad", nil), nil, r(43, -1, 1, 2, 3, 4), sgtInts(2, 1), nil, sgtInts(-1))
	add("reflect", sgtNode("Pad", a("mode", "reflect")), nil, r(44, -1, 1, 3, 4), sgtInts(1, 2, 2, 3))
	add("edge", sgtNode("Pad", a("mode", "edge")), nil, r(45, -1, 1, 3, 4), sgtInts(2, 0, 1, 3))
	add("wrap", sgtNode("Pad", a("mode", "wrap")), nil, r(46, -1, 1, 3, 4), sgtInts(1, 1, 2, 2))
	add("edge-3d", sgtNode("Pad", a("mode", "edge")), nil, r(47, -1, 1, 2, 2, 3), sgtInts(1, 2, 0, 0, 1, 2))
	add("reflect-crop", sgtNode("Pad", a("mode", "reflect")), nil, r(48, -1, 1, 3, 4), sgtInts(-1, 3, 1, -2))

	// Gather (indices are not differentiable).
	add("axis0-dup", sgtNode("Gather", nil), nil, r(50, -1, 1, 3, 4), sgtInts(2, 0, 2, 1))
	add("axis1-2d", sgtNode("Gather", a("axis", 1)), nil, r(51, -1, 1, 2, 3, 4), FromInt64([]int64{0, 2, 1, 1}, 2, 2))
	add("axis-1-neg-int32", sgtNode("Gather", a("axis", -1)), nil, r(52, -1, 1, 2, 3), sgtInt32(-1, 0, -1))
	add("scalar-index", sgtNode("Gather", nil), nil, r(53, -1, 1, 3, 2), FromInt64([]int64{1}))
	add("axis-2", sgtNode("Gather", a("axis", -2)), nil, r(54, -1, 1, 2, 3, 2), sgtInts(2, 2, 0))

	// Tile.
	add("rows", sgtNode("Tile", nil), nil, r(60, -1, 1, 2, 3), sgtInts(2, 1))
	add("3d", sgtNode("Tile", nil), nil, r(61, -1, 1, 2, 1, 3), sgtInts(1, 3, 2))
	add("ones", sgtNode("Tile", nil), nil, r(62, -1, 1, 2, 3), sgtInts(1, 1))
	add("1d", sgtNode("Tile", nil), nil, r(63, -1, 1, 3), sgtInts(4))

	// Reductions: every op with several axis configurations.
	type redInput func(seed uint64, shape ...int) *Tensor
	inputs := map[string]redInput{
		"ReduceSum":       func(s uint64, sh ...int) *Tensor { return r(s, -1, 1, sh...) },
		"ReduceMean":      func(s uint64, sh ...int) *Tensor { return r(s, -1, 1, sh...) },
		"ReduceMax":       sgtDistinct,
		"ReduceMin":       sgtDistinct,
		"ReduceL2":        func(s uint64, sh ...int) *Tensor { return r(s, -1, 1, sh...) },
		"ReduceSumSquare": func(s uint64, sh ...int) *Tensor { return r(s, -1, 1, sh...) },
		"ReduceL1":        func(s uint64, sh ...int) *Tensor { return sgtAway(s, -1, 1, 0.05, sh...) },
		"ReduceProd":      func(s uint64, sh ...int) *Tensor { return sgtAway(s, -1.5, 1.5, 0.5, sh...) },
		"ReduceLogSum":    func(s uint64, sh ...int) *Tensor { return r(s, 0.5, 2, sh...) },
		"ReduceLogSumExp": func(s uint64, sh ...int) *Tensor { return r(s, -2, 2, sh...) },
	}
	configs := []struct {
		name  string
		attrs map[string]Attr
		shape []int
		axes  *Tensor
	}{
		{"axis1", nil, []int{2, 3, 4}, sgtInts(1)},
		{"axis-1-nokeep", a("keepdims", 0), []int{2, 3, 4}, sgtInts(-1)},
		{"axes02", nil, []int{2, 3, 4}, sgtInts(0, 2)},
		{"axes-3-1-nokeep", a("keepdims", 0), []int{2, 3, 4}, sgtInts(-3, -1)},
		{"all", nil, []int{3, 4}, nil},
		{"all-nokeep", a("keepdims", 0), []int{2, 3, 2}, nil},
		{"axis0", nil, []int{5, 6}, sgtInts(0)},
		{"size1-axis", nil, []int{2, 1, 3}, sgtInts(1)},
		{"noop-empty", a("noop_with_empty_axes", 1), []int{2, 3}, nil},
		{"4d-spatial", nil, []int{2, 2, 3, 3}, sgtInts(2, 3)},
	}
	for i, op := range []string{"ReduceSum", "ReduceMean", "ReduceMax", "ReduceMin", "ReduceL2", "ReduceSumSquare",
		"ReduceL1", "ReduceProd", "ReduceLogSum", "ReduceLogSumExp"} {
		for j, c := range configs {
			x := inputs[op](uint64(100+10*i+j), c.shape...)
			if c.axes == nil {
				add(c.name, sgtNode(op, c.attrs), nil, x)
			} else {
				add(c.name, sgtNode(op, c.attrs), nil, x, c.axes)
			}
		}
	}
	oneZero := FromFloat32([]float32{0.7, 0, -1.2, 0.9, 1.1, -0.8}, 2, 3)
	twoZeros := FromFloat32([]float32{0.7, 0, 0, 0.9, 1.1, -0.8}, 2, 3)
	add("one-zero", sgtNode("ReduceProd", nil), nil, oneZero, sgtInts(1))
	add("two-zeros", sgtNode("ReduceProd", nil), nil, twoZeros, sgtInts(1))
	add("zero-all", sgtNode("ReduceProd", nil), nil, oneZero)

	// Dropout in inference with a mask output is a copy, not a view: its
	// kernel runs and its backward passes the gradient through.
	add("eval-mask", sgtNode("Dropout", nil, "out", "mask"), nil, r(70, -1, 1, 2, 3, 4))
	add("eval-mask-ratio", sgtNode("Dropout", nil, "out", "mask"), nil, r(71, -1, 1, 2, 3), FromFloat32([]float32{0.3}))
}

// sgtCheckGraph checks every trainable parameter's gradient of
// L = sum(w * output) for a one-output graph against central differences,
// like checkGrad does for a single node.
func sgtCheckGraph(t *testing.T, name string, g *Graph, opts TrainOptions) {
	t.Helper()
	ex, err := NewGradExecutor(g, opts)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	ctx := context.Background()
	outName := g.Outputs[0].Name
	out, err := ex.Forward(ctx, nil, true)
	if err != nil {
		t.Fatalf("%s: forward: %v", name, err)
	}
	w := randTensor(99, -1, 1, out[outName].Shape...)
	if err := ex.Backward(ctx, map[string]*Tensor{outName: w}); err != nil {
		t.Fatalf("%s: backward: %v", name, err)
	}
	loss := func() float64 {
		out, err := ex.Forward(ctx, nil, true)
		if err != nil {
			t.Fatalf("%s: forward: %v", name, err)
		}
		s := 0.0
		for i, v := range out[outName].F32 {
			s += float64(v) * float64(w.F32[i])
		}
		return s
	}
	for _, pn := range g.ParamNames() {
		prm := g.Params[pn]
		if !prm.Trainable {
			continue
		}
		grad := ex.Grad(pn)
		if grad == nil {
			t.Errorf("%s: no gradient for %s", name, pn)
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
			if got := float64(grad.F32[j]); math.Abs(num-got) > 2e-2*math.Max(1, math.Abs(num)) {
				t.Errorf("%s: d/d %s[%d]: analytic %.6g, numeric %.6g", name, pn, j, got, num)
				break
			}
		}
	}
}

// TestGradSplitAllOutputs checks the gradient through every output of a
// Split, recombined in another order by a Concat.
func TestGradSplitAllOutputs(t *testing.T) {
	for _, tc := range []struct {
		name  string
		attrs map[string]Attr
		x     *Tensor
		split *Tensor
	}{
		{"axis1-sizes", shpAttrs("axis", 1), randTensor(1, -1, 1, 2, 5, 3), sgtInts(2, 1, 2)},
		{"axis-1-even", shpAttrs("axis", -1), randTensor(2, -1, 1, 3, 6), nil},
		{"axis0-empty-part", nil, randTensor(3, -1, 1, 4, 2), sgtInts(1, 0, 3)},
	} {
		g := NewGraph(tc.name)
		g.AddParam("x", tc.x, true)
		split := &Node{Name: "split", OpType: "Split", Attrs: tc.attrs, Inputs: []string{"x"}, Outputs: []string{"a", "b", "c"}}
		if tc.split != nil {
			g.AddParam("split", tc.split, false)
			split.Inputs = append(split.Inputs, "split")
		}
		axis := int64(0)
		if at, ok := tc.attrs["axis"]; ok {
			axis = at.I
		}
		cat := &Node{Name: "cat", OpType: "Concat", Attrs: map[string]Attr{"axis": {Kind: AttrInt, I: axis}},
			Inputs: []string{"c", "a", "b"}, Outputs: []string{"y"}}
		g.Nodes = []*Node{split, cat}
		g.Outputs = []ValueInfo{{Name: "y"}}
		sgtCheckGraph(t, tc.name, g, TrainOptions{Threads: 1})
	}
}

// TestGradViewChain checks views (executor aliases) mixed with copies whose
// kernel runs: Reshape -> Dropout with a mask in inference -> Transpose ->
// Squeeze -> Slice.
func TestGradViewChain(t *testing.T) {
	g := NewGraph("chain")
	g.AddParam("x", randTensor(5, -1, 1, 2, 12), true)
	g.AddParam("shape", sgtInts(2, 3, 1, 4), false)
	g.AddParam("sq", sgtInts(1), false)
	g.AddParam("st", sgtInts(1), false)
	g.AddParam("en", sgtInts(3), false)
	g.AddParam("ax", sgtInts(-1), false)
	g.Nodes = []*Node{
		{Name: "reshape", OpType: "Reshape", Inputs: []string{"x", "shape"}, Outputs: []string{"r"}},
		{Name: "drop", OpType: "Dropout", Inputs: []string{"r"}, Outputs: []string{"d", "mask"}},
		{Name: "tr", OpType: "Transpose", Attrs: shpAttrs("perm", []int64{3, 2, 1, 0}), Inputs: []string{"d"}, Outputs: []string{"t"}},
		{Name: "sq", OpType: "Squeeze", Inputs: []string{"t", "sq"}, Outputs: []string{"s"}},
		{Name: "slice", OpType: "Slice", Inputs: []string{"s", "st", "en", "ax"}, Outputs: []string{"y"}},
	}
	g.Outputs = []ValueInfo{{Name: "y"}}
	evalAll := func(*Graph, *Node) bool { return true }
	sgtCheckGraph(t, "chain", g, TrainOptions{Threads: 1, EvalMode: evalAll})
}

// sgtSetup is one node compiled and run forward, with its backward kernel,
// random output gradients and zeroed input gradients.
type sgtSetup struct {
	n                  *Node
	gk                 GradKernel
	in, out, gOut, gIn []*Tensor
}

// sgtPrepare compiles n for ins (float inputs are run-time values, the
// others plan-time constants), runs it forward with the given seed and
// prepares its backward.
func sgtPrepare(t testing.TB, n *Node, ins []*Tensor, seed uint64) *sgtSetup {
	t.Helper()
	if len(n.Outputs) == 0 {
		n.Outputs = []string{"y"}
	}
	n.Inputs = make([]string, len(ins))
	metas := make([]ValueMeta, len(ins))
	for i, x := range ins {
		if x == nil {
			continue
		}
		n.Inputs[i] = fmt.Sprintf("i%d", i)
		metas[i] = ValueMeta{DType: x.DType, Shape: x.Shape}
		if x.DType != Float32 || i > 0 && n.OpType != "Concat" {
			metas[i].Const = x
		}
	}
	fk, outMeta, err := CompileNode(n, metas)
	if err != nil {
		t.Fatalf("%s: %v", n.OpType, err)
	}
	s := &sgtSetup{n: n, in: ins}
	for i := range n.Outputs {
		s.out = append(s.out, New(outMeta[i].DType, outMeta[i].Shape...))
	}
	ec := &ExecContext{Ctx: context.Background(), Threads: 1, Seed: seed}
	if err := fk.Run(ec, ins, s.out); err != nil {
		t.Fatalf("%s: forward: %v", n.OpType, err)
	}
	spec, _ := LookupOp("", n.OpType)
	need := make([]bool, len(ins))
	s.gIn = make([]*Tensor, len(ins))
	for i, x := range ins {
		if x != nil && x.DType == Float32 && !contains(spec.NonDiff, i) {
			need[i] = true
			s.gIn[i] = New(Float32, x.Shape...)
		}
	}
	if s.gk, err = spec.Grad(n, metas, outMeta[:len(n.Outputs)], need); err != nil {
		t.Fatalf("%s: grad: %v", n.OpType, err)
	}
	for i, o := range s.out {
		if o.DType == Float32 {
			s.gOut = append(s.gOut, randTensor(uint64(7+i), -1, 1, o.Shape...))
		} else {
			s.gOut = append(s.gOut, nil)
		}
	}
	return s
}

// backward zeroes the input gradients and runs the backward.
func (s *sgtSetup) backward(t testing.TB, threads int) {
	t.Helper()
	for _, g := range s.gIn {
		if g != nil {
			clear(g.F32)
		}
	}
	ec := &ExecContext{Ctx: context.Background(), Threads: threads}
	if err := s.gk.Backward(ec, s.in, s.out, s.gOut, s.gIn); err != nil {
		t.Fatalf("%s: backward: %v", s.n.OpType, err)
	}
}

// sgtBig lists nodes big enough for the backward to split across threads.
func sgtBig() []struct {
	name string
	n    *Node
	ins  []*Tensor
} {
	a := shpAttrs
	idx := make([]int64, 300)
	for i := range idx {
		idx[i] = int64(i*7) % 50
	}
	return []struct {
		name string
		n    *Node
		ins  []*Tensor
	}{
		{"Transpose/nhwc", sgtNode("Transpose", a("perm", []int64{0, 2, 3, 1})), []*Tensor{randTensor(1, -1, 1, 4, 32, 30, 30)}},
		{"Transpose/rows", sgtNode("Transpose", a("perm", []int64{1, 0, 2})), []*Tensor{randTensor(2, -1, 1, 40, 50, 60)}},
		{"Slice/step", sgtNode("Slice", nil), []*Tensor{randTensor(3, -1, 1, 64, 80, 40), sgtInts(1, -1), sgtInts(60, 0), sgtInts(0, 2), sgtInts(2, -3)}},
		{"Concat/axis1", sgtNode("Concat", a("axis", 1)), []*Tensor{randTensor(4, -1, 1, 16, 30, 200), randTensor(5, -1, 1, 16, 50, 200)}},
		{"Split/axis1", sgtNode("Split", a("axis", 1), "a", "b", "c"), []*Tensor{randTensor(6, -1, 1, 16, 60, 200)}},
		{"Gather/axis0-dup", sgtNode("Gather", nil), []*Tensor{randTensor(7, -1, 1, 50, 2000), FromInt64(idx, 300)}},
		{"Gather/axis1", sgtNode("Gather", a("axis", 1)), []*Tensor{randTensor(8, -1, 1, 64, 50, 40), FromInt64(idx[:100], 100)}},
		{"Pad/edge", sgtNode("Pad", a("mode", "edge")), []*Tensor{randTensor(9, -1, 1, 8, 100, 100), sgtInts(0, 3, 2, 0, 5, 4)}},
		{"Pad/constant", sgtNode("Pad", nil), []*Tensor{randTensor(10, -1, 1, 8, 100, 100), sgtInts(0, 1, 1, 0, 1, 1)}},
		{"Tile", sgtNode("Tile", nil), []*Tensor{randTensor(11, -1, 1, 30, 40, 20), sgtInts(2, 1, 3)}},
		{"ReduceSum/axis0", sgtNode("ReduceSum", nil), []*Tensor{randTensor(12, -1, 1, 100, 1000), sgtInts(0)}},
		{"ReduceMean/spatial", sgtNode("ReduceMean", nil), []*Tensor{randTensor(13, -1, 1, 16, 32, 14, 14), sgtInts(2, 3)}},
		{"ReduceMax/last", sgtNode("ReduceMax", a("keepdims", 0)), []*Tensor{randTensor(14, -1, 1, 500, 200), sgtInts(-1)}},
		{"ReduceL2/axis1", sgtNode("ReduceL2", nil), []*Tensor{randTensor(15, -1, 1, 50, 40, 60), sgtInts(1)}},
		{"Dropout/train", sgtNode("Dropout", nil, "y", "mask"), []*Tensor{randTensor(16, -1, 1, 300, 400), FromFloat32([]float32{0.25}), {DType: Bool, B: []bool{true}}}},
		{"Dropout/eval-mask", sgtNode("Dropout", nil, "y", "mask"), []*Tensor{randTensor(17, -1, 1, 300, 400)}},
		{"ReduceSum/noop", sgtNode("ReduceSum", a("noop_with_empty_axes", 1)), []*Tensor{randTensor(18, -1, 1, 300, 400)}},
		{"ReduceProd/axis1", sgtNode("ReduceProd", nil), []*Tensor{randTensor(19, 0.9, 1.1, 50, 40, 60), sgtInts(1)}},
		{"ReduceLogSumExp/last", sgtNode("ReduceLogSumExp", nil), []*Tensor{randTensor(20, -2, 2, 400, 300), sgtInts(-1)}},
		{"ReduceL1/axis0", sgtNode("ReduceL1", nil), []*Tensor{randTensor(21, -2, 2, 400, 300), sgtInts(0)}},
	}
}

// TestGradShapeThreads checks that every backward gives bit-identical
// gradients for 1, 2 and 4 threads, and that it accumulates (+=) into the
// input gradient rather than overwriting it.
func TestGradShapeThreads(t *testing.T) {
	for _, tc := range sgtBig() {
		s := sgtPrepare(t, tc.n, tc.ins, 42)
		s.backward(t, 1)
		var ref []*Tensor
		for _, g := range s.gIn {
			if g != nil {
				ref = append(ref, g.Clone())
			}
		}
		nonZero := false
		for _, g := range ref {
			for _, v := range g.F32 {
				if v != 0 {
					nonZero = true
				}
			}
		}
		if !nonZero {
			t.Errorf("%s: the gradient is all zero", tc.name)
		}
		for _, threads := range []int{2, 4} {
			s.backward(t, threads)
			k := 0
			for _, g := range s.gIn {
				if g == nil {
					continue
				}
				for i, v := range g.F32 {
					if math.Float32bits(v) != math.Float32bits(ref[k].F32[i]) {
						t.Fatalf("%s: %d threads: gradient %d [%d] = %v, 1 thread %v", tc.name, threads, k, i, v, ref[k].F32[i])
					}
				}
				k++
			}
		}
		// Accumulation: starting from 1 gives 1 + the gradient.
		for _, g := range s.gIn {
			if g != nil {
				for i := range g.F32 {
					g.F32[i] = 1
				}
			}
		}
		ec := &ExecContext{Ctx: context.Background(), Threads: 2}
		if err := s.gk.Backward(ec, s.in, s.out, s.gOut, s.gIn); err != nil {
			t.Fatal(err)
		}
		k := 0
		for _, g := range s.gIn {
			if g == nil {
				continue
			}
			for i, v := range g.F32 {
				// Ops that sum several terms into one element (Gather with
				// repeated indices, Tile, edge Pad) round differently when
				// they start from 1, so compare with a tolerance.
				if want := 1 + ref[k].F32[i]; math.Abs(float64(v-want)) > 1e-5*math.Max(1, math.Abs(float64(want))) {
					t.Fatalf("%s: accumulate: [%d] = %v, want %v", tc.name, i, v, want)
				}
			}
			k++
		}
		// A nil output gradient adds nothing.
		for i := range s.gOut {
			s.gOut[i] = nil
		}
		s.backward(t, 2)
		for _, g := range s.gIn {
			if g == nil {
				continue
			}
			for i, v := range g.F32 {
				if v != 0 {
					t.Fatalf("%s: nil output gradient gave [%d] = %v", tc.name, i, v)
				}
			}
		}
	}
}

// TestGradShapeAllocs checks that single-threaded backwards allocate
// nothing per run.
func TestGradShapeAllocs(t *testing.T) {
	for _, tc := range sgtBig() {
		s := sgtPrepare(t, tc.n, tc.ins, 1)
		ec := &ExecContext{Ctx: context.Background(), Threads: 1}
		if a := testing.AllocsPerRun(5, func() { _ = s.gk.Backward(ec, s.in, s.out, s.gOut, s.gIn) }); a != 0 {
			t.Errorf("%s: backward allocates %v times per run", tc.name, a)
		}
	}
}

// TestGradTransposeMatchesReference compares the Transpose and Slice
// backwards with a direct per-element reference on big tensors (both the
// blocked and the row paths).
func TestGradTransposeMatchesReference(t *testing.T) {
	for _, tc := range sgtBig()[:3] {
		s := sgtPrepare(t, tc.n, tc.ins, 1)
		s.backward(t, 2)
		// Reference: run the forward on an index-coded input; output element
		// i then names the input element it read.
		x := tc.ins[0]
		code := New(Float32, x.Shape...)
		for i := range code.F32 {
			code.F32[i] = float32(i)
		}
		ins := append([]*Tensor{code}, tc.ins[1:]...)
		n := *tc.n
		c := sgtPrepare(t, &n, ins, 1)
		want := make([]float32, len(x.F32))
		for i, src := range c.out[0].F32 {
			want[int(src)] += s.gOut[0].F32[i]
		}
		for i, v := range s.gIn[0].F32 {
			if v != want[i] {
				t.Fatalf("%s: gradient [%d] = %v, want %v", tc.name, i, v, want[i])
			}
		}
	}
}

// sgtDropout compiles a training-mode Dropout for x with the given ratio
// (nil: absent) and runs it with seed and threads.
func sgtDropout(t *testing.T, name string, x, ratio *Tensor, seed uint64, threads int) (y, mask *Tensor) {
	t.Helper()
	n := &Node{Name: name, OpType: "Dropout", Inputs: []string{"x", "", "t"}, Outputs: []string{"y", "m"}}
	metas := []ValueMeta{{DType: Float32, Shape: x.Shape}, {}, {DType: Bool, Shape: []int{}, Const: &Tensor{DType: Bool, Shape: []int{}, B: []bool{true}}}}
	ins := []*Tensor{x, nil, metas[2].Const}
	if ratio != nil {
		n.Inputs[1] = "r"
		metas[1] = ValueMeta{DType: Float32, Shape: ratio.Shape, Const: ratio}
		ins[1] = ratio
	}
	k, outMeta, err := CompileNode(n, metas)
	if err != nil {
		t.Fatal(err)
	}
	y, mask = New(outMeta[0].DType, outMeta[0].Shape...), New(outMeta[1].DType, outMeta[1].Shape...)
	shpPoison(y)
	shpPoison(mask)
	ec := &ExecContext{Ctx: context.Background(), Threads: threads, Seed: seed}
	if err := k.Run(ec, ins, []*Tensor{y, mask}); err != nil {
		t.Fatal(err)
	}
	return y, mask
}

func TestDropoutTraining(t *testing.T) {
	x := sgtAway(1, -2, 2, 0.01, 100, 100)
	for _, ratio := range []float32{0.1, 0.5, 0.8} {
		rt := FromFloat32([]float32{ratio})
		y, mask := sgtDropout(t, "d", x, rt, 7, 1)
		kept := 0
		scale := float32(1 / (1 - float64(ratio)))
		for i, m := range mask.B {
			switch {
			case m && y.F32[i] != x.F32[i]*scale:
				t.Fatalf("ratio %v: kept [%d] = %v, want exactly %v*%v", ratio, i, y.F32[i], x.F32[i], scale)
			case !m && y.F32[i] != 0:
				t.Fatalf("ratio %v: dropped [%d] = %v, want 0", ratio, i, y.F32[i])
			}
			if m {
				kept++
			}
		}
		frac := float64(kept) / float64(len(mask.B))
		if sd := math.Sqrt(float64(ratio) * float64(1-ratio) / float64(len(mask.B))); math.Abs(frac-float64(1-ratio)) > 4*sd {
			t.Errorf("ratio %v: kept fraction %.4f, want %.4f +- %.4f", ratio, frac, 1-ratio, 4*sd)
		}
	}
	// The default ratio is 0.5.
	_, mask := sgtDropout(t, "d", x, nil, 7, 1)
	kept := 0
	for _, m := range mask.B {
		if m {
			kept++
		}
	}
	if frac := float64(kept) / float64(len(mask.B)); math.Abs(frac-0.5) > 0.02 {
		t.Errorf("default ratio: kept fraction %.4f, want 0.5", frac)
	}
	// Ratio 0 is the identity with an all-true mask.
	y, mask := sgtDropout(t, "d", x, FromFloat32([]float32{0}), 7, 1)
	for i, m := range mask.B {
		if !m || y.F32[i] != x.F32[i] {
			t.Fatalf("ratio 0: [%d] y=%v mask=%v, want %v true", i, y.F32[i], m, x.F32[i])
		}
	}
}

func TestDropoutDeterminism(t *testing.T) {
	x := randTensor(2, -1, 1, 50000) // several chunks, split across threads
	r := FromFloat32([]float32{0.4})
	y1, m1 := sgtDropout(t, "d", x, r, 11, 1)
	same := func(a, b *Tensor) bool {
		for i := range a.B {
			if a.B[i] != b.B[i] {
				return false
			}
		}
		for i := range a.F32 {
			if math.Float32bits(a.F32[i]) != math.Float32bits(b.F32[i]) {
				return false
			}
		}
		return true
	}
	for _, threads := range []int{1, 2, 3, 4} {
		y, m := sgtDropout(t, "d", x, r, 11, threads)
		if !same(y, y1) || !same(m, m1) {
			t.Errorf("%d threads: a different result for the same seed", threads)
		}
	}
	diff := func(a, b *Tensor) int {
		n := 0
		for i := range a.B {
			if a.B[i] != b.B[i] {
				n++
			}
		}
		return n
	}
	_, m2 := sgtDropout(t, "d", x, r, 12, 2)
	if d := diff(m1, m2); d < len(m1.B)/4 {
		t.Errorf("seeds 11 and 12 give masks differing in %d of %d elements", d, len(m1.B))
	}
	_, m3 := sgtDropout(t, "other", x, r, 11, 2)
	if d := diff(m1, m3); d < len(m1.B)/4 {
		t.Errorf("two nodes with the same seed give masks differing in %d of %d elements", d, len(m1.B))
	}
	// Chunks are independent streams: the second half of the mask is not a
	// copy of the first.
	if d := diff(&Tensor{B: m1.B[:dropoutChunk]}, &Tensor{B: m1.B[dropoutChunk : 2*dropoutChunk]}); d < dropoutChunk/4 {
		t.Errorf("chunks 0 and 1 differ in only %d elements", d)
	}
}

func TestDropoutTrainingErrors(t *testing.T) {
	x := ValueMeta{DType: Float32, Shape: []int{2, 3}}
	tr := ValueMeta{DType: Bool, Shape: []int{}, Const: &Tensor{DType: Bool, Shape: []int{}, B: []bool{true}}}
	n := &Node{Name: "d", OpType: "Dropout", Inputs: []string{"x", "r", "t"}, Outputs: []string{"y", "m"}}
	cases := []struct {
		name string
		in   []ValueMeta
		want string
	}{
		{"runtime training_mode", []ValueMeta{x, {}, {DType: Bool, Shape: []int{}}}, "computed at run time"},
		{"ratio 1", []ValueMeta{x, {DType: Float32, Shape: []int{}, Const: FromFloat32([]float32{1})}, tr}, "[0, 1)"},
		{"ratio negative", []ValueMeta{x, {DType: Float32, Shape: []int{}, Const: FromFloat32([]float32{-0.1})}, tr}, "[0, 1)"},
		{"int data", []ValueMeta{{DType: Int32, Shape: []int{2}}, {}, tr}, "float32"},
	}
	for _, c := range cases {
		_, _, err := CompileNode(n, c.in)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error = %v, want %q", c.name, err, c.want)
		}
	}
	// A ratio known only at run time is read and checked when the node runs.
	k, _, err := CompileNode(n, []ValueMeta{x, {DType: Float32, Shape: []int{}}, tr})
	if err != nil {
		t.Fatal(err)
	}
	ins := []*Tensor{randTensor(1, -1, 1, 2, 3), FromFloat32([]float32{0}), tr.Const}
	outs := []*Tensor{New(Float32, 2, 3), New(Bool, 2, 3)}
	ec := &ExecContext{Ctx: context.Background(), Threads: 1}
	if err := k.Run(ec, ins, outs); err != nil {
		t.Fatal(err)
	}
	if err := shpSame(outs[0], ins[0]); err != nil {
		t.Errorf("run-time ratio 0: %v", err)
	}
	ins[1] = FromFloat32([]float32{1.5})
	if err := k.Run(ec, ins, outs); err == nil || !strings.Contains(err.Error(), "[0, 1)") {
		t.Errorf("run-time ratio 1.5: error = %v", err)
	}
}

// TestDropoutTrainingGrad trains through a Dropout with GradExecutor: the
// gradient is the output gradient scaled by 1/(1-ratio) where the element
// was kept and 0 where it was dropped, the same seed gives the same mask,
// SetSeed changes it, and an evaluation forward is the identity.
func TestDropoutTrainingGrad(t *testing.T) {
	const ratio = 0.3
	x := sgtAway(3, -1, 1, 0.01, 40, 50)
	g := NewGraph("dropout")
	g.AddParam("x", x, true)
	g.AddParam("ratio", FromFloat32([]float32{ratio}), false)
	g.Nodes = []*Node{{Name: "drop", OpType: "Dropout", Inputs: []string{"x", "ratio"}, Outputs: []string{"y"}}}
	g.Outputs = []ValueInfo{{Name: "y"}}
	ex, err := NewGradExecutor(g, TrainOptions{Threads: 2, Seed: 5})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	out, err := ex.Forward(ctx, nil, true)
	if err != nil {
		t.Fatal(err)
	}
	y := out["y"].Clone()
	w := randTensor(4, -1, 1, 40, 50)
	if err := ex.Backward(ctx, map[string]*Tensor{"y": w}); err != nil {
		t.Fatal(err)
	}
	grad := ex.Grad("x")
	scale := float32(1 / (1 - float64(float32(ratio))))
	dropped := 0
	for i, v := range y.F32 {
		want := w.F32[i] * scale
		if v == 0 {
			want = 0
			dropped++
		} else if v != x.F32[i]*scale {
			t.Fatalf("y[%d] = %v, want %v*%v", i, v, x.F32[i], scale)
		}
		if grad.F32[i] != want {
			t.Fatalf("grad[%d] = %v, want %v", i, grad.F32[i], want)
		}
	}
	if dropped == 0 || dropped == len(y.F32) {
		t.Fatalf("dropped %d of %d", dropped, len(y.F32))
	}
	// The same seed draws the same mask; a new seed another one.
	out, _ = ex.Forward(ctx, nil, true)
	if err := shpSame(out["y"], y); err != nil {
		t.Errorf("same seed, second forward: %v", err)
	}
	ex.SetSeed(6)
	out, _ = ex.Forward(ctx, nil, true)
	if shpSame(out["y"], y) == nil {
		t.Errorf("SetSeed(6) drew the same mask as seed 5")
	}
	// The gradient check holds with the mask fixed by the seed.
	sgtCheckGraph(t, "dropout-train", g, TrainOptions{Threads: 1, Seed: 9})
	// Evaluation is the identity.
	out, err = ex.Forward(ctx, nil, false)
	if err != nil {
		t.Fatal(err)
	}
	if err := shpSame(out["y"], x); err != nil {
		t.Errorf("eval forward: %v", err)
	}
}

// TestDropoutTrainingGraphInput runs an ONNX-style training Dropout whose
// ratio and training_mode are graph inputs through the inference executor.
func TestDropoutTrainingGraphInput(t *testing.T) {
	g := NewGraph("dropout")
	g.Inputs = []ValueInfo{{Name: "x", DType: Float32, Shape: []int{3, 4, 5}}, {Name: "r", DType: Float32, Shape: []int{}}, {Name: "t", DType: Bool, Shape: []int{}}}
	g.Nodes = []*Node{{Name: "drop", OpType: "Dropout", Inputs: []string{"x", "r", "t"}, Outputs: []string{"y", "z"}}}
	g.Outputs = []ValueInfo{{Name: "y"}, {Name: "z"}}
	ex, err := NewExecutor(g, Options{Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	x := randTensor(1, -1, 1, 3, 4, 5)
	out, err := ex.Run(context.Background(), map[string]*Tensor{"x": x, "r": FromFloat32([]float32{0}), "t": {DType: Bool, Shape: []int{}, B: []bool{true}}})
	if err != nil {
		t.Fatal(err)
	}
	if err := shpSame(out["y"], x); err != nil {
		t.Errorf("ratio 0: %v", err)
	}
	for i, m := range out["z"].B {
		if !m {
			t.Fatalf("ratio 0: mask[%d] is false", i)
		}
	}
}

// TestGradReduceMaxTies checks that ReduceMax and ReduceMin give the whole
// gradient to the first extreme element in index order.
func TestGradReduceMaxTies(t *testing.T) {
	nan := float32(math.NaN())
	cases := []struct {
		name string
		op   string
		x    *Tensor
		axes *Tensor
		want []float32 // gradient for an output gradient of 1, 2, 3...
	}{
		{"max-last", "ReduceMax", FromFloat32([]float32{1, 3, 3, 2}, 1, 4), sgtInts(1), []float32{0, 1, 0, 0}},
		{"min-last", "ReduceMin", FromFloat32([]float32{2, 1, 1}, 3), nil, []float32{0, 1, 0}},
		{"max-axis0", "ReduceMax", FromFloat32([]float32{1, 5, 4, 5, 4, 2}, 3, 2), sgtInts(0), []float32{0, 2, 1, 0, 0, 0}},
		{"min-axes", "ReduceMin", FromFloat32([]float32{1, 0, 0, 3, 0, 2, 0, 0}, 2, 2, 2), sgtInts(0, 2), []float32{0, 1, 2, 0, 0, 0, 0, 0}},
		{"max-nan", "ReduceMax", FromFloat32([]float32{1, nan, 7, nan}, 4), nil, []float32{0, 1, 0, 0}},
	}
	for _, c := range cases {
		ins := []*Tensor{c.x}
		if c.axes != nil {
			ins = append(ins, c.axes)
		}
		s := sgtPrepare(t, sgtNode(c.op, nil), ins, 1)
		for i := range s.gOut[0].F32 {
			s.gOut[0].F32[i] = float32(i + 1)
		}
		s.backward(t, 1)
		for i, v := range s.gIn[0].F32 {
			if v != c.want[i] {
				t.Errorf("%s: gradient %v, want %v", c.name, s.gIn[0].F32, c.want)
				break
			}
		}
	}
}

// sgtBench benchmarks the backward of n on one thread.
func sgtBench(b *testing.B, n *Node, ins ...*Tensor) {
	s := sgtPrepare(b, n, ins, 1)
	b.SetBytes(int64(4 * 2 * len(ins[0].F32)))
	b.ResetTimer()
	for range b.N {
		s.backward(b, 1)
	}
}

func BenchmarkGradTransposeNCHWtoNHWC(b *testing.B) {
	sgtBench(b, sgtNode("Transpose", shpAttrs("perm", []int64{0, 2, 3, 1})), shpSeq(Float32, 8, 64, 56, 56))
}

func BenchmarkGradSliceStep2(b *testing.B) {
	sgtBench(b, sgtNode("Slice", nil), shpSeq(Float32, 8, 64, 56, 56), sgtInts(0), sgtInts(56), sgtInts(3), sgtInts(2))
}

func BenchmarkGradConcatChannels(b *testing.B) {
	x := shpSeq(Float32, 8, 64, 56, 56)
	sgtBench(b, sgtNode("Concat", shpAttrs("axis", 1)), x, x)
}

func BenchmarkGradPadConstant(b *testing.B) {
	sgtBench(b, sgtNode("Pad", nil), shpSeq(Float32, 8, 64, 56, 56), sgtInts(0, 0, 1, 1, 0, 0, 1, 1))
}

func BenchmarkGradReduceMeanSpatial(b *testing.B) {
	sgtBench(b, sgtNode("ReduceMean", nil), shpSeq(Float32, 8, 64, 56, 56), sgtInts(2, 3))
}

func BenchmarkGradGatherRows(b *testing.B) {
	idx := make([]int64, 4096)
	for i := range idx {
		idx[i] = int64(i*31) % 1000
	}
	sgtBench(b, sgtNode("Gather", nil), shpSeq(Float32, 1000, 256), FromInt64(idx, len(idx)))
}

func BenchmarkDropoutTrainForward(b *testing.B) {
	x := shpSeq(Float32, 8, 64, 56, 56)
	n := &Node{Name: "d", OpType: "Dropout", Inputs: []string{"x", "r", "t"}, Outputs: []string{"y", "m"}}
	tr := &Tensor{DType: Bool, Shape: []int{}, B: []bool{true}}
	r := FromFloat32([]float32{0.5})
	k, om, err := CompileNode(n, []ValueMeta{{DType: Float32, Shape: x.Shape}, {DType: Float32, Shape: []int{1}, Const: r}, {DType: Bool, Shape: []int{}, Const: tr}})
	if err != nil {
		b.Fatal(err)
	}
	outs := []*Tensor{New(om[0].DType, om[0].Shape...), New(om[1].DType, om[1].Shape...)}
	ec := &ExecContext{Ctx: context.Background(), Threads: 1, Seed: 3}
	b.SetBytes(int64(4 * 2 * len(x.F32)))
	b.ResetTimer()
	for range b.N {
		if err := k.Run(ec, []*Tensor{x, r, tr}, outs); err != nil {
			b.Fatal(err)
		}
	}
}

// TestDropoutTrainAllocs checks that a single-threaded training Dropout
// forward allocates nothing.
func TestDropoutTrainAllocs(t *testing.T) {
	x := randTensor(1, -1, 1, 64, 1000)
	n := &Node{Name: "d", OpType: "Dropout", Inputs: []string{"x", "r", "t"}, Outputs: []string{"y", "m"}}
	tr := &Tensor{DType: Bool, Shape: []int{}, B: []bool{true}}
	r := FromFloat32([]float32{0.5})
	k, om, err := CompileNode(n, []ValueMeta{{DType: Float32, Shape: x.Shape}, {DType: Float32, Shape: []int{1}, Const: r}, {DType: Bool, Shape: []int{}, Const: tr}})
	if err != nil {
		t.Fatal(err)
	}
	outs := []*Tensor{New(om[0].DType, om[0].Shape...), New(om[1].DType, om[1].Shape...)}
	ec := &ExecContext{Ctx: context.Background(), Threads: 1, Seed: 3}
	ins := []*Tensor{x, r, tr}
	if a := testing.AllocsPerRun(5, func() { _ = k.Run(ec, ins, outs) }); a != 0 {
		t.Errorf("training Dropout allocates %v times per run", a)
	}
}
