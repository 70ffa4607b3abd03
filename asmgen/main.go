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
	convKernel8x32AVX512()
	copyRowsAVX512(1)
	copyRowsAVX512(2)
	maxRowsAVX512()
	maxPool2x2AVX512()
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

// convKernel8x32AVX512 emits the direct-convolution tile: 8 output channels
// by two blocks of 16 outputs. Accumulators are Z0-Z15 (channel r, block b
// in Z(2r+b)); per k step the kernel reads the element offset offs[k],
// loads the two blocks' input rows at b0+offs[k] and b1+offs[k] (masked by
// K1 and K2) into Z16 and Z17, and broadcasts the 8 packed weights of k
// (Z18-Z21 in turn). One accumulator per output keeps the sum in k order,
// like the portable twin.
func convKernel8x32AVX512() {
	TEXT("convKernel8x32AVX512", NOSPLIT, "func(k int, a *float32, offs *int32, b0, b1, c0, c1 *float32, ldc int, bias, r0, r1 *float32, masks, flags uint64)")
	Pragma("noescape")
	Doc("convKernel8x32AVX512 computes an 8x32 direct-convolution tile;",
		"see convTileGeneric for the exact contract.")
	k := Load(Param("k"), GP64())
	a := Load(Param("a"), GP64())
	offs := Load(Param("offs"), GP64())
	b0 := Load(Param("b0"), GP64())
	b1 := Load(Param("b1"), GP64())
	masks := GP64()
	Load(Param("masks"), masks)
	KMOVW(masks.As32(), K1)
	SHRQ(U8(16), masks)
	KMOVW(masks.As32(), K2)

	acc := func(r, b int) VecPhysical { return zmm(2*r + b) }
	for i := 0; i < cmr*cblk; i++ {
		VPXORD(zmm(i), zmm(i), zmm(i))
	}
	off := GP64()
	step := func(i int) {
		MOVLQSX(Mem{Base: offs, Disp: 4 * i}, off)
		VMOVUPS_Z(Mem{Base: b0, Index: off, Scale: 4}, K1, Z16)
		VMOVUPS_Z(Mem{Base: b1, Index: off, Scale: 4}, K2, Z17)
		for r := 0; r < cmr; r++ {
			t := zmm(18 + r%4)
			VBROADCASTSS(Mem{Base: a, Disp: (i*cmr + r) * 4}, t)
			VFMADD231PS(Z16, t, acc(r, 0))
			VFMADD231PS(Z17, t, acc(r, 1))
		}
	}
	const un = 4
	Label("c_loop")
	CMPQ(k, U8(un))
	JL(LabelRef("c_tail"))
	for i := 0; i < un; i++ {
		step(i)
	}
	ADDQ(U32(un*cmr*4), a)
	ADDQ(U8(un*4), offs)
	SUBQ(U8(un), k)
	JMP(LabelRef("c_loop"))

	Label("c_tail")
	TESTQ(k, k)
	JE(LabelRef("c_epilogue"))
	step(0)
	ADDQ(U8(cmr*4), a)
	ADDQ(U8(4), offs)
	DECQ(k)
	JMP(LabelRef("c_tail"))

	Label("c_epilogue")
	flags := Load(Param("flags"), GP64())
	ldc := Load(Param("ldc"), GP64())
	SHLQ(U8(2), ldc) // bytes

	// t += bias[r]
	TESTQ(U32(convFlagBias), flags)
	JE(LabelRef("c_nobias"))
	bias := Load(Param("bias"), GP64())
	for r := 0; r < cmr; r++ {
		t := zmm(18 + r%4)
		VBROADCASTSS(Mem{Base: bias, Disp: 4 * r}, t)
		VADDPS(t, acc(r, 0), acc(r, 0))
		VADDPS(t, acc(r, 1), acc(r, 1))
	}
	Label("c_nobias")

	// t += residual (same layout as C)
	TESTQ(U32(convFlagResid), flags)
	JE(LabelRef("c_noresid"))
	rp0 := Load(Param("r0"), GP64())
	rp1 := Load(Param("r1"), GP64())
	for r := 0; r < cmr; r++ {
		VMOVUPS_Z(Mem{Base: rp0}, K1, Z16)
		VMOVUPS_Z(Mem{Base: rp1}, K2, Z17)
		VADDPS(Z16, acc(r, 0), acc(r, 0))
		VADDPS(Z17, acc(r, 1), acc(r, 1))
		if r < cmr-1 {
			ADDQ(ldc, rp0)
			ADDQ(ldc, rp1)
		}
	}
	Label("c_noresid")

	// t = max(t, 0), NaN kept (see sgemmKernel6x16).
	TESTQ(U32(convFlagRelu), flags)
	JE(LabelRef("c_store"))
	VPXORD(Z16, Z16, Z16)
	for i := 0; i < cmr*cblk; i++ {
		VMAXPS(zmm(i), Z16, zmm(i))
	}

	Label("c_store")
	cp0 := Load(Param("c0"), GP64())
	cp1 := Load(Param("c1"), GP64())
	for r := 0; r < cmr; r++ {
		VMOVUPS(acc(r, 0), K1, Mem{Base: cp0})
		VMOVUPS(acc(r, 1), K2, Mem{Base: cp1})
		if r < cmr-1 {
			ADDQ(ldc, cp0)
			ADDQ(ldc, cp1)
		}
	}
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
	TEXT(name, NOSPLIT, "func(dst *float32, dstRow, dstPlane int, src *float32, srcRow, srcPlane, n, rows, planes int)")
	Pragma("noescape")
	Doc(name+" copies planes x rows rows of n values, reading every",
		fmt.Sprintf("%d. source value; see copyRowsGeneric.", stride))
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
