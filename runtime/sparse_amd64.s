//go:build amd64 && !purego

#include "textflag.h"

// Row kernels of the CSR product (see sparse.go). Each computes one tile of
// an output row: c[j] = sum_i vals[i] * b[idx[i]*ldb + j] (+ c[j] when
// flags&2) + bias for j in [0, W), clamped at zero when flags&1 (NaN stays
// NaN), with the nonzeros split round-robin over four accumulator sets
// (hiding the FMA latency) that are summed at the end, always in the same
// order. nnz >= 1.

// func spRow32AVX512(nnz int, vals *float32, idx *int32, b *float32, ldb int, c *float32, bias float32, flags int)
TEXT ·spRow32AVX512(SB), NOSPLIT, $0-64
	MOVQ nnz+0(FP), CX
	MOVQ vals+8(FP), SI
	MOVQ idx+16(FP), DI
	MOVQ b+24(FP), BX
	MOVQ ldb+32(FP), R8
	SHLQ $2, R8
	MOVQ c+40(FP), DX
	VPXORD Z0, Z0, Z0
	VPXORD Z1, Z1, Z1
	VPXORD Z2, Z2, Z2
	VPXORD Z3, Z3, Z3
	VPXORD Z4, Z4, Z4
	VPXORD Z5, Z5, Z5
	VPXORD Z6, Z6, Z6
	VPXORD Z7, Z7, Z7
	CMPQ CX, $4
	JLT  tail32

loop32:
	MOVLQSX      (DI), AX
	MOVLQSX      4(DI), R9
	MOVLQSX      8(DI), R10
	MOVLQSX      12(DI), R11
	IMULQ        R8, AX
	IMULQ        R8, R9
	IMULQ        R8, R10
	IMULQ        R8, R11
	VBROADCASTSS (SI), Z8
	VBROADCASTSS 4(SI), Z9
	VBROADCASTSS 8(SI), Z10
	VBROADCASTSS 12(SI), Z11
	VFMADD231PS  (BX)(AX*1), Z8, Z0
	VFMADD231PS  64(BX)(AX*1), Z8, Z1
	VFMADD231PS  (BX)(R9*1), Z9, Z2
	VFMADD231PS  64(BX)(R9*1), Z9, Z3
	VFMADD231PS  (BX)(R10*1), Z10, Z4
	VFMADD231PS  64(BX)(R10*1), Z10, Z5
	VFMADD231PS  (BX)(R11*1), Z11, Z6
	VFMADD231PS  64(BX)(R11*1), Z11, Z7
	ADDQ         $16, SI
	ADDQ         $16, DI
	SUBQ         $4, CX
	CMPQ         CX, $4
	JGE          loop32

tail32:
	TESTQ CX, CX
	JEQ   done32

one32:
	MOVLQSX      (DI), AX
	IMULQ        R8, AX
	VBROADCASTSS (SI), Z8
	VFMADD231PS  (BX)(AX*1), Z8, Z0
	VFMADD231PS  64(BX)(AX*1), Z8, Z1
	ADDQ         $4, SI
	ADDQ         $4, DI
	DECQ         CX
	JNZ          one32

done32:
	VADDPS       Z2, Z0, Z0
	VADDPS       Z6, Z4, Z4
	VADDPS       Z4, Z0, Z0
	VADDPS       Z3, Z1, Z1
	VADDPS       Z7, Z5, Z5
	VADDPS       Z5, Z1, Z1
	MOVQ         flags+56(FP), R9
	TESTQ        $2, R9
	JEQ          bias32
	VADDPS       (DX), Z0, Z0
	VADDPS       64(DX), Z1, Z1

bias32:
	VBROADCASTSS bias+48(FP), Z8
	VADDPS       Z8, Z0, Z0
	VADDPS       Z8, Z1, Z1
	TESTQ        $1, R9
	JEQ          store32
	VPXORD       Z9, Z9, Z9
	VMAXPS       Z0, Z9, Z0
	VMAXPS       Z1, Z9, Z1

store32:
	VMOVUPS Z0, (DX)
	VMOVUPS Z1, 64(DX)
	VZEROUPPER
	RET

// func spRow16AVX512(nnz int, vals *float32, idx *int32, b *float32, ldb int, c *float32, bias float32, flags int)
TEXT ·spRow16AVX512(SB), NOSPLIT, $0-64
	MOVQ nnz+0(FP), CX
	MOVQ vals+8(FP), SI
	MOVQ idx+16(FP), DI
	MOVQ b+24(FP), BX
	MOVQ ldb+32(FP), R8
	SHLQ $2, R8
	MOVQ c+40(FP), DX
	VPXORD Z0, Z0, Z0
	VPXORD Z2, Z2, Z2
	VPXORD Z4, Z4, Z4
	VPXORD Z6, Z6, Z6
	CMPQ CX, $4
	JLT  tail16

loop16:
	MOVLQSX      (DI), AX
	MOVLQSX      4(DI), R9
	MOVLQSX      8(DI), R10
	MOVLQSX      12(DI), R11
	IMULQ        R8, AX
	IMULQ        R8, R9
	IMULQ        R8, R10
	IMULQ        R8, R11
	VBROADCASTSS (SI), Z8
	VBROADCASTSS 4(SI), Z9
	VBROADCASTSS 8(SI), Z10
	VBROADCASTSS 12(SI), Z11
	VFMADD231PS  (BX)(AX*1), Z8, Z0
	VFMADD231PS  (BX)(R9*1), Z9, Z2
	VFMADD231PS  (BX)(R10*1), Z10, Z4
	VFMADD231PS  (BX)(R11*1), Z11, Z6
	ADDQ         $16, SI
	ADDQ         $16, DI
	SUBQ         $4, CX
	CMPQ         CX, $4
	JGE          loop16

tail16:
	TESTQ CX, CX
	JEQ   done16

one16:
	MOVLQSX      (DI), AX
	IMULQ        R8, AX
	VBROADCASTSS (SI), Z8
	VFMADD231PS  (BX)(AX*1), Z8, Z0
	ADDQ         $4, SI
	ADDQ         $4, DI
	DECQ         CX
	JNZ          one16

done16:
	VADDPS       Z2, Z0, Z0
	VADDPS       Z6, Z4, Z4
	VADDPS       Z4, Z0, Z0
	MOVQ         flags+56(FP), R9
	TESTQ        $2, R9
	JEQ          bias16
	VADDPS       (DX), Z0, Z0

bias16:
	VBROADCASTSS bias+48(FP), Z8
	VADDPS       Z8, Z0, Z0
	TESTQ        $1, R9
	JEQ          store16
	VPXORD       Z9, Z9, Z9
	VMAXPS       Z0, Z9, Z0

store16:
	VMOVUPS Z0, (DX)
	VZEROUPPER
	RET

// func spRow16AVX2(nnz int, vals *float32, idx *int32, b *float32, ldb int, c *float32, bias float32, flags int)
TEXT ·spRow16AVX2(SB), NOSPLIT, $0-64
	MOVQ nnz+0(FP), CX
	MOVQ vals+8(FP), SI
	MOVQ idx+16(FP), DI
	MOVQ b+24(FP), BX
	MOVQ ldb+32(FP), R8
	SHLQ $2, R8
	MOVQ c+40(FP), DX
	VXORPS Y0, Y0, Y0
	VXORPS Y1, Y1, Y1
	VXORPS Y2, Y2, Y2
	VXORPS Y3, Y3, Y3
	VXORPS Y4, Y4, Y4
	VXORPS Y5, Y5, Y5
	VXORPS Y6, Y6, Y6
	VXORPS Y7, Y7, Y7
	CMPQ CX, $4
	JLT  tail16a

loop16a:
	MOVLQSX      (DI), AX
	MOVLQSX      4(DI), R9
	MOVLQSX      8(DI), R10
	MOVLQSX      12(DI), R11
	IMULQ        R8, AX
	IMULQ        R8, R9
	IMULQ        R8, R10
	IMULQ        R8, R11
	VBROADCASTSS (SI), Y8
	VBROADCASTSS 4(SI), Y9
	VBROADCASTSS 8(SI), Y10
	VBROADCASTSS 12(SI), Y11
	VFMADD231PS  (BX)(AX*1), Y8, Y0
	VFMADD231PS  32(BX)(AX*1), Y8, Y1
	VFMADD231PS  (BX)(R9*1), Y9, Y2
	VFMADD231PS  32(BX)(R9*1), Y9, Y3
	VFMADD231PS  (BX)(R10*1), Y10, Y4
	VFMADD231PS  32(BX)(R10*1), Y10, Y5
	VFMADD231PS  (BX)(R11*1), Y11, Y6
	VFMADD231PS  32(BX)(R11*1), Y11, Y7
	ADDQ         $16, SI
	ADDQ         $16, DI
	SUBQ         $4, CX
	CMPQ         CX, $4
	JGE          loop16a

tail16a:
	TESTQ CX, CX
	JEQ   done16a

one16a:
	MOVLQSX      (DI), AX
	IMULQ        R8, AX
	VBROADCASTSS (SI), Y8
	VFMADD231PS  (BX)(AX*1), Y8, Y0
	VFMADD231PS  32(BX)(AX*1), Y8, Y1
	ADDQ         $4, SI
	ADDQ         $4, DI
	DECQ         CX
	JNZ          one16a

done16a:
	VADDPS       Y2, Y0, Y0
	VADDPS       Y6, Y4, Y4
	VADDPS       Y4, Y0, Y0
	VADDPS       Y3, Y1, Y1
	VADDPS       Y7, Y5, Y5
	VADDPS       Y5, Y1, Y1
	MOVQ         flags+56(FP), R9
	TESTQ        $2, R9
	JEQ          bias16a
	VADDPS       (DX), Y0, Y0
	VADDPS       32(DX), Y1, Y1

bias16a:
	VBROADCASTSS bias+48(FP), Y8
	VADDPS       Y8, Y0, Y0
	VADDPS       Y8, Y1, Y1
	TESTQ        $1, R9
	JEQ          store16a
	VXORPS       Y9, Y9, Y9
	VMAXPS       Y0, Y9, Y0
	VMAXPS       Y1, Y9, Y1

store16a:
	VMOVUPS Y0, (DX)
	VMOVUPS Y1, 32(DX)
	VZEROUPPER
	RET

// func spRow8AVX2(nnz int, vals *float32, idx *int32, b *float32, ldb int, c *float32, bias float32, flags int)
TEXT ·spRow8AVX2(SB), NOSPLIT, $0-64
	MOVQ nnz+0(FP), CX
	MOVQ vals+8(FP), SI
	MOVQ idx+16(FP), DI
	MOVQ b+24(FP), BX
	MOVQ ldb+32(FP), R8
	SHLQ $2, R8
	MOVQ c+40(FP), DX
	VXORPS Y0, Y0, Y0
	VXORPS Y2, Y2, Y2
	VXORPS Y4, Y4, Y4
	VXORPS Y6, Y6, Y6
	CMPQ CX, $4
	JLT  tail8a

loop8a:
	MOVLQSX      (DI), AX
	MOVLQSX      4(DI), R9
	MOVLQSX      8(DI), R10
	MOVLQSX      12(DI), R11
	IMULQ        R8, AX
	IMULQ        R8, R9
	IMULQ        R8, R10
	IMULQ        R8, R11
	VBROADCASTSS (SI), Y8
	VBROADCASTSS 4(SI), Y9
	VBROADCASTSS 8(SI), Y10
	VBROADCASTSS 12(SI), Y11
	VFMADD231PS  (BX)(AX*1), Y8, Y0
	VFMADD231PS  (BX)(R9*1), Y9, Y2
	VFMADD231PS  (BX)(R10*1), Y10, Y4
	VFMADD231PS  (BX)(R11*1), Y11, Y6
	ADDQ         $16, SI
	ADDQ         $16, DI
	SUBQ         $4, CX
	CMPQ         CX, $4
	JGE          loop8a

tail8a:
	TESTQ CX, CX
	JEQ   done8a

one8a:
	MOVLQSX      (DI), AX
	IMULQ        R8, AX
	VBROADCASTSS (SI), Y8
	VFMADD231PS  (BX)(AX*1), Y8, Y0
	ADDQ         $4, SI
	ADDQ         $4, DI
	DECQ         CX
	JNZ          one8a

done8a:
	VADDPS       Y2, Y0, Y0
	VADDPS       Y6, Y4, Y4
	VADDPS       Y4, Y0, Y0
	MOVQ         flags+56(FP), R9
	TESTQ        $2, R9
	JEQ          bias8a
	VADDPS       (DX), Y0, Y0

bias8a:
	VBROADCASTSS bias+48(FP), Y8
	VADDPS       Y8, Y0, Y0
	TESTQ        $1, R9
	JEQ          store8a
	VXORPS       Y9, Y9, Y9
	VMAXPS       Y0, Y9, Y0

store8a:
	VMOVUPS Y0, (DX)
	VZEROUPPER
	RET

// func transpose8AVX(a *float32, lda int, t *float32, ldt int)
// writes the 8x8 block at a (row stride lda floats) transposed to t (row
// stride ldt floats).
TEXT ·transpose8AVX(SB), NOSPLIT, $0-32
	MOVQ a+0(FP), SI
	MOVQ lda+8(FP), AX
	SHLQ $2, AX
	MOVQ t+16(FP), DI
	MOVQ ldt+24(FP), BX
	SHLQ $2, BX
	VMOVUPS (SI), Y0
	ADDQ    AX, SI
	VMOVUPS (SI), Y1
	ADDQ    AX, SI
	VMOVUPS (SI), Y2
	ADDQ    AX, SI
	VMOVUPS (SI), Y3
	ADDQ    AX, SI
	VMOVUPS (SI), Y4
	ADDQ    AX, SI
	VMOVUPS (SI), Y5
	ADDQ    AX, SI
	VMOVUPS (SI), Y6
	ADDQ    AX, SI
	VMOVUPS (SI), Y7
	VUNPCKLPS Y1, Y0, Y8
	VUNPCKHPS Y1, Y0, Y9
	VUNPCKLPS Y3, Y2, Y10
	VUNPCKHPS Y3, Y2, Y11
	VUNPCKLPS Y5, Y4, Y12
	VUNPCKHPS Y5, Y4, Y13
	VUNPCKLPS Y7, Y6, Y14
	VUNPCKHPS Y7, Y6, Y15
	VSHUFPS   $0x44, Y10, Y8, Y0
	VSHUFPS   $0xEE, Y10, Y8, Y1
	VSHUFPS   $0x44, Y11, Y9, Y2
	VSHUFPS   $0xEE, Y11, Y9, Y3
	VSHUFPS   $0x44, Y14, Y12, Y4
	VSHUFPS   $0xEE, Y14, Y12, Y5
	VSHUFPS   $0x44, Y15, Y13, Y6
	VSHUFPS   $0xEE, Y15, Y13, Y7
	VPERM2F128 $0x20, Y4, Y0, Y8
	VPERM2F128 $0x20, Y5, Y1, Y9
	VPERM2F128 $0x20, Y6, Y2, Y10
	VPERM2F128 $0x20, Y7, Y3, Y11
	VPERM2F128 $0x31, Y4, Y0, Y12
	VPERM2F128 $0x31, Y5, Y1, Y13
	VPERM2F128 $0x31, Y6, Y2, Y14
	VPERM2F128 $0x31, Y7, Y3, Y15
	VMOVUPS Y8, (DI)
	ADDQ    BX, DI
	VMOVUPS Y9, (DI)
	ADDQ    BX, DI
	VMOVUPS Y10, (DI)
	ADDQ    BX, DI
	VMOVUPS Y11, (DI)
	ADDQ    BX, DI
	VMOVUPS Y12, (DI)
	ADDQ    BX, DI
	VMOVUPS Y13, (DI)
	ADDQ    BX, DI
	VMOVUPS Y14, (DI)
	ADDQ    BX, DI
	VMOVUPS Y15, (DI)
	VZEROUPPER
	RET
