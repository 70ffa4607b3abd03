package kernels

import (
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"strings"
	"testing"

	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/gonum"
)

// impls lists the micro-kernels to test: the portable one always, the
// assembly ones the CPU can run.
func impls() []int { return availableImpls() }

func implName(impl int) string {
	return [...]string{implGeneric: "generic", implAVX2: "avx2", implAVX512: "avx512"}[impl]
}

// withImpl runs f with the selected micro-kernel and restores the default.
func withImpl(impl int, f func()) {
	saved := activeImpl
	activeImpl = impl
	defer func() { activeImpl = saved }()
	f()
}

func randMatrix(r *rand.Rand, rows, cols, ld int) []float32 {
	if rows == 0 {
		return nil
	}
	x := make([]float32, (rows-1)*ld+cols)
	for i := range x {
		x[i] = float32(r.NormFloat64())
	}
	return x
}

// refGemm computes the expected result with gonum's Sgemm and the bound
// of the rounding error of each element (from a float64 sum of |a||b|).
func refGemm(transA, transB bool, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) (want []float32, tol []float64) {
	want = append([]float32(nil), c...)
	tA, tB := blas.NoTrans, blas.NoTrans
	if transA {
		tA = blas.Trans
	}
	if transB {
		tB = blas.Trans
	}
	if m > 0 && n > 0 {
		if beta == 0 {
			// gonum reads C when beta == 0 only to overwrite it, but
			// clear NaN garbage so the reference is defined.
			for i := 0; i < m; i++ {
				clear(want[i*ldc : i*ldc+n])
			}
		}
		if k == 0 {
			for i := 0; i < m; i++ {
				for j := 0; j < n; j++ {
					want[i*ldc+j] *= beta
				}
			}
		} else {
			gonum.Implementation{}.Sgemm(tA, tB, m, n, k, alpha, a, lda, b, ldb, beta, want, ldc)
		}
	}
	tol = make([]float64, len(c))
	at := func(i, p int) float64 {
		if transA {
			return float64(a[p*lda+i])
		}
		return float64(a[i*lda+p])
	}
	bt := func(p, j int) float64 {
		if transB {
			return float64(b[j*ldb+p])
		}
		return float64(b[p*ldb+j])
	}
	for i := 0; i < m; i++ {
		for j := 0; j < n; j++ {
			var s float64
			for p := 0; p < k; p++ {
				s += math.Abs(at(i, p) * bt(p, j))
			}
			s *= math.Abs(float64(alpha))
			if beta != 0 {
				s += math.Abs(float64(beta) * float64(c[i*ldc+j]))
			}
			tol[i*ldc+j] = 4*float64(k+2)*0x1p-24*s + 1e-30
		}
	}
	return want, tol
}

func compare(t *testing.T, name string, m, n, ldc int, got, want []float32, tol []float64) {
	t.Helper()
	bad := 0
	for i := 0; i < m; i++ {
		for j := 0; j < n; j++ {
			g, w := got[i*ldc+j], want[i*ldc+j]
			if math.Abs(float64(g)-float64(w)) > tol[i*ldc+j] || math.IsNaN(float64(g)) != math.IsNaN(float64(w)) {
				if bad < 3 {
					t.Errorf("%s: C[%d][%d] = %v, want %v (tol %g)", name, i, j, g, w, tol[i*ldc+j])
				}
				bad++
			}
		}
		// Padding between rows must be untouched.
		for j := n; j < ldc && i*ldc+j < len(got); j++ {
			if got[i*ldc+j] != want[i*ldc+j] && !(math.IsNaN(float64(got[i*ldc+j])) && math.IsNaN(float64(want[i*ldc+j]))) {
				t.Errorf("%s: padding C[%d][%d] changed to %v", name, i, j, got[i*ldc+j])
				return
			}
		}
	}
	if bad > 3 {
		t.Errorf("%s: %d elements wrong", name, bad)
	}
}

type gemmCase struct {
	m, n, k        int
	transA, transB bool
	alpha, beta    float32
	pad            int // extra leading-dimension padding
}

func (c gemmCase) String() string {
	return fmt.Sprintf("m%d_n%d_k%d_tA%v_tB%v_a%g_b%g_pad%d", c.m, c.n, c.k, c.transA, c.transB, c.alpha, c.beta, c.pad)
}

func gemmCases(short bool) []gemmCase {
	var cases []gemmCase
	ab := []struct{ alpha, beta float32 }{{1, 0}, {1, 1}, {-0.5, 2}, {2, 0}, {0, 0.5}, {1.5, -1}}
	small := []int{1, 3, 5, 17, 33}
	i := 0
	for _, m := range small {
		for _, n := range small {
			for _, k := range small {
				for tr := 0; tr < 4; tr++ {
					x := ab[i%len(ab)]
					cases = append(cases, gemmCase{m, n, k, tr&1 != 0, tr&2 != 0, x.alpha, x.beta, i % 3 * 2})
					i++
				}
			}
		}
	}
	big := []int{1, 17, 100, 257}
	if short {
		big = []int{17, 100}
	}
	for _, m := range big {
		for _, n := range big {
			for _, k := range big {
				if m*n*k < 100*100*100 && m != 1 && n != 1 && k != 1 && m*n*k != 17*17*17 {
					continue
				}
				x := ab[i%len(ab)]
				cases = append(cases, gemmCase{m, n, k, i&1 != 0, i&2 != 0, x.alpha, x.beta, i % 2 * 5})
				i++
			}
		}
	}
	// Cross the nc block boundary and the zero sizes.
	cases = append(cases,
		gemmCase{7, nc + 37, 19, false, true, 1, 1, 1},
		gemmCase{mc + 5, 40, kc*2 + 3, true, false, 1, 0, 0},
		gemmCase{0, 5, 3, false, false, 1, 1, 0},
		gemmCase{5, 0, 3, false, false, 1, 1, 0},
		gemmCase{5, 4, 0, false, false, 1, 2, 0},
		gemmCase{5, 4, 0, true, true, 1, 0, 0},
	)
	return cases
}

// makeOperands builds random A, B, C for a case; C is filled with NaN when
// beta is zero to check it is never read.
func makeOperands(r *rand.Rand, tc gemmCase) (a []float32, lda int, b []float32, ldb int, c []float32, ldc int) {
	if tc.transA {
		lda = tc.m + tc.pad
		a = randMatrix(r, tc.k, tc.m, lda)
	} else {
		lda = tc.k + tc.pad
		a = randMatrix(r, tc.m, tc.k, lda)
	}
	if tc.transB {
		ldb = tc.k + tc.pad
		b = randMatrix(r, tc.n, tc.k, ldb)
	} else {
		ldb = tc.n + tc.pad
		b = randMatrix(r, tc.k, tc.n, ldb)
	}
	ldc = tc.n + tc.pad
	c = randMatrix(r, tc.m, tc.n, ldc)
	if tc.beta == 0 {
		for i := 0; i < tc.m; i++ {
			for j := 0; j < tc.n; j++ {
				c[i*ldc+j] = float32(math.NaN())
			}
		}
	}
	return
}

func TestSgemmAgainstGonum(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for _, tc := range gemmCases(testing.Short()) {
		a, lda, b, ldb, c0, ldc := makeOperands(r, tc)
		want, tol := refGemm(tc.transA, tc.transB, tc.m, tc.n, tc.k, tc.alpha, a, lda, b, ldb, tc.beta, c0, ldc)
		for _, impl := range impls() {
			var first []float32
			for _, threads := range []int{1, 2, 3} {
				name := fmt.Sprintf("%v/%s/t%d", tc, implName(impl), threads)
				c := append([]float32(nil), c0...)
				withImpl(impl, func() {
					Sgemm(tc.transA, tc.transB, tc.m, tc.n, tc.k, tc.alpha, a, lda, b, ldb, tc.beta, c, ldc, threads)
				})
				compare(t, name, tc.m, tc.n, ldc, c, want, tol)
				if first == nil {
					first = c
				} else if !bitEqual(first, c) {
					t.Errorf("%s: result differs from the 1-thread result", name)
				}
			}
		}
	}
}

func bitEqual(x, y []float32) bool {
	if len(x) != len(y) {
		return false
	}
	for i := range x {
		if math.Float32bits(x[i]) != math.Float32bits(y[i]) {
			return false
		}
	}
	return true
}

// TestPackedMatchesUnpacked checks that prepacked operands give the same
// bits as packing on the fly (same kernel, same layout, same K blocks).
func TestPackedMatchesUnpacked(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	shapes := []struct{ m, n, k int }{{1, 1, 1}, {5, 17, 33}, {33, 100, 257}, {150, 40, 600}, {6, 16, 256}, {7, 2100, 5}}
	for _, s := range shapes {
		for tr := 0; tr < 4; tr++ {
			tc := gemmCase{m: s.m, n: s.n, k: s.k, transA: tr&1 != 0, transB: tr&2 != 0, alpha: 1, beta: 0.5, pad: 3}
			a, lda, b, ldb, c0, ldc := makeOperands(r, tc)
			for _, impl := range impls() {
				withImpl(impl, func() {
					want := append([]float32(nil), c0...)
					Sgemm(tc.transA, tc.transB, tc.m, tc.n, tc.k, 1, a, lda, b, ldb, tc.beta, want, ldc, 1)
					pa := PackA(tc.transA, tc.m, tc.k, a, lda)
					pb := PackB(tc.transB, tc.k, tc.n, b, ldb)
					for _, threads := range []int{1, 2, 3} {
						name := fmt.Sprintf("%v/%s/t%d", tc, implName(impl), threads)
						if !tc.transA {
							c := append([]float32(nil), c0...)
							SgemmPacked(tc.m, a, lda, pb, c, ldc, tc.beta, threads)
							if !bitEqual(c, want) {
								t.Errorf("%s: SgemmPacked differs from Sgemm", name)
							}
						}
						if !tc.transB {
							c := append([]float32(nil), c0...)
							SgemmPackedA(pa, tc.n, b, ldb, c, ldc, tc.beta, nil, threads)
							if !bitEqual(c, want) {
								t.Errorf("%s: SgemmPackedA differs from Sgemm", name)
							}
						}
						c := append([]float32(nil), c0...)
						g := Gemm{M: tc.m, N: tc.n, K: tc.k, PA: pa, PB: pb, C: c, LDC: ldc, Alpha: 1, Beta: tc.beta, Threads: threads}
						g.Run()
						if !bitEqual(c, want) {
							t.Errorf("%s: both packed differs from Sgemm", name)
						}
					}
				})
			}
		}
	}
}

func TestEpilogue(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	shapes := []struct{ m, n, k int }{{1, 1, 1}, {6, 16, 8}, {7, 19, 300}, {33, 50, 17}, {5, 4, 0}}
	for _, s := range shapes {
		for variant := 0; variant < 8; variant++ {
			useRow, useCol, relu := variant&1 != 0, variant&2 != 0, variant&4 != 0
			tc := gemmCase{m: s.m, n: s.n, k: s.k, alpha: 1, beta: float32(variant % 3), pad: 2}
			a, lda, b, ldb, c0, ldc := makeOperands(r, tc)
			want, tol := refGemm(false, false, tc.m, tc.n, tc.k, tc.alpha, a, lda, b, ldb, tc.beta, c0, ldc)
			var epi Epilogue
			if useRow {
				epi.BiasRow = randMatrix(r, 1, tc.m, tc.m)
			}
			if useCol {
				epi.BiasCol = randMatrix(r, 1, tc.n, tc.n)
			}
			epi.Relu = relu
			for i := 0; i < tc.m; i++ {
				for j := 0; j < tc.n; j++ {
					v := want[i*ldc+j]
					if useRow {
						v += epi.BiasRow[i]
					}
					if useCol {
						v += epi.BiasCol[j]
					}
					if relu && v < 0 {
						v = 0
					}
					want[i*ldc+j] = v
					tol[i*ldc+j] += 1e-6
				}
			}
			for _, impl := range impls() {
				for _, threads := range []int{1, 3} {
					name := fmt.Sprintf("%v/row%v_col%v_relu%v/%s/t%d", tc, useRow, useCol, relu, implName(impl), threads)
					c := append([]float32(nil), c0...)
					withImpl(impl, func() {
						g := Gemm{M: tc.m, N: tc.n, K: tc.k, A: a, LDA: lda, B: b, LDB: ldb, C: c, LDC: ldc,
							Alpha: tc.alpha, Beta: tc.beta, Epilogue: epi, Threads: threads}
						g.Run()
					})
					compare(t, name, tc.m, tc.n, ldc, c, want, tol)
					if tc.m > 0 && tc.k > 0 {
						pa := PackA(false, tc.m, tc.k, a, lda)
						c2 := append([]float32(nil), c0...)
						withImpl(impl, func() { SgemmPackedA(pa, tc.n, b, ldb, c2, ldc, tc.beta, &epi, threads) })
						if !bitEqual(c, c2) {
							t.Errorf("%s: SgemmPackedA with epilogue differs from Gemm", name)
						}
					}
				}
			}
		}
	}
}

// TestReluKeepsNaN checks both kernels treat NaN the same in the ReLU.
func TestReluKeepsNaN(t *testing.T) {
	a := []float32{float32(math.NaN()), -1, 1}
	b := []float32{1}
	for _, impl := range impls() {
		c := make([]float32, 3)
		withImpl(impl, func() {
			g := Gemm{M: 3, N: 1, K: 1, A: a, LDA: 1, B: b, LDB: 1, C: c, LDC: 1, Alpha: 1, Epilogue: Epilogue{Relu: true}}
			g.Run()
		})
		if !math.IsNaN(float64(c[0])) || c[1] != 0 || c[2] != 1 {
			t.Errorf("%s: relu(NaN, -1, 1) = %v", implName(impl), c)
		}
	}
}

func TestWorkspace(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	tc := gemmCase{m: 70, n: 90, k: 300, alpha: 1, beta: 0}
	a, lda, b, ldb, c0, ldc := makeOperands(r, tc)
	want := append([]float32(nil), c0...)
	Sgemm(false, false, tc.m, tc.n, tc.k, 1, a, lda, b, ldb, 0, want, ldc, 1)
	for _, threads := range []int{1, 2, 3} {
		g := Gemm{M: tc.m, N: tc.n, K: tc.k, A: a, LDA: lda, B: b, LDB: ldb, C: append([]float32(nil), c0...), LDC: ldc, Alpha: 1, Threads: threads}
		g.Workspace = make([]float32, g.WorkspaceSize())
		allocs := testing.AllocsPerRun(5, g.Run)
		if !bitEqual(g.C, want) {
			t.Errorf("threads %d: result with workspace differs", threads)
		}
		if threads == 1 && allocs > 0 {
			t.Errorf("threads %d: %v allocations per Run with a workspace", threads, allocs)
		}
	}
}

func TestSgemmPanicsOnBadArguments(t *testing.T) {
	cases := []struct {
		name string
		f    func()
	}{
		{"short A", func() {
			Sgemm(false, false, 2, 2, 2, 1, make([]float32, 3), 2, make([]float32, 4), 2, 0, make([]float32, 4), 2, 1)
		}},
		{"small lda", func() {
			Sgemm(false, false, 2, 2, 2, 1, make([]float32, 4), 1, make([]float32, 4), 2, 0, make([]float32, 4), 2, 1)
		}},
		{"short C", func() {
			Sgemm(false, false, 2, 2, 2, 1, make([]float32, 4), 2, make([]float32, 4), 2, 0, make([]float32, 3), 2, 1)
		}},
		{"negative m", func() { Sgemm(false, false, -1, 2, 2, 1, nil, 2, nil, 2, 0, nil, 2, 1) }},
		{"packed A too short", func() {
			SgemmPacked(2, make([]float32, 3), 3, PackB(false, 2, 2, make([]float32, 4), 2), make([]float32, 4), 2, 0, 1)
		}},
	}
	for _, tc := range cases {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("%s: no panic", tc.name)
				}
			}()
			tc.f()
		}()
	}
}

// FuzzSgemm checks every micro-kernel against a float64 reference on
// shapes, transposes, strides, scalars and thread counts chosen by the
// fuzzer: go test -fuzz FuzzSgemm ./runtime/kernels/
func FuzzSgemm(f *testing.F) {
	f.Add(uint8(5), uint8(17), uint8(33), uint8(0), uint8(0), uint64(1))
	f.Add(uint8(1), uint8(1), uint8(1), uint8(3), uint8(1), uint64(2))
	f.Add(uint8(13), uint8(40), uint8(255), uint8(7), uint8(2), uint64(3))
	f.Fuzz(func(t *testing.T, m8, n8, k8, flags, pad uint8, seed uint64) {
		m, n, k := int(m8)%70, int(n8)%70, int(k8)%300
		r := rand.New(rand.NewPCG(seed, 99))
		scalars := []float32{0, 1, -1, 0.5, 2}
		tc := gemmCase{m: m, n: n, k: k, transA: flags&1 != 0, transB: flags&2 != 0,
			alpha: scalars[int(flags>>2)%len(scalars)], beta: scalars[int(flags>>5)%len(scalars)], pad: int(pad % 4)}
		a, lda, b, ldb, c0, ldc := makeOperands(r, tc)
		if m == 0 || n == 0 {
			ldc = max(ldc, 1)
		}
		want, tol := refGemm(tc.transA, tc.transB, m, n, k, tc.alpha, a, max(lda, 1), b, max(ldb, 1), tc.beta, c0, ldc)
		for _, impl := range impls() {
			c := append([]float32(nil), c0...)
			withImpl(impl, func() {
				Sgemm(tc.transA, tc.transB, m, n, k, tc.alpha, a, max(lda, 1), b, max(ldb, 1), tc.beta, c, ldc, 1+int(seed%3))
			})
			compare(t, fmt.Sprintf("%v/%s", tc, implName(impl)), m, n, ldc, c, want, tol)
		}
	})
}

// TestDispatch checks that the fastest available kernel is the default and
// that GODEBUG=cpu.avx2=off (honoured by golang.org/x/sys/cpu) selects the
// portable one.
func TestDispatch(t *testing.T) {
	avail := availableImpls()
	if activeImpl != avail[len(avail)-1] {
		t.Errorf("active kernel %s, want the fastest available %s", implName(activeImpl), implName(avail[len(avail)-1]))
	}
	t.Logf("kernels available: %v, active: %s", avail, implName(activeImpl))
	godebug := os.Getenv("GODEBUG")
	if strings.Contains(godebug, "cpu.avx2=off") && activeImpl != implGeneric {
		t.Errorf("GODEBUG=%s but the active kernel is %s", godebug, implName(activeImpl))
	}
	if strings.Contains(godebug, "cpu.avx512f=off") && activeImpl == implAVX512 {
		t.Errorf("GODEBUG=%s but the active kernel is %s", godebug, implName(activeImpl))
	}
}

// TestThreadSplits covers both split directions and uneven parts: the result
// must not depend on the thread count, bit for bit.
func TestThreadSplits(t *testing.T) {
	r := rand.New(rand.NewPCG(9, 10))
	cases := []struct {
		m, n, k int
		splitN  bool // expected split direction with 3 threads
	}{
		{300, 20, 200, false},
		{20, 300, 200, true},
		{7, 2*nc + 100, 100, true},
		{301, 301, 70, false}, // 17 row tiles per part beat 7 or 6 column tiles
		{1000, 16, 300, false},
	}
	for _, tc := range cases {
		g := Gemm{M: tc.m, N: tc.n, K: tc.k, Threads: 3}
		if p := g.plan(); p.parts != 3 || p.splitN != tc.splitN {
			t.Errorf("%dx%dx%d: plan %+v, want 3 parts with splitN=%v", tc.m, tc.n, tc.k, p, tc.splitN)
		}
		c := gemmCase{m: tc.m, n: tc.n, k: tc.k, alpha: 1, beta: 0.5, pad: 1}
		a, lda, b, ldb, c0, ldc := makeOperands(r, c)
		want, tol := refGemm(false, false, tc.m, tc.n, tc.k, 1, a, lda, b, ldb, 0.5, c0, ldc)
		var first []float32
		for _, threads := range []int{1, 2, 3, 4, 7} {
			got := append([]float32(nil), c0...)
			Sgemm(false, false, tc.m, tc.n, tc.k, 1, a, lda, b, ldb, 0.5, got, ldc, threads)
			name := fmt.Sprintf("%dx%dx%d/t%d", tc.m, tc.n, tc.k, threads)
			compare(t, name, tc.m, tc.n, ldc, got, want, tol)
			if first == nil {
				first = got
			} else if !bitEqual(first, got) {
				t.Errorf("%s: differs from the 1-thread result", name)
			}
		}
	}
}
