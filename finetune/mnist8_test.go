package finetune

import (
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/compressml/compress/data"
	"github.com/compressml/compress/importer"
	rt "github.com/compressml/compress/runtime"
)

// mnist8 loads the ONNX model zoo's mnist-8 from the shared folder (the
// test is skipped where it is absent) and prepares it for training as
// `compress finetune` does.
func mnist8(t *testing.T) *rt.Graph {
	t.Helper()
	path := "/work/shared/models/mnist-8/model.onnx"
	if _, err := os.Stat(path); err != nil {
		t.Skipf("mnist-8 not available: %v", err)
	}
	g, err := importer.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := rt.FoldConstants(g); err != nil {
		t.Fatal(err)
	}
	rt.RemoveDeadCode(g)
	rt.MakeBatchDynamic(g)
	return g
}

// TestMNIST8Transfer runs the transfer recipe of the benchmark on a tiny
// synthetic data set: a new MatMul+Add head, both convolutions frozen,
// with and without the cached frozen prefix; then the model is saved and
// loaded back.
func TestMNIST8Transfer(t *testing.T) {
	ds := images28(t, 64, 4)
	run := func(cache bool) (*rt.Graph, *Result) {
		g := mnist8(t)
		h, err := ReplaceHead(g, HeadConfig{NumClasses: 4, Seed: 1})
		if err != nil {
			t.Fatal(err)
		}
		if w := g.Params[h.Weight].T.Shape; !slices.Equal(w, []int{256, 4}) || h.Bias == "" {
			t.Fatalf("new head %+v with weight %v", h, w)
		}
		trainable, err := (FreezeSpec{Freeze: []string{"Parameter5", "Parameter87"}}).Apply(g)
		if err != nil {
			t.Fatal(err)
		}
		for _, name := range trainable {
			if name == "Parameter5" || name == "Parameter87" {
				t.Fatalf("frozen convolution weight %s trains", name)
			}
		}
		res, err := Train(t.Context(), g, ds, nil, Config{Epochs: 2, BatchSize: 16, LR: 1e-3, Seed: 1, Threads: 2, CacheFrozen: cache})
		if err != nil {
			t.Fatal(err)
		}
		return g, res
	}
	plain, _ := run(false)
	cached, res := run(true)
	if !res.CachedFrozen {
		t.Errorf("the frozen convolution was not cached")
	}
	if d := diffParams(params(plain), params(cached), 1e-5); d != "" {
		t.Errorf("cached training differs: %s", d)
	}
	out := filepath.Join(t.TempDir(), "ft.onnx")
	if err := importer.Save(cached, out); err != nil {
		t.Fatal(err)
	}
	back, err := importer.Load(out)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(back.Outputs[0].Shape[1:], []int{4}) {
		t.Errorf("saved model's output %v", back.Outputs[0].Shape)
	}
	if acc := accuracy(t, back, ds); acc < 0.5 {
		t.Errorf("training accuracy of the saved model %.2f", acc)
	}
}

// images28 makes n 1x28x28 images of raw pixels (0..255) in classes
// (at most 4): class c has a bright 10x10 square in quadrant c, plus noise.
func images28(t testing.TB, n, classes int) *data.InMemory {
	t.Helper()
	r := rand.New(rand.NewPCG(28, 28))
	x := rt.New(rt.Float32, n, 1, 28, 28)
	labels := make([]int, n)
	for i := range labels {
		c := i % classes
		labels[i] = c
		img := x.F32[i*784 : (i+1)*784]
		for j := range img {
			img[j] = float32(40 * r.Float64())
		}
		y0, x0 := 2+14*(c/2), 2+14*(c%2)
		for y := y0; y < y0+10; y++ {
			for xx := x0; xx < x0+10; xx++ {
				img[y*28+xx] = float32(200 + 55*r.Float64())
			}
		}
	}
	ds, err := data.NewInMemory("squares", x, labels, classes)
	if err != nil {
		t.Fatal(err)
	}
	return ds
}
