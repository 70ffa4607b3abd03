package runtime

import (
	"context"
	"math"
	"math/rand/v2"
	"testing"
)

// qdqModel builds a QDQ model in the layout onnxruntime's quantiser writes
// (uint8 activations, int8 symmetric per-channel weights, int32 biases with
// scale x_scale*w_scale):
//
//	x -> Q -> DQ -> Conv(DQ W1, DQ B1) -> Relu -> Q [q1, an output] -> DQ -> MaxPool -> Q -> DQ
//	  -> depthwise Conv(DQ W2, DQ B2) -> Q -> DQ -> Add(with the MaxPool branch) -> Q [q4, an output] -> DQ
//	  -> Flatten -> Q -> DQ -> Gemm(DQ W3 transposed, DQ B3) -> Q -> DQ -> out
//	                       -> MatMul(DQ W4) -> Add(float bias) -> Relu -> out2 (float)
//
// With pow2 every scale is a power of two, so the unfused float graph
// computes exactly and fused and unfused results must be bit-equal.
func qdqModel(r *rand.Rand, pow2 bool) *Graph {
	g := NewGraph("qdq")
	scale := func(base float32) float32 {
		if pow2 {
			return float32(math.Exp2(math.Round(math.Log2(float64(base)))))
		}
		return base * (0.8 + 0.4*r.Float32())
	}
	param := func(name string, t *Tensor) string { g.AddParam(name, t, false); return name }
	sc := func(name string, v float32) string { return param(name, FromFloat32([]float32{v})) }
	zp := func(name string, dt DType, v int32) string { return param(name, qtScalarQ(dt, v)) }
	var nodes []*Node
	node := func(op string, ins []string, out string, attrs map[string]Attr) {
		nodes = append(nodes, &Node{Name: op + "_" + out, OpType: op, Inputs: ins, Outputs: []string{out}, Attrs: attrs})
	}
	dqAxis := map[string]Attr{"axis": {Kind: AttrInt, I: 0}}
	// Activation parameters.
	sIn, s1, s2, s3, s4 := scale(0.03), scale(0.05), scale(0.07), scale(0.1), scale(0.4)
	sc("s_in", sIn)
	zp("z_in", Uint8, 128)
	sc("s1", s1)
	zp("z1", Uint8, 0)
	sc("s2", s2)
	zp("z2", Uint8, 120)
	sc("s3", s3)
	zp("z3", Uint8, 60)
	sc("s4", s4)
	zp("z4", Uint8, 130)
	// Per-channel int8 weights with int32 biases.
	weights := func(name string, shape []int, axis int, sx float32) (wq, ws, wz, b string, sw []float32) {
		w := qtRand(r, Int8, shape...)
		for i := range w.I8 {
			if w.I8[i] == -128 {
				w.I8[i] = -127 // symmetric range
			}
		}
		nc := shape[axis]
		st := New(Float32, nc)
		sw = st.F32
		for j := range sw {
			sw[j] = scale(0.01)
		}
		bias := New(Int32, nc)
		bs := New(Float32, nc)
		for j := range bias.I32 {
			bias.I32[j] = int32(r.IntN(2001) - 1000)
			bs.F32[j] = sx * sw[j]
		}
		return param(name, w), param(name+"_scale", st), param(name+"_zp", New(Int8, nc)), param(name+"_bias", bias), sw
	}
	g.Inputs = []ValueInfo{{Name: "x", DType: Float32, Shape: []int{2, 3, 8, 8}}}
	node("QuantizeLinear", []string{"x", "s_in", "z_in"}, "xq", nil)
	node("DequantizeLinear", []string{"xq", "s_in", "z_in"}, "xf", nil)
	// Conv + Relu.
	w1, w1s, w1z, b1, sw1 := weights("W1", []int{8, 3, 3, 3}, 0, sIn)
	node("DequantizeLinear", []string{w1, w1s, w1z}, "w1f", dqAxis)
	bs1 := New(Float32, 8)
	for j := range bs1.F32 {
		bs1.F32[j] = sIn * sw1[j]
	}
	param("B1_scale", bs1)
	node("DequantizeLinear", []string{b1, "B1_scale"}, "b1f", dqAxis)
	node("Conv", []string{"xf", "w1f", "b1f"}, "c1", map[string]Attr{"pads": {Kind: AttrInts, Ints: []int64{1, 1, 1, 1}}})
	node("Relu", []string{"c1"}, "r1", nil)
	node("QuantizeLinear", []string{"r1", "s1", "z1"}, "q1", nil)
	node("DequantizeLinear", []string{"q1", "s1", "z1"}, "d1", nil)
	node("MaxPool", []string{"d1"}, "m1", map[string]Attr{"kernel_shape": {Kind: AttrInts, Ints: []int64{2, 2}}, "strides": {Kind: AttrInts, Ints: []int64{2, 2}}})
	node("QuantizeLinear", []string{"m1", "s1", "z1"}, "q2", nil)
	node("DequantizeLinear", []string{"q2", "s1", "z1"}, "d2", nil)
	// Depthwise conv.
	w2, w2s, w2z, b2, sw2 := weights("W2", []int{8, 1, 3, 3}, 0, s1)
	node("DequantizeLinear", []string{w2, w2s, w2z}, "w2f", dqAxis)
	bs2 := New(Float32, 8)
	for j := range bs2.F32 {
		bs2.F32[j] = s1 * sw2[j]
	}
	param("B2_scale", bs2)
	node("DequantizeLinear", []string{b2, "B2_scale"}, "b2f", dqAxis)
	node("Conv", []string{"d2", "w2f", "b2f"}, "c2", map[string]Attr{"group": {Kind: AttrInt, I: 8}, "pads": {Kind: AttrInts, Ints: []int64{1, 1, 1, 1}}})
	node("QuantizeLinear", []string{"c2", "s2", "z2"}, "q3", nil)
	node("DequantizeLinear", []string{"q3", "s2", "z2"}, "d3", nil)
	node("Add", []string{"d2", "d3"}, "a", nil)
	node("QuantizeLinear", []string{"a", "s3", "z3"}, "q4", nil)
	node("DequantizeLinear", []string{"q4", "s3", "z3"}, "d4", nil)
	node("Flatten", []string{"d4"}, "f", nil)
	node("QuantizeLinear", []string{"f", "s3", "z3"}, "q5", nil)
	node("DequantizeLinear", []string{"q5", "s3", "z3"}, "d5", nil)
	// Gemm with transB.
	w3, w3s, w3z, b3, sw3 := weights("W3", []int{10, 128}, 0, s3)
	node("DequantizeLinear", []string{w3, w3s, w3z}, "w3f", dqAxis)
	bs3 := New(Float32, 10)
	for j := range bs3.F32 {
		bs3.F32[j] = s3 * sw3[j]
	}
	param("B3_scale", bs3)
	node("DequantizeLinear", []string{b3, "B3_scale"}, "b3f", dqAxis)
	node("Gemm", []string{"d5", "w3f", "b3f"}, "gm", map[string]Attr{"transB": {Kind: AttrInt, I: 1}})
	node("QuantizeLinear", []string{"gm", "s4", "z4"}, "q6", nil)
	node("DequantizeLinear", []string{"q6", "s4", "z4"}, "out", nil)
	// MatMul + float bias + Relu, float output.
	w4, w4s, w4z, _, sw4 := weights("W4", []int{128, 6}, 1, s3)
	node("DequantizeLinear", []string{w4, w4s, w4z}, "w4f", map[string]Attr{"axis": {Kind: AttrInt, I: 1}})
	fb := New(Float32, 6)
	for j := range fb.F32 {
		fb.F32[j] = float32(r.IntN(201)-100) * s3 * sw4[j]
	}
	param("B4", fb)
	node("MatMul", []string{"d5", "w4f"}, "mm", nil)
	node("Add", []string{"mm", "B4"}, "mb", nil)
	node("Relu", []string{"mb"}, "out2", nil)
	g.Nodes = nodes
	g.Outputs = []ValueInfo{{Name: "out", DType: Float32}, {Name: "out2", DType: Float32}, {Name: "q1", DType: Uint8}, {Name: "q4", DType: Uint8}}
	return g
}

func qdqInput(r *rand.Rand) *Tensor {
	x := New(Float32, 2, 3, 8, 8)
	for i := range x.F32 {
		x.F32[i] = float32(r.NormFloat64() * 1.5)
	}
	return x
}

func TestFuseQDQRewrites(t *testing.T) {
	g := qdqModel(rand.New(rand.NewPCG(1, 1)), false)
	FuseQDQ(g)
	count := map[string]int{}
	for _, n := range g.Nodes {
		count[n.Domain+"::"+n.OpType]++
	}
	want := map[string]int{
		FusedDomain + "::QConv": 2, FusedDomain + "::QGemm": 2, msDomain + "::QLinearAdd": 1,
		"::MaxPool": 1, "::Flatten": 1, "::QuantizeLinear": 1, "::DequantizeLinear": 1,
	}
	for k, v := range want {
		if count[k] != v {
			t.Errorf("%s: %d nodes, want %d (graph has %v)", k, count[k], v, count)
		}
	}
	for _, op := range []string{"::Conv", "::Gemm", "::MatMul", "::Relu", "::Add"} {
		if count[op] != 0 {
			t.Errorf("%s left in the fused graph: %v", op, count)
		}
	}
	for _, n := range g.Nodes {
		if n.OpType == "MaxPool" && n.Inputs[0] != "q1" {
			t.Errorf("MaxPool reads %q, want the uint8 q1", n.Inputs[0])
		}
		if n.OpType == "QGemm" && n.Outputs[0] == "out2" && n.AttrString("activation", "") != "Relu" {
			t.Errorf("MatMul+Add+Relu fused without its Relu: %v", n.Attrs)
		}
	}
}

// TestFuseQDQMatchesUnfused runs the QDQ model with and without the
// fusion: integer outputs must be equal (bit-equal with power-of-two
// scales, where the float graph is exact; at most one step apart
// otherwise) and float outputs within one quantisation step.
func TestFuseQDQMatchesUnfused(t *testing.T) {
	for _, pow2 := range []bool{true, false} {
		for seed := uint64(1); seed <= 3; seed++ {
			r := rand.New(rand.NewPCG(seed, 7))
			g := qdqModel(r, pow2)
			x := qdqInput(r)
			fused, err := NewExecutor(g.Clone(), Options{Threads: 2})
			if err != nil {
				t.Fatal(err)
			}
			for _, n := range fused.Graph().Nodes {
				if n.OpType == "Conv" || n.OpType == "Gemm" || n.OpType == "MatMul" {
					t.Fatalf("Optimize left %v unfused", n)
				}
			}
			plain, err := NewExecutor(g, Options{Threads: 2, NoOptimize: true})
			if err != nil {
				t.Fatal(err)
			}
			a, err := fused.Run(context.Background(), map[string]*Tensor{"x": x})
			if err != nil {
				t.Fatal(err)
			}
			b, err := plain.Run(context.Background(), map[string]*Tensor{"x": x})
			if err != nil {
				t.Fatal(err)
			}
			tol := int32(1)
			if pow2 {
				tol = 0
			}
			for _, name := range []string{"q1", "q4"} {
				want := make([]int32, b[name].Len())
				for i := range want {
					want[i] = qElem(b[name], i)
				}
				qtCheckInts(t, name, a[name], want, tol)
			}
			// The heads read q4 (through Flatten): a one-step difference there
			// propagates through their weights, so the bound adds it.
			s3, s4 := float64(g.Params["s3"].T.F32[0]), float64(g.Params["s4"].T.F32[0])
			propagated := func(w string, axis int, j int) float64 {
				wt, ws := g.Params[w].T, g.Params[w+"_scale"].T
				var e float64
				for k := 0; k < 128; k++ {
					var wv float64
					if axis == 0 { // [N, K]
						wv = float64(wt.I8[j*128+k]) * float64(ws.F32[j])
					} else { // [K, N]
						n := wt.Shape[1]
						wv = float64(wt.I8[k*n+j]) * float64(ws.F32[j])
					}
					e += math.Abs(wv)
				}
				return e * s3
			}
			q4diff := make([]float64, 2)
			for i := 0; i < a["q4"].Len(); i++ {
				if qElem(a["q4"], i) != qElem(b["q4"], i) {
					q4diff[i/128] = 1
				}
			}
			for i, v := range b["out"].F32 {
				d := math.Abs(float64(a["out"].F32[i] - v))
				tol := s4*1.001 + q4diff[i/10]*(propagated("W3", 0, i%10)+s4)
				if pow2 && d != 0 || d > tol {
					t.Errorf("pow2=%v seed %d: out[%d] = %g, unfused %g", pow2, seed, i, a["out"].F32[i], v)
				}
			}
			for i, v := range b["out2"].F32 {
				d := math.Abs(float64(a["out2"].F32[i] - v))
				tol := 1e-4*math.Max(1, math.Abs(float64(v))) + q4diff[i/6]*propagated("W4", 1, i%6)
				if pow2 && d != 0 || d > tol {
					t.Errorf("pow2=%v seed %d: out2[%d] = %g, unfused %g", pow2, seed, i, a["out2"].F32[i], v)
				}
			}
		}
	}
}

// TestFuseQDQLeavesOthers checks patterns that must not fuse: per-tensor
// activation parameters that differ around a MaxPool, a weight DQ that is
// not constant, and an activation DQ with per-axis parameters; the graph
// must still run and match the unfused one.
func TestFuseQDQLeavesOthers(t *testing.T) {
	g := NewGraph("partial")
	g.Inputs = []ValueInfo{{Name: "x", DType: Uint8, Shape: []int{1, 2, 4, 4}}, {Name: "w", DType: Int8, Shape: []int{3, 2, 1, 1}}}
	g.AddParam("s", FromFloat32([]float32{0.1}), false)
	g.AddParam("s2", FromFloat32([]float32{0.2}), false)
	g.AddParam("z", qtScalarQ(Uint8, 10), false)
	g.AddParam("ws", FromFloat32([]float32{0.05}), false)
	g.Nodes = []*Node{
		{Name: "dq", OpType: "DequantizeLinear", Inputs: []string{"x", "s", "z"}, Outputs: []string{"xf"}},
		{Name: "mp", OpType: "MaxPool", Inputs: []string{"xf"}, Outputs: []string{"m"}, Attrs: map[string]Attr{"kernel_shape": {Kind: AttrInts, Ints: []int64{2, 2}}}},
		{Name: "q", OpType: "QuantizeLinear", Inputs: []string{"m", "s2", "z"}, Outputs: []string{"mq"}},
		{Name: "dqw", OpType: "DequantizeLinear", Inputs: []string{"w", "ws"}, Outputs: []string{"wf"}},
		{Name: "conv", OpType: "Conv", Inputs: []string{"xf", "wf"}, Outputs: []string{"c"}},
	}
	g.Outputs = []ValueInfo{{Name: "mq", DType: Uint8}, {Name: "c", DType: Float32}}
	f := g.Clone()
	FuseQDQ(f)
	for _, n := range f.Nodes {
		if n.Domain != "" {
			t.Errorf("unexpected fusion into %v", n)
		}
	}
	r := rand.New(rand.NewPCG(2, 3))
	feeds := map[string]*Tensor{"x": qtRand(r, Uint8, 1, 2, 4, 4), "w": qtRand(r, Int8, 3, 2, 1, 1)}
	ex, err := NewExecutor(g, Options{Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ex.Run(context.Background(), feeds); err != nil {
		t.Fatal(err)
	}
}

// TestFuseQDQTorchStyle covers the form PyTorch exports: float weights
// quantised in the graph (QuantizeLinear of a constant, then
// DequantizeLinear), scales and zero points from Constant nodes, and a
// Relu6 (Clip 0..6) before the output QuantizeLinear.
func TestFuseQDQTorchStyle(t *testing.T) {
	r := rand.New(rand.NewPCG(4, 5))
	g := NewGraph("torch")
	g.Inputs = []ValueInfo{{Name: "x", DType: Float32, Shape: []int{1, 4, 6, 6}}}
	w := New(Float32, 5, 4, 3, 3)
	for i := range w.F32 {
		w.F32[i] = float32(r.NormFloat64() * 0.4)
	}
	g.AddParam("w", w, false)
	wsc := New(Float32, 5)
	for j := range wsc.F32 {
		wsc.F32[j] = 0.01 + 0.002*float32(j)
	}
	constant := func(name string, t *Tensor) *Node {
		return &Node{Name: name, OpType: "Constant", Outputs: []string{name}, Attrs: map[string]Attr{"value": {Kind: AttrTensor, T: t}}}
	}
	axis0 := map[string]Attr{"axis": {Kind: AttrInt, I: 0}}
	g.Nodes = []*Node{
		constant("xs", FromFloat32([]float32{0.02})),
		constant("xz", qtScalarQ(Uint8, 128)),
		constant("ws", wsc),
		constant("wz", New(Int8, 5)),
		constant("ys", FromFloat32([]float32{8.0 / 255})),
		constant("yz", qtScalarQ(Uint8, 0)),
		constant("lo", FromFloat32([]float32{0})),
		constant("hi", FromFloat32([]float32{6})),
		{Name: "qx", OpType: "QuantizeLinear", Inputs: []string{"x", "xs", "xz"}, Outputs: []string{"xq"}},
		{Name: "dqx", OpType: "DequantizeLinear", Inputs: []string{"xq", "xs", "xz"}, Outputs: []string{"xf"}},
		{Name: "qw", OpType: "QuantizeLinear", Inputs: []string{"w", "ws", "wz"}, Outputs: []string{"wq"}, Attrs: axis0},
		{Name: "dqw", OpType: "DequantizeLinear", Inputs: []string{"wq", "ws", "wz"}, Outputs: []string{"wf"}, Attrs: axis0},
		{Name: "conv", OpType: "Conv", Inputs: []string{"xf", "wf"}, Outputs: []string{"c"}, Attrs: map[string]Attr{"pads": {Kind: AttrInts, Ints: []int64{1, 1, 1, 1}}}},
		{Name: "relu6", OpType: "Clip", Inputs: []string{"c", "lo", "hi"}, Outputs: []string{"c6"}},
		{Name: "qy", OpType: "QuantizeLinear", Inputs: []string{"c6", "ys", "yz"}, Outputs: []string{"yq"}},
	}
	g.Outputs = []ValueInfo{{Name: "yq", DType: Uint8}}
	fused := g.Clone()
	FuseQDQ(fused)
	var conv *Node
	for _, n := range fused.Nodes {
		if n.OpType == "QConv" {
			conv = n
		}
		if n.OpType == "Conv" || n.OpType == "Clip" {
			t.Errorf("%v left unfused", n)
		}
	}
	if conv == nil || conv.AttrString("activation", "") != "Clip" || conv.AttrFloat("activation_beta", 0) != 6 {
		t.Fatalf("no QConv with the Relu6 fused: %v", conv)
	}
	if p := fused.Params["wq"]; p == nil || p.T.DType != Int8 {
		t.Fatalf("the weights were not folded to int8 constants")
	}
	x := New(Float32, 1, 4, 6, 6)
	for i := range x.F32 {
		x.F32[i] = float32(r.NormFloat64() * 1.5)
	}
	a, b := runGraph(t, g, false, x), runGraph(t, g, true, x)
	want := make([]int32, b.Len())
	for i := range want {
		want[i] = qElem(b, i)
	}
	qtCheckInts(t, "relu6 conv", a, want, 1)
	// Clip's 6 quantises to round(6 / (8/255)) = 191.
	top := 0
	for i, v := range a.U8 {
		if v > 191 {
			t.Fatalf("[%d] = %d is beyond the Relu6 bound 191", i, v)
		}
		if v == 191 {
			top++
		}
	}
	if top == 0 {
		t.Errorf("no output reaches the Relu6 bound: the test does not exercise the clamp")
	}
}

// runGraph runs g on x (input "x") with or without the optimisation passes
// and returns output "yq".
func runGraph(t *testing.T, g *Graph, noOpt bool, x *Tensor) *Tensor {
	t.Helper()
	ex, err := NewExecutor(g.Clone(), Options{Threads: 2, NoOptimize: noOpt})
	if err != nil {
		t.Fatal(err)
	}
	res, err := ex.Run(context.Background(), map[string]*Tensor{"x": x})
	if err != nil {
		t.Fatal(err)
	}
	return res["yq"]
}
