//go:build ort

package runtime_test

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"github.com/compressml/compress/crosscheck"
	"github.com/compressml/compress/importer"
	rt "github.com/compressml/compress/runtime"
)

// TestQuantFixturesInONNXRuntime runs the quantised fixtures in
// onnxruntime: its outputs must match the stored numpy references (which
// checks that the fixtures follow onnxruntime's semantics) and compress's
// outputs on random inputs. Run with: go test -tags ort ./runtime/ -run ONNXRuntime
func TestQuantFixturesInONNXRuntime(t *testing.T) {
	path, err := crosscheck.InitORT()
	if errors.Is(err, crosscheck.ErrNoORT) && os.Getenv("COMPRESS_REQUIRE_ORT") != "1" {
		t.Skipf("skipping the onnxruntime cross-check: %v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("onnxruntime %s from %s", crosscheck.ORTVersion(), path)
	for _, fx := range quantFixtures {
		t.Run(fx.name, func(t *testing.T) {
			dir := filepath.Join("..", "testdata", "models", fx.name)
			model := filepath.Join(dir, "model.onnx")
			g, err := importer.Load(model, importer.LoadOptions{})
			if err != nil {
				t.Fatal(err)
			}
			ins, outs := crosscheck.GraphNames(g)
			s, err := crosscheck.NewORTSession(model, ins, outs, 1)
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			_, x, err := importer.ReadTensorFile(filepath.Join(dir, "test_data_set_0", "input_0.pb"))
			if err != nil {
				t.Fatal(err)
			}
			got, err := s.Run(map[string]*rt.Tensor{ins[0]: x})
			if err != nil {
				t.Fatal(err)
			}
			// onnxruntime against the stored reference.
			for i, name := range outs {
				_, want, err := importer.ReadTensorFile(filepath.Join(dir, "test_data_set_0", fmt.Sprintf("output_%d.pb", i)))
				if err != nil {
					t.Fatal(err)
				}
				compareQuantOutput(t, "onnxruntime "+name, got[name], want, fx)
			}
			// compress against onnxruntime on random inputs of batch 3.
			ex, err := rt.NewExecutor(g, rt.Options{Threads: 2})
			if err != nil {
				t.Fatal(err)
			}
			r := rand.New(rand.NewPCG(5, 6))
			for trial := 0; trial < 3; trial++ {
				shape := append([]int{3}, x.Shape[1:]...)
				xr := rt.New(rt.Float32, shape...)
				for i := range xr.F32 {
					xr.F32[i] = float32(r.NormFloat64() * 1.2)
				}
				want, err := s.Run(map[string]*rt.Tensor{ins[0]: xr})
				if err != nil {
					t.Fatal(err)
				}
				mine, err := ex.Run(context.Background(), map[string]*rt.Tensor{ins[0]: xr})
				if err != nil {
					t.Fatal(err)
				}
				for _, name := range outs {
					a, b := mine[name], want[name]
					diff, worst := 0, 0.0
					for i := 0; i < b.Len(); i++ {
						d := math.Abs(a.Float64At(i) - b.Float64At(i))
						if d != 0 {
							diff++
						}
						worst = math.Max(worst, d)
					}
					t.Logf("trial %d %s: %d of %d values differ from onnxruntime, worst %g", trial, name, diff, b.Len(), worst)
					tol := fx.floatTol + 1e-5
					if b.DType != rt.Float32 {
						tol = float64(fx.intTol)
					}
					if worst > tol {
						t.Errorf("trial %d %s: differs from onnxruntime by %g (tolerance %g)", trial, name, worst, tol)
					}
				}
			}
		})
	}
}
