package models

import (
	"context"
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	rt "github.com/compressml/compress/runtime"
)

// buildCases are the configurations every structural test runs on.
var buildCases = []struct {
	arch string
	cfg  Config
	// Hand-computed parameter counts (trainable, and with BN running stats).
	trainable, total int64
}{
	// 784*128+128 + 128*10+10
	{"mlp", Config{Input: []int{1, 28, 28}, Classes: 10}, 101770, 101770},
	// softmax regression: 4*3+3
	{"mlp", Config{Input: []int{4}, Classes: 3, Hidden: []int{}}, 15, 15},
	// hidden 64,32 at width 0.5 -> 32,16: (20*32+32) + (32*16+16) + (16*2+2)
	{"mlp", Config{Input: []int{20}, Classes: 2, Hidden: []int{64, 32}, Width: 0.5}, 1234, 1234},
	// conv1 6*1*25+6=156, conv2 16*6*25+16=2416, fc1 400*120+120=48120,
	// fc2 120*84+84=10164, fc 84*10+10=850
	{"lenet5", Config{Input: []int{1, 28, 28}, Classes: 10}, 61706, 61706},
	// conv1 6*3*25+6=456, 32->16->12->6: fc1 576*120+120=69240
	{"lenet5", Config{Input: []int{3, 32, 32}, Classes: 10}, 83126, 83126},
	// smallest input: 12->6->2->1: fc1 16*120+120=2040
	{"lenet5", Config{Input: []int{1, 12, 12}, Classes: 10}, 15626, 15626},
	// width 2: conv1 12*25+12=312, conv2 32*12*25+32=9632, fc1 800*240+240=192240,
	// fc2 240*168+168=40488, fc 168*10+10=1690
	{"lenet5", Config{Input: []int{1, 28, 28}, Classes: 10, Width: 2}, 244362, 244362},
	// ResNet-8: stem 144+32, layer1 2*2304+64=4672,
	// layer2 4608+9216+512+3*64=14528, layer3 18432+36864+2048+3*128=57728,
	// fc 650; running stats 2*(16+32+96+192)=672
	{"resnet", Config{Input: []int{1, 28, 28}, Classes: 10}, 77754, 78426},
	// ResNet-20 (projection shortcuts): stem 432+32, layer1 3*4672=14016,
	// layer2 14528+2*18560=51648, layer3 57728+2*73984=205696, fc 650;
	// running stats 2*(16+96+224+448)=1568
	{"resnet", Config{Input: []int{3, 32, 32}, Classes: 10, Depth: 3}, 272474, 274042},
	// MobileNet: stem 864+64, blocks (dw + bn + pw + bn) 32->64: 2528,
	// 64->128: 9152, 128->128: 18048, 128->256: 34688, 256->256: 68864,
	// fc 2570; running stats 2*(32 + 32+64 + 64+128 + 128+128 + 128+256 + 256+256)=2944.
	{"mobilenet", Config{Input: []int{3, 32, 32}, Classes: 10}, 136778, 139722},
	// The counts below, like all above, match the equivalent PyTorch modules
	// (same state_dict names and shapes, same logits for the same weights).
	{"resnet", Config{Input: []int{3, 7, 5}, Classes: 1, Width: 0.25, Depth: 2}, 11221, 11501},
	{"mobilenet", Config{Input: []int{1, 9, 9}, Classes: 4, Width: 0.5, Init: "he_uniform"}, 36100, 37572},
}

func TestParamCounts(t *testing.T) {
	for i, c := range buildCases {
		g, err := Build(c.arch, c.cfg)
		if err != nil {
			t.Fatalf("%d %s %v: %v", i, c.arch, c.cfg, err)
		}
		total, trainable := CountParams(g)
		if trainable != c.trainable || total != c.total {
			t.Errorf("%d %s %v: %d params (%d trainable), want %d (%d trainable)",
				i, c.arch, c.cfg, total, trainable, c.total, c.trainable)
		}
	}
}

func TestGraphConventions(t *testing.T) {
	for i, c := range buildCases {
		g, err := Build(c.arch, c.cfg)
		if err != nil {
			t.Fatalf("%d %s: %v", i, c.arch, err)
		}
		where := func() string { return c.arch + " " + FormatShape(c.cfg.Input) }
		if err := g.TopoSort(); err != nil {
			t.Errorf("%d %s: TopoSort: %v", i, where(), err)
		}
		if g.Opset != 18 {
			t.Errorf("%d %s: opset %d, want 18", i, where(), g.Opset)
		}
		if len(g.Inputs) != 1 || g.Inputs[0].Name != InputName || g.Inputs[0].DType != rt.Float32 ||
			!rt.SameShape(g.Inputs[0].Shape, append([]int{-1}, c.cfg.Input...)) || g.Inputs[0].DimNames[0] != "N" {
			t.Errorf("%d %s: inputs %+v", i, where(), g.Inputs)
		}
		if len(g.Outputs) != 1 || g.Outputs[0].Name != OutputName || !rt.SameShape(g.Outputs[0].Shape, []int{-1, c.cfg.Classes}) {
			t.Errorf("%d %s: outputs %+v", i, where(), g.Outputs)
		}
		if g.Meta["compress.arch"] != c.arch || g.Meta["compress.config"] == "" {
			t.Errorf("%d %s: meta %v", i, where(), g.Meta)
		}
		names := map[string]bool{}
		used := map[string]bool{}
		var fc *rt.Node
		for _, n := range g.Nodes {
			if n.Name == "" || names[n.Name] {
				t.Errorf("%d %s: node name %q empty or repeated", i, where(), n.Name)
			}
			names[n.Name] = true
			for _, in := range n.Inputs {
				used[in] = true
			}
			switch n.OpType {
			case "Gemm":
				if n.AttrInt("transB", 0) != 1 {
					t.Errorf("%d %s: %v without transB=1", i, where(), n)
				}
				w, b := g.Params[n.Input(1)], g.Params[n.Input(2)]
				if w == nil || b == nil || w.T.Rank() != 2 || !rt.SameShape(b.T.Shape, w.T.Shape[:1]) ||
					n.Input(1) != n.Name+".weight" || n.Input(2) != n.Name+".bias" {
					t.Errorf("%d %s: %v has bad parameters %v", i, where(), n, n.Inputs)
				}
				if n.Name == ClassifierName {
					fc = n
				}
			case "Conv":
				if n.Input(1) != n.Name+".weight" {
					t.Errorf("%d %s: %v weight named %q", i, where(), n, n.Input(1))
				}
			case "BatchNormalization":
				for j, suf := range []string{"weight", "bias", "running_mean", "running_var"} {
					p := g.Params[n.Input(j+1)]
					if p == nil || n.Input(j+1) != n.Name+"."+suf {
						t.Errorf("%d %s: %v input %d is %q", i, where(), n, j+1, n.Input(j+1))
						continue
					}
					if p.Trainable != (j < 2) {
						t.Errorf("%d %s: %s trainable=%v", i, where(), p.Name, p.Trainable)
					}
				}
			}
		}
		if fc == nil || len(fc.Outputs) != 1 || fc.Outputs[0] != OutputName ||
			g.Params["fc.weight"].T.Shape[0] != c.cfg.Classes {
			t.Errorf("%d %s: no classifier %q writing %q with %d rows", i, where(), ClassifierName, OutputName, c.cfg.Classes)
		}
		for name, p := range g.Params {
			if !used[name] {
				t.Errorf("%d %s: parameter %s is not used by any node", i, where(), name)
			}
			if p.Name != name || p.T.DType != rt.Float32 {
				t.Errorf("%d %s: parameter %s: name %q dtype %v", i, where(), name, p.Name, p.T.DType)
			}
			if isBN := strings.Contains(name, "running_"); isBN == p.Trainable {
				t.Errorf("%d %s: parameter %s trainable=%v", i, where(), name, p.Trainable)
			}
		}
	}
}

// TestInitValues checks biases and BN parameters start at their constants
// and weights are random with roughly the configured scale.
func TestInitValues(t *testing.T) {
	g, err := Build("resnet", Config{Input: []int{3, 16, 16}, Classes: 5, Seed: 3})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]float32{".bias": 0, ".running_mean": 0, ".running_var": 1}
	for _, name := range g.ParamNames() {
		p := g.Params[name]
		for suf, v := range want {
			if strings.HasSuffix(name, suf) {
				for _, x := range p.T.F32 {
					if x != v {
						t.Fatalf("%s holds %v, want all %v", name, x, v)
					}
				}
			}
		}
		if strings.HasSuffix(name, ".weight") && p.T.Rank() == 1 { // BN scale
			for _, x := range p.T.F32 {
				if x != 1 {
					t.Fatalf("%s holds %v, want all 1", name, x)
				}
			}
		}
	}
	// layer3.0.conv2: Kaiming normal, std sqrt(2/(64*9)).
	w := g.Params["layer3.0.conv2.weight"].T.F32
	if got, want := stddev(w), math.Sqrt(2.0/(64*9)); math.Abs(got-want) > 0.05*want {
		t.Errorf("conv weight std %v, want about %v", got, want)
	}
	// fc: Xavier uniform, bound sqrt(6/(64+5)).
	bound := float32(math.Sqrt(6.0 / 69))
	for _, x := range g.Params["fc.weight"].T.F32 {
		if x < -bound || x > bound {
			t.Fatalf("fc weight %v outside ±%v", x, bound)
		}
	}
}

func stddev(v []float32) float64 {
	var s, s2 float64
	for _, x := range v {
		s += float64(x)
		s2 += float64(x) * float64(x)
	}
	n := float64(len(v))
	return math.Sqrt(s2/n - (s/n)*(s/n))
}

func TestDeterminism(t *testing.T) {
	for _, arch := range ArchNames() {
		cfg := Config{Input: []int{1, 16, 16}, Classes: 3, Seed: 42}
		a, err := Build(arch, cfg)
		if err != nil {
			t.Fatalf("%s: %v", arch, err)
		}
		b, _ := Build(arch, cfg)
		cfg.Seed = 43
		c, _ := Build(arch, cfg)
		differs := false
		for name, p := range a.Params {
			q, r := b.Params[name], c.Params[name]
			for k := range p.T.F32 {
				if math.Float32bits(p.T.F32[k]) != math.Float32bits(q.T.F32[k]) {
					t.Fatalf("%s: %s[%d] differs between two builds with the same seed", arch, name, k)
				}
				if p.T.F32[k] != r.T.F32[k] {
					differs = true
				}
			}
		}
		if !differs {
			t.Errorf("%s: seeds 42 and 43 gave identical weights", arch)
		}
	}
}

func TestBadConfigs(t *testing.T) {
	cases := []struct {
		arch string
		cfg  Config
		want string // substring of the error
	}{
		{"vgg", Config{Input: []int{1, 28, 28}, Classes: 10}, `unknown architecture "vgg"`},
		{"mlp", Config{Input: []int{1, 28, 28}}, "classes must be at least 1, got 0"},
		{"resnet", Config{Input: []int{1, 28, 28}, Classes: -2}, "classes must be at least 1, got -2"},
		{"mlp", Config{Classes: 10}, "input shape is empty"},
		{"mlp", Config{Input: []int{1, 0, 28}, Classes: 10}, "input dimension 1 is 0"},
		{"lenet5", Config{Input: []int{1, 11, 28}, Classes: 10}, "too small: lenet5 needs height and width of at least 12"},
		{"lenet5", Config{Input: []int{28, 28}, Classes: 10}, "lenet5 needs an image input [C H W]"},
		{"resnet", Config{Input: []int{784}, Classes: 10}, "resnet needs an image input"},
		{"mobilenet", Config{Input: []int{1, 2, 3, 4}, Classes: 10}, "mobilenet needs an image input"},
		{"mlp", Config{Input: []int{4}, Classes: 2, Width: -1}, "width multiplier must be a positive number"},
		{"mlp", Config{Input: []int{4}, Classes: 2, Width: math.NaN()}, "width multiplier must be a positive number"},
		{"mlp", Config{Input: []int{4}, Classes: 2, Width: 1e9}, "more than the limit"},
		{"mlp", Config{Input: []int{4}, Classes: 2, Hidden: []int{8, 0}}, "hidden layer 1 has size 0"},
		{"resnet", Config{Input: []int{1, 8, 8}, Classes: 2, Depth: -1}, "depth must be at least 1"},
		{"lenet5", Config{Input: []int{1, 28, 28}, Classes: 10, Init: "orthogonal"}, `unknown initialiser "orthogonal"`},
		{"mlp", Config{Input: []int{1 << 20, 1 << 20}, Classes: 10}, "more than"},
		{"mlp", Config{Input: []int{1 << 10, 1 << 10}, Classes: 10, Hidden: []int{1 << 9}}, "past 268435456 parameters"},
		{"resnet", Config{Input: []int{3, 32, 32}, Classes: 10, Width: 1e5}, "more than the limit"},
	}
	for i, c := range cases {
		g, err := Build(c.arch, c.cfg)
		if err == nil {
			t.Errorf("%d %s %v: no error (graph %s)", i, c.arch, c.cfg.Input, g.Name)
			continue
		}
		if !strings.Contains(err.Error(), c.want) {
			t.Errorf("%d %s: error %q, want it to contain %q", i, c.arch, err, c.want)
		}
		if !strings.HasPrefix(err.Error(), "models: ") {
			t.Errorf("%d: error %q does not name the package", i, err)
		}
	}
}

func TestLookup(t *testing.T) {
	for _, name := range []string{"mlp", "lenet5", "resnet", "mobilenet"} {
		a, ok := Lookup(strings.ToUpper(name))
		if !ok || a.Name != name || a.Summary == "" {
			t.Errorf("Lookup(%q) = %+v, %v", strings.ToUpper(name), a, ok)
		}
	}
	names := ArchNames()
	for i := 1; i < len(names); i++ {
		if names[i-1] >= names[i] {
			t.Errorf("ArchNames not sorted: %v", names)
		}
	}
}

func TestParseShape(t *testing.T) {
	cases := []struct {
		in   string
		want []int
		bad  bool
	}{
		{in: "1x28x28", want: []int{1, 28, 28}},
		{in: " 3X32x32 ", want: []int{3, 32, 32}},
		{in: "1,28,28", want: []int{1, 28, 28}},
		{in: "784", want: []int{784}},
		{in: "", bad: true},
		{in: "1x0x28", bad: true},
		{in: "1xax28", bad: true},
		{in: "-1x28", bad: true},
	}
	for i, c := range cases {
		got, err := ParseShape(c.in)
		if (err != nil) != c.bad || (!c.bad && !rt.SameShape(got, c.want)) {
			t.Errorf("%d ParseShape(%q) = %v, %v", i, c.in, got, err)
		}
		if !c.bad && FormatShape(got) != strings.ReplaceAll(strings.ToLower(strings.TrimSpace(c.in)), ",", "x") {
			t.Errorf("%d FormatShape(%v) = %q", i, got, FormatShape(got))
		}
	}
}

// TestRun executes every architecture once the runtime has its ops, and
// checks the logits' shape, that they are finite, that the batch rows are
// independent, and that repeated runs are bit-identical.
func TestRun(t *testing.T) {
	for i, c := range buildCases {
		g, err := Build(c.arch, c.cfg)
		if err != nil {
			t.Fatal(err)
		}
		if un := rt.UnsupportedOps(g); len(un) > 0 {
			t.Skipf("runtime lacks ops for %s (first: %v); skipping execution", c.arch, un[0])
		}
		ex, err := rt.NewExecutor(g, rt.Options{Threads: 2})
		if err != nil {
			t.Fatalf("%d %s: NewExecutor: %v", i, c.arch, err)
		}
		const batch = 3
		x := rt.New(rt.Float32, append([]int{batch}, c.cfg.Input...)...)
		rng := rand.New(rand.NewPCG(uint64(i), 7))
		for k := range x.F32 {
			x.F32[k] = float32(rng.NormFloat64())
		}
		out, err := ex.Run(context.Background(), map[string]*rt.Tensor{InputName: x})
		if err != nil {
			t.Fatalf("%d %s: Run: %v", i, c.arch, err)
		}
		y := out[OutputName]
		if y == nil || !rt.SameShape(y.Shape, []int{batch, c.cfg.Classes}) {
			t.Fatalf("%d %s: logits %v, want shape [%d %d]", i, c.arch, y, batch, c.cfg.Classes)
		}
		for k, v := range y.F32 {
			if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
				t.Fatalf("%d %s: logits[%d] = %v", i, c.arch, k, v)
			}
		}
		// Row 1 alone gives the same logits as inside the batch.
		per := rt.NumElements(c.cfg.Input)
		one := rt.FromFloat32(append([]float32{}, x.F32[per:2*per]...), append([]int{1}, c.cfg.Input...)...)
		out1, err := ex.Run(context.Background(), map[string]*rt.Tensor{InputName: one})
		if err != nil {
			t.Fatalf("%d %s: Run batch 1: %v", i, c.arch, err)
		}
		for k := 0; k < c.cfg.Classes; k++ {
			a, b := out1[OutputName].F32[k], y.F32[c.cfg.Classes+k]
			if math.Abs(float64(a-b)) > 1e-4*(1+math.Abs(float64(b))) {
				t.Errorf("%d %s: logit %d is %v alone and %v in a batch", i, c.arch, k, a, b)
			}
		}
		again, err := ex.Run(context.Background(), map[string]*rt.Tensor{InputName: x})
		if err != nil {
			t.Fatal(err)
		}
		for k := range y.F32 {
			if math.Float32bits(y.F32[k]) != math.Float32bits(again[OutputName].F32[k]) {
				t.Fatalf("%d %s: two runs differ at %d", i, c.arch, k)
			}
		}
	}
}
