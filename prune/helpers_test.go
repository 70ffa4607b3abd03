package prune

import (
	"context"
	"math"
	"math/rand/v2"
	"testing"

	rt "github.com/compressml/compress/runtime"
)

// gb builds small test graphs: every node's output is named like the
// node, parameters are random (BatchNorm statistics positive).
type gb struct {
	g *rt.Graph
	r *rand.Rand
}

func newGB(seed uint64, input ...int) *gb {
	g := rt.NewGraph("test")
	g.Inputs = []rt.ValueInfo{{Name: "x", DType: rt.Float32, Shape: append([]int{-1}, input...)}}
	return &gb{g: g, r: rand.New(rand.NewPCG(seed, 99))}
}

func (b *gb) rand(name string, lo, hi float32, shape ...int) string {
	t := rt.New(rt.Float32, shape...)
	for i := range t.F32 {
		t.F32[i] = lo + (hi-lo)*b.r.Float32()
	}
	b.g.AddParam(name, t, true)
	return name
}

func (b *gb) node(op, name string, inputs []string, attrs map[string]rt.Attr) string {
	b.g.Nodes = append(b.g.Nodes, &rt.Node{Name: name, OpType: op, Inputs: inputs, Outputs: []string{name}, Attrs: attrs})
	return name
}

func ints(v ...int64) rt.Attr { return rt.Attr{Kind: rt.AttrInts, Ints: v} }
func one(v int64) rt.Attr     { return rt.Attr{Kind: rt.AttrInt, I: v} }

// conv adds a k x k convolution (padding k/2) with a bias.
func (b *gb) conv(name, x string, cin, cout, k, group int) string {
	w := b.rand(name+".w", -1, 1, cout, cin/group, k, k)
	bias := b.rand(name+".b", -0.5, 0.5, cout)
	p := int64(k / 2)
	return b.node("Conv", name, []string{x, w, bias}, map[string]rt.Attr{"pads": ints(p, p, p, p), "group": one(int64(group))})
}

func (b *gb) bn(name, x string, c int) string {
	return b.node("BatchNormalization", name, []string{x, b.rand(name+".scale", 0.5, 1.5, c), b.rand(name+".bias", -0.5, 0.5, c),
		b.rand(name+".mean", -0.2, 0.2, c), b.rand(name+".var", 0.5, 1.5, c)}, nil)
}

func (b *gb) relu(name, x string) string { return b.node("Relu", name, []string{x}, nil) }

func (b *gb) gemm(name, x string, in, out int) string {
	return b.node("Gemm", name, []string{x, b.rand(name+".w", -1, 1, out, in), b.rand(name+".b", -1, 1, out)},
		map[string]rt.Attr{"transB": one(1)})
}

func (b *gb) finish(out string, shape ...int) *rt.Graph {
	b.g.Outputs = []rt.ValueInfo{{Name: out, DType: rt.Float32, Shape: append([]int{-1}, shape...)}}
	return b.g
}

// runGraph runs g on a deterministic input of the given batch.
func runGraph(t *testing.T, g *rt.Graph, batch int) *rt.Tensor {
	t.Helper()
	ex, err := rt.NewExecutor(g, rt.Options{Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	name := g.Inputs[0].Name
	x := rt.New(rt.Float32, ex.InputShapes(batch)[name]...)
	r := rand.New(rand.NewPCG(5, 5))
	for i := range x.F32 {
		x.F32[i] = r.Float32()*2 - 1
	}
	out, err := ex.Run(context.Background(), map[string]*rt.Tensor{name: x})
	if err != nil {
		t.Fatal(err)
	}
	return out[g.Outputs[0].Name]
}

func assertClose(t *testing.T, got, want *rt.Tensor, tol float64) {
	t.Helper()
	if !rt.SameShape(got.Shape, want.Shape) {
		t.Fatalf("shape %v, want %v", got.Shape, want.Shape)
	}
	for i, v := range got.F32 {
		w := want.F32[i]
		if math.Abs(float64(v-w)) > tol*(1+math.Abs(float64(w))) {
			t.Fatalf("element %d: %g, want %g", i, v, w)
		}
	}
}

func zeros(w []float32) int {
	n := 0
	for _, v := range w {
		if v == 0 {
			n++
		}
	}
	return n
}

func mustNot(t *testing.T, err error, what string) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

func paramCount(g *rt.Graph) int {
	n := 0
	for _, p := range g.Params {
		if p.T.DType == rt.Float32 {
			n += p.T.Len()
		}
	}
	return n
}
