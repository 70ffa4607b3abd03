package main

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/compressml/compress/eval"
	"github.com/compressml/compress/importer"
	"github.com/compressml/compress/models"
	rt "github.com/compressml/compress/runtime"
)

// TestPruneMNIST8 is the acceptance check: --sparsity 0.5 on mnist-8
// without data zeroes exactly half of the weights of each pruned layer
// (the middle convolution; the first and last layers stay dense) and the
// table says so.
func TestPruneMNIST8(t *testing.T) {
	model := filepath.Join(sharedModel(t), "model.onnx")
	dir := t.TempDir()
	out := filepath.Join(dir, "pruned.onnx")
	js := mustRun(t, "prune", "--model", model, "--sparsity", "0.5", "--out", out, "--bench-time", "0", "--json")
	var r pruneResult
	if err := json.Unmarshal([]byte(js), &r); err != nil {
		t.Fatalf("%v\n%s", err, js)
	}
	pruned := 0
	for _, l := range r.Layers {
		half := l.Params / 2
		switch {
		case l.Pruned:
			pruned++
			if l.NonZeros != half || l.Sparsity != 0.5 {
				t.Errorf("layer %s: %d non-zeros of %d (sparsity %v), want exactly half", l.Layer, l.NonZeros, l.Params, l.Sparsity)
			}
		case l.NonZeros != l.Params:
			t.Errorf("dense layer %s has %d zeros", l.Layer, l.Params-l.NonZeros)
		}
	}
	if pruned != 1 || r.Before.NonZeros-r.After.NonZeros != 1600 {
		t.Errorf("%d layers pruned, %d weights removed; want 1 and 1600", pruned, r.Before.NonZeros-r.After.NonZeros)
	}
	g, err := importer.Load(out)
	if err != nil {
		t.Fatal(err)
	}
	zeros := 0
	for _, v := range g.Params["Parameter87"].T.F32 {
		if v == 0 {
			zeros++
		}
	}
	if zeros != 1600 {
		t.Errorf("the written Convolution110 weight has %d zeros, want 1600", zeros)
	}
	text := mustRun(t, "prune", "--model", model, "--sparsity", "0.5", "--out", out, "--bench-time", "0")
	for _, want := range []string{"Convolution110", "1600", "50.0%", "dense", "non-zeros", "gzip size"} {
		if !strings.Contains(text, want) {
			t.Errorf("the table lacks %q:\n%s", want, text)
		}
	}
}

func TestPruneErrors(t *testing.T) {
	model := filepath.Join(sharedModel(t), "model.onnx")
	dir := t.TempDir()
	out := filepath.Join(dir, "out.onnx")
	plan := filepath.Join(dir, "plan.json")
	if err := os.WriteFile(plan, []byte(`{"Convolution110": 0.5, "conv9": 0.3}`), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"--sparsity", "1"}, "sparsity 1 is outside [0, 1)"},
		{[]string{"--sparsity", "-0.2"}, "sparsity -0.2 is outside [0, 1)"},
		{[]string{}, "missing --sparsity"},
		{[]string{"--pattern", "2:4", "--include-first-last"}, `layer "Convolution28" (Conv, weight Parameter5 [8 1 5 5]): the reduction dimension (in_channels*kh*kw = 25) is not divisible by M=4`},
		{[]string{"--pattern", "4:2"}, "want N:M with 1 <= N < M"},
		{[]string{"--plan", plan}, "the plan names 1 layer(s) the model does not have: conv9"},
		{[]string{"--sparsity", "0.5", "--exclude", "nothing*"}, `--exclude "nothing*" matches no prunable layer`},
		{[]string{"--sparsity", "0.5", "--method", "random"}, `method "random"`},
		{[]string{"--sparsity", "0.5", "--schedule", "cosine"}, `--schedule "cosine": use oneshot or gradual`},
		{[]string{"--sparsity", "0.5", "--sparse-threshold", "-1"}, "--sparse-threshold -1: give 0"},
	}
	for _, tc := range tests {
		args := append([]string{"prune", "--model", model, "--out", out, "--bench-time", "0"}, tc.args...)
		_, errs, code := compress(t, args...)
		if code == 0 || !strings.Contains(errs, tc.want) {
			t.Errorf("compress %s: exit %d, stderr %q; want an error containing %q", strings.Join(tc.args, " "), code, errs, tc.want)
		}
		if _, err := os.Stat(out); err == nil {
			t.Fatalf("compress %s wrote %s despite the error", strings.Join(tc.args, " "), out)
		}
	}
}

// TestPruneChannelResNet: 50% structured pruning of the built-in ResNet
// gives at least 2x fewer parameters and a model that runs.
func TestPruneChannelResNet(t *testing.T) {
	dir := t.TempDir()
	g, err := models.Build("resnet", models.Config{Input: []int{1, 28, 28}, Classes: 10, Seed: 3})
	if err != nil {
		t.Fatal(err)
	}
	in, out := filepath.Join(dir, "resnet.onnx"), filepath.Join(dir, "small.onnx")
	if err := importer.Save(g, in); err != nil {
		t.Fatal(err)
	}
	js := mustRun(t, "prune", "--model", in, "--method", "channel", "--sparsity", "0.5", "--out", out, "--bench-time", "0", "--json")
	var r pruneResult
	if err := json.Unmarshal([]byte(js), &r); err != nil {
		t.Fatalf("%v\n%s", err, js)
	}
	if float64(r.Before.Params) < 2*float64(r.After.Params) {
		t.Errorf("%d -> %d parameters, want at least 2x fewer", r.Before.Params, r.After.Params)
	}
	small, err := importer.Load(out)
	if err != nil {
		t.Fatal(err)
	}
	ex, err := rt.NewExecutor(small, rt.Options{Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	y, err := ex.Run(context.Background(), eval.RandomInputs(small, ex.InputShapes(2), 1))
	if err != nil {
		t.Fatalf("running the pruned model: %v", err)
	}
	if s := y[models.OutputName].Shape; len(s) != 2 || s[0] != 2 || s[1] != 10 {
		t.Errorf("the pruned model's output has shape %v", s)
	}
}

func TestSensitivityMNIST8(t *testing.T) {
	model := filepath.Join(sharedModel(t), "model.onnx")
	data := mnistDir(t)
	dir := t.TempDir()
	plan, chart := filepath.Join(dir, "plan.json"), filepath.Join(dir, "chart.png")
	text, errs, code := compress(t, "sensitivity", "--model", model, "--data", data, "--limit", "200",
		"--sparsities", "0.5,0.9", "--plan", plan, "--chart", chart)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	for _, want := range []string{"baseline accuracy", "Convolution110", "50%", "90%", "wrote plan"} {
		if !strings.Contains(text, want) {
			t.Errorf("output lacks %q:\n%s", want, text)
		}
	}
	if st, err := os.Stat(chart); err != nil || st.Size() < 1000 {
		t.Errorf("chart: %v", err)
	}
	out := filepath.Join(dir, "planned.onnx")
	mustRun(t, "prune", "--model", model, "--plan", plan, "--out", out, "--bench-time", "0", "--json")
}
