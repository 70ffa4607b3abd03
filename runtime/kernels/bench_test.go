package kernels

import (
	"fmt"
	"math/rand/v2"
	"runtime"
	"syscall"
	"testing"

	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/gonum"
)

var benchShapes = []struct{ m, n, k int }{
	{64, 256, 256},
	{256, 1024, 1024},
	{1024, 1024, 1024},
}

func reportGFLOPs(b *testing.B, m, n, k int) {
	b.ReportMetric(2*float64(m)*float64(n)*float64(k)*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
}

// cpuSeconds returns the user+system CPU time of the process.
func cpuSeconds() float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return float64(ru.Utime.Nano()+ru.Stime.Nano()) * 1e-9
}

// benchGemm runs f b.N times and reports GFLOP/s (wall clock) and
// GFLOP/cpu-s, the rate per second of CPU time the process used. On a
// shared, loaded machine the wall-clock rate drops with the load while
// GFLOP/cpu-s times the thread count stays close to the unloaded rate.
func benchGemm(b *testing.B, m, n, k int, f func()) {
	f()
	c0 := cpuSeconds()
	for b.Loop() {
		f()
	}
	cpu := cpuSeconds() - c0
	reportGFLOPs(b, m, n, k)
	if cpu > 0 {
		b.ReportMetric(2*float64(m)*float64(n)*float64(k)*float64(b.N)/cpu/1e9, "GFLOP/cpu-s")
	}
}

// BenchmarkSgemm compares this package's Sgemm (default micro-kernel, and
// the AVX2 one too on AVX-512 machines), its prepacked-B form, and gonum's
// Sgemm on the same shapes. gonum has no
// thread parameter, so GOMAXPROCS is set to the thread count for it.
//
//	go test -run x -bench Sgemm -count 5 ./runtime/kernels/
func BenchmarkSgemm(b *testing.B) {
	r := rand.New(rand.NewPCG(1, 1))
	for _, s := range benchShapes {
		m, n, k := s.m, s.n, s.k
		a := randMatrix(r, m, k, k)
		bm := randMatrix(r, k, n, n)
		c := make([]float32, m*n)
		for _, threads := range []int{1, 2} {
			b.Run(fmt.Sprintf("%dx%dx%d/compress/t%d", m, n, k, threads), func(b *testing.B) {
				benchGemm(b, m, n, k, func() { Sgemm(false, false, m, n, k, 1, a, k, bm, n, 0, c, n, threads) })
			})
			if activeImpl == implAVX512 {
				// The AVX2 kernel is the default on CPUs without AVX-512.
				b.Run(fmt.Sprintf("%dx%dx%d/compress-avx2/t%d", m, n, k, threads), func(b *testing.B) {
					withImpl(implAVX2, func() {
						benchGemm(b, m, n, k, func() { Sgemm(false, false, m, n, k, 1, a, k, bm, n, 0, c, n, threads) })
					})
				})
			}
			b.Run(fmt.Sprintf("%dx%dx%d/compress-packedB/t%d", m, n, k, threads), func(b *testing.B) {
				pb := PackB(false, k, n, bm, n)
				benchGemm(b, m, n, k, func() { SgemmPacked(m, a, k, pb, c, n, 0, threads) })
			})
			b.Run(fmt.Sprintf("%dx%dx%d/gonum/t%d", m, n, k, threads), func(b *testing.B) {
				prev := runtime.GOMAXPROCS(threads)
				defer runtime.GOMAXPROCS(prev)
				benchGemm(b, m, n, k, func() {
					gonum.Implementation{}.Sgemm(blas.NoTrans, blas.NoTrans, m, n, k, 1, a, k, bm, n, 0, c, n)
				})
			})
		}
	}
}

// BenchmarkPortableKernel measures the portable micro-kernel on one shape.
func BenchmarkPortableKernel(b *testing.B) {
	r := rand.New(rand.NewPCG(1, 1))
	m, n, k := 256, 256, 256
	a := randMatrix(r, m, k, k)
	bm := randMatrix(r, k, n, n)
	c := make([]float32, m*n)
	withImpl(implGeneric, func() {
		for b.Loop() {
			Sgemm(false, false, m, n, k, 1, a, k, bm, n, 0, c, n, 1)
		}
	})
	reportGFLOPs(b, m, n, k)
}

// BenchmarkMicroKernel measures the micro-kernel alone on cache-resident
// panels (an upper bound for the whole Sgemm).
func BenchmarkMicroKernel(b *testing.B) {
	const k = kc
	r := rand.New(rand.NewPCG(1, 1))
	a := randMatrix(r, 1, k*mr, k*mr)
	bm := randMatrix(r, 1, k*nr, k*nr)
	c := make([]float32, mr*nr)
	for _, impl := range impls() {
		b.Run(implName(impl), func(b *testing.B) {
			withImpl(impl, func() {
				for b.Loop() {
					microKernel(k, a, bm, c, nr, 1, 0, nil, nil, false)
				}
			})
			reportGFLOPs(b, mr, nr, k)
		})
	}
}

// BenchmarkConv3x3 runs a 64->64 channel 3x3 convolution on 56x56 (a
// ResNet stage-1 layer) with bias and ReLU, through Im2Col + SgemmPackedA,
// through Im2ColPacked + Gemm (no packing pass over the columns), through
// Gemm.BConv (no column matrix at all) and through DirectConv.
func BenchmarkConv3x3(b *testing.B) {
	r := rand.New(rand.NewPCG(1, 1))
	s := Conv2DShape{C: 64, H: 56, W: 56, KH: 3, KW: 3, PadTop: 1, PadLeft: 1, PadBottom: 1, PadRight: 1,
		StrideH: 1, StrideW: 1, DilationH: 1, DilationW: 1}
	outC, kdim, hw := 64, s.C*s.KH*s.KW, s.OutH()*s.OutW()
	x := randMatrix(r, 1, s.C*s.H*s.W, 0)
	w := randMatrix(r, 1, outC*kdim, 0)
	pa := PackA(false, outC, kdim, w, kdim)
	epi := Epilogue{BiasRow: randMatrix(r, 1, outC, 0), Relu: true}
	y := make([]float32, outC*hw)
	cols := make([]float32, s.ColsSize())
	packed := make([]float32, PackedBSize(kdim, hw))
	for _, threads := range []int{1, 2} {
		b.Run(fmt.Sprintf("im2col/t%d", threads), func(b *testing.B) {
			benchGemm(b, outC, hw, kdim, func() {
				Im2Col(&s, x, cols)
				SgemmPackedA(pa, hw, cols, hw, y, hw, 0, &epi, threads)
			})
		})
		b.Run(fmt.Sprintf("bconv/t%d", threads), func(b *testing.B) {
			benchGemm(b, outC, hw, kdim, func() {
				g := Gemm{M: outC, N: hw, K: kdim, PA: pa, BConv: &ConvInput{Shape: &s, X: x}, C: y, LDC: hw, Alpha: 1, Epilogue: epi, Threads: threads}
				g.Run()
			})
		})
		b.Run(fmt.Sprintf("direct/t%d", threads), func(b *testing.B) {
			d, err := NewDirectConv(&s, outC, w)
			if err != nil {
				b.Fatal(err)
			}
			scratch := make([]float32, d.ScratchSize())
			benchGemm(b, outC, hw, kdim, func() {
				d.Run(x, y, ConvEpilogue{Bias: epi.BiasRow, Relu: true}, scratch, threads)
			})
		})
		b.Run(fmt.Sprintf("im2colpacked/t%d", threads), func(b *testing.B) {
			benchGemm(b, outC, hw, kdim, func() {
				pb := Im2ColPacked(&s, x, packed, threads)
				g := Gemm{M: outC, N: hw, K: kdim, PA: pa, PB: &pb, C: y, LDC: hw, Alpha: 1, Epilogue: epi, Threads: threads}
				g.Run()
			})
		})
	}
}

// BenchmarkDepthwise3x3 runs a 3x3 depthwise convolution over 128 channels
// of 56x56 (a MobileNet layer).
func BenchmarkDepthwise3x3(b *testing.B) {
	r := rand.New(rand.NewPCG(1, 1))
	s := Conv2DShape{C: 128, H: 56, W: 56, KH: 3, KW: 3, PadTop: 1, PadLeft: 1, PadBottom: 1, PadRight: 1,
		StrideH: 1, StrideW: 1, DilationH: 1, DilationW: 1}
	x := randMatrix(r, 1, s.C*s.H*s.W, 0)
	w := randMatrix(r, 1, s.C*9, 0)
	bias := randMatrix(r, 1, s.C, 0)
	y := make([]float32, s.C*s.OutH()*s.OutW())
	for _, threads := range []int{1, 2} {
		b.Run(fmt.Sprintf("t%d", threads), func(b *testing.B) {
			// Report as a GEMM of C x HW x 9 multiply-adds.
			benchGemm(b, s.C, s.OutH()*s.OutW(), 9, func() { DepthwiseConv2D(&s, x, w, bias, true, y, threads) })
		})
	}
}
