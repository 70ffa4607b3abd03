package quantize

import (
	"bytes"
	"context"
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/compressml/compress/data"
	"github.com/compressml/compress/importer"
	"github.com/compressml/compress/models"
	rt "github.com/compressml/compress/runtime"
)

// tinyResNet is a ResNet-8 of a quarter width (4-8-16 channels) on 1x8x8
// inputs: Conv+BN+Relu, residual Adds, downsampling shortcuts,
// GlobalAveragePool and a Gemm.
func tinyResNet(t testing.TB, seed uint64) *rt.Graph {
	t.Helper()
	g, err := models.Build("resnet", models.Config{Input: []int{1, 8, 8}, Classes: 4, Width: 0.25, Seed: seed})
	if err != nil {
		t.Fatal(err)
	}
	// Non-trivial BatchNorm statistics, so that folding matters.
	r := rand.New(rand.NewPCG(seed, 9))
	for name, p := range g.Params {
		switch {
		case strings.HasSuffix(name, ".running_mean"):
			for i := range p.T.F32 {
				p.T.F32[i] = float32(r.NormFloat64() * 0.1)
			}
		case strings.HasSuffix(name, ".running_var"):
			for i := range p.T.F32 {
				p.T.F32[i] = float32(0.5 + r.Float64())
			}
		}
	}
	return g
}

// noiseImages is n random 1x8x8 images with labels i % 4.
func noiseImages(t testing.TB, n int, seed uint64) data.Dataset {
	t.Helper()
	r := rand.New(rand.NewPCG(seed, 1))
	x := rt.New(rt.Float32, n, 1, 8, 8)
	for i := range x.F32 {
		x.F32[i] = float32(r.Float64())
	}
	labels := make([]int, n)
	for i := range labels {
		labels[i] = i % 4
	}
	ds, err := data.NewInMemory("noise", x, labels, 4)
	if err != nil {
		t.Fatal(err)
	}
	return ds
}

func marshal(t testing.TB, g *rt.Graph) []byte {
	t.Helper()
	b, err := importer.Marshal(g)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestQATUntrainedIsStatic checks that finalising an untrained QAT model
// gives exactly the model Static writes, for every quantisation option,
// and that the training graph holds fake quantisation instead of Q/DQ.
func TestQATUntrainedIsStatic(t *testing.T) {
	g := tinyResNet(t, 1)
	ds := noiseImages(t, 64, 2)
	ctx := context.Background()
	tests := []struct {
		name string
		mod  func(*Config)
	}{
		{"default", func(*Config) {}},
		{"percentile", func(c *Config) { c.Method = Percentile }},
		{"per tensor", func(c *Config) { c.PerTensor = true }},
		{"full range", func(c *Config) { c.FullRange = true }},
		{"symmetric activations", func(c *Config) { c.SymmetricActivations = true }},
		{"keep a layer", func(c *Config) { c.Keep = []string{"layer2.0.conv1"} }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := DefaultConfig()
			cfg.CalibSize, cfg.BatchSize, cfg.Threads = 64, 16, 1
			tc.mod(&cfg)
			st, _, err := Static(ctx, g, ds, cfg)
			if err != nil {
				t.Fatal(err)
			}
			q, err := PrepareQAT(ctx, g, ds, cfg)
			if err != nil {
				t.Fatal(err)
			}
			fin, rep, err := q.Finalize(ctx)
			if err != nil {
				t.Fatal(err)
			}
			want := marshal(t, st)
			if !bytes.Equal(marshal(t, fin), want) {
				t.Error("the finalised untrained model differs from Static's")
			}
			if !bytes.Equal(marshal(t, q.PTQ), want) {
				t.Error("QAT.PTQ differs from Static's model")
			}
			if rep.Mode != ModeQAT || rep.CalibExamples != 64 || len(rep.Layers) == 0 {
				t.Errorf("report %+v", rep)
			}
			fakeW, fakeA := 0, 0
			for _, n := range q.Graph.Nodes {
				switch n.OpType {
				case "QuantizeLinear", "DequantizeLinear":
					t.Errorf("training graph has %v", n)
				case "FakeQuantizeWeight":
					fakeW++
				case "FakeQuantizeLinear":
					fakeA++
				}
			}
			layers := 0
			for _, n := range fin.Nodes {
				if (n.OpType == "Conv" || n.OpType == "Gemm") && n.Input(1) != "" && q.Graph.Params[n.Input(1)] == nil {
					layers++ // its weight is dequantised, not a float parameter
				}
			}
			if fakeW != layers || fakeA == 0 {
				t.Errorf("%d FakeQuantizeWeight nodes for %d quantised layers, %d FakeQuantizeLinear", fakeW, layers, fakeA)
			}
		})
	}
}

// matMulModel is x [N 6] -> MatMul(W1 [6 8]) + b1 -> Relu -> Gemm(W2 [8 3],
// transB 0, bias b2): the weight layouts with the output channel on axis 1.
func matMulModel(t testing.TB) *rt.Graph {
	t.Helper()
	r := rand.New(rand.NewPCG(21, 22))
	rnd := func(shape ...int) *rt.Tensor {
		x := rt.New(rt.Float32, shape...)
		for i := range x.F32 {
			x.F32[i] = float32(r.NormFloat64() * 0.5)
		}
		return x
	}
	g := rt.NewGraph("matmul")
	g.AddParam("W1", rnd(6, 8), true)
	g.AddParam("b1", rnd(8), true)
	g.AddParam("W2", rnd(8, 3), true)
	g.AddParam("b2", rnd(3), true)
	g.Inputs = []rt.ValueInfo{{Name: "x", DType: rt.Float32, Shape: []int{-1, 6}}}
	g.Outputs = []rt.ValueInfo{{Name: "y", DType: rt.Float32, Shape: []int{-1, 3}}}
	g.Nodes = []*rt.Node{
		{Name: "mm", OpType: "MatMul", Inputs: []string{"x", "W1"}, Outputs: []string{"h0"}},
		{Name: "add", OpType: "Add", Inputs: []string{"h0", "b1"}, Outputs: []string{"h1"}},
		{Name: "relu", OpType: "Relu", Inputs: []string{"h1"}, Outputs: []string{"h2"}},
		{Name: "fc", OpType: "Gemm", Inputs: []string{"h2", "W2", "b2"}, Outputs: []string{"y"}},
	}
	return g
}

// TestQATMatMul checks a model whose weights have the output channel on
// axis 1 (MatMul with a bias Add, Gemm with transB 0).
func TestQATMatMul(t *testing.T) {
	g := matMulModel(t)
	r := rand.New(rand.NewPCG(23, 24))
	x := rt.New(rt.Float32, 32, 6)
	for i := range x.F32 {
		x.F32[i] = float32(r.NormFloat64())
	}
	ds, err := data.NewInMemory("gauss", x, make([]int, 32), 3)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	cfg := DefaultConfig()
	cfg.CalibSize, cfg.Threads = 32, 1
	st, _, err := Static(ctx, g, ds, cfg)
	if err != nil {
		t.Fatal(err)
	}
	q, err := PrepareQAT(ctx, g, ds, cfg)
	if err != nil {
		t.Fatal(err)
	}
	fin, _, err := q.Finalize(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(marshal(t, fin), marshal(t, st)) {
		t.Error("the finalised untrained model differs from Static's")
	}
	axes := map[string]int64{}
	for _, n := range q.Graph.Nodes {
		if n.OpType == "FakeQuantizeWeight" {
			axes[n.Inputs[0]] = n.AttrInt("axis", -1)
		}
	}
	if len(axes) != 2 || axes["W1"] != 1 || axes["W2"] != 1 {
		t.Errorf("fake-quantised weights and axes %v, want W1 and W2 on axis 1", axes)
	}
	if !q.Graph.Params["W1"].Trainable || !q.Graph.Params["b2"].Trainable {
		t.Error("weights and biases must be trainable in the training graph")
	}
	a, b := runNoOpt(t, q.Graph, x), runNoOpt(t, st, x)
	if s := SQNR(b, a); s < 40 {
		t.Errorf("training graph against the QDQ model: SQNR %.1f dB, want >= 40", s)
	}
}

// TestQATTrainingGraphForward checks that the training graph computes what
// the QDQ model computes, bit for bit, on a model whose biases are zero
// (the int32 rounding of non-zero biases is the only difference).
func TestQATTrainingGraphForward(t *testing.T) {
	g, err := models.Build("resnet", models.Config{Input: []int{1, 8, 8}, Classes: 4, Width: 0.25, Seed: 5})
	if err != nil {
		t.Fatal(err)
	}
	ds := noiseImages(t, 16, 6)
	ctx := context.Background()
	for _, sym := range []bool{false, true} {
		cfg := DefaultConfig()
		cfg.CalibSize, cfg.Threads, cfg.SymmetricActivations = 16, 1, sym
		q, err := PrepareQAT(ctx, g, ds, cfg)
		if err != nil {
			t.Fatal(err)
		}
		x := rt.New(rt.Float32, 16, 1, 8, 8)
		for i := range 16 {
			if _, err := ds.Example(i, x.F32[i*64:(i+1)*64]); err != nil {
				t.Fatal(err)
			}
		}
		a, b := runNoOpt(t, q.Graph, x), runNoOpt(t, q.PTQ, x)
		for i := range b {
			if math.Float32bits(a[i]) != math.Float32bits(b[i]) {
				t.Fatalf("symmetric %v: output %d: training graph %g, QDQ model %g", sym, i, a[i], b[i])
			}
		}
	}
}

func runNoOpt(t *testing.T, g *rt.Graph, x *rt.Tensor) []float32 {
	t.Helper()
	ex, err := rt.NewExecutor(g, rt.Options{Threads: 1, NoOptimize: true})
	if err != nil {
		t.Fatal(err)
	}
	out, err := ex.Run(context.Background(), map[string]*rt.Tensor{g.Inputs[0].Name: x})
	if err != nil {
		t.Fatal(err)
	}
	return append([]float32{}, out[g.Outputs[0].Name].F32...)
}

// TestQATFinalizeKeepsTrainedWeights changes the training graph's weights
// (as training does) and checks that the int8 weights Finalize writes,
// dequantised, are bit for bit what the training graph's
// FakeQuantizeWeight nodes computed, and that biases follow too.
func TestQATFinalizeKeepsTrainedWeights(t *testing.T) {
	for _, cfgMod := range []func(*Config){func(*Config) {}, func(c *Config) { c.PerTensor, c.FullRange = true, true }} {
		g := tinyResNet(t, 3)
		ds := noiseImages(t, 32, 4)
		ctx := context.Background()
		cfg := DefaultConfig()
		cfg.CalibSize, cfg.Threads = 32, 1
		cfgMod(&cfg)
		q, err := PrepareQAT(ctx, g, ds, cfg)
		if err != nil {
			t.Fatal(err)
		}
		r := rand.New(rand.NewPCG(7, 8))
		for _, name := range q.Graph.ParamNames() {
			p := q.Graph.Params[name]
			if !p.Trainable {
				continue
			}
			for i := range p.T.F32 {
				p.T.F32[i] = p.T.F32[i]*float32(0.8+0.4*r.Float64()) + float32(0.01*r.NormFloat64())
			}
		}
		fin, _, err := q.Finalize(ctx)
		if err != nil {
			t.Fatal(err)
		}
		fprod := fin.Producers()
		checked := 0
		for _, n := range q.Graph.Nodes {
			if n.OpType != "FakeQuantizeWeight" {
				continue
			}
			want, err := rt.EvalNode(ctx, n, []*rt.Tensor{q.Graph.Params[n.Inputs[0]].T}, 1)
			if err != nil {
				t.Fatal(err)
			}
			dq := fprod[n.Outputs[0]]
			if dq == nil || dq.OpType != "DequantizeLinear" {
				t.Fatalf("%v: the final model has no DequantizeLinear for %s", n, n.Outputs[0])
			}
			var ins []*rt.Tensor
			for _, in := range dq.Inputs {
				ins = append(ins, fin.Params[in].T)
			}
			if ins[0].DType != rt.Int8 {
				t.Fatalf("%v: weight stored as %v, want int8", dq, ins[0].DType)
			}
			got, err := rt.EvalNode(ctx, dq, ins, 1)
			if err != nil {
				t.Fatal(err)
			}
			for i := range want[0].F32 {
				if math.Float32bits(got[0].F32[i]) != math.Float32bits(want[0].F32[i]) {
					t.Fatalf("%v: element %d: final weight %g, training saw %g", n, i, got[0].F32[i], want[0].F32[i])
				}
			}
			checked++
		}
		if checked == 0 {
			t.Fatal("no FakeQuantizeWeight node")
		}
		// Biases: the final int32 bias dequantises to the trained one
		// within half a step.
		for _, n := range fin.Nodes {
			if n.OpType != "Conv" && n.OpType != "Gemm" || n.Input(2) == "" {
				continue
			}
			bdq := fprod[n.Input(2)]
			var trained string
			for _, m := range q.Graph.Nodes {
				if m.Name == n.Name && m.OpType == n.OpType {
					trained = m.Input(2)
				}
			}
			tb := q.Graph.Params[trained]
			if bdq == nil || tb == nil {
				t.Fatalf("%v: bias %q not found in both graphs", n, n.Input(2))
			}
			var ins []*rt.Tensor
			for _, in := range bdq.Inputs {
				ins = append(ins, fin.Params[in].T)
			}
			got, err := rt.EvalNode(ctx, bdq, ins, 1)
			if err != nil {
				t.Fatal(err)
			}
			for i, v := range tb.T.F32 {
				step := ins[1].F32[min(i, ins[1].Len()-1)]
				if math.Abs(float64(got[0].F32[i]-v)) > float64(step)*0.5001 {
					t.Fatalf("%v: bias %d is %g, trained %g (step %g)", n, i, got[0].F32[i], v, step)
				}
			}
		}
	}
}

// TestFakeQuantizeWeightMatchesStatic checks the runtime's
// FakeQuantizeWeight against the weight quantisation of Static.
func TestFakeQuantizeWeightMatchesStatic(t *testing.T) {
	r := rand.New(rand.NewPCG(11, 12))
	conv := rt.New(rt.Float32, 8, 3, 3, 3)
	gemm := rt.New(rt.Float32, 20, 6)
	for _, w := range []*rt.Tensor{conv, gemm} {
		for i := range w.F32 {
			w.F32[i] = float32(r.NormFloat64() * 0.2)
		}
	}
	// Ties of the rounding (0.5 steps) and an all-zero channel.
	conv.F32[0], conv.F32[1] = 1, 0.5/63
	for i := 27; i < 54; i++ {
		conv.F32[i] = 0
	}
	tests := []struct {
		name       string
		w          *rt.Tensor
		axis       int
		perChannel bool
		qmax       float32
	}{
		{"conv per channel 7-bit", conv, 0, true, 63},
		{"conv per channel 8-bit", conv, 0, true, 127},
		{"conv per tensor", conv, 0, false, 63},
		{"gemm axis 1", gemm, 1, true, 63},
		{"gemm axis 0 full range", gemm, 0, true, 127},
	}
	ctx := context.Background()
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			wq, ws := quantizeWeight(tc.w, tc.axis, tc.perChannel, tc.qmax)
			dq := &rt.Node{Name: "dq", OpType: "DequantizeLinear", Inputs: []string{"q", "s", "z"}, Outputs: []string{"y"}}
			zp := rt.New(rt.Int8, shapeOf(ws, tc.perChannel)...)
			if tc.perChannel {
				dq.SetAttr("axis", rt.Attr{Kind: rt.AttrInt, I: int64(tc.axis)})
			}
			want, err := rt.EvalNode(ctx, dq, []*rt.Tensor{wq, rt.FromFloat32(ws, shapeOf(ws, tc.perChannel)...), zp}, 1)
			if err != nil {
				t.Fatal(err)
			}
			fq := &rt.Node{Name: "fq", OpType: "FakeQuantizeWeight", Domain: rt.FusedDomain, Inputs: []string{"w"}, Outputs: []string{"y"}}
			fq.SetAttr("axis", rt.Attr{Kind: rt.AttrInt, I: int64(tc.axis)})
			fq.SetAttr("qmax", rt.Attr{Kind: rt.AttrFloat, F: tc.qmax})
			if !tc.perChannel {
				fq.SetAttr("per_channel", rt.Attr{Kind: rt.AttrInt, I: 0})
			}
			got, err := rt.EvalNode(ctx, fq, []*rt.Tensor{tc.w}, 1)
			if err != nil {
				t.Fatal(err)
			}
			for i := range want[0].F32 {
				if math.Float32bits(got[0].F32[i]) != math.Float32bits(want[0].F32[i]) {
					t.Fatalf("element %d (w = %g): FakeQuantizeWeight %g, Static %g", i, tc.w.F32[i], got[0].F32[i], want[0].F32[i])
				}
			}
		})
	}
}

// TestPrepareQATErrors checks the errors of bad input.
func TestPrepareQATErrors(t *testing.T) {
	ctx := context.Background()
	g := tinyResNet(t, 1)
	empty, err := data.NewInMemory("empty", rt.New(rt.Float32, 0, 1, 8, 8), nil, 4)
	if err != nil {
		t.Fatal(err)
	}
	noLayers := rt.NewGraph("relu")
	noLayers.Inputs = []rt.ValueInfo{{Name: "input", DType: rt.Float32, Shape: []int{-1, 1, 8, 8}}}
	noLayers.Nodes = []*rt.Node{{Name: "r", OpType: "Relu", Inputs: []string{"input"}, Outputs: []string{"y"}}}
	noLayers.Outputs = []rt.ValueInfo{{Name: "y", DType: rt.Float32}}
	tests := []struct {
		name  string
		g     *rt.Graph
		ds    data.Dataset
		cfg   Config
		wants string
	}{
		{"no data", g, nil, DefaultConfig(), "calibration data"},
		{"empty data", g, empty, DefaultConfig(), "calibration data"},
		{"bad method", g, noiseImages(t, 8, 1), Config{Method: "median"}, "unknown"},
		{"no layers", noLayers, noiseImages(t, 8, 1), DefaultConfig(), "no Conv, Gemm or MatMul"},
		{"nil graph", nil, noiseImages(t, 8, 1), DefaultConfig(), "no graph"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := PrepareQAT(ctx, tc.g, tc.ds, tc.cfg)
			if err == nil || !strings.Contains(err.Error(), tc.wants) {
				t.Errorf("error %v, want one mentioning %q", err, tc.wants)
			}
		})
	}
}
