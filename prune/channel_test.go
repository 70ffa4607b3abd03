package prune

import (
	"context"
	"sort"
	"strings"
	"testing"

	"github.com/compressml/compress/data"
	"github.com/compressml/compress/finetune"
	"github.com/compressml/compress/models"
	rt "github.com/compressml/compress/runtime"
)

func gapFlatten(b *gb, x string) string {
	x = b.node("GlobalAveragePool", "gap", []string{x}, nil)
	return b.node("Flatten", "flat", []string{x}, map[string]rt.Attr{"axis": one(1)})
}

// chainNet: c1 -> bn1 -> relu -> c2 -> bn2 -> relu -> GAP -> Flatten -> fc.
func chainNet() *rt.Graph {
	b := newGB(11, 3, 6, 6)
	x := b.relu("r1", b.bn("bn1", b.conv("c1", "x", 3, 8, 3, 1), 8))
	x = b.relu("r2", b.bn("bn2", b.conv("c2", x, 8, 6, 3, 1), 6))
	return b.finish(b.gemm("fc", gapFlatten(b, x), 6, 5), 5)
}

// residualNet: x0 = relu(bn0(c0(x))); y = bn2(c2(relu(bn1(c1(x0)))));
// z = relu(y + x0) -> c3 -> GAP -> Flatten -> fc. c0 and c2 are tied.
func residualNet() *rt.Graph {
	b := newGB(12, 3, 6, 6)
	x0 := b.relu("r0", b.bn("bn0", b.conv("c0", "x", 3, 8, 3, 1), 8))
	y := b.relu("r1", b.bn("bn1", b.conv("c1", x0, 8, 8, 3, 1), 8))
	y = b.bn("bn2", b.conv("c2", y, 8, 8, 3, 1), 8)
	z := b.relu("r2", b.node("Add", "add", []string{y, x0}, nil))
	z = b.relu("r3", b.conv("c3", z, 8, 6, 1, 1))
	return b.finish(b.gemm("fc", gapFlatten(b, z), 6, 5), 5)
}

// concatNet: Concat(relu(c1(x)), relu(c2(x))) -> c3 -> GAP -> Flatten -> fc.
func concatNet() *rt.Graph {
	b := newGB(13, 3, 5, 5)
	a := b.relu("ra", b.conv("c1", "x", 3, 4, 3, 1))
	c := b.relu("rb", b.conv("c2", "x", 3, 6, 1, 1))
	x := b.node("Concat", "cat", []string{a, c}, map[string]rt.Attr{"axis": one(1)})
	x = b.relu("r3", b.conv("c3", x, 10, 5, 3, 1))
	return b.finish(b.gemm("fc", gapFlatten(b, x), 5, 4), 4)
}

// depthwiseNet: c1 -> bn -> relu -> dw (group 8) -> bn -> relu -> c2 1x1 -> GAP -> Flatten -> fc.
func depthwiseNet() *rt.Graph {
	b := newGB(14, 3, 6, 6)
	x := b.relu("r1", b.bn("bn1", b.conv("c1", "x", 3, 8, 3, 1), 8))
	x = b.relu("r2", b.bn("bn2", b.conv("dw", x, 8, 8, 3, 8), 8))
	x = b.relu("r3", b.conv("c2", x, 8, 6, 1, 1))
	return b.finish(b.gemm("fc", gapFlatten(b, x), 6, 3), 3)
}

// flattenNet: c1 (2 -> 4 on 5x5) -> relu -> Flatten -> fc (100 -> 7).
func flattenNet() *rt.Graph {
	b := newGB(15, 2, 5, 5)
	x := b.relu("r1", b.conv("c1", "x", 2, 4, 3, 1))
	x = b.node("Flatten", "flat", []string{x}, map[string]rt.Attr{"axis": one(1)})
	return b.finish(b.gemm("fc", x, 100, 7), 7)
}

// mnist8Net has mnist-8's structure: bias-less Conv + Add of a [C,1,1]
// bias, MaxPool, a Reshape with a constant shape, MatMul + Add.
func mnist8Net() *rt.Graph {
	b := newGB(16, 1, 8, 8)
	x := b.node("Conv", "c1", []string{"x", b.rand("c1.w", -1, 1, 4, 1, 3, 3)}, map[string]rt.Attr{"pads": ints(1, 1, 1, 1)})
	x = b.node("Add", "c1.add", []string{x, b.rand("c1.bias", -0.5, 0.5, 4, 1, 1)}, nil)
	x = b.relu("r1", x)
	x = b.node("MaxPool", "pool", []string{x}, map[string]rt.Attr{"kernel_shape": ints(2, 2), "strides": ints(2, 2)})
	b.g.AddParam("shape", rt.FromInt64([]int64{-1, 64}, 2), false)
	x = b.node("Reshape", "reshape", []string{x, "shape"}, nil)
	x = b.node("MatMul", "fc", []string{x, b.rand("fc.w", -1, 1, 64, 10)}, nil)
	return b.finish(b.node("Add", "fc.add", []string{x, b.rand("fc.b", -1, 1, 10)}, nil), 10)
}

func groupProducers(a *ChannelAnalysis) []string {
	var out []string
	for _, g := range a.Groups {
		p := append([]string{}, g.Producers...)
		sort.Strings(p)
		s := strings.Join(p, "+")
		if g.Fixed != "" {
			s += "(fixed)"
		}
		out = append(out, s)
	}
	sort.Strings(out)
	return out
}

// TestRemoveChannels prunes half of every prunable group after masking
// (so the removed channels are exactly zero): the smaller model must give
// the outputs of the masked one, and have the expected shapes.
func TestRemoveChannels(t *testing.T) {
	tests := []struct {
		name   string
		g      func() *rt.Graph
		groups []string
		shapes map[string][]int // parameter shapes after removal
	}{
		{"chain", chainNet, []string{"c1", "c2", "fc(fixed)"},
			map[string][]int{"c1.w": {4, 3, 3, 3}, "bn1.scale": {4}, "bn1.var": {4}, "c2.w": {3, 4, 3, 3}, "c2.b": {3}, "fc.w": {5, 3}}},
		{"residual", residualNet, []string{"c0+c2", "c1", "c3", "fc(fixed)"},
			map[string][]int{"c0.w": {4, 3, 3, 3}, "c1.w": {4, 4, 3, 3}, "c2.w": {4, 4, 3, 3}, "bn0.mean": {4}, "bn2.bias": {4}, "c3.w": {3, 4, 1, 1}, "fc.w": {5, 3}}},
		{"concat", concatNet, []string{"c1", "c2", "c3", "fc(fixed)"},
			map[string][]int{"c1.w": {2, 3, 3, 3}, "c2.w": {3, 3, 1, 1}, "c3.w": {2, 5, 3, 3}, "fc.w": {4, 2}}},
		{"depthwise", depthwiseNet, []string{"c1", "c2", "fc(fixed)"},
			map[string][]int{"c1.w": {4, 3, 3, 3}, "dw.w": {4, 1, 3, 3}, "dw.b": {4}, "bn2.scale": {4}, "c2.w": {3, 4, 1, 1}, "fc.w": {3, 3}}},
		{"flatten gemm", flattenNet, []string{"c1", "fc(fixed)"},
			map[string][]int{"c1.w": {2, 2, 3, 3}, "fc.w": {7, 50}}},
		{"mnist-8 style", mnist8Net, []string{"c1", "fc(fixed)"},
			map[string][]int{"c1.w": {2, 1, 3, 3}, "c1.bias": {2, 1, 1}, "fc.w": {32, 10}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			g := tc.g()
			orig := runGraph(t, g, 3)
			a, err := AnalyzeChannels(g)
			mustNot(t, err, "AnalyzeChannels")
			if got := groupProducers(a); strings.Join(got, " ") != strings.Join(tc.groups, " ") {
				t.Fatalf("groups %v, want %v", got, tc.groups)
			}
			sp := map[int]float64{}
			for _, gr := range a.Groups {
				sp[gr.ID] = 0.5
			}
			sel := a.Select(sp, CriterionL1)
			mustNot(t, a.Masks(sel).Apply(g), "Apply")
			masked := runGraph(t, g, 3)
			nBefore := paramCount(g)
			mustNot(t, a.RemoveChannels(sel), "RemoveChannels")
			for name, want := range tc.shapes {
				if got := g.Params[name].T.Shape; !rt.SameShape(got, want) {
					t.Errorf("%s has shape %v, want %v", name, got, want)
				}
			}
			if paramCount(g) >= nBefore {
				t.Errorf("%d parameters after removal, %d before", paramCount(g), nBefore)
			}
			pruned := runGraph(t, g, 3)
			assertClose(t, pruned, masked, 1e-5)
			if !rt.SameShape(pruned.Shape, orig.Shape) {
				t.Errorf("output shape %v, want %v", pruned.Shape, orig.Shape)
			}
		})
	}
}

// TestChannelZeroWeightsExact: channels whose weights were already zero
// are removed without changing the outputs (no masking by Prune needed).
func TestChannelZeroWeightsExact(t *testing.T) {
	g := residualNet()
	// Zero channels 1 and 5 of the c0+c2 group by hand: weights, biases and
	// BatchNorm scale and shift.
	for _, c := range []int{1, 5} {
		for _, p := range []string{"c0.w", "c2.w"} {
			w := g.Params[p].T
			inner := w.Len() / w.Shape[0]
			clear(w.F32[c*inner : (c+1)*inner])
		}
		for _, p := range []string{"c0.b", "c2.b", "bn0.scale", "bn0.bias", "bn2.scale", "bn2.bias"} {
			g.Params[p].T.F32[c] = 0
		}
	}
	want := runGraph(t, g, 2)
	res, err := Prune(context.Background(), g, Options{Method: Channel, Plan: Plan{"c0": 0.25, "c2": 0.25}}, Schedule{})
	mustNot(t, err, "Prune")
	if got := g.Params["c0.w"].T.Shape[0]; got != 6 {
		t.Fatalf("c0 has %d channels, want 6", got)
	}
	assertClose(t, runGraph(t, g, 2), want, 1e-5)
	found := false
	for _, gr := range res.Groups {
		if strings.Join(gr.Producers, "+") == "c0+c2" && gr.Removed == 2 {
			found = true
		}
	}
	if !found {
		t.Errorf("groups %+v", res.Groups)
	}
}

func TestChannelFixed(t *testing.T) {
	// A conv whose output is reshaped (not flattened) and one that is a
	// graph output cannot be pruned.
	b := newGB(17, 2, 4, 4)
	x := b.conv("c1", "x", 2, 4, 3, 1)
	b.g.AddParam("shape", rt.FromInt64([]int64{0, 4, 16}, 3), false)
	r := b.node("Reshape", "r", []string{x, "shape"}, nil)
	y := b.node("Softmax", "sm", []string{r}, map[string]rt.Attr{"axis": one(1)})
	g := b.finish(y, 4, 16)
	a, err := AnalyzeChannels(g)
	mustNot(t, err, "AnalyzeChannels")
	if len(a.Groups) != 1 || !strings.Contains(a.Groups[0].Fixed, `reshaped by Reshape "r"`) {
		t.Fatalf("groups %+v", a.Groups)
	}
	_, err = Prune(context.Background(), g, Options{Method: Channel, Sparsity: 0.5, IncludeFirstLast: true}, Schedule{})
	mustNot(t, err, "Prune")
	if g.Params["c1.w"].T.Shape[0] != 4 {
		t.Error("a fixed group was pruned")
	}
}

func TestChannelPruneBuiltins(t *testing.T) {
	for _, arch := range []string{"resnet", "mobilenet", "lenet5"} {
		t.Run(arch, func(t *testing.T) {
			g, err := models.Build(arch, models.Config{Input: []int{1, 28, 28}, Classes: 10, Seed: 1, Depth: 2})
			mustNot(t, err, "Build")
			before, _ := models.CountParams(g)
			res, err := Prune(context.Background(), g, Options{Method: Channel, Sparsity: 0.5}, Schedule{})
			mustNot(t, err, "Prune")
			after, _ := models.CountParams(g)
			t.Logf("%s: %d -> %d parameters (%.2fx); groups: %+v", arch, before, after, float64(before)/float64(after), res.Groups)
			if arch == "resnet" && float64(before) < 2*float64(after) {
				t.Errorf("resnet: %d -> %d parameters, want at least 2x fewer", before, after)
			}
			if after >= before {
				t.Errorf("%d -> %d parameters", before, after)
			}
			if y := runGraph(t, g, 2); !rt.SameShape(y.Shape, []int{2, 10}) {
				t.Errorf("output shape %v", y.Shape)
			}
		})
	}
}

func TestChannelCriteria(t *testing.T) {
	g := chainNet()
	a, err := AnalyzeChannels(g)
	mustNot(t, err, "AnalyzeChannels")
	var c1 *Group
	for _, gr := range a.Groups {
		if gr.Producers[0] == "c1" {
			c1 = gr
		}
	}
	// Make channel 6 the smallest by L1 but the largest BN scale.
	w := g.Params["c1.w"].T
	inner := w.Len() / 8
	for i := 6 * inner; i < 7*inner; i++ {
		w.F32[i] *= 1e-3
	}
	g.Params["bn1.scale"].T.F32[6] = 100
	g.Params["bn1.scale"].T.F32[2] = 1e-3
	if sel := a.Select(map[int]float64{c1.ID: 0.125}, CriterionL1); len(sel[c1.ID]) != 1 || sel[c1.ID][0] != 6 {
		t.Errorf("l1 selection %v, want [6]", sel[c1.ID])
	}
	if sel := a.Select(map[int]float64{c1.ID: 0.125}, CriterionL2); len(sel[c1.ID]) != 1 || sel[c1.ID][0] != 6 {
		t.Errorf("l2 selection %v, want [6]", sel[c1.ID])
	}
	if sel := a.Select(map[int]float64{c1.ID: 0.125}, CriterionBN); len(sel[c1.ID]) != 1 || sel[c1.ID][0] != 2 {
		t.Errorf("bn selection %v, want [2]", sel[c1.ID])
	}
	// At most Size-1 channels go.
	if sel := a.Select(map[int]float64{c1.ID: 0.99}, CriterionL1); len(sel[c1.ID]) != 7 {
		t.Errorf("selection at 99%% removes %d of 8", len(sel[c1.ID]))
	}
}

// TestChannelGradualFineTune prunes channels in two steps with real
// fine-tuning (BatchNorm in training mode) between them: the removed
// channels stay exactly zero, so removing them does not change outputs.
func TestChannelGradualFineTune(t *testing.T) {
	g := chainNet()
	x := rt.New(rt.Float32, 40, 3, 6, 6)
	labels := make([]int, 40)
	for i := range x.F32 {
		x.F32[i] = float32(i%17) / 17
	}
	for i := range labels {
		labels[i] = i % 5
	}
	ds, err := data.NewInMemory("toy", x, labels, 5)
	mustNot(t, err, "NewInMemory")
	_, err = (finetune.FreezeSpec{}).Apply(g)
	mustNot(t, err, "FreezeSpec")
	var masked *rt.Tensor
	steps := 0
	sched := Schedule{Steps: 2, FineTune: func(ctx context.Context, step, n int, m Masks) error {
		steps++
		_, err := FineTune(ctx, g, m, ds, nil, finetune.Config{Epochs: 1, BatchSize: 8, LR: 0.01, Seed: 2, Threads: 1})
		masked = runGraph(t, g, 3)
		return err
	}}
	res, err := Prune(context.Background(), g, Options{Method: Channel, Sparsity: 0.5, IncludeFirstLast: true}, sched)
	mustNot(t, err, "Prune")
	if steps != 2 {
		t.Fatalf("%d fine-tuning steps, want 2", steps)
	}
	if g.Params["c1.w"].T.Shape[0] != 4 || g.Params["c2.w"].T.Shape[0] != 3 {
		t.Fatalf("shapes %v %v; groups %+v", g.Params["c1.w"].T.Shape, g.Params["c2.w"].T.Shape, res.Groups)
	}
	assertClose(t, runGraph(t, g, 3), masked, 1e-5)
}
