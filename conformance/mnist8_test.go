package conformance

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/compressml/compress/importer"
	rt "github.com/compressml/compress/runtime"
)

// sharedDir is the project's shared material, beside the checkout.
const sharedDir = "../../shared"

// TestMNIST8ReferenceSets runs the ONNX Model Zoo's mnist-8 (CNTK, opset 8)
// on its three reference test sets, optimised and as given.
func TestMNIST8ReferenceSets(t *testing.T) {
	dir := filepath.Join(sharedDir, "models", "mnist-8")
	if _, err := os.Stat(filepath.Join(dir, "model.onnx")); err != nil {
		t.Skipf("mnist-8 not found at %s (the project's ../shared): %v", dir, err)
	}
	for _, noOpt := range []bool{false, true} {
		g, err := importer.Load(filepath.Join(dir, "model.onnx"))
		if err != nil {
			t.Fatal(err)
		}
		ex, err := rt.NewExecutor(g, rt.Options{Threads: 2, NoOptimize: noOpt})
		if err != nil {
			t.Fatal(err)
		}
		for i := 0; i < 3; i++ {
			set := filepath.Join(dir, fmt.Sprintf("test_data_set_%d", i))
			_, in, err := importer.ReadTensorFile(filepath.Join(set, "input_0.pb"))
			if err != nil {
				t.Fatal(err)
			}
			_, want, err := importer.ReadTensorFile(filepath.Join(set, "output_0.pb"))
			if err != nil {
				t.Fatal(err)
			}
			got, err := ex.Run(context.Background(), map[string]*rt.Tensor{g.Inputs[0].Name: in})
			if err != nil {
				t.Fatal(err)
			}
			if err := compareTol(got[g.Outputs[0].Name], want, 1e-3, 1e-3); err != nil {
				t.Errorf("set %d (NoOptimize %v): %v", i, noOpt, err)
			}
		}
	}
}
