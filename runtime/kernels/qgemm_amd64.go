//go:build amd64 && !purego

package kernels

import (
	"math"

	"golang.org/x/sys/cpu"
)

// qAVX2 runs the avo-generated AVX2 kernels (qgemm_amd64.s). The wrappers
// check the slice bounds the assembly will touch.
var qAVX2 = &qKernels{
	name: "avx2",
	tile: func(kg, mt int, a []byte, lda int, b []byte, c []int32, ldc int, acc bool) {
		qCheckTile(kg, mt, a, lda, b, c, ldc)
		qTileU8S8AVX2(kg, mt, &a[0], lda, &b[0], &c[0], ldc, qBool(acc))
	},
	tileWide: func(kg, mt int, a []byte, lda int, b []byte, c []int32, ldc int, acc bool) {
		qCheckTile(kg, mt, a, lda, b, c, ldc)
		qTileWideU8S8AVX2(kg, mt, &a[0], lda, &b[0], &c[0], ldc, qBool(acc))
	},
	tileA: func(kg, mt int, a []byte, lda int, b []byte, c []int32, ldc int, acc bool) {
		qCheckTile(kg, mt, a, lda, b, c, ldc)
		qTileS8U8AVX2(kg, mt, &a[0], lda, &b[0], &c[0], ldc, qBool(acc))
	},
	tileAWide: func(kg, mt int, a []byte, lda int, b []byte, c []int32, ldc int, acc bool) {
		qCheckTile(kg, mt, a, lda, b, c, ldc)
		qTileWideS8U8AVX2(kg, mt, &a[0], lda, &b[0], &c[0], ldc, qBool(acc))
	},
	gemv: func(kg int, a, b []byte, pstride, np int, c []int32) {
		qCheckGemv(kg, a, b, pstride, np, c)
		qGemvU8S8AVX2(kg, &a[0], &b[0], pstride, np, &c[0])
	},
	gemvWide: func(kg int, a, b []byte, pstride, np int, c []int32) {
		qCheckGemv(kg, a, b, pstride, np, c)
		qGemvWideU8S8AVX2(kg, &a[0], &b[0], pstride, np, &c[0])
	},
	sumU8: func(x []byte) int32 {
		n := len(x) &^ 31
		var s int32
		if n > 0 {
			s = qSumU8AVX2(n, &x[0])
		}
		return s + qSumU8Generic(x[n:])
	},
	interleave: func(np int, r0, r1, r2, r3, dst []byte, dstStride int, colsum []int32) {
		if np <= 0 {
			return
		}
		n := np * qNR
		_, _, _, _, _ = r0[n-1], r1[n-1], r2[n-1], r3[n-1], colsum[n-1]
		_ = dst[(np-1)*dstStride+qGroup-1]
		qInterleaveAVX2(np, &r0[0], &r1[0], &r2[0], &r3[0], &dst[0], dstStride, &colsum[0])
	},
	axpyI32: func(w int32, x, y []int32) {
		if n8 := len(y) &^ 7; n8 > 0 {
			_, _ = x[n8-1], y[n8-1]
			qAxpyI32AVX2(n8, w, &x[0], &y[0])
			x, y = x[n8:], y[n8:]
		}
		qAxpyI32Generic(w, x, y)
	},
	widenU8: func(x []uint8, zx int32, y []int32) {
		if n8 := len(y) &^ 7; n8 > 0 {
			_, _ = x[n8-1], y[n8-1]
			qWidenU8AVX2(n8, &x[0], zx, &y[0])
			x, y = x[n8:], y[n8:]
		}
		qWidenU8Generic(x, zx, y)
	},
	stage: qStage,
}

// qVNNI runs the AVX512-VNNI tile and GEMV kernels (vpdpbusd, exact for
// full-range int8, so no widening variants are needed) and the AVX2
// packing and output stages.
var qVNNI = func() *qKernels {
	k := *qAVX2
	k.name = "avx512vnni"
	k.exactAll = true
	k.tile = func(kg, mt int, a []byte, lda int, b []byte, c []int32, ldc int, acc bool) {
		qCheckTile(kg, mt, a, lda, b, c, ldc)
		qTileU8S8VNNI(kg, mt, &a[0], lda, &b[0], &c[0], ldc, qBool(acc))
	}
	k.tileA = func(kg, mt int, a []byte, lda int, b []byte, c []int32, ldc int, acc bool) {
		qCheckTile(kg, mt, a, lda, b, c, ldc)
		qTileS8U8VNNI(kg, mt, &a[0], lda, &b[0], &c[0], ldc, qBool(acc))
	}
	k.tileWide, k.tileAWide = k.tile, k.tileA
	k.tile4 = func(kg, mt int, a []byte, lda int, b []byte, pstride int, c []int32, ldc int, acc bool) {
		qCheckTile(kg, mt, a, lda, b[3*pstride:], c[3*qNR:], ldc)
		qTile4U8S8VNNI(kg, mt, &a[0], lda, &b[0], pstride, &c[0], ldc, qBool(acc))
	}
	k.tileA4 = func(kg, mt int, a []byte, lda int, b []byte, pstride int, c []int32, ldc int, acc bool) {
		qCheckTile(kg, mt, a, lda, b[3*pstride:], c[3*qNR:], ldc)
		qTile4S8U8VNNI(kg, mt, &a[0], lda, &b[0], pstride, &c[0], ldc, qBool(acc))
	}
	k.gemv = func(kg int, a, b []byte, pstride, np int, c []int32) {
		qCheckGemv(kg, a, b, pstride, np, c)
		qGemvU8S8VNNI(kg, &a[0], &b[0], pstride, np, &c[0])
	}
	k.gemvWide = k.gemv
	k.stage = qStage512
	return &k
}()

func qBool(b bool) uint64 {
	if b {
		return 1
	}
	return 0
}

func qCheckTile(kg, mt int, a []byte, lda int, b []byte, c []int32, ldc int) {
	_ = a[(qMR*mt-1)*lda+4*kg-1]
	_ = b[kg*qGroup-1]
	_ = c[(qMR*mt-1)*ldc+qNR-1]
}

func qCheckGemv(kg int, a, b []byte, pstride, np int, c []int32) {
	_ = a[4*kg-1]
	_ = b[(np-1)*pstride+kg*qGroup-1]
	_ = c[np*qNR-1]
}

// Output stage flags; keep in sync with asmgen/qgemm.
const (
	qFlagHasY     = 1 << 0
	qFlagScaleVec = 1 << 1
	qFlagBiasVec  = 1 << 2
)

// qStage runs the AVX2 output stage on the columns that fill whole
// vectors of 8 and the portable one on the rest.
func qStage(a qStageArgs) {
	qStageGeneric(a, qStageAsm(a, 0, 8))
}

// qStage512 runs the AVX-512 output stage on the columns that fill whole
// vectors of 16, then the AVX2 and portable ones on the rest.
func qStage512(a qStageArgs) {
	qStageGeneric(a, qStageAsm(a, qStageAsm(a, 0, 16), 8))
}

// qStageAsm runs the assembly output stage of width w (8: AVX2, 16:
// AVX-512) on columns [j0, j1) of every row, j1 - j0 the largest multiple
// of w that fits, and returns j1.
func qStageAsm(a qStageArgs, j0, w int) int {
	nw := (a.n - j0) &^ (w - 1)
	if nw <= 0 {
		return j0
	}
	j1 := j0 + nw
	last := (a.rows - 1) * a.ldo // offset of the last output row
	_ = a.acc[(a.rows-1)*a.ldacc+j1-1]
	_, _ = a.c[j1-1], a.r[a.rows-1]
	acc, c, y, r, x := &a.acc[j0], &a.c[j0], &a.c[j0], &a.r[0], &a.r[0]
	var flags uint64
	if a.y != nil {
		_, _ = a.y[j1-1], a.x[a.rows-1]
		y, x, flags = &a.y[j0], &a.x[0], qFlagHasY
	}
	var scale *float32
	if a.kind != QOutInt32 {
		if a.scaleVec {
			_ = a.scale[j1-1]
			scale, flags = &a.scale[j0], flags|qFlagScaleVec
		} else {
			_ = a.scale[(a.rows-1)*a.scaleStep]
			scale = &a.scale[0]
		}
	}
	switch a.kind {
	case QOutInt32:
		lo := int32(math.MinInt32)
		if a.relu {
			lo = 0
		}
		_ = a.i32[last+j1-1]
		f := qStageI32AVX2
		if w == 16 {
			f = qStageI32AVX512
		}
		f(a.rows, nw, acc, a.ldacc, c, y, r, x, lo, flags, &a.i32[j0], a.ldo)
	case QOutFloat32:
		lo := float32(math.Inf(-1))
		if a.relu {
			lo = 0
		}
		bias, biasStep := &qNegZero, 0
		switch {
		case a.biasVec:
			_ = a.bias[j1-1]
			bias, flags = &a.bias[j0], flags|qFlagBiasVec
		case a.bias != nil:
			_ = a.bias[(a.rows-1)*a.biasStep]
			bias, biasStep = &a.bias[0], 4*a.biasStep
		}
		_ = a.f32[last+j1-1]
		f := qStageF32AVX2
		if w == 16 {
			f = qStageF32AVX512
		}
		f(a.rows, nw, acc, a.ldacc, c, y, r, x, scale, 4*a.scaleStep*qBoolInt(!a.scaleVec),
			bias, biasStep, lo, flags, &a.f32[j0], a.ldo)
	default:
		_ = a.b8[last+j1-1]
		f := qStageQAVX2
		if w == 16 {
			f = qStageQAVX512
		}
		f(a.rows, nw, acc, a.ldacc, c, y, r, x, scale, 4*a.scaleStep*qBoolInt(!a.scaleVec),
			a.zo, a.qmin, a.qmax, flags, &a.b8[j0], a.ldo)
	}
	return j1
}

func qBoolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// qNegZero is a bias that leaves every value unchanged (f + -0 == f).
var qNegZero = float32(math.Copysign(0, -1))

// qAvailable lists the implementations this CPU can run, fastest last.
// golang.org/x/sys/cpu honours GODEBUG: cpu.avx2=off leaves only the
// portable kernels, cpu.avx512f=off the AVX2 ones (cpu.avx512vnni=off works
// too, but the runtime's own GODEBUG parser warns about it).
func qAvailable() []*qKernels {
	impls := []*qKernels{qGeneric}
	if cpu.X86.HasAVX2 {
		impls = append(impls, qAVX2)
		if cpu.X86.HasAVX512F && cpu.X86.HasAVX512BW && cpu.X86.HasAVX512VNNI {
			impls = append(impls, qVNNI)
		}
	}
	return impls
}

// qImpls lists the int8 kernel implementations this CPU can run.
var qImpls = qAvailable()

// qDefault is the implementation the exported functions use.
var qDefault = qImpls[len(qImpls)-1]
