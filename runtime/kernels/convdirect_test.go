package kernels

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
)

// directCases returns geometries for the direct convolution: the ResNet and
// mnist-8 layers, strides, dilations, 1x1 in place, and random ones.
func directCases(r *rand.Rand, n int) []Conv2DShape {
	sq := func(c, h, k, pad, stride int) Conv2DShape {
		return Conv2DShape{C: c, H: h, W: h, KH: k, KW: k, PadTop: pad, PadLeft: pad, PadBottom: pad, PadRight: pad,
			StrideH: stride, StrideW: stride, DilationH: 1, DilationW: 1}
	}
	shapes := []Conv2DShape{
		sq(3, 32, 3, 1, 1), sq(16, 32, 3, 1, 1), sq(16, 32, 3, 1, 2), sq(16, 32, 1, 0, 2), sq(32, 16, 3, 1, 1),
		sq(1, 28, 5, 2, 1), sq(8, 14, 5, 2, 1), sq(4, 9, 1, 0, 1), sq(2, 33, 3, 0, 1), sq(3, 7, 3, 1, 3),
		{C: 2, H: 11, W: 19, KH: 3, KW: 2, PadTop: 2, PadLeft: 1, PadBottom: 0, PadRight: 3, StrideH: 2, StrideW: 3, DilationH: 2, DilationW: 2},
		{C: 1, H: 1, W: 40, KH: 1, KW: 3, PadLeft: 1, PadRight: 1, StrideH: 1, StrideW: 1, DilationH: 1, DilationW: 1},
	}
	shapes = append(shapes, randomShapes(r, n)...)
	return shapes
}

func TestDirectConv(t *testing.T) {
	r := rand.New(rand.NewPCG(21, 22))
	for ci, s := range directCases(r, 40) {
		for _, m := range []int{1, 5, 8, 16, 19} {
			if ci > 12 && m != 5 && m != 16 {
				continue
			}
			oh, ow := s.OutH(), s.OutW()
			out := m * oh * ow
			const batch = 3
			x := randMatrix(r, 1, batch*s.C*s.H*s.W, 0)
			w := randMatrix(r, 1, m*s.C*s.KH*s.KW, 0)
			bias := randMatrix(r, 1, m, 0)
			res := randMatrix(r, 1, batch*out, 0)
			d, err := NewDirectConv(&s, m, w)
			if err != nil {
				t.Fatal(err)
			}
			ref := make([][]float64, batch)
			for img := range ref {
				ref[img] = naiveConv(&s, m, x[img*s.C*s.H*s.W:], w, nil, false)
			}
			for _, impl := range impls() {
				for ei, e := range []ConvEpilogue{{}, {Bias: bias, Relu: true}, {Bias: bias, Residual: res, Relu: true}, {Residual: res}} {
					name := fmt.Sprintf("%s/%+v/M=%d/%s/epi%d", implName(impl), s, m, "", ei)
					var first []float32
					for _, threads := range []int{1, 2, 3} {
						y := make([]float32, batch*out)
						for i := range y {
							y[i] = float32(math.NaN())
						}
						scratch := make([]float32, threads*d.ScratchSize())
						for i := range scratch {
							scratch[i] = float32(math.NaN()) // garbage: prepare must write every value
						}
						withImpl(impl, func() { d.RunBatch(batch, x, y, e, scratch, threads) })
						if first == nil {
							first = y
							for img := 0; img < batch; img++ {
								for i, v := range ref[img] {
									if e.Bias != nil {
										v += float64(e.Bias[i/(oh*ow)])
									}
									if e.Residual != nil {
										v += float64(e.Residual[img*out+i])
									}
									if e.Relu && v < 0 {
										v = 0
									}
									got := float64(y[img*out+i])
									if math.Abs(got-v) > 1e-4*(1+math.Abs(v))*math.Sqrt(float64(s.C*s.KH*s.KW)) {
										t.Fatalf("%s: image %d element %d: got %v, want %v", name, img, i, got, v)
									}
								}
							}
						} else if !bitEqual(first, y) {
							t.Fatalf("%s: %d threads differ from 1 thread", name, threads)
						}
					}
				}
			}
		}
	}
}

// TestDirectConvRunInPlaceResidual checks that the output may be the
// residual tensor itself.
func TestDirectConvRunInPlaceResidual(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	s := Conv2DShape{C: 4, H: 10, W: 10, KH: 3, KW: 3, PadTop: 1, PadLeft: 1, PadBottom: 1, PadRight: 1, StrideH: 1, StrideW: 1, DilationH: 1, DilationW: 1}
	m := 16
	x := randMatrix(r, 1, s.C*s.H*s.W, 0)
	w := randMatrix(r, 1, m*s.C*9, 0)
	res := randMatrix(r, 1, m*100, 0)
	d, err := NewDirectConv(&s, m, w)
	if err != nil {
		t.Fatal(err)
	}
	want := make([]float32, m*100)
	scratch := make([]float32, d.ScratchSize())
	d.Run(x, want, ConvEpilogue{Residual: res, Relu: true}, scratch, 1)
	y := append([]float32(nil), res...)
	d.Run(x, y, ConvEpilogue{Residual: y, Relu: true}, scratch, 1)
	if !bitEqual(want, y) {
		t.Fatal("residual in place differs")
	}
}

func TestCopyRows(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	for _, stride := range []int{1, 2, 3} {
		for n := 1; n <= 70; n++ {
			rows, planes := 1+r.IntN(3), 1+r.IntN(3)
			lead, trail := r.IntN(4), r.IntN(4)
			if n%7 == 0 {
				lead, trail = 16, 16
			}
			srcRow := (n-1)*stride + 1 + r.IntN(3)
			srcPlane := rows*srcRow + r.IntN(3)
			dstRow := lead + n + trail + r.IntN(3)
			dstPlane := rows*dstRow + r.IntN(5)
			src := randMatrix(r, 1, (planes-1)*srcPlane+(rows-1)*srcRow+(n-1)*stride+1, 0)
			want := make([]float32, (planes-1)*dstPlane+(rows-1)*dstRow+lead+n+trail)
			for i := range want {
				want[i] = -1
			}
			copyRowsGeneric(want, dstRow, dstPlane, lead, trail, src, srcRow, srcPlane, n, rows, planes, stride)
			for _, impl := range impls() {
				dst := make([]float32, len(want))
				for i := range dst {
					dst[i] = -1
				}
				withImpl(impl, func() { copyRows(dst, dstRow, dstPlane, lead, trail, src, srcRow, srcPlane, n, rows, planes, stride) })
				if !bitEqual(dst, want) {
					t.Fatalf("%s: stride %d n %d rows %d planes %d lead %d trail %d: got %v, want %v", implName(impl), stride, n, rows, planes, lead, trail, dst, want)
				}
			}
		}
	}
}

func TestNewDirectConvErrors(t *testing.T) {
	s := Conv2DShape{C: 2, H: 4, W: 4, KH: 3, KW: 3, StrideH: 1, StrideW: 1, DilationH: 1, DilationW: 1}
	if _, err := NewDirectConv(&s, 4, make([]float32, 10)); err == nil {
		t.Error("short weights accepted")
	}
	bad := s
	bad.KH = 9
	if _, err := NewDirectConv(&bad, 1, make([]float32, 100)); err == nil {
		t.Error("window larger than input accepted")
	}
}

func BenchmarkDirectConv(b *testing.B) {
	r := rand.New(rand.NewPCG(1, 2))
	sq := func(c, h, k, pad, stride int) Conv2DShape {
		return Conv2DShape{C: c, H: h, W: h, KH: k, KW: k, PadTop: pad, PadLeft: pad, PadBottom: pad, PadRight: pad,
			StrideH: stride, StrideW: stride, DilationH: 1, DilationW: 1}
	}
	for _, tc := range []struct {
		name string
		s    Conv2DShape
		m    int
	}{
		{"16x32x32-3x3-16", sq(16, 32, 3, 1, 1), 16},
		{"32x16x16-3x3-32", sq(32, 16, 3, 1, 1), 32},
		{"16x32x32-3x3s2-32", sq(16, 32, 3, 1, 2), 32},
		{"3x32x32-3x3-16", sq(3, 32, 3, 1, 1), 16},
		{"8x14x14-5x5-16", sq(8, 14, 5, 2, 1), 16},
		{"1x28x28-5x5-8", sq(1, 28, 5, 2, 1), 8},
	} {
		b.Run(tc.name, func(b *testing.B) {
			s := tc.s
			x := randMatrix(r, 1, s.C*s.H*s.W, 0)
			w := randMatrix(r, 1, tc.m*s.C*s.KH*s.KW, 0)
			d, err := NewDirectConv(&s, tc.m, w)
			if err != nil {
				b.Fatal(err)
			}
			y := make([]float32, tc.m*s.OutH()*s.OutW())
			scratch := make([]float32, d.ScratchSize())
			c0 := cpuSeconds()
			for b.Loop() {
				d.Run(x, y, ConvEpilogue{Bias: w[:tc.m], Relu: true}, scratch, 1)
			}
			b.ReportMetric(2*float64(d.MACs())*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
			b.ReportMetric(2*float64(d.MACs())*float64(b.N)/(cpuSeconds()-c0)/1e9, "GFLOP/cpu-s")
		})
	}
}

// BenchmarkConvTile measures the direct-convolution tile alone on
// cache-resident data (an upper bound for DirectConv), next to the GEMM
// micro-kernel.
func BenchmarkConvTile(b *testing.B) {
	const k = 288
	r := rand.New(rand.NewPCG(1, 1))
	a := randMatrix(r, 1, k*cmr, 0)
	src := randMatrix(r, 1, 4096, 0)
	offs := make([]int32, k)
	for i := range offs {
		offs[i] = int32(i%9/3*34 + i%3 + i/9*64)
	}
	c := make([]float32, 8*64)
	pair := []int32{0, 16, 0, 16, -1, 0}
	for _, impl := range impls() {
		b.Run(implName(impl), func(b *testing.B) {
			withImpl(impl, func() {
				c0 := cpuSeconds()
				for b.Loop() {
					convTiles(k, a, offs, src, c, 64, nil, nil, pair, 1, 0)
				}
				b.ReportMetric(2*float64(k*cmr*cblk*cbw)*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
				b.ReportMetric(2*float64(k*cmr*cblk*cbw)*float64(b.N)/(cpuSeconds()-c0)/1e9, "GFLOP/cpu-s")
			})
		})
	}
	b.Run("gemm-microkernel", func(b *testing.B) {
		a := randMatrix(r, 1, kc*mr, 0)
		bm := randMatrix(r, 1, kc*nr, 0)
		c := make([]float32, mr*nr)
		c0 := cpuSeconds()
		for b.Loop() {
			microKernel(kc, a, bm, c, nr, 1, 0, nil, nil, false)
		}
		b.ReportMetric(2*float64(kc*mr*nr)*float64(b.N)/(cpuSeconds()-c0)/1e9, "GFLOP/cpu-s")
	})
}
