package runtime

import (
	"context"
	"math"
	"math/rand/v2"
	"testing"
)

// TestFakeQuantizeLinearMatchesQDQ checks that FakeQuantizeLinear gives
// bit for bit what QuantizeLinear followed by DequantizeLinear gives.
func TestFakeQuantizeLinearMatchesQDQ(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	x := New(Float32, 2, 3, 4, 5)
	for i := range x.F32 {
		x.F32[i] = float32(rng.NormFloat64() * 3)
	}
	// Exact ties of the rounding, saturating values and a zero.
	x.F32[0], x.F32[1], x.F32[2], x.F32[3] = 0.25, -0.75, 1e6, 0
	u8 := func(v uint8) *Tensor { t := New(Uint8); t.U8[0] = v; return t }
	i8 := func(v int8) *Tensor { t := New(Int8); t.I8[0] = v; return t }
	axisScale := FromFloat32([]float32{0.05, 0.1, 0.2}, 3)
	axisZP := New(Uint8, 3)
	copy(axisZP.U8, []uint8{0, 128, 200})
	tests := []struct {
		name  string
		scale *Tensor
		zp    *Tensor
		axis  int64 // 0: attribute absent
	}{
		{"uint8 zero point 128", FromFloat32([]float32{0.02}), u8(128), 0},
		{"uint8 zero point 0", FromFloat32([]float32{0.5}), u8(0), 0},
		{"int8 symmetric", FromFloat32([]float32{0.03}), i8(0), 0},
		{"int8 zero point -5", FromFloat32([]float32{0.1}), i8(-5), 0},
		{"no zero point", FromFloat32([]float32{0.25}), nil, 0},
		{"per axis uint8", axisScale, axisZP, 1},
	}
	ctx := context.Background()
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ins := []*Tensor{x, tc.scale, tc.zp}
			if tc.zp == nil {
				ins = ins[:2]
			}
			names := []string{"x", "s", "z"}[:len(ins)]
			mk := func(op, dom string, in0 string) *Node {
				n := &Node{Name: op, OpType: op, Domain: dom, Inputs: append([]string{in0}, names[1:]...), Outputs: []string{"y"}}
				if tc.axis != 0 {
					n.SetAttr("axis", Attr{Kind: AttrInt, I: tc.axis})
				}
				return n
			}
			q, err := EvalNode(ctx, mk("QuantizeLinear", "", "x"), ins, 1)
			if err != nil {
				t.Fatal(err)
			}
			want, err := EvalNode(ctx, mk("DequantizeLinear", "", "q"), append([]*Tensor{q[0]}, ins[1:]...), 1)
			if err != nil {
				t.Fatal(err)
			}
			for _, threads := range []int{1, 3} {
				got, err := EvalNode(ctx, mk("FakeQuantizeLinear", FusedDomain, "x"), ins, threads)
				if err != nil {
					t.Fatal(err)
				}
				for i := range want[0].F32 {
					if math.Float32bits(got[0].F32[i]) != math.Float32bits(want[0].F32[i]) {
						t.Fatalf("threads %d: element %d (x = %g): fake quantisation %g, QDQ %g", threads, i, x.F32[i], got[0].F32[i], want[0].F32[i])
					}
				}
			}
		})
	}
}

// fakeQuantGraph is x (trainable) -> op -> y.
func fakeQuantGraph(op string, x *Tensor, attrs map[string]Attr, params ...*Tensor) *Graph {
	g := NewGraph("fq")
	g.AddParam("x", x.Clone(), true)
	n := &Node{Name: "fq", OpType: op, Domain: FusedDomain, Inputs: []string{"x"}, Outputs: []string{"y"}, Attrs: attrs}
	for i, p := range params {
		name := []string{"s", "z"}[i]
		g.AddParam(name, p, false)
		n.Inputs = append(n.Inputs, name)
	}
	g.Nodes = []*Node{n}
	g.Outputs = []ValueInfo{{Name: "y"}}
	return g
}

// gradOf runs a training forward and a backward with output gradient w
// and returns x's gradient.
func gradOf(t *testing.T, g *Graph, w *Tensor) *Tensor {
	t.Helper()
	ex, err := NewGradExecutor(g, TrainOptions{Threads: 2})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, err := ex.Forward(ctx, nil, true); err != nil {
		t.Fatal(err)
	}
	if err := ex.Backward(ctx, map[string]*Tensor{"y": w}); err != nil {
		t.Fatal(err)
	}
	gr := ex.Grad("x")
	if gr == nil {
		t.Fatal("no gradient reached x")
	}
	return gr
}

// TestFakeQuantizeLinearSTE checks the straight-through estimator: the
// output gradient passes where x/scale rounds into the representable
// range and is zero where the value saturates, and matches central
// differences of the clipped identity the estimator stands for.
func TestFakeQuantizeLinearSTE(t *testing.T) {
	// scale 0.1, uint8 zero point 10: representable [-1.0, 24.5].
	zp := New(Uint8)
	zp.U8[0] = 10
	tests := []struct {
		x    float32
		pass bool
	}{
		{-5, false}, {-1.2, false}, {-1.06, false}, {-1.04, true}, {-1, true},
		{0, true}, {0.33, true}, {12.345, true}, {24.5, true}, {24.54, true},
		{24.56, false}, {30, false},
	}
	x := New(Float32, 1, len(tests))
	w := New(Float32, 1, len(tests))
	for i, tc := range tests {
		x.F32[i] = tc.x
		w.F32[i] = float32(i + 1)
	}
	g := fakeQuantGraph("FakeQuantizeLinear", x, nil, FromFloat32([]float32{0.1}), zp)
	gr := gradOf(t, g, w)
	// Surrogate: clamp(x, (qmin-zp-0.5)*s, (qmax-zp+0.5)*s); its central
	// difference at each x (away from the bounds) is the STE's gradient.
	lo, hi := (0-10-0.5)*0.1, (255-10+0.5)*0.1
	for i, tc := range tests {
		want := float32(0)
		if tc.pass {
			want = w.F32[i]
		}
		if gr.F32[i] != want {
			t.Errorf("x = %g: gradient %g, want %g", tc.x, gr.F32[i], want)
		}
		const h = 1e-3
		f := func(v float64) float64 { return math.Min(math.Max(v, lo), hi) * float64(w.F32[i]) }
		fd := (f(float64(tc.x)+h) - f(float64(tc.x)-h)) / (2 * h)
		if math.Abs(fd-float64(gr.F32[i])) > 1e-3*math.Max(1, math.Abs(fd)) {
			t.Errorf("x = %g: gradient %g, central difference of the clipped identity %g", tc.x, gr.F32[i], fd)
		}
	}
}

// TestFakeQuantizeLinearSTEPerAxis checks the per-axis masks: each channel
// saturates at its own bounds.
func TestFakeQuantizeLinearSTEPerAxis(t *testing.T) {
	s := FromFloat32([]float32{0.01, 1}, 2)
	z := New(Int8, 2) // int8, zero point 0: [-128, 127] * scale
	x := FromFloat32([]float32{0.5, 2, -1.5, 100, 127.4, -129}, 1, 2, 3)
	w := FromFloat32([]float32{1, 1, 1, 1, 1, 1}, 1, 2, 3)
	want := []float32{1, 0, 0, 1, 1, 0}
	g := fakeQuantGraph("FakeQuantizeLinear", x, map[string]Attr{"axis": {Kind: AttrInt, I: 1}}, s, z)
	gr := gradOf(t, g, w)
	for i := range want {
		if gr.F32[i] != want[i] {
			t.Errorf("element %d (x = %g): gradient %g, want %g", i, x.F32[i], gr.F32[i], want[i])
		}
	}
}

// TestFakeQuantizeWeight checks the symmetric weight quantisation (scale
// amax/qmax per channel, integer levels within [-qmax, qmax], the largest
// weight exact) and its identity backward.
func TestFakeQuantizeWeight(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	w := New(Float32, 4, 3, 2, 2)
	for i := range w.F32 {
		w.F32[i] = float32(rng.NormFloat64())
	}
	for i := 12; i < 24; i++ {
		w.F32[i] = 0 // an all-zero channel
	}
	tests := []struct {
		name  string
		attrs map[string]Attr
		axis  int
		qmax  float64
		perCh bool
	}{
		{"per channel 7-bit", nil, 0, 63, true},
		{"per channel full range", map[string]Attr{"qmax": {Kind: AttrFloat, F: 127}}, 0, 127, true},
		{"axis 1", map[string]Attr{"axis": {Kind: AttrInt, I: 1}}, 1, 63, true},
		{"per tensor", map[string]Attr{"per_channel": {Kind: AttrInt, I: 0}}, 0, 63, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			g := fakeQuantGraph("FakeQuantizeWeight", w, tc.attrs)
			ex, err := NewExecutor(g, Options{Threads: 1, NoOptimize: true})
			if err != nil {
				t.Fatal(err)
			}
			out, err := ex.Run(context.Background(), nil)
			if err != nil {
				t.Fatal(err)
			}
			y := out["y"].F32
			shape := w.Shape
			outer, dim := 1, 1
			if tc.perCh {
				dim = shape[tc.axis]
				for _, d := range shape[:tc.axis] {
					outer *= d
				}
			}
			inner := w.Len() / outer / dim
			amax := make([]float64, dim)
			for i, v := range w.F32 {
				c := i / inner % dim
				amax[c] = math.Max(amax[c], math.Abs(float64(v)))
			}
			for i, v := range w.F32 {
				c := i / inner % dim
				s := float32(amax[c]) / float32(tc.qmax)
				if amax[c] == 0 {
					s = 1
				}
				lv := float64(y[i] / s)
				if math.Abs(lv-math.Round(lv)) > 1e-4 || math.Abs(math.Round(lv)) > tc.qmax {
					t.Fatalf("element %d: %g is level %g of scale %g, want an integer within ±%g", i, y[i], lv, s, tc.qmax)
				}
				if math.Abs(float64(y[i]-v)) > float64(s)/2*1.0001 {
					t.Fatalf("element %d: %g quantised to %g, more than half a step (%g) away", i, v, y[i], s)
				}
				if amax[c] > 0 && math.Abs(float64(v)) == amax[c] && y[i] != float32(math.Copysign(tc.qmax, float64(v)))*s {
					t.Fatalf("element %d: the channel's largest weight %g became %g", i, v, y[i])
				}
			}
			gw := New(Float32, w.Shape...)
			for i := range gw.F32 {
				gw.F32[i] = float32(i%7) - 3
			}
			gr := gradOf(t, fakeQuantGraph("FakeQuantizeWeight", w, tc.attrs), gw)
			for i := range gw.F32 {
				if gr.F32[i] != gw.F32[i] {
					t.Fatalf("gradient element %d: %g, want %g (identity)", i, gr.F32[i], gw.F32[i])
				}
			}
		})
	}
}

// TestFakeQuantizeBadInput checks that malformed nodes are errors, not
// panics.
func TestFakeQuantizeBadInput(t *testing.T) {
	ctx := context.Background()
	x := FromFloat32([]float32{1, 2, 3, 4}, 2, 2)
	tests := []struct {
		name string
		node *Node
		in   []*Tensor
	}{
		{"int input", &Node{OpType: "FakeQuantizeLinear", Domain: FusedDomain}, []*Tensor{New(Int32, 2), FromFloat32([]float32{1})}},
		{"zero scale", &Node{OpType: "FakeQuantizeLinear", Domain: FusedDomain}, []*Tensor{x, FromFloat32([]float32{0})}},
		{"scale shape", &Node{OpType: "FakeQuantizeLinear", Domain: FusedDomain}, []*Tensor{x, FromFloat32([]float32{1, 2, 3}, 3)}},
		{"qmax", &Node{OpType: "FakeQuantizeWeight", Domain: FusedDomain, Attrs: map[string]Attr{"qmax": {Kind: AttrFloat, F: 300}}}, []*Tensor{x}},
		{"axis", &Node{OpType: "FakeQuantizeWeight", Domain: FusedDomain, Attrs: map[string]Attr{"axis": {Kind: AttrInt, I: 5}}}, []*Tensor{x}},
		{"scalar weight", &Node{OpType: "FakeQuantizeWeight", Domain: FusedDomain}, []*Tensor{FromFloat32([]float32{1})}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			n := *tc.node
			n.Name, n.Outputs = "bad", []string{"y"}
			for i := range tc.in {
				n.Inputs = append(n.Inputs, []string{"x", "s", "z"}[i])
			}
			if _, err := EvalNode(ctx, &n, tc.in, 1); err == nil {
				t.Error("no error")
			}
		})
	}
}
