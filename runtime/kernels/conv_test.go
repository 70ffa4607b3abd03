package kernels

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
)

// naiveConv is the direct definition of a grouped-free 2-D convolution:
// y[oc][oy][ox] = bias[oc] + sum_{c,kh,kw} w[oc][c][kh][kw] * x[c][iy][ix],
// accumulated in float64, with optional ReLU.
func naiveConv(s *Conv2DShape, outC int, x, w, bias []float32, relu bool) []float64 {
	oh, ow := s.OutH(), s.OutW()
	y := make([]float64, outC*oh*ow)
	for oc := 0; oc < outC; oc++ {
		for oy := 0; oy < oh; oy++ {
			for ox := 0; ox < ow; ox++ {
				var sum float64
				if bias != nil {
					sum = float64(bias[oc])
				}
				for c := 0; c < s.C; c++ {
					for kh := 0; kh < s.KH; kh++ {
						iy := oy*s.StrideH - s.PadTop + kh*s.DilationH
						if iy < 0 || iy >= s.H {
							continue
						}
						for kw := 0; kw < s.KW; kw++ {
							ix := ox*s.StrideW - s.PadLeft + kw*s.DilationW
							if ix < 0 || ix >= s.W {
								continue
							}
							sum += float64(w[((oc*s.C+c)*s.KH+kh)*s.KW+kw]) * float64(x[(c*s.H+iy)*s.W+ix])
						}
					}
				}
				if relu && sum < 0 {
					sum = 0
				}
				y[(oc*oh+oy)*ow+ox] = sum
			}
		}
	}
	return y
}

// randomShapes returns valid geometries covering pads, strides, dilations
// and windows larger than the input.
func randomShapes(r *rand.Rand, n int) []Conv2DShape {
	shapes := []Conv2DShape{
		{C: 1, H: 1, W: 1, KH: 1, KW: 1, StrideH: 1, StrideW: 1, DilationH: 1, DilationW: 1},
		{C: 3, H: 8, W: 8, KH: 3, KW: 3, PadTop: 1, PadLeft: 1, PadBottom: 1, PadRight: 1, StrideH: 1, StrideW: 1, DilationH: 1, DilationW: 1},
		{C: 2, H: 7, W: 9, KH: 3, KW: 3, PadTop: 1, PadLeft: 1, PadBottom: 1, PadRight: 1, StrideH: 2, StrideW: 2, DilationH: 1, DilationW: 1},
		{C: 2, H: 4, W: 4, KH: 5, KW: 5, PadTop: 2, PadLeft: 2, PadBottom: 2, PadRight: 2, StrideH: 1, StrideW: 1, DilationH: 1, DilationW: 1},
		{C: 1, H: 28, W: 28, KH: 5, KW: 5, PadTop: 2, PadLeft: 2, PadBottom: 2, PadRight: 2, StrideH: 1, StrideW: 1, DilationH: 1, DilationW: 1},
	}
	for len(shapes) < n {
		s := Conv2DShape{
			C: 1 + r.IntN(3), H: 1 + r.IntN(9), W: 1 + r.IntN(9),
			KH: 1 + r.IntN(4), KW: 1 + r.IntN(4),
			PadTop: r.IntN(3), PadLeft: r.IntN(3), PadBottom: r.IntN(3), PadRight: r.IntN(3),
			StrideH: 1 + r.IntN(3), StrideW: 1 + r.IntN(3),
			DilationH: 1 + r.IntN(2), DilationW: 1 + r.IntN(2),
		}
		if s.Validate() == nil {
			shapes = append(shapes, s)
		}
	}
	return shapes
}

func TestIm2Col(t *testing.T) {
	r := rand.New(rand.NewPCG(11, 12))
	for i, s := range randomShapes(r, 300) {
		x := randMatrix(r, 1, s.C*s.H*s.W, 0)
		oh, ow := s.OutH(), s.OutW()
		cols := make([]float32, s.ColsSize()+1)
		for j := range cols {
			cols[j] = float32(math.NaN()) // garbage must be overwritten
		}
		cols[len(cols)-1] = 7
		Im2Col(&s, x, cols)
		if cols[len(cols)-1] != 7 {
			t.Fatalf("case %d %+v: wrote past ColsSize", i, s)
		}
		for c := 0; c < s.C; c++ {
			for kh := 0; kh < s.KH; kh++ {
				for kw := 0; kw < s.KW; kw++ {
					row := (c*s.KH+kh)*s.KW + kw
					for oy := 0; oy < oh; oy++ {
						for ox := 0; ox < ow; ox++ {
							iy := oy*s.StrideH - s.PadTop + kh*s.DilationH
							ix := ox*s.StrideW - s.PadLeft + kw*s.DilationW
							var want float32
							if iy >= 0 && iy < s.H && ix >= 0 && ix < s.W {
								want = x[(c*s.H+iy)*s.W+ix]
							}
							if got := cols[row*oh*ow+oy*ow+ox]; got != want {
								t.Fatalf("case %d %+v: cols[%d][%d,%d] = %v, want %v", i, s, row, oy, ox, got, want)
							}
						}
					}
				}
			}
		}
	}
}

// TestConvViaIm2ColGemm runs a whole convolution as Im2Col + SgemmPackedA
// with the bias and ReLU fused, against the direct definition.
func TestConvViaIm2ColGemm(t *testing.T) {
	r := rand.New(rand.NewPCG(13, 14))
	for i, s := range randomShapes(r, 60) {
		for _, outC := range []int{1, 7, 16} {
			for _, impl := range impls() {
				relu := i%2 == 0
				kdim := s.C * s.KH * s.KW
				hw := s.OutH() * s.OutW()
				x := randMatrix(r, 1, s.C*s.H*s.W, 0)
				w := randMatrix(r, 1, outC*kdim, 0)
				bias := randMatrix(r, 1, outC, 0)
				want := naiveConv(&s, outC, x, w, bias, relu)
				cols := make([]float32, s.ColsSize())
				Im2Col(&s, x, cols)
				pa := PackA(false, outC, kdim, w, kdim)
				y := make([]float32, outC*hw)
				withImpl(impl, func() {
					SgemmPackedA(pa, hw, cols, hw, y, hw, 0, &Epilogue{BiasRow: bias, Relu: relu}, 2)
				})
				name := fmt.Sprintf("case %d %+v outC %d %s", i, s, outC, implName(impl))
				checkClose(t, name, y, want, kdim)
			}
		}
	}
}

func checkClose(t *testing.T, name string, got []float32, want []float64, terms int) {
	t.Helper()
	for j := range want {
		tol := 1e-5 * float64(terms+1) * (1 + math.Abs(want[j]))
		if d := math.Abs(float64(got[j]) - want[j]); d > tol || math.IsNaN(float64(got[j])) {
			t.Fatalf("%s: y[%d] = %v, want %v", name, j, got[j], want[j])
		}
	}
}

func TestDepthwiseConv2D(t *testing.T) {
	r := rand.New(rand.NewPCG(15, 16))
	for i, s := range randomShapes(r, 200) {
		for _, threads := range []int{1, 3} {
			relu := i%3 == 0
			x := randMatrix(r, 1, s.C*s.H*s.W, 0)
			w := randMatrix(r, 1, s.C*s.KH*s.KW, 0)
			var bias []float32
			if i%2 == 0 {
				bias = randMatrix(r, 1, s.C, 0)
			}
			// A depthwise conv is a full conv whose weights are zero
			// off the diagonal of (outC, C).
			full := make([]float32, s.C*s.C*s.KH*s.KW)
			for c := 0; c < s.C; c++ {
				copy(full[(c*s.C+c)*s.KH*s.KW:], w[c*s.KH*s.KW:(c+1)*s.KH*s.KW])
			}
			want := naiveConv(&s, s.C, x, full, bias, relu)
			y := make([]float32, s.C*s.OutH()*s.OutW())
			for j := range y {
				y[j] = float32(math.NaN())
			}
			DepthwiseConv2D(&s, x, w, bias, relu, y, threads)
			checkClose(t, fmt.Sprintf("case %d %+v threads %d", i, s, threads), y, want, s.KH*s.KW)
		}
	}
}

func TestConvShapeValidate(t *testing.T) {
	ok := Conv2DShape{C: 1, H: 3, W: 3, KH: 3, KW: 3, StrideH: 1, StrideW: 1, DilationH: 1, DilationW: 1}
	cases := []struct {
		name   string
		mutate func(s *Conv2DShape)
		valid  bool
	}{
		{"ok", func(s *Conv2DShape) {}, true},
		{"zero stride", func(s *Conv2DShape) { s.StrideW = 0 }, false},
		{"zero dilation", func(s *Conv2DShape) { s.DilationH = 0 }, false},
		{"negative pad", func(s *Conv2DShape) { s.PadLeft = -1 }, false},
		{"window too large", func(s *Conv2DShape) { s.KH = 4 }, false},
		{"window fits with pad", func(s *Conv2DShape) { s.KH, s.PadTop = 4, 1 }, true},
		{"empty input", func(s *Conv2DShape) { s.C = 0 }, false},
	}
	for _, tc := range cases {
		s := ok
		tc.mutate(&s)
		if err := s.Validate(); (err == nil) != tc.valid {
			t.Errorf("%s: Validate() = %v, want valid=%v", tc.name, err, tc.valid)
		}
	}
}

// TestIm2ColPacked checks that Im2ColPacked writes exactly what PackB makes
// of the Im2Col matrix (padding included), and that a convolution through
// it, or through Gemm.BConv, gives the same bits as through Im2Col.
func TestIm2ColPacked(t *testing.T) {
	r := rand.New(rand.NewPCG(17, 18))
	shapes := randomShapes(r, 80)
	// K = C*KH*KW above the K block size, and N above several panels.
	shapes = append(shapes,
		Conv2DShape{C: 30, H: 9, W: 11, KH: 3, KW: 3, PadTop: 1, PadLeft: 1, PadBottom: 1, PadRight: 1, StrideH: 1, StrideW: 1, DilationH: 1, DilationW: 1},
		Conv2DShape{C: 70, H: 6, W: 5, KH: 2, KW: 2, PadTop: 0, PadLeft: 1, PadBottom: 1, PadRight: 0, StrideH: 2, StrideW: 1, DilationH: 1, DilationW: 2},
	)
	for i, s := range shapes {
		kdim, hw := s.C*s.KH*s.KW, s.OutH()*s.OutW()
		x := randMatrix(r, 1, s.C*s.H*s.W, 0)
		cols := make([]float32, s.ColsSize())
		Im2Col(&s, x, cols)
		want := PackB(false, kdim, hw, cols, hw)
		for _, threads := range []int{1, 3} {
			dst := make([]float32, PackedBSize(kdim, hw))
			for j := range dst {
				dst[j] = float32(math.NaN())
			}
			pb := Im2ColPacked(&s, x, dst, threads)
			if pb.Rows() != kdim || pb.Cols() != hw || !bitEqual(pb.data, want.data) {
				t.Fatalf("case %d %+v threads %d: packed columns differ from PackB(Im2Col)", i, s, threads)
			}
			outC := 5
			w := randMatrix(r, 1, outC*kdim, 0)
			pa := PackA(false, outC, kdim, w, kdim)
			y1 := make([]float32, outC*hw)
			y2 := make([]float32, outC*hw)
			SgemmPackedA(pa, hw, cols, hw, y1, hw, 0, nil, threads)
			g := Gemm{M: outC, N: hw, K: kdim, PA: pa, PB: &pb, C: y2, LDC: hw, Alpha: 1, Threads: threads}
			g.Run()
			if !bitEqual(y1, y2) {
				t.Fatalf("case %d %+v threads %d: conv through Im2ColPacked differs", i, s, threads)
			}
			y3 := make([]float32, outC*hw)
			g = Gemm{M: outC, N: hw, K: kdim, PA: pa, BConv: &ConvInput{Shape: &s, X: x}, C: y3, LDC: hw, Alpha: 1, Threads: threads}
			g.Run()
			if !bitEqual(y1, y3) {
				t.Fatalf("case %d %+v threads %d: conv through Gemm.BConv differs", i, s, threads)
			}
		}
	}
}
