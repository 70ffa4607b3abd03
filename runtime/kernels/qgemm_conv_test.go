package kernels

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
)

// qRefConv is the direct int8 convolution sum (x-zx)(w-zw[oc]) over the
// window, padding contributing zero. With depthwise, w holds one KH x KW
// filter per channel and output channel c reads input channel c only.
func qRefConv(s *Conv2DShape, outC int, x []uint8, zx int32, w []int8, zw []int32, depthwise bool) []int64 {
	oh, ow := s.OutH(), s.OutW()
	want := make([]int64, outC*oh*ow)
	for oc := 0; oc < outC; oc++ {
		for y := 0; y < oh; y++ {
			for xo := 0; xo < ow; xo++ {
				var sum int64
				c0, c1 := 0, s.C
				if depthwise {
					c0, c1 = oc, oc+1
				}
				for c := c0; c < c1; c++ {
					for kh := 0; kh < s.KH; kh++ {
						for kw := 0; kw < s.KW; kw++ {
							ih := y*s.StrideH - s.PadTop + kh*s.DilationH
							iw := xo*s.StrideW - s.PadLeft + kw*s.DilationW
							if ih < 0 || ih >= s.H || iw < 0 || iw >= s.W {
								continue
							}
							var wv int8
							if depthwise {
								wv = w[(c*s.KH+kh)*s.KW+kw]
							} else {
								wv = w[((oc*s.C+c)*s.KH+kh)*s.KW+kw]
							}
							sum += (int64(x[(c*s.H+ih)*s.W+iw]) - int64(zx)) * (int64(wv) - zpAt(zw, oc))
						}
					}
				}
				want[(oc*oh+y)*ow+xo] = sum
			}
		}
	}
	return want
}

func qRandConvShapes(r *rand.Rand, n int) []Conv2DShape {
	shapes := []Conv2DShape{
		{C: 3, H: 5, W: 5, KH: 1, KW: 1, StrideH: 1, StrideW: 1, DilationH: 1, DilationW: 1}, // direct 1x1
		{C: 17, H: 7, W: 9, KH: 3, KW: 3, PadTop: 1, PadLeft: 1, PadBottom: 1, PadRight: 1, StrideH: 1, StrideW: 1, DilationH: 1, DilationW: 1},
		{C: 5, H: 33, W: 31, KH: 3, KW: 3, PadTop: 1, PadLeft: 1, PadBottom: 1, PadRight: 1, StrideH: 2, StrideW: 2, DilationH: 1, DilationW: 1},
		{C: 1, H: 28, W: 28, KH: 5, KW: 5, PadTop: 2, PadLeft: 2, PadBottom: 2, PadRight: 2, StrideH: 1, StrideW: 1, DilationH: 1, DilationW: 1},
		{C: 2, H: 4, W: 4, KH: 3, KW: 3, PadTop: 3, PadLeft: 0, PadBottom: 1, PadRight: 4, StrideH: 1, StrideW: 3, DilationH: 2, DilationW: 1},
		// stride 1: the padded-plane path
		{C: 3, H: 9, W: 20, KH: 3, KW: 2, PadTop: 0, PadLeft: 1, PadBottom: 2, PadRight: 3, StrideH: 1, StrideW: 1, DilationH: 1, DilationW: 2},
		{C: 7, H: 13, W: 21, KH: 2, KW: 3, PadTop: 2, PadLeft: 0, PadBottom: 0, PadRight: 1, StrideH: 1, StrideW: 1, DilationH: 2, DilationW: 1},
		{C: 4, H: 6, W: 40, KH: 1, KW: 3, PadTop: 1, PadLeft: 2, PadBottom: 1, PadRight: 2, StrideH: 1, StrideW: 1, DilationH: 1, DilationW: 1},
		{C: 2, H: 35, W: 33, KH: 3, KW: 3, PadTop: 1, PadLeft: 1, PadBottom: 1, PadRight: 1, StrideH: 1, StrideW: 1, DilationH: 1, DilationW: 1},
	}
	for len(shapes) < n {
		s := Conv2DShape{C: 1 + r.IntN(9), H: 1 + r.IntN(12), W: 1 + r.IntN(12),
			KH: 1 + r.IntN(4), KW: 1 + r.IntN(4),
			PadTop: r.IntN(3), PadLeft: r.IntN(3), PadBottom: r.IntN(3), PadRight: r.IntN(3),
			StrideH: 1 + r.IntN(3), StrideW: 1 + r.IntN(3), DilationH: 1 + r.IntN(2), DilationW: 1 + r.IntN(2)}
		if s.Validate() == nil {
			shapes = append(shapes, s)
		}
	}
	return shapes
}

func TestQIm2Col(t *testing.T) {
	r := rand.New(rand.NewPCG(11, 12))
	for si, s := range qRandConvShapes(r, 200) {
		x := qRandU8(r, s.C*s.H*s.W)
		zx := uint8(r.IntN(256))
		cols := make([]uint8, s.ColsSize())
		if err := QIm2Col(&s, x, zx, cols); err != nil {
			t.Fatal(err)
		}
		oh, ow := s.OutH(), s.OutW()
		for c := 0; c < s.C; c++ {
			for kh := 0; kh < s.KH; kh++ {
				for kw := 0; kw < s.KW; kw++ {
					row := (c*s.KH+kh)*s.KW + kw
					for y := 0; y < oh; y++ {
						for xo := 0; xo < ow; xo++ {
							ih := y*s.StrideH - s.PadTop + kh*s.DilationH
							iw := xo*s.StrideW - s.PadLeft + kw*s.DilationW
							want := zx
							if ih >= 0 && ih < s.H && iw >= 0 && iw < s.W {
								want = x[(c*s.H+ih)*s.W+iw]
							}
							if got := cols[row*oh*ow+y*ow+xo]; got != want {
								t.Fatalf("shape %d %+v: cols[%d][%d,%d] = %d, want %d", si, s, row, y, xo, got, want)
							}
						}
					}
				}
			}
		}
		// Column ranges, as the parallel packing builds them.
		n := oh * ow
		dst := make([]byte, n)
		for row := 0; row < s.C*s.KH*s.KW; row++ {
			j0 := r.IntN(n)
			j1 := j0 + r.IntN(n-j0+1)
			qIm2ColRow(&s, x, zx, row, j0, j1, dst)
			for j := j0; j < j1; j++ {
				if dst[j-j0] != cols[row*n+j] {
					t.Fatalf("shape %d %+v: row %d columns [%d, %d): column %d = %d, want %d", si, s, row, j0, j1, j, dst[j-j0], cols[row*n+j])
				}
			}
		}
	}
}

func TestQConv2D(t *testing.T) {
	r := rand.New(rand.NewPCG(13, 14))
	cfg := 0
	for si, s := range qRandConvShapes(r, 40) {
		for _, outC := range []int{1, 3, 17, 33} {
			c := qConfigN(cfg)
			cfg++
			c.ldcPad = 0
			k := s.C * s.KH * s.KW
			n := s.OutH() * s.OutW()
			x := qRandU8(r, s.C*s.H*s.W)
			zx := c.za
			w := qRandWeights(r, outC*k, c.full)
			zw := c.zeroPoints(r, outC)
			pa, err := PackQA(outC, k, w, k)
			if err != nil {
				t.Fatal(err)
			}
			want := qRefConv(&s, outC, x, zx, w, zw, false)
			threads := 1 + cfg%3
			o := c.makeOutput(r, outC, n, outC, 64*128*math.Sqrt(float64(k)))
			for _, kern := range qImpls {
				sc := QScratch{split: cfg%2 == 0}
				name := fmt.Sprintf("%s/shape%d %+v/outC=%d/t%d/split=%v/%v", kern.name, si, s, outC, threads, sc.split, c)
				if err := sc.qconv2D(kern, &s, x, zx, pa, zw, o, threads); err != nil {
					t.Fatalf("%s: %v", name, err)
				}
				qRefCheck(t, name, o, outC, n, true, want)
				// The same through QIm2Col and QGemmA.
				cols := make([]uint8, s.ColsSize())
				if err := QIm2Col(&s, x, uint8(zx), cols); err != nil {
					t.Fatal(err)
				}
				if err := sc.qgemmA(kern, pa, zw, n, cols, n, zx, o, threads); err != nil {
					t.Fatalf("%s: %v", name, err)
				}
				qRefCheck(t, name+"/im2col", o, outC, n, true, want)
			}
		}
	}
}

func TestQDepthwiseConv2D(t *testing.T) {
	r := rand.New(rand.NewPCG(15, 16))
	cfg := 0
	for si, s := range qRandConvShapes(r, 40) {
		c := qConfigN(cfg)
		cfg++
		c.ldcPad = 0
		taps := s.KH * s.KW
		n := s.OutH() * s.OutW()
		x := qRandU8(r, s.C*s.H*s.W)
		w := qRandWeights(r, s.C*taps, c.full)
		zw := c.zeroPoints(r, s.C)
		want := qRefConv(&s, s.C, x, c.za, w, zw, true)
		o := c.makeOutput(r, s.C, n, s.C, 64*128*math.Sqrt(float64(taps)))
		for _, threads := range []int{1, 2, 3} {
			for _, kern := range qImpls {
				sc := QScratch{split: threads > 1}
				name := fmt.Sprintf("%s/shape%d %+v/t%d/split=%v/%v", kern.name, si, s, threads, sc.split, c)
				if err := sc.qdepthwise(kern, &s, x, c.za, w, zw, o, threads); err != nil {
					t.Fatalf("%s: %v", name, err)
				}
				qRefCheck(t, name, o, s.C, n, true, want)
			}
		}
	}
}

func TestQConvErrors(t *testing.T) {
	s := Conv2DShape{C: 2, H: 4, W: 4, KH: 3, KW: 3, StrideH: 1, StrideW: 1, DilationH: 1, DilationW: 1}
	pa, _ := PackQA(3, 18, make([]int8, 54), 18)
	x := make([]uint8, 32)
	out := &QOutput{Kind: QOutInt32, I32: make([]int32, 12)}
	bad := s
	bad.StrideH = 0
	cases := []struct {
		name string
		err  error
	}{
		{"ok", QConv2D(&s, x, 0, pa, nil, out, 1)},
		{"shape", QConv2D(&bad, x, 0, pa, nil, out, 1)},
		{"short x", QConv2D(&s, x[:31], 0, pa, nil, out, 1)},
		{"zx", QConv2D(&s, x, 300, pa, nil, out, 1)},
		{"K", QConv2D(&Conv2DShape{C: 1, H: 4, W: 4, KH: 3, KW: 3, StrideH: 1, StrideW: 1, DilationH: 1, DilationW: 1}, x, 0, pa, nil, out, 1)},
		{"short out", QConv2D(&s, x, 0, pa, nil, &QOutput{Kind: QOutInt32, I32: make([]int32, 11)}, 1)},
		{"zw", QConv2D(&s, x, 0, pa, []int32{1, 2}, out, 1)},
		{"dw weights", QDepthwiseConv2D(&s, x, 0, make([]int8, 17), nil, &QOutput{Kind: QOutInt32, I32: make([]int32, 8)}, 1)},
		{"im2col", QIm2Col(&s, x, 0, make([]uint8, 10))},
		{"QGemmA nil", QGemmA(nil, nil, 4, x, 4, 0, out, 1)},
		{"QGemmA n", QGemmA(pa, nil, 0, x, 4, 0, out, 1)},
		{"QGemmA ldb", QGemmA(pa, nil, 4, x, 3, 0, out, 1)},
		{"QGemmA short B", QGemmA(pa, nil, 4, make([]uint8, 18*4-1), 4, 0, &QOutput{Kind: QOutInt32, I32: make([]int32, 12)}, 1)},
		{"QGemmA zb", QGemmA(pa, nil, 4, make([]uint8, 72), 4, -1, &QOutput{Kind: QOutInt32, I32: make([]int32, 12)}, 1)},
	}
	for i, c := range cases {
		if (c.err == nil) != (i == 0) {
			t.Errorf("%s: err = %v", c.name, c.err)
		}
	}
}

// TestQConvNoAlloc checks that steady-state single-threaded convolutions
// allocate nothing.
func TestQConvNoAlloc(t *testing.T) {
	r := rand.New(rand.NewPCG(17, 18))
	s := Conv2DShape{C: 16, H: 20, W: 20, KH: 3, KW: 3, PadTop: 1, PadLeft: 1, PadBottom: 1, PadRight: 1,
		StrideH: 1, StrideW: 1, DilationH: 1, DilationW: 1}
	k, n := s.C*9, 400
	pa, _ := PackQA(24, k, qRandWeights(r, 24*k, false), k)
	x := qRandU8(r, s.C*400)
	w := qRandWeights(r, s.C*9, true)
	var sc QScratch
	o := &QOutput{Kind: QOutUint8, U8: make([]uint8, 24*n), Scale: []float32{1e-3}}
	od := &QOutput{Kind: QOutFloat32, F32: make([]float32, s.C*n), Scale: []float32{1e-3}}
	run := func() {
		if err := sc.QConv2D(&s, x, 5, pa, nil, o, 1); err != nil {
			t.Fatal(err)
		}
		if err := sc.QDepthwiseConv2D(&s, x, 5, w, nil, od, 1); err != nil {
			t.Fatal(err)
		}
	}
	run()
	if a := testing.AllocsPerRun(3, run); a > 0 {
		t.Errorf("%v allocations per call", a)
	}
}
