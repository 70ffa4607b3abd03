package runtime

import (
	"context"
	"testing"
)

// residualGraph is y = Relu(Conv(x, w, b) + z) with z a graph input of
// shape zShape (equal to the convolution output, or broadcast to it).
func residualGraph(zShape []int, stride int64) *Graph {
	g := NewGraph("residual")
	g.Inputs = []ValueInfo{{Name: "x", DType: Float32, Shape: []int{2, 3, 9, 9}}, {Name: "z", DType: Float32, Shape: zShape}}
	g.Outputs = []ValueInfo{{Name: "y", DType: Float32}}
	g.AddParam("w", nnRand(11, 10, 3, 3, 3), false)
	g.AddParam("b", nnRand(12, 10), false)
	g.Nodes = []*Node{
		{Name: "conv", OpType: "Conv", Inputs: []string{"x", "w", "b"}, Outputs: []string{"c"}, Attrs: map[string]Attr{
			"pads": {Kind: AttrInts, Ints: []int64{1, 1, 1, 1}}, "strides": {Kind: AttrInts, Ints: []int64{stride, stride}}}},
		{Name: "add", OpType: "Add", Inputs: []string{"z", "c"}, Outputs: []string{"s"}},
		{Name: "relu", OpType: "Relu", Inputs: []string{"s"}, Outputs: []string{"y"}},
	}
	return g
}

func TestFusedConvResidual(t *testing.T) {
	for _, tc := range []struct {
		name   string
		z      []int
		stride int64
	}{
		{"same shape", []int{2, 10, 9, 9}, 1},
		{"same shape strided", []int{2, 10, 5, 5}, 2},
		{"broadcast z", []int{1, 10, 1, 1}, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := residualGraph(tc.z, tc.stride)
			feeds := map[string]*Tensor{"x": nnRand(1, 2, 3, 9, 9), "z": nnRand(2, tc.z...)}
			ref, err := NewExecutor(g, Options{Threads: 1, NoOptimize: true})
			if err != nil {
				t.Fatal(err)
			}
			want, err := ref.Run(context.Background(), feeds)
			if err != nil {
				t.Fatal(err)
			}
			for _, threads := range []int{1, 2} {
				ex, err := NewExecutor(g, Options{Threads: threads})
				if err != nil {
					t.Fatal(err)
				}
				eg := ex.Graph()
				if len(eg.Nodes) != 1 || eg.Nodes[0].OpType != "FusedConv" || eg.Nodes[0].AttrString("activation", "") != "Relu" {
					t.Fatalf("optimised graph: %v", eg.Nodes)
				}
				got, err := ex.Run(context.Background(), feeds)
				if err != nil {
					t.Fatal(err)
				}
				closeTensors(t, got["y"], want["y"])
			}
		})
	}
}

// TestFuseConvResidualSkips checks the cases the pass must leave alone.
func TestFuseConvResidualSkips(t *testing.T) {
	// The residual is computed after the convolution: no fusion.
	g := residualGraph([]int{2, 10, 9, 9}, 1)
	g.Inputs = g.Inputs[:1]
	pads := map[string]Attr{"pads": {Kind: AttrInts, Ints: []int64{1, 1, 1, 1}}}
	g.Nodes = []*Node{
		{Name: "conv", OpType: "Conv", Inputs: []string{"x", "w", "b"}, Outputs: []string{"c"}, Attrs: pads},
		{Name: "conv2", OpType: "Conv", Inputs: []string{"x", "w", "b"}, Outputs: []string{"c2"}, Attrs: pads},
		{Name: "late", OpType: "Relu", Inputs: []string{"c2"}, Outputs: []string{"z"}},
		{Name: "add", OpType: "Add", Inputs: []string{"z", "c"}, Outputs: []string{"y"}},
	}
	FuseConvResidual(g)
	for _, n := range g.Nodes {
		if n.OpType == "FusedConv" {
			t.Fatalf("fused although z is computed after the convolution: %v", g.Nodes)
		}
	}
	// The convolution output is also a graph output: no fusion.
	g = residualGraph([]int{2, 10, 9, 9}, 1)
	g.Outputs = append(g.Outputs, ValueInfo{Name: "c", DType: Float32})
	FuseConvResidual(g)
	if g.Nodes[0].OpType != "Conv" {
		t.Fatal("fused a convolution whose output is a graph output")
	}
}
