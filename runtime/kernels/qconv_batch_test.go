package kernels

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
)

// TestQConvBatch checks the batched convolution against the direct
// reference on awkward shapes (strides 1-3, padding, dilation, 1x1,
// widths that leave partial panels), every kernel implementation, thread
// count, output kind, and the fused residual tables.
func TestQConvBatch(t *testing.T) {
	r := rand.New(rand.NewPCG(31, 32))
	shapes := qRandConvShapes(r, 70)
	shapes = append(shapes,
		Conv2DShape{C: 16, H: 28, W: 28, KH: 3, KW: 3, PadTop: 1, PadLeft: 1, PadBottom: 1, PadRight: 1, StrideH: 2, StrideW: 2, DilationH: 1, DilationW: 1},
		Conv2DShape{C: 16, H: 28, W: 28, KH: 1, KW: 1, StrideH: 2, StrideW: 2, DilationH: 1, DilationW: 1},
		Conv2DShape{C: 32, H: 7, W: 7, KH: 3, KW: 3, PadTop: 1, PadLeft: 1, PadBottom: 1, PadRight: 1, StrideH: 1, StrideW: 1, DilationH: 1, DilationW: 1},
	)
	for si, s := range shapes {
		outC := []int{1, 5, 16, 33}[si%4]
		if s.C >= 16 {
			outC = 2 * s.C
		}
		k := s.C * s.KH * s.KW
		w := qRandWeights(r, outC*k, si%3 == 0)
		pa, err := PackQA(outC, k, w, k)
		if err != nil {
			t.Fatal(err)
		}
		const n = 3
		ohw := s.OutH() * s.OutW()
		x := qRandU8(r, n*s.C*s.H*s.W)
		zx := int32(r.IntN(256))
		bias := make([]int32, outC)
		scale := make([]float32, outC)
		for i := range bias {
			bias[i] = int32(r.IntN(2001) - 1000)
			scale[i] = 1e-3 * float32(1+r.IntN(20))
		}
		want := make([][]int64, n)
		for img := range want {
			want[img] = qRefConv(&s, outC, x[img*s.C*s.H*s.W:(img+1)*s.C*s.H*s.W], zx, w, nil, false)
		}
		resid := qRandU8(r, n*outC*ohw)
		resU8, err := NewQResidualU8(int32(r.IntN(256)), 0.01+0.1*r.Float32(), int32(r.IntN(256)), 0.01+0.1*r.Float32(), 0.02+0.2*r.Float32(), int32(r.IntN(256)), si%2 == 0)
		if err != nil {
			t.Fatal(err)
		}
		resF, err := NewQResidualF32(int32(r.IntN(256)), 0.01+0.1*r.Float32(), int32(r.IntN(256)), 0.01+0.1*r.Float32(), si%2 == 1)
		if err != nil {
			t.Fatal(err)
		}
		for _, kern := range qImpls {
			b, err := NewQConvBatch(s, pa)
			if err != nil {
				t.Fatal(err)
			}
			b.kern = kern
			for _, kind := range qconvTestKinds {
				for _, threads := range []int{1, 2} {
					name := fmt.Sprintf("shape %d %+v/%s/%s/t%d", si, s, kern.name, kind, threads)
					o := &QOutput{Kind: QOutUint8, Scale: scale, BiasI32: bias, ZeroPoint: 7}
					var res *QConvResidual
					switch kind {
					case "u8", "res8", "resF":
						o.U8 = make([]uint8, n*outC*ohw)
					case "u8relu":
						o.U8, o.Relu = make([]uint8, n*outC*ohw), true
					case "f32":
						o.Kind, o.F32, o.ZeroPoint = QOutFloat32, make([]float32, n*outC*ohw), 0
					}
					switch kind {
					case "res8":
						res = &QConvResidual{R: resid, U8: resU8}
					case "resF":
						res = &QConvResidual{R: resid, F32: resF}
						o.F32 = make([]float32, n*outC*ohw)
					}
					if kind == "u8" {
						// Another zero point first: the padding must follow.
						tmp := &QOutput{Kind: QOutUint8, U8: make([]uint8, n*outC*ohw), Scale: scale}
						if err := b.Run(n, x, (zx+101)%256, tmp, nil, threads); err != nil {
							t.Fatalf("%s: %v", name, err)
						}
					}
					if err := b.Run(n, x, zx, o, res, threads); err != nil {
						t.Fatalf("%s: %v", name, err)
					}
					for img := 0; img < n; img++ {
						for oc := 0; oc < outC; oc++ {
							for p := 0; p < ohw; p++ {
								v := int32(want[img][oc*ohw+p]) + bias[oc]
								idx := (img*outC+oc)*ohw + p
								fq := float32(float32(v) * scale[oc])
								q := qRefRequant(fq, 7, 0, 255, kind == "u8relu")
								var ok bool
								var got, exp any
								switch kind {
								case "u8", "u8relu":
									got, exp, ok = o.U8[idx], uint8(q), o.U8[idx] == uint8(q)
								case "f32":
									got, exp, ok = o.F32[idx], fq, o.F32[idx] == fq
								case "res8":
									e := resU8.Value(uint8(q), resid[idx])
									got, exp, ok = o.U8[idx], e, o.U8[idx] == e
								case "resF":
									e := resF.Value(uint8(q), resid[idx])
									got, exp, ok = o.F32[idx], e, o.F32[idx] == e
								}
								if !ok {
									t.Fatalf("%s: image %d channel %d position %d: got %v, want %v", name, img, oc, p, got, exp)
								}
							}
						}
					}
				}
			}
		}
	}
}

var qconvTestKinds = []string{"u8", "u8relu", "f32", "res8", "resF"}

// qRefRequant is the requantisation of the output stage.
func qRefRequant(f float32, zo, qmin, qmax int32, relu bool) int32 {
	f = min(max(f, -qClampF), qClampF)
	v := int32(math.RoundToEven(float64(f))) + zo
	if relu {
		qmin = zo
	}
	return min(max(v, qmin), qmax)
}

// TestQConvBatchErrors checks that bad arguments are errors, not panics.
func TestQConvBatchErrors(t *testing.T) {
	s := Conv2DShape{C: 2, H: 4, W: 4, KH: 3, KW: 3, PadTop: 1, PadLeft: 1, PadBottom: 1, PadRight: 1, StrideH: 1, StrideW: 1, DilationH: 1, DilationW: 1}
	pa, _ := PackQA(3, 18, make([]int8, 54), 18)
	if _, err := NewQConvBatch(s, nil); err == nil {
		t.Error("nil weights: no error")
	}
	bad := s
	bad.C = 3
	if _, err := NewQConvBatch(bad, pa); err == nil {
		t.Error("K mismatch: no error")
	}
	b, err := NewQConvBatch(s, pa)
	if err != nil {
		t.Fatal(err)
	}
	x := make([]uint8, 2*32)
	ok := func() *QOutput {
		return &QOutput{Kind: QOutUint8, U8: make([]uint8, 2*48), Scale: []float32{1}}
	}
	for _, tc := range []struct {
		name string
		run  func() error
	}{
		{"batch 0", func() error { return b.Run(0, x, 0, ok(), nil, 1) }},
		{"short input", func() error { return b.Run(3, x, 0, ok(), nil, 1) }},
		{"zero point", func() error { return b.Run(2, x, 300, ok(), nil, 1) }},
		{"short output", func() error { o := ok(); o.U8 = o.U8[:50]; return b.Run(2, x, 0, o, nil, 1) }},
		{"scale count", func() error { o := ok(); o.Scale = []float32{1, 2}; return b.Run(2, x, 0, o, nil, 1) }},
		{"residual kind", func() error {
			o := &QOutput{Kind: QOutFloat32, F32: make([]float32, 96), Scale: []float32{1}}
			f, _ := NewQResidualF32(0, 1, 0, 1, false)
			return b.Run(2, x, 0, o, &QConvResidual{R: make([]uint8, 96), F32: f}, 1)
		}},
		{"residual short", func() error {
			u8, _ := NewQResidualU8(0, 1, 0, 1, 1, 0, false)
			return b.Run(2, x, 0, ok(), &QConvResidual{R: make([]uint8, 10), U8: u8}, 1)
		}},
		{"residual tables", func() error {
			return b.Run(2, x, 0, ok(), &QConvResidual{R: make([]uint8, 96)}, 1)
		}},
	} {
		if err := tc.run(); err == nil {
			t.Errorf("%s: no error", tc.name)
		}
	}
}

// TestQUnzip2 checks the even/odd split on every length up to 40, with
// and without bytes to read beyond n, and with either output absent.
func TestQUnzip2(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 9))
	for n := 1; n <= 40; n++ {
		for _, extra := range []int{0, 3, 16} {
			src := qRandU8(r, n+extra)
			for mode := 0; mode < 3; mode++ {
				even, odd := make([]byte, (n+1)/2+2), make([]byte, n/2+2)
				even[len(even)-1], odd[len(odd)-1] = 0xAB, 0xCD
				e, o := even, odd
				if mode == 1 {
					e = nil
				}
				if mode == 2 {
					o = nil
				}
				qUnzip2(src, n, e, o)
				for j := 0; 2*j < n; j++ {
					if e != nil && even[j] != src[2*j] {
						t.Fatalf("n=%d extra=%d mode=%d: even[%d] = %d, want %d", n, extra, mode, j, even[j], src[2*j])
					}
					if o != nil && 2*j+1 < n && odd[j] != src[2*j+1] {
						t.Fatalf("n=%d extra=%d mode=%d: odd[%d] = %d, want %d", n, extra, mode, j, odd[j], src[2*j+1])
					}
				}
				if even[len(even)-1] != 0xAB || odd[len(odd)-1] != 0xCD || even[(n+1)/2] != 0 || odd[n/2] != 0 {
					t.Fatalf("n=%d extra=%d mode=%d: wrote past the outputs", n, extra, mode)
				}
			}
		}
	}
}

// TestQCopyRow checks the short-row copy on every length up to 80.
func TestQCopyRow(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 7))
	for n := 0; n <= 80; n++ {
		src := qRandU8(r, n)
		dst := make([]byte, n+1)
		dst[n] = 0x5A
		qCopyRow(dst[:n], src)
		for i := 0; i < n; i++ {
			if dst[i] != src[i] {
				t.Fatalf("n=%d: byte %d = %d, want %d", n, i, dst[i], src[i])
			}
		}
		if dst[n] != 0x5A {
			t.Fatalf("n=%d: wrote past the end", n)
		}
	}
}

// BenchmarkQConvBatch measures the batched convolution on the layers of
// the ResNet-8 of `compress models new --arch resnet` at batch 32.
func BenchmarkQConvBatch(b *testing.B) {
	r := rand.New(rand.NewPCG(4, 4))
	for _, c := range []struct {
		name        string
		c, hw, k, s int
		outC        int
		res         bool
	}{
		{"16x28_k3", 16, 28, 3, 1, 16, false},
		{"16x28_k3_res", 16, 28, 3, 1, 16, true},
		{"16x28_k3_s2", 16, 28, 3, 2, 32, false},
		{"16x28_k1_s2", 16, 28, 1, 2, 32, false},
		{"32x14_k3", 32, 14, 3, 1, 32, false},
		{"32x14_k3_s2", 32, 14, 3, 2, 64, false},
		{"64x7_k3", 64, 7, 3, 1, 64, false},
	} {
		p := c.k / 2
		s := Conv2DShape{C: c.c, H: c.hw, W: c.hw, KH: c.k, KW: c.k, PadTop: p, PadLeft: p, PadBottom: p, PadRight: p,
			StrideH: c.s, StrideW: c.s, DilationH: 1, DilationW: 1}
		k := c.c * c.k * c.k
		pa, _ := PackQA(c.outC, k, qRandWeights(r, c.outC*k, false), k)
		const n = 32
		x := qRandU8(r, n*c.c*c.hw*c.hw)
		ohw := s.OutH() * s.OutW()
		o := &QOutput{Kind: QOutUint8, U8: make([]uint8, n*c.outC*ohw), Scale: []float32{1e-3}, Relu: true}
		var res *QConvResidual
		if c.res {
			u8, _ := NewQResidualU8(3, 0.05, 7, 0.04, 0.06, 0, true)
			res = &QConvResidual{R: qRandU8(r, n*c.outC*ohw), U8: u8}
		}
		qb, err := NewQConvBatch(s, pa)
		if err != nil {
			b.Fatal(err)
		}
		b.Run(c.name, func(b *testing.B) {
			cpu0 := qCPUSeconds()
			for b.Loop() {
				if err := qb.Run(n, x, 3, o, res, 1); err != nil {
					b.Fatal(err)
				}
			}
			qReportGOPs(b, c.outC, n*ohw, k, cpu0)
		})
	}
}

// TestQConvHelpersAVX512 checks the AVX-512 row helpers against the
// portable code: the residual Add on every (q, r) pair for several
// parameter sets (bit-equal to the table), and the row copy and even/odd
// split on every row length up to 64.
func TestQConvHelpersAVX512(t *testing.T) {
	if !qconvAVX512 {
		t.Skip("no AVX-512 on this CPU (or disabled): the portable helpers run")
	}
	r := rand.New(rand.NewPCG(8, 8))
	q, x := make([]byte, 65536), make([]byte, 65536)
	for i := range q {
		q[i], x[i] = byte(i>>8), byte(i)
	}
	for trial := 0; trial < 6; trial++ {
		res, err := NewQResidualU8(int32(r.IntN(256)), 0.001+0.2*r.Float32(), int32(r.IntN(256)), 0.001+0.2*r.Float32(),
			0.001+0.3*r.Float32(), int32(r.IntN(256)), trial%2 == 0)
		if err != nil {
			t.Fatal(err)
		}
		out := make([]byte, 65536)
		// 1024 rows of 64, and the odd width 37 with a wider q stride.
		qResidualU8AVX512(1024, 64, &q[0], 64, &x[0], &out[0], &res.p)
		for i := range out {
			if want := res.Value(q[i], x[i]); out[i] != want {
				t.Fatalf("trial %d: q=%d r=%d: got %d, want %d", trial, q[i], x[i], out[i], want)
			}
		}
		clear(out)
		qResidualU8AVX512(100, 37, &q[0], 41, &x[0], &out[0], &res.p)
		for row := 0; row < 100; row++ {
			for j := 0; j < 37; j++ {
				if want := res.Value(q[row*41+j], x[row*37+j]); out[row*37+j] != want {
					t.Fatalf("trial %d width 37: row %d col %d: got %d, want %d", trial, row, j, out[row*37+j], want)
				}
			}
		}
		if out[100*37] != 0 {
			t.Fatalf("trial %d: wrote past the rows", trial)
		}
		rf, err := NewQResidualF32(res.p.zq, res.p.sq, res.p.zr, res.p.sr, trial%2 == 1)
		if err != nil {
			t.Fatal(err)
		}
		outF := make([]float32, 65536+1)
		qResidualF32AVX512(1024, 64, &q[0], 64, &x[0], &outF[0], &rf.p)
		for i := 0; i < 65536; i++ {
			if want := rf.Value(q[i], x[i]); math.Float32bits(outF[i]) != math.Float32bits(want) {
				t.Fatalf("trial %d float: q=%d r=%d: got %g, want %g", trial, q[i], x[i], outF[i], want)
			}
		}
		if outF[65536] != 0 {
			t.Fatalf("trial %d float: wrote past the rows", trial)
		}
	}
	// qInterleaveAVX512 equals the portable interleave (without its sums).
	for np := 1; np <= 9; np++ {
		rows := [4][]byte{qRandU8(r, np*16), qRandU8(r, np*16), qRandU8(r, np*16), qRandU8(r, np*16)}
		const stride = 100
		got, want := make([]byte, np*stride), make([]byte, np*stride)
		qInterleaveAVX512(np, &rows[0][0], &rows[1][0], &rows[2][0], &rows[3][0], &got[0], stride)
		qInterleaveGeneric(np, rows[0], rows[1], rows[2], rows[3], want, stride, make([]int32, np*16))
		for i := range got {
			if got[i] != want[i] {
				t.Fatalf("interleave np=%d: byte %d = %d, want %d", np, i, got[i], want[i])
			}
		}
	}
	// qConvOutAVX512 stores whole vectors but never past its rows.
	res, _ := NewQResidualU8(1, 0.1, 2, 0.1, 0.1, 3, true)
	for _, n := range []int{1, 7, 9, 14, 16, 17, 28, 64} {
		for rows := 1; rows <= 4; rows++ {
			for mode := 0; mode < 3; mode++ {
				size := 1
				if mode == 2 {
					size = 4
				}
				acc := make([]int32, rows*64)
				rr := make([]byte, rows*n)
				buf := make([]byte, size*rows*n+64)
				for i := range buf {
					buf[i] = 0xEE
				}
				p := qOutParams{scale: 1, qmin: 0, qmax: 255, clamp: qClampF, negClamp: -qClampF}
				qConvOutAVX512(rows, n, &acc[0], 64, &p, &rr[0], &res.p, &buf[0], mode)
				for i := size * rows * n; i < len(buf); i++ {
					if buf[i] != 0xEE {
						t.Fatalf("qConvOutAVX512 mode %d n=%d rows=%d: wrote byte %d past its %d", mode, n, rows, i, size*rows*n)
					}
				}
			}
		}
	}
	for n := 1; n <= 64; n++ {
		const rows, zx = 5, 0x77
		src := qRandU8(r, rows*70)
		dst := make([]byte, rows*80+64)
		qCopyRowsAVX512(rows, n, &src[0], 70, &dst[0], 80, zx)
		ev, od := make([]byte, rows*40+32), make([]byte, rows*40+32)
		qUnzip2RowsAVX512(rows, n, &src[0], 70, &ev[0], &od[0], 40, zx)
		for i := 0; i < rows; i++ {
			for j := 0; j < 80; j++ {
				want := byte(0)
				switch {
				case j < n:
					want = src[i*70+j]
				case j < 64:
					want = zx
				}
				if dst[i*80+j] != want {
					t.Fatalf("copy n=%d: row %d byte %d = %d, want %d", n, i, j, dst[i*80+j], want)
				}
			}
			for j := 0; j < 40; j++ {
				we, wo := byte(0), byte(0)
				if j < 32 {
					we, wo = zx, zx
				}
				if 2*j < n {
					we = src[i*70+2*j]
				}
				if 2*j+1 < n {
					wo = src[i*70+2*j+1]
				}
				if ev[i*40+j] != we || od[i*40+j] != wo {
					t.Fatalf("unzip n=%d: row %d pair %d = %d,%d, want %d,%d", n, i, j, ev[i*40+j], od[i*40+j], we, wo)
				}
			}
		}
	}
}
