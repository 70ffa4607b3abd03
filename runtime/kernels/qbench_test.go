package kernels

import (
	"fmt"
	"math/rand/v2"
	"syscall"
	"testing"
)

// qBenchShapes are the shapes of the int8 benchmarks (M x N x K), those of
// the reference table in the shared KERNELS.md.
var qBenchShapes = []qShape{
	{1024, 1024, 1024},
	{256, 1024, 1024},
	{64, 256, 256},
	{1, 4096, 4096},
}

// qReportGOPs reports 2*M*N*K operations per second of wall clock, and per
// second of CPU time the process used since cpu0 (GOP/cpu-s): on a loaded
// machine the wall-clock rate drops while GOP/cpu-s times the thread count
// stays near the unloaded rate.
func qReportGOPs(b *testing.B, m, n, k int, cpu0 float64) {
	ops := 2 * float64(m) * float64(n) * float64(k) * float64(b.N)
	b.ReportMetric(ops/b.Elapsed().Seconds()/1e9, "GOP/s")
	if cpu := qCPUSeconds() - cpu0; cpu > 0 {
		b.ReportMetric(ops/cpu/1e9, "GOP/cpu-s")
	}
}

// BenchmarkQGemm measures QGemm as ONNX QLinearMatMul uses it: uint8
// activations packed on every call (row sums included), prepacked int8
// weights, per-tensor zero points and requantisation to uint8 (out=u8), or
// dequantisation to float32 (out=f32). w=7bit are weights in [-64, 63]
// (the vpmaddubsw kernels), w=full full-range weights (the exact widening
// kernels with AVX2; AVX512-VNNI is exact for both). The default
// implementation is used; impl=... runs each available implementation on
// the small shape.
//
//	go test -run x -bench QGemm -count 5 ./runtime/kernels/
func BenchmarkQGemm(b *testing.B) {
	for _, sh := range qBenchShapes {
		m, n, k := sh.m, sh.n, sh.k
		var a []uint8
		packed := map[bool]*QPackedB{}
		setup := func(full bool) *QPackedB {
			r := rand.New(rand.NewPCG(1, uint64(k)))
			if a == nil {
				a = qRandU8(r, m*k)
			}
			if packed[full] == nil {
				pb, err := PackQB(k, n, qRandWeights(r, k*n, full), n, false)
				if err != nil {
					b.Fatal(err)
				}
				packed[full] = pb
			}
			return packed[full]
		}
		for _, full := range []bool{false, true} {
			wname := map[bool]string{false: "7bit", true: "full"}[full]
			for _, kind := range []QOutKind{QOutUint8, QOutFloat32} {
				if full && kind != QOutUint8 {
					continue
				}
				oname := map[QOutKind]string{QOutUint8: "u8", QOutFloat32: "f32"}[kind]
				for _, threads := range []int{1, 2} {
					name := fmt.Sprintf("%dx%dx%d/t%d/w=%s/out=%s", m, n, k, threads, wname, oname)
					b.Run(name, func(b *testing.B) {
						pb := setup(full)
						o := &QOutput{Kind: kind, Scale: []float32{1e-4}, ZeroPoint: 128}
						if kind == QOutUint8 {
							o.U8 = make([]uint8, m*n)
						} else {
							o.F32 = make([]float32, m*n)
						}
						var s QScratch
						if err := s.QGemm(m, a, k, 3, pb, []int32{0}, o, threads); err != nil {
							b.Fatal(err)
						}
						cpu0 := qCPUSeconds()
						for b.Loop() {
							_ = s.QGemm(m, a, k, 3, pb, []int32{0}, o, threads)
						}
						qReportGOPs(b, m, n, k, cpu0)
					})
				}
			}
		}
	}
	// Each implementation this machine runs, on the small shape.
	sh := qBenchShapes[2]
	r := rand.New(rand.NewPCG(1, 1))
	pb, _ := PackQB(sh.k, sh.n, qRandWeights(r, sh.k*sh.n, false), sh.n, false)
	a := qRandU8(r, sh.m*sh.k)
	o := &QOutput{Kind: QOutUint8, U8: make([]uint8, sh.m*sh.n), Scale: []float32{1e-4}, ZeroPoint: 128}
	for _, kern := range qImpls {
		b.Run(fmt.Sprintf("%dx%dx%d/t1/impl=%s", sh.m, sh.n, sh.k, kern.name), func(b *testing.B) {
			var s QScratch
			cpu0 := qCPUSeconds()
			for b.Loop() {
				_ = s.qgemm(kern, sh.m, a, sh.k, 3, pb, nil, o, 1)
			}
			qReportGOPs(b, sh.m, sh.n, sh.k, cpu0)
		})
	}
}

// BenchmarkQConv2D measures an int8 3x3 convolution (64 -> 64 channels,
// 32x32, pad 1) through QConv2D, im2col packing included, requantising to
// uint8.
func BenchmarkQConv2D(b *testing.B) {
	r := rand.New(rand.NewPCG(2, 2))
	for _, c := range []struct{ c, hw, k, outC int }{{64, 32, 3, 64}, {64, 32, 1, 64}, {128, 16, 3, 128}} {
		s := Conv2DShape{C: c.c, H: c.hw, W: c.hw, KH: c.k, KW: c.k, StrideH: 1, StrideW: 1, DilationH: 1, DilationW: 1}
		if c.k == 3 {
			s.PadTop, s.PadLeft, s.PadBottom, s.PadRight = 1, 1, 1, 1
		}
		k := c.c * c.k * c.k
		pa, _ := PackQA(c.outC, k, qRandWeights(r, c.outC*k, false), k)
		x := qRandU8(r, c.c*c.hw*c.hw)
		n := s.OutH() * s.OutW()
		o := &QOutput{Kind: QOutUint8, U8: make([]uint8, c.outC*n), Scale: []float32{1e-4}, ZeroPoint: 0, Relu: true}
		for _, threads := range []int{1, 2} {
			b.Run(fmt.Sprintf("%dx%dx%d_k%d_out%d/t%d", c.c, c.hw, c.hw, c.k, c.outC, threads), func(b *testing.B) {
				var sc QScratch
				cpu0 := qCPUSeconds()
				for b.Loop() {
					_ = sc.QConv2D(&s, x, 3, pa, nil, o, threads)
				}
				qReportGOPs(b, c.outC, n, k, cpu0)
			})
		}
	}
}

// BenchmarkQDepthwise measures a 3x3 depthwise int8 convolution of 64
// channels of 56x56.
func BenchmarkQDepthwise(b *testing.B) {
	r := rand.New(rand.NewPCG(3, 3))
	s := Conv2DShape{C: 64, H: 56, W: 56, KH: 3, KW: 3, PadTop: 1, PadLeft: 1, PadBottom: 1, PadRight: 1,
		StrideH: 1, StrideW: 1, DilationH: 1, DilationW: 1}
	w := qRandWeights(r, 64*9, true)
	x := qRandU8(r, 64*56*56)
	n := 56 * 56
	o := &QOutput{Kind: QOutUint8, U8: make([]uint8, 64*n), Scale: []float32{1e-3}}
	for _, threads := range []int{1, 2} {
		b.Run(fmt.Sprintf("64x56x56/t%d", threads), func(b *testing.B) {
			var sc QScratch
			cpu0 := qCPUSeconds()
			for b.Loop() {
				_ = sc.QDepthwiseConv2D(&s, x, 3, w, nil, o, threads)
			}
			qReportGOPs(b, 64, n, 9, cpu0)
		})
	}
}

// BenchmarkQTile measures the micro-kernels alone: 16 rows (4 tiles) by 64
// columns (4 panels) on a 256-deep K block held in L1, the peak the driver
// can reach. tile4 is the 4-panel kernel of implementations that have one.
func BenchmarkQTile(b *testing.B) {
	const kg = 64
	a := make([]byte, 16*4*kg)
	bp := make([]byte, 4*kg*qGroup)
	c := make([]int32, 16*64)
	type tileFunc = func(int, int, []byte, int, []byte, []int32, int, bool)
	type tile4Func = func(int, int, []byte, int, []byte, int, []int32, int, bool)
	for _, kern := range qImpls {
		for _, v := range []string{"tile", "tileWide", "tileA", "tileAWide", "tile4", "tileA4"} {
			f := map[string]tileFunc{"tile": kern.tile, "tileWide": kern.tileWide, "tileA": kern.tileA, "tileAWide": kern.tileAWide}[v]
			f4 := map[string]tile4Func{"tile4": kern.tile4, "tileA4": kern.tileA4}[v]
			if f == nil && f4 == nil {
				continue
			}
			b.Run(fmt.Sprintf("%s/%s", kern.name, v), func(b *testing.B) {
				cpu0 := qCPUSeconds()
				for b.Loop() {
					if f4 != nil {
						f4(kg, 4, a, 4*kg, bp, kg*qGroup, c, 64, true)
						continue
					}
					for h := 0; h < 4; h++ {
						f(kg, 4, a, 4*kg, bp[h*kg*qGroup:], c[16*h:], 64, true)
					}
				}
				qReportGOPs(b, 16, 64, 4*kg, cpu0)
			})
		}
	}
}

// qCPUSeconds returns the user+system CPU time of the process.
func qCPUSeconds() float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return float64(ru.Utime.Nano()+ru.Stime.Nano()) * 1e-9
}
