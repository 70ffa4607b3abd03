package runtime_test

import (
	"context"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/compressml/compress/importer"
	rt "github.com/compressml/compress/runtime"
)

// Models quantised by onnxruntime's conventions (testdata/models/quant_*,
// written by testdata/make_quant_fixtures.py with numpy reference outputs):
// they must import and run with matching outputs.

// quantFixture says how closely a fixture's outputs must match.
type quantFixture struct {
	name string
	// intTol is the largest difference allowed on 8-bit outputs; floatTol
	// the absolute difference on float outputs (plus 1e-5 relative; 0
	// demands bit-equal floats).
	intTol   int32
	floatTol float64
	// fused lists op types the optimised graph must not contain any more
	// (QDQ patterns that must have been rewritten to integer ops), and
	// maxDQ bounds the DequantizeLinear nodes left (-1: any).
	fused []string
	maxDQ int
}

var quantFixtures = []quantFixture{
	// QOperator and dynamic: the reference does onnxruntime's float32
	// arithmetic step by step, so the results are exact.
	{name: "quant_qoperator_cnn", intTol: 0, floatTol: 0, maxDQ: -1},
	// The dynamic chains fuse into QConv/QGemm with float outputs, which
	// are bit-identical to Cast -> Mul -> Add.
	{name: "quant_dynamic", intTol: 0, floatTol: 0, fused: []string{"ConvInteger", "MatMulInteger", "Cast", "Mul", "Add", "Relu"}, maxDQ: -1},
	// QDQ: the reference is the float graph; the fused integer ops agree up
	// to rounding ties (one step) and the float bias rounded to int32.
	{name: "quant_qdq_cnn", intTol: 1, floatTol: 0.02, fused: []string{"Conv", "Gemm", "MatMul", "Add", "GlobalAveragePool"}, maxDQ: 1},
}

func TestQuantFixtures(t *testing.T) {
	for _, fx := range quantFixtures {
		t.Run(fx.name, func(t *testing.T) {
			dir := filepath.Join("..", "testdata", "models", fx.name)
			if _, err := os.Stat(dir); err != nil {
				t.Fatalf("fixture missing (run /usr/bin/python3 testdata/make_quant_fixtures.py): %v", err)
			}
			g, err := importer.Load(filepath.Join(dir, "model.onnx"), importer.LoadOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if un := rt.UnsupportedOps(g); len(un) > 0 {
				t.Fatalf("unsupported ops: %v", un)
			}
			_, x, err := importer.ReadTensorFile(filepath.Join(dir, "test_data_set_0", "input_0.pb"))
			if err != nil {
				t.Fatal(err)
			}
			var wants []*rt.Tensor
			for i := range g.Outputs {
				_, w, err := importer.ReadTensorFile(filepath.Join(dir, "test_data_set_0", fmt.Sprintf("output_%d.pb", i)))
				if err != nil {
					t.Fatal(err)
				}
				wants = append(wants, w)
			}
			for _, threads := range []int{1, 2} {
				ex, err := rt.NewExecutor(g, rt.Options{Threads: threads})
				if err != nil {
					t.Fatal(err)
				}
				dq := 0
				for _, n := range ex.Graph().Nodes {
					for _, op := range fx.fused {
						if n.OpType == op && n.Domain == "" {
							t.Errorf("%s node %q was not fused into an integer op", op, n.Name)
						}
					}
					if n.OpType == "DequantizeLinear" {
						dq++
					}
				}
				if fx.maxDQ >= 0 && dq > fx.maxDQ {
					t.Errorf("%d DequantizeLinear nodes left after fusion, want at most %d", dq, fx.maxDQ)
				}
				got, err := ex.Run(context.Background(), map[string]*rt.Tensor{g.Inputs[0].Name: x})
				if err != nil {
					t.Fatal(err)
				}
				for i, o := range g.Outputs {
					compareQuantOutput(t, fmt.Sprintf("%s (%d threads)", o.Name, threads), got[o.Name], wants[i], fx)
				}
			}
		})
	}
}

func compareQuantOutput(t *testing.T, what string, got, want *rt.Tensor, fx quantFixture) {
	t.Helper()
	if got == nil || got.DType != want.DType || !rt.SameShape(got.Shape, want.Shape) {
		t.Fatalf("%s: got %v, want %v %v", what, got, want.DType, want.Shape)
	}
	bad, exact := 0, 0
	for i := 0; i < want.Len(); i++ {
		g, w := got.Float64At(i), want.Float64At(i)
		if g == w {
			exact++
			continue
		}
		tol := fx.floatTol
		if tol > 0 {
			tol += 1e-5 * math.Abs(w)
		}
		if want.DType != rt.Float32 {
			tol = float64(fx.intTol)
		}
		if math.Abs(g-w) > tol {
			if bad < 5 {
				t.Errorf("%s: [%d] = %g, want %g", what, i, g, w)
			}
			bad++
		}
	}
	if bad > 0 {
		t.Errorf("%s: %d of %d values differ", what, bad, want.Len())
	}
	t.Logf("%s: %d of %d values exact", what, exact, want.Len())
}
