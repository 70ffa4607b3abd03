package finetune

import (
	"bytes"
	"math/rand/v2"
	"path/filepath"
	"strings"
	"testing"

	"github.com/compressml/compress/data"
	"github.com/compressml/compress/importer"
	"github.com/compressml/compress/models"
	"github.com/compressml/compress/quantize"
	rt "github.com/compressml/compress/runtime"
)

// quadrants is n noisy 1x8x8 images of 4 classes: class c has its
// quadrant c brighter than the rest.
func quadrants(t testing.TB, n int, seed uint64) data.Dataset {
	t.Helper()
	r := rand.New(rand.NewPCG(seed, 3))
	x := rt.New(rt.Float32, n, 1, 8, 8)
	labels := make([]int, n)
	for i := range labels {
		c := r.IntN(4)
		labels[i] = c
		for y := range 8 {
			for xx := range 8 {
				v := r.NormFloat64() * 0.6
				if (y/4)*2+xx/4 == c {
					v += 0.5
				}
				x.F32[i*64+y*8+xx] = float32(v)
			}
		}
	}
	ds, err := data.NewInMemory("quadrants", x, labels, 4)
	if err != nil {
		t.Fatal(err)
	}
	return ds
}

// TestTrainQAT trains a small ResNet (BatchNorm, residual Adds), then
// fine-tunes it with quantisation-aware training and checks that the
// result is a QDQ model with int8 weights that the runtime runs on its
// int8 kernels, that survives an ONNX round trip, that is at least about
// as accurate as static post-training quantisation, and that the same
// seed gives the same bytes.
func TestTrainQAT(t *testing.T) {
	g, err := models.Build("resnet", models.Config{Input: []int{1, 8, 8}, Classes: 4, Width: 0.25, Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	train, test := quadrants(t, 1024, 1), quadrants(t, 512, 2)
	if _, err := Train(t.Context(), g, train, nil, Config{Epochs: 3, BatchSize: 32, LR: 3e-3, Seed: 1, Threads: 1}); err != nil {
		t.Fatal(err)
	}
	fAcc := accuracy(t, g, test)
	qcfg := quantize.DefaultConfig()
	qcfg.CalibSize, qcfg.Threads = 128, 1
	ptq, _, err := quantize.Static(t.Context(), g, train, qcfg)
	if err != nil {
		t.Fatal(err)
	}
	pAcc := accuracy(t, ptq, test)
	before, err := importer.Marshal(g)
	if err != nil {
		t.Fatal(err)
	}
	cfg := Config{Epochs: 1, BatchSize: 32, LR: 1e-3, Seed: 2, Threads: 1}
	res, err := TrainQAT(t.Context(), g, train, nil, cfg, qcfg)
	if err != nil {
		t.Fatal(err)
	}
	if after, _ := importer.Marshal(g); !bytes.Equal(before, after) {
		t.Error("TrainQAT changed its input model")
	}
	qAcc := accuracy(t, res.Model, test)
	t.Logf("float %.4f, PTQ %.4f, QAT %.4f (train loss %.4f, %d trained values)", fAcc, pAcc, qAcc, res.Train.History[0].TrainLoss, res.TrainableParams)
	if fAcc < 0.8 {
		t.Fatalf("the float model only reached %.4f: the task is not learnt, the comparison says nothing", fAcc)
	}
	if qAcc < pAcc-0.01 {
		t.Errorf("QAT accuracy %.4f below PTQ %.4f - 0.01", qAcc, pAcc)
	}
	if pb, _ := importer.Marshal(res.PTQ); pb == nil || accuracy(t, res.PTQ, test) != pAcc {
		t.Error("QATResult.PTQ is not the static quantisation of the input")
	}

	// A QDQ model with int8 weights and no training-only ops.
	int8W := 0
	for _, n := range res.Model.Nodes {
		if n.Domain != "" {
			t.Errorf("node %v of domain %q in the exported model", n, n.Domain)
		}
		if n.OpType == "DequantizeLinear" {
			if p := res.Model.Params[n.Inputs[0]]; p != nil && p.T.DType == rt.Int8 {
				int8W++
			}
		}
	}
	// On the runtime: every Conv and the Gemm run on the int8 kernels.
	ex, err := rt.NewExecutor(res.Model, rt.Options{Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	p, err := ex.Plan(map[string][]int{res.Model.Inputs[0].Name: {8, 1, 8, 8}})
	if err != nil {
		t.Fatal(err)
	}
	fused, int8Ops := map[string]int{}, 0
	for _, pn := range p.Nodes {
		fused[pn.Node.OpType]++
		if pn.Node.Domain == rt.FusedDomain && (strings.HasPrefix(pn.Node.OpType, "QConv") || strings.HasPrefix(pn.Node.OpType, "QGemm")) {
			int8Ops++ // QConv, QConvAdd (residual fused), QGemm
		}
	}
	if int8W != int8Ops || int8W < 10 || fused["Conv"]+fused["FusedConv"]+fused["Gemm"] > 0 {
		t.Errorf("%d int8 weights; planned ops %v: want every layer on the int8 kernels", int8W, fused)
	}
	// ONNX round trip.
	path := filepath.Join(t.TempDir(), "qat.onnx")
	if err := importer.Save(res.Model, path); err != nil {
		t.Fatal(err)
	}
	rg, err := importer.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if a := accuracy(t, rg, test); a != qAcc {
		t.Errorf("reloaded model accuracy %.4f, before saving %.4f", a, qAcc)
	}
	// Determinism.
	res2, err := TrainQAT(t.Context(), g, train, nil, cfg, qcfg)
	if err != nil {
		t.Fatal(err)
	}
	b1, err := importer.Marshal(res.Model)
	if err != nil {
		t.Fatal(err)
	}
	b2, err := importer.Marshal(res2.Model)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(b1, b2) {
		t.Error("two runs with the same seed wrote different models")
	}
}
