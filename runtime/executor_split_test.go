package runtime

import (
	"context"
	"math"
	"math/rand/v2"
	"testing"
)

// splitTestGraph is a small residual CNN over [N, 2, 8, 8] whose ops all
// compute samples independently; extra, if non-nil, appends nodes reading
// "logits" and producing "extra_out" (a second graph output).
func splitTestGraph(extra func(g *Graph)) *Graph {
	g := NewGraph("split")
	g.Inputs = []ValueInfo{{Name: "x", DType: Float32, Shape: []int{-1, 2, 8, 8}}}
	g.Outputs = []ValueInfo{{Name: "probs", DType: Float32}}
	g.AddParam("w1", nnRand(1, 4, 2, 3, 3), false)
	g.AddParam("b1", nnRand(2, 4), false)
	g.AddParam("w2", nnRand(3, 4, 4, 3, 3), false)
	g.AddParam("fcw", nnRand(4, 4, 5), false)
	g.AddParam("fcb", nnRand(5, 5), false)
	g.AddParam("shape", FromInt64([]int64{0, -1}, 2), false)
	pads := []int64{1, 1, 1, 1}
	g.Nodes = []*Node{
		{Name: "c1", OpType: "Conv", Inputs: []string{"x", "w1", "b1"}, Outputs: []string{"a"}, Attrs: map[string]Attr{"pads": {Kind: AttrInts, Ints: pads}}},
		{Name: "r1", OpType: "Relu", Inputs: []string{"a"}, Outputs: []string{"ar"}},
		{Name: "c2", OpType: "Conv", Inputs: []string{"ar", "w2"}, Outputs: []string{"b"}, Attrs: map[string]Attr{"pads": {Kind: AttrInts, Ints: pads}}},
		{Name: "add", OpType: "Add", Inputs: []string{"b", "ar"}, Outputs: []string{"s"}},
		{Name: "r2", OpType: "Relu", Inputs: []string{"s"}, Outputs: []string{"sr"}},
		{Name: "mp", OpType: "MaxPool", Inputs: []string{"sr"}, Outputs: []string{"m"}, Attrs: map[string]Attr{"kernel_shape": {Kind: AttrInts, Ints: []int64{2, 2}}, "strides": {Kind: AttrInts, Ints: []int64{2, 2}}}},
		{Name: "gap", OpType: "GlobalAveragePool", Inputs: []string{"m"}, Outputs: []string{"gp"}},
		{Name: "flat", OpType: "Reshape", Inputs: []string{"gp", "shape"}, Outputs: []string{"f"}},
		{Name: "fc", OpType: "MatMul", Inputs: []string{"f", "fcw"}, Outputs: []string{"mm"}},
		{Name: "bias", OpType: "Add", Inputs: []string{"mm", "fcb"}, Outputs: []string{"logits"}},
		{Name: "sm", OpType: "Softmax", Inputs: []string{"logits"}, Outputs: []string{"probs"}, Attrs: map[string]Attr{"axis": {Kind: AttrInt, I: 1}}},
	}
	if extra != nil {
		extra(g)
		g.Outputs = append(g.Outputs, ValueInfo{Name: "extra_out", DType: Float32})
	}
	return g
}

// runSplit runs g on x with and without batch splitting and reports
// whether the split executor chunked the batch.
func runSplit(t *testing.T, g *Graph, x *Tensor, threads, chunk int) (split, whole map[string]*Tensor, chunked bool) {
	t.Helper()
	feeds := map[string]*Tensor{"x": x}
	ex, err := NewExecutor(g, Options{Threads: threads})
	if err != nil {
		t.Fatal(err)
	}
	ex.splitChunk = chunk
	if split, err = ex.Run(context.Background(), feeds); err != nil {
		t.Fatal(err)
	}
	for _, sp := range ex.splits {
		chunked = chunked || sp != nil
	}
	ref, err := NewExecutor(g, Options{Threads: threads})
	if err != nil {
		t.Fatal(err)
	}
	ref.noSplit = true
	if whole, err = ref.Run(context.Background(), feeds); err != nil {
		t.Fatal(err)
	}
	return split, whole, chunked
}

func closeTensors(t *testing.T, got, want *Tensor) {
	t.Helper()
	if !SameShape(got.Shape, want.Shape) {
		t.Fatalf("shape %v, want %v", got.Shape, want.Shape)
	}
	for i := range want.F32 {
		if d := math.Abs(float64(got.F32[i] - want.F32[i])); d > 1e-6*(1+math.Abs(float64(want.F32[i]))) {
			t.Fatalf("element %d = %v, want %v", i, got.F32[i], want.F32[i])
		}
	}
}

func TestBatchSplitMatchesWholeBatch(t *testing.T) {
	for _, tc := range []struct{ batch, threads, chunk int }{
		{8, 1, 2}, {8, 2, 2}, {7, 2, 3}, {5, 1, 1}, {9, 3, 4},
	} {
		x := nnRand(uint64(tc.batch), tc.batch, 2, 8, 8)
		split, whole, chunked := runSplit(t, splitTestGraph(nil), x, tc.threads, tc.chunk)
		if !chunked {
			t.Fatalf("%+v: the batch was not split", tc)
		}
		closeTensors(t, split["probs"], whole["probs"])
		// Deterministic: a second executor gives the same bits.
		again, _, _ := runSplit(t, splitTestGraph(nil), x, tc.threads, tc.chunk)
		for i, v := range split["probs"].F32 {
			if math.Float32bits(v) != math.Float32bits(again["probs"].F32[i]) {
				t.Fatalf("%+v: run differs from the first at %d", tc, i)
			}
		}
	}
}

// TestBatchSplitRefusesMixingOps checks that graphs with an op that mixes
// samples (or whose output loses the batch dimension) run unsplit and stay
// correct.
func TestBatchSplitRefusesMixingOps(t *testing.T) {
	tests := map[string]func(g *Graph){
		"reduce over batch": func(g *Graph) {
			g.AddParam("axes0", FromInt64([]int64{0}, 1), false)
			g.Nodes = append(g.Nodes, &Node{Name: "rm", OpType: "ReduceMean", Inputs: []string{"logits", "axes0"}, Outputs: []string{"extra_out"}})
		},
		"transpose batch away": func(g *Graph) {
			g.Nodes = append(g.Nodes, &Node{Name: "tr", OpType: "Transpose", Inputs: []string{"logits"}, Outputs: []string{"extra_out"},
				Attrs: map[string]Attr{"perm": {Kind: AttrInts, Ints: []int64{1, 0}}}})
		},
		"softmax over batch": func(g *Graph) {
			g.Nodes = append(g.Nodes, &Node{Name: "sm0", OpType: "Softmax", Inputs: []string{"logits"}, Outputs: []string{"extra_out"},
				Attrs: map[string]Attr{"axis": {Kind: AttrInt, I: 0}}})
		},
		"flatten everything": func(g *Graph) {
			g.AddParam("flat1", FromInt64([]int64{-1}, 1), false)
			g.Nodes = append(g.Nodes, &Node{Name: "fl", OpType: "Reshape", Inputs: []string{"logits", "flat1"}, Outputs: []string{"extra_out"}})
		},
		"batch size as data": func(g *Graph) {
			g.Nodes = append(g.Nodes,
				&Node{Name: "sh", OpType: "Shape", Inputs: []string{"logits"}, Outputs: []string{"shp"}},
				&Node{Name: "cast", OpType: "Cast", Inputs: []string{"shp"}, Outputs: []string{"shf"}, Attrs: map[string]Attr{"to": {Kind: AttrInt, I: 1}}},
				&Node{Name: "g0", OpType: "Gather", Inputs: []string{"shf", "zero"}, Outputs: []string{"nb"}},
				&Node{Name: "mul", OpType: "Mul", Inputs: []string{"logits", "nb"}, Outputs: []string{"extra_out"}})
			g.AddParam("zero", FromInt64([]int64{0}, 1), false)
		},
		"matmul across samples": func(g *Graph) {
			g.Nodes = append(g.Nodes,
				&Node{Name: "tr", OpType: "Transpose", Inputs: []string{"logits"}, Outputs: []string{"lt"}, Attrs: map[string]Attr{"perm": {Kind: AttrInts, Ints: []int64{1, 0}}}},
				&Node{Name: "gram", OpType: "MatMul", Inputs: []string{"logits", "lt"}, Outputs: []string{"extra_out"}})
		},
	}
	for name, extra := range tests {
		t.Run(name, func(t *testing.T) {
			x := nnRand(3, 6, 2, 8, 8)
			split, whole, chunked := runSplit(t, splitTestGraph(extra), x, 2, 2)
			if chunked {
				t.Fatal("the batch was split")
			}
			closeTensors(t, split["extra_out"], whole["extra_out"])
		})
	}
}

func TestBatchSplitFootprint(t *testing.T) {
	// A small graph on a small batch fits the cache: no split, whatever
	// the thread count.
	for _, threads := range []int{1, 2} {
		ex, err := NewExecutor(splitTestGraph(nil), Options{Threads: threads})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := ex.Run(context.Background(), map[string]*Tensor{"x": nnRand(1, 8, 2, 8, 8)}); err != nil {
			t.Fatal(err)
		}
		for _, sp := range ex.splits {
			if sp != nil {
				t.Fatalf("threads %d: split into chunks of %d", threads, sp.chunk)
			}
		}
	}
	// Weights beyond the budget: every chunk would read them again.
	g := splitTestGraph(nil)
	g.AddParam("fcw", nnRand(4, 4, splitWeightBudget/16+1), false)
	g.AddParam("fcb", nnRand(5, splitWeightBudget/16+1), false)
	ex, err := NewExecutor(g, Options{Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	ex.splitChunk = 2
	if _, err := ex.Run(context.Background(), map[string]*Tensor{"x": nnRand(1, 8, 2, 8, 8)}); err != nil {
		t.Fatal(err)
	}
	for _, sp := range ex.splits {
		if sp != nil {
			t.Fatal("split with weights beyond the budget")
		}
	}
}

// TestBatchSplitQuantized checks that the fused int8 ops (QConv, QConvAdd
// and the Quantize/DequantizeLinear around them) are split by sample and
// give exactly the whole-batch outputs.
func TestBatchSplitQuantized(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 7))
	g := residualModel(r, 4, 14)
	x := New(Float32, 8, 4, 14, 14)
	for i := range x.F32 {
		x.F32[i] = float32(r.NormFloat64() * 2)
	}
	for _, threads := range []int{1, 2} {
		split, whole, chunked := runSplit(t, g.Clone(), x, threads, 3)
		if !chunked {
			t.Fatalf("threads %d: the quantized graph was not split", threads)
		}
		for i, v := range whole["y1"].U8 {
			if split["y1"].U8[i] != v {
				t.Fatalf("threads %d: y1[%d] = %d split, %d whole", threads, i, split["y1"].U8[i], v)
			}
		}
		for i, v := range whole["y2"].F32 {
			if split["y2"].F32[i] != v {
				t.Fatalf("threads %d: y2[%d] = %g split, %g whole", threads, i, split["y2"].F32[i], v)
			}
		}
	}
}
