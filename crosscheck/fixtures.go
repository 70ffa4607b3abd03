package crosscheck

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/compressml/compress/importer"
	"github.com/compressml/compress/runtime"
)

// Default tolerances of the cross-checks: |got-want| <= ATol + RTol*|want|.
const (
	RTol = 1e-4
	ATol = 1e-5
)

// modulePath is the module line that marks the repository root.
const modulePath = "module github.com/compressml/compress"

// RepoRoot returns the root of the compress repository, found by walking up
// from the working directory to the go.mod of module
// github.com/compressml/compress.
func RepoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		data, err := os.ReadFile(filepath.Join(dir, "go.mod"))
		if err == nil && strings.Contains(string(data), modulePath+"\n") {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("repository root not found: no go.mod of github.com/compressml/compress above the working directory")
		}
		dir = parent
	}
}

// FixturesDir returns testdata/models of the repository.
func FixturesDir() (string, error) {
	root, err := RepoRoot()
	if err != nil {
		return "", err
	}
	return filepath.Join(root, "testdata", "models"), nil
}

// MNIST8Dir returns the directory of the third-party mnist-8 model: the
// COMPRESS_MNIST8 environment variable if set, else ../shared/models/mnist-8
// next to the repository. The directory may not exist.
func MNIST8Dir() (string, error) {
	if d := os.Getenv("COMPRESS_MNIST8"); d != "" {
		return d, nil
	}
	root, err := RepoRoot()
	if err != nil {
		return "", err
	}
	return filepath.Join(filepath.Dir(root), "shared", "models", "mnist-8"), nil
}

// NamedTensor is one tensor of a test data set with the name stored in its
// .pb file (possibly empty).
type NamedTensor struct {
	Name string
	T    *runtime.Tensor
}

// TestSet is one test_data_set_N directory: inputs input_K.pb and the
// reference outputs output_K.pb, in K order.
type TestSet struct {
	Dir     string
	Inputs  []NamedTensor
	Outputs []NamedTensor
}

// Fixture is a model directory in the ONNX backend-test layout: model.onnx
// and test_data_set_N/ subdirectories.
type Fixture struct {
	Name  string
	Dir   string
	Model string // path of model.onnx
	Sets  []TestSet
}

// PyTorchFixtureNames returns the models testdata/make_fixtures.py writes
// under testdata/models (other scripts add other models there, checked by
// their own tests). Keep it in step with the script.
func PyTorchFixtureNames() []string {
	return []string{"mlp_op13", "mlp_op9", "resnet_fused_op13", "resnet_op11", "resnet_op13", "resnet_op17"}
}

// LoadPyTorchFixtures loads every model of PyTorchFixtureNames from
// testdata/models; a missing one is an error that says how to regenerate.
func LoadPyTorchFixtures() ([]*Fixture, error) {
	dir, err := FixturesDir()
	if err != nil {
		return nil, err
	}
	var out []*Fixture
	for _, name := range PyTorchFixtureNames() {
		f, err := LoadFixture(filepath.Join(dir, name))
		if err != nil {
			return nil, fmt.Errorf("%w; regenerate the fixtures with /usr/bin/python3 testdata/make_fixtures.py", err)
		}
		out = append(out, f)
	}
	return out, nil
}

// LoadFixture reads the test data sets of the model directory dir.
func LoadFixture(dir string) (*Fixture, error) {
	f := &Fixture{Name: filepath.Base(dir), Dir: dir, Model: filepath.Join(dir, "model.onnx")}
	sets, err := filepath.Glob(filepath.Join(dir, "test_data_set_*"))
	if err != nil {
		return nil, err
	}
	sort.Strings(sets)
	for _, sd := range sets {
		ts := TestSet{Dir: sd}
		for _, kind := range []string{"input", "output"} {
			for k := 0; ; k++ {
				p := filepath.Join(sd, fmt.Sprintf("%s_%d.pb", kind, k))
				if _, err := os.Stat(p); err != nil {
					break
				}
				name, t, err := importer.ReadTensorFile(p)
				if err != nil {
					return nil, fmt.Errorf("fixture %s: %w", f.Name, err)
				}
				nt := NamedTensor{Name: name, T: t}
				if kind == "input" {
					ts.Inputs = append(ts.Inputs, nt)
				} else {
					ts.Outputs = append(ts.Outputs, nt)
				}
			}
		}
		if len(ts.Inputs) == 0 || len(ts.Outputs) == 0 {
			return nil, fmt.Errorf("fixture %s: %s has no input_0.pb or output_0.pb", f.Name, sd)
		}
		f.Sets = append(f.Sets, ts)
	}
	if len(f.Sets) == 0 {
		if _, err := os.Stat(f.Model); err != nil {
			return nil, fmt.Errorf("fixture %s: %w", f.Name, err)
		}
		return nil, fmt.Errorf("fixture %s: no test_data_set_* directory in %s", f.Name, dir)
	}
	return f, nil
}

// DataInputs returns the graph inputs that are not parameters
// (initializers), in graph order.
func DataInputs(g *runtime.Graph) []runtime.ValueInfo {
	var out []runtime.ValueInfo
	for _, in := range g.Inputs {
		if _, ok := g.Params[in.Name]; ok {
			continue
		}
		out = append(out, in)
	}
	return out
}

// Feeds maps the set's inputs to graph input names: by the name stored in
// the .pb file when it names a graph input, else by position.
func (s *TestSet) Feeds(g *runtime.Graph) (map[string]*runtime.Tensor, error) {
	ins := DataInputs(g)
	if len(s.Inputs) != len(ins) {
		return nil, fmt.Errorf("%s: %d input files for %d graph inputs", s.Dir, len(s.Inputs), len(ins))
	}
	known := map[string]bool{}
	for _, in := range ins {
		known[in.Name] = true
	}
	feeds := map[string]*runtime.Tensor{}
	for i, nt := range s.Inputs {
		name := nt.Name
		if !known[name] {
			name = ins[i].Name
		}
		feeds[name] = nt.T
	}
	return feeds, nil
}

// Want maps the set's reference outputs to graph output names, by the name
// stored in the .pb file when it names a graph output, else by position.
func (s *TestSet) Want(g *runtime.Graph) (map[string]*runtime.Tensor, error) {
	if len(s.Outputs) != len(g.Outputs) {
		return nil, fmt.Errorf("%s: %d output files for %d graph outputs", s.Dir, len(s.Outputs), len(g.Outputs))
	}
	known := map[string]bool{}
	for _, o := range g.Outputs {
		known[o.Name] = true
	}
	want := map[string]*runtime.Tensor{}
	for i, nt := range s.Outputs {
		name := nt.Name
		if !known[name] {
			name = g.Outputs[i].Name
		}
		want[name] = nt.T
	}
	return want, nil
}

// RandomInputs makes one float32 tensor per data input of g, with every
// dynamic dimension set to batch and values uniform in [lo, hi), from a
// generator seeded with seed (same seed, same tensors).
func RandomInputs(g *runtime.Graph, batch int, seed uint64, lo, hi float32) (map[string]*runtime.Tensor, error) {
	r := rand.New(rand.NewPCG(seed, 0x636f6d7072657373))
	feeds := map[string]*runtime.Tensor{}
	for _, in := range DataInputs(g) {
		if in.DType != runtime.Float32 {
			return nil, fmt.Errorf("input %q is %v; RandomInputs makes float32 only", in.Name, in.DType)
		}
		shape := make([]int, len(in.Shape))
		for i, d := range in.Shape {
			if d < 0 {
				d = batch
			}
			shape[i] = d
		}
		t := runtime.New(runtime.Float32, shape...)
		for i := range t.F32 {
			t.F32[i] = lo + (hi-lo)*r.Float32()
		}
		feeds[in.Name] = t
	}
	return feeds, nil
}

// RunCompress runs g with compress's executor on threads threads.
func RunCompress(g *runtime.Graph, threads int, feeds map[string]*runtime.Tensor) (map[string]*runtime.Tensor, error) {
	ex, err := runtime.NewExecutor(g, runtime.Options{Threads: threads})
	if err != nil {
		return nil, err
	}
	return ex.Run(context.Background(), feeds)
}

// Compare reports whether got matches want elementwise within
// |got-want| <= atol + rtol*|want|, with equal shapes and dtypes. The error
// names the worst element.
func Compare(got, want *runtime.Tensor, rtol, atol float64) error {
	if got == nil || want == nil {
		return errors.New("missing tensor")
	}
	if got.DType != want.DType {
		return fmt.Errorf("dtype %v, want %v", got.DType, want.DType)
	}
	if !runtime.SameShape(got.Shape, want.Shape) {
		return fmt.Errorf("shape %v, want %v", got.Shape, want.Shape)
	}
	n := runtime.NumElements(want.Shape)
	if dataLen(got) != n || dataLen(want) != n {
		return fmt.Errorf("shape %v holds %d elements but the tensors hold %d (got) and %d (want)", want.Shape, n, dataLen(got), dataLen(want))
	}
	worst, worstExcess := -1, 0.0
	var maxAbs float64
	for i := 0; i < n; i++ {
		g, w := got.Float64At(i), want.Float64At(i)
		if math.IsNaN(g) || math.IsNaN(w) {
			if math.IsNaN(g) != math.IsNaN(w) {
				return fmt.Errorf("element %d: got %v, want %v", i, g, w)
			}
			continue
		}
		d := math.Abs(g - w)
		if math.IsInf(w, 0) && g == w {
			d = 0
		}
		maxAbs = math.Max(maxAbs, d)
		if ex := d - (atol + rtol*math.Abs(w)); ex > 0 && (worst < 0 || ex > worstExcess) {
			worst, worstExcess = i, ex
		}
	}
	if worst >= 0 {
		return fmt.Errorf("element %d (of %d, shape %v): got %.9g, want %.9g; max abs diff %.3g exceeds atol %g + rtol %g", worst, n, want.Shape,
			got.Float64At(worst), want.Float64At(worst), maxAbs, atol, rtol)
	}
	return nil
}

// dataLen is the length of t's data slice for its dtype.
func dataLen(t *runtime.Tensor) int {
	switch t.DType {
	case runtime.Float32:
		return len(t.F32)
	case runtime.Int8:
		return len(t.I8)
	case runtime.Uint8:
		return len(t.U8)
	case runtime.Int32:
		return len(t.I32)
	case runtime.Int64:
		return len(t.I64)
	case runtime.Bool:
		return len(t.B)
	}
	return -1
}

// MaxDiff returns the largest absolute and relative (to max(|want|, 1e-6))
// elementwise differences between same-shaped tensors.
func MaxDiff(got, want *runtime.Tensor) (abs, rel float64) {
	n := min(dataLen(got), dataLen(want))
	for i := 0; i < n; i++ {
		g, w := got.Float64At(i), want.Float64At(i)
		d := math.Abs(g - w)
		abs = math.Max(abs, d)
		rel = math.Max(rel, d/math.Max(math.Abs(w), 1e-6))
	}
	return abs, rel
}

// CompareOutputs compares every output of want with the one of the same
// name in got.
func CompareOutputs(got, want map[string]*runtime.Tensor, rtol, atol float64) error {
	names := make([]string, 0, len(want))
	for name := range want {
		names = append(names, name)
	}
	sort.Strings(names)
	var errs []error
	for _, name := range names {
		g, ok := got[name]
		if !ok {
			errs = append(errs, fmt.Errorf("output %q missing", name))
			continue
		}
		if err := Compare(g, want[name], rtol, atol); err != nil {
			errs = append(errs, fmt.Errorf("output %q: %w", name, err))
		}
	}
	return errors.Join(errs...)
}
