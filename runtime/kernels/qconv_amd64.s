//go:build amd64 && !purego

#include "textflag.h"

// Helpers of the batched int8 convolution (qconv_batch.go), AVX-512
// (F, BW): short rows handled with one masked load/store each.

// func qCopyRowsAVX512(rows int, n int, src *byte, lds int, dst *byte, ldd int, zx int)
// Copies rows rows of n <= 64 bytes, row i from src+i*lds to dst+i*ldd,
// each written as 64 bytes: the row, then 64-n bytes of zx. The caller
// guarantees that these extra bytes may be written (they fall on padding,
// on later rows or on slack).
TEXT ·qCopyRowsAVX512(SB), NOSPLIT, $0-56
	MOVQ         rows+0(FP), R12
	MOVQ         n+8(FP), CX
	MOVQ         src+16(FP), SI
	MOVQ         lds+24(FP), R8
	MOVQ         dst+32(FP), DI
	MOVQ         ldd+40(FP), R9
	MOVQ         zx+48(FP), AX
	VPBROADCASTB AX, Z30
	MOVQ         $-1, R11
	CMPQ         CX, $64
	JAE          copymask
	MOVQ         $1, R11
	SHLQ         CX, R11
	DECQ         R11

copymask:
	KMOVQ R11, K1

copyloop:
	TESTQ     R12, R12
	JE        copydone
	VMOVDQA64 Z30, Z0
	VMOVDQU8  (SI), K1, Z0
	VMOVDQU64 Z0, (DI)
	ADDQ      R8, SI
	ADDQ      R9, DI
	DECQ      R12
	JMP       copyloop

copydone:
	VZEROUPPER
	RET

// func qUnzip2RowsAVX512(rows int, n int, src *byte, lds int, even *byte, odd *byte, ldd int, zx int)
// For each of rows rows of n <= 64 source bytes (row stride lds), writes
// the (n+1)/2 even bytes to even and the n/2 odd bytes to odd (row stride
// ldd), each as 32 bytes completed with zx (see qCopyRowsAVX512); a nil
// destination is skipped.
TEXT ·qUnzip2RowsAVX512(SB), NOSPLIT, $0-64
	MOVQ         rows+0(FP), R12
	MOVQ         n+8(FP), CX
	MOVQ         src+16(FP), SI
	MOVQ         lds+24(FP), R8
	MOVQ         even+32(FP), DI
	MOVQ         odd+40(FP), R10
	MOVQ         ldd+48(FP), R9
	MOVQ         zx+56(FP), AX
	VPBROADCASTB AX, Y30
	// K1: n source bytes; K2: (n+1)/2 even bytes; K3: n/2 odd bytes.
	MOVQ $-1, R11
	CMPQ CX, $64
	JAE  unzipmask
	MOVQ $1, R11
	SHLQ CX, R11
	DECQ R11

unzipmask:
	KMOVQ R11, K1
	MOVQ CX, R13
	INCQ R13
	SHRQ $1, R13
	MOVQ R13, CX
	MOVQ $1, R11
	SHLQ CX, R11
	DECQ R11
	KMOVD R11, K2
	MOVQ n+8(FP), CX
	SHRQ $1, CX
	MOVQ $1, R11
	SHLQ CX, R11
	DECQ R11
	KMOVD R11, K3

unziploop:
	TESTQ      R12, R12
	JE         unzipdone
	VMOVDQU8.Z (SI), K1, Z0
	TESTQ      DI, DI
	JE         unzipodd
	VPMOVWB    Z0, Y1
	VMOVDQA64  Y30, Y3
	VMOVDQU8   Y1, K2, Y3
	VMOVDQU64  Y3, (DI)
	ADDQ       R9, DI

unzipodd:
	TESTQ      R10, R10
	JE         unzipnext
	VPSRLW     $8, Z0, Z2
	VPMOVWB    Z2, Y2
	VMOVDQA64  Y30, Y3
	VMOVDQU8   Y2, K3, Y3
	VMOVDQU64  Y3, (R10)
	ADDQ       R9, R10

unzipnext:
	ADDQ       R8, SI
	DECQ       R12
	JMP        unziploop

unzipdone:
	VZEROUPPER
	RET

// qResParams layout (qconv_amd64.go): zq int32, sq float32, zr int32,
// sr float32, sz float32, lo float32, hi float32, zz int32, floor float32.

// func qResidualU8AVX512(rows int, n int, q *byte, ldq int, r *byte, out *byte, p *qResParams)
// For rows rows of n <= 64 values (q with row stride ldq, r and out with
// row stride n): out = clamp(round(max(float32(q-zq)*sq + float32(r-zr)*sr, floor) / sz), lo, hi) + zz,
// each float operation rounded to float32 as the unfused graph computes.
TEXT ·qResidualU8AVX512(SB), NOSPLIT, $0-56
	MOVQ         rows+0(FP), R12
	MOVQ         n+8(FP), DX
	MOVQ         q+16(FP), SI
	MOVQ         ldq+24(FP), R8
	MOVQ         r+32(FP), R9
	MOVQ         out+40(FP), DI
	MOVQ         p+48(FP), AX
	VPBROADCASTD 0(AX), Z20
	VBROADCASTSS 4(AX), Z21
	VPBROADCASTD 8(AX), Z22
	VBROADCASTSS 12(AX), Z23
	VBROADCASTSS 16(AX), Z24
	VBROADCASTSS 20(AX), Z25
	VBROADCASTSS 24(AX), Z26
	VPBROADCASTD 28(AX), Z27
	VBROADCASTSS 32(AX), Z28

resrow:
	TESTQ R12, R12
	JE    resdone
	XORQ  BX, BX

rescol:
	MOVQ  DX, CX
	SUBQ  BX, CX
	JLE   resnext
	MOVQ  $0xFFFF, R11
	CMPQ  CX, $16
	JAE   resmask
	MOVQ  $1, R11
	SHLQ  CX, R11
	DECQ  R11

resmask:
	KMOVW      R11, K1
	VMOVDQU8.Z (SI)(BX*1), K1, X0
	VMOVDQU8.Z (R9)(BX*1), K1, X1
	VPMOVZXBD  X0, Z0
	VPMOVZXBD  X1, Z1
	VPSUBD     Z20, Z0, Z0
	VCVTDQ2PS  Z0, Z0
	VMULPS     Z21, Z0, Z0
	VPSUBD     Z22, Z1, Z1
	VCVTDQ2PS  Z1, Z1
	VMULPS     Z23, Z1, Z1
	VADDPS     Z1, Z0, Z0
	VMAXPS     Z28, Z0, Z0
	VDIVPS     Z24, Z0, Z0
	VMAXPS     Z25, Z0, Z0
	VMINPS     Z26, Z0, Z0
	VCVTPS2DQ  Z0, Z0
	VPADDD     Z27, Z0, Z0
	VPMOVUSDB  Z0, X0
	VMOVDQU8   X0, K1, (DI)(BX*1)
	ADDQ       $16, BX
	JMP        rescol

resnext:
	ADDQ R8, SI
	ADDQ DX, R9
	ADDQ DX, DI
	DECQ R12
	JMP  resrow

resdone:
	VZEROUPPER
	RET

// func qResidualF32AVX512(rows int, n int, q *byte, ldq int, r *byte, out *float32, p *qResParams)
// The float32 output variant: out = max(float32(q-zq)*sq + float32(r-zr)*sr, floor).
TEXT ·qResidualF32AVX512(SB), NOSPLIT, $0-56
	MOVQ         rows+0(FP), R12
	MOVQ         n+8(FP), DX
	MOVQ         q+16(FP), SI
	MOVQ         ldq+24(FP), R8
	MOVQ         r+32(FP), R9
	MOVQ         out+40(FP), DI
	MOVQ         p+48(FP), AX
	VPBROADCASTD 0(AX), Z20
	VBROADCASTSS 4(AX), Z21
	VPBROADCASTD 8(AX), Z22
	VBROADCASTSS 12(AX), Z23
	VBROADCASTSS 32(AX), Z28

frow:
	TESTQ R12, R12
	JE    fdone
	XORQ  BX, BX

fcol:
	MOVQ  DX, CX
	SUBQ  BX, CX
	JLE   fnext
	MOVQ  $0xFFFF, R11
	CMPQ  CX, $16
	JAE   fmask
	MOVQ  $1, R11
	SHLQ  CX, R11
	DECQ  R11

fmask:
	KMOVW      R11, K1
	VMOVDQU8.Z (SI)(BX*1), K1, X0
	VMOVDQU8.Z (R9)(BX*1), K1, X1
	VPMOVZXBD  X0, Z0
	VPMOVZXBD  X1, Z1
	VPSUBD     Z20, Z0, Z0
	VCVTDQ2PS  Z0, Z0
	VMULPS     Z21, Z0, Z0
	VPSUBD     Z22, Z1, Z1
	VCVTDQ2PS  Z1, Z1
	VMULPS     Z23, Z1, Z1
	VADDPS     Z1, Z0, Z0
	VMAXPS     Z28, Z0, Z0
	VMOVUPS    Z0, K1, (DI)(BX*4)
	ADDQ       $16, BX
	JMP        fcol

fnext:
	ADDQ R8, SI
	ADDQ DX, R9
	LEAQ (DI)(DX*4), DI
	DECQ R12
	JMP  frow

fdone:
	VZEROUPPER
	RET

// qOutParams layout (qconv_batch.go): rterm int32, scale float32, zo int32,
// qmin int32, qmax int32, clamp float32, -clamp float32.

// func qConvOutAVX512(rows int, n int, acc *int32, ldacc int, p *qOutParams, r *byte, rp *qResParams, out *byte, mode int)
// Values are stored 16 at a time with whole vectors, which may write past
// a row's end into the following rows of the call (written afterwards),
// and with a masked store where fewer than 16 values remain to the end of
// the call's rows.
// The output stage of one output channel of the batched convolution,
// straight from the wide accumulator rows (row stride ldacc int32) to the
// output rows of n <= 64 values:
//
//	q = clamp(round(clamp(float32(acc+rterm)*scale, -clamp, clamp)) + zo, qmin, qmax)
//
// mode 0 writes q (uint8); mode 1 writes the requantised residual Add of q
// and r (rp, as qResidualU8AVX512); mode 2 its float32 value (as
// qResidualF32AVX512). r and out have row stride n (elements).
TEXT ·qConvOutAVX512(SB), NOSPLIT, $0-72
	MOVQ         rows+0(FP), R12
	MOVQ         n+8(FP), DX
	MOVQ         acc+16(FP), SI
	MOVQ         ldacc+24(FP), R8
	SHLQ         $2, R8
	MOVQ         p+32(FP), AX
	MOVQ         r+40(FP), R9
	MOVQ         rp+48(FP), R10
	MOVQ         out+56(FP), DI
	MOVQ         mode+64(FP), R13
	VPBROADCASTD 0(AX), Z10
	VBROADCASTSS 4(AX), Z11
	VPBROADCASTD 8(AX), Z12
	VPBROADCASTD 12(AX), Z13
	VPBROADCASTD 16(AX), Z14
	VBROADCASTSS 20(AX), Z15
	VBROADCASTSS 24(AX), Z16
	TESTQ        R13, R13
	JE           omasks
	VPBROADCASTD 0(R10), Z20
	VBROADCASTSS 4(R10), Z21
	VPBROADCASTD 8(R10), Z22
	VBROADCASTSS 12(R10), Z23
	VBROADCASTSS 16(R10), Z24
	VBROADCASTSS 20(R10), Z25
	VBROADCASTSS 24(R10), Z26
	VPBROADCASTD 28(R10), Z27
	VBROADCASTSS 32(R10), Z28

omasks:
	// K2: the last, partial vector of a row (n%16 values; all 16 when n
	// is a multiple of 16).
	MOVQ DX, CX
	ANDQ $15, CX
	MOVQ $0xFFFF, R11
	JE   otailmask
	MOVQ $1, R11
	SHLQ CX, R11
	DECQ R11

otailmask:
	KMOVW R11, K2
	CMPQ  R13, $1
	JE    m1row
	TESTQ R13, R13
	JNE   orow

	// Mode 0: whole vectors, then the row's partial one.
m0row:
	TESTQ R12, R12
	JE    odone
	XORQ  BX, BX
	MOVQ  DX, CX

m0full:
	CMPQ      CX, $16
	JL        m0tail
	VMOVDQU32 (SI)(BX*4), Z0
	VPADDD    Z10, Z0, Z0
	VCVTDQ2PS Z0, Z0
	VMULPS    Z11, Z0, Z0
	VMAXPS    Z16, Z0, Z0
	VMINPS    Z15, Z0, Z0
	VCVTPS2DQ Z0, Z0
	VPADDD    Z12, Z0, Z0
	VPMAXSD   Z13, Z0, Z0
	VPMINSD   Z14, Z0, Z0
	VPMOVUSDB Z0, X0
	VMOVDQU   X0, (DI)(BX*1)
	ADDQ      $16, BX
	SUBQ      $16, CX
	JMP       m0full

m0tail:
	TESTQ       CX, CX
	JE          m0next
	VMOVDQU32.Z (SI)(BX*4), K2, Z0
	VPADDD      Z10, Z0, Z0
	VCVTDQ2PS   Z0, Z0
	VMULPS      Z11, Z0, Z0
	VMAXPS      Z16, Z0, Z0
	VMINPS      Z15, Z0, Z0
	VCVTPS2DQ   Z0, Z0
	VPADDD      Z12, Z0, Z0
	VPMAXSD     Z13, Z0, Z0
	VPMINSD     Z14, Z0, Z0
	VPMOVUSDB   Z0, X0
	// A whole vector fits when the rows after this one hold 16-tail bytes.
	MOVQ        R12, R14
	DECQ        R14
	IMULQ       DX, R14
	ADDQ        CX, R14
	CMPQ        R14, $16
	JL          m0mask
	VMOVDQU     X0, (DI)(BX*1)
	JMP         m0next

m0mask:
	VMOVDQU8 X0, K2, (DI)(BX*1)

m0next:
	ADDQ R8, SI
	ADDQ DX, DI
	DECQ R12
	JMP  m0row

	// Mode 1: the same with the residual Add.
m1row:
	TESTQ R12, R12
	JE    odone
	XORQ  BX, BX
	MOVQ  DX, CX

m1full:
	CMPQ      CX, $16
	JL        m1tail
	VMOVDQU32 (SI)(BX*4), Z0
	VPMOVZXBD (R9)(BX*1), Z1
	VPADDD    Z10, Z0, Z0
	VCVTDQ2PS Z0, Z0
	VMULPS    Z11, Z0, Z0
	VMAXPS    Z16, Z0, Z0
	VMINPS    Z15, Z0, Z0
	VCVTPS2DQ Z0, Z0
	VPADDD    Z12, Z0, Z0
	VPMAXSD   Z13, Z0, Z0
	VPMINSD   Z14, Z0, Z0
	VPSUBD    Z20, Z0, Z0
	VCVTDQ2PS Z0, Z0
	VMULPS    Z21, Z0, Z0
	VPSUBD    Z22, Z1, Z1
	VCVTDQ2PS Z1, Z1
	VMULPS    Z23, Z1, Z1
	VADDPS    Z1, Z0, Z0
	VMAXPS    Z28, Z0, Z0
	VDIVPS    Z24, Z0, Z0
	VMAXPS    Z25, Z0, Z0
	VMINPS    Z26, Z0, Z0
	VCVTPS2DQ Z0, Z0
	VPADDD    Z27, Z0, Z0
	VPMOVUSDB Z0, X0
	VMOVDQU   X0, (DI)(BX*1)
	ADDQ      $16, BX
	SUBQ      $16, CX
	JMP       m1full

m1tail:
	TESTQ       CX, CX
	JE          m1next
	VMOVDQU32.Z (SI)(BX*4), K2, Z0
	VMOVDQU8.Z  (R9)(BX*1), K2, X1
	VPMOVZXBD   X1, Z1
	VPADDD      Z10, Z0, Z0
	VCVTDQ2PS   Z0, Z0
	VMULPS      Z11, Z0, Z0
	VMAXPS      Z16, Z0, Z0
	VMINPS      Z15, Z0, Z0
	VCVTPS2DQ   Z0, Z0
	VPADDD      Z12, Z0, Z0
	VPMAXSD     Z13, Z0, Z0
	VPMINSD     Z14, Z0, Z0
	VPSUBD      Z20, Z0, Z0
	VCVTDQ2PS   Z0, Z0
	VMULPS      Z21, Z0, Z0
	VPSUBD      Z22, Z1, Z1
	VCVTDQ2PS   Z1, Z1
	VMULPS      Z23, Z1, Z1
	VADDPS      Z1, Z0, Z0
	VMAXPS      Z28, Z0, Z0
	VDIVPS      Z24, Z0, Z0
	VMAXPS      Z25, Z0, Z0
	VMINPS      Z26, Z0, Z0
	VCVTPS2DQ   Z0, Z0
	VPADDD      Z27, Z0, Z0
	VPMOVUSDB   Z0, X0
	MOVQ        R12, R14
	DECQ        R14
	IMULQ       DX, R14
	ADDQ        CX, R14
	CMPQ        R14, $16
	JL          m1mask
	VMOVDQU     X0, (DI)(BX*1)
	JMP         m1next

m1mask:
	VMOVDQU8 X0, K2, (DI)(BX*1)

m1next:
	ADDQ R8, SI
	ADDQ DX, R9
	ADDQ DX, DI
	DECQ R12
	JMP  m1row

orow:
	TESTQ R12, R12
	JE    odone
	XORQ  BX, BX

ocol:
	MOVQ  DX, CX
	SUBQ  BX, CX
	JLE   onext
	CMPQ  CX, $16
	JL    opart
	VMOVDQU32 (SI)(BX*4), Z0
	JMP   oconv

opart:
	VMOVDQU32.Z (SI)(BX*4), K2, Z0

oconv:
	KMOVW       K2, K1
	CMPQ        CX, $16
	JL          okeep
	KXNORW      K1, K1, K1

okeep:
	VPADDD      Z10, Z0, Z0
	VCVTDQ2PS   Z0, Z0
	VMULPS      Z11, Z0, Z0
	VMAXPS      Z16, Z0, Z0
	VMINPS      Z15, Z0, Z0
	VCVTPS2DQ   Z0, Z0
	VPADDD      Z12, Z0, Z0
	VPMAXSD     Z13, Z0, Z0
	VPMINSD     Z14, Z0, Z0
	TESTQ       R13, R13
	JNE         oresid
	VPMOVUSDB   Z0, X0
	MOVQ        R12, R14
	IMULQ       DX, R14
	SUBQ        BX, R14
	CMPQ        R14, $16
	JL          olast8
	VMOVDQU     X0, (DI)(BX*1)
	ADDQ        $16, BX
	JMP         ocol

olast8:
	VMOVDQU8    X0, K1, (DI)(BX*1)
	ADDQ        $16, BX
	JMP         ocol

oresid:
	VMOVDQU8.Z (R9)(BX*1), K1, X1
	VPMOVZXBD  X1, Z1
	VPSUBD     Z20, Z0, Z0
	VCVTDQ2PS  Z0, Z0
	VMULPS     Z21, Z0, Z0
	VPSUBD     Z22, Z1, Z1
	VCVTDQ2PS  Z1, Z1
	VMULPS     Z23, Z1, Z1
	VADDPS     Z1, Z0, Z0
	VMAXPS     Z28, Z0, Z0
	CMPQ       R13, $2
	JE         ofloat
	VDIVPS     Z24, Z0, Z0
	VMAXPS     Z25, Z0, Z0
	VMINPS     Z26, Z0, Z0
	VCVTPS2DQ  Z0, Z0
	VPADDD     Z27, Z0, Z0
	VPMOVUSDB  Z0, X0
	MOVQ       R12, R14
	IMULQ      DX, R14
	SUBQ       BX, R14
	CMPQ       R14, $16
	JL         olast8
	VMOVDQU    X0, (DI)(BX*1)
	ADDQ       $16, BX
	JMP        ocol

ofloat:
	MOVQ    R12, R14
	IMULQ   DX, R14
	SUBQ    BX, R14
	CMPQ    R14, $16
	JL      olastf
	VMOVUPS Z0, (DI)(BX*4)
	ADDQ    $16, BX
	JMP     ocol

olastf:
	VMOVUPS Z0, K1, (DI)(BX*4)
	ADDQ    $16, BX
	JMP     ocol

onext:
	ADDQ  R8, SI
	ADDQ  DX, R9
	ADDQ  DX, DI
	CMPQ  R13, $2
	JNE   onext2
	LEAQ  (DI)(DX*2), DI
	ADDQ  DX, DI

onext2:
	DECQ R12
	JMP  orow

odone:
	VZEROUPPER
	RET

// func qInterleaveAVX512(np int, r0 *byte, r1 *byte, r2 *byte, r3 *byte, dst *byte, dstStride int)
// Writes the k group formed by rows r0..r3 into np panels (panel q at
// dst+q*dstStride, byte 4*j+t = row t, column 16*q+j), as the interleave
// of QGemm's packing but without column sums (the batched convolution has
// no weight zero point).
TEXT ·qInterleaveAVX512(SB), NOSPLIT, $0-56
	MOVQ np+0(FP), CX
	MOVQ r0+8(FP), R8
	MOVQ r1+16(FP), R9
	MOVQ r2+24(FP), R10
	MOVQ r3+32(FP), R11
	MOVQ dst+40(FP), DI
	MOVQ dstStride+48(FP), DX
	LEAQ (DX)(DX*2), R12

il4:
	CMPQ        CX, $4
	JL          il1
	VMOVDQU64   (R8), Z0
	VMOVDQU64   (R9), Z1
	VMOVDQU64   (R10), Z2
	VMOVDQU64   (R11), Z3
	VPUNPCKLBW  Z1, Z0, Z4
	VPUNPCKHBW  Z1, Z0, Z5
	VPUNPCKLBW  Z3, Z2, Z6
	VPUNPCKHBW  Z3, Z2, Z7
	VPUNPCKLWD  Z6, Z4, Z8
	VPUNPCKHWD  Z6, Z4, Z9
	VPUNPCKLWD  Z7, Z5, Z10
	VPUNPCKHWD  Z7, Z5, Z11
	VSHUFI64X2  $0x44, Z9, Z8, Z12
	VSHUFI64X2  $0xEE, Z9, Z8, Z13
	VSHUFI64X2  $0x44, Z11, Z10, Z14
	VSHUFI64X2  $0xEE, Z11, Z10, Z15
	VSHUFI64X2  $0x88, Z14, Z12, Z16
	VSHUFI64X2  $0xDD, Z14, Z12, Z17
	VSHUFI64X2  $0x88, Z15, Z13, Z18
	VSHUFI64X2  $0xDD, Z15, Z13, Z19
	VMOVDQU64   Z16, (DI)
	VMOVDQU64   Z17, (DI)(DX*1)
	VMOVDQU64   Z18, (DI)(DX*2)
	VMOVDQU64   Z19, (DI)(R12*1)
	ADDQ        $64, R8
	ADDQ        $64, R9
	ADDQ        $64, R10
	ADDQ        $64, R11
	LEAQ        (DI)(DX*4), DI
	SUBQ        $4, CX
	JMP         il4

il1:
	TESTQ      CX, CX
	JE         ildone
	VMOVDQU    (R8), X0
	VMOVDQU    (R9), X1
	VMOVDQU    (R10), X2
	VMOVDQU    (R11), X3
	VPUNPCKLBW X1, X0, X4
	VPUNPCKHBW X1, X0, X5
	VPUNPCKLBW X3, X2, X6
	VPUNPCKHBW X3, X2, X7
	VPUNPCKLWD X6, X4, X8
	VPUNPCKHWD X6, X4, X9
	VPUNPCKLWD X7, X5, X10
	VPUNPCKHWD X7, X5, X11
	VMOVDQU    X8, (DI)
	VMOVDQU    X9, 16(DI)
	VMOVDQU    X10, 32(DI)
	VMOVDQU    X11, 48(DI)
	ADDQ       $16, R8
	ADDQ       $16, R9
	ADDQ       $16, R10
	ADDQ       $16, R11
	ADDQ       DX, DI
	DECQ       CX
	JMP        il1

ildone:
	VZEROUPPER
	RET

// func qMaxPool2x2AVX512(y *byte, ldy int, x *byte, iw int, rows int, ow int, signed int)
// Max-pools rows output rows of ow <= 32 bytes with 2x2 windows and stride
// 2 (MaxPool2x2Int): output row r (at y+r*ldy) from input rows 2r and 2r+1
// (at x+2r*iw and x+(2r+1)*iw, 2*ow bytes each read with a masked load),
// unsigned bytes, or signed ones when signed != 0. The two rows are
// combined byte by byte, then each word's odd byte (shifted down) with its
// even one, and the words are narrowed to bytes.
TEXT ·qMaxPool2x2AVX512(SB), NOSPLIT, $0-56
	MOVQ y+0(FP), DI
	MOVQ ldy+8(FP), R13
	MOVQ x+16(FP), SI
	MOVQ iw+24(FP), R8
	MOVQ rows+32(FP), R12
	MOVQ ow+40(FP), R10
	MOVQ signed+48(FP), R9
	// K1: 2*ow input bytes; K2: ow output bytes.
	LEAQ (R10)(R10*1), CX
	MOVQ $-1, R11
	CMPQ CX, $64
	JAE  mpmask
	MOVQ $1, R11
	SHLQ CX, R11
	DECQ R11

mpmask:
	KMOVQ R11, K1
	MOVQ  R10, CX
	MOVQ  $1, R11
	SHLQ  CX, R11
	DECQ  R11
	KMOVD R11, K2
	LEAQ  (SI)(R8*1), BX
	SHLQ  $1, R8
	TESTQ R9, R9
	JNE   mpsigned

mpunsigned:
	TESTQ      R12, R12
	JE         mpdone
	VMOVDQU8.Z (SI), K1, Z0
	VMOVDQU8.Z (BX), K1, Z1
	VPMAXUB    Z1, Z0, Z0
	VPSRLW     $8, Z0, Z1
	VPMAXUB    Z1, Z0, Z0
	VPMOVWB    Z0, Y2
	VMOVDQU8   Y2, K2, (DI)
	ADDQ       R8, SI
	ADDQ       R8, BX
	ADDQ       R13, DI
	DECQ       R12
	JMP        mpunsigned

mpsigned:
	TESTQ      R12, R12
	JE         mpdone
	VMOVDQU8.Z (SI), K1, Z0
	VMOVDQU8.Z (BX), K1, Z1
	VPMAXSB    Z1, Z0, Z0
	VPSRLW     $8, Z0, Z1
	VPMAXSB    Z1, Z0, Z0
	VPMOVWB    Z0, Y2
	VMOVDQU8   Y2, K2, (DI)
	ADDQ       R8, SI
	ADDQ       R8, BX
	ADDQ       R13, DI
	DECQ       R12
	JMP        mpsigned

mpdone:
	VZEROUPPER
	RET

// func qQuantizeAVX512(n int, x *float32, y *byte, p *qQuantParams, signed int)
// QuantizeLinear of n values with one scale (QuantizeFloat32): y = sat(
// round_half_even(clamp(x/s, lo, hi)) + zp), 16 values a step, the last
// ones with a mask. VMAXPS returns its second source (lo) when x/s is NaN,
// like the Go code; VCVTPS2DQ rounds half to even (the default MXCSR).
TEXT ·qQuantizeAVX512(SB), NOSPLIT, $0-40
	MOVQ         n+0(FP), DX
	MOVQ         x+8(FP), SI
	MOVQ         y+16(FP), DI
	MOVQ         p+24(FP), AX
	MOVQ         signed+32(FP), R9
	VBROADCASTSS 0(AX), Z24
	VBROADCASTSS 4(AX), Z25
	VBROADCASTSS 8(AX), Z26
	VPBROADCASTD 12(AX), Z27
	XORQ         BX, BX

qzloop:
	MOVQ DX, CX
	SUBQ BX, CX
	JLE  qzdone
	MOVQ $0xFFFF, R11
	CMPQ CX, $16
	JAE  qzmask
	MOVQ $1, R11
	SHLQ CX, R11
	DECQ R11

qzmask:
	KMOVW     R11, K1
	VMOVUPS.Z (SI)(BX*4), K1, Z0
	VDIVPS    Z24, Z0, Z0
	VMAXPS    Z25, Z0, Z0
	VMINPS    Z26, Z0, Z0
	VCVTPS2DQ Z0, Z0
	VPADDD    Z27, Z0, Z0
	TESTQ     R9, R9
	JNE       qzsigned
	VPMOVUSDB Z0, X0
	JMP       qzstore

qzsigned:
	VPMOVSDB Z0, X0

qzstore:
	VMOVDQU8 X0, K1, (DI)(BX*1)
	ADDQ     $16, BX
	JMP      qzloop

qzdone:
	VZEROUPPER
	RET
