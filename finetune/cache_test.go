package finetune

import (
	"slices"
	"strings"
	"testing"

	rt "github.com/compressml/compress/runtime"
)

func TestCacheFrozenSameResult(t *testing.T) {
	ds := blobs(t, 200, 3, 4, 1, 30)
	tests := []struct {
		name       string
		spec       FreezeSpec
		cfg        Config
		wantCached bool
	}{
		{"fc1 frozen", FreezeSpec{Freeze: []string{"fc1"}}, Config{}, true},
		{"fc1 and fc2 frozen, validation split", FreezeSpec{FreezeUntil: "relu2"}, Config{ValSplit: 0.25}, true},
		{"sgd momentum, L2, clipping", FreezeSpec{Freeze: []string{"fc1"}},
			Config{Optimizer: OptimizerConfig{Kind: "sgd", Momentum: 0.9}, LR: 0.05, L2: 1e-3, ClipNorm: 0.5}, true},
		{"nothing frozen: nothing to cache", FreezeSpec{}, Config{}, false},
		{"only the first layer trains: nothing to cache", FreezeSpec{TrainOnly: []string{"fc1"}}, Config{}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := tc.cfg
			cfg.Epochs, cfg.BatchSize, cfg.Seed, cfg.Threads = 3, 32, 1, 1
			plain, plainRes, err := trainOn(t, ds, tc.spec, cfg)
			if err != nil {
				t.Fatal(err)
			}
			cfg.CacheFrozen = true
			cached, res, err := trainOn(t, ds, tc.spec, cfg)
			if err != nil {
				t.Fatal(err)
			}
			if res.CachedFrozen != tc.wantCached || plainRes.CachedFrozen {
				t.Errorf("CachedFrozen %v (without the option %v), want %v", res.CachedFrozen, plainRes.CachedFrozen, tc.wantCached)
			}
			if d := diffParams(params(plain), params(cached), 1e-6); d != "" {
				t.Errorf("cached training differs: %s", d)
			}
			for i, h := range res.History {
				p := plainRes.History[i]
				if !approx(h.TrainLoss, p.TrainLoss, 1e-5) || (h.Val == nil) != (p.Val == nil) {
					t.Errorf("epoch %d: cached loss %v, plain %v", i+1, h.TrainLoss, p.TrainLoss)
				}
				if h.Val != nil && (!approx(h.Val.Loss, p.Val.Loss, 1e-5) || h.Val.Examples != p.Val.Examples) {
					t.Errorf("epoch %d: cached validation %+v, plain %+v", i+1, *h.Val, *p.Val)
				}
			}
		})
	}
}

// TestCacheFrozenResNet caches a prefix with two frontier values (the
// residual branch and the shortcut of layer1.0) and frozen
// BatchNormalization layers.
func TestCacheFrozenResNet(t *testing.T) {
	ds := images(t, 48, 2, 32)
	spec := FreezeSpec{FreezeUntil: "layer1.0.bn1"}
	g := smallResNet(t)
	if _, err := spec.Apply(g); err != nil {
		t.Fatal(err)
	}
	_, _, frontier, err := SplitFrozen(g)
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(frontier)
	if !slices.Equal(frontier, []string{"layer1.0.relu1", "relu"}) {
		t.Errorf("frontier %v, want [layer1.0.relu1 relu]", frontier)
	}
	run := func(cache bool) (map[string][]float32, *Result) {
		g := smallResNet(t)
		if _, err := spec.Apply(g); err != nil {
			t.Fatal(err)
		}
		res, err := Train(t.Context(), g, ds, nil, Config{Epochs: 2, BatchSize: 16, LR: 0.01, Seed: 1, Threads: 2, CacheFrozen: cache, ValSplit: 0.25})
		if err != nil {
			t.Fatal(err)
		}
		return params(g), res
	}
	plain, _ := run(false)
	cached, res := run(true)
	if !res.CachedFrozen {
		t.Fatal("nothing cached")
	}
	if d := diffParams(plain, cached, 1e-5); d != "" {
		t.Errorf("cached training differs: %s", d)
	}
}

func TestCacheFrozenDropout(t *testing.T) {
	ds := blobs(t, 64, 3, 4, 1, 31)
	tests := []struct {
		name    string
		after   string // value the Dropout reads
		spec    FreezeSpec
		wantErr string
	}{
		{"dropout in the frozen prefix", "relu1", FreezeSpec{Freeze: []string{"fc1"}}, "relu1_dropout"},
		{"dropout after the first trainable layer", "relu2", FreezeSpec{Freeze: []string{"fc1"}}, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			g := withDropout(mlp(t, 4, 3, []int{16, 8}, 1), tc.after)
			if _, err := tc.spec.Apply(g); err != nil {
				t.Fatal(err)
			}
			res, err := Train(t.Context(), g, ds, nil, Config{CacheFrozen: true, BatchSize: 16, Seed: 1, Threads: 1})
			if tc.wantErr == "" {
				if err != nil || !res.CachedFrozen {
					t.Fatalf("error %v, cached %v", err, res != nil && res.CachedFrozen)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) || !strings.Contains(err.Error(), "Dropout") {
				t.Fatalf("error %v, want one naming the Dropout %q", err, tc.wantErr)
			}
		})
	}
}

func TestSplitFrozen(t *testing.T) {
	g := mlp(t, 4, 3, []int{16, 8}, 1)
	if _, err := (FreezeSpec{Freeze: []string{"fc1"}}).Apply(g); err != nil {
		t.Fatal(err)
	}
	prefix, suffix, frontier, err := SplitFrozen(g)
	if err != nil {
		t.Fatal(err)
	}
	names := func(g *rt.Graph) []string {
		var out []string
		for _, n := range g.Nodes {
			out = append(out, n.Name)
		}
		return out
	}
	if !slices.Equal(names(prefix), []string{"fc1", "relu1"}) || !slices.Equal(names(suffix), []string{"fc2", "relu2", "fc"}) {
		t.Errorf("prefix %v suffix %v", names(prefix), names(suffix))
	}
	if !slices.Equal(frontier, []string{"relu1"}) {
		t.Errorf("frontier %v, want [relu1]", frontier)
	}
	if _, ok := suffix.Params["fc1.weight"]; ok {
		t.Errorf("suffix keeps the prefix's weights")
	}
	if suffix.Params["fc.weight"] != g.Params["fc.weight"] {
		t.Errorf("suffix does not share the graph's parameters")
	}
	if len(g.Nodes) != 5 {
		t.Errorf("SplitFrozen changed the graph: %v", names(g))
	}
}
