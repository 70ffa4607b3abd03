package kernels

import (
	"fmt"
	"sync"
	"unsafe"

	"github.com/compressml/compress/internal/parallel"
)

// Blocking parameters. mr x nr is the micro-kernel tile; kc, mc and nc are
// the (largest) cache blocks of the K, M and N loops (see doc.go). The K
// blocking (kStep) is baked into PackedA and PackedB, so it depends on K
// only, never on M, N or the thread count.
const (
	mr = 6
	nr = 16
	kc = 256
	mc = 144 // multiple of mr
	nc = 1024
	// minMACsPerThread is the least work (multiply-adds) worth a goroutine:
	// about 3 microseconds of kernel time, against about 1 to start and join one.
	minMACsPerThread = 1 << 18
)

// Epilogue is applied to each element of C after the product has been
// accumulated, in this order: C[i][j] += BiasRow[i]; C[i][j] += BiasCol[j];
// if Relu, C[i][j] = max(C[i][j], 0). It runs while the tile is still in
// registers, so a convolution with bias and ReLU costs a single pass over C.
type Epilogue struct {
	// BiasRow, if non-nil, holds m values; BiasRow[i] is added to row i
	// (the per-output-channel bias of a convolution computed as W x cols).
	BiasRow []float32
	// BiasCol, if non-nil, holds n values; BiasCol[j] is added to column j
	// (the bias of a fully connected layer computed as X x W).
	BiasCol []float32
	// Relu clamps negative results to zero (NaN stays NaN).
	Relu bool
}

func (e *Epilogue) empty() bool {
	return e == nil || (e.BiasRow == nil && e.BiasCol == nil && !e.Relu)
}

// Gemm describes one product C = Alpha*op(A)*op(B) + Beta*C followed by an
// optional Epilogue, with row-major matrices. op(A) is M x K and op(B) is
// K x N. Each operand comes either as a strided matrix (A, LDA, TransA) or
// prepacked (PA); the prepacked form wins when both are set.
//
// When Beta is zero the old contents of C are never read, so C may hold
// garbage (even NaN). When Alpha is zero or K is zero, A and B are not read
// and C = Beta*C followed by the epilogue.
//
// Run panics if the dimensions, leading dimensions or slice lengths are
// inconsistent: those are programming errors of the caller (shapes are
// validated when an operator is compiled).
type Gemm struct {
	M, N, K int

	TransA bool      // op(A) = A^T: A is stored K x M
	A      []float32 // used when PA is nil
	LDA    int
	PA     *PackedA // prepacked op(A), M x K

	TransB bool      // op(B) = B^T: B is stored N x K
	B      []float32 // used when PB is nil
	LDB    int
	PB     *PackedB // prepacked op(B), K x N
	// BConv, if non-nil, makes op(B) the im2col matrix of a convolution
	// input, generated while packing (K = C*KH*KW, N = OutH*OutW). B, LDB,
	// TransB and PB are then ignored.
	BConv *ConvInput

	C   []float32
	LDC int

	Alpha, Beta float32
	Epilogue    Epilogue

	// Threads is the number of goroutines to use (<= 1 means the calling
	// goroutine only). The result is bit-identical for every thread count.
	Threads int
	// Workspace is optional scratch of at least WorkspaceSize() floats. When
	// it is too small, scratch comes from an internal pool.
	Workspace []float32
}

// Sgemm computes C = alpha*op(A)*op(B) + beta*C for row-major matrices, where
// op(X) is X or X^T as selected by transA and transB, op(A) is m x k, op(B) is
// k x n and C is m x n with leading dimension ldc. With beta == 0 the old
// contents of C are ignored. It panics on inconsistent arguments, like the
// reference BLAS.
func Sgemm(transA, transB bool, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int, threads int) {
	g := Gemm{M: m, N: n, K: k, TransA: transA, A: a, LDA: lda, TransB: transB, B: b, LDB: ldb,
		C: c, LDC: ldc, Alpha: alpha, Beta: beta, Threads: threads}
	g.Run()
}

// SgemmPacked computes C = A*B + beta*C where A is a row-major m x pb.K
// matrix with leading dimension lda and B was packed once by PackB.
func SgemmPacked(m int, a []float32, lda int, pb *PackedB, c []float32, ldc int, beta float32, threads int) {
	g := Gemm{M: m, N: pb.n, K: pb.k, A: a, LDA: lda, PB: pb, C: c, LDC: ldc, Alpha: 1, Beta: beta, Threads: threads}
	g.Run()
}

// SgemmPackedA computes C = A*B + beta*C followed by epi (which may be nil),
// where A was packed once by PackA (for example convolution weights) and B is
// a row-major pa.K x n matrix with leading dimension ldb (for example the
// im2col matrix).
func SgemmPackedA(pa *PackedA, n int, b []float32, ldb int, c []float32, ldc int, beta float32, epi *Epilogue, threads int) {
	g := Gemm{M: pa.m, N: n, K: pa.k, PA: pa, B: b, LDB: ldb, C: c, LDC: ldc, Alpha: 1, Beta: beta, Threads: threads}
	if epi != nil {
		g.Epilogue = *epi
	}
	g.Run()
}

// plan is the resolved work split of one Run.
type plan struct {
	parts   int  // number of disjoint output parts (goroutines)
	splitN  bool // parts are column ranges (else row ranges)
	perPart int  // scratch floats per part, including alignment slack
}

func (g *Gemm) plan() plan {
	m, n, k := g.M, g.N, g.K
	threads := g.Threads
	if threads < 1 {
		threads = 1
	}
	if work := int64(m) * int64(n) * int64(k); work/minMACsPerThread < int64(threads) {
		threads = int(max(work/minMACsPerThread, 1))
	}
	mt, nt := ceilDiv(m, mr), ceilDiv(n, nr)
	p := plan{parts: 1, splitN: true}
	if threads > 1 {
		// Estimated time of the slowest part, per unit of k, for each
		// split: micro-kernel tiles (about 3 cycles per k for a 6x16 tile)
		// plus packing (about half a cycle per value). Splitting N makes
		// every part pack all of A and its share of B; splitting M, all
		// of B and its share of A.
		packA, packB := 0.5, 0.5
		if g.PA != nil {
			packA = 0
		}
		if g.PB != nil && g.BConv == nil {
			packB = 0
		}
		tn, tm := ceilDiv(nt, min(threads, nt)), ceilDiv(mt, min(threads, mt))
		costN := 3*float64(tn*mt) + packA*float64(mt*mr) + packB*float64(tn*nr)
		costM := 3*float64(tm*nt) + packA*float64(tm*mr) + packB*float64(nt*nr)
		if costN <= costM {
			p.parts = min(threads, nt)
		} else {
			p.splitN = false
			p.parts = min(threads, mt)
		}
	}
	// Scratch: one A block and one B block per part.
	mPart, nPart := m, n
	if p.splitN {
		nPart = ceilDiv(nt, p.parts) * nr
	} else {
		mPart = ceilDiv(mt, p.parts) * mr
	}
	kb := kStep(k)
	if g.PA == nil {
		p.perPart += roundUp(min(mPart, mc), mr) * kb
	}
	if g.needsBScratch() {
		p.perPart += roundUp(min(nPart, nc), nr) * kb
	}
	if p.perPart > 0 {
		p.perPart += 2 * alignFloats
	}
	return p
}

// WorkspaceSize returns the number of float32 scratch values Run needs for
// this shape, operand form and thread count.
func (g *Gemm) WorkspaceSize() int {
	p := g.plan()
	return p.parts * p.perPart
}

// alignFloats is the alignment of scratch buffers, in floats (64 bytes).
const alignFloats = 16

// scratchPool recycles packing buffers between calls that bring no
// Workspace. It only caches memory; results never depend on it.
var scratchPool sync.Pool

func (g *Gemm) check() {
	m, n, k := g.M, g.N, g.K
	if m < 0 || n < 0 || k < 0 {
		panic(fmt.Sprintf("kernels: Gemm: negative dimension m=%d n=%d k=%d", m, n, k))
	}
	if g.PA != nil && (g.PA.m != m || g.PA.k != k) {
		panic(fmt.Sprintf("kernels: Gemm: packed A is %dx%d, want %dx%d", g.PA.m, g.PA.k, m, k))
	}
	if g.BConv != nil {
		g.BConv.check(k, n)
	} else if g.PB != nil && (g.PB.k != k || g.PB.n != n) {
		panic(fmt.Sprintf("kernels: Gemm: packed B is %dx%d, want %dx%d", g.PB.k, g.PB.n, k, n))
	}
	if m > 0 && n > 0 {
		checkMatrix("C", g.C, m, n, g.LDC)
	}
	if m > 0 && n > 0 && k > 0 && g.Alpha != 0 {
		if g.PA == nil {
			if g.TransA {
				checkMatrix("A", g.A, k, m, g.LDA)
			} else {
				checkMatrix("A", g.A, m, k, g.LDA)
			}
		}
		if g.PB == nil && g.BConv == nil {
			if g.TransB {
				checkMatrix("B", g.B, n, k, g.LDB)
			} else {
				checkMatrix("B", g.B, k, n, g.LDB)
			}
		}
	}
	if g.Epilogue.BiasRow != nil && len(g.Epilogue.BiasRow) < m {
		panic(fmt.Sprintf("kernels: Gemm: BiasRow has %d values, want %d", len(g.Epilogue.BiasRow), m))
	}
	if g.Epilogue.BiasCol != nil && len(g.Epilogue.BiasCol) < n {
		panic(fmt.Sprintf("kernels: Gemm: BiasCol has %d values, want %d", len(g.Epilogue.BiasCol), n))
	}
}

func checkMatrix(name string, x []float32, rows, cols, ld int) {
	if ld < max(cols, 1) {
		panic(fmt.Sprintf("kernels: Gemm: leading dimension of %s is %d, want >= %d", name, ld, cols))
	}
	if need := (rows-1)*ld + cols; len(x) < need {
		panic(fmt.Sprintf("kernels: Gemm: %s has %d values, want >= %d for %dx%d with stride %d", name, len(x), need, rows, cols, ld))
	}
}

// Run computes the product described by g. See Gemm for the contract.
func (g *Gemm) Run() {
	g.check()
	m, n, k := g.M, g.N, g.K
	if m == 0 || n == 0 {
		return
	}
	if k == 0 || g.Alpha == 0 {
		g.scaleOnly()
		return
	}
	p := g.plan()
	ws := g.Workspace
	var pooled *[]float32
	if need := p.parts * p.perPart; len(ws) < need {
		if v, ok := scratchPool.Get().(*[]float32); ok && cap(*v) >= need {
			pooled = v
		} else {
			s := make([]float32, need)
			pooled = &s
		}
		ws = (*pooled)[:need]
	}
	if p.parts == 1 {
		g.part(p, ws, 0)
	} else {
		g.runParallel(p, ws)
	}
	if pooled != nil {
		scratchPool.Put(pooled)
	}
}

// runParallel runs the parts of p on their own goroutines. It works on a
// copy of g so that the single-threaded path keeps g off the heap.
func (g *Gemm) runParallel(p plan, ws []float32) {
	gg := *g
	parallel.For(p.parts, p.parts, 1, func(lo, hi int) {
		for t := lo; t < hi; t++ {
			gg.part(p, ws, t)
		}
	})
}

// part computes output part t of plan p with its slice of the scratch ws.
func (g *Gemm) part(p plan, ws []float32, t int) {
	var buf []float32
	if p.perPart > 0 {
		buf = alignSlice(ws[t*p.perPart : (t+1)*p.perPart])
	}
	if p.splitN {
		nt := ceilDiv(g.N, nr)
		j0, j1 := t*nt/p.parts*nr, min((t+1)*nt/p.parts*nr, g.N)
		g.block(0, g.M, j0, j1, buf)
	} else {
		mt := ceilDiv(g.M, mr)
		i0, i1 := t*mt/p.parts*mr, min((t+1)*mt/p.parts*mr, g.M)
		g.block(i0, i1, 0, g.N, buf)
	}
}

// alignSlice drops leading elements so that the result starts on a 64-byte
// boundary. The caller reserved alignFloats extra elements.
func alignSlice(s []float32) []float32 {
	if len(s) == 0 {
		return s
	}
	off := int(uintptr(unsafe.Pointer(&s[0])) % 64 / 4)
	if off == 0 {
		return s
	}
	return s[alignFloats-off:]
}

// scaleOnly handles k == 0 or alpha == 0: C = beta*C, then the epilogue.
func (g *Gemm) scaleOnly() {
	e := &g.Epilogue
	for i := 0; i < g.M; i++ {
		row := g.C[i*g.LDC : i*g.LDC+g.N]
		for j := range row {
			var v float32
			if g.Beta != 0 {
				v = g.Beta * row[j]
			}
			if e.BiasRow != nil {
				v += e.BiasRow[i]
			}
			if e.BiasCol != nil {
				v += e.BiasCol[j]
			}
			if e.Relu && v < 0 {
				v = 0
			}
			row[j] = v
		}
	}
}

// block computes rows [i0, i1) and columns [j0, j1) of C, using buf as
// packing scratch. i0 is a multiple of mr and j0 a multiple of nr.
func (g *Gemm) block(i0, i1, j0, j1 int, buf []float32) {
	k := g.K
	mPart := i1 - i0
	var bufA, bufB []float32
	if g.PA == nil {
		nA := roundUp(min(mPart, mc), mr) * kStep(k)
		bufA, buf = buf[:nA], buf[nA:]
	}
	if g.needsBScratch() {
		bufB = buf[:roundUp(min(j1-j0, nc), nr)*kStep(k)]
	}
	for jc := j0; jc < j1; jc += nc {
		ncb := min(nc, j1-jc)
		ks := kStep(k)
		for pc := 0; pc < k; pc += ks {
			kcb := min(ks, k-pc)
			var pb []float32
			switch {
			case g.BConv != nil:
				pb = bufB[:roundUp(ncb, nr)*kcb]
				g.BConv.packB(pb, pc, kcb, jc, ncb)
			case g.PB != nil:
				pb = g.PB.block(pc, jc, ncb)
			default:
				pb = bufB[:roundUp(ncb, nr)*kcb]
				packB(pb, g.TransB, g.B, g.LDB, pc, kcb, jc, ncb)
			}
			tile := tileOp{alpha: g.Alpha, beta: g.Beta}
			if pc > 0 {
				tile.beta = 1
			}
			last := pc+kcb == k
			for ic := i0; ic < i1; ic += mc {
				mcb := min(mc, i1-ic)
				var pa []float32
				if g.PA != nil {
					pa = g.PA.block(pc, ic, mcb)
				} else {
					pa = bufA[:roundUp(mcb, mr)*kcb]
					packA(pa, g.TransA, g.A, g.LDA, ic, mcb, pc, kcb)
				}
				g.macro(tile, last, pa, pb, ic, mcb, jc, ncb, kcb)
			}
		}
	}
}

// tileOp holds the per-K-block scaling of the micro-kernel.
type tileOp struct {
	alpha, beta float32
}

// macro runs the micro-kernel over one packed mcb x kcb block of A and one
// packed kcb x ncb block of B, updating C[ic:ic+mcb, jc:jc+ncb].
func (g *Gemm) macro(t tileOp, last bool, pa, pb []float32, ic, mcb, jc, ncb, kcb int) {
	ldc := g.LDC
	var epi *Epilogue
	if last && !g.Epilogue.empty() {
		epi = &g.Epilogue
	}
	for jr := 0; jr < ncb; jr += nr {
		nn := min(nr, ncb-jr)
		bp := pb[jr*kcb : (jr+nr)*kcb]
		j := jc + jr
		for ir := 0; ir < mcb; ir += mr {
			mm := min(mr, mcb-ir)
			ap := pa[ir*kcb : (ir+mr)*kcb]
			i := ic + ir
			var biasRow, biasCol []float32
			relu := false
			if epi != nil {
				if epi.BiasRow != nil {
					biasRow = epi.BiasRow[i : i+mm]
				}
				if epi.BiasCol != nil {
					biasCol = epi.BiasCol[j : j+nn]
				}
				relu = epi.Relu
			}
			if mm == mr && nn == nr {
				microKernel(kcb, ap, bp, g.C[i*ldc+j:], ldc, t.alpha, t.beta, biasRow, biasCol, relu)
				continue
			}
			// Edge tile: run the full kernel on a scratch tile and copy
			// the valid part back.
			var tmp [mr * nr]float32
			var bR [mr]float32
			var bC [nr]float32
			if t.beta != 0 {
				for r := 0; r < mm; r++ {
					copy(tmp[r*nr:r*nr+nn], g.C[(i+r)*ldc+j:(i+r)*ldc+j+nn])
				}
			}
			if biasRow != nil {
				copy(bR[:], biasRow)
				biasRow = bR[:]
			}
			if biasCol != nil {
				copy(bC[:], biasCol)
				biasCol = bC[:]
			}
			microKernel(kcb, ap, bp, tmp[:], nr, t.alpha, t.beta, biasRow, biasCol, relu)
			for r := 0; r < mm; r++ {
				copy(g.C[(i+r)*ldc+j:(i+r)*ldc+j+nn], tmp[r*nr:r*nr+nn])
			}
		}
	}
}

// kStep returns the K block size of a product with inner dimension k: k is
// cut into ceil(k/kc) nearly equal blocks (a multiple of 8 long, the
// micro-kernel unroll) rather than full kc blocks and a short rest. It
// depends on k alone, so packed operands and Run always agree.
func kStep(k int) int {
	if k <= kc {
		return max(k, 1)
	}
	return roundUp(ceilDiv(k, ceilDiv(k, kc)), 8)
}

func ceilDiv(a, b int) int { return (a + b - 1) / b }
func roundUp(a, b int) int { return ceilDiv(a, b) * b }

// needsBScratch reports whether op(B) is packed during Run.
func (g *Gemm) needsBScratch() bool { return g.PB == nil || g.BConv != nil }
