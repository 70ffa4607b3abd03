package finetune

import (
	"context"
	"slices"
	"strings"
	"testing"

	rt "github.com/compressml/compress/runtime"
)

// headGraph builds x [N, 4] -> Relu -> classifier -> tail... -> y, with
// the classifier given by kind:
//
//	gemm-t1, gemm-t1-nobias, gemm-t0, gemm-t0-nobias: Gemm with transB 1/0
//	matmul-add, add-matmul (bias first), matmul-add-rank2 ([1, 3] bias),
//	matmul: MatMul without bias
//
// The old classifier has 3 outputs.
func headGraph(t testing.TB, kind string, tail ...string) *rt.Graph {
	t.Helper()
	g := rt.NewGraph("head-" + kind)
	g.Inputs = []rt.ValueInfo{{Name: "x", DType: rt.Float32, Shape: []int{-1, 4}}}
	g.Nodes = append(g.Nodes, &rt.Node{Name: "relu", OpType: "Relu", Inputs: []string{"x"}, Outputs: []string{"h"}})
	fill := func(n int) *rt.Tensor {
		t := rt.New(rt.Float32, n)
		for i := range t.F32 {
			t.F32[i] = 0.1 * float32(i+1)
		}
		return t
	}
	out := "logits"
	switch kind {
	case "gemm-t1", "gemm-t1-nobias", "gemm-t0", "gemm-t0-nobias":
		n := &rt.Node{Name: "cls", OpType: "Gemm", Inputs: []string{"h", "cls.w"}, Outputs: []string{out}}
		if strings.HasPrefix(kind, "gemm-t1") {
			n.SetAttr("transB", rt.Attr{Kind: rt.AttrInt, I: 1})
			g.AddParam("cls.w", fill(12).Reshaped(3, 4), true)
		} else {
			g.AddParam("cls.w", fill(12).Reshaped(4, 3), true)
		}
		if !strings.HasSuffix(kind, "nobias") {
			n.Inputs = append(n.Inputs, "cls.b")
			g.AddParam("cls.b", fill(3), true)
		}
		g.Nodes = append(g.Nodes, n)
	case "matmul-add", "add-matmul", "matmul-add-rank2":
		g.AddParam("cls.w", fill(12).Reshaped(4, 3), true)
		g.Nodes = append(g.Nodes, &rt.Node{Name: "cls", OpType: "MatMul", Inputs: []string{"h", "cls.w"}, Outputs: []string{"mm"}})
		add := &rt.Node{Name: "cls_add", OpType: "Add", Inputs: []string{"mm", "cls.b"}, Outputs: []string{out}}
		bias := fill(3)
		if kind == "add-matmul" {
			add.Inputs = []string{"cls.b", "mm"}
		}
		if kind == "matmul-add-rank2" {
			bias = bias.Reshaped(1, 3)
		}
		g.AddParam("cls.b", bias, true)
		g.Nodes = append(g.Nodes, add)
	case "matmul":
		g.AddParam("cls.w", fill(12).Reshaped(4, 3), true)
		g.Nodes = append(g.Nodes, &rt.Node{Name: "cls", OpType: "MatMul", Inputs: []string{"h", "cls.w"}, Outputs: []string{out}})
	default:
		t.Fatalf("unknown head kind %q", kind)
	}
	for i, op := range tail {
		next := op + "_out"
		n := &rt.Node{Name: op + "_" + string(rune('a'+i)), OpType: op, Inputs: []string{out}, Outputs: []string{next}}
		if op == "Softmax" || op == "LogSoftmax" {
			n.SetAttr("axis", rt.Attr{Kind: rt.AttrInt, I: -1})
		}
		g.Nodes = append(g.Nodes, n)
		out = next
	}
	g.Outputs = []rt.ValueInfo{{Name: out, DType: rt.Float32, Shape: []int{-1, 3}}}
	return g
}

func TestFindHead(t *testing.T) {
	tests := []struct {
		kind string
		tail []string
		want Head
	}{
		{"gemm-t1", nil, Head{Node: "cls", Weight: "cls.w", Bias: "cls.b"}},
		{"gemm-t0", nil, Head{Node: "cls", Weight: "cls.w", Bias: "cls.b"}},
		{"gemm-t1-nobias", nil, Head{Node: "cls", Weight: "cls.w"}},
		{"gemm-t0", []string{"Softmax"}, Head{Node: "cls", Weight: "cls.w", Bias: "cls.b"}},
		{"gemm-t0", []string{"LogSoftmax", "Identity"}, Head{Node: "cls", Weight: "cls.w", Bias: "cls.b"}},
		{"matmul-add", nil, Head{Node: "cls", Weight: "cls.w", Bias: "cls.b"}},
		{"add-matmul", []string{"Softmax"}, Head{Node: "cls", Weight: "cls.w", Bias: "cls.b"}},
		{"matmul", nil, Head{Node: "cls", Weight: "cls.w"}},
	}
	for _, tc := range tests {
		t.Run(tc.kind+strings.Join(tc.tail, "+"), func(t *testing.T) {
			h, err := FindHead(headGraph(t, tc.kind, tc.tail...))
			if err != nil {
				t.Fatal(err)
			}
			if h != tc.want {
				t.Errorf("FindHead = %+v, want %+v", h, tc.want)
			}
		})
	}
	// The models package's MLP: Gemm "fc" with transB=1.
	h, err := FindHead(mlp(t, 4, 3, []int{8}, 1))
	if err != nil {
		t.Fatal(err)
	}
	if h != (Head{Node: "fc", Weight: "fc.weight", Bias: "fc.bias"}) {
		t.Errorf("FindHead(mlp) = %+v", h)
	}
}

func TestReplaceHead(t *testing.T) {
	tests := []struct {
		kind       string
		tail       []string
		weight     []int // new weight shape
		bias       []int // new bias shape
		biasName   string
		extraNodes int // nodes ReplaceHead adds
	}{
		{"gemm-t1", nil, []int{5, 4}, []int{5}, "cls.b", 0},
		{"gemm-t0", []string{"Softmax"}, []int{4, 5}, []int{5}, "cls.b", 0},
		{"gemm-t1-nobias", nil, []int{5, 4}, []int{5}, "cls.bias", 0},
		{"gemm-t0-nobias", []string{"Identity"}, []int{4, 5}, []int{5}, "cls.bias", 0},
		{"matmul-add", nil, []int{4, 5}, []int{5}, "cls.b", 0},
		{"add-matmul", []string{"LogSoftmax"}, []int{4, 5}, []int{5}, "cls.b", 0},
		{"matmul-add-rank2", nil, []int{4, 5}, []int{1, 5}, "cls.b", 0},
		{"matmul", nil, []int{4, 5}, []int{5}, "cls.bias", 1},
	}
	for _, tc := range tests {
		t.Run(tc.kind+strings.Join(tc.tail, "+"), func(t *testing.T) {
			g := headGraph(t, tc.kind, tc.tail...)
			nodes := len(g.Nodes)
			for _, p := range g.Params {
				p.Trainable = false
			}
			h, err := ReplaceHead(g, HeadConfig{NumClasses: 5, Seed: 1})
			if err != nil {
				t.Fatal(err)
			}
			if h.Weight != "cls.w" || h.Bias != tc.biasName || h.Node != "cls" {
				t.Errorf("head %+v", h)
			}
			w, b := g.Params[h.Weight], g.Params[h.Bias]
			if w == nil || b == nil {
				t.Fatalf("missing new parameters: %+v", h)
			}
			if !slices.Equal(w.T.Shape, tc.weight) || !slices.Equal(b.T.Shape, tc.bias) {
				t.Errorf("weight %v bias %v, want %v %v", w.T.Shape, b.T.Shape, tc.weight, tc.bias)
			}
			if !w.Trainable || !b.Trainable {
				t.Errorf("new head not trainable")
			}
			if slices.ContainsFunc(b.T.F32, func(v float32) bool { return v != 0 }) {
				t.Errorf("new bias %v is not zero", b.T.F32)
			}
			if !slices.ContainsFunc(w.T.F32, func(v float32) bool { return v != 0 }) {
				t.Errorf("new weight is all zero")
			}
			if got := len(g.Nodes) - nodes; got != tc.extraNodes {
				t.Errorf("%d nodes added, want %d", got, tc.extraNodes)
			}
			if !slices.Equal(g.Outputs[0].Shape, []int{-1, 5}) {
				t.Errorf("output shape %v, want [-1 5]", g.Outputs[0].Shape)
			}
			if err := g.TopoSort(); err != nil {
				t.Fatal(err)
			}
			// The graph runs and gives 5 outputs per example.
			ex, err := rt.NewExecutor(g, rt.Options{Threads: 1})
			if err != nil {
				t.Fatal(err)
			}
			x := rt.FromFloat32([]float32{1, 2, 3, 4, -1, 0.5, 2, 1}, 2, 4)
			out, err := ex.Run(context.Background(), map[string]*rt.Tensor{"x": x})
			if err != nil {
				t.Fatal(err)
			}
			if y := out[g.Outputs[0].Name]; !slices.Equal(y.Shape, []int{2, 5}) {
				t.Errorf("output shape %v, want [2 5]", y.Shape)
			}
			// And FindHead finds the new head again.
			h2, err := FindHead(g)
			if err != nil || h2 != h {
				t.Errorf("FindHead after ReplaceHead: %+v, %v; want %+v", h2, err, h)
			}
		})
	}
}

func TestReplaceHeadInit(t *testing.T) {
	weight := func(init string, seed uint64) []float32 {
		g := mlp(t, 16, 3, []int{32}, 1)
		h, err := ReplaceHead(g, HeadConfig{NumClasses: 10, Init: init, Seed: seed})
		if err != nil {
			t.Fatal(err)
		}
		return g.Params[h.Weight].T.F32
	}
	for _, init := range []string{"", "xavier_uniform", "xavier_normal", "kaiming_uniform", "kaiming_normal", "he_normal", "glorot_uniform"} {
		a, b, c := weight(init, 1), weight(init, 1), weight(init, 2)
		if !slices.Equal(a, b) {
			t.Errorf("%q: same seed gives different weights", init)
		}
		if slices.Equal(a, c) {
			t.Errorf("%q: different seeds give the same weights", init)
		}
		if len(a) != 10*32 {
			t.Errorf("%q: %d weights, want 320", init, len(a))
		}
	}
	// Xavier uniform on [10, 32]: bound sqrt(6/(32+10)).
	bound := float32(0.37796447)
	for _, v := range weight("xavier_uniform", 3) {
		if v < -bound || v > bound {
			t.Fatalf("xavier_uniform value %v outside ±%v", v, bound)
		}
	}
}

func TestReplaceHeadErrors(t *testing.T) {
	reluOut := func() *rt.Graph {
		g := headGraph(t, "gemm-t1")
		g.Nodes = append(g.Nodes, &rt.Node{Name: "final_relu", OpType: "Relu", Inputs: []string{"logits"}, Outputs: []string{"r"}})
		g.Outputs[0].Name = "r"
		return g
	}
	transA := func() *rt.Graph {
		g := headGraph(t, "gemm-t0")
		g.Nodes[1].SetAttr("transA", rt.Attr{Kind: rt.AttrInt, I: 1})
		return g
	}
	computedWeight := func() *rt.Graph {
		g := headGraph(t, "matmul")
		g.Nodes[1].Inputs[1] = "x2"
		g.Inputs = append(g.Inputs, rt.ValueInfo{Name: "x2", DType: rt.Float32, Shape: []int{4, 3}})
		return g
	}
	noOutput := func() *rt.Graph {
		g := headGraph(t, "gemm-t1")
		g.Outputs = nil
		return g
	}
	inputOnly := func() *rt.Graph {
		g := rt.NewGraph("identity")
		g.Inputs = []rt.ValueInfo{{Name: "x", DType: rt.Float32, Shape: []int{-1, 4}}}
		g.Outputs = []rt.ValueInfo{{Name: "x", DType: rt.Float32, Shape: []int{-1, 4}}}
		return g
	}
	addOfValues := func() *rt.Graph {
		g := headGraph(t, "matmul-add")
		g.Nodes[2].Inputs[1] = "h2"
		g.Nodes = append([]*rt.Node{g.Nodes[0], {Name: "neg", OpType: "Neg", Inputs: []string{"x"}, Outputs: []string{"h2"}}}, g.Nodes[1:]...)
		return g
	}
	computedBias := func() *rt.Graph {
		g := headGraph(t, "gemm-t1")
		g.Nodes[1].Inputs[2] = "x"
		return g
	}
	tests := []struct {
		name string
		g    func() *rt.Graph
		cfg  HeadConfig
		want string
	}{
		{"computed bias", computedBias, HeadConfig{NumClasses: 2}, "bias \"x\" is computed"},
		{"no classifier before the output", reluOut, HeadConfig{NumClasses: 2}, "expected a classifier"},
		{"transA", transA, HeadConfig{NumClasses: 2}, "transA"},
		{"computed weight", computedWeight, HeadConfig{NumClasses: 2}, "2-D initializer"},
		{"no output", noOutput, HeadConfig{NumClasses: 2}, "no output"},
		{"output is an input", inputOnly, HeadConfig{NumClasses: 2}, "no classifier"},
		{"add of two values", addOfValues, HeadConfig{NumClasses: 2}, "Add of two computed values"},
		{"zero classes", func() *rt.Graph { return headGraph(t, "gemm-t1") }, HeadConfig{NumClasses: 0}, "at least 1"},
		{"unknown init", func() *rt.Graph { return headGraph(t, "gemm-t1") }, HeadConfig{NumClasses: 2, Init: "orthogonal"}, "orthogonal"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			g := tc.g()
			_, err := ReplaceHead(g, tc.cfg)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one containing %q", err, tc.want)
			}
		})
	}
}
