//go:build ort

package finetune

import (
	"errors"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/compressml/compress/crosscheck"
	"github.com/compressml/compress/importer"
	"github.com/compressml/compress/models"
	"github.com/compressml/compress/quantize"
	rt "github.com/compressml/compress/runtime"
)

// TestQATRunsInONNXRuntime trains a small ResNet with quantisation-aware
// training and checks that onnxruntime loads the int8 QDQ model and gives
// the logits compress gives on its int8 kernels.
func TestQATRunsInONNXRuntime(t *testing.T) {
	if _, err := crosscheck.InitORT(); err != nil {
		if errors.Is(err, crosscheck.ErrNoORT) && os.Getenv("COMPRESS_REQUIRE_ORT") != "1" {
			t.Skip(err)
		}
		t.Fatal(err)
	}
	g, err := models.Build("resnet", models.Config{Input: []int{1, 8, 8}, Classes: 4, Width: 0.25, Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	train, test := quadrants(t, 512, 1), quadrants(t, 64, 2)
	if _, err := Train(t.Context(), g, train, nil, Config{Epochs: 2, BatchSize: 32, LR: 3e-3, Seed: 1, Threads: 1}); err != nil {
		t.Fatal(err)
	}
	qcfg := quantize.DefaultConfig()
	qcfg.CalibSize, qcfg.Threads = 128, 1
	res, err := TrainQAT(t.Context(), g, train, nil, Config{Epochs: 1, BatchSize: 32, LR: 1e-3, Seed: 2, Threads: 1}, qcfg)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "qat.onnx")
	if err := importer.Save(res.Model, path); err != nil {
		t.Fatal(err)
	}
	ins, outs := crosscheck.GraphNames(res.Model)
	s, err := crosscheck.NewORTSession(path, ins, outs, 1)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	x := rt.New(rt.Float32, 64, 1, 8, 8)
	for i := range 64 {
		if _, err := test.Example(i, x.F32[i*64:(i+1)*64]); err != nil {
			t.Fatal(err)
		}
	}
	feeds := map[string]*rt.Tensor{ins[0]: x}
	want, err := s.Run(feeds)
	if err != nil {
		t.Fatal(err)
	}
	got, err := crosscheck.RunCompress(res.Model, 1, feeds)
	if err != nil {
		t.Fatal(err)
	}
	a, b := got[outs[0]].F32, want[outs[0]].F32
	if len(a) != len(b) {
		t.Fatalf("compress gave %d logits, onnxruntime %d", len(a), len(b))
	}
	agree, maxd := 0, 0.0
	for i := range 64 {
		if argmaxF(a[i*4:(i+1)*4]) == argmaxF(b[i*4:(i+1)*4]) {
			agree++
		}
	}
	for i := range a {
		maxd = math.Max(maxd, math.Abs(float64(a[i]-b[i])))
	}
	sq := quantize.SQNR(b, a)
	t.Logf("max |compress - onnxruntime| = %.4g, SQNR %.1f dB, argmax agreement %d/64", maxd, sq, agree)
	if agree < 63 || sq < 30 {
		t.Errorf("outputs differ from onnxruntime's (max diff %.4g, SQNR %.1f dB, agreement %d/64)", maxd, sq, agree)
	}
}

func argmaxF(v []float32) int {
	best := 0
	for i, x := range v {
		if x > v[best] {
			best = i
		}
	}
	return best
}
