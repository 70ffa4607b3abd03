// Command asmgen generates the amd64 assembly micro-kernels of package
// github.com/compressml/compress/runtime/kernels with avo.
//
// It is a separate module so that the main module does not depend on avo.
// Run it through go generate in runtime/kernels:
//
//	go generate ./runtime/kernels/
//
// which executes
//
//	go run -C ../../asmgen . -out ../runtime/kernels/sgemm_amd64.s \
//	    -stubs ../runtime/kernels/sgemm_amd64_stubs.go -pkg kernels
package main

import (
	"fmt"

	. "github.com/mmcloughlin/avo/build"
	. "github.com/mmcloughlin/avo/operand"
	. "github.com/mmcloughlin/avo/reg"
)

// Tile shape and flags; keep in sync with runtime/kernels.
const (
	mr        = 6
	nr        = 16
	flagLoadC = 1 << 0
	flagRelu  = 1 << 1
	unroll    = 8
)

func main() {
	ConstraintExpr("amd64,!purego")
	sgemmKernel6x16()
	sgemmKernel6x16AVX512()
	convTilesAVX512()
	convTilesAVX2()
	copyRowsAVX512(1)
	copyRowsAVX512(2)
	maxRowsAVX512()
	maxPool2x2AVX512()
	sumF64AVX512()
	saxpy()
	Generate()
}

// ymm returns physical YMM register i.
func ymm(i int) VecPhysical {
	return []VecPhysical{Y0, Y1, Y2, Y3, Y4, Y5, Y6, Y7, Y8, Y9, Y10, Y11, Y12, Y13, Y14, Y15}[i]
}

func resolve(name string) Mem {
	b, err := Param(name).Resolve()
	if err != nil {
		panic(err)
	}
	return b.Addr
}

// sgemmKernel6x16 emits the AVX2+FMA 6x16 micro-kernel. Accumulators are
// Y0-Y11 (row r in Y(2r), Y(2r+1)), the B row in Y12-Y13, and broadcasts of
// A alternate between Y14 and Y15.
func sgemmKernel6x16() {
	TEXT("sgemmKernel6x16", NOSPLIT, "func(k int, a, b, c *float32, ldc int, alpha, beta float32, biasRow, biasCol *float32, flags uint64)")
	Pragma("noescape")
	Doc("sgemmKernel6x16 computes a 6x16 tile of C from packed A and B panels;",
		"see kernelGeneric for the exact contract.")
	k := Load(Param("k"), GP64())
	a := Load(Param("a"), GP64())
	b := Load(Param("b"), GP64())
	c := Load(Param("c"), GP64())
	ldc := Load(Param("ldc"), GP64())
	SHLQ(U8(2), ldc) // bytes

	acc := func(r, h int) VecPhysical { return ymm(2*r + h) }
	for i := 0; i < 2*mr; i++ {
		VXORPS(ymm(i), ymm(i), ymm(i))
	}

	// Prefetch the C tile while the product runs.
	cp := GP64()
	MOVQ(c, cp)
	for r := 0; r < mr; r++ {
		PREFETCHT0(Mem{Base: cp})
		PREFETCHT0(Mem{Base: cp, Disp: 63})
		if r < mr-1 {
			ADDQ(ldc, cp)
		}
	}

	step := func(i int) {
		ob := i * nr * 4
		oa := i * mr * 4
		VMOVUPS(Mem{Base: b, Disp: ob}, Y12)
		VMOVUPS(Mem{Base: b, Disp: ob + 32}, Y13)
		for r := 0; r < mr; r++ {
			t := ymm(14 + r%2)
			VBROADCASTSS(Mem{Base: a, Disp: oa + 4*r}, t)
			VFMADD231PS(Y12, t, acc(r, 0))
			VFMADD231PS(Y13, t, acc(r, 1))
		}
	}

	Label("loop8")
	CMPQ(k, U8(unroll))
	JL(LabelRef("tail"))
	for i := 0; i < unroll; i++ {
		if i%2 == 0 {
			PREFETCHT0(Mem{Base: a, Disp: (unroll*mr*4)*4 + i*mr*4*2})
		}
		step(i)
	}
	ADDQ(U32(unroll*mr*4), a)
	ADDQ(U32(unroll*nr*4), b)
	SUBQ(U8(unroll), k)
	JMP(LabelRef("loop8"))

	Label("tail")
	TESTQ(k, k)
	JE(LabelRef("epilogue"))
	step(0)
	ADDQ(U8(mr*4), a)
	ADDQ(U8(nr*4), b)
	DECQ(k)
	JMP(LabelRef("tail"))

	Label("epilogue")
	// t = alpha * acc
	VBROADCASTSS(resolve("alpha"), Y12)
	for i := 0; i < 2*mr; i++ {
		VMULPS(Y12, ymm(i), ymm(i))
	}
	flags := Load(Param("flags"), GP64())

	// t += beta * C
	TESTQ(U32(flagLoadC), flags)
	JE(LabelRef("nobeta"))
	VBROADCASTSS(resolve("beta"), Y13)
	MOVQ(c, cp)
	for r := 0; r < mr; r++ {
		VFMADD231PS(Mem{Base: cp}, Y13, acc(r, 0))
		VFMADD231PS(Mem{Base: cp, Disp: 32}, Y13, acc(r, 1))
		if r < mr-1 {
			ADDQ(ldc, cp)
		}
	}
	Label("nobeta")

	// t += biasRow[r]
	br := Load(Param("biasRow"), GP64())
	TESTQ(br, br)
	JE(LabelRef("nobiasrow"))
	for r := 0; r < mr; r++ {
		t := ymm(14 + r%2)
		VBROADCASTSS(Mem{Base: br, Disp: 4 * r}, t)
		VADDPS(t, acc(r, 0), acc(r, 0))
		VADDPS(t, acc(r, 1), acc(r, 1))
	}
	Label("nobiasrow")

	// t += biasCol[j]
	bc := Load(Param("biasCol"), GP64())
	TESTQ(bc, bc)
	JE(LabelRef("nobiascol"))
	VMOVUPS(Mem{Base: bc}, Y14)
	VMOVUPS(Mem{Base: bc, Disp: 32}, Y15)
	for r := 0; r < mr; r++ {
		VADDPS(Y14, acc(r, 0), acc(r, 0))
		VADDPS(Y15, acc(r, 1), acc(r, 1))
	}
	Label("nobiascol")

	// t = max(t, 0); with t as the second source (Intel order) a NaN in t
	// is kept, like the Go code's "if v < 0 { v = 0 }".
	TESTQ(U32(flagRelu), flags)
	JE(LabelRef("store"))
	VXORPS(Y14, Y14, Y14)
	for i := 0; i < 2*mr; i++ {
		VMAXPS(ymm(i), Y14, ymm(i))
	}

	Label("store")
	MOVQ(c, cp)
	for r := 0; r < mr; r++ {
		VMOVUPS(acc(r, 0), Mem{Base: cp})
		VMOVUPS(acc(r, 1), Mem{Base: cp, Disp: 32})
		if r < mr-1 {
			ADDQ(ldc, cp)
		}
	}
	VZEROUPPER()
	RET()
}

// zmm returns physical ZMM register i.
func zmm(i int) VecPhysical {
	return []VecPhysical{Z0, Z1, Z2, Z3, Z4, Z5, Z6, Z7, Z8, Z9, Z10, Z11, Z12, Z13, Z14, Z15,
		Z16, Z17, Z18, Z19, Z20, Z21, Z22, Z23, Z24, Z25, Z26, Z27, Z28, Z29, Z30, Z31}[i]
}

// sgemmKernel6x16AVX512 emits an AVX-512 kernel on the same packed 6x16
// layout: a tile row is one ZMM register. Six rows alone would leave the FMA
// pipes waiting on latency, so even and odd k accumulate into separate
// registers (Z0-Z5 and Z6-Z11), summed before the epilogue. A values are
// broadcast straight from memory by the FMA ({1to16}); B rows go through
// Z12-Z19.
func sgemmKernel6x16AVX512() {
	TEXT("sgemmKernel6x16AVX512", NOSPLIT, "func(k int, a, b, c *float32, ldc int, alpha, beta float32, biasRow, biasCol *float32, flags uint64)")
	Pragma("noescape")
	Doc("sgemmKernel6x16AVX512 computes a 6x16 tile of C from packed A and B",
		"panels with AVX-512; see kernelGeneric for the exact contract.")
	k := Load(Param("k"), GP64())
	a := Load(Param("a"), GP64())
	b := Load(Param("b"), GP64())
	c := Load(Param("c"), GP64())
	ldc := Load(Param("ldc"), GP64())
	SHLQ(U8(2), ldc) // bytes

	acc := func(phase, r int) VecPhysical { return zmm(phase*mr + r) }
	for i := 0; i < 2*mr; i++ {
		VPXORD(zmm(i), zmm(i), zmm(i))
	}
	cp := GP64()
	MOVQ(c, cp)
	for r := 0; r < mr; r++ {
		PREFETCHT0(Mem{Base: cp})
		PREFETCHT0(Mem{Base: cp, Disp: 63})
		if r < mr-1 {
			ADDQ(ldc, cp)
		}
	}

	// step accumulates k step i (relative to a and b) into phase i%2, with
	// its B row in register breg.
	step := func(i int, breg VecPhysical) {
		VMOVUPS(Mem{Base: b, Disp: i * nr * 4}, breg)
		for r := 0; r < mr; r++ {
			VFMADD231PS_BCST(Mem{Base: a, Disp: i*mr*4 + 4*r}, breg, acc(i%2, r))
		}
	}

	Label("z_loop8")
	CMPQ(k, U8(unroll))
	JL(LabelRef("z_tail"))
	for i := 0; i < unroll; i++ {
		if i%2 == 0 {
			PREFETCHT0(Mem{Base: a, Disp: (unroll*mr*4)*4 + i*mr*4*2})
		}
		step(i, zmm(12+i))
	}
	ADDQ(U32(unroll*mr*4), a)
	ADDQ(U32(unroll*nr*4), b)
	SUBQ(U8(unroll), k)
	JMP(LabelRef("z_loop8"))

	Label("z_tail")
	TESTQ(k, k)
	JE(LabelRef("z_epilogue"))
	step(0, Z12)
	ADDQ(U8(mr*4), a)
	ADDQ(U8(nr*4), b)
	DECQ(k)
	JMP(LabelRef("z_tail"))

	Label("z_epilogue")
	for r := 0; r < mr; r++ {
		VADDPS(acc(1, r), acc(0, r), acc(0, r))
	}
	VBROADCASTSS(resolve("alpha"), Z12)
	for r := 0; r < mr; r++ {
		VMULPS(Z12, acc(0, r), acc(0, r))
	}
	flags := Load(Param("flags"), GP64())

	TESTQ(U32(flagLoadC), flags)
	JE(LabelRef("z_nobeta"))
	VBROADCASTSS(resolve("beta"), Z13)
	MOVQ(c, cp)
	for r := 0; r < mr; r++ {
		VFMADD231PS(Mem{Base: cp}, Z13, acc(0, r))
		if r < mr-1 {
			ADDQ(ldc, cp)
		}
	}
	Label("z_nobeta")

	br := Load(Param("biasRow"), GP64())
	TESTQ(br, br)
	JE(LabelRef("z_nobiasrow"))
	for r := 0; r < mr; r++ {
		VADDPS_BCST(Mem{Base: br, Disp: 4 * r}, acc(0, r), acc(0, r))
	}
	Label("z_nobiasrow")

	bc := Load(Param("biasCol"), GP64())
	TESTQ(bc, bc)
	JE(LabelRef("z_nobiascol"))
	VMOVUPS(Mem{Base: bc}, Z14)
	for r := 0; r < mr; r++ {
		VADDPS(Z14, acc(0, r), acc(0, r))
	}
	Label("z_nobiascol")

	TESTQ(U32(flagRelu), flags)
	JE(LabelRef("z_store"))
	VPXORD(Z14, Z14, Z14)
	for r := 0; r < mr; r++ {
		VMAXPS(acc(0, r), Z14, acc(0, r))
	}

	Label("z_store")
	MOVQ(c, cp)
	for r := 0; r < mr; r++ {
		VMOVUPS(acc(0, r), Mem{Base: cp})
		if r < mr-1 {
			ADDQ(ldc, cp)
		}
	}
	VZEROUPPER()
	RET()
}

// Direct convolution tile; keep in sync with runtime/kernels/convdirect.go.
const (
	cmr           = 8 // output channels per tile
	cblk          = 2 // column blocks of 16 outputs per tile
	convFlagRelu  = 1 << 0
	convFlagBias  = 1 << 1
	convFlagResid = 1 << 2
)

// convPairSize is the size in bytes of one block pair descriptor
// (six int32: src0, src1, dst0, dst1, masks, padding).
const convPairSize = 24

// convTilesAVX512 emits the direct-convolution kernel: for each of npairs
// block pair descriptors and each channel panel p < panels, a tile of 8
// output channels by two blocks of 16 outputs. Accumulators are Z0-Z15
// (channel r, block b in Z(2r+b)); per tap the kernel reads the element
// offset offs[k], loads the two blocks' input rows at src+src0+offs[k] and
// src+src1+offs[k] (masked by K1 and K2) into Z16 and Z17, and broadcasts
// the tap's 8 packed weights (a + p*k*8) into Z18-Z21 in turn. One
// accumulator per output keeps the sum in tap order, like the portable
// twin. The epilogue adds bias[p*8+r], the residual (same layout as the
// output), applies ReLU and stores rows (p*8+r)*ldc + dst0/dst1 under the
// masks.
func convTilesAVX512() {
	TEXT("convTilesAVX512", NOSPLIT, "func(k int, a *float32, offs *int32, src, y *float32, ldc int, bias, res *float32, pairs *int32, npairs, panels int, flags uint64)")
	Pragma("noescape")
	Doc("convTilesAVX512 computes the tiles of npairs block pairs times panels",
		"full channel panels; see convTilesGeneric for the exact contract.")
	acc := func(r, b int) VecPhysical { return zmm(2*r + b) }
	desc := Load(Param("pairs"), GP64())
	npairs := Load(Param("npairs"), GP64())

	Label("ct_pair")
	TESTQ(npairs, npairs)
	JE(LabelRef("ct_done"))
	mk := GP64()
	MOVL(Mem{Base: desc, Disp: 16}, mk.As32())
	KMOVW(mk.As32(), K1)
	SHRL(U8(16), mk.As32())
	KMOVW(mk.As32(), K2)
	panel := GP64()
	XORQ(panel, panel)

	Label("ct_panel")
	CMPQ(panel, resolve("panels"))
	JE(LabelRef("ct_nextpair"))
	ap := GP64()
	Load(Param("k"), ap)
	IMULQ(panel, ap)
	SHLQ(U8(5), ap) // panel*k*8 floats
	ADDQ(resolve("a"), ap)
	op := Load(Param("offs"), GP64())
	b0, b1 := GP64(), GP64()
	MOVLQSX(Mem{Base: desc}, b0)
	MOVLQSX(Mem{Base: desc, Disp: 4}, b1)
	srcp := Load(Param("src"), GP64())
	LEAQ(Mem{Base: srcp, Index: b0, Scale: 4}, b0)
	LEAQ(Mem{Base: srcp, Index: b1, Scale: 4}, b1)
	kk := Load(Param("k"), GP64())
	for i := 0; i < cmr*cblk; i++ {
		VPXORD(zmm(i), zmm(i), zmm(i))
	}
	off := GP64()
	step := func(i int) {
		MOVLQSX(Mem{Base: op, Disp: 4 * i}, off)
		VMOVUPS_Z(Mem{Base: b0, Index: off, Scale: 4}, K1, Z16)
		VMOVUPS_Z(Mem{Base: b1, Index: off, Scale: 4}, K2, Z17)
		for r := 0; r < cmr; r++ {
			t := zmm(18 + r%4)
			VBROADCASTSS(Mem{Base: ap, Disp: (i*cmr + r) * 4}, t)
			VFMADD231PS(Z16, t, acc(r, 0))
			VFMADD231PS(Z17, t, acc(r, 1))
		}
	}
	const un = 4
	Label("ct_loop")
	CMPQ(kk, U8(un))
	JL(LabelRef("ct_tail"))
	for i := 0; i < un; i++ {
		step(i)
	}
	ADDQ(U32(un*cmr*4), ap)
	ADDQ(U8(un*4), op)
	SUBQ(U8(un), kk)
	JMP(LabelRef("ct_loop"))
	Label("ct_tail")
	TESTQ(kk, kk)
	JE(LabelRef("ct_epilogue"))
	step(0)
	ADDQ(U8(cmr*4), ap)
	ADDQ(U8(4), op)
	DECQ(kk)
	JMP(LabelRef("ct_tail"))

	Label("ct_epilogue")
	flags := Load(Param("flags"), GP64())
	ldc := Load(Param("ldc"), GP64())
	SHLQ(U8(2), ldc) // bytes
	ro := GP64()     // byte offset of the panel's first row: panel*8*ldc
	MOVQ(panel, ro)
	IMULQ(ldc, ro)
	SHLQ(U8(3), ro)

	TESTQ(U32(convFlagBias), flags)
	JE(LabelRef("ct_nobias"))
	bp := Load(Param("bias"), GP64())
	t := GP64()
	MOVQ(panel, t)
	SHLQ(U8(5), t)
	ADDQ(t, bp)
	for r := 0; r < cmr; r++ {
		z := zmm(18 + r%4)
		VBROADCASTSS(Mem{Base: bp, Disp: 4 * r}, z)
		VADDPS(z, acc(r, 0), acc(r, 0))
		VADDPS(z, acc(r, 1), acc(r, 1))
	}
	Label("ct_nobias")

	TESTQ(U32(convFlagResid), flags)
	JE(LabelRef("ct_noresid"))
	rp := Load(Param("res"), GP64())
	ADDQ(ro, rp)
	r0, r1 := GP64(), GP64()
	MOVLQSX(Mem{Base: desc, Disp: 8}, r0)
	MOVLQSX(Mem{Base: desc, Disp: 12}, r1)
	LEAQ(Mem{Base: rp, Index: r0, Scale: 4}, r0)
	LEAQ(Mem{Base: rp, Index: r1, Scale: 4}, r1)
	for r := 0; r < cmr; r++ {
		VMOVUPS_Z(Mem{Base: r0}, K1, Z16)
		VMOVUPS_Z(Mem{Base: r1}, K2, Z17)
		VADDPS(Z16, acc(r, 0), acc(r, 0))
		VADDPS(Z17, acc(r, 1), acc(r, 1))
		if r < cmr-1 {
			ADDQ(ldc, r0)
			ADDQ(ldc, r1)
		}
	}
	Label("ct_noresid")

	TESTQ(U32(convFlagRelu), flags)
	JE(LabelRef("ct_store"))
	VPXORD(Z16, Z16, Z16)
	for i := 0; i < cmr*cblk; i++ {
		VMAXPS(zmm(i), Z16, zmm(i))
	}

	Label("ct_store")
	yp := Load(Param("y"), GP64())
	ADDQ(ro, yp)
	c0, c1 := GP64(), GP64()
	MOVLQSX(Mem{Base: desc, Disp: 8}, c0)
	MOVLQSX(Mem{Base: desc, Disp: 12}, c1)
	LEAQ(Mem{Base: yp, Index: c0, Scale: 4}, c0)
	LEAQ(Mem{Base: yp, Index: c1, Scale: 4}, c1)
	for r := 0; r < cmr; r++ {
		VMOVUPS(acc(r, 0), K1, Mem{Base: c0})
		VMOVUPS(acc(r, 1), K2, Mem{Base: c1})
		if r < cmr-1 {
			ADDQ(ldc, c0)
			ADDQ(ldc, c1)
		}
	}
	INCQ(panel)
	JMP(LabelRef("ct_panel"))

	Label("ct_nextpair")
	ADDQ(U8(convPairSize), desc)
	DECQ(npairs)
	JMP(LabelRef("ct_pair"))

	Label("ct_done")
	VZEROUPPER()
	RET()
}

// convTilesAVX2 emits the AVX2+FMA version of convTilesAVX512 (same
// arguments and arithmetic): each block of 16 outputs is done as two halves
// of 8, a tile being 8 channels (Y0-Y7) by 8 outputs, the input row of a
// tap loaded under a lane mask (Y15) into Y8 and the weights broadcast into
// Y9-Y12 in turn. Full halves store with plain moves (AMD's masked stores
// are slow).
func convTilesAVX2() {
	TEXT("convTilesAVX2", NOSPLIT, "func(k int, a *float32, offs *int32, src, y *float32, ldc int, bias, res *float32, pairs *int32, npairs, panels int, flags uint64)")
	Pragma("noescape")
	Doc("convTilesAVX2 is convTilesAVX512 for AVX2+FMA; see convTilesGeneric",
		"for the exact contract.")
	halfMasks := GLOBL("halfMasks", RODATA|NOPTR)
	for i := 0; i < 16; i++ {
		v := uint32(0)
		if i < 8 {
			v = 0xffffffff
		}
		DATA(4*i, U32(v))
	}
	locSub, locSrc, locDst, locN := AllocLocal(8), AllocLocal(8), AllocLocal(8), AllocLocal(8)
	acc := func(r int) VecPhysical { return ymm(r) }
	desc := Load(Param("pairs"), GP64())
	npairs := Load(Param("npairs"), GP64())

	Label("a2_pair")
	TESTQ(npairs, npairs)
	JE(LabelRef("a2_done"))
	MOVQ(U32(0), locSub)

	Label("a2_sub") // sub = 2*block + half
	sub := GP64()
	MOVQ(locSub, sub)
	CMPQ(sub, U8(4))
	JE(LabelRef("a2_nextpair"))
	mk, sh := GP64(), GP64()
	MOVQ(sub, sh)
	SHLQ(U8(3), sh) // the half's 8 mask bits start at bit 8*sub
	MOVL(Mem{Base: desc, Disp: 16}, mk.As32())
	SHRXQ(sh, mk, mk)
	ANDL(U32(0xff), mk.As32())
	nn := GP64()
	POPCNTL(mk.As32(), nn.As32())
	TESTQ(nn, nn)
	JE(LabelRef("a2_nextsub"))
	MOVQ(nn, locN)
	t := GP64()
	MOVQ(U32(8), t)
	SUBQ(nn, t)
	hb := GP64()
	LEAQ(halfMasks, hb)
	VMOVUPS(Mem{Base: hb, Index: t, Scale: 4}, Y15)
	blk, h8 := GP64(), GP64()
	MOVQ(sub, blk)
	SHRQ(U8(1), blk)
	MOVQ(sub, h8)
	ANDQ(U8(1), h8)
	SHLQ(U8(3), h8)
	so := GP64()
	MOVLQSX(Mem{Base: desc, Index: blk, Scale: 4}, so)
	ADDQ(h8, so)
	MOVQ(so, locSrc)
	do := GP64()
	MOVLQSX(Mem{Base: desc, Index: blk, Scale: 4, Disp: 8}, do)
	ADDQ(h8, do)
	MOVQ(do, locDst)
	panel := GP64()
	XORQ(panel, panel)

	Label("a2_panel")
	CMPQ(panel, resolve("panels"))
	JE(LabelRef("a2_nextsub"))
	ap := GP64()
	Load(Param("k"), ap)
	IMULQ(panel, ap)
	SHLQ(U8(5), ap)
	ADDQ(resolve("a"), ap)
	op := Load(Param("offs"), GP64())
	b := Load(Param("src"), GP64())
	bo := GP64()
	MOVQ(locSrc, bo)
	LEAQ(Mem{Base: b, Index: bo, Scale: 4}, b)
	kk := Load(Param("k"), GP64())
	for r := 0; r < cmr; r++ {
		VXORPS(acc(r), acc(r), acc(r))
	}
	off := GP64()
	step := func(i int) {
		MOVLQSX(Mem{Base: op, Disp: 4 * i}, off)
		VMASKMOVPS(Mem{Base: b, Index: off, Scale: 4}, Y15, Y8)
		for r := 0; r < cmr; r++ {
			z := ymm(9 + r%4)
			VBROADCASTSS(Mem{Base: ap, Disp: (i*cmr + r) * 4}, z)
			VFMADD231PS(Y8, z, acc(r))
		}
	}
	const un = 4
	Label("a2_loop")
	CMPQ(kk, U8(un))
	JL(LabelRef("a2_tail"))
	for i := 0; i < un; i++ {
		step(i)
	}
	ADDQ(U32(un*cmr*4), ap)
	ADDQ(U8(un*4), op)
	SUBQ(U8(un), kk)
	JMP(LabelRef("a2_loop"))
	Label("a2_tail")
	TESTQ(kk, kk)
	JE(LabelRef("a2_epilogue"))
	step(0)
	ADDQ(U8(cmr*4), ap)
	ADDQ(U8(4), op)
	DECQ(kk)
	JMP(LabelRef("a2_tail"))

	Label("a2_epilogue")
	flags := Load(Param("flags"), GP64())
	ldc := Load(Param("ldc"), GP64())
	SHLQ(U8(2), ldc)
	ro := GP64() // byte offset of the tile's first output: panel*8*ldc + dst*4
	MOVQ(panel, ro)
	IMULQ(ldc, ro)
	SHLQ(U8(3), ro)
	dq := GP64()
	MOVQ(locDst, dq)
	LEAQ(Mem{Base: ro, Index: dq, Scale: 4}, ro)

	TESTQ(U32(convFlagBias), flags)
	JE(LabelRef("a2_nobias"))
	bp := Load(Param("bias"), GP64())
	t2 := GP64()
	MOVQ(panel, t2)
	SHLQ(U8(5), t2)
	ADDQ(t2, bp)
	for r := 0; r < cmr; r++ {
		z := ymm(9 + r%4)
		VBROADCASTSS(Mem{Base: bp, Disp: 4 * r}, z)
		VADDPS(z, acc(r), acc(r))
	}
	Label("a2_nobias")

	TESTQ(U32(convFlagResid), flags)
	JE(LabelRef("a2_noresid"))
	rp := Load(Param("res"), GP64())
	ADDQ(ro, rp)
	for r := 0; r < cmr; r++ {
		VMASKMOVPS(Mem{Base: rp}, Y15, Y8)
		VADDPS(Y8, acc(r), acc(r))
		if r < cmr-1 {
			ADDQ(ldc, rp)
		}
	}
	Label("a2_noresid")

	TESTQ(U32(convFlagRelu), flags)
	JE(LabelRef("a2_store"))
	VXORPS(Y8, Y8, Y8)
	for r := 0; r < cmr; r++ {
		VMAXPS(acc(r), Y8, acc(r))
	}

	Label("a2_store")
	cp := Load(Param("y"), GP64())
	ADDQ(ro, cp)
	CMPQ(locN, U8(8))
	JNE(LabelRef("a2_storemasked"))
	for r := 0; r < cmr; r++ {
		VMOVUPS(acc(r), Mem{Base: cp})
		if r < cmr-1 {
			ADDQ(ldc, cp)
		}
	}
	JMP(LabelRef("a2_nextpanel"))
	Label("a2_storemasked")
	for r := 0; r < cmr; r++ {
		VMASKMOVPS(acc(r), Y15, Mem{Base: cp})
		if r < cmr-1 {
			ADDQ(ldc, cp)
		}
	}
	Label("a2_nextpanel")
	INCQ(panel)
	JMP(LabelRef("a2_panel"))

	Label("a2_nextsub")
	INCQ(locSub)
	JMP(LabelRef("a2_sub"))

	Label("a2_nextpair")
	ADDQ(U8(convPairSize), desc)
	DECQ(npairs)
	JMP(LabelRef("a2_pair"))

	Label("a2_done")
	VZEROUPPER()
	RET()
}

// copyRowsAVX512 emits copyRowsAVX512 (stride 1) or copyRows2AVX512
// (stride 2): for plane p < planes and row r < rows, copy n values of
// source row src + p*srcPlane + r*srcRow (element j at j*stride) to
// dst + p*dstPlane + r*dstRow (all strides in elements). Full chunks of 16
// outputs, then one masked chunk; masked loads never touch values past the
// last one read.
func copyRowsAVX512(stride int) {
	name := "copyRowsAVX512"
	if stride == 2 {
		name = "copyRows2AVX512"
	}
	TEXT(name, NOSPLIT, "func(dst *float32, dstRow, dstPlane int, src *float32, srcRow, srcPlane, n, rows, planes, lead, trail int)")
	Pragma("noescape")
	Doc(name+" copies planes x rows rows of n values, reading every",
		fmt.Sprintf("%d. source value, and zeroes lead values before and trail", stride),
		"values after each destination row (both at most 16); see copyRowsGeneric.")
	lbl := func(s string) string { return fmt.Sprintf("cr%d_%s", stride, s) }
	dst := Load(Param("dst"), GP64())
	src := Load(Param("src"), GP64())
	n := Load(Param("n"), GP64())
	planes := Load(Param("planes"), GP64())
	var idx VecPhysical
	if stride == 2 {
		even := GLOBL("evenIndex", RODATA|NOPTR)
		for i := 0; i < 16; i++ {
			DATA(4*i, U32(2*i))
		}
		idx = Z31
		VMOVDQU32(even, idx)
	}
	// Masks of the last, partial chunk: K1 for the stores (n%16 values),
	// K2 and K3 for the two source halves (stride 2: 2*(n%16)-1 values).
	rem := GP64()
	MOVQ(n, rem)
	ANDQ(U8(15), rem)
	ones := GP64()
	MOVQ(U32(0xffffffff), ones)
	m := GP64()
	BZHIQ(rem, ones, m)
	KMOVW(m.As32(), K1)
	if stride == 2 {
		span := GP64()
		LEAQ(Mem{Base: rem, Index: rem, Scale: 1, Disp: -1}, span) // 2*rem-1
		BZHIQ(span, ones, m)
		KMOVW(m.As32(), K2)
		SHRQ(U8(16), m)
		KMOVW(m.As32(), K3)
		// A full chunk reads 31 values: source value 31 may lie past the row.
		MOVL(U32(0x7fff), m.As32())
		KMOVW(m.As32(), K4)
	}
	// K5 and K6 zero the lead and trail values around each row.
	Load(Param("lead"), m)
	BZHIQ(m, ones, m)
	KMOVW(m.As32(), K5)
	Load(Param("trail"), m)
	BZHIQ(m, ones, m)
	KMOVW(m.As32(), K6)
	VPXORD(Z30, Z30, Z30)
	// Short rows (stride 1: n <= 32, stride 2: n <= 16, the usual case)
	// take a branch-free row loop.
	short := 32 / stride
	CMPQ(n, U8(short))
	JA(LabelRef(lbl("long")))
	copyShortRows(stride, lbl, dst, src, n, planes, ones, idx)
	Label(lbl("long"))
	full := GP64()
	MOVQ(n, full)
	SHRQ(U8(4), full)

	Label(lbl("plane"))
	TESTQ(planes, planes)
	JE(LabelRef(lbl("done")))
	rows := Load(Param("rows"), GP64())
	d, s := GP64(), GP64()
	MOVQ(dst, d)
	MOVQ(src, s)
	Label(lbl("row"))
	TESTQ(rows, rows)
	JE(LabelRef(lbl("nextplane")))
	i := GP64()
	Load(Param("lead"), i)
	NEGQ(i)
	VMOVUPS(Z30, K5, Mem{Base: d, Index: i, Scale: 4})
	Load(Param("n"), i)
	VMOVUPS(Z30, K6, Mem{Base: d, Index: i, Scale: 4})
	XORQ(i, i)
	dp, sp := GP64(), GP64()
	MOVQ(d, dp)
	MOVQ(s, sp)
	Label(lbl("chunk"))
	CMPQ(i, full)
	JE(LabelRef(lbl("tail")))
	if stride == 1 {
		VMOVUPS(Mem{Base: sp}, Z0)
	} else {
		VMOVUPS(Mem{Base: sp}, Z0)
		VMOVUPS_Z(Mem{Base: sp, Disp: 64}, K4, Z1)
		VPERMT2PS(Z1, idx, Z0)
	}
	VMOVUPS(Z0, Mem{Base: dp})
	ADDQ(U8(64), dp)
	ADDQ(U32(64*stride), sp)
	INCQ(i)
	JMP(LabelRef(lbl("chunk")))
	Label(lbl("tail"))
	TESTQ(rem, rem)
	JE(LabelRef(lbl("nextrow")))
	if stride == 1 {
		VMOVUPS_Z(Mem{Base: sp}, K1, Z0)
	} else {
		VMOVUPS_Z(Mem{Base: sp}, K2, Z0)
		VMOVUPS_Z(Mem{Base: sp, Disp: 64}, K3, Z1)
		VPERMT2PS(Z1, idx, Z0)
	}
	VMOVUPS(Z0, K1, Mem{Base: dp})
	Label(lbl("nextrow"))
	t := GP64()
	Load(Param("dstRow"), t)
	LEAQ(Mem{Base: d, Index: t, Scale: 4}, d)
	Load(Param("srcRow"), t)
	LEAQ(Mem{Base: s, Index: t, Scale: 4}, s)
	DECQ(rows)
	JMP(LabelRef(lbl("row")))

	Label(lbl("nextplane"))
	t2 := GP64()
	Load(Param("dstPlane"), t2)
	LEAQ(Mem{Base: dst, Index: t2, Scale: 4}, dst)
	Load(Param("srcPlane"), t2)
	LEAQ(Mem{Base: src, Index: t2, Scale: 4}, src)
	DECQ(planes)
	JMP(LabelRef(lbl("plane")))

	Label(lbl("done"))
	VZEROUPPER()
	RET()
}

// goMax emits t = max(x, y) with Go's semantics for float32: NaN if either
// is NaN, max(-0, +0) = +0. VMAXPS returns its second operand on NaN and
// on equal values, so equal lanes take x AND y (+0 for mixed zeros) and
// unordered lanes x + y (a NaN). Uses K6 and K7.
func goMax(x, y, t VecPhysical) {
	VMAXPS(y, x, t)
	VCMPPS(U8(0), y, x, K6) // EQ_OQ
	VPANDD(y, x, K6, t)
	VCMPPS(U8(3), y, x, K7) // UNORD_Q
	VADDPS(y, x, K7, t)
}

// maxRowsAVX512 emits dst[i] = max(a[i], b[i]) for i < n (Go semantics).
func maxRowsAVX512() {
	TEXT("maxRowsAVX512", NOSPLIT, "func(dst, a, b *float32, n int)")
	Pragma("noescape")
	Doc("maxRowsAVX512 sets dst[i] = max(a[i], b[i]) for i < n, with Go's max",
		"semantics; see maxRowsGeneric.")
	dst := Load(Param("dst"), GP64())
	a := Load(Param("a"), GP64())
	b := Load(Param("b"), GP64())
	n := Load(Param("n"), GP64())
	Label("mr_loop")
	CMPQ(n, U8(16))
	JL(LabelRef("mr_tail"))
	VMOVUPS(Mem{Base: a}, Z0)
	VMOVUPS(Mem{Base: b}, Z1)
	goMax(Z0, Z1, Z2)
	VMOVUPS(Z2, Mem{Base: dst})
	ADDQ(U8(64), a)
	ADDQ(U8(64), b)
	ADDQ(U8(64), dst)
	SUBQ(U8(16), n)
	JMP(LabelRef("mr_loop"))
	Label("mr_tail")
	TESTQ(n, n)
	JE(LabelRef("mr_done"))
	ones, m := GP64(), GP64()
	MOVL(U32(0xffff), ones.As32())
	BZHIQ(n, ones, m)
	KMOVW(m.As32(), K1)
	VMOVUPS_Z(Mem{Base: a}, K1, Z0)
	VMOVUPS_Z(Mem{Base: b}, K1, Z1)
	goMax(Z0, Z1, Z2)
	VMOVUPS(Z2, K1, Mem{Base: dst})
	Label("mr_done")
	VZEROUPPER()
	RET()
}

// maxPool2x2AVX512 emits the 2x2, stride 2 max pooling of rows output rows
// of ow values: y[r*ow+i] is the max of x[2r*iw+2i+{0,1}] and
// x[(2r+1)*iw+2i+{0,1}].
func maxPool2x2AVX512() {
	TEXT("maxPool2x2AVX512", NOSPLIT, "func(y, x *float32, rows, ow, iw int)")
	Pragma("noescape")
	Doc("maxPool2x2AVX512 max-pools rows output rows of ow values with 2x2",
		"windows and stride 2 (Go's max semantics); see maxPool2x2Generic.")
	even := GLOBL("poolEven", RODATA|NOPTR)
	for i := 0; i < 16; i++ {
		DATA(4*i, U32(2*i))
	}
	odd := GLOBL("poolOdd", RODATA|NOPTR)
	for i := 0; i < 16; i++ {
		DATA(4*i, U32(2*i+1))
	}
	VMOVDQU32(even, Z30)
	VMOVDQU32(odd, Z31)
	y := Load(Param("y"), GP64())
	x := Load(Param("x"), GP64())
	rows := Load(Param("rows"), GP64())
	ow := Load(Param("ow"), GP64())
	iw := Load(Param("iw"), GP64())
	SHLQ(U8(2), iw) // bytes
	// Tail masks: K1 stores rem = ow%16 outputs, K2/K3 load the 2*rem inputs.
	rem := GP64()
	MOVQ(ow, rem)
	ANDQ(U8(15), rem)
	ones, m := GP64(), GP64()
	MOVL(U32(0xffffffff), ones.As32())
	BZHIQ(rem, ones, m)
	KMOVW(m.As32(), K1)
	LEAQ(Mem{Base: rem, Index: rem, Scale: 1}, m)
	BZHIQ(m, ones, m)
	KMOVW(m.As32(), K2)
	SHRQ(U8(16), m)
	KMOVW(m.As32(), K3)
	full := GP64()
	MOVQ(ow, full)
	SHRQ(U8(4), full)

	// pair loads 32 inputs at p (masked by k0/k1 when given) and leaves
	// the max of even and odd lanes in t.
	pair := func(p Mem, masked bool, t VecPhysical) {
		if masked {
			VMOVUPS_Z(p, K2, Z0)
			VMOVUPS_Z(p.Offset(64), K3, Z1)
		} else {
			VMOVUPS(p, Z0)
			VMOVUPS(p.Offset(64), Z1)
		}
		VMOVAPS(Z0, Z2)
		VPERMT2PS(Z1, Z30, Z0)
		VPERMT2PS(Z1, Z31, Z2)
		goMax(Z0, Z2, t)
	}
	Label("mp_row")
	TESTQ(rows, rows)
	JE(LabelRef("mp_done"))
	a, b, d, i := GP64(), GP64(), GP64(), GP64()
	MOVQ(x, a)
	LEAQ(Mem{Base: x, Index: iw, Scale: 1}, b)
	MOVQ(y, d)
	XORQ(i, i)
	Label("mp_chunk")
	CMPQ(i, full)
	JE(LabelRef("mp_tail"))
	pair(Mem{Base: a}, false, Z3)
	pair(Mem{Base: b}, false, Z4)
	goMax(Z3, Z4, Z5)
	VMOVUPS(Z5, Mem{Base: d})
	ADDQ(U8(128), a)
	ADDQ(U8(128), b)
	ADDQ(U8(64), d)
	INCQ(i)
	JMP(LabelRef("mp_chunk"))
	Label("mp_tail")
	TESTQ(rem, rem)
	JE(LabelRef("mp_next"))
	pair(Mem{Base: a}, true, Z3)
	pair(Mem{Base: b}, true, Z4)
	goMax(Z3, Z4, Z5)
	VMOVUPS(Z5, K1, Mem{Base: d})
	Label("mp_next")
	LEAQ(Mem{Base: x, Index: iw, Scale: 2}, x)
	LEAQ(Mem{Base: y, Index: ow, Scale: 4}, y)
	DECQ(rows)
	JMP(LabelRef("mp_row"))
	Label("mp_done")
	VZEROUPPER()
	RET()
}

// sumF64AVX512 emits the sum of n float32 values accumulated in float64:
// four ZMM accumulators of 8 lanes over chunks of 32 values, then chunks of
// 8 and a masked tail into the first, then a fixed reduction tree.
func sumF64AVX512() {
	TEXT("sumF64AVX512", NOSPLIT, "func(x *float32, n int) float64")
	Pragma("noescape")
	Doc("sumF64AVX512 returns the sum of x[0:n] accumulated in float64 lanes;",
		"see sumF64Generic.")
	x := Load(Param("x"), GP64())
	n := Load(Param("n"), GP64())
	for i := 0; i < 4; i++ {
		VPXORQ(zmm(i), zmm(i), zmm(i))
	}
	Label("sum_loop32")
	CMPQ(n, U8(32))
	JL(LabelRef("sum_loop8"))
	for i := 0; i < 4; i++ {
		VCVTPS2PD(Mem{Base: x, Disp: 32 * i}, zmm(4+i))
	}
	for i := 0; i < 4; i++ {
		VADDPD(zmm(4+i), zmm(i), zmm(i))
	}
	ADDQ(U8(128), x)
	SUBQ(U8(32), n)
	JMP(LabelRef("sum_loop32"))
	Label("sum_loop8")
	CMPQ(n, U8(8))
	JL(LabelRef("sum_tail"))
	VCVTPS2PD(Mem{Base: x}, Z4)
	VADDPD(Z4, Z0, Z0)
	ADDQ(U8(32), x)
	SUBQ(U8(8), n)
	JMP(LabelRef("sum_loop8"))
	Label("sum_tail")
	TESTQ(n, n)
	JE(LabelRef("sum_reduce"))
	ones, m := GP64(), GP64()
	MOVL(U32(0xff), ones.As32())
	BZHIQ(n, ones, m)
	KMOVW(m.As32(), K1)
	VCVTPS2PD_Z(Mem{Base: x}, K1, Z4)
	VADDPD(Z4, Z0, Z0)
	Label("sum_reduce")
	VADDPD(Z1, Z0, Z0)
	VADDPD(Z3, Z2, Z2)
	VADDPD(Z2, Z0, Z0)
	VEXTRACTF64X4(U8(1), Z0, Y1)
	VADDPD(Y1, Y0, Y0)
	VEXTRACTF128(U8(1), Y0, X1)
	VADDPD(X1, X0, X0)
	VPERMILPD(U8(1), X0, X1)
	VADDSD(X1, X0, X0)
	VZEROUPPER()
	Store(X0, ReturnIndex(0))
	RET()
}

// copyShortRows emits the row loop of copyRowsAVX512 for rows of at most
// 32/stride values: two masked source chunks per row (K1, K2: stride 1
// stores; K3, K4: stride 2 source halves, K1 the store), the lead and trail
// zeros (K5, K6, Z30), no branches per row. It ends with RET.
func copyShortRows(stride int, lbl func(string) string, dst, src, n, planes, ones Register, idx VecPhysical) {
	m := GP64()
	if stride == 1 {
		BZHIQ(n, ones, m) // n <= 32 lanes over two chunks
		KMOVW(m.As32(), K1)
		SHRQ(U8(16), m)
		KMOVW(m.As32(), K2)
	} else {
		BZHIQ(n, ones, m)
		KMOVW(m.As32(), K1)
		span := GP64()
		LEAQ(Mem{Base: n, Index: n, Scale: 1, Disp: -1}, span) // 2n-1 source values
		BZHIQ(span, ones, m)
		KMOVW(m.As32(), K3)
		SHRQ(U8(16), m)
		KMOVW(m.As32(), K4)
	}
	dRow, sRow := GP64(), GP64()
	Load(Param("dstRow"), dRow)
	SHLQ(U8(2), dRow)
	Load(Param("srcRow"), sRow)
	SHLQ(U8(2), sRow)
	lead := GP64()
	Load(Param("lead"), lead)
	NEGQ(lead)
	Label(lbl("splane"))
	TESTQ(planes, planes)
	JE(LabelRef(lbl("sdone")))
	rows := Load(Param("rows"), GP64())
	d, s := GP64(), GP64()
	MOVQ(dst, d)
	MOVQ(src, s)
	TESTQ(rows, rows)
	JE(LabelRef(lbl("snextplane")))
	Label(lbl("srow"))
	VMOVUPS(Z30, K5, Mem{Base: d, Index: lead, Scale: 4})
	VMOVUPS(Z30, K6, Mem{Base: d, Index: n, Scale: 4})
	if stride == 1 {
		VMOVUPS_Z(Mem{Base: s}, K1, Z0)
		VMOVUPS_Z(Mem{Base: s, Disp: 64}, K2, Z1)
		VMOVUPS(Z0, K1, Mem{Base: d})
		VMOVUPS(Z1, K2, Mem{Base: d, Disp: 64})
	} else {
		VMOVUPS_Z(Mem{Base: s}, K3, Z0)
		VMOVUPS_Z(Mem{Base: s, Disp: 64}, K4, Z1)
		VPERMT2PS(Z1, idx, Z0)
		VMOVUPS(Z0, K1, Mem{Base: d})
	}
	ADDQ(dRow, d)
	ADDQ(sRow, s)
	DECQ(rows)
	JNE(LabelRef(lbl("srow")))
	Label(lbl("snextplane"))
	t := GP64()
	Load(Param("dstPlane"), t)
	LEAQ(Mem{Base: dst, Index: t, Scale: 4}, dst)
	Load(Param("srcPlane"), t)
	LEAQ(Mem{Base: src, Index: t, Scale: 4}, src)
	DECQ(planes)
	JMP(LabelRef(lbl("splane")))
	Label(lbl("sdone"))
	VZEROUPPER()
	RET()
}

// saxpy emits y[i] += a*x[i] for i < n with AVX2+FMA: 32 floats per
// iteration, then 8, then one at a time.
func saxpy() {
	TEXT("saxpyAVX2", NOSPLIT, "func(n int, a float32, x, y *float32)")
	Pragma("noescape")
	Doc("saxpyAVX2 computes y[i] += a*x[i] for i < n.")
	n := Load(Param("n"), GP64())
	x := Load(Param("x"), GP64())
	y := Load(Param("y"), GP64())
	VBROADCASTSS(resolve("a"), Y0)

	Label("axpy32")
	CMPQ(n, U8(32))
	JL(LabelRef("axpy8"))
	for i := 0; i < 4; i++ {
		VMOVUPS(Mem{Base: y, Disp: 32 * i}, ymm(1+i))
	}
	for i := 0; i < 4; i++ {
		VFMADD231PS(Mem{Base: x, Disp: 32 * i}, Y0, ymm(1+i))
	}
	for i := 0; i < 4; i++ {
		VMOVUPS(ymm(1+i), Mem{Base: y, Disp: 32 * i})
	}
	ADDQ(U8(128), x)
	ADDQ(U8(128), y)
	SUBQ(U8(32), n)
	JMP(LabelRef("axpy32"))

	Label("axpy8")
	CMPQ(n, U8(8))
	JL(LabelRef("axpy1"))
	VMOVUPS(Mem{Base: y}, Y1)
	VFMADD231PS(Mem{Base: x}, Y0, Y1)
	VMOVUPS(Y1, Mem{Base: y})
	ADDQ(U8(32), x)
	ADDQ(U8(32), y)
	SUBQ(U8(8), n)
	JMP(LabelRef("axpy8"))

	Label("axpy1")
	TESTQ(n, n)
	JE(LabelRef("axpydone"))
	VMOVSS(Mem{Base: y}, X1)
	VFMADD231SS(Mem{Base: x}, X0, X1)
	VMOVSS(X1, Mem{Base: y})
	ADDQ(U8(4), x)
	ADDQ(U8(4), y)
	DECQ(n)
	JMP(LabelRef("axpy1"))

	Label("axpydone")
	VZEROUPPER()
	RET()
}
