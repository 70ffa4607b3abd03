package kernels

// qKernels is one implementation of the int8 micro-kernels. All read the
// same packed layouts and produce bit-identical results.
type qKernels struct {
	name string
	// exactAll reports that tile and gemv are exact for full-range int8
	// weights, so the widening kernels are never needed.
	exactAll bool

	// tile computes mt stacked 4x16 int32 tiles
	//
	//	c[r*ldc+j] (+)= sum_{p < 4*kg} L(r, p) * P(p, j),  r < 4*mt, j < 16,
	//
	// with L(r, p) = a[r*lda+p] (uint8) and P(p, j) = b[(p/4)*64+4*j+p%4]
	// (int8); it adds to c when acc is set and overwrites it otherwise.
	// It is exact when every P value lies in [QExactMin, QExactMax].
	tile func(kg, mt int, a []byte, lda int, b []byte, c []int32, ldc int, acc bool)
	// tileWide is tile, exact for every int8 value.
	tileWide func(kg, mt int, a []byte, lda int, b []byte, c []int32, ldc int, acc bool)
	// tileA and tileAWide are tile and tileWide with L int8 (weights) and P
	// uint8 (activations); tileA is exact when every L value lies in
	// [QExactMin, QExactMax].
	tileA     func(kg, mt int, a []byte, lda int, b []byte, c []int32, ldc int, acc bool)
	tileAWide func(kg, mt int, a []byte, lda int, b []byte, c []int32, ldc int, acc bool)
	// tile4 and tileA4, when set, are tile and tileA over 4 adjacent
	// panels at once (panel h at b[h*pstride:], its columns at c[16*h:]),
	// exact for every int8 value.
	tile4  func(kg, mt int, a []byte, lda int, b []byte, pstride int, c []int32, ldc int, acc bool)
	tileA4 func(kg, mt int, a []byte, lda int, b []byte, pstride int, c []int32, ldc int, acc bool)
	// gemv computes c[16*q+j] = sum_{p < 4*kg} a[p] * P_q(p, j) for the np
	// panels P_q starting at b[q*pstride], a uint8 and P int8, exact when P
	// lies in [QExactMin, QExactMax]; gemvWide always.
	gemv     func(kg int, a, b []byte, pstride, np int, c []int32)
	gemvWide func(kg int, a, b []byte, pstride, np int, c []int32)
	// sumU8 returns the sum of the bytes of x.
	sumU8 func(x []byte) int32
	// interleave writes the k group formed by rows r0..r3 (uint8) into np
	// panels, panel q at dst[q*dstStride:], and adds the 4 values of each
	// column to colsum[16*q+j].
	interleave func(np int, r0, r1, r2, r3, dst []byte, dstStride int, colsum []int32)
	// axpyI32 computes y[i] += w*x[i] for i < len(y) (depthwise
	// convolution).
	axpyI32 func(w int32, x, y []int32)
	// widenU8 writes int32(x[i]) - zx to y[i] for i < len(y).
	widenU8 func(x []uint8, zx int32, y []int32)
	// stage applies the output stage to a block; see qStageArgs.
	stage func(a qStageArgs)
}

// qGeneric is the portable implementation: the fallback, and the twin the
// assembly is tested against. Its products are computed exactly in int32,
// so the tile and widening variants are the same function.
var qGeneric = &qKernels{
	name:       "generic",
	exactAll:   true,
	tile:       qTileGeneric[uint8, int8],
	tileWide:   qTileGeneric[uint8, int8],
	tileA:      qTileGeneric[int8, uint8],
	tileAWide:  qTileGeneric[int8, uint8],
	gemv:       qGemvGeneric,
	gemvWide:   qGemvGeneric,
	sumU8:      qSumU8Generic,
	interleave: qInterleaveGeneric,
	axpyI32:    qAxpyI32Generic,
	widenU8:    qWidenU8Generic,
	stage:      func(a qStageArgs) { qStageGeneric(a, 0) },
}

// qTileGeneric is the portable tile kernel; L and P give the signedness of
// the row and panel bytes.
func qTileGeneric[L, P int8 | uint8](kg, mt int, a []byte, lda int, b []byte, c []int32, ldc int, acc bool) {
	for t := 0; t < mt; t++ {
		qTile1Generic[L, P](kg, a[t*qMR*lda:], lda, b, c[t*qMR*ldc:], ldc, acc)
	}
}

// qTile1Generic computes one 4x16 tile.
func qTile1Generic[L, P int8 | uint8](kg int, a []byte, lda int, b []byte, c []int32, ldc int, acc bool) {
	var t [qMR][qNR]int32
	b = b[:kg*qGroup]
	for r := 0; r < qMR; r++ {
		row := a[r*lda : r*lda+4*kg]
		tr := &t[r]
		for g := 0; g < kg; g++ {
			a4 := row[4*g : 4*g+4 : 4*g+4]
			a0, a1, a2, a3 := int32(L(a4[0])), int32(L(a4[1])), int32(L(a4[2])), int32(L(a4[3]))
			bg := b[g*qGroup : g*qGroup+qGroup : g*qGroup+qGroup]
			for j := 0; j < qNR; j++ {
				bj := bg[4*j : 4*j+4 : 4*j+4]
				tr[j] += a0*int32(P(bj[0])) + a1*int32(P(bj[1])) + a2*int32(P(bj[2])) + a3*int32(P(bj[3]))
			}
		}
	}
	_ = c[(qMR-1)*ldc+qNR-1]
	for r := 0; r < qMR; r++ {
		row := c[r*ldc : r*ldc+qNR : r*ldc+qNR]
		if acc {
			for j, v := range t[r] {
				row[j] += v
			}
		} else {
			copy(row, t[r][:])
		}
	}
}

// qGemvGeneric is the portable GEMV kernel (uint8 row, int8 panels).
func qGemvGeneric(kg int, a, b []byte, pstride, np int, c []int32) {
	a = a[:4*kg]
	for q := 0; q < np; q++ {
		var t [qNR]int32
		bp := b[q*pstride : q*pstride+kg*qGroup]
		for g := 0; g < kg; g++ {
			a4 := a[4*g : 4*g+4 : 4*g+4]
			a0, a1, a2, a3 := int32(a4[0]), int32(a4[1]), int32(a4[2]), int32(a4[3])
			bg := bp[g*qGroup : g*qGroup+qGroup : g*qGroup+qGroup]
			for j := 0; j < qNR; j++ {
				bj := bg[4*j : 4*j+4 : 4*j+4]
				t[j] += a0*int32(int8(bj[0])) + a1*int32(int8(bj[1])) + a2*int32(int8(bj[2])) + a3*int32(int8(bj[3]))
			}
		}
		copy(c[q*qNR:q*qNR+qNR], t[:])
	}
}

// qSumU8Generic returns the sum of the bytes of x (wrapping in int32).
func qSumU8Generic(x []byte) int32 {
	var s uint32
	for _, v := range x {
		s += uint32(v)
	}
	return int32(s)
}

// qInterleaveGeneric is the portable interleave kernel.
func qInterleaveGeneric(np int, r0, r1, r2, r3, dst []byte, dstStride int, colsum []int32) {
	n := np * qNR
	r0, r1, r2, r3, colsum = r0[:n], r1[:n], r2[:n], r3[:n], colsum[:n]
	for q := 0; q < np; q++ {
		d := dst[q*dstStride : q*dstStride+qGroup : q*dstStride+qGroup]
		for j := 0; j < qNR; j++ {
			c := q*qNR + j
			x0, x1, x2, x3 := r0[c], r1[c], r2[c], r3[c]
			d[4*j], d[4*j+1], d[4*j+2], d[4*j+3] = x0, x1, x2, x3
			colsum[c] += int32(x0) + int32(x1) + int32(x2) + int32(x3)
		}
	}
}
