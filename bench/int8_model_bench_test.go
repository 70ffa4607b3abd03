//go:build ort

package bench

import (
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	ort "github.com/yalue/onnxruntime_go"

	"github.com/compressml/compress/crosscheck"
	"github.com/compressml/compress/importer"
	"github.com/compressml/compress/runtime"
)

// The end-to-end int8 benchmark (issue 4): the ResNet-style CNN in float32
// and its static QDQ quantisation (made by `compress quantize`), at batch
// 32 on 1 and 2 threads, four runners side by side in one run: compress on
// the float32 model, compress on the QDQ model, onnxruntime on the same QDQ
// model and onnxruntime on the float32 model. bench/run-int8-model.sh makes
// the models and runs it.

// int8Runner is one of the four timed runners.
type int8Runner struct {
	label string
	run   func() error
}

// int8Paths returns the float32 and QDQ model paths from
// COMPRESS_INT8_FP32 and COMPRESS_INT8_QDQ.
func int8Paths() (fp32, qdq string, err error) {
	fp32, qdq = os.Getenv("COMPRESS_INT8_FP32"), os.Getenv("COMPRESS_INT8_QDQ")
	if fp32 == "" || qdq == "" {
		return "", "", errors.New("set COMPRESS_INT8_FP32 and COMPRESS_INT8_QDQ to the float32 and QDQ models (bench/run-int8-model.sh does)")
	}
	for _, p := range []string{fp32, qdq} {
		if _, err := os.Stat(p); err != nil {
			return "", "", fmt.Errorf("model %s: %w", p, err)
		}
	}
	return fp32, qdq, nil
}

// int8Case returns the model case of path at batch 32 with pixel inputs in
// [0, 1) (the models take images scaled by 1/255).
func int8Case(label, path string, threads int) modelCase {
	return modelCase{label: label, path: path, batch: 32, threads: threads, lo: 0, hi: 1}
}

// checkInt8 compares compress and onnxruntime on the QDQ model: both
// quantise the same way but may round an intermediate value differently
// by one step, so the logits are compared with a tolerance of 3% of their
// largest magnitude, and the predicted classes must agree on all but one
// example.
func checkInt8(cm *compressModel, om *ortModel) error {
	if err := om.run(); err != nil {
		return err
	}
	got, err := cm.ex.Run(context.Background(), cm.feeds)
	if err != nil {
		return err
	}
	for name, v := range om.outs {
		want, err := crosscheck.FromORT(v)
		if err != nil {
			return err
		}
		g := got[name]
		if g == nil || g.DType != runtime.Float32 || g.Len() != want.Len() || len(g.Shape) != 2 {
			return fmt.Errorf("output %q: compress gave %v, onnxruntime %v %v", name, g, want.DType, want.Shape)
		}
		var big, worst float64
		for i := range want.F32 {
			big = math.Max(big, math.Abs(float64(want.F32[i])))
			worst = math.Max(worst, math.Abs(float64(g.F32[i]-want.F32[i])))
		}
		rows, cols := g.Shape[0], g.Shape[1]
		disagree := 0
		for r := 0; r < rows; r++ {
			if argmaxF32(g.F32[r*cols:(r+1)*cols]) != argmaxF32(want.F32[r*cols:(r+1)*cols]) {
				disagree++
			}
		}
		if worst > 0.03*big || disagree > 1 {
			return fmt.Errorf("output %q: compress int8 vs onnxruntime int8: max abs diff %.4g (largest logit %.4g), %d of %d predictions differ",
				name, worst, big, disagree, rows)
		}
	}
	return nil
}

func argmaxF32(v []float32) int {
	best := 0
	for i, x := range v {
		if x > v[best] {
			best = i
		}
	}
	return best
}

// int8Result is the measurement of one thread count.
type int8Result struct {
	threads   int
	wall, cpu []time.Duration // median per runner
}

// measureInt8 times the four runners on threads threads, alternating: each
// round times a block of calls of every runner, in an order rotated every
// round, and keeps each runner's median per-call wall-clock and CPU time.
func measureInt8(fp32, qdq string, threads, rounds int, budget time.Duration) (*int8Result, []string, error) {
	cf, err := loadCompress(int8Case("fp32", fp32, threads))
	if err != nil {
		return nil, nil, err
	}
	cq, err := loadCompress(int8Case("int8", qdq, threads))
	if err != nil {
		return nil, nil, err
	}
	// Same inputs for both models.
	cq.feeds = cf.feeds
	if cq.first, err = cq.ex.Run(context.Background(), cq.feeds); err != nil {
		return nil, nil, err
	}
	of, err := loadORT(int8Case("fp32", fp32, threads), cf)
	if err != nil {
		return nil, nil, err
	}
	defer of.close()
	oq, err := loadORT(int8Case("int8", qdq, threads), cq)
	if err != nil {
		return nil, nil, err
	}
	defer oq.close()
	checkAll := func() error {
		if err := check(cf, of); err != nil {
			return fmt.Errorf("float32 model: %w", err)
		}
		if err := checkInt8(cq, oq); err != nil {
			return fmt.Errorf("QDQ model: %w", err)
		}
		return nil
	}
	if err := checkAll(); err != nil {
		return nil, nil, err
	}
	runners := []int8Runner{{"compress fp32", cf.run}, {"compress int8", cq.run}, {"onnxruntime int8", oq.run}, {"onnxruntime fp32", of.run}}
	iters := make([]int, len(runners))
	for i, r := range runners {
		if iters[i], err = itersFor(r.run, budget); err != nil {
			return nil, nil, fmt.Errorf("%s: %w", r.label, err)
		}
	}
	samples := make([][]sample, len(runners))
	for round := 0; round < rounds; round++ {
		for j := range runners {
			i := (j + round) % len(runners)
			s, err := timeN(runners[i].run, iters[i])
			if err != nil {
				return nil, nil, fmt.Errorf("%s: %w", runners[i].label, err)
			}
			samples[i] = append(samples[i], s)
		}
	}
	if err := checkAll(); err != nil {
		return nil, nil, fmt.Errorf("after timing: %w", err)
	}
	res := &int8Result{threads: threads}
	var labels []string
	for i, r := range runners {
		var w, c []time.Duration
		for _, s := range samples[i] {
			w, c = append(w, s.wall), append(c, s.cpu)
		}
		res.wall, res.cpu = append(res.wall, median(w)), append(res.cpu, median(c))
		labels = append(labels, r.label)
	}
	return res, labels, nil
}

// opSummary counts the op types of g ("domain::Type xN", sorted).
func opSummary(g *runtime.Graph) string {
	count := map[string]int{}
	for _, n := range g.Nodes {
		d := n.Domain
		if d == "" {
			d = "ai.onnx"
		}
		count[d+"::"+n.OpType]++
	}
	var parts []string
	for k, v := range count {
		parts = append(parts, fmt.Sprintf("%s x%d", k, v))
	}
	slices.Sort(parts)
	return strings.Join(parts, ", ")
}

// ortOptimized returns the op summary of the graph onnxruntime runs for
// the model at path (its optimised model, all optimisations on), to show
// that it fuses the QDQ model like compress does.
func ortOptimized(path string, dir string) (string, error) {
	opts, err := crosscheck.NewORTSessionOptions(1)
	if err != nil {
		return "", err
	}
	defer opts.Destroy()
	out := filepath.Join(dir, "ort-optimized.onnx")
	if err := opts.SetOptimizedModelFilePath(out); err != nil {
		return "", err
	}
	g, err := importer.Load(path)
	if err != nil {
		return "", err
	}
	ins, outs := crosscheck.GraphNames(g)
	s, err := ort.NewDynamicAdvancedSession(path, ins, outs, opts)
	if err != nil {
		return "", err
	}
	s.Destroy()
	og, err := importer.Load(out)
	if err != nil {
		return "", err
	}
	return opSummary(og), nil
}

// compressFused returns the op summary of the graph compress runs for the
// QDQ model at path (after its optimisation passes).
func compressFused(path string) (string, error) {
	g, err := importer.Load(path)
	if err != nil {
		return "", err
	}
	if err := runtime.Optimize(g); err != nil {
		return "", err
	}
	return opSummary(g), nil
}

// TestInt8ModelBench writes the markdown table of the end-to-end int8
// benchmark to COMPRESS_BENCH_OUT (skipped when unset). Models:
// COMPRESS_INT8_FP32 and COMPRESS_INT8_QDQ. Tuning: COMPRESS_BENCH_ROUNDS
// (default 9), COMPRESS_BENCH_ROUND_MS (default 300).
func TestInt8ModelBench(t *testing.T) {
	out := os.Getenv("COMPRESS_BENCH_OUT")
	if out == "" {
		t.Skip("set COMPRESS_BENCH_OUT=FILE to run the int8 model benchmark (bench/run-int8-model.sh does)")
	}
	fp32, qdq, err := int8Paths()
	if err != nil {
		t.Fatal(err)
	}
	lib, err := crosscheck.InitORT()
	if errors.Is(err, crosscheck.ErrNoORT) {
		t.Skipf("skipping the benchmark against onnxruntime: %v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	rounds := envInt("COMPRESS_BENCH_ROUNDS", 9)
	budget := time.Duration(envInt("COMPRESS_BENCH_ROUND_MS", 300)) * time.Millisecond
	var b strings.Builder
	fmt.Fprintf(&b, "onnxruntime %s (%s) through github.com/yalue/onnxruntime_go, all graph optimisations on; %s.\n\n", crosscheck.ORTVersion(), lib, goVersion())
	fmt.Fprintf(&b, "Models: float32 `%s`, QDQ `%s`. Batch 32 of random pixels in [0, 1).\n", fp32, qdq)
	fmt.Fprintf(&b, "%d rounds; each round times a block of about %v of every runner, in an order rotated every round. "+
		"Latency: median over rounds of the mean wall-clock time per batch. CPU: the same for the process's CPU time "+
		"(user+system, all threads; onnxruntime's idle pool threads spin, which counts here). Outputs are compared before and after timing.\n\n", rounds, budget)
	if sum, err := compressFused(qdq); err == nil {
		fmt.Fprintf(&b, "Graph compress runs for the QDQ model: %s.\n\n", sum)
	} else {
		fmt.Fprintf(&b, "(compress's fused graph: %v)\n\n", err)
	}
	if sum, err := ortOptimized(qdq, t.TempDir()); err == nil {
		fmt.Fprintf(&b, "Graph onnxruntime runs for the QDQ model (its optimised model): %s.\n\n", sum)
	} else {
		fmt.Fprintf(&b, "(onnxruntime's optimised graph: %v)\n\n", err)
	}
	b.WriteString("| threads | compress fp32 | compress int8 | onnxruntime int8 | onnxruntime fp32 | fp32/int8 (target >= 2) | ORT int8/compress int8 (target >= 1.2) | CPU compress fp32 | CPU compress int8 | CPU ORT int8 | CPU ORT fp32 | CPU fp32/int8 | CPU ORT int8/int8 |\n")
	b.WriteString("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	for _, threads := range []int{1, 2} {
		r, _, err := measureInt8(fp32, qdq, threads, rounds, budget)
		if err != nil {
			t.Fatalf("threads=%d: %v", threads, err)
		}
		w, c := r.wall, r.cpu
		ratio := func(a, b time.Duration) float64 { return float64(a) / float64(b) }
		fmt.Fprintf(&b, "| %d | %s | %s | %s | %s | %.2f | %.2f | %s | %s | %s | %s | %.2f | %.2f |\n", threads,
			fmtDur(w[0]), fmtDur(w[1]), fmtDur(w[2]), fmtDur(w[3]), ratio(w[0], w[1]), ratio(w[2], w[1]),
			fmtDur(c[0]), fmtDur(c[1]), fmtDur(c[2]), fmtDur(c[3]), ratio(c[0], c[1]), ratio(c[2], c[1]))
		t.Logf("threads=%d: compress fp32 %v, int8 %v, ORT int8 %v, ORT fp32 %v", threads, w[0], w[1], w[2], w[3])
	}
	if err := os.WriteFile(out, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Log("\n" + b.String())
}

// BenchmarkInt8Model times compress alone on the float32 and QDQ models
// (batch 32, 1 and 2 threads), for profiling:
//
//	COMPRESS_INT8_FP32=m.onnx COMPRESS_INT8_QDQ=q.onnx go test -tags ort -run '^$' \
//	    -bench 'Int8Model/int8/threads=1' -cpuprofile cpu.out ./bench/
func BenchmarkInt8Model(b *testing.B) {
	fp32, qdq, err := int8Paths()
	if err != nil {
		b.Skip(err)
	}
	for _, m := range []struct{ label, path string }{{"fp32", fp32}, {"int8", qdq}} {
		for _, threads := range []int{1, 2} {
			c := int8Case(m.label, m.path, threads)
			b.Run(fmt.Sprintf("%s/threads=%d", m.label, threads), func(b *testing.B) {
				cm, err := loadCompress(c)
				if err != nil {
					b.Fatal(err)
				}
				b.ReportAllocs()
				cpu0, n := cpuTime(), 0
				for b.Loop() {
					if err := cm.run(); err != nil {
						b.Fatal(err)
					}
					n++
				}
				b.ReportMetric(float64(cpuTime()-cpu0)/float64(n)/1e6, "cpu-ms/op")
			})
		}
	}
}
