package prune

import (
	"context"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/compressml/compress/data"
	"github.com/compressml/compress/finetune"
	rt "github.com/compressml/compress/runtime"
)

// mlp: fc1 (Gemm, transB) -> fc2 (Gemm, transB) -> fc3 (MatMul [24 20])
// -> fc4 (Gemm, transB=0 [20 10]); fc2's weight is 10x larger than fc3's
// so that global and layer scopes differ.
func mlp(seed uint64) *rt.Graph {
	b := newGB(seed, 16)
	x := b.relu("r1", b.gemm("fc1", "x", 16, 32))
	x = b.relu("r2", b.gemm("fc2", x, 32, 24))
	for i := range b.g.Params["fc2.w"].T.F32 {
		b.g.Params["fc2.w"].T.F32[i] *= 10
	}
	x = b.relu("r3", b.node("MatMul", "fc3", []string{x, b.rand("fc3.w", -1, 1, 24, 20)}, nil))
	y := b.node("Gemm", "fc4", []string{x, b.rand("fc4.w", -1, 1, 20, 10), b.rand("fc4.b", -1, 1, 10)}, nil)
	return b.finish(y, 10)
}

// convNet: c1 (Conv 4->8 3x3, reduction 36) -> c2 (Conv 8->8 1x1,
// reduction 8) -> GlobalAveragePool -> Flatten -> fc (Gemm 8->10).
func convNet(seed uint64) *rt.Graph {
	b := newGB(seed, 4, 6, 6)
	x := b.relu("r1", b.conv("c1", "x", 4, 8, 3, 1))
	x = b.relu("r2", b.conv("c2", x, 8, 8, 1, 1))
	x = b.node("GlobalAveragePool", "gap", []string{x}, nil)
	x = b.node("Flatten", "flat", []string{x}, map[string]rt.Attr{"axis": one(1)})
	return b.finish(b.gemm("fc", x, 8, 10), 10)
}

func TestLayers(t *testing.T) {
	ls := Layers(mlp(1))
	want := []struct {
		node       string
		out, in    int
		transposed bool
	}{{"fc1", 32, 16, false}, {"fc2", 24, 32, false}, {"fc3", 20, 24, true}, {"fc4", 10, 20, true}}
	if len(ls) != len(want) {
		t.Fatalf("%d layers, want %d", len(ls), len(want))
	}
	for i, w := range want {
		l := ls[i]
		if l.Node != w.node || l.Out != w.out || l.In != w.in || l.Transposed != w.transposed {
			t.Errorf("layer %d = %+v, want %+v", i, l, w)
		}
	}
	cl := Layers(convNet(1))
	if cl[0].Out != 8 || cl[0].In != 36 || cl[1].In != 8 {
		t.Errorf("conv layers %+v", cl)
	}
}

func TestMagnitudeExactCounts(t *testing.T) {
	tests := []struct {
		name   string
		opts   Options
		pruned map[string]int // zeros expected per weight; others untouched
	}{
		{"layer 50%", Options{Sparsity: 0.5}, map[string]int{"fc2.w": 384, "fc3.w": 240}},
		{"layer 0%", Options{Sparsity: 0}, map[string]int{"fc2.w": 0, "fc3.w": 0}},
		{"layer 33% rounds", Options{Sparsity: 1.0 / 3}, map[string]int{"fc2.w": 256, "fc3.w": 160}},
		{"first and last", Options{Sparsity: 0.9, IncludeFirstLast: true},
			map[string]int{"fc1.w": 461, "fc2.w": 691, "fc3.w": 432, "fc4.w": 180}},
		{"exclude glob", Options{Sparsity: 0.75, Exclude: []string{"fc3*"}}, map[string]int{"fc2.w": 576}},
		{"exclude regexp by param", Options{Sparsity: 0.75, IncludeFirstLast: true, Exclude: []string{"/^fc[14]\\.w$/"}},
			map[string]int{"fc2.w": 576, "fc3.w": 360}},
		{"plan overrides", Options{Sparsity: 0.5, Plan: Plan{"fc1": 0.25, "fc3.w": 0.9}},
			map[string]int{"fc1.w": 128, "fc2.w": 384, "fc3.w": 432}},
		{"plan only", Options{Plan: Plan{"fc4": 0.5}}, map[string]int{"fc4.w": 100}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			g := mlp(1)
			orig := g.Clone()
			res, err := Prune(context.Background(), g, tc.opts, Schedule{})
			mustNot(t, err, "Prune")
			for _, name := range []string{"fc1.w", "fc2.w", "fc3.w", "fc4.w"} {
				w := g.Params[name].T.F32
				want, ok := tc.pruned[name]
				if !ok {
					for i, v := range w {
						if v != orig.Params[name].T.F32[i] {
							t.Fatalf("%s changed but should stay dense", name)
						}
					}
					continue
				}
				if z := zeros(w); z != want {
					t.Errorf("%s: %d zeros, want %d", name, z, want)
				}
				if res.Masks[name] != nil && res.Masks.Pruned(name) != want {
					t.Errorf("%s: mask prunes %d, want %d", name, res.Masks.Pruned(name), want)
				}
				// The kept values are the largest.
				maxPruned, minKept := float32(0), float32(math.Inf(1))
				for i, v := range orig.Params[name].T.F32 {
					if w[i] == 0 {
						maxPruned = max(maxPruned, abs32(v))
					} else {
						minKept = min(minKept, abs32(v))
					}
				}
				if want > 0 && maxPruned > minKept {
					t.Errorf("%s: pruned |w| up to %g but kept %g", name, maxPruned, minKept)
				}
			}
		})
	}
}

func TestGlobalScope(t *testing.T) {
	g := mlp(2)
	orig := g.Clone()
	_, err := Prune(context.Background(), g, Options{Sparsity: 0.6, Scope: ScopeGlobal}, Schedule{})
	mustNot(t, err, "Prune")
	w2, w3 := g.Params["fc2.w"].T.F32, g.Params["fc3.w"].T.F32
	total := len(w2) + len(w3)
	if z := zeros(w2) + zeros(w3); z != int(math.Round(0.6*float64(total))) {
		t.Fatalf("%d zeros over both layers, want %d", z, int(math.Round(0.6*float64(total))))
	}
	// fc2's weights are 10x larger: global pruning takes mostly fc3's.
	if zeros(w3) <= zeros(w2) {
		t.Errorf("global scope pruned %d of fc2 and %d of fc3; fc3 (smaller weights) should lose more", zeros(w2), zeros(w3))
	}
	maxPruned, minKept := float32(0), float32(math.Inf(1))
	for _, name := range []string{"fc2.w", "fc3.w"} {
		for i, v := range orig.Params[name].T.F32 {
			if g.Params[name].T.F32[i] == 0 {
				maxPruned = max(maxPruned, abs32(v))
			} else {
				minKept = min(minKept, abs32(v))
			}
		}
	}
	if maxPruned > minKept {
		t.Errorf("global threshold violated: pruned %g > kept %g", maxPruned, minKept)
	}
	if zeros(g.Params["fc1.w"].T.F32) != 0 || zeros(g.Params["fc4.w"].T.F32) != 0 {
		t.Error("first and last layers were pruned")
	}
}

func TestNM(t *testing.T) {
	tests := []struct {
		name    string
		g       func(uint64) *rt.Graph
		n, m    int
		exclude []string
		err     string
	}{
		{"2:4 mlp", mlp, 2, 4, nil, ""},
		{"1:4 mlp", mlp, 1, 4, nil, ""},
		{"4:8 mlp", mlp, 4, 8, []string{"fc4"}, ""},
		{"4:8 mlp indivisible", mlp, 4, 8, nil, `layer "fc4" (Gemm, weight fc4.w [20 10]): the reduction dimension (K = 20) is not divisible by M=8`},
		{"2:4 conv", convNet, 2, 4, nil, ""},
		{"4:8 conv indivisible", convNet, 4, 8, nil, `layer "c1" (Conv, weight c1.w [8 4 3 3]): the reduction dimension (in_channels*kh*kw = 36) is not divisible by M=8`},
		{"2:3 mlp indivisible", mlp, 2, 3, nil, `"fc1" (Gemm, weight fc1.w [32 16]): the reduction dimension (K = 16) is not divisible by M=3`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			g := tc.g(3)
			orig := g.Clone()
			_, err := Prune(context.Background(), g, Options{Method: NM, N: tc.n, M: tc.m, IncludeFirstLast: true, Exclude: tc.exclude}, Schedule{})
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("error %v, want %q", err, tc.err)
				}
				for name, p := range orig.Params {
					if zeros(p.T.F32) != zeros(g.Params[name].T.F32) {
						t.Fatalf("%s changed although pruning failed", name)
					}
				}
				return
			}
			mustNot(t, err, "Prune")
			for _, l := range Layers(g) {
				w := g.Params[l.Param].T.F32
				if len(tc.exclude) > 0 && l.Node == tc.exclude[0] {
					continue
				}
				if err := CheckNM(l, w, tc.n, tc.m); err != nil {
					t.Error(err)
				}
				// Random weights have no zeros: exactly N kept per group.
				if want := l.Size() * (tc.m - tc.n) / tc.m; zeros(w) != want {
					t.Errorf("%s: %d zeros, want %d", l.Node, zeros(w), want)
				}
				// Along the reduction: a group keeps its N largest.
				for o := 0; o < l.Out; o++ {
					for r0 := 0; r0 < l.In; r0 += tc.m {
						minKept, maxPruned := float32(math.Inf(1)), float32(0)
						for j := 0; j < tc.m; j++ {
							i := l.Index(o, r0+j)
							if w[i] == 0 {
								maxPruned = max(maxPruned, abs32(orig.Params[l.Param].T.F32[i]))
							} else {
								minKept = min(minKept, abs32(w[i]))
							}
						}
						if maxPruned > minKept {
							t.Fatalf("%s output %d group %d: pruned %g > kept %g", l.Node, o, r0/tc.m, maxPruned, minKept)
						}
					}
				}
			}
		})
	}
}

func TestOptionErrors(t *testing.T) {
	tests := []struct {
		name string
		opts Options
		want string
	}{
		{"negative", Options{Sparsity: -0.1}, "outside [0, 1)"},
		{"one", Options{Sparsity: 1}, "outside [0, 1)"},
		{"nan", Options{Sparsity: math.NaN()}, "outside [0, 1)"},
		{"method", Options{Method: "random", Sparsity: 0.5}, `method "random"`},
		{"scope", Options{Scope: "model", Sparsity: 0.5}, `scope "model"`},
		{"global channel", Options{Method: Channel, Scope: ScopeGlobal, Sparsity: 0.5}, "magnitude method only"},
		{"nm bad", Options{Method: NM, N: 4, M: 4}, "1 <= N < M"},
		{"criterion", Options{Method: Channel, Criterion: "l3", Sparsity: 0.5}, `criterion "l3"`},
		{"plan missing layer", Options{Sparsity: 0.5, Plan: Plan{"fc9": 0.5, "fc2": 0.1}}, "the plan names 1 layer(s) the model does not have: fc9"},
		{"plan bad sparsity", Options{Plan: Plan{"fc2": 1.5}}, `plan entry "fc2" 1.5 is outside [0, 1)`},
		{"exclude nothing", Options{Sparsity: 0.5, Exclude: []string{"conv*"}}, `--exclude "conv*" matches no prunable layer`},
		{"exclude bad regexp", Options{Sparsity: 0.5, Exclude: []string{"/(/"}}, "pattern"},
		{"gradual nm", Options{Method: NM, N: 2, M: 4}, "one step"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			g := mlp(1)
			orig := g.Clone()
			sched := Schedule{}
			if tc.name == "gradual nm" {
				sched.Steps = 3
			}
			_, err := Prune(context.Background(), g, tc.opts, sched)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one containing %q", err, tc.want)
			}
			for name, p := range orig.Params {
				for i, v := range p.T.F32 {
					if g.Params[name].T.F32[i] != v {
						t.Fatalf("%s changed although pruning failed", name)
					}
				}
			}
		})
	}
	for _, s := range []string{"2:4", "4:8", "1:2"} {
		if _, _, err := ParsePattern(s); err != nil {
			t.Errorf("ParsePattern(%q): %v", s, err)
		}
	}
	for _, s := range []string{"4:2", "2-4", "2:", "0:4", "2:4:8", "a:b", "2:2"} {
		if _, _, err := ParsePattern(s); err == nil {
			t.Errorf("ParsePattern(%q) accepted", s)
		}
	}
}

func TestCubicSparsity(t *testing.T) {
	tests := []struct {
		si, sf float64
		t, n   int
		want   float64
	}{
		{0, 0.8, 0, 4, 0},
		{0, 0.8, 1, 4, 0.8 - 0.8*27.0/64},
		{0, 0.8, 2, 4, 0.8 - 0.8/8},
		{0, 0.8, 4, 4, 0.8},
		{0.2, 0.8, 3, 4, 0.8 - 0.6/64},
		{0, 0.5, 1, 1, 0.5},
		{0, 0.5, 7, 4, 0.5},
	}
	for _, tc := range tests {
		if got := CubicSparsity(tc.si, tc.sf, tc.t, tc.n); math.Abs(got-tc.want) > 1e-12 {
			t.Errorf("CubicSparsity(%v, %v, %d, %d) = %v, want %v", tc.si, tc.sf, tc.t, tc.n, got, tc.want)
		}
	}
}

// TestGradual prunes in steps with a "fine-tuning" that perturbs every
// weight: pruned weights must stay zero and sparsity must rise along the
// cubic schedule to exactly the target.
func TestGradual(t *testing.T) {
	g := mlp(4)
	var seen []int
	sched := Schedule{Steps: 4, FineTune: func(ctx context.Context, step, steps int, m Masks) error {
		w := g.Params["fc2.w"].T.F32
		seen = append(seen, zeros(w))
		for i := range w {
			w[i] += 0.01 // training moves every weight...
		}
		return m.Apply(g) // ...and the mask puts the pruned ones back to zero
	}}
	_, err := Prune(context.Background(), g, Options{Sparsity: 0.8}, sched)
	mustNot(t, err, "Prune")
	n := 768
	for i, z := range seen {
		want := int(math.Round(CubicSparsity(0, 0.8, i+1, 4) * float64(n)))
		if z != want {
			t.Errorf("step %d: %d zeros, want %d", i+1, z, want)
		}
	}
	if z := zeros(g.Params["fc2.w"].T.F32); z != int(math.Round(0.8*float64(n))) {
		t.Errorf("final zeros %d, want %d", z, int(math.Round(0.8*float64(n))))
	}
}

// TestFineTuneKeepsMasks trains a pruned MLP: pruned weights stay exactly
// zero, the others train.
func TestFineTuneKeepsMasks(t *testing.T) {
	g := mlp(5)
	x := rt.New(rt.Float32, 64, 16)
	labels := make([]int, 64)
	for i := range x.F32 {
		x.F32[i] = float32(i%13) / 13
	}
	for i := range labels {
		labels[i] = i % 10
	}
	ds, err := data.NewInMemory("toy", x, labels, 10)
	mustNot(t, err, "NewInMemory")
	m, _, err := ComputeMasks(g, Options{Sparsity: 0.7, IncludeFirstLast: true})
	mustNot(t, err, "ComputeMasks")
	_, err = (finetune.FreezeSpec{}).Apply(g)
	mustNot(t, err, "FreezeSpec")
	before := g.Clone()
	_, err = FineTune(context.Background(), g, m, ds, nil, finetune.Config{Epochs: 2, BatchSize: 16, LR: 0.05, Seed: 1, Threads: 1})
	mustNot(t, err, "FineTune")
	for name, keep := range m {
		w := g.Params[name].T.F32
		changed := 0
		for i, k := range keep {
			if !k && w[i] != 0 {
				t.Fatalf("%s[%d] = %g after fine-tuning, want 0", name, i, w[i])
			}
			if k && w[i] != before.Params[name].T.F32[i] {
				changed++
			}
		}
		if changed == 0 {
			t.Errorf("%s: no kept weight trained", name)
		}
	}
}

func TestSparseExecutor(t *testing.T) {
	g := mlp(6)
	_, err := Prune(context.Background(), g, Options{Sparsity: 0.9, IncludeFirstLast: true}, Schedule{})
	mustNot(t, err, "Prune")
	ex, err := NewExecutor(g, 2, 0.5)
	mustNot(t, err, "NewExecutor")
	sparse := 0
	for _, n := range ex.Graph().Nodes {
		if n.Domain == rt.SparseDomain {
			sparse++
		}
	}
	if sparse != 4 {
		t.Errorf("%d sparse nodes, want 4", sparse)
	}
	dense, err := NewExecutor(g, 1, 2)
	mustNot(t, err, "dense executor")
	for _, n := range dense.Graph().Nodes {
		if n.Domain == rt.SparseDomain {
			t.Errorf("threshold 2 still made %s sparse", n.Name)
		}
	}
	x := rt.New(rt.Float32, 5, 16)
	for i := range x.F32 {
		x.F32[i] = float32(i%7) / 7
	}
	got, err := ex.Run(context.Background(), map[string]*rt.Tensor{"x": x})
	mustNot(t, err, "sparse run")
	ref, err := dense.Run(context.Background(), map[string]*rt.Tensor{"x": x})
	mustNot(t, err, "dense run")
	assertClose(t, got["fc4"], ref["fc4"], 1e-5)
}

func TestSensitivityAndPlan(t *testing.T) {
	g := mlp(7)
	orig := g.Clone()
	// A fake metric: each layer costs accuracy in proportion to the
	// fraction of its weights that are zero, fc3 ten times more.
	cost := map[string]float64{"fc1.w": 0.01, "fc2.w": 0.02, "fc3.w": 0.2, "fc4.w": 0.001}
	eval := func(ctx context.Context, g *rt.Graph) (float64, error) {
		acc := 0.9
		for p, c := range cost {
			w := g.Params[p].T.F32
			acc -= c * float64(zeros(w)) / float64(len(w))
		}
		return acc, nil
	}
	rep, err := Sensitivity(context.Background(), g, SensitivityOptions{Sparsities: []float64{0.9, 0.5, 0.3, 0.7}, MaxDrop: 0.015, Evaluate: eval})
	mustNot(t, err, "Sensitivity")
	for name, p := range orig.Params {
		for i, v := range p.T.F32 {
			if g.Params[name].T.F32[i] != v {
				t.Fatalf("%s not restored", name)
			}
		}
	}
	want := Plan{"fc1": 0.9, "fc2": 0.7, "fc3": 0, "fc4": 0.9}
	if len(rep.Plan) != len(want) {
		t.Fatalf("plan %v, want %v", rep.Plan, want)
	}
	for k, v := range want {
		if rep.Plan[k] != v {
			t.Errorf("plan[%s] = %v, want %v", k, rep.Plan[k], v)
		}
	}
	if rep.Sparsities[0] != 0.3 || len(rep.Rows) != 4 || len(rep.Rows[0].Accuracy) != 4 {
		t.Errorf("report %+v", rep)
	}
	dir := t.TempDir()
	path := filepath.Join(dir, "plan.json")
	mustNot(t, rep.Plan.Write(path), "Write")
	back, err := ReadPlan(path)
	mustNot(t, err, "ReadPlan")
	for k, v := range want {
		if back[k] != v {
			t.Errorf("read back plan[%s] = %v, want %v", k, back[k], v)
		}
	}
	// The plan drives Prune: fc3 stays dense (0), the others are pruned
	// even the first and last.
	g2 := mlp(7)
	_, err = Prune(context.Background(), g2, Options{Plan: back}, Schedule{})
	mustNot(t, err, "Prune with plan")
	if z := zeros(g2.Params["fc1.w"].T.F32); z != 461 {
		t.Errorf("fc1 zeros %d, want 461", z)
	}
	if z := zeros(g2.Params["fc3.w"].T.F32); z != 0 {
		t.Errorf("fc3 zeros %d, want 0", z)
	}
	mustNot(t, PlotSensitivity(rep, filepath.Join(dir, "chart.png")), "PlotSensitivity")
	if st, err := os.Stat(filepath.Join(dir, "chart.png")); err != nil || st.Size() < 1000 {
		t.Errorf("chart not written: %v", err)
	}
	for _, bad := range []string{`{"fc1": 1.2}`, `{"fc1": "x"}`, `[]`, `{}`} {
		p := filepath.Join(dir, "bad.json")
		mustNot(t, os.WriteFile(p, []byte(bad), 0o644), "write")
		if _, err := ReadPlan(p); err == nil {
			t.Errorf("ReadPlan accepted %s", bad)
		}
	}
	wrapped := filepath.Join(dir, "wrapped.json")
	mustNot(t, os.WriteFile(wrapped, []byte(`{"plan": {"fc2": 0.5}, "other": 1}`), 0o644), "write")
	if p, err := ReadPlan(wrapped); err != nil || p["fc2"] != 0.5 || len(p) != 1 {
		t.Errorf("ReadPlan of a wrapped plan: %v %v", p, err)
	}
}
