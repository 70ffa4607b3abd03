package runtime

import (
	"context"
	"strings"
	"testing"
)

// Test-only ops in their own domain, so these tests do not depend on the
// real kernels.
const testDomain = "compress.test"

func init() {
	// AddOne: y = x + 1 (float32).
	Register(OpSpec{Type: "AddOne", Domain: testDomain, MinInputs: 1, MaxInputs: 1,
		Compile: func(n *Node, in []ValueMeta) (Kernel, []ValueMeta, error) {
			return KernelFunc(func(_ *ExecContext, in, out []*Tensor) error {
				for i, v := range in[0].F32 {
					out[0].F32[i] = v + 1
				}
				return nil
			}), []ValueMeta{{DType: Float32, Shape: in[0].Shape}}, nil
		}})
	// View: output is input 0 reshaped to 1-D.
	Register(OpSpec{Type: "View", Domain: testDomain, MinInputs: 1, MaxInputs: 1,
		Compile: func(n *Node, in []ValueMeta) (Kernel, []ValueMeta, error) {
			return testViewKernel{}, []ValueMeta{{DType: in[0].DType, Shape: []int{NumElements(in[0].Shape)}}}, nil
		}})
	// Sum2: y = a + b, same shapes.
	Register(OpSpec{Type: "Sum2", Domain: testDomain, MinInputs: 2, MaxInputs: 2,
		Compile: func(n *Node, in []ValueMeta) (Kernel, []ValueMeta, error) {
			if !SameShape(in[0].Shape, in[1].Shape) {
				return nil, nil, errShape
			}
			return KernelFunc(func(_ *ExecContext, in, out []*Tensor) error {
				for i := range out[0].F32 {
					out[0].F32[i] = in[0].F32[i] + in[1].F32[i]
				}
				return nil
			}), []ValueMeta{{DType: Float32, Shape: in[0].Shape}}, nil
		}})
}

type testErr string

func (e testErr) Error() string { return string(e) }

const errShape = testErr("shapes differ")

type testViewKernel struct{}

func (testViewKernel) AliasInput() int { return 0 }
func (testViewKernel) Run(_ *ExecContext, in, out []*Tensor) error {
	copy(out[0].F32, in[0].F32)
	return nil
}

func testNode(op, name string, ins, outs []string) *Node {
	return &Node{Name: name, OpType: op, Domain: testDomain, Inputs: ins, Outputs: outs}
}

// chainGraph: x -> AddOne -> a -> AddOne -> b -> View -> c -> AddOne -> d
// plus e = Sum2(d, d) and a folded branch k = AddOne(param).
func chainGraph() *Graph {
	g := NewGraph("chain")
	g.Inputs = []ValueInfo{{Name: "x", DType: Float32, Shape: []int{-1, 3}}}
	g.Outputs = []ValueInfo{{Name: "e", DType: Float32}, {Name: "b", DType: Float32}, {Name: "k", DType: Float32}}
	g.AddParam("p", FromFloat32([]float32{10, 20}, 2), false)
	g.Nodes = []*Node{
		testNode("AddOne", "n1", []string{"x"}, []string{"a"}),
		testNode("AddOne", "n2", []string{"a"}, []string{"b"}),
		testNode("View", "n3", []string{"b"}, []string{"c"}),
		testNode("AddOne", "n4", []string{"c"}, []string{"d"}),
		testNode("Sum2", "n5", []string{"d", "d"}, []string{"e"}),
		testNode("AddOne", "n6", []string{"p"}, []string{"k"}),
	}
	return g
}

func TestExecutorRun(t *testing.T) {
	ex, err := NewExecutor(chainGraph(), Options{Threads: 1, NoOptimize: true})
	if err != nil {
		t.Fatal(err)
	}
	for run := 0; run < 3; run++ {
		x := FromFloat32([]float32{1, 2, 3, 4, 5, 6}, 2, 3)
		out, err := ex.Run(context.Background(), map[string]*Tensor{"x": x})
		if err != nil {
			t.Fatal(err)
		}
		wantE := []float32{8, 10, 12, 14, 16, 18} // 2*(x+3)
		for i, v := range wantE {
			if out["e"].F32[i] != v {
				t.Fatalf("run %d: e[%d] = %v, want %v", run, i, out["e"].F32[i], v)
			}
		}
		if !SameShape(out["e"].Shape, []int{6}) || !SameShape(out["b"].Shape, []int{2, 3}) {
			t.Fatalf("shapes e %v b %v", out["e"].Shape, out["b"].Shape)
		}
		if out["b"].F32[5] != 8 || out["k"].F32[1] != 21 {
			t.Fatalf("b %v k %v", out["b"].F32, out["k"].F32)
		}
		if x.F32[0] != 1 {
			t.Fatal("input modified")
		}
	}
	p, err := ex.Plan(map[string][]int{"x": {2, 3}})
	if err != nil {
		t.Fatal(err)
	}
	if !p.Nodes[5].Folded || p.Nodes[0].Folded {
		t.Fatalf("folding: %+v", p.Nodes)
	}
}

func TestExecutorBufferReuse(t *testing.T) {
	// A long chain of AddOne needs only two buffers (ping-pong) plus the
	// pinned output.
	g := NewGraph("long")
	g.Inputs = []ValueInfo{{Name: vname(0), DType: Float32, Shape: []int{4}}}
	const n = 20
	for i := 0; i < n; i++ {
		g.Nodes = append(g.Nodes, testNode("AddOne", "", []string{vname(i)}, []string{vname(i + 1)}))
	}
	g.Outputs = []ValueInfo{{Name: vname(n), DType: Float32}}
	ex, err := NewExecutor(g, Options{Threads: 1, NoOptimize: true})
	if err != nil {
		t.Fatal(err)
	}
	p, err := ex.Plan(map[string][]int{vname(0): {4}})
	if err != nil {
		t.Fatal(err)
	}
	distinct := map[*float32]bool{}
	for _, v := range p.vals {
		if v.DType == Float32 && len(v.F32) > 0 {
			distinct[&v.F32[0]] = true
		}
	}
	if len(distinct) > 3 {
		t.Fatalf("%d distinct buffers for a chain, want at most 3", len(distinct))
	}
	out, err := ex.Run(context.Background(), map[string]*Tensor{vname(0): FromFloat32([]float32{0, 1, 2, 3}, 4)})
	if err != nil {
		t.Fatal(err)
	}
	if got := out[vname(n)].F32[3]; got != 3+n {
		t.Fatalf("got %v want %v", got, 3+n)
	}
}

func vname(i int) string { return "v" + string(rune('a'+i)) }

func TestExecutorErrors(t *testing.T) {
	cases := []struct {
		name   string
		inputs map[string]*Tensor
		want   string
	}{
		{"missing", map[string]*Tensor{}, `missing input "x"`},
		{"unknown", map[string]*Tensor{"x": New(Float32, 1, 3), "y": New(Float32, 1)}, `no input "y"`},
		{"rank", map[string]*Tensor{"x": New(Float32, 3)}, "expected rank 2"},
		{"dim", map[string]*Tensor{"x": New(Float32, 2, 4)}, "dimension 1 differs"},
		{"short data", map[string]*Tensor{"x": {DType: Float32, Shape: []int{2, 3}, F32: make([]float32, 5)}}, "holds 5"},
		{"dtype", map[string]*Tensor{"x": New(Int64, 2, 3)}, "expected float32"},
	}
	ex, err := NewExecutor(chainGraph(), Options{Threads: 1, NoOptimize: true})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range cases {
		_, err := ex.Run(context.Background(), c.inputs)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error %v, want it to contain %q", c.name, err, c.want)
		}
	}
}

func TestUnsupportedListsAll(t *testing.T) {
	g := chainGraph()
	g.Nodes = append(g.Nodes,
		&Node{Name: "a1", OpType: "NoSuchOp", Inputs: []string{"x"}, Outputs: []string{"z1"}},
		&Node{Name: "a2", OpType: "AlsoMissing", Inputs: []string{"x"}, Outputs: []string{"z2"}})
	_, err := NewExecutor(g, Options{})
	if err == nil || !strings.Contains(err.Error(), `NoSuchOp (domain ai.onnx) in node "a1"`) || !strings.Contains(err.Error(), "AlsoMissing") {
		t.Fatalf("error %v", err)
	}
}

func TestTopoSortCycle(t *testing.T) {
	g := NewGraph("cycle")
	g.Inputs = []ValueInfo{{Name: "x", DType: Float32, Shape: []int{1}}}
	g.Nodes = []*Node{
		testNode("Sum2", "s1", []string{"x", "b"}, []string{"a"}),
		testNode("AddOne", "s2", []string{"a"}, []string{"b"}),
	}
	g.Outputs = []ValueInfo{{Name: "b"}}
	if err := g.TopoSort(); err == nil || !strings.Contains(err.Error(), "cycle") {
		t.Fatalf("error %v", err)
	}
	g.Nodes[0].Inputs[1] = "nowhere"
	if err := g.TopoSort(); err == nil || !strings.Contains(err.Error(), "nowhere") {
		t.Fatalf("error %v", err)
	}
}
