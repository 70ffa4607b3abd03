//go:build ort

package quantize

import (
	"context"
	"errors"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/compressml/compress/crosscheck"
	"github.com/compressml/compress/data"
	"github.com/compressml/compress/importer"
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
