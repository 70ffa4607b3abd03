package conformance

import (
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/compressml/compress/importer"
	rt "github.com/compressml/compress/runtime"
)

// nodeTestDir is where Debian's libonnx-testdata puts the node tests.
const nodeTestDir = "/usr/share/libonnx-testdata/data/node"

// outOfScope classifies tests compress does not claim to run, by the
// importer's error: each rule names what the test needs that compress
// deliberately lacks. Such tests are counted as not run, like those of
// unsupported ops.
var outOfScope = []struct{ match, reason string }{
	{"is not supported for graph inputs and outputs", "element types other than float32, int8, uint8, int32, int64 and bool (double, float16, bfloat16, int16, uint16/32/64, string)"},
	{"is not a tensor", "sequences, maps and optionals"},
	{"which is too old", "default-domain opsets below 7"},
	{"imports no opset of the default ONNX domain", "training-preview domain ops only"},
}

// excluded lists node tests of supported ops that are not expected to pass,
// with the reason. Keep it short and honest: every entry is a known gap.
var excluded = map[string]string{
	"test_training_dropout":              "the expected output was drawn with numpy's random generator; compress's masks are its own (seeded, deterministic)",
	"test_training_dropout_default":      "the expected output was drawn with numpy's random generator; compress's masks are its own (seeded, deterministic)",
	"test_training_dropout_default_mask": "the expected output was drawn with numpy's random generator; compress's masks are its own (seeded, deterministic)",
	"test_training_dropout_mask":         "the expected output was drawn with numpy's random generator; compress's masks are its own (seeded, deterministic)",
}

func TestONNXNodeTests(t *testing.T) {
	dir := os.Getenv("ONNX_NODE_TESTS")
	if dir == "" {
		dir = nodeTestDir
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Skipf("ONNX node tests not found at %s (apt-get install libonnx-testdata, or set ONNX_NODE_TESTS): %v", dir, err)
	}
	var passed, unsupported, skippedExcluded int
	scope := map[string]int{}
	var failed []string
	for _, e := range entries {
		if !e.IsDir() {
			continue
		}
		name := e.Name()
		tdir := filepath.Join(dir, name)
		err := runNodeTest(tdir)
		var un *rt.UnsupportedError
		switch {
		case errors.As(err, &un):
			unsupported++
			if reason, ok := excluded[name]; ok {
				t.Errorf("%s is excluded (%s) but uses unsupported ops: remove it from the list", name, reason)
			}
		case err != nil && outOfScopeReason(err) != "":
			scope[outOfScopeReason(err)]++
		case excluded[name] != "":
			skippedExcluded++
			if err == nil {
				t.Errorf("%s passes but is excluded (%s): remove it from the list", name, excluded[name])
			}
		case err != nil:
			failed = append(failed, fmt.Sprintf("%s: %v", name, err))
		default:
			passed++
		}
	}
	for name := range excluded {
		if _, err := os.Stat(filepath.Join(dir, name)); err != nil {
			t.Errorf("excluded test %s does not exist", name)
		}
	}
	sort.Strings(failed)
	for _, f := range failed {
		t.Error(f)
	}
	notRun := unsupported
	for reason, n := range scope {
		notRun += n
		t.Logf("not run: %d tests need %s", n, reason)
	}
	summary := fmt.Sprintf("ONNX node tests: %d passed, %d failed, %d excluded, %d not run (%d use ops compress does not implement, %d are out of scope)",
		passed, len(failed), skippedExcluded, notRun, unsupported, notRun-unsupported)
	t.Log(summary)
	fmt.Println(summary)
}

func outOfScopeReason(err error) string {
	for _, r := range outOfScope {
		if strings.Contains(err.Error(), r.match) {
			return r.reason
		}
	}
	return ""
}

// runNodeTest loads one test's model and checks every test_data_set_N.
func runNodeTest(dir string) error {
	g, err := importer.Load(filepath.Join(dir, "model.onnx"), importer.LoadOptions{AllowUnsupported: true})
	if err != nil {
		return err
	}
	if un := rt.UnsupportedOps(g); len(un) > 0 {
		return &rt.UnsupportedError{Nodes: un, Opset: g.Opset}
	}
	ex, err := rt.NewExecutor(g, rt.Options{Threads: 2})
	if err != nil {
		return err
	}
	sets, _ := filepath.Glob(filepath.Join(dir, "test_data_set_*"))
	if len(sets) == 0 {
		return fmt.Errorf("no test_data_set_* in %s", dir)
	}
	inputs := realInputs(g)
	for _, set := range sets {
		feeds := map[string]*rt.Tensor{}
		for i, in := range inputs {
			_, tt, err := importer.ReadTensorFile(filepath.Join(set, fmt.Sprintf("input_%d.pb", i)))
			if err != nil {
				return err
			}
			feeds[in] = tt
		}
		got, err := ex.Run(context.Background(), feeds)
		if err != nil {
			return err
		}
		for i, out := range g.Outputs {
			_, want, err := importer.ReadTensorFile(filepath.Join(set, fmt.Sprintf("output_%d.pb", i)))
			if err != nil {
				return err
			}
			if err := compare(got[out.Name], want); err != nil {
				return fmt.Errorf("%s output %q: %w", filepath.Base(set), out.Name, err)
			}
		}
	}
	return nil
}

func realInputs(g *rt.Graph) []string {
	var names []string
	for _, in := range g.Inputs {
		if _, isParam := g.Params[in.Name]; !isParam {
			names = append(names, in.Name)
		}
	}
	return names
}

// compare checks got against want with the ONNX backend test tolerances.
func compare(got, want *rt.Tensor) error { return compareTol(got, want, 1e-3, 1e-7) }

// compareTol checks |got-want| <= atol + rtol*|want| element by element.
func compareTol(got, want *rt.Tensor, rtol, atol float64) error {
	if got == nil {
		return errors.New("missing")
	}
	if got.DType != want.DType {
		return fmt.Errorf("dtype %v, want %v", got.DType, want.DType)
	}
	if !rt.SameShape(got.Shape, want.Shape) {
		return fmt.Errorf("shape %v, want %v", got.Shape, want.Shape)
	}
	var bad []string
	for i := 0; i < want.Len(); i++ {
		g, w := got.Float64At(i), want.Float64At(i)
		if math.IsNaN(w) && math.IsNaN(g) || g == w {
			continue
		}
		if math.Abs(g-w) > atol+rtol*math.Abs(w) {
			bad = append(bad, fmt.Sprintf("[%d] %g want %g", i, g, w))
		}
	}
	if len(bad) > 0 {
		if len(bad) > 3 {
			bad = append(bad[:3], fmt.Sprintf("... (%d of %d differ)", len(bad), want.Len()))
		}
		return errors.New(strings.Join(bad, ", "))
	}
	return nil
}
