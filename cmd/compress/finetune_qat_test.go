package main

import (
	"encoding/json"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/compressml/compress/importer"
	"github.com/compressml/compress/models"
	rt "github.com/compressml/compress/runtime"
)

// quadrantMNIST writes train and test splits (idx files) of noisy 8x8
// images of 4 classes: class c has its quadrant c brighter.
func quadrantMNIST(t *testing.T, dir string) string {
	t.Helper()
	d := filepath.Join(dir, "quadrants")
	if err := os.MkdirAll(d, 0o755); err != nil {
		t.Fatal(err)
	}
	r := rand.New(rand.NewPCG(1, 2))
	for _, split := range []struct {
		prefix string
		n      int
	}{{"train", 1024}, {"t10k", 256}} {
		img := make([]byte, 64*split.n)
		lbl := make([]byte, split.n)
		for i := range split.n {
			c := r.IntN(4)
			lbl[i] = byte(c)
			for p := range 64 {
				v := 80 + 60*r.NormFloat64()
				if (p/8/4)*2+p%8/4 == c {
					v += 45
				}
				img[64*i+p] = byte(min(max(v, 0), 255))
			}
		}
		if err := os.WriteFile(filepath.Join(d, split.prefix+"-images-idx3-ubyte"), idx([]uint32{uint32(split.n), 8, 8}, img), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(d, split.prefix+"-labels-idx1-ubyte"), idx([]uint32{uint32(split.n)}, lbl), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return d
}

// TestFinetuneQAT trains a small ResNet, then runs finetune --qat on it and
// checks the int8 model and the summary.
func TestFinetuneQAT(t *testing.T) {
	dir := t.TempDir()
	d := quadrantMNIST(t, dir)
	g, err := models.Build("resnet", models.Config{Input: []int{1, 8, 8}, Classes: 4, Width: 0.25, Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	init, float, q := filepath.Join(dir, "init.onnx"), filepath.Join(dir, "float.onnx"), filepath.Join(dir, "q.onnx")
	if err := importer.Save(g, init); err != nil {
		t.Fatal(err)
	}
	mustRun(t, "finetune", "--model", init, "--data", d, "--scale", "0.00392156862745098", "--epochs", "3", "--batch", "32",
		"--lr", "3e-3", "--seed", "1", "--threads", "1", "--out", float, "--json")
	js := mustRun(t, "finetune", "--qat", "--model", float, "--data", d, "--scale", "0.00392156862745098", "--epochs", "1",
		"--batch", "32", "--lr", "1e-3", "--seed", "2", "--threads", "1", "--qat-calib-batches", "4", "--out", q, "--json")
	var r finetuneResult
	if err := json.Unmarshal([]byte(js), &r); err != nil {
		t.Fatalf("%v\n%s", err, js)
	}
	if r.QAT == nil || r.QAT.PTQAccuracy == nil || r.QAT.FloatAccuracy == nil || r.QAT.CalibExamples != 128 || len(r.QAT.Layers) == 0 {
		t.Fatalf("no QAT summary: %s", js)
	}
	t.Logf("float %.4f, PTQ %.4f, QAT %.4f", *r.QAT.FloatAccuracy, *r.QAT.PTQAccuracy, r.Accuracy)
	if *r.QAT.FloatAccuracy < 0.8 || r.Accuracy < *r.QAT.PTQAccuracy-0.02 {
		t.Errorf("accuracies: float %.4f, PTQ %.4f, QAT %.4f", *r.QAT.FloatAccuracy, *r.QAT.PTQAccuracy, r.Accuracy)
	}
	m, err := importer.Load(q)
	if err != nil {
		t.Fatal(err)
	}
	int8W := 0
	for _, n := range m.Nodes {
		if n.Domain != "" {
			t.Errorf("node %v of domain %q in the written model", n, n.Domain)
		}
		if p := m.Params[n.Input(0)]; n.OpType == "DequantizeLinear" && p != nil && p.T.DType == rt.Int8 {
			int8W++
		}
	}
	if int8W < 10 {
		t.Errorf("%d int8 weights, want one per layer", int8W)
	}
	text, errs, code := compress(t, "finetune", "--qat", "--model", float, "--data", d, "--scale", "0.00392156862745098", "--epochs", "1",
		"--batch", "32", "--lr", "1e-3", "--seed", "2", "--threads", "1", "--qat-calib-batches", "4", "--out", q)
	if code != 0 {
		t.Fatalf("finetune --qat: exit %d\n%s", code, errs)
	}
	for _, want := range []string{"int8 after QAT", "int8 post-training quantisation", "float32 input model"} {
		if !strings.Contains(text, want) {
			t.Errorf("summary lacks %q:\n%s", want, text)
		}
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--qat", "--freeze", "conv1"}, "does not go with --qat"},
		{[]string{"--qat", "--qat-calib-batches", "0"}, "positive number of batches"},
		{[]string{"--qat", "--calib-method", "median"}, "unknown"},
		{[]string{"--symmetric"}, "goes with --qat"},
	} {
		args := append([]string{"finetune", "--model", float, "--data", d, "--out", q}, tc.args...)
		_, errs, code := compress(t, args...)
		if code == 0 || !strings.Contains(errs, tc.want) {
			t.Errorf("compress %v: exit %d, stderr %q, want an error with %q", tc.args, code, errs, tc.want)
		}
	}
}
