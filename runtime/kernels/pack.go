package kernels

import "fmt"

// PackedA is a left operand (m x k) reordered once into the layout the
// micro-kernel reads, for weights used by many products (convolution
// weights: C[outC x HW] = W[outC x K] * cols[K x HW]). Build it with PackA.
//
// Layout: K is cut into blocks of kStep(k); inside a block, rows are cut into
// panels of mr rows (the last one zero padded), and a panel stores its
// mr values of each k contiguously: block p, panel i, k index kk, row r is
// at p*mPad + i*mr*kcb + kk*mr + r, where kcb is the block's K extent.
type PackedA struct {
	m, k, mPad int
	data       []float32
}

// PackedB is a right operand (k x n) reordered once into the layout the
// micro-kernel reads, for constant weights of Gemm and MatMul
// (Y[batch x out] = X[batch x in] * W[in x out]). Build it with PackB.
//
// Layout: K is cut into blocks of kStep(k); inside a block, columns are cut into
// panels of nr columns (the last one zero padded), and a panel stores its nr
// values of each k contiguously.
type PackedB struct {
	k, n, nPad int
	data       []float32
}

// Rows returns m, the number of rows of the packed matrix op(A).
func (p *PackedA) Rows() int { return p.m }

// Cols returns k, the number of columns of the packed matrix op(A).
func (p *PackedA) Cols() int { return p.k }

// Rows returns k, the number of rows of the packed matrix op(B).
func (p *PackedB) Rows() int { return p.k }

// Cols returns n, the number of columns of the packed matrix op(B).
func (p *PackedB) Cols() int { return p.n }

// PackedASize returns the number of float32 values a packed m x k left
// operand occupies (see PackAInto).
func PackedASize(m, k int) int { return roundUp(max(m, 0), mr) * max(k, 0) }

// PackedBSize returns the number of float32 values a packed k x n right
// operand occupies (see PackBInto and Im2ColPacked).
func PackedBSize(k, n int) int { return roundUp(max(n, 0), nr) * max(k, 0) }

// PackA packs op(A), an m x k matrix, for SgemmPackedA or Gemm.PA. With
// transA false, a is m x k with leading dimension lda; with transA true, a
// is k x m and op(A) = a^T. It panics on inconsistent arguments.
func PackA(transA bool, m, k int, a []float32, lda int) *PackedA {
	p := PackAInto(make([]float32, PackedASize(m, k)), transA, m, k, a, lda)
	return &p
}

// PackAInto is PackA writing into dst, which must hold PackedASize(m, k)
// values; the result refers to dst and nothing is allocated.
func PackAInto(dst []float32, transA bool, m, k int, a []float32, lda int) PackedA {
	if m < 0 || k < 0 {
		panic(fmt.Sprintf("kernels: PackA: negative dimension m=%d k=%d", m, k))
	}
	if len(dst) < PackedASize(m, k) {
		panic(fmt.Sprintf("kernels: PackA: destination has %d values, want %d", len(dst), PackedASize(m, k)))
	}
	p := PackedA{m: m, k: k, mPad: roundUp(m, mr), data: dst[:PackedASize(m, k)]}
	if m == 0 || k == 0 {
		return p
	}
	if transA {
		checkMatrix("A", a, k, m, lda)
	} else {
		checkMatrix("A", a, m, k, lda)
	}
	for pc, ks := 0, kStep(k); pc < k; pc += ks {
		kcb := min(ks, k-pc)
		packA(p.block(pc, 0, m), transA, a, lda, 0, m, pc, kcb)
	}
	return p
}

// PackB packs op(B), a k x n matrix, for SgemmPacked or Gemm.PB. With
// transB false, b is k x n with leading dimension ldb; with transB true, b
// is n x k and op(B) = b^T (the layout of ONNX Gemm weights with transB=1).
// It panics on inconsistent arguments.
func PackB(transB bool, k, n int, b []float32, ldb int) *PackedB {
	p := PackBInto(make([]float32, PackedBSize(k, n)), transB, k, n, b, ldb)
	return &p
}

// PackBInto is PackB writing into dst, which must hold PackedBSize(k, n)
// values; the result refers to dst and nothing is allocated.
func PackBInto(dst []float32, transB bool, k, n int, b []float32, ldb int) PackedB {
	p := newPackedB(dst, k, n, "PackB")
	if n == 0 || k == 0 {
		return p
	}
	if transB {
		checkMatrix("B", b, n, k, ldb)
	} else {
		checkMatrix("B", b, k, n, ldb)
	}
	for pc, ks := 0, kStep(k); pc < k; pc += ks {
		kcb := min(ks, k-pc)
		packB(p.block(pc, 0, n), transB, b, ldb, pc, kcb, 0, n)
	}
	return p
}

func newPackedB(dst []float32, k, n int, op string) PackedB {
	if n < 0 || k < 0 {
		panic(fmt.Sprintf("kernels: %s: negative dimension k=%d n=%d", op, k, n))
	}
	if len(dst) < PackedBSize(k, n) {
		panic(fmt.Sprintf("kernels: %s: destination has %d values, want %d", op, len(dst), PackedBSize(k, n)))
	}
	return PackedB{k: k, n: n, nPad: roundUp(n, nr), data: dst[:PackedBSize(k, n)]}
}

// block returns the packed rows [i0, i0+rows) of K block pc.
func (p *PackedA) block(pc, i0, rows int) []float32 {
	kcb := min(kStep(p.k), p.k-pc)
	base := pc * p.mPad
	return p.data[base+i0*kcb : base+(i0+roundUp(rows, mr))*kcb]
}

// block returns the packed columns [j0, j0+cols) of K block pc.
func (p *PackedB) block(pc, j0, cols int) []float32 {
	kcb := min(kStep(p.k), p.k-pc)
	base := pc * p.nPad
	return p.data[base+j0*kcb : base+(j0+roundUp(cols, nr))*kcb]
}

// packA packs rows [i0, i0+rows) and k range [p0, p0+kcb) of op(A) into dst,
// which holds roundUp(rows, mr)*kcb values.
func packA(dst []float32, trans bool, a []float32, lda, i0, rows, p0, kcb int) {
	full := rows / mr * mr
	if trans {
		// op(A)[i][p] = a[p*lda+i]: source row p holds the p-th value of
		// every panel; read it once, contiguously.
		for p := 0; p < kcb; p++ {
			src := a[(p0+p)*lda+i0:][:rows]
			for ir := 0; ir < full; ir += mr {
				copy6(dst[ir*kcb+p*mr:], src[ir:])
			}
		}
	} else {
		for ir := 0; ir < full; ir += mr {
			panel := dst[ir*kcb : (ir+mr)*kcb]
			base := (i0 + ir) * lda
			r0 := a[base+p0 : base+p0+kcb]
			r1 := a[base+lda+p0:][:len(r0)]
			r2 := a[base+2*lda+p0:][:len(r0)]
			r3 := a[base+3*lda+p0:][:len(r0)]
			r4 := a[base+4*lda+p0:][:len(r0)]
			r5 := a[base+5*lda+p0:][:len(r0)]
			panel = panel[:len(r0)*mr]
			for p := range r0 {
				d := (*[mr]float32)(panel[p*mr:])
				d[0], d[1], d[2], d[3], d[4], d[5] = r0[p], r1[p], r2[p], r3[p], r4[p], r5[p]
			}
		}
	}
	if full == rows {
		return
	}
	// Last, partial panel: zero padded.
	panel := dst[full*kcb : (full+mr)*kcb]
	clear(panel)
	for r := 0; r < rows-full; r++ {
		i := i0 + full + r
		for p := 0; p < kcb; p++ {
			if trans {
				panel[p*mr+r] = a[(p0+p)*lda+i]
			} else {
				panel[p*mr+r] = a[i*lda+p0+p]
			}
		}
	}
}

// packB packs k range [p0, p0+kcb) and columns [j0, j0+cols) of op(B) into
// dst, which holds roundUp(cols, nr)*kcb values.
func packB(dst []float32, trans bool, b []float32, ldb, p0, kcb, j0, cols int) {
	full := cols / nr * nr
	if trans {
		for jr := 0; jr < full; jr += nr {
			packBTransFull(dst[jr*kcb:(jr+nr)*kcb], b, ldb, (j0+jr)*ldb+p0, kcb)
		}
	} else {
		// op(B)[p][j] = b[p*ldb+j]: source row p holds nr contiguous
		// values for every panel; read it once.
		for p := 0; p < kcb; p++ {
			src := b[(p0+p)*ldb+j0:][:cols]
			for jr := 0; jr < full; jr += nr {
				copy16(dst[jr*kcb+p*nr:], src[jr:])
			}
		}
	}
	if full == cols {
		return
	}
	panel := dst[full*kcb : (full+nr)*kcb]
	clear(panel)
	for c := 0; c < cols-full; c++ {
		j := j0 + full + c
		for p := 0; p < kcb; p++ {
			if trans {
				panel[p*nr+c] = b[j*ldb+p0+p]
			} else {
				panel[p*nr+c] = b[(p0+p)*ldb+j]
			}
		}
	}
}

// packBTransFull packs a full nr-column panel of op(B) = b^T: source rows
// off, off+ldb, ... hold the panel's columns. It walks four columns at a
// time so that each pass reads four streams and writes short runs.
func packBTransFull(panel, b []float32, ldb, off, kcb int) {
	panel = panel[:kcb*nr]
	for c := 0; c < nr; c += 4 {
		s0 := b[off+c*ldb:][:kcb]
		s1 := b[off+(c+1)*ldb:][:len(s0)]
		s2 := b[off+(c+2)*ldb:][:len(s0)]
		s3 := b[off+(c+3)*ldb:][:len(s0)]
		for p := range s0 {
			d := (*[4]float32)(panel[p*nr+c:])
			d[0], d[1], d[2], d[3] = s0[p], s1[p], s2[p], s3[p]
		}
	}
}

// copy16 copies 16 floats. Written as four 16-byte moves, the compiler
// inlines it (a [16]float32 assignment becomes a memmove call).
func copy16(d, s []float32) {
	d, s = d[:16], s[:16]
	*(*[4]float32)(d[0:]) = *(*[4]float32)(s[0:])
	*(*[4]float32)(d[4:]) = *(*[4]float32)(s[4:])
	*(*[4]float32)(d[8:]) = *(*[4]float32)(s[8:])
	*(*[4]float32)(d[12:]) = *(*[4]float32)(s[12:])
}

// copy6 copies 6 floats without a memmove call.
func copy6(d, s []float32) {
	d, s = d[:6], s[:6]
	*(*[4]float32)(d[0:]) = *(*[4]float32)(s[0:])
	*(*[2]float32)(d[4:]) = *(*[2]float32)(s[4:])
}
