package runtime

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
)

// sparseRand fills a tensor with values in [-1, 1), about frac of them zero.
func sparseRand(r *rand.Rand, frac float64, shape ...int) *Tensor {
	t := New(Float32, shape...)
	for i := range t.F32 {
		if r.Float64() >= frac {
			t.F32[i] = r.Float32()*2 - 1
		}
	}
	return t
}

func intsAttr(v ...int64) Attr { return Attr{Kind: AttrInts, Ints: v} }

// TestSparseOps checks every sparse op against its dense twin, for every
// row-kernel implementation the CPU has and for 1 and 3 threads.
func TestSparseOps(t *testing.T) {
	type tc struct {
		name string
		node *Node
		in   []*Tensor
	}
	r := rand.New(rand.NewPCG(1, 2))
	relu := Attr{Kind: AttrString, S: "Relu"}
	cases := []tc{
		{"gemm transB bias relu", &Node{OpType: "Gemm", Attrs: map[string]Attr{"transB": {Kind: AttrInt, I: 1}, "activation": relu}},
			[]*Tensor{sparseRand(r, 0, 7, 70), sparseRand(r, 0.9, 45, 70), sparseRand(r, 0, 45)}},
		{"gemm B[K,N] no bias", &Node{OpType: "Gemm"},
			[]*Tensor{sparseRand(r, 0, 33, 50), sparseRand(r, 0.8, 50, 37)}},
		{"gemm batch 1", &Node{OpType: "Gemm", Attrs: map[string]Attr{"transB": {Kind: AttrInt, I: 1}}},
			[]*Tensor{sparseRand(r, 0, 1, 64), sparseRand(r, 0.7, 20, 64), sparseRand(r, 0, 1, 20)}},
		{"gemm sigmoid", &Node{OpType: "Gemm", Attrs: map[string]Attr{"transB": {Kind: AttrInt, I: 1}, "activation": {Kind: AttrString, S: "Sigmoid"}}},
			[]*Tensor{sparseRand(r, 0, 40, 24), sparseRand(r, 0.5, 9, 24)}},
		{"gemm alpha falls back", &Node{OpType: "Gemm", Attrs: map[string]Attr{"alpha": {Kind: AttrFloat, F: 0.5}}},
			[]*Tensor{sparseRand(r, 0, 4, 8), sparseRand(r, 0.5, 8, 3)}},
		{"gemm K blocks, empty blocks", &Node{OpType: "Gemm", Attrs: map[string]Attr{"transB": {Kind: AttrInt, I: 1}, "activation": relu}},
			[]*Tensor{sparseRand(r, 0, 300, 600), sparseRand(r, 0.99, 30, 600), sparseRand(r, 0, 30)}},
		{"gemm one K block", &Node{OpType: "Gemm", Attrs: map[string]Attr{"transB": {Kind: AttrInt, I: 1}, "activation": relu}},
			[]*Tensor{sparseRand(r, 0, 37, 600), sparseRand(r, 0.99, 30, 600), sparseRand(r, 0, 30)}},
		{"gemm K blocks dense", &Node{OpType: "Gemm"},
			[]*Tensor{sparseRand(r, 0, 33, 520), sparseRand(r, 0.3, 520, 17)}},
		{"conv K blocks", &Node{OpType: "Conv", Attrs: map[string]Attr{"pads": intsAttr(1, 1, 1, 1), "activation": relu}},
			[]*Tensor{sparseRand(r, 0, 1, 32, 20, 19), sparseRand(r, 0.9, 6, 32, 3, 3), sparseRand(r, 0, 6)}},
		{"matmul 3-D", &Node{OpType: "MatMul"},
			[]*Tensor{sparseRand(r, 0, 2, 19, 48), sparseRand(r, 0.9, 48, 40)}},
		{"matmul all zero", &Node{OpType: "MatMul"},
			[]*Tensor{sparseRand(r, 0, 5, 8), New(Float32, 8, 6)}},
		{"conv 3x3 pad", &Node{OpType: "Conv", Attrs: map[string]Attr{"pads": intsAttr(1, 1, 1, 1), "activation": relu}},
			[]*Tensor{sparseRand(r, 0, 2, 5, 13, 11), sparseRand(r, 0.8, 12, 5, 3, 3), sparseRand(r, 0, 12)}},
		{"conv stride dilation", &Node{OpType: "Conv", Attrs: map[string]Attr{"strides": intsAttr(2, 1), "dilations": intsAttr(1, 2), "pads": intsAttr(0, 2, 1, 0)}},
			[]*Tensor{sparseRand(r, 0, 1, 3, 20, 19), sparseRand(r, 0.6, 8, 3, 3, 3)}},
		{"conv auto_pad same", &Node{OpType: "Conv", Attrs: map[string]Attr{"auto_pad": {Kind: AttrString, S: "SAME_UPPER"}, "strides": intsAttr(2, 2)}},
			[]*Tensor{sparseRand(r, 0, 1, 4, 9, 9), sparseRand(r, 0.7, 6, 4, 3, 3)}},
		{"conv pointwise groups", &Node{OpType: "Conv", Attrs: map[string]Attr{"group": {Kind: AttrInt, I: 2}}},
			[]*Tensor{sparseRand(r, 0, 2, 8, 6, 7), sparseRand(r, 0.5, 10, 4, 1, 1), sparseRand(r, 0, 10)}},
		{"conv depthwise falls back", &Node{OpType: "Conv", Attrs: map[string]Attr{"group": {Kind: AttrInt, I: 4}, "pads": intsAttr(1, 1, 1, 1)}},
			[]*Tensor{sparseRand(r, 0, 1, 4, 6, 6), sparseRand(r, 0.5, 4, 1, 3, 3)}},
	}
	for _, c := range cases {
		c.node.Inputs = make([]string, len(c.in))
		for i := range c.in {
			c.node.Inputs[i] = fmt.Sprintf("in%d", i)
		}
		c.node.Outputs = []string{"y"}
		want, err := EvalNode(context.Background(), c.node, c.in, 1)
		if err != nil {
			t.Fatalf("%s: dense: %v", c.name, err)
		}
		sn := *c.node
		sn.Domain, sn.OpType = SparseDomain, "Sparse"+c.node.OpType
		for _, impl := range sparseImpls() {
			var first []float32
			for _, threads := range []int{1, 3} {
				name := fmt.Sprintf("%s/impl%d/threads%d", c.name, impl, threads)
				t.Run(name, func(t *testing.T) {
					defer func(old int) { sparseImpl = old }(sparseImpl)
					sparseImpl = impl
					got, err := EvalNode(context.Background(), &sn, c.in, threads)
					if err != nil {
						t.Fatal(err)
					}
					if !SameShape(got[0].Shape, want[0].Shape) {
						t.Fatalf("shape %v, want %v", got[0].Shape, want[0].Shape)
					}
					for i, v := range got[0].F32 {
						if d := math.Abs(float64(v - want[0].F32[i])); d > 1e-4*(1+math.Abs(float64(want[0].F32[i]))) {
							t.Fatalf("element %d: %g, want %g", i, v, want[0].F32[i])
						}
					}
					if first == nil {
						first = got[0].F32
					} else {
						for i, v := range got[0].F32 {
							if math.Float32bits(v) != math.Float32bits(first[i]) {
								t.Fatalf("element %d differs between thread counts: %g vs %g", i, v, first[i])
							}
						}
					}
				})
			}
		}
	}
}

func TestSparsifyWeights(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	g := NewGraph("sparse")
	g.Inputs = []ValueInfo{{Name: "x", DType: Float32, Shape: []int{-1, 3, 8, 8}}}
	g.AddParam("w1", sparseRand(r, 0.9, 4, 3, 3, 3), false)
	g.AddParam("w2", sparseRand(r, 0.1, 4, 4, 3, 3), false)
	g.AddParam("fc", sparseRand(r, 0.95, 10, 64), false)
	g.AddParam("shape", FromInt64([]int64{0, -1}, 2), false)
	g.Nodes = []*Node{
		{Name: "c1", OpType: "Conv", Inputs: []string{"x", "w1"}, Outputs: []string{"a"}, Attrs: map[string]Attr{"pads": intsAttr(1, 1, 1, 1)}},
		{Name: "r1", OpType: "Relu", Inputs: []string{"a"}, Outputs: []string{"b"}},
		{Name: "c2", OpType: "Conv", Inputs: []string{"b", "w2"}, Outputs: []string{"c"}, Attrs: map[string]Attr{"pads": intsAttr(1, 1, 1, 1), "strides": intsAttr(2, 2)}},
		{Name: "fl", OpType: "Reshape", Inputs: []string{"c", "shape"}, Outputs: []string{"d"}},
		{Name: "fc", OpType: "Gemm", Inputs: []string{"d", "fc"}, Outputs: []string{"y"}, Attrs: map[string]Attr{"transB": {Kind: AttrInt, I: 1}}},
	}
	g.Outputs = []ValueInfo{{Name: "y", DType: Float32, Shape: []int{-1, 10}}}
	x := sparseRand(r, 0, 2, 3, 8, 8)
	dense, err := NewExecutor(g, Options{Threads: 2, NoSparse: true})
	if err != nil {
		t.Fatal(err)
	}
	want, err := dense.Run(context.Background(), map[string]*Tensor{"x": x})
	if err != nil {
		t.Fatal(err)
	}
	sg := g.Clone()
	if err := optimize(sg, Options{NoSparse: true}); err != nil {
		t.Fatal(err)
	}
	if n := SparsifyWeights(sg, 0.5); n != 2 {
		t.Fatalf("SparsifyWeights rewrote %d nodes, want 2 (c1 and fc; c2 is dense)", n)
	}
	ex, err := NewExecutor(sg, Options{Threads: 2, NoOptimize: true})
	if err != nil {
		t.Fatal(err)
	}
	got, err := ex.Run(context.Background(), map[string]*Tensor{"x": x})
	if err != nil {
		t.Fatal(err)
	}
	for i, v := range got["y"].F32 {
		if math.Abs(float64(v-want["y"].F32[i])) > 1e-4 {
			t.Fatalf("y[%d] = %g, want %g", i, v, want["y"].F32[i])
		}
	}
}

// BenchmarkCSRMulDense times the CSR product alone: a 1024x1024 matrix at
// 90% sparsity times 1024 x n.
func BenchmarkCSRMulDense(b *testing.B) {
	r := rand.New(rand.NewPCG(9, 9))
	w := sparseRand(r, 0.9, 1024, 1024)
	s, err := NewCSR(1024, 1024, func(i, j int) float32 { return w.F32[i*1024+j] })
	if err != nil {
		b.Fatal(err)
	}
	for _, n := range []int{32, 1024} {
		x := sparseRand(r, 0, 1024, n)
		y := New(Float32, 1024, n)
		b.Run(fmt.Sprintf("n=%d", n), func(b *testing.B) {
			for range b.N {
				s.MulDense(x.F32, n, y.F32, n, n, nil, false, 1)
			}
			b.ReportMetric(float64(s.NNZ())*float64(n)*float64(b.N)/b.Elapsed().Seconds()/1e9, "GMAC/s")
		})
	}
}

// TestSparseAuto: in automatic mode a kernel runs sparse only past the
// break-even of its shape, and a layer no batch would run sparse (a
// convolution below 0.9) is not even rewritten.
func TestSparseAuto(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	tests := []struct {
		name      string
		op        string
		x, w      *Tensor
		rewritten bool
		sparse    bool
	}{
		{"gemm batch 32 at 0.75", "Gemm", sparseRand(r, 0, 32, 64), sparseRand(r, 0.75, 64, 48), true, true},
		{"gemm batch 1 at 0.75", "Gemm", sparseRand(r, 0, 1, 64), sparseRand(r, 0.75, 64, 48), true, false},
		{"gemm batch 1 at 0.95", "Gemm", sparseRand(r, 0, 1, 64), sparseRand(r, 0.95, 64, 48), true, true},
		{"gemm at 0.5", "Gemm", sparseRand(r, 0, 32, 64), sparseRand(r, 0.5, 64, 48), false, false},
		{"matmul batch 4 at 0.75", "MatMul", sparseRand(r, 0, 4, 64), sparseRand(r, 0.75, 64, 48), true, false},
		{"small conv at 0.92", "Conv", sparseRand(r, 0, 1, 4, 8, 8), sparseRand(r, 0.92, 8, 4, 3, 3), true, false},
		{"small conv at 0.97", "Conv", sparseRand(r, 0, 1, 4, 8, 8), sparseRand(r, 0.97, 8, 4, 3, 3), true, true},
		{"large conv at 0.8", "Conv", sparseRand(r, 0, 1, 32, 32, 32), sparseRand(r, 0.8, 32, 32, 3, 3), false, false},
		{"large conv at 0.92", "Conv", sparseRand(r, 0, 1, 32, 32, 32), sparseRand(r, 0.92, 32, 32, 3, 3), true, true},
	}
	for _, tc := range tests {
		g := NewGraph("auto")
		g.AddParam("w", tc.w, false)
		n := &Node{Name: "n", OpType: tc.op, Inputs: []string{"x", "w"}, Outputs: []string{"y"}}
		g.Nodes = []*Node{n}
		if got := SparsifyWeights(g, 0) == 1; got != tc.rewritten {
			t.Errorf("%s: rewritten %v, want %v", tc.name, got, tc.rewritten)
		}
		if !tc.rewritten {
			continue
		}
		k, _, err := CompileNode(n, []ValueMeta{{DType: Float32, Shape: tc.x.Shape}, {DType: Float32, Shape: tc.w.Shape, Const: tc.w}})
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		_, lin := k.(*sparseLinearKernel)
		_, conv := k.(*sparseConvKernel)
		if (lin || conv) != tc.sparse {
			t.Errorf("%s: kernel %T, want sparse=%v", tc.name, k, tc.sparse)
		}
	}
}

// TestExecutorPicksSparse: the default executor (what `compress run`,
// `eval` and `bench` use) runs a mostly-zero layer on the sparse kernel
// by itself where that is faster (seen in the planned multiply-adds,
// which count the nonzeros only), Options.NoSparse keeps it dense, the
// outputs agree within float tolerance, and the sparse result does not
// depend on the number of threads.
func TestExecutorPicksSparse(t *testing.T) {
	r := rand.New(rand.NewPCG(11, 12))
	const in, hidden, out = 128, 256, 10
	w1, w2 := sparseRand(r, 0.9, hidden, in), sparseRand(r, 0.9, out, hidden)
	g := NewGraph("mlp")
	g.Inputs = []ValueInfo{{Name: "x", DType: Float32, Shape: []int{-1, in}}}
	g.Outputs = []ValueInfo{{Name: "y", DType: Float32, Shape: []int{-1, out}}}
	g.AddParam("w1", w1, false)
	g.AddParam("b1", sparseRand(r, 0, hidden), false)
	g.AddParam("w2", w2, false)
	trans := map[string]Attr{"transB": {Kind: AttrInt, I: 1}}
	g.Nodes = []*Node{
		{Name: "fc1", OpType: "Gemm", Inputs: []string{"x", "w1", "b1"}, Outputs: []string{"h"}, Attrs: trans},
		{Name: "relu", OpType: "Relu", Inputs: []string{"h"}, Outputs: []string{"a"}},
		{Name: "fc2", OpType: "Gemm", Inputs: []string{"a", "w2"}, Outputs: []string{"y"}, Attrs: trans},
	}
	nnz := func(w *Tensor) int64 { return int64(w.Len()) - int64(math.Round(zeroFraction(w.F32)*float64(w.Len()))) }
	tests := []struct {
		name   string
		opts   Options
		batch  int
		sparse bool
	}{
		{"default, batch 32", Options{Threads: 1}, 32, true},
		{"default, batch 32, 2 threads", Options{Threads: 2}, 32, true},
		{"default, batch 1 (past the matrix-vector break-even too)", Options{Threads: 1}, 1, true},
		{"NoSparse", Options{Threads: 1, NoSparse: true}, 32, false},
		{"threshold above the sparsity", Options{Threads: 1, SparseThreshold: 0.95}, 32, false},
		{"NoOptimize", Options{Threads: 1, NoOptimize: true}, 32, false},
	}
	results := map[int][]float32{} // batch -> sparse output of the first run
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ex, err := NewExecutor(g, tc.opts)
			if err != nil {
				t.Fatal(err)
			}
			p, err := ex.Plan(map[string][]int{"x": {tc.batch, in}})
			if err != nil {
				t.Fatal(err)
			}
			var macs int64
			for _, pn := range p.Nodes {
				macs += pn.MACs
			}
			b := int64(tc.batch)
			want := b * (hidden*in + out*hidden)
			if tc.sparse {
				want = b * (nnz(w1) + nnz(w2))
			}
			if macs != want {
				t.Errorf("planned %d multiply-adds, want %d (sparse %v)", macs, want, tc.sparse)
			}
			x := sparseRand(rand.New(rand.NewPCG(uint64(tc.batch), 1)), 0, tc.batch, in)
			got, err := ex.Run(context.Background(), map[string]*Tensor{"x": x})
			if err != nil {
				t.Fatal(err)
			}
			rex, err := NewExecutor(g, Options{Threads: 1, NoOptimize: true}) // the graph as it is: dense
			if err != nil {
				t.Fatal(err)
			}
			ref, err := rex.Run(context.Background(), map[string]*Tensor{"x": x})
			if err != nil {
				t.Fatal(err)
			}
			for i, v := range got["y"].F32 {
				if d := math.Abs(float64(v - ref["y"].F32[i])); d > 1e-4*(1+math.Abs(float64(ref["y"].F32[i]))) {
					t.Fatalf("y[%d] = %g, want %g", i, v, ref["y"].F32[i])
				}
			}
			if !tc.sparse {
				return
			}
			if first, ok := results[tc.batch]; !ok {
				results[tc.batch] = got["y"].F32
			} else {
				for i, v := range got["y"].F32 {
					if math.Float32bits(v) != math.Float32bits(first[i]) {
						t.Fatalf("y[%d] = %g differs from the first sparse run's %g: not deterministic", i, v, first[i])
					}
				}
			}
		})
	}
}
