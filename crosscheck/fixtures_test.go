package crosscheck

import (
	"context"
	"fmt"
	"math"
	"testing"

	"github.com/compressml/compress/importer"
	"github.com/compressml/compress/runtime"
)

// loadFixtures returns the PyTorch-made fixtures of testdata/models.
func loadFixtures(t *testing.T) []*Fixture {
	t.Helper()
	fx, err := LoadPyTorchFixtures()
	if err != nil {
		t.Fatal(err)
	}
	return fx
}

// TestFixturesMatchPyTorch runs every PyTorch-made fixture through compress
// on 1 and 2 threads and compares with PyTorch's stored outputs.
func TestFixturesMatchPyTorch(t *testing.T) {
	for _, f := range loadFixtures(t) {
		t.Run(f.Name, func(t *testing.T) {
			g, err := importer.Load(f.Model)
			if err != nil {
				t.Fatalf("importer.Load(%s): %v", f.Model, err)
			}
			for _, threads := range []int{1, 2} {
				for _, set := range f.Sets {
					feeds, err := set.Feeds(g)
					if err != nil {
						t.Fatal(err)
					}
					want, err := set.Want(g)
					if err != nil {
						t.Fatal(err)
					}
					got, err := RunCompress(g, threads, feeds)
					if err != nil {
						t.Fatalf("threads %d: run: %v", threads, err)
					}
					if err := CompareOutputs(got, want, RTol, ATol); err != nil {
						t.Errorf("threads %d, %s: %v", threads, set.Dir, err)
					}
				}
			}
		})
	}
}

// TestFixturesDynamicBatch runs each fixture at batch sizes 1 and 3 and
// checks that every row equals the row computed alone at batch 1 (the rows
// of a batch are independent in these models), and that a repeated run on
// the same executor is bit-identical.
func TestFixturesDynamicBatch(t *testing.T) {
	for _, f := range loadFixtures(t) {
		t.Run(f.Name, func(t *testing.T) {
			g, err := importer.Load(f.Model)
			if err != nil {
				t.Fatalf("importer.Load(%s): %v", f.Model, err)
			}
			ex, err := runtime.NewExecutor(g, runtime.Options{Threads: 2})
			if err != nil {
				t.Fatal(err)
			}
			feeds3, err := RandomInputs(g, 3, 42, -2, 2)
			if err != nil {
				t.Fatal(err)
			}
			out3, err := ex.Run(context.Background(), feeds3)
			if err != nil {
				t.Fatalf("batch 3: %v", err)
			}
			again, err := ex.Run(context.Background(), feeds3)
			if err != nil {
				t.Fatalf("batch 3, second run: %v", err)
			}
			if err := CompareOutputs(again, out3, 0, 0); err != nil {
				t.Errorf("second run differs from the first: %v", err)
			}
			for row := 0; row < 3; row++ {
				feeds1 := map[string]*runtime.Tensor{}
				for name, x := range feeds3 {
					feeds1[name] = sliceRow(t, x, row)
				}
				out1, err := ex.Run(context.Background(), feeds1)
				if err != nil {
					t.Fatalf("batch 1: %v", err)
				}
				want := map[string]*runtime.Tensor{}
				for name, y := range out3 {
					want[name] = sliceRow(t, y, row)
				}
				if err := CompareOutputs(out1, want, RTol, ATol); err != nil {
					t.Errorf("row %d alone vs in a batch of 3: %v", row, err)
				}
			}
		})
	}
}

// sliceRow returns row i of x's leading axis, with that axis kept at size 1.
func sliceRow(t *testing.T, x *runtime.Tensor, i int) *runtime.Tensor {
	t.Helper()
	if len(x.Shape) == 0 || i >= x.Shape[0] || x.DType != runtime.Float32 || len(x.F32) != x.Len() {
		t.Fatalf("cannot take row %d of a %v tensor of shape %v holding %d floats", i, x.DType, x.Shape, len(x.F32))
	}
	n := runtime.NumElements(x.Shape[1:])
	shape := append([]int{1}, x.Shape[1:]...)
	return runtime.FromFloat32(append([]float32(nil), x.F32[i*n:(i+1)*n]...), shape...)
}

// TestCompare covers the tolerance logic used by every cross-check.
func TestCompare(t *testing.T) {
	mk := func(v ...float32) *runtime.Tensor { return runtime.FromFloat32(v, len(v)) }
	tests := []struct {
		name      string
		got, want *runtime.Tensor
		ok        bool
	}{
		{"equal", mk(1, 2, 3), mk(1, 2, 3), true},
		{"within rtol", mk(1000.05), mk(1000), true},
		{"beyond rtol", mk(1000.2), mk(1000), false},
		{"within atol near zero", mk(5e-6), mk(0), true},
		{"beyond atol near zero", mk(5e-5), mk(0), false},
		{"shape", mk(1, 2), mk(1, 2, 3), false},
		{"nan vs number", mk(float32(math.NaN())), mk(1), false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := Compare(tc.got, tc.want, RTol, ATol)
			if (err == nil) != tc.ok {
				t.Errorf("Compare = %v, want ok=%v", err, tc.ok)
			}
		})
	}
}

// ExampleCompare shows the tolerance rule.
func ExampleCompare() {
	got := runtime.FromFloat32([]float32{1.00005, 0}, 2)
	want := runtime.FromFloat32([]float32{1, 0}, 2)
	fmt.Println(Compare(got, want, RTol, ATol) == nil)
	// Output: true
}
