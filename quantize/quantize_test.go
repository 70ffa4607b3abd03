package quantize

import (
	"context"
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/compressml/compress/data"
	rt "github.com/compressml/compress/runtime"
)

func observe(x []float32, method string) *Observer {
	o := &Observer{}
	o.Observe(x, false)
	if method != MinMax {
		o.Observe(x, true)
	}
	return o
}

// TestCalibrationMethods checks each method's range on synthetic data of
// known distribution.
func TestCalibrationMethods(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	uniform := make([]float32, 100000)
	for i := range uniform {
		uniform[i] = float32(r.Float64()*4 - 1) // [-1, 3)
	}
	// Gaussian with a few huge outliers.
	gauss := make([]float32, 100000)
	for i := range gauss {
		gauss[i] = float32(r.NormFloat64())
	}
	gauss[0], gauss[1] = 100, -100
	relu := make([]float32, 100000)
	for i := range relu {
		relu[i] = float32(math.Max(0, r.NormFloat64()))
	}
	relu[0] = 50
	tests := []struct {
		name   string
		x      []float32
		method string
		lo, hi [2]float32 // accepted intervals for lo and hi
	}{
		{"minmax uniform", uniform, MinMax, [2]float32{-1, -0.999}, [2]float32{2.999, 3}},
		{"minmax outliers", gauss, MinMax, [2]float32{-100, -100}, [2]float32{100, 100}},
		{"percentile uniform", uniform, Percentile, [2]float32{-1.01, -0.99}, [2]float32{2.99, 3.01}},
		{"percentile outliers", gauss, Percentile, [2]float32{-5, -3}, [2]float32{3, 5}},
		{"percentile relu", relu, Percentile, [2]float32{0, 0}, [2]float32{3, 5}},
		{"entropy outliers", gauss, Entropy, [2]float32{-10, -2}, [2]float32{2, 10}},
		{"entropy relu", relu, Entropy, [2]float32{0, 0}, [2]float32{2, 10}},
		// Two outliers in 1e5 values: MSE clips them, but not to the bulk.
		{"mse outliers", gauss, MSE, [2]float32{-99, -10}, [2]float32{10, 99}},
		{"mse uniform", uniform, MSE, [2]float32{-1.01, -0.9}, [2]float32{2.7, 3.01}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			lo, hi := observe(tc.x, tc.method).Range(tc.method, 99.99, 256)
			if lo < tc.lo[0] || lo > tc.lo[1] || hi < tc.hi[0] || hi > tc.hi[1] {
				t.Errorf("range [%g, %g], want lo in %v and hi in %v", lo, hi, tc.lo, tc.hi)
			}
		})
	}
}

func TestObserverIgnoresNaN(t *testing.T) {
	o := observe([]float32{1, float32(math.NaN()), float32(math.Inf(1)), -2}, Percentile)
	if o.Min != -2 || o.Max != 1 {
		t.Errorf("range [%g %g], want [-2 1]", o.Min, o.Max)
	}
}

func TestActParams(t *testing.T) {
	tests := []struct {
		lo, hi    float32
		sym       bool
		scale     float32
		zp        int
		roundTrip []float32
	}{
		{0, 255, false, 1, 0, []float32{0, 17, 255}},
		{-1, 1, false, 2.0 / 255, 128, []float32{-1, 0, 1}},
		{1, 2, false, 2.0 / 255, 0, []float32{0, 2}}, // range widened to include 0
		{-2, 1, true, 2.0 / 127, 0, []float32{-2, 0, 1}},
		{0, 0, false, 1, 0, []float32{0}},
	}
	for _, tc := range tests {
		s, zp := ActParams(tc.lo, tc.hi, tc.sym)
		if math.Abs(float64(s-tc.scale)) > 1e-6 || zp < tc.zp-1 || zp > tc.zp { // 127.5 may round either way in float32
			t.Errorf("ActParams(%g, %g, %v) = %g, %d; want %g, %d", tc.lo, tc.hi, tc.sym, s, zp, tc.scale, tc.zp)
		}
		for _, v := range tc.roundTrip {
			q := math.Round(float64(v/s)) + float64(zp)
			if d := math.Abs((q-float64(zp))*float64(s) - float64(v)); d > float64(s)/2+1e-6 {
				t.Errorf("value %g round-trips with error %g > scale/2", v, d)
			}
		}
	}
}

func TestSQNR(t *testing.T) {
	x := []float32{1, -2, 3, -4}
	if s := SQNR(x, x); !math.IsInf(s, 1) {
		t.Errorf("SQNR of identical signals = %g, want +Inf", s)
	}
	y := []float32{1.1, -2.1, 3.1, -4.1} // noise power 4*0.01, signal 30
	want := 10 * math.Log10(30/0.04)
	if s := SQNR(x, y); math.Abs(s-want) > 1e-4 {
		t.Errorf("SQNR = %g, want %g", s, want)
	}
	if s := SQNR([]float32{0, 0}, []float32{1, 0}); !math.IsInf(s, -1) {
		t.Errorf("SQNR of a zero signal = %g, want -Inf", s)
	}
}

func TestQuantizeWeight(t *testing.T) {
	w := rt.FromFloat32([]float32{1, -0.5, 0.25, 0, 2, -4, 0, 0}, 4, 2) // [4 2], channels on axis 0
	tests := []struct {
		perChannel bool
		axis       int
		qmax       float32
		scales     []float32
	}{
		{true, 0, 63, []float32{1.0 / 63, 0.25 / 63, 4.0 / 63, 1}},
		{false, 0, 63, []float32{4.0 / 63}},
		{true, 1, 127, []float32{2.0 / 127, 4.0 / 127}},
	}
	for _, tc := range tests {
		q, s := quantizeWeight(w, tc.axis, tc.perChannel, tc.qmax)
		if len(s) != len(tc.scales) {
			t.Fatalf("%d scales, want %d", len(s), len(tc.scales))
		}
		for i := range s {
			if math.Abs(float64(s[i]-tc.scales[i])) > 1e-7 {
				t.Errorf("scale %d = %g, want %g", i, s[i], tc.scales[i])
			}
		}
		for i, v := range q.I8 {
			if float32(v) > tc.qmax || float32(v) < -tc.qmax {
				t.Errorf("value %d = %d outside ±%g", i, v, tc.qmax)
			}
			ch := 0
			if tc.perChannel {
				ch = i / w.Shape[1]
				if tc.axis == 1 {
					ch = i % w.Shape[1]
				}
			}
			if d := math.Abs(float64(float32(v)*s[ch] - w.F32[i])); d > float64(s[ch])/2+1e-6 {
				t.Errorf("weight %d: error %g > scale/2", i, d)
			}
		}
	}
}

// tinyCNN is Conv -> Relu -> Flatten -> Gemm on [N 1 4 4] inputs.
func tinyCNN() *rt.Graph {
	r := rand.New(rand.NewPCG(3, 4))
	rnd := func(shape ...int) *rt.Tensor {
		t := rt.New(rt.Float32, shape...)
		for i := range t.F32 {
			t.F32[i] = float32(r.NormFloat64() * 0.5)
		}
		return t
	}
	g := rt.NewGraph("tiny")
	g.Inputs = []rt.ValueInfo{{Name: "x", DType: rt.Float32, Shape: []int{-1, 1, 4, 4}}}
	g.Outputs = []rt.ValueInfo{{Name: "y", DType: rt.Float32}}
	g.AddParam("w", rnd(4, 1, 3, 3), false)
	g.AddParam("b", rnd(4), false)
	g.AddParam("fw", rnd(3, 16), false)
	g.AddParam("fb", rnd(3), false)
	g.Nodes = []*rt.Node{
		{Name: "conv", OpType: "Conv", Inputs: []string{"x", "w", "b"}, Outputs: []string{"c"}},
		{Name: "relu", OpType: "Relu", Inputs: []string{"c"}, Outputs: []string{"r"}},
		{Name: "flat", OpType: "Flatten", Inputs: []string{"r"}, Outputs: []string{"f"}},
		{Name: "fc", OpType: "Gemm", Inputs: []string{"f", "fw", "fb"}, Outputs: []string{"y"}, Attrs: map[string]rt.Attr{"transB": {Kind: rt.AttrInt, I: 1}}},
	}
	return g
}

func randomData(t *testing.T, n int) data.Dataset {
	t.Helper()
	r := rand.New(rand.NewPCG(5, 6))
	x := rt.New(rt.Float32, n, 1, 4, 4)
	for i := range x.F32 {
		x.F32[i] = float32(r.Float64())
	}
	labels := make([]int, n)
	for i := range labels {
		labels[i] = i % 3
	}
	ds, err := data.NewInMemory("random", x, labels, 3)
	if err != nil {
		t.Fatal(err)
	}
	return ds
}

func TestStaticTinyOutputsClose(t *testing.T) {
	g := tinyCNN()
	ds := randomData(t, 64)
	for _, method := range []string{MinMax, Percentile, Entropy, MSE} {
		for _, perTensor := range []bool{false, true} {
			cfg := DefaultConfig()
			cfg.Method = method
			cfg.PerTensor = perTensor
			qg, rep, err := Static(context.Background(), g, ds, cfg)
			if err != nil {
				t.Fatal(err)
			}
			if len(rep.Layers) != 2 || rep.CalibExamples != 64 {
				t.Fatalf("%s: report %+v", method, rep)
			}
			x := rt.New(rt.Float32, 8, 1, 4, 4)
			for i := range x.F32 {
				x.F32[i] = float32(i%17) / 17
			}
			run := func(g *rt.Graph) []float32 {
				ex, err := rt.NewExecutor(g, rt.Options{Threads: 1})
				if err != nil {
					t.Fatal(err)
				}
				out, err := ex.Run(context.Background(), map[string]*rt.Tensor{"x": x})
				if err != nil {
					t.Fatal(err)
				}
				return out["y"].F32
			}
			// Entropy clips the sparse histograms of this small
			// calibration set harder.
			minDB := 25.0
			if method == Entropy {
				minDB = 12
			}
			if s := SQNR(run(g), run(qg)); s < minDB {
				t.Errorf("%s per-tensor=%v: output SQNR %.1f dB < %g", method, perTensor, s, minDB)
			}
			for _, l := range rep.Layers {
				if l.SQNR < minDB {
					t.Errorf("%s: layer %s SQNR %.1f dB < %g", method, l.Name, l.SQNR, minDB)
				}
			}
		}
	}
}

func TestStaticErrors(t *testing.T) {
	g := tinyCNN()
	ds := randomData(t, 8)
	tests := []struct {
		name  string
		g     *rt.Graph
		calib data.Dataset
		cfg   func(*Config)
		want  string
	}{
		{"no calib", g, nil, nil, "needs calibration data"},
		{"bad method", g, ds, func(c *Config) { c.Method = "kl" }, "method \"kl\" is unknown"},
		{"bad percentile", g, ds, func(c *Config) { c.Method = Percentile; c.Percentile = 20 }, "percentile"},
		{"negative size", g, ds, func(c *Config) { c.CalibSize = -1 }, "must not be negative"},
		{"no layers", func() *rt.Graph {
			h := rt.NewGraph("relu")
			h.Inputs = []rt.ValueInfo{{Name: "x", DType: rt.Float32, Shape: []int{-1, 1, 4, 4}}}
			h.Outputs = []rt.ValueInfo{{Name: "y", DType: rt.Float32}}
			h.Nodes = []*rt.Node{{Name: "r", OpType: "Relu", Inputs: []string{"x"}, Outputs: []string{"y"}}}
			return h
		}(), ds, nil, "no Conv, Gemm or MatMul"},
		{"nil graph", nil, ds, nil, "no graph"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := DefaultConfig()
			if tc.cfg != nil {
				tc.cfg(&cfg)
			}
			_, _, err := Static(context.Background(), tc.g, tc.calib, cfg)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want one containing %q", err, tc.want)
			}
		})
	}
}

func TestKeepAndDynamicTiny(t *testing.T) {
	g := tinyCNN()
	ds := randomData(t, 16)
	cfg := DefaultConfig()
	cfg.Keep = []string{"fc"}
	qg, rep, err := Static(context.Background(), g, ds, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Layers) != 1 || rep.Layers[0].Name != "conv" {
		t.Errorf("layers %+v, want conv only", rep.Layers)
	}
	for _, n := range qg.Nodes {
		if n.Name == "fc" && strings.HasSuffix(n.Input(1), "_dequantized") {
			t.Errorf("kept layer fc has quantised weights")
		}
	}
	dg, _, err := Dynamic(g, DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	x := rt.New(rt.Float32, 2, 1, 4, 4)
	for i := range x.F32 {
		x.F32[i] = float32(i) / 32
	}
	outs := [][]float32{}
	for _, h := range []*rt.Graph{g, dg} {
		ex, err := rt.NewExecutor(h, rt.Options{Threads: 1})
		if err != nil {
			t.Fatal(err)
		}
		o, err := ex.Run(context.Background(), map[string]*rt.Tensor{"x": x})
		if err != nil {
			t.Fatal(err)
		}
		outs = append(outs, o["y"].F32)
	}
	if s := SQNR(outs[0], outs[1]); s < 25 {
		t.Errorf("dynamic output SQNR %.1f dB < 25", s)
	}
}
