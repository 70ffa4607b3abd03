package kernels

import (
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"reflect"
	"strings"
	"sync"
	"testing"
)

// qRefStage is the reference output stage for one corrected accumulator v
// of channel ch; it is written independently of the package's stages.
func qRefStage(o *QOutput, ch int, v int32) (i32 int32, f32 float32, q int32) {
	if o.BiasI32 != nil {
		v += o.BiasI32[ch]
	}
	scale := float32(1)
	if len(o.Scale) == 1 {
		scale = o.Scale[0]
	} else if len(o.Scale) > 1 {
		scale = o.Scale[ch]
	}
	switch o.Kind {
	case QOutInt32:
		if o.Relu && v < 0 {
			v = 0
		}
		return v, 0, 0
	case QOutFloat32:
		f := float32(float32(v) * scale)
		if o.Bias != nil {
			f = float32(f + o.Bias[ch])
		}
		if o.Relu && f < 0 {
			f = 0
		}
		return 0, f, 0
	}
	lo, hi := int32(0), int32(255)
	if o.Kind == QOutInt8 {
		lo, hi = -128, 127
	}
	if o.Relu {
		lo = o.ZeroPoint
	}
	r := math.RoundToEven(float64(float32(v) * scale))
	r = math.Max(math.Min(r, 1<<20), -1<<20)
	x := int32(r) + o.ZeroPoint
	return 0, 0, min(max(x, lo), hi)
}

// qRefCheck compares out (m x n, stride ldc) with the exact accumulators
// want (m x n, row-major) through the reference stage.
func qRefCheck(t *testing.T, name string, o *QOutput, m, n int, perRow bool, want []int64) {
	t.Helper()
	ldc := o.LDC
	if ldc == 0 {
		ldc = n
	}
	bad := 0
	for i := 0; i < m; i++ {
		for j := 0; j < n; j++ {
			ch := j
			if perRow {
				ch = i
			}
			wi, wf, wq := qRefStage(o, ch, int32(want[i*n+j]))
			off := i*ldc + j
			var ok bool
			var got, exp any
			switch o.Kind {
			case QOutInt32:
				got, exp, ok = o.I32[off], wi, o.I32[off] == wi
			case QOutFloat32:
				got, exp = o.F32[off], wf
				ok = math.Float32bits(o.F32[off]) == math.Float32bits(wf)
			case QOutUint8:
				got, exp, ok = o.U8[off], uint8(wq), o.U8[off] == uint8(wq)
			case QOutInt8:
				got, exp, ok = o.I8[off], int8(wq), o.I8[off] == int8(wq)
			}
			if !ok {
				if bad < 5 {
					t.Errorf("%s: out[%d,%d] = %v, want %v (acc %d)", name, i, j, got, exp, want[i*n+j])
				}
				bad++
			}
		}
	}
	if bad > 0 {
		t.Errorf("%s: %d of %d outputs differ", name, bad, m*n)
	}
}

// qRandWeights returns n int8 values, in [-64, 63] unless full, with the
// extremes of the range over-represented.
func qRandWeights(r *rand.Rand, n int, full bool) []int8 {
	lo, hi := QExactMin, QExactMax
	if full {
		lo, hi = -128, 127
	}
	w := make([]int8, n)
	for i := range w {
		switch r.IntN(5) {
		case 0:
			w[i] = int8(lo)
		case 1:
			w[i] = int8(hi)
		default:
			w[i] = int8(lo + r.IntN(hi-lo+1))
		}
	}
	return w
}

func qRandU8(r *rand.Rand, n int) []uint8 {
	a := make([]uint8, n)
	for i := range a {
		switch r.IntN(4) {
		case 0:
			a[i] = 255
		default:
			a[i] = uint8(r.IntN(256))
		}
	}
	return a
}

// qConfig is one combination of zero points, weight range and output
// stage, chosen round-robin so that every option is covered.
type qConfig struct {
	za     int32
	zbMode int // 0 nil, 1 per tensor, 2 per channel
	full   bool
	kind   QOutKind
	bias   bool
	relu   bool
	ldcPad int
}

func qConfigN(i int) qConfig {
	return qConfig{
		za:     []int32{0, 128, 255}[i%3],
		zbMode: (i / 3) % 3,
		full:   (i/9)%2 == 1,
		kind:   QOutKind((i / 2) % 4),
		bias:   (i/5)%2 == 0,
		relu:   (i/7)%2 == 1,
		ldcPad: []int{0, 0, 3}[(i/11)%3],
	}
}

func (c qConfig) String() string {
	return fmt.Sprintf("za=%d zb=%s w=%s out=%s bias=%v relu=%v ldc+%d", c.za,
		[]string{"none", "tensor", "channel"}[c.zbMode], map[bool]string{false: "7bit", true: "full"}[c.full],
		c.kind, c.bias, c.relu, c.ldcPad)
}

// makeOutput builds an output stage of kind c.kind for m x n outputs with
// ch channels; acc is a typical magnitude of the accumulators.
func (c qConfig) makeOutput(r *rand.Rand, m, n, ch int, acc float64) *QOutput {
	o := &QOutput{Kind: c.kind, Relu: c.relu}
	if c.ldcPad > 0 {
		o.LDC = n + c.ldcPad
	}
	ldc := max(o.LDC, n)
	size := (m-1)*ldc + n
	switch c.kind {
	case QOutInt32:
		o.I32 = make([]int32, size)
	case QOutFloat32:
		o.F32 = make([]float32, size)
	case QOutUint8:
		o.U8 = make([]uint8, size)
		o.ZeroPoint = int32(r.IntN(256))
	case QOutInt8:
		o.I8 = make([]int8, size)
		o.ZeroPoint = int32(r.IntN(256) - 128)
	}
	if c.kind != QOutInt32 {
		nsc := ch
		if r.IntN(2) == 0 {
			nsc = 1
		}
		o.Scale = make([]float32, nsc)
		for i := range o.Scale {
			if c.kind == QOutFloat32 {
				o.Scale[i] = float32(r.Float64() * 1e-3)
			} else {
				// spread the outputs over about 200 quantisation steps
				o.Scale[i] = float32((0.5 + r.Float64()) * 100 / max(acc, 1))
			}
		}
	}
	if c.bias {
		o.BiasI32 = make([]int32, ch)
		for i := range o.BiasI32 {
			o.BiasI32[i] = int32(r.IntN(2001) - 1000)
		}
		if c.kind == QOutFloat32 {
			o.Bias = make([]float32, ch)
			for i := range o.Bias {
				o.Bias[i] = float32(r.NormFloat64())
			}
		}
	}
	return o
}

func (c qConfig) zeroPoints(r *rand.Rand, ch int) []int32 {
	switch c.zbMode {
	case 1:
		return []int32{int32(r.IntN(256) - 128)}
	case 2:
		z := make([]int32, ch)
		for i := range z {
			z[i] = int32(r.IntN(256) - 128)
		}
		return z
	}
	return nil
}

func zpAt(z []int32, i int) int64 {
	switch len(z) {
	case 0:
		return 0
	case 1:
		return int64(z[0])
	}
	return int64(z[i])
}

// qRefGemm is the exact triple loop sum_k (a-za)(b-zb) for B given K x N.
func qRefGemm(m, n, k int, a []uint8, lda int, za int32, b []int8, ldb int, zb []int32) []int64 {
	want := make([]int64, m*n)
	for i := 0; i < m; i++ {
		for j := 0; j < n; j++ {
			var s int64
			for p := 0; p < k; p++ {
				s += (int64(a[i*lda+p]) - int64(za)) * (int64(b[p*ldb+j]) - zpAt(zb, j))
			}
			want[i*n+j] = s
		}
	}
	return want
}

var qSizes = []int{1, 3, 5, 17, 33}

type qShape struct{ m, n, k int }

func qShapes(short bool) []qShape {
	var s []qShape
	for _, m := range qSizes {
		for _, n := range qSizes {
			for _, k := range qSizes {
				s = append(s, qShape{m, n, k})
			}
		}
	}
	s = append(s,
		qShape{1029, 3, 5}, qShape{3, 1029, 17}, qShape{5, 17, 1029}, qShape{1, 1029, 1029},
		qShape{1029, 33, 17}, qShape{17, 1029, 33}, qShape{33, 17, 1029}, qShape{1029, 1, 33},
		qShape{1, 1029, 5}, qShape{1029, 5, 1},
		qShape{130, 300, 700}, // several M, N and K blocks
		// Activations QGemm reads in place (K a multiple of 4 and whole
		// 4-row tiles, or one row).
		qShape{128, 300, 700}, qShape{4, 17, 8}, qShape{8, 33, 4}, qShape{1, 1029, 64},
	)
	if !short {
		s = append(s, qShape{1029, 1029, 33}, qShape{33, 1029, 1029}, qShape{1029, 33, 1029})
	}
	return s
}

func TestQGemm(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	cfg := 0
	for _, sh := range qShapes(testing.Short()) {
		m, n, k := sh.m, sh.n, sh.k
		lda, ldb := k+r.IntN(3), n+r.IntN(3)
		a := qRandU8(r, (m-1)*lda+k)
		for _, threads := range []int{1, 2, 3} {
			c := qConfigN(cfg)
			cfg++
			b := qRandWeights(r, (k-1)*ldb+n, c.full)
			pb, err := PackQB(k, n, b, ldb, false)
			if err != nil {
				t.Fatal(err)
			}
			if !c.full && !pb.Exact {
				t.Fatal("PackQB: 7-bit weights reported as not exact")
			}
			zb := c.zeroPoints(r, n)
			want := qRefGemm(m, n, k, a, lda, c.za, b, ldb, zb)
			o := c.makeOutput(r, m, n, n, 64*128*math.Sqrt(float64(k)))
			for _, kern := range qImpls {
				s := QScratch{split: cfg%2 == 0}
				name := fmt.Sprintf("%s/%dx%dx%d/t%d/split=%v/%v", kern.name, m, n, k, threads, s.split, c)
				if err := s.qgemm(kern, m, a, lda, c.za, pb, zb, o, threads); err != nil {
					t.Fatalf("%s: %v", name, err)
				}
				qRefCheck(t, name, o, m, n, false, want)
			}
		}
	}
}

// TestQGemmTransB checks PackQB's transposed layout against the plain one.
func TestQGemmTransB(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for _, sh := range []qShape{{3, 17, 33}, {5, 33, 17}, {1, 40, 9}} {
		m, n, k := sh.m, sh.n, sh.k
		b := qRandWeights(r, k*n, true)
		bt := make([]int8, n*(k+2))
		for p := 0; p < k; p++ {
			for j := 0; j < n; j++ {
				bt[j*(k+2)+p] = b[p*n+j]
			}
		}
		pb, _ := PackQB(k, n, b, n, false)
		pt, err := PackQB(k, n, bt, k+2, true)
		if err != nil {
			t.Fatal(err)
		}
		a := qRandU8(r, m*k)
		want := qRefGemm(m, n, k, a, k, 7, b, n, []int32{3})
		for _, p := range []*QPackedB{pb, pt} {
			o := &QOutput{Kind: QOutInt32, I32: make([]int32, m*n)}
			if err := QGemm(m, a, k, 7, p, []int32{3}, o, 2); err != nil {
				t.Fatal(err)
			}
			qRefCheck(t, fmt.Sprintf("%dx%dx%d", m, n, k), o, m, n, false, want)
		}
	}
}

// TestQGemmRoundHalfEven pins the requantisation rounding to ONNX's
// QuantizeLinear (round half to even) and saturation.
func TestQGemmRoundHalfEven(t *testing.T) {
	a := []uint8{0, 1, 2, 3, 4, 5, 7, 9, 251, 255}
	b := []int8{1}
	pb, _ := PackQB(1, 1, b, 1, false)
	cases := []struct {
		kind  QOutKind
		zo    int32
		scale float32
		relu  bool
		want  []int32
	}{
		// v*0.5 = 0, .5, 1, 1.5, 2, 2.5, 3.5, 4.5, 125.5, 127.5
		{QOutUint8, 0, 0.5, false, []int32{0, 0, 1, 2, 2, 2, 4, 4, 126, 128}},
		{QOutUint8, 200, 0.5, false, []int32{200, 200, 201, 202, 202, 202, 204, 204, 255, 255}},
		{QOutInt8, -3, -0.5, false, []int32{-3, -3, -4, -5, -5, -5, -7, -7, -128, -128}},
		{QOutInt8, -3, -0.5, true, []int32{-3, -3, -3, -3, -3, -3, -3, -3, -3, -3}},
		{QOutInt8, 0, 0.5, false, []int32{0, 0, 1, 2, 2, 2, 4, 4, 126, 127}},
	}
	for ci, c := range cases {
		for _, kern := range qImpls {
			o := &QOutput{Kind: c.kind, Scale: []float32{c.scale}, ZeroPoint: c.zo, Relu: c.relu,
				U8: make([]uint8, len(a)), I8: make([]int8, len(a))}
			var s QScratch
			if err := s.qgemm(kern, len(a), a, 1, 0, pb, nil, o, 1); err != nil {
				t.Fatal(err)
			}
			for i, w := range c.want {
				got := int32(o.U8[i])
				if c.kind == QOutInt8 {
					got = int32(o.I8[i])
				}
				if got != w {
					t.Errorf("%s case %d: a=%d: got %d, want %d", kern.name, ci, a[i], got, w)
				}
			}
		}
	}
}

// TestQGemmSaturationCase runs the product that overflows int16 in
// vpmaddubsw (211*71 + 171*107 = 33278): full-range weights must take the
// exact path.
func TestQGemmSaturationCase(t *testing.T) {
	a := []uint8{211, 171, 255, 255}
	b := []int8{71, 107, 127, 127}
	pb, _ := PackQB(4, 1, b, 1, false)
	if pb.Exact {
		t.Fatal("weights 107 and 127 reported as 7-bit")
	}
	for _, kern := range qImpls {
		for _, m := range []int{1, 4} {
			aa := make([]uint8, 0, 4*m)
			for range m {
				aa = append(aa, a...)
			}
			o := &QOutput{Kind: QOutInt32, I32: make([]int32, m)}
			var s QScratch
			if err := s.qgemm(kern, m, aa, 4, 0, pb, nil, o, 1); err != nil {
				t.Fatal(err)
			}
			want := int32(211*71 + 171*107 + 255*127*2)
			for i := range m {
				if o.I32[i] != want {
					t.Errorf("%s m=%d: got %d, want %d", kern.name, m, o.I32[i], want)
				}
			}
		}
	}
}

func TestQGemmErrors(t *testing.T) {
	pb, _ := PackQB(4, 3, make([]int8, 12), 3, false)
	a := make([]uint8, 8)
	out := func() *QOutput { return &QOutput{Kind: QOutInt32, I32: make([]int32, 6)} }
	cases := []struct {
		name string
		err  error
	}{
		{"nil B", QGemm(2, a, 4, 0, nil, nil, out(), 1)},
		{"m=0", QGemm(0, a, 4, 0, pb, nil, out(), 1)},
		{"short A", QGemm(3, a, 4, 0, pb, nil, out(), 1)},
		{"lda", QGemm(2, a, 3, 0, pb, nil, out(), 1)},
		{"za", QGemm(2, a, 4, 256, pb, nil, out(), 1)},
		{"zb len", QGemm(2, a, 4, 0, pb, []int32{1, 2}, out(), 1)},
		{"zb range", QGemm(2, a, 4, 0, pb, []int32{128}, out(), 1)},
		{"nil out", QGemm(2, a, 4, 0, pb, nil, nil, 1)},
		{"short out", QGemm(2, a, 4, 0, pb, nil, &QOutput{Kind: QOutInt32, I32: make([]int32, 5)}, 1)},
		{"no scale", QGemm(2, a, 4, 0, pb, nil, &QOutput{Kind: QOutFloat32, F32: make([]float32, 6)}, 1)},
		{"nan scale", QGemm(2, a, 4, 0, pb, nil, &QOutput{Kind: QOutFloat32, F32: make([]float32, 6), Scale: []float32{float32(math.NaN())}}, 1)},
		{"float bias on u8", QGemm(2, a, 4, 0, pb, nil, &QOutput{Kind: QOutUint8, U8: make([]uint8, 6), Scale: []float32{1}, Bias: make([]float32, 3)}, 1)},
		{"bias len", QGemm(2, a, 4, 0, pb, nil, &QOutput{Kind: QOutInt32, I32: make([]int32, 6), BiasI32: make([]int32, 2)}, 1)},
		{"zo", QGemm(2, a, 4, 0, pb, nil, &QOutput{Kind: QOutInt8, I8: make([]int8, 6), Scale: []float32{1}, ZeroPoint: 128}, 1)},
		{"ldc", QGemm(2, a, 4, 0, pb, nil, &QOutput{Kind: QOutInt32, I32: make([]int32, 6), LDC: 2}, 1)},
		{"kind", QGemm(2, a, 4, 0, pb, nil, &QOutput{Kind: 9}, 1)},
	}
	for _, c := range cases {
		if c.err == nil {
			t.Errorf("%s: no error", c.name)
		}
	}
	if _, err := PackQB(2, 2, make([]int8, 3), 2, false); err == nil {
		t.Error("PackQB short B: no error")
	}
	if _, err := PackQB(0, 2, nil, 2, false); err == nil {
		t.Error("PackQB empty: no error")
	}
	if _, err := PackQA(2, 2, make([]int8, 4), 1); err == nil {
		t.Error("PackQA ldw: no error")
	}
}

// qRefGemmA is the exact reference of QGemmA: sum_k (w-zw)(b-zb), B K x N.
func qRefGemmA(m, n, k int, w []int8, zw []int32, b []uint8, ldb int, zb int32) []int64 {
	want := make([]int64, m*n)
	for i := 0; i < m; i++ {
		for j := 0; j < n; j++ {
			var s int64
			for p := 0; p < k; p++ {
				s += (int64(w[i*k+p]) - zpAt(zw, i)) * (int64(b[p*ldb+j]) - int64(zb))
			}
			want[i*n+j] = s
		}
	}
	return want
}

func TestQGemmA(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	cfg := 0
	shapes := qShapes(true)
	for _, sh := range shapes {
		m, n, k := sh.m, sh.n, sh.k
		if m*n*k > 20<<20 {
			continue
		}
		ldb := n + r.IntN(3)
		bm := qRandU8(r, (k-1)*ldb+n)
		for _, threads := range []int{1, 2, 3} {
			c := qConfigN(cfg)
			cfg++
			w := qRandWeights(r, m*k, c.full)
			pa, err := PackQA(m, k, w, k)
			if err != nil {
				t.Fatal(err)
			}
			zw := c.zeroPoints(r, m)
			zb := c.za
			want := qRefGemmA(m, n, k, w, zw, bm, ldb, zb)
			o := c.makeOutput(r, m, n, m, 64*128*math.Sqrt(float64(k)))
			for _, kern := range qImpls {
				s := QScratch{split: cfg%2 == 0}
				name := fmt.Sprintf("%s/%dx%dx%d/t%d/split=%v/%v", kern.name, m, n, k, threads, s.split, c)
				if err := s.qgemmA(kern, pa, zw, n, bm, ldb, zb, o, threads); err != nil {
					t.Fatalf("%s: %v", name, err)
				}
				qRefCheck(t, name, o, m, n, true, want)
			}
		}
	}
}

// TestQScratchReuse runs different products through one scratch and checks
// that steady-state calls do not allocate.
func TestQScratchReuse(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	var s QScratch
	for _, sh := range []qShape{{64, 300, 700}, {5, 17, 33}, {1, 500, 300}, {130, 40, 1029}} {
		b := qRandWeights(r, sh.k*sh.n, false)
		pb, _ := PackQB(sh.k, sh.n, b, sh.n, false)
		a := qRandU8(r, sh.m*sh.k)
		o := &QOutput{Kind: QOutFloat32, F32: make([]float32, sh.m*sh.n), Scale: []float32{0.01}}
		for _, threads := range []int{1, 2} {
			if err := s.QGemm(sh.m, a, sh.k, 3, pb, []int32{2}, o, threads); err != nil {
				t.Fatal(err)
			}
			want := qRefGemm(sh.m, sh.n, sh.k, a, sh.k, 3, b, sh.n, []int32{2})
			qRefCheck(t, "reuse", o, sh.m, sh.n, false, want)
			allocs := testing.AllocsPerRun(3, func() {
				_ = s.QGemm(sh.m, a, sh.k, 3, pb, []int32{2}, o, 1)
			})
			if allocs > 0 {
				t.Errorf("%v threads=1: %v allocations per call", sh, allocs)
			}
		}
	}
}

// FuzzQGemm compares every implementation with the exact reference on
// products built from the fuzz input.
func FuzzQGemm(f *testing.F) {
	f.Add(uint8(3), uint8(17), uint8(5), uint8(128), int8(-3), uint8(0), uint8(1), []byte("seed data for the product"))
	f.Add(uint8(1), uint8(33), uint8(40), uint8(255), int8(127), uint8(2), uint8(2), []byte{255, 128, 0, 7})
	f.Add(uint8(9), uint8(1), uint8(1), uint8(0), int8(-128), uint8(3), uint8(3), []byte{211, 71, 171, 107})
	f.Fuzz(func(t *testing.T, mm, nn, kk, za uint8, zb int8, kind, threads uint8, data []byte) {
		m, n, k := int(mm%40)+1, int(nn%40)+1, int(kk%70)+1
		if len(data) == 0 {
			data = []byte{1}
		}
		at := func(i int) byte { return data[i%len(data)] ^ byte(i*131>>3) }
		a := make([]uint8, m*k)
		for i := range a {
			a[i] = at(i)
		}
		b := make([]int8, k*n)
		for i := range b {
			b[i] = int8(at(len(a) + i))
		}
		pb, err := PackQB(k, n, b, n, false)
		if err != nil {
			t.Fatal(err)
		}
		want := qRefGemm(m, n, k, a, k, int32(za), b, n, []int32{int32(zb)})
		o := &QOutput{Kind: QOutKind(kind % 4), Scale: []float32{1.0 / 512}, ZeroPoint: 1, Relu: kind&4 != 0}
		o.I32, o.F32, o.U8, o.I8 = make([]int32, m*n), make([]float32, m*n), make([]uint8, m*n), make([]int8, m*n)
		for _, kern := range qImpls {
			var s QScratch
			if err := s.qgemm(kern, m, a, k, int32(za), pb, []int32{int32(zb)}, o, int(threads%4)); err != nil {
				t.Fatal(err)
			}
			qRefCheck(t, kern.name, o, m, n, false, want)
		}
	})
}

// TestQDispatch checks that the kernel selection follows GODEBUG: with
// cpu.avx2=off (honoured by golang.org/x/sys/cpu) only the portable
// kernels remain.
func TestQDispatch(t *testing.T) {
	var names []string
	for _, k := range qImpls {
		names = append(names, k.name)
	}
	t.Logf("int8 kernels: %v, default %s", names, qDefault.name)
	if qDefault != qImpls[len(qImpls)-1] || qImpls[0] != qGeneric {
		t.Fatalf("qDefault %s is not the last of %v", qDefault.name, names)
	}
	if QKernelName() != qDefault.name {
		t.Fatalf("QKernelName() = %q, want the default %q", QKernelName(), qDefault.name)
	}
	if strings.Contains(os.Getenv("GODEBUG"), "cpu.avx2=off") && len(qImpls) != 1 {
		t.Fatalf("GODEBUG=cpu.avx2=off but the kernels %v are enabled", names)
	}
}

// TestQStage checks every implementation's output stage against the
// portable one on every width from 1 to 50 columns (so that each vector
// width and its tails are covered: 16-, 8- and 1-column steps), each output
// kind and each parameter layout.
func TestQStage(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	for n := 1; n <= 50; n++ {
		for variant := 0; variant < 8; variant++ {
			for _, kind := range []QOutKind{QOutInt32, QOutFloat32, QOutUint8, QOutInt8} {
				rows, ldacc, ldo := 1+r.IntN(3), n+r.IntN(3), n+r.IntN(3)
				a := qStageArgs{rows: rows, n: n, ldacc: ldacc, ldo: ldo, kind: kind, relu: variant&1 != 0,
					acc: make([]int32, (rows-1)*ldacc+n), c: make([]int32, n), r: make([]int32, rows)}
				for i := range a.acc {
					a.acc[i] = int32(r.IntN(1<<20) - 1<<19)
				}
				for i := range a.c {
					a.c[i] = int32(r.IntN(1<<16) - 1<<15)
				}
				for i := range a.r {
					a.r[i] = int32(r.IntN(1<<16) - 1<<15)
				}
				if variant&2 != 0 {
					a.x, a.y = make([]int32, rows), make([]int32, n)
					for i := range a.x {
						a.x[i] = int32(r.IntN(255) - 127)
					}
					for i := range a.y {
						a.y[i] = int32(r.IntN(255))
					}
				}
				if kind != QOutInt32 {
					switch {
					case variant&4 != 0:
						a.scale, a.scaleVec = make([]float32, n), true
					default:
						a.scale, a.scaleStep = make([]float32, rows), 1
					}
					for i := range a.scale {
						a.scale[i] = float32(r.Float64()*2e-4 + 1e-5)
					}
				}
				if kind == QOutFloat32 && variant&2 != 0 {
					a.bias, a.biasVec = make([]float32, n), true
					for i := range a.bias {
						a.bias[i] = float32(r.NormFloat64())
					}
				}
				switch kind {
				case QOutUint8:
					a.zo, a.qmin, a.qmax = 100, 0, 255
				case QOutInt8:
					a.zo, a.qmin, a.qmax = -3, -128, 127
				}
				if a.relu && (kind == QOutUint8 || kind == QOutInt8) {
					a.qmin = a.zo
				}
				size := (rows-1)*ldo + n
				run := func(stage func(qStageArgs)) any {
					b := a
					switch kind {
					case QOutInt32:
						b.i32 = make([]int32, size)
						stage(b)
						return b.i32
					case QOutFloat32:
						b.f32 = make([]float32, size)
						stage(b)
						return b.f32
					}
					b.b8 = make([]byte, size)
					stage(b)
					return b.b8
				}
				want := run(func(b qStageArgs) { qStageGeneric(b, 0) })
				for _, kern := range qImpls {
					if got := run(kern.stage); !reflect.DeepEqual(got, want) {
						t.Fatalf("%s: stage of %d rows x %d columns, kind %v, variant %d: got %v, want %v",
							kern.name, rows, n, kind, variant, got, want)
					}
				}
			}
		}
	}
}

// TestQGemmConcurrentCallers runs products on several goroutines at once,
// each with its own scratch and two threads, so that they share (and
// compete for) the helper pool, and checks every result.
func TestQGemmConcurrentCallers(t *testing.T) {
	const callers = 4
	var wg sync.WaitGroup
	errs := make(chan error, callers)
	for g := range callers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := rand.New(rand.NewPCG(uint64(g), 11))
			m, n, k := 33+g, 70, 129
			a := qRandU8(r, m*k)
			b := qRandWeights(r, k*n, false)
			pb, err := PackQB(k, n, b, n, false)
			if err != nil {
				errs <- err
				return
			}
			want := qRefGemm(m, n, k, a, k, 5, b, n, []int32{0})
			var s QScratch
			for it := range 20 {
				o := &QOutput{Kind: QOutInt32, I32: make([]int32, m*n)}
				if err := s.QGemm(m, a, k, 5, pb, []int32{0}, o, 2); err != nil {
					errs <- err
					return
				}
				for i, v := range want {
					if int64(o.I32[i]) != v {
						errs <- fmt.Errorf("caller %d iteration %d: element %d = %d, want %d", g, it, i, o.I32[i], v)
						return
					}
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}
