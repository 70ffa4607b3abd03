package runtime

import (
	"context"
	"math"
	"math/rand/v2"
	"testing"
)

// residualModel builds two residual blocks in the QDQ layout compress
// quantize writes (uint8 activations, int8 symmetric per-channel weights,
// power-of-two scales so that the unfused float graph is exact):
//
//	x -> Q -> DQ -> Conv A(3x3) -> Relu -> Q [qa] -> DQ -> Conv B(3x3) -> Q -> DQ -> Add(DQ qa) -> Relu -> Q [y1]
//	y1 -> DQ -> Conv D(3x3, stride 2) -> Q -> DQ -> Add(DQ(Q(Conv E(1x1, stride 2)))) -> Relu -> y2 (float)
func residualModel(r *rand.Rand, c, hw int) *Graph {
	g := NewGraph("residual")
	param := func(name string, t *Tensor) string { g.AddParam(name, t, false); return name }
	p2 := func(base float32) float32 { return float32(math.Exp2(math.Round(math.Log2(float64(base))))) }
	sc := func(name string, v float32) { param(name, FromFloat32([]float32{p2(v)})) }
	zp := func(name string, v int32) { param(name, qtScalarQ(Uint8, v)) }
	var nodes []*Node
	node := func(op string, ins []string, out string, attrs map[string]Attr) {
		nodes = append(nodes, &Node{Name: op + "_" + out, OpType: op, Inputs: ins, Outputs: []string{out}, Attrs: attrs})
	}
	conv := func(name, in string, cin, cout, k, stride int, sx float32, out string) {
		w := qtRand(r, Int8, cout, cin, k, k)
		for i := range w.I8 {
			w.I8[i] = max(w.I8[i], -127) / 4
		}
		ws, bs := New(Float32, cout), New(Float32, cout)
		b := New(Int32, cout)
		for j := range ws.F32 {
			ws.F32[j] = p2(0.02 * (1 + r.Float32()))
			bs.F32[j] = p2(sx) * ws.F32[j]
			b.I32[j] = int32(r.IntN(401) - 200)
		}
		param(name+"_w", w)
		param(name+"_ws", ws)
		param(name+"_wz", New(Int8, cout))
		param(name+"_b", b)
		param(name+"_bs", bs)
		axis := map[string]Attr{"axis": {Kind: AttrInt, I: 0}}
		node("DequantizeLinear", []string{name + "_w", name + "_ws", name + "_wz"}, name+"_wf", axis)
		node("DequantizeLinear", []string{name + "_b", name + "_bs"}, name+"_bf", axis)
		pad := int64(k / 2)
		node("Conv", []string{in, name + "_wf", name + "_bf"}, out, map[string]Attr{
			"pads":    {Kind: AttrInts, Ints: []int64{pad, pad, pad, pad}},
			"strides": {Kind: AttrInts, Ints: []int64{int64(stride), int64(stride)}}})
	}
	for _, s := range []struct {
		name string
		v    float32
		z    int32
	}{{"s_in", 0.03, 100}, {"sa", 0.05, 0}, {"sb", 0.06, 131}, {"s1", 0.1, 0}, {"sd", 0.08, 120}, {"se", 0.07, 110}} {
		sc(s.name, s.v)
		zp(s.name+"_z", s.z)
	}
	g.Inputs = []ValueInfo{{Name: "x", DType: Float32, Shape: []int{-1, c, hw, hw}}}
	node("QuantizeLinear", []string{"x", "s_in", "s_in_z"}, "xq", nil)
	node("DequantizeLinear", []string{"xq", "s_in", "s_in_z"}, "xf", nil)
	conv("A", "xf", c, 8, 3, 1, 0.03, "ca")
	node("Relu", []string{"ca"}, "ra", nil)
	node("QuantizeLinear", []string{"ra", "sa", "sa_z"}, "qa", nil)
	node("DequantizeLinear", []string{"qa", "sa", "sa_z"}, "da", nil)
	conv("B", "da", 8, 8, 3, 1, 0.05, "cb")
	node("QuantizeLinear", []string{"cb", "sb", "sb_z"}, "qb", nil)
	node("DequantizeLinear", []string{"qb", "sb", "sb_z"}, "db", nil)
	node("Add", []string{"db", "da"}, "a1", nil)
	node("Relu", []string{"a1"}, "r1", nil)
	node("QuantizeLinear", []string{"r1", "s1", "s1_z"}, "y1", nil)
	node("DequantizeLinear", []string{"y1", "s1", "s1_z"}, "d1", nil)
	conv("D", "d1", 8, 16, 3, 2, 0.1, "cd")
	node("QuantizeLinear", []string{"cd", "sd", "sd_z"}, "qd", nil)
	node("DequantizeLinear", []string{"qd", "sd", "sd_z"}, "dd", nil)
	conv("E", "d1", 8, 16, 1, 2, 0.1, "ce")
	node("QuantizeLinear", []string{"ce", "se", "se_z"}, "qe", nil)
	node("DequantizeLinear", []string{"qe", "se", "se_z"}, "de", nil)
	node("Add", []string{"dd", "de"}, "a2", nil)
	node("Relu", []string{"a2"}, "y2", nil)
	g.Nodes = nodes
	g.Outputs = []ValueInfo{{Name: "y1", DType: Uint8}, {Name: "y2", DType: Float32}}
	return g
}

// TestFuseResidualAdd checks that FuseQDQ fuses both residual Adds into
// QConvAdd (uint8 and float outputs) and that the fused graph gives
// exactly the unfused graph's outputs, on odd and even image sizes, batch
// sizes and thread counts (the batched kernels and their fallback).
func TestFuseResidualAdd(t *testing.T) {
	for _, tc := range []struct{ c, hw, batch int }{{3, 9, 1}, {4, 14, 5}, {1, 28, 3}} {
		r := rand.New(rand.NewPCG(uint64(tc.hw), 3))
		g := residualModel(r, tc.c, tc.hw)
		fused := g.Clone()
		FuseQDQ(fused)
		count := map[string]int{}
		for _, n := range fused.Nodes {
			count[n.OpType]++
		}
		if count["QConvAdd"] != 2 || count["Add"] != 0 || count["Relu"] != 0 || count["QConv"] != 2 {
			t.Errorf("hw %d: fused graph has %v, want 2 QConvAdd, 2 QConv and no Add or Relu", tc.hw, count)
		}
		x := New(Float32, tc.batch, tc.c, tc.hw, tc.hw)
		for i := range x.F32 {
			x.F32[i] = float32(r.NormFloat64() * 2)
		}
		run := func(noOpt bool, threads int) map[string]*Tensor {
			ex, err := NewExecutor(g.Clone(), Options{Threads: threads, NoOptimize: noOpt})
			if err != nil {
				t.Fatal(err)
			}
			res, err := ex.Run(context.Background(), map[string]*Tensor{"x": x})
			if err != nil {
				t.Fatal(err)
			}
			return res
		}
		want := run(true, 1)
		for _, threads := range []int{1, 2} {
			got := run(false, threads)
			for i, v := range want["y1"].U8 {
				if got["y1"].U8[i] != v {
					t.Fatalf("hw %d threads %d: y1[%d] = %d, unfused %d", tc.hw, threads, i, got["y1"].U8[i], v)
				}
			}
			nz := 0
			for i, v := range want["y2"].F32 {
				if got["y2"].F32[i] != v {
					t.Fatalf("hw %d threads %d: y2[%d] = %g, unfused %g", tc.hw, threads, i, got["y2"].F32[i], v)
				}
				if v != 0 {
					nz++
				}
			}
			if nz == 0 {
				t.Fatalf("hw %d: y2 is all zero, the test compares nothing", tc.hw)
			}
		}
	}
}

// TestQConvAddErrors checks that malformed QConvAdd nodes are compile
// errors, not panics.
func TestQConvAddErrors(t *testing.T) {
	f32 := func(v float32) *Tensor { return FromFloat32([]float32{v}) }
	u8 := func(v int32) *Tensor { return qtScalarQ(Uint8, v) }
	base := func() []ValueMeta {
		w := New(Int8, 4, 2, 3, 3)
		return []ValueMeta{
			{DType: Uint8, Shape: []int{1, 2, 5, 5}}, {DType: Float32, Shape: []int{}, Const: f32(0.1)}, {DType: Uint8, Shape: []int{}, Const: u8(3)},
			{DType: Int8, Shape: w.Shape, Const: w}, {DType: Float32, Shape: []int{}, Const: f32(0.01)}, {},
			{DType: Float32, Shape: []int{}, Const: f32(0.2)}, {DType: Uint8, Shape: []int{}, Const: u8(5)}, {},
			{DType: Uint8, Shape: []int{1, 4, 3, 3}}, {DType: Float32, Shape: []int{}, Const: f32(0.3)}, {DType: Uint8, Shape: []int{}, Const: u8(0)},
			{DType: Float32, Shape: []int{}, Const: f32(0.2)}, {DType: Uint8, Shape: []int{}, Const: u8(5)},
		}
	}
	n := &Node{Name: "qca", OpType: "QConvAdd", Domain: FusedDomain, Inputs: make([]string, 14), Outputs: []string{"y"}}
	if _, _, err := compileQConvAdd(n, base()); err != nil {
		t.Fatalf("valid node: %v", err)
	}
	for _, tc := range []struct {
		name string
		edit func(in []ValueMeta) []ValueMeta
		attr string
	}{
		{"residual shape", func(in []ValueMeta) []ValueMeta { in[9].Shape = []int{1, 4, 2, 3}; return in }, ""},
		{"residual type", func(in []ValueMeta) []ValueMeta { in[9].DType = Int8; return in }, ""},
		{"residual scale not constant", func(in []ValueMeta) []ValueMeta { in[10].Const = nil; return in }, ""},
		{"zero scale", func(in []ValueMeta) []ValueMeta { in[12].Const = f32(0); return in }, ""},
		{"float convolution output", func(in []ValueMeta) []ValueMeta { in[6], in[7] = ValueMeta{}, ValueMeta{}; return in }, ""},
		{"activation", func(in []ValueMeta) []ValueMeta { return in }, "Sigmoid"},
	} {
		m := n
		if tc.attr != "" {
			m = &Node{Name: n.Name, OpType: n.OpType, Domain: n.Domain, Inputs: n.Inputs, Outputs: n.Outputs}
			m.SetAttr("residual_activation", Attr{Kind: AttrString, S: tc.attr})
		}
		if _, _, err := compileQConvAdd(m, tc.edit(base())); err == nil {
			t.Errorf("%s: no error", tc.name)
		}
	}
}
