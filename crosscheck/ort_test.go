//go:build ort

package crosscheck

import (
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/compressml/compress/importer"
	"github.com/compressml/compress/runtime"
)

// requireORT loads onnxruntime or skips the test when the library is absent
// (fails instead when COMPRESS_REQUIRE_ORT=1, as CI sets it, so a broken
// install cannot pass silently).
func requireORT(t *testing.T) {
	t.Helper()
	path, err := InitORT()
	if errors.Is(err, ErrNoORT) && os.Getenv("COMPRESS_REQUIRE_ORT") != "1" {
		t.Skipf("skipping the onnxruntime cross-check: %v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("onnxruntime %s from %s", ORTVersion(), path)
}

// crossModel is one model of the cross-check with the value range of its
// random inputs.
type crossModel struct {
	*Fixture
	lo, hi float32
}

// crossModels returns the testdata fixtures and, when present, mnist-8.
func crossModels(t *testing.T) []crossModel {
	t.Helper()
	var out []crossModel
	for _, f := range loadFixtures(t) {
		out = append(out, crossModel{f, -2, 2})
	}
	// The bundled model compress trained itself (and exported with its own
	// exporter): its outputs in onnxruntime must equal ours too.
	root, err := RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	lenet := filepath.Join(root, "testdata", "pretrained", "lenet5-mnist.onnx")
	out = append(out, crossModel{&Fixture{Name: "lenet5-mnist (trained by compress)", Dir: filepath.Dir(lenet), Model: lenet}, 0, 1})
	dir, err := MNIST8Dir()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "model.onnx")); err != nil {
		t.Logf("mnist-8 not checked: %v (set COMPRESS_MNIST8 to its directory)", err)
		return out
	}
	f, err := LoadFixture(dir)
	if err != nil {
		t.Fatal(err)
	}
	return append(out, crossModel{f, 0, 255}) // raw pixels, as mnist-8 expects
}

// hasDynamicBatch reports whether every data input's first dimension is
// dynamic.
func hasDynamicBatch(g *runtime.Graph) bool {
	ins := DataInputs(g)
	for _, in := range ins {
		if len(in.Shape) == 0 || in.Shape[0] >= 0 {
			return false
		}
	}
	return len(ins) > 0
}

// inputCases returns the named input sets of a model: its stored test sets
// and seeded random inputs at batch 1 (and 3 when the batch is dynamic).
func inputCases(t *testing.T, m crossModel, g *runtime.Graph) (names []string, cases []map[string]*runtime.Tensor) {
	t.Helper()
	for _, set := range m.Sets {
		feeds, err := set.Feeds(g)
		if err != nil {
			t.Fatal(err)
		}
		names = append(names, filepath.Base(set.Dir))
		cases = append(cases, feeds)
	}
	batches := []int{1}
	if hasDynamicBatch(g) {
		batches = append(batches, 3)
	}
	for i, b := range batches {
		feeds, err := RandomInputs(g, b, uint64(100+i), m.lo, m.hi)
		if err != nil {
			t.Fatal(err)
		}
		names = append(names, "random batch "+strconv.Itoa(b))
		cases = append(cases, feeds)
	}
	return names, cases
}

// TestMatchesONNXRuntime compares compress with onnxruntime (1 and 2 threads
// each) on every model, for the stored and for random inputs.
func TestMatchesONNXRuntime(t *testing.T) {
	requireORT(t)
	for _, m := range crossModels(t) {
		t.Run(m.Name, func(t *testing.T) {
			g, err := importer.Load(m.Model)
			if err != nil {
				t.Fatalf("importer.Load(%s): %v", m.Model, err)
			}
			ins, outs := GraphNames(g)
			names, cases := inputCases(t, m, g)
			for _, threads := range []int{1, 2} {
				sess, err := NewORTSession(m.Model, ins, outs, threads)
				if err != nil {
					t.Fatal(err)
				}
				defer sess.Close()
				for i, feeds := range cases {
					want, err := sess.Run(feeds)
					if err != nil {
						t.Fatalf("%s: %v", names[i], err)
					}
					got, err := RunCompress(g, threads, feeds)
					if err != nil {
						t.Fatalf("%s: compress: %v", names[i], err)
					}
					if err := CompareOutputs(got, want, RTol, ATol); err != nil {
						t.Errorf("threads %d, %s: compress vs onnxruntime: %v", threads, names[i], err)
					}
					for name, w := range want {
						if g, ok := got[name]; ok && runtime.SameShape(g.Shape, w.Shape) {
							a, r := MaxDiff(g, w)
							t.Logf("threads %d, %s, %s: max abs diff %.3g, max rel diff %.3g", threads, names[i], name, a, r)
						}
					}
				}
			}
		})
	}
}

// TestConvertLoadsInONNXRuntime saves every model with importer.Save (what
// `compress convert` does), opens the result in onnxruntime and checks that
// its outputs equal those of the original model in onnxruntime, and that
// compress gives the same outputs from the saved file.
func TestConvertLoadsInONNXRuntime(t *testing.T) {
	requireORT(t)
	for _, m := range crossModels(t) {
		t.Run(m.Name, func(t *testing.T) {
			g, err := importer.Load(m.Model)
			if err != nil {
				t.Fatalf("importer.Load(%s): %v", m.Model, err)
			}
			saved := filepath.Join(t.TempDir(), "converted.onnx")
			if err := importer.Save(g, saved); err != nil {
				t.Fatalf("importer.Save: %v", err)
			}
			g2, err := importer.Load(saved)
			if err != nil {
				t.Fatalf("reloading the converted model: %v", err)
			}
			ins, outs := GraphNames(g)
			orig, err := NewORTSession(m.Model, ins, outs, 1)
			if err != nil {
				t.Fatal(err)
			}
			defer orig.Close()
			conv, err := NewORTSession(saved, ins, outs, 1)
			if err != nil {
				t.Fatalf("onnxruntime refuses the converted model: %v", err)
			}
			defer conv.Close()
			names, cases := inputCases(t, m, g)
			for i, feeds := range cases {
				want, err := orig.Run(feeds)
				if err != nil {
					t.Fatalf("%s: original: %v", names[i], err)
				}
				got, err := conv.Run(feeds)
				if err != nil {
					t.Fatalf("%s: converted: %v", names[i], err)
				}
				if err := CompareOutputs(got, want, RTol, ATol); err != nil {
					t.Errorf("%s: onnxruntime on the converted model vs on the original: %v", names[i], err)
				}
				mine, err := RunCompress(g2, 1, feeds)
				if err != nil {
					t.Fatalf("%s: compress on the converted model: %v", names[i], err)
				}
				if err := CompareOutputs(mine, want, RTol, ATol); err != nil {
					t.Errorf("%s: compress on the converted model vs onnxruntime: %v", names[i], err)
				}
			}
		})
	}
}
