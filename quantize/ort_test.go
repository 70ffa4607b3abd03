//go:build ort

package quantize

import (
	"context"
	"errors"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/compressml/compress/crosscheck"
	"github.com/compressml/compress/data"
	"github.com/compressml/compress/importer"
	"github.com/compressml/compress/models"
	rt "github.com/compressml/compress/runtime"
)

// TestExportsRunInONNXRuntime quantises LeNet-5 (static QDQ, QOperator,
// dynamic) and checks that onnxruntime loads every export and gives the
// same logits as compress, up to a few quantisation steps.
func TestExportsRunInONNXRuntime(t *testing.T) {
	if _, err := crosscheck.InitORT(); err != nil {
		if errors.Is(err, crosscheck.ErrNoORT) && os.Getenv("COMPRESS_REQUIRE_ORT") != "1" {
			t.Skip(err)
		}
		t.Fatal(err)
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
	qdq, _, err := Static(context.Background(), g, train, cfg)
	if err != nil {
		t.Fatal(err)
	}
	qop, _ := ToQOperator(qdq)
	dyn, _, err := Dynamic(g, cfg)
	if err != nil {
		t.Fatal(err)
	}
	// A batch of 32 test images.
	x := rt.New(rt.Float32, 32, 1, 28, 28)
	for i := range 32 {
		if _, err := test.Example(i, x.F32[i*784:(i+1)*784]); err != nil {
			t.Fatal(err)
		}
	}
	if err := pre.Apply(x.F32, x.Shape); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		g    *rt.Graph
	}{{"qdq", qdq}, {"qoperator", qop}, {"dynamic", dyn}} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), tc.name+".onnx")
			if err := importer.Save(tc.g, path); err != nil {
				t.Fatal(err)
			}
			ins, outs := crosscheck.GraphNames(tc.g)
			s, err := crosscheck.NewORTSession(path, ins, outs, 1)
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			feeds := map[string]*rt.Tensor{ins[0]: x}
			want, err := s.Run(feeds)
			if err != nil {
				t.Fatal(err)
			}
			got, err := crosscheck.RunCompress(tc.g, 1, feeds)
			if err != nil {
				t.Fatal(err)
			}
			a, b := got[outs[0]].F32, want[outs[0]].F32
			maxd, agree := 0.0, 0
			for i := range 32 {
				if argmax(a[i*10:(i+1)*10]) == argmax(b[i*10:(i+1)*10]) {
					agree++
				}
			}
			for i := range a {
				maxd = math.Max(maxd, math.Abs(float64(a[i]-b[i])))
			}
			t.Logf("%s: max |ours - onnxruntime| = %.4g, argmax agreement %d/32, SQNR %.1f dB", tc.name, maxd, agree, SQNR(b, a))
			fl, err := crosscheck.RunCompress(g, 1, feeds)
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("%s: SQNR of onnxruntime's int8 logits against float: %.1f dB", tc.name, SQNR(fl[outs[0]].F32, b))
			if agree < 31 || SQNR(b, a) < 25 {
				t.Errorf("%s: outputs differ from onnxruntime's (max diff %.4g, agreement %d/32)", tc.name, maxd, agree)
			}
		})
	}
}

func argmax(v []float32) int {
	best := 0
	for i, x := range v {
		if x > v[best] {
			best = i
		}
	}
	return best
}

// TestResidualQDQInONNXRuntime quantises the project's ResNet-style CNN
// (residual Adds, BatchNorm, GlobalAveragePool) to QDQ and checks that
// onnxruntime runs the export with the same results as compress, whose
// runtime fuses each residual Add into the convolution before it
// (QConvAdd): the uint8 outputs of the residual blocks within one
// quantisation step, the logits within a small tolerance.
func TestResidualQDQInONNXRuntime(t *testing.T) {
	if _, err := crosscheck.InitORT(); err != nil {
		if errors.Is(err, crosscheck.ErrNoORT) && os.Getenv("COMPRESS_REQUIRE_ORT") != "1" {
			t.Skip(err)
		}
		t.Fatal(err)
	}
	g, err := models.Build("resnet", models.Config{Input: []int{1, 28, 28}, Classes: 10, Seed: 7})
	if err != nil {
		t.Fatal(err)
	}
	train, test := loadMNIST(t)
	pre := data.Preprocess{Scale: 1.0 / 255}
	cfg := DefaultConfig()
	cfg.Preprocess = pre
	cfg.CalibSize = 64
	qdq, _, err := Static(context.Background(), g, train, cfg)
	if err != nil {
		t.Fatal(err)
	}
	// The residual blocks' quantised outputs become graph outputs too, so
	// that the uint8 values can be compared.
	var blocks []string
	for _, n := range qdq.Nodes {
		if n.OpType == "QuantizeLinear" && strings.HasSuffix(n.Outputs[0], "relu2_quantized") {
			blocks = append(blocks, n.Outputs[0])
			qdq.Outputs = append(qdq.Outputs, rt.ValueInfo{Name: n.Outputs[0], DType: rt.Uint8, Shape: []int{-1, -1, -1, -1}})
		}
	}
	if len(blocks) == 0 {
		t.Fatal("no quantised residual block output in the export")
	}
	fused := qdq.Clone()
	rt.FuseQDQ(fused)
	adds := 0
	for _, n := range fused.Nodes {
		if n.OpType == "QConvAdd" {
			adds++
		}
		if n.OpType == "Add" {
			t.Errorf("residual Add %s was not fused", n.Name)
		}
	}
	if adds != 3 {
		t.Errorf("FuseQDQ made %d QConvAdd nodes, want 3 (one per residual block)", adds)
	}
	const batch = 16
	x := rt.New(rt.Float32, batch, 1, 28, 28)
	for i := range batch {
		if _, err := test.Example(i, x.F32[i*784:(i+1)*784]); err != nil {
			t.Fatal(err)
		}
	}
	if err := pre.Apply(x.F32, x.Shape); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "resnet-qdq.onnx")
	if err := importer.Save(qdq, path); err != nil {
		t.Fatal(err)
	}
	ins, outs := crosscheck.GraphNames(qdq)
	s, err := crosscheck.NewORTSession(path, ins, outs, 1)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	feeds := map[string]*rt.Tensor{ins[0]: x}
	want, err := s.Run(feeds)
	if err != nil {
		t.Fatal(err)
	}
	for _, threads := range []int{1, 2} {
		got, err := crosscheck.RunCompress(qdq, threads, feeds)
		if err != nil {
			t.Fatal(err)
		}
		for _, name := range blocks {
			a, b := got[name], want[name]
			if a == nil || b == nil || a.DType != rt.Uint8 || b.DType != rt.Uint8 || len(a.U8) != len(b.U8) {
				t.Fatalf("%s: compress %v, onnxruntime %v", name, a, b)
			}
			worst, differ := 0, 0
			for i := range a.U8 {
				d := int(a.U8[i]) - int(b.U8[i])
				if d != 0 {
					differ++
				}
				worst = max(worst, d, -d)
			}
			t.Logf("threads %d %s: %d of %d uint8 values differ from onnxruntime, by at most %d", threads, name, differ, len(a.U8), worst)
			if worst > 1 {
				t.Errorf("threads %d %s: differs from onnxruntime by %d quantisation steps", threads, name, worst)
			}
		}
		a, b := got[outs[0]].F32, want[outs[0]].F32
		big, worst, agree := 0.0, 0.0, 0
		for i := range b {
			big = math.Max(big, math.Abs(float64(b[i])))
			worst = math.Max(worst, math.Abs(float64(a[i]-b[i])))
		}
		for i := range batch {
			if argmax(a[i*10:(i+1)*10]) == argmax(b[i*10:(i+1)*10]) {
				agree++
			}
		}
		t.Logf("threads %d logits: max |ours - onnxruntime| = %.4g (largest %.4g), argmax agreement %d/%d", threads, worst, big, agree, batch)
		if worst > 0.05*big || agree < batch-1 {
			t.Errorf("threads %d: logits differ from onnxruntime (max diff %.4g of %.4g, agreement %d/%d)", threads, worst, big, agree, batch)
		}
	}
}
