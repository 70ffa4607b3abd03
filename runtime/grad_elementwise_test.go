package runtime

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
)

// ewgNode is a node of type op with the given attributes.
func ewgNode(op string, attrs map[string]Attr) *Node {
	return &Node{Name: "n_" + op, OpType: op, Attrs: attrs}
}

// ewgAway moves the values of t that lie within d of a kink to the kink
// +- d, so that finite differences never straddle a kink.
func ewgAway(t *Tensor, d float32, kinks ...float32) *Tensor {
	for i, v := range t.F32 {
		for _, k := range kinks {
			if v > k-d && v < k+d {
				if v >= k {
					v = k + d
				} else {
					v = k - d
				}
			}
		}
		t.F32[i] = v
	}
	return t
}

// ewgGrid returns values 0.2*m + off with m uniform in [-5, 5]: tensors
// built with different offsets never tie, and differ by at least 0.06.
func ewgGrid(seed uint64, off float32, shape ...int) *Tensor {
	rng := rand.New(rand.NewPCG(seed, 11))
	t := New(Float32, shape...)
	for i := range t.F32 {
		t.F32[i] = 0.2*float32(rng.IntN(11)-5) + off
	}
	return t
}

func ewgScalar(v float32) *Tensor { return FromFloat32([]float32{v}) }

func init() {
	fa := func(v float32) map[string]Attr { return map[string]Attr{"alpha": {Kind: AttrFloat, F: v}} }
	r := randTensor
	unary := []struct {
		op     string
		attrs  map[string]Attr
		x      *Tensor
		suffix string
	}{
		{"Sqrt", nil, r(1, 0.3, 3, 2, 3, 4), ""},
		{"Exp", nil, r(2, -2, 2, 2, 3, 4), ""},
		{"Log", nil, r(3, 0.3, 3, 2, 3, 4), ""},
		{"Neg", nil, r(4, -2, 2, 2, 3, 4), ""},
		{"Abs", nil, ewgAway(r(5, -2, 2, 2, 3, 4), 0.1, 0), ""},
		{"Reciprocal", nil, ewgAway(r(6, -2, 2, 2, 3, 4), 0.5, 0), ""},
		{"Relu", nil, ewgAway(r(7, -2, 2, 2, 3, 4), 0.1, 0), ""},
		{"LeakyRelu", nil, ewgAway(r(8, -2, 2, 2, 3, 4), 0.1, 0), ""},
		{"LeakyRelu", fa(0.2), ewgAway(r(9, -2, 2, 2, 3, 4), 0.1, 0), "/alpha"},
		{"Elu", nil, ewgAway(r(10, -2, 2, 2, 3, 4), 0.1, 0), ""},
		{"Elu", fa(0.5), ewgAway(r(11, -2, 2, 2, 3, 4), 0.1, 0), "/alpha"},
		{"Selu", nil, ewgAway(r(12, -2, 2, 2, 3, 4), 0.1, 0), ""},
		{"Sigmoid", nil, r(13, -4, 4, 2, 3, 4), ""},
		{"Tanh", nil, r(14, -3, 3, 2, 3, 4), ""},
		{"HardSigmoid", nil, ewgAway(r(15, -4, 4, 2, 3, 4), 0.15, -2.5, 2.5), ""},
		{"HardSigmoid", map[string]Attr{"alpha": {Kind: AttrFloat, F: 0.5}, "beta": {Kind: AttrFloat, F: 0.3}},
			ewgAway(r(16, -3, 3, 2, 3, 4), 0.15, -0.6, 1.4), "/attrs"},
		{"HardSwish", nil, ewgAway(r(17, -5, 5, 2, 3, 4), 0.15, -3, 3), ""},
		{"Softplus", nil, r(18, -4, 4, 2, 3, 4), ""},
		{"Softsign", nil, ewgAway(r(19, -3, 3, 2, 3, 4), 0.1, 0), ""},
		{"Erf", nil, r(20, -2, 2, 2, 3, 4), ""},
		{"Softmax", nil, r(21, -2, 2, 2, 3, 4), ""},
		{"Softmax", map[string]Attr{"axis": {Kind: AttrInt, I: 1}}, r(22, -2, 2, 2, 3, 4), "/axis1"},
		{"LogSoftmax", nil, r(23, -2, 2, 2, 3, 4), ""},
		{"LogSoftmax", map[string]Attr{"axis": {Kind: AttrInt, I: 0}}, r(24, -2, 2, 2, 3, 4), "/axis0"},
		{"Cast", map[string]Attr{"to": {Kind: AttrInt, I: onnxFloat}}, r(25, -2, 2, 2, 3), ""},
		{"Sum", nil, r(26, -2, 2, 2, 3), "/single"},
	}
	for _, u := range unary {
		gradCases = append(gradCases, gradCase{
			name: "ew/" + u.op + u.suffix, node: ewgNode(u.op, u.attrs), inputs: []*Tensor{u.x},
		})
	}

	binary := []struct {
		name   string
		op     string
		attrs  map[string]Attr
		inputs []*Tensor
		fixed  []int
	}{
		{"Add/same", "Add", nil, []*Tensor{r(30, -1, 1, 2, 3), r(31, -1, 1, 2, 3)}, nil},
		{"Add/broadcast", "Add", nil, []*Tensor{r(32, -1, 1, 2, 3), r(33, -1, 1, 3)}, nil},
		{"Add/broadcast-first", "Add", nil, []*Tensor{r(34, -1, 1, 3), r(35, -1, 1, 2, 3)}, nil},
		{"Add/channel", "Add", nil, []*Tensor{r(36, -1, 1, 2, 3, 4, 4), r(37, -1, 1, 3, 1, 1)}, nil},
		{"Add/scalar", "Add", nil, []*Tensor{r(38, -1, 1, 2, 3), r(39, -1, 1)}, nil},
		{"Add/both", "Add", nil, []*Tensor{r(40, -1, 1, 2, 1, 4), r(41, -1, 1, 3, 1)}, nil},
		{"Add/column", "Add", nil, []*Tensor{r(42, -1, 1, 4, 5), r(43, -1, 1, 4, 1)}, nil},
		{"Add/mixed", "Add", nil, []*Tensor{r(44, -1, 1, 2, 3, 2, 5), r(45, -1, 1, 1, 3, 1, 5)}, nil},
		{"Sub/same", "Sub", nil, []*Tensor{r(46, -1, 1, 2, 3), r(47, -1, 1, 2, 3)}, nil},
		{"Sub/broadcast", "Sub", nil, []*Tensor{r(48, -1, 1, 2, 3), r(49, -1, 1, 3)}, nil},
		{"Sub/channel", "Sub", nil, []*Tensor{r(50, -1, 1, 3, 1, 1), r(51, -1, 1, 2, 3, 4, 4)}, nil},
		{"Mul/same", "Mul", nil, []*Tensor{r(52, -2, 2, 2, 3), r(53, -2, 2, 2, 3)}, nil},
		{"Mul/broadcast", "Mul", nil, []*Tensor{r(54, -2, 2, 2, 3), r(55, -2, 2, 3)}, nil},
		{"Mul/channel", "Mul", nil, []*Tensor{r(56, -2, 2, 2, 3, 4, 4), r(57, -2, 2, 3, 1, 1)}, nil},
		{"Mul/scalar", "Mul", nil, []*Tensor{r(58, -2, 2), r(59, -2, 2, 2, 3)}, nil},
		{"Mul/both", "Mul", nil, []*Tensor{r(60, -2, 2, 2, 1, 4), r(61, -2, 2, 3, 1)}, nil},
		{"Div/same", "Div", nil, []*Tensor{r(62, -2, 2, 2, 3), r(63, 0.5, 2, 2, 3)}, nil},
		{"Div/broadcast", "Div", nil, []*Tensor{r(64, -2, 2, 2, 3), ewgAway(r(65, -2, 2, 3), 0.5, 0)}, nil},
		{"Div/channel", "Div", nil, []*Tensor{r(66, -2, 2, 3, 1, 1), r(67, 0.5, 2, 2, 3, 4, 4)}, nil},
		{"Div/scalar", "Div", nil, []*Tensor{r(68, -2, 2, 2, 3), ewgScalar(-1.5)}, nil},
		{"Pow/same", "Pow", nil, []*Tensor{r(70, 0.5, 2, 2, 3), r(71, -1.5, 2, 2, 3)}, nil},
		{"Pow/broadcast", "Pow", nil, []*Tensor{r(72, 0.5, 2, 2, 3), r(73, -1.5, 2, 3)}, nil},
		{"Pow/scalar-exp", "Pow", nil, []*Tensor{r(74, 0.5, 2, 2, 3), ewgScalar(1.7)}, nil},
		{"Pow/square", "Pow", nil, []*Tensor{r(75, -2, 2, 2, 3), ewgScalar(2)}, []int{1}},
		{"Pow/int-exp", "Pow", nil, []*Tensor{r(76, -2, 2, 2, 3), FromInt64([]int64{3})}, nil},
		{"Mod/fmod", "Mod", map[string]Attr{"fmod": {Kind: AttrInt, I: 1}}, []*Tensor{
			FromFloat32([]float32{2.3, -3.7, 5.2, 1.45}, 4), FromFloat32([]float32{1.1, 1.6, -2.1, 0.6}, 4)}, nil},
		{"PRelu/channel", "PRelu", nil, []*Tensor{ewgAway(r(80, -2, 2, 2, 3, 4, 4), 0.1, 0), r(81, 0.1, 0.5, 3, 1, 1)}, nil},
		{"PRelu/scalar", "PRelu", nil, []*Tensor{ewgAway(r(82, -2, 2, 2, 3), 0.1, 0), r(83, 0.1, 0.5, 1)}, nil},
		{"PRelu/same", "PRelu", nil, []*Tensor{ewgAway(r(84, -2, 2, 2, 3), 0.1, 0), r(85, 0.1, 0.5, 2, 3)}, nil},
		{"Clip/both", "Clip", nil, []*Tensor{ewgAway(r(86, -2, 2, 2, 3, 4), 0.1, -0.5, 0.7), ewgScalar(-0.5), ewgScalar(0.7)}, []int{1, 2}},
		{"Clip/min", "Clip", nil, []*Tensor{ewgAway(r(87, -2, 2, 2, 3, 4), 0.1, 0.2), ewgScalar(0.2)}, []int{1}},
		{"Clip/max", "Clip", nil, []*Tensor{ewgAway(r(88, -2, 2, 2, 3, 4), 0.1, 0.3), nil, ewgScalar(0.3)}, []int{2}},
		{"Clip/none", "Clip", nil, []*Tensor{r(89, -2, 2, 2, 3)}, nil},
		{"Where/same", "Where", nil, []*Tensor{ewB([]bool{true, false, true, true, false, false}, 2, 3),
			r(90, -1, 1, 2, 3), r(91, -1, 1, 2, 3)}, nil},
		{"Where/broadcast", "Where", nil, []*Tensor{ewB([]bool{true, false, true, false, false, true}, 2, 3),
			r(92, -1, 1, 3), r(93, -1, 1, 2, 1)}, nil},
		{"Where/cond-broadcast", "Where", nil, []*Tensor{ewB([]bool{false, true, true}, 3),
			r(94, -1, 1, 2, 3), r(95, -1, 1)}, nil},
		{"Expand/rows", "Expand", nil, []*Tensor{r(96, -1, 1, 3, 1), FromInt64([]int64{2, 3, 4}, 3)}, nil},
		{"Expand/same", "Expand", nil, []*Tensor{r(97, -1, 1, 2, 3), FromInt64([]int64{2, 3}, 2)}, nil},
		{"Expand/bidirectional", "Expand", nil, []*Tensor{r(98, -1, 1, 2, 1, 4), FromInt64([]int64{3, 1}, 2)}, nil},
		{"Sum/broadcast", "Sum", nil, []*Tensor{r(100, -1, 1, 2, 3), r(101, -1, 1, 3), r(102, -1, 1, 2, 1)}, nil},
		{"Mean/broadcast", "Mean", nil, []*Tensor{r(103, -1, 1, 2, 3), r(104, -1, 1, 3), r(105, -1, 1)}, nil},
		{"Max/broadcast", "Max", nil, []*Tensor{ewgGrid(106, 0, 2, 3), ewgGrid(107, 0.07, 3), ewgGrid(108, 0.14, 2, 1)}, nil},
		{"Min/broadcast", "Min", nil, []*Tensor{ewgGrid(109, 0, 2, 3), ewgGrid(110, 0.07, 3), ewgGrid(111, 0.14, 2, 1)}, nil},
		{"Max/same", "Max", nil, []*Tensor{ewgGrid(112, 0, 2, 3), ewgGrid(113, 0.07, 2, 3)}, nil},
		{"Min/scalar", "Min", nil, []*Tensor{ewgGrid(114, 0, 2, 3), ewgScalar(0.07)}, nil},
	}
	for _, b := range binary {
		gradCases = append(gradCases, gradCase{
			name: "ew/" + b.name, node: ewgNode(b.op, b.attrs), inputs: b.inputs, fixed: b.fixed,
		})
	}
}

// TestReducePlan compares ReducePlan with a float64 reference for the
// common broadcast patterns, checks accumulate and alpha, and that one and
// several threads give bit-identical results.
func TestReducePlan(t *testing.T) {
	tests := []struct{ out, in []int }{
		{[]int{2, 3}, []int{2, 3}},
		{[]int{2, 3}, []int{3}},
		{[]int{2, 3}, []int{}},
		{[]int{2, 3}, []int{2, 1}},
		{[]int{2, 3, 4, 4}, []int{3, 1, 1}},
		{[]int{2, 3, 4, 4}, []int{1, 3, 1, 1}},
		{[]int{2, 3, 4, 5}, []int{1, 3, 1, 5}},
		{[]int{2, 3, 4, 5}, []int{2, 1, 4, 1}},
		{[]int{1, 3, 1, 5}, []int{3, 1, 1}},
		{[]int{4, 1, 700}, []int{700}},
		{[]int{0, 3}, []int{3}},
		{[]int{128, 64, 12, 12}, []int{64, 1, 1}},
		{[]int{256, 600}, []int{600}},
		{[]int{300000}, []int{1}},
		{[]int{8, 16, 32, 33}, []int{1, 16, 1, 33}},
		{[]int{8, 16, 32, 33}, []int{8, 1, 32, 1}},
		{[]int{70000, 2}, []int{70000, 1}},
	}
	for ti, tc := range tests {
		name := fmt.Sprintf("%d/%s->%s", ti, ewShape(tc.out), ewShape(tc.in))
		t.Run(name, func(t *testing.T) {
			p, err := NewReducePlan(tc.out, tc.in)
			if err != nil {
				t.Fatal(err)
			}
			src := randTensor(uint64(ti), -1, 1, tc.out...).F32
			want := ewgReduceRef(src, tc.out, tc.in)
			init := randTensor(uint64(ti)+100, -1, 1, len(want)).F32
			for _, acc := range []bool{false, true} {
				var first []float32
				for _, threads := range []int{1, 3} {
					dst := append([]float32{}, init...)
					if err := p.Run(threads, dst, src, 0.5, acc); err != nil {
						t.Fatal(err)
					}
					for i, w := range want {
						w *= 0.5
						if acc {
							w += float64(init[i])
						}
						if math.Abs(float64(dst[i])-w) > 1e-5*math.Max(1, math.Abs(w)) {
							t.Fatalf("accumulate %v threads %d: element %d = %v, want %v", acc, threads, i, dst[i], w)
						}
					}
					if first == nil {
						first = dst
					} else {
						for i := range dst {
							if math.Float32bits(dst[i]) != math.Float32bits(first[i]) {
								t.Fatalf("accumulate %v: threads 3 differ from threads 1 at %d: %v vs %v", acc, i, dst[i], first[i])
							}
						}
					}
				}
			}
		})
	}
}

// ewgReduceRef sums src (shape out) to shape in in float64.
func ewgReduceRef(src []float32, out, in []int) []float64 {
	r := len(out)
	full := make([]int, r)
	for i := range full {
		full[i] = 1
		if j := i - (r - len(in)); j >= 0 {
			full[i] = in[j]
		}
	}
	dst := make([]float64, NumElements(in))
	ist := Strides(full)
	coord := make([]int, r)
	for e, v := range src {
		rem := e
		for d := r - 1; d >= 0; d-- {
			coord[d] = rem % out[d]
			rem /= out[d]
		}
		off := 0
		for d := range r {
			if full[d] != 1 {
				off += coord[d] * ist[d]
			}
		}
		dst[off] += float64(v)
	}
	return dst
}

func TestReducePlanErrors(t *testing.T) {
	tests := []struct{ out, in []int }{
		{[]int{2, 3}, []int{2}},
		{[]int{3}, []int{2, 3}},
		{[]int{2, 3}, []int{4, 3}},
	}
	for i, tc := range tests {
		if _, err := NewReducePlan(tc.out, tc.in); err == nil {
			t.Errorf("%d: NewReducePlan(%v, %v) did not fail", i, tc.out, tc.in)
		}
	}
	p, _ := NewReducePlan([]int{2, 3}, []int{3})
	if err := p.Run(1, make([]float32, 2), make([]float32, 6), 1, false); err == nil {
		t.Errorf("Run with a short destination did not fail")
	}
	dst := make([]float32, 3)
	if err := ReduceToShape(1, []float32{1, 2, 3, 4, 5, 6}, []int{2, 3}, []int{3}, dst, false); err != nil || dst[0] != 5 || dst[2] != 9 {
		t.Errorf("ReduceToShape = %v, %v; want [5 7 9]", dst, err)
	}
}

// ewgGradSetup is a node compiled forward and backward, run forward once,
// with everything a Backward call needs: a random output gradient and zeroed
// gradients for every float input.
type ewgGradSetup struct {
	k             GradKernel
	in, out, gOut []*Tensor
	gIn           []*Tensor
}

// ewgSetup compiles and runs n forward on inputs and compiles its backward.
func ewgSetup(t testing.TB, n *Node, inputs ...*Tensor) *ewgGradSetup {
	t.Helper()
	metas := make([]ValueMeta, len(inputs))
	need := make([]bool, len(inputs))
	for i, x := range inputs {
		if x != nil {
			metas[i] = ValueMeta{DType: x.DType, Shape: x.Shape}
			need[i] = x.DType == Float32
			if x.DType != Float32 {
				metas[i].Const = x
			}
		}
	}
	fk, outMeta, err := CompileNode(n, metas)
	if err != nil {
		t.Fatal(err)
	}
	out := []*Tensor{New(outMeta[0].DType, outMeta[0].Shape...)}
	if err := fk.Run(&ExecContext{Ctx: context.Background(), Threads: 1}, inputs, out); err != nil {
		t.Fatal(err)
	}
	spec, _ := LookupOp("", n.OpType)
	gk, err := spec.Grad(n, metas, outMeta, need)
	if err != nil {
		t.Fatal(err)
	}
	s := &ewgGradSetup{k: gk, in: inputs, out: out, gOut: []*Tensor{randTensor(99, -1, 1, outMeta[0].Shape...)}}
	for i, x := range inputs {
		if need[i] {
			s.gIn = append(s.gIn, New(Float32, x.Shape...))
		} else {
			s.gIn = append(s.gIn, nil)
		}
	}
	return s
}

// run calls Backward once on the given number of threads.
func (s *ewgGradSetup) run(t testing.TB, threads int) {
	ctx := &ExecContext{Ctx: context.Background(), Threads: threads}
	if err := s.k.Backward(ctx, s.in, s.out, s.gOut, s.gIn); err != nil {
		t.Fatal(err)
	}
}

// TestGradElementwiseThreads checks that large backward passes give
// bit-identical gradients on one and several threads, and that they add
// into the gradients rather than overwrite them.
func TestGradElementwiseThreads(t *testing.T) {
	big := []int{4, 32, 24, 24} // 73728 elements: above the parallel threshold
	tests := []struct {
		name   string
		op     string
		inputs []*Tensor
	}{
		{"Relu", "Relu", []*Tensor{randTensor(1, -1, 1, big...)}},
		{"Softmax", "Softmax", []*Tensor{randTensor(2, -1, 1, big...)}},
		{"LogSoftmax", "LogSoftmax", []*Tensor{randTensor(3, -1, 1, big...)}},
		{"Sigmoid", "Sigmoid", []*Tensor{randTensor(4, -1, 1, big...)}},
		{"Add/bias", "Add", []*Tensor{randTensor(5, -1, 1, 256, 300), randTensor(6, -1, 1, 300)}},
		{"Add/channel", "Add", []*Tensor{randTensor(7, -1, 1, big...), randTensor(8, -1, 1, 32, 1, 1)}},
		{"Mul/channel", "Mul", []*Tensor{randTensor(9, -1, 1, big...), randTensor(10, -1, 1, 32, 1, 1)}},
		{"PRelu/channel", "PRelu", []*Tensor{randTensor(11, -1, 1, big...), randTensor(12, 0, 1, 32, 1, 1)}},
		{"Max/broadcast", "Max", []*Tensor{randTensor(13, -1, 1, big...), randTensor(14, -1, 1, 24, 24)}},
		{"Where/broadcast", "Where", []*Tensor{ewgMask(15, 24), randTensor(16, -1, 1, big...), randTensor(17, -1, 1, 24, 1)}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var ref []*Tensor
			for _, threads := range []int{1, 4} {
				s := ewgSetup(t, ewgNode(tc.op, nil), tc.inputs...)
				s.run(t, threads)
				s.run(t, threads) // accumulates: twice the gradient
				if ref == nil {
					ref = s.gIn
					// A single pass must give half of two passes.
					s1 := ewgSetup(t, ewgNode(tc.op, nil), tc.inputs...)
					s1.run(t, 1)
					for i, g := range s1.gIn {
						if g == nil {
							continue
						}
						for j, v := range g.F32 {
							if d := math.Abs(float64(2*v - ref[i].F32[j])); d > 1e-5*math.Max(1, math.Abs(float64(v))) {
								t.Fatalf("input %d [%d]: two passes give %v, one %v: gradients are not accumulated", i, j, ref[i].F32[j], v)
							}
						}
					}
					continue
				}
				for i, g := range s.gIn {
					if g == nil {
						continue
					}
					for j, v := range g.F32 {
						if math.Float32bits(v) != math.Float32bits(ref[i].F32[j]) {
							t.Fatalf("input %d [%d]: threads 4 give %v, threads 1 %v", i, j, v, ref[i].F32[j])
						}
					}
				}
			}
		})
	}
}

// ewgMask is a random bool tensor of length n.
func ewgMask(seed uint64, n int) *Tensor {
	rng := rand.New(rand.NewPCG(seed, 3))
	m := New(Bool, n)
	for i := range m.B {
		m.B[i] = rng.IntN(2) == 0
	}
	return m
}

// TestGradElementwiseAllocs checks that the hot backward kernels (Relu,
// bias Add, Softmax) do not allocate on one thread.
func TestGradElementwiseAllocs(t *testing.T) {
	tests := []struct {
		name   string
		op     string
		inputs []*Tensor
	}{
		{"Relu", "Relu", []*Tensor{randTensor(1, -1, 1, 32, 16, 8, 8)}},
		{"Add/bias", "Add", []*Tensor{randTensor(2, -1, 1, 128, 64), randTensor(3, -1, 1, 64)}},
		{"Add/channel", "Add", []*Tensor{randTensor(2, -1, 1, 8, 16, 8, 8), randTensor(3, -1, 1, 16, 1, 1)}},
		{"Softmax", "Softmax", []*Tensor{randTensor(4, -1, 1, 128, 10)}},
		{"LogSoftmax", "LogSoftmax", []*Tensor{randTensor(5, -1, 1, 128, 10)}},
	}
	for _, tc := range tests {
		s := ewgSetup(t, ewgNode(tc.op, nil), tc.inputs...)
		ctx := &ExecContext{Ctx: context.Background(), Threads: 1}
		if a := testing.AllocsPerRun(20, func() { _ = s.k.Backward(ctx, s.in, s.out, s.gOut, s.gIn) }); a != 0 {
			t.Errorf("%s backward allocates %v times per run", tc.name, a)
		}
	}
}

// TestGradNonDiffOps checks that comparison, logic and piecewise-constant
// ops mark their inputs non-differentiable and that casts to integers pass
// no gradient.
func TestGradNonDiffOps(t *testing.T) {
	for _, op := range []string{"Equal", "Greater", "Less", "GreaterOrEqual", "LessOrEqual", "And", "Or", "Xor",
		"Not", "IsNaN", "IsInf", "Floor", "Ceil", "Round", "Sign"} {
		spec, ok := LookupOp("", op)
		if !ok {
			t.Fatalf("%s is not registered", op)
		}
		if !contains(spec.NonDiff, 0) || (spec.MinInputs > 1 && !contains(spec.NonDiff, 1)) {
			t.Errorf("%s: NonDiff = %v, want every input", op, spec.NonDiff)
		}
	}
	s := ewgSetup(t, ewgNode("Cast", map[string]Attr{"to": {Kind: AttrInt, I: onnxInt64}}), randTensor(1, -3, 3, 4))
	s.gOut[0] = nil
	s.run(t, 1)
	for _, v := range s.gIn[0].F32 {
		if v != 0 {
			t.Fatalf("Cast to int64 passed a gradient: %v", s.gIn[0].F32)
		}
	}
	if spec, _ := LookupOp("", "Expand"); !contains(spec.StaticInputs, 1) || !contains(spec.NonDiff, 1) {
		t.Errorf("Expand: StaticInputs %v NonDiff %v, want input 1 in both", spec.StaticInputs, spec.NonDiff)
	}
}

func BenchmarkGradRelu(b *testing.B) {
	s := ewgSetup(b, ewgNode("Relu", nil), randTensor(1, -1, 1, 128, 32, 14, 14))
	b.SetBytes(int64(4 * 3 * len(s.in[0].F32)))
	b.ResetTimer()
	for range b.N {
		s.run(b, 1)
	}
}

func BenchmarkGradAddBias(b *testing.B) {
	s := ewgSetup(b, ewgNode("Add", nil), randTensor(1, -1, 1, 128, 512), randTensor(2, -1, 1, 512))
	b.SetBytes(int64(4 * 2 * len(s.gOut[0].F32)))
	b.ResetTimer()
	for range b.N {
		s.run(b, 1)
	}
}

func BenchmarkGradAddChannel(b *testing.B) {
	s := ewgSetup(b, ewgNode("Add", nil), randTensor(1, -1, 1, 128, 32, 14, 14), randTensor(2, -1, 1, 32, 1, 1))
	b.SetBytes(int64(4 * 2 * len(s.gOut[0].F32)))
	b.ResetTimer()
	for range b.N {
		s.run(b, 1)
	}
}

func BenchmarkGradSoftmax(b *testing.B) {
	s := ewgSetup(b, ewgNode("Softmax", nil), randTensor(1, -1, 1, 128, 1000))
	b.SetBytes(int64(4 * 3 * len(s.gOut[0].F32)))
	b.ResetTimer()
	for range b.N {
		s.run(b, 1)
	}
}
