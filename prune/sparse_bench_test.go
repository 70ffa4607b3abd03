package prune

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	goruntime "runtime"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	rt "github.com/compressml/compress/runtime"
)

// linearGraph is one fully connected layer y = x W^T + b of the given size
// with a magnitude-pruned weight.
func linearGraph(in, out int, sparsity float64, seed uint64) *rt.Graph {
	r := rand.New(rand.NewPCG(seed, 1))
	g := rt.NewGraph("linear")
	w := rt.New(rt.Float32, out, in)
	for i := range w.F32 {
		w.F32[i] = r.Float32()*2 - 1
	}
	keep := magnitudeMask(w.F32, pruneCount(sparsity, w.Len()))
	for i, k := range keep {
		if !k {
			w.F32[i] = 0
		}
	}
	b := rt.New(rt.Float32, out)
	for i := range b.F32 {
		b.F32[i] = r.Float32()
	}
	g.AddParam("w", w, false)
	g.AddParam("b", b, false)
	g.Inputs = []rt.ValueInfo{{Name: "x", DType: rt.Float32, Shape: []int{-1, in}}}
	g.Outputs = []rt.ValueInfo{{Name: "y", DType: rt.Float32, Shape: []int{-1, out}}}
	g.Nodes = []*rt.Node{{Name: "fc", OpType: "Gemm", Inputs: []string{"x", "w", "b"}, Outputs: []string{"y"},
		Attrs: map[string]rt.Attr{"transB": {Kind: rt.AttrInt, I: 1}}}}
	return g
}

// convGraph is one 3x3 convolution (padding 1) with a magnitude-pruned
// weight.
func convGraph(c, m, hw int, sparsity float64, seed uint64) *rt.Graph {
	r := rand.New(rand.NewPCG(seed, 2))
	g := rt.NewGraph("conv")
	w := rt.New(rt.Float32, m, c, 3, 3)
	for i := range w.F32 {
		w.F32[i] = r.Float32()*2 - 1
	}
	keep := magnitudeMask(w.F32, pruneCount(sparsity, w.Len()))
	for i, k := range keep {
		if !k {
			w.F32[i] = 0
		}
	}
	g.AddParam("w", w, false)
	g.Inputs = []rt.ValueInfo{{Name: "x", DType: rt.Float32, Shape: []int{-1, c, hw, hw}}}
	g.Outputs = []rt.ValueInfo{{Name: "y", DType: rt.Float32, Shape: []int{-1, m, hw, hw}}}
	g.Nodes = []*rt.Node{{Name: "conv", OpType: "Conv", Inputs: []string{"x", "w"}, Outputs: []string{"y"},
		Attrs: map[string]rt.Attr{"pads": {Kind: rt.AttrInts, Ints: []int64{1, 1, 1, 1}}, "kernel_shape": {Kind: rt.AttrInts, Ints: []int64{3, 3}}}}}
	return g
}

func benchExec(b *testing.B, g *rt.Graph, sparse bool, threads int, shape []int) {
	threshold := 2.0 // never sparse
	if sparse {
		threshold = 0.01
	}
	ex, err := NewExecutor(g, threads, threshold)
	if err != nil {
		b.Fatal(err)
	}
	x := rt.New(rt.Float32, shape...)
	r := rand.New(rand.NewPCG(7, 7))
	for i := range x.F32 {
		x.F32[i] = r.Float32()
	}
	in := map[string]*rt.Tensor{"x": x}
	if _, err := ex.Run(context.Background(), in); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for range b.N {
		if _, err := ex.Run(context.Background(), in); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkSparseGemm compares the dense fp32 Gemm (runtime/kernels
// Sgemm, weights prepacked) with the CSR kernel on a 1024x1024 layer at
// batch 32, for several sparsities and thread counts:
//
//	go test -run '^$' -bench SparseGemm ./prune
func BenchmarkSparseGemm(b *testing.B) {
	for _, threads := range []int{1, 2} {
		for _, s := range []float64{0.5, 0.7, 0.8, 0.9, 0.95} {
			g := linearGraph(1024, 1024, s, 1)
			for _, kind := range []string{"dense", "sparse"} {
				b.Run(fmt.Sprintf("threads=%d/sparsity=%.2f/%s", threads, s, kind), func(b *testing.B) {
					benchExec(b, g, kind == "sparse", threads, []int{32, 1024})
				})
			}
		}
	}
}

// BenchmarkSparseGemmBatch1 is the same layer on one example (a matrix
// times a vector).
func BenchmarkSparseGemmBatch1(b *testing.B) {
	for _, s := range []float64{0.5, 0.7, 0.9} {
		g := linearGraph(1024, 1024, s, 1)
		for _, kind := range []string{"dense", "sparse"} {
			b.Run(fmt.Sprintf("sparsity=%.2f/%s", s, kind), func(b *testing.B) {
				benchExec(b, g, kind == "sparse", 1, []int{1, 1024})
			})
		}
	}
}

// BenchmarkSparseConv compares dense and CSR 3x3 convolutions, 64 -> 64
// channels on 32x32, batch 1.
func BenchmarkSparseConv(b *testing.B) {
	for _, s := range []float64{0.5, 0.7, 0.8, 0.9} {
		g := convGraph(64, 64, 32, s, 1)
		for _, kind := range []string{"dense", "sparse"} {
			b.Run(fmt.Sprintf("sparsity=%.2f/%s", s, kind), func(b *testing.B) {
				benchExec(b, g, kind == "sparse", 1, []int{1, 64, 32, 32})
			})
		}
	}
}

// threadCPU returns the CPU time the calling OS thread has used.
func threadCPU() time.Duration {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_THREAD_CPUTIME_ID, &ts); err != nil {
		return 0
	}
	return time.Duration(ts.Nano())
}

// TestSparseSpeedupReport measures the dense and the sparse executor on
// the 1024x1024 layer at batch 32 and 1 and on a 3x3 convolution,
// interleaving the two and keeping the best of many rounds of both
// wall-clock and (calling) thread CPU time, which resists other load on
// the machine (with 2 threads the CPU time misses the helper goroutine). It prints a Markdown table for
// bench/RESULTS-sparse.md and runs only when COMPRESS_SPARSE_BENCH=1:
//
//	COMPRESS_SPARSE_BENCH=1 go test -run SparseSpeedupReport -v ./prune
func TestSparseSpeedupReport(t *testing.T) {
	if os.Getenv("COMPRESS_SPARSE_BENCH") != "1" {
		t.Skip("set COMPRESS_SPARSE_BENCH=1 to run the sparse kernel benchmark")
	}
	goruntime.LockOSThread()
	defer goruntime.UnlockOSThread()
	type cfg struct {
		name    string
		g       func(s float64) *rt.Graph
		shape   []int
		threads int
	}
	linear := func(s float64) *rt.Graph { return linearGraph(1024, 1024, s, 1) }
	cases := []cfg{
		{"Gemm 1024x1024, batch 32", linear, []int{32, 1024}, 1},
		{"Gemm 1024x1024, batch 32", linear, []int{32, 1024}, 2},
		{"Gemm 1024x1024, batch 1", linear, []int{1, 1024}, 1},
		{"Conv 3x3 64->64, 32x32, batch 1", func(s float64) *rt.Graph { return convGraph(64, 64, 32, s, 1) }, []int{1, 64, 32, 32}, 1},
	}
	fmt.Println("| layer | threads | sparsity | dense ms (wall / cpu) | sparse ms (wall / cpu) | speedup (wall / cpu) |")
	fmt.Println("|---|---|---|---|---|---|")
	for _, c := range cases {
		for _, s := range []float64{0.5, 0.7, 0.8, 0.9, 0.95} {
			g := c.g(s)
			var exs [2]*rt.Executor
			for i, th := range []float64{2, 0.01} {
				ex, err := NewExecutor(g, c.threads, th)
				mustNot(t, err, "NewExecutor")
				exs[i] = ex
			}
			x := rt.New(rt.Float32, c.shape...)
			for i := range x.F32 {
				x.F32[i] = float32(i%97) / 97
			}
			in := map[string]*rt.Tensor{"x": x}
			bestWall := [2]time.Duration{time.Hour, time.Hour}
			bestCPU := [2]time.Duration{time.Hour, time.Hour}
			reps := max(1, int(2e7/float64(rt.NumElements(c.shape)*1024)))
			for round := 0; round < 30; round++ {
				for i, ex := range exs {
					w0, c0 := time.Now(), threadCPU()
					for range reps {
						if _, err := ex.Run(context.Background(), in); err != nil {
							t.Fatal(err)
						}
					}
					w, cp := time.Since(w0)/time.Duration(reps), (threadCPU()-c0)/time.Duration(reps)
					bestWall[i], bestCPU[i] = min(bestWall[i], w), min(bestCPU[i], cp)
				}
			}
			ms := func(d time.Duration) float64 { return float64(d) / 1e6 }
			fmt.Printf("| %s | %d | %.2f | %.3f / %.3f | %.3f / %.3f | %.2fx / %.2fx |\n", c.name, c.threads, s,
				ms(bestWall[0]), ms(bestCPU[0]), ms(bestWall[1]), ms(bestCPU[1]),
				float64(bestWall[0])/float64(bestWall[1]), float64(bestCPU[0])/float64(bestCPU[1]))
		}
	}
}
