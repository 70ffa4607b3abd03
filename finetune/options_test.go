package finetune

import (
	"context"
	"errors"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/compressml/compress/data"
	"github.com/compressml/compress/models"
	rt "github.com/compressml/compress/runtime"
)

// squares is a small image data set: class c has a bright square in
// quadrant c of an 8x8 image, at a random offset, over noise.
func squares(t *testing.T, n int) *data.InMemory {
	t.Helper()
	r := rand.New(rand.NewPCG(5, 6))
	x := rt.New(rt.Float32, n, 1, 8, 8)
	labels := make([]int, n)
	for i := range n {
		c := i % 4
		labels[i] = c
		img := x.F32[i*64 : (i+1)*64]
		for j := range img {
			img[j] = float32(r.Float64() * 0.3)
		}
		y0, x0 := (c/2)*4+r.IntN(2), (c%2)*4+r.IntN(2)
		for y := y0; y < y0+3; y++ {
			for xx := x0; xx < x0+3; xx++ {
				img[y*8+xx] = 1
			}
		}
	}
	ds, err := data.NewInMemory("squares", x, labels, 4)
	if err != nil {
		t.Fatal(err)
	}
	return ds
}

// TestTrainAugment checks that augmentation changes training, that it is
// deterministic for a seed, and that it cannot be combined with the
// frozen-prefix cache.
func TestTrainAugment(t *testing.T) {
	ds := squares(t, 96)
	run := func(aug *data.Augment, cache bool) (map[string][]float32, error) {
		g, err := models.Build("resnet", models.Config{Input: []int{1, 8, 8}, Classes: 4, Width: 0.25, Seed: 2})
		if err != nil {
			t.Fatal(err)
		}
		cfg := Config{Epochs: 2, BatchSize: 16, Seed: 3, Threads: 2, Augment: aug, CacheFrozen: cache}
		if cache {
			if _, err := (FreezeSpec{FreezeUntil: "layer1.0.conv1"}).Apply(g); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := Train(context.Background(), g, ds, nil, cfg); err != nil {
			return nil, err
		}
		return params(g), nil
	}
	aug := func() *data.Augment { return &data.Augment{RotateDegrees: 15, TranslatePixels: 1, Seed: 9} }
	plain, err := run(nil, false)
	if err != nil {
		t.Fatal(err)
	}
	a, err := run(aug(), false)
	if err != nil {
		t.Fatal(err)
	}
	b, err := run(aug(), false)
	if err != nil {
		t.Fatal(err)
	}
	if d := diffParams(a, b, 0); d != "" {
		t.Errorf("same seed and augmentation, different parameters: %s", d)
	}
	if diffParams(a, plain, 0) == "" {
		t.Error("augmentation did not change training")
	}
	_, err = run(aug(), true)
	if err == nil || !strings.Contains(err.Error(), "cache-frozen") {
		t.Errorf("augmentation with CacheFrozen: error %v, want one naming --cache-frozen", err)
	}
	bad := &data.Augment{TranslatePixels: -1}
	if _, err = run(bad, false); err == nil || errors.Is(err, context.Canceled) {
		t.Errorf("negative translation: error %v, want a validation error", err)
	}
}

// TestTrainEvalMode checks that BatchNormalization nodes named by EvalMode
// keep their running statistics while the others update theirs, and that a
// pattern matching no such node is an error.
func TestTrainEvalMode(t *testing.T) {
	ds := squares(t, 64)
	g, err := models.Build("resnet", models.Config{Input: []int{1, 8, 8}, Classes: 4, Width: 0.25, Seed: 2})
	if err != nil {
		t.Fatal(err)
	}
	runningMean := func(g *rt.Graph, node string) []float32 {
		for _, n := range g.Nodes {
			if n.Name == node {
				return append([]float32(nil), g.Params[n.Input(3)].T.F32...)
			}
		}
		t.Fatalf("no node %s", node)
		return nil
	}
	before1, before2 := runningMean(g, "layer1.0.bn1"), runningMean(g, "layer2.0.bn1")
	pat, err := ParsePattern("layer1.*")
	if err != nil {
		t.Fatal(err)
	}
	cfg := Config{Epochs: 1, BatchSize: 16, Seed: 1, Threads: 1, EvalMode: []Pattern{pat}}
	if _, err := Train(context.Background(), g, ds, nil, cfg); err != nil {
		t.Fatal(err)
	}
	if d := diffParams(map[string][]float32{"m": before1}, map[string][]float32{"m": runningMean(g, "layer1.0.bn1")}, 0); d != "" {
		t.Errorf("layer1.0.bn1 is in eval mode but its running mean changed: %s", d)
	}
	if diffParams(map[string][]float32{"m": before2}, map[string][]float32{"m": runningMean(g, "layer2.0.bn1")}, 0) == "" {
		t.Error("layer2.0.bn1 trains but its running mean did not change")
	}
	bad, _ := ParsePattern("nothing*")
	cfg.EvalMode = []Pattern{bad}
	if _, err := Train(context.Background(), g, ds, nil, cfg); err == nil || !strings.Contains(err.Error(), `"nothing*" matches no BatchNormalization`) {
		t.Errorf("pattern matching nothing: error %v", err)
	}
}
