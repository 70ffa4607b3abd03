// Command qgemm generates the amd64 assembly of the int8 matrix kernels
// (QGemm) of package github.com/compressml/compress/runtime/kernels with
// avo.
//
// Run it from the asmgen module directory:
//
//	go run ./qgemm
//
// or through go generate in runtime/kernels. Without flags it writes
// ../runtime/kernels/qgemm_amd64.s and ../runtime/kernels/qgemm_amd64_stubs.go.
//
// The packed layouts are documented in runtime/kernels/qgemm.go: a row
// operand is read 4 bytes (one k group) at a time per row, a panel operand
// holds, per k group, the 4 values of each of its 16 columns side by side
// (64 bytes). Every kernel here has a Go twin in qgemm_generic.go or
// qgemm_stage.go that gives bit-identical results.
package main

import (
	"flag"

	"github.com/mmcloughlin/avo/ir"

	. "github.com/mmcloughlin/avo/build"
	. "github.com/mmcloughlin/avo/operand"
	. "github.com/mmcloughlin/avo/reg"
)

// Output stage flags; keep in sync with runtime/kernels/qgemm_amd64.go.
const (
	flagHasY     = 1 << 0 // add x*y[j]
	flagScaleVec = 1 << 1 // scale per column (else broadcast)
	flagBiasVec  = 1 << 2 // bias per column (else broadcast)
)

func main() {
	flag.Parse()
	set := map[string]bool{}
	flag.Visit(func(f *flag.Flag) { set[f.Name] = true })
	defaults := map[string]string{
		"out":   "../runtime/kernels/qgemm_amd64.s",
		"stubs": "../runtime/kernels/qgemm_amd64_stubs.go",
		"pkg":   "kernels",
	}
	for name, v := range defaults {
		if !set[name] {
			if err := flag.Set(name, v); err != nil {
				panic(err)
			}
		}
	}

	ConstraintExpr("amd64,!purego")
	tile("qTileU8S8AVX2", false)
	tile("qTileS8U8AVX2", true)
	tileWide("qTileWideU8S8AVX2", false)
	tileWide("qTileWideS8U8AVX2", true)
	gemv()
	gemvWide()
	tileVNNI("qTileU8S8VNNI", false)
	tileVNNI("qTileS8U8VNNI", true)
	tileVNNIn("qTile4U8S8VNNI", false, 4, false)
	tileVNNIn("qTile4S8U8VNNI", true, 4, false)
	gemvVNNI()
	sumU8()
	interleave()
	axpyI32()
	widenU8()
	for _, w := range []int{8, 16} {
		stageI32(w)
		stageF32(w)
		stageQ(w)
	}
	Generate()
}

func ymm(i int) VecPhysical {
	return []VecPhysical{Y0, Y1, Y2, Y3, Y4, Y5, Y6, Y7, Y8, Y9, Y10, Y11, Y12, Y13, Y14, Y15}[i]
}

func xmm(i int) VecPhysical {
	return []VecPhysical{X0, X1, X2, X3, X4, X5, X6, X7, X8, X9, X10, X11, X12, X13, X14, X15}[i]
}

func resolve(name string) Mem {
	b, err := Param(name).Resolve()
	if err != nil {
		panic(err)
	}
	return b.Addr
}

// onesW sets every int16 of y to 1.
func onesW(y VecPhysical) {
	VPCMPEQW(y, y, y)
	VPSRLW(U8(15), y, y)
}

// broadcastConst sets every dword of y to bits.
func broadcastConst(bits uint32, y, x VecPhysical) {
	t := GP32()
	MOVL(U32(bits), t)
	VMOVD(t, x)
	VPBROADCASTD(x, y)
}

// broadcastParam sets every dword of y to the 32-bit parameter name,
// loaded through a general register (go vet's asmdecl does not know the
// operand size of VPBROADCASTD).
func broadcastParam(name string, y, x VecPhysical) {
	t := Load(Param(name), GP32())
	VMOVD(t, x)
	VPBROADCASTD(x, y)
}

// rowAddr addresses row r (0..3) of a row operand at base a with stride
// lda (lda3 = 3*lda), displacement disp.
func rowAddr(a, lda, lda3 Register, r, disp int) Mem {
	switch r {
	case 0:
		return Mem{Base: a, Disp: disp}
	case 1:
		return Mem{Base: a, Index: lda, Scale: 1, Disp: disp}
	case 2:
		return Mem{Base: a, Index: lda, Scale: 2, Disp: disp}
	}
	return Mem{Base: a, Index: lda3, Scale: 1, Disp: disp}
}

// tileSig is the signature of the tile kernels.
const tileSig = "func(kg, mt int, a *byte, lda int, b *byte, c *int32, ldc int, acc uint64)"

// tileFrame emits the loop over mt tiles of 4 rows around body, which
// computes the 4x16 tile of the rows at a (stride lda bytes) into c (stride
// ldc bytes) and must leave a, lda, c and ldc unchanged.
func tileFrame(name string, body func(a, lda, c, ldc Register)) {
	mt := Load(Param("mt"), GP64())
	a := Load(Param("a"), GP64())
	lda := Load(Param("lda"), GP64())
	c := Load(Param("c"), GP64())
	ldc := Load(Param("ldc"), GP64())
	SHLQ(U8(2), ldc)
	Label(name + "_tile")
	TESTQ(mt, mt)
	JE(LabelRef(name + "_end"))
	body(a, lda, c, ldc)
	LEAQ(Mem{Base: a, Index: lda, Scale: 4}, a)
	LEAQ(Mem{Base: c, Index: ldc, Scale: 4}, c)
	DECQ(mt)
	JMP(LabelRef(name + "_tile"))
	Label(name + "_end")
	VZEROUPPER()
	RET()
}

// kLoop emits the loop over kg k groups: unroll steps per iteration, then
// one at a time; a advances 4 bytes and b 64 bytes per k group.
func kLoop(name string, kg, a, b Register, unroll int, step func(i int)) {
	Label(name + "_loop")
	CMPQ(kg, U8(unroll))
	JL(LabelRef(name + "_ktail"))
	for i := 0; i < unroll; i++ {
		step(i)
	}
	ADDQ(U8(4*unroll), a)
	ADDQ(U32(64*unroll), b)
	SUBQ(U8(unroll), kg)
	JMP(LabelRef(name + "_loop"))
	Label(name + "_ktail")
	TESTQ(kg, kg)
	JE(LabelRef(name + "_kdone"))
	step(0)
	ADDQ(U8(4), a)
	ADDQ(U8(64), b)
	DECQ(kg)
	JMP(LabelRef(name + "_ktail"))
	Label(name + "_kdone")
}

// storeTile stores (or adds, when the acc parameter is non-zero) rows of
// two YMM accumulators each into c, rows r0.. at stride ldc bytes.
func storeTile(regs [][2]VecPhysical, c, ldc Register, r0 int, label string) {
	flag := Load(Param("acc"), GP64())
	cp := GP64()
	MOVQ(c, cp)
	for r := 0; r < r0; r++ {
		ADDQ(ldc, cp)
	}
	TESTQ(flag, flag)
	JE(LabelRef(label + "_store"))
	p := GP64()
	MOVQ(cp, p)
	for r, rr := range regs {
		VPADDD(Mem{Base: p}, rr[0], rr[0])
		VPADDD(Mem{Base: p, Disp: 32}, rr[1], rr[1])
		if r < len(regs)-1 {
			ADDQ(ldc, p)
		}
	}
	Label(label + "_store")
	for r, rr := range regs {
		VMOVDQU(rr[0], Mem{Base: cp})
		VMOVDQU(rr[1], Mem{Base: cp, Disp: 32})
		if r < len(regs)-1 {
			ADDQ(ldc, cp)
		}
	}
}

// tile emits the 4x16 vpmaddubsw micro-kernel. Without signedA the rows
// are uint8 activations (broadcast, the unsigned operand of vpmaddubsw) and
// the panel int8 weights; with signedA the rows are int8 weights and the
// panel uint8 activations, so the operands of vpmaddubsw swap. Accumulators
// Y0-Y7 (row r in Y(2r), Y(2r+1)), panel Y8-Y9, broadcast Y10, products
// Y11-Y12, ones Y15.
func tile(name string, signedA bool) {
	TEXT(name, NOSPLIT, tileSig)
	Pragma("noescape")
	Doc(name+" computes mt 4x16 int32 tiles with vpmaddubsw; see qKernels.tile",
		"(qKernels.tileA when the rows are int8). acc != 0 adds to c.")
	tileFrame(name, func(a0, lda, c, ldc Register) {
		kg := Load(Param("kg"), GP64())
		b := Load(Param("b"), GP64())
		a := GP64()
		MOVQ(a0, a)
		lda3 := GP64()
		LEAQ(Mem{Base: lda, Index: lda, Scale: 2}, lda3)
		onesW(Y15)
		for i := 0; i < 8; i++ {
			VPXOR(ymm(i), ymm(i), ymm(i))
		}
		step := func(i int) {
			VMOVDQU(Mem{Base: b, Disp: 64 * i}, Y8)
			VMOVDQU(Mem{Base: b, Disp: 64*i + 32}, Y9)
			for r := 0; r < 4; r++ {
				VPBROADCASTD(rowAddr(a, lda, lda3, r, 4*i), Y10)
				if signedA {
					VPMADDUBSW(Y10, Y8, Y11)
					VPMADDUBSW(Y10, Y9, Y12)
				} else {
					VPMADDUBSW(Y8, Y10, Y11)
					VPMADDUBSW(Y9, Y10, Y12)
				}
				VPMADDWD(Y15, Y11, Y11)
				VPMADDWD(Y15, Y12, Y12)
				VPADDD(Y11, ymm(2*r), ymm(2*r))
				VPADDD(Y12, ymm(2*r+1), ymm(2*r+1))
			}
		}
		kLoop(name, kg, a, b, 4, step)
		storeTile([][2]VecPhysical{{Y0, Y1}, {Y2, Y3}, {Y4, Y5}, {Y6, Y7}}, c, ldc, 0, name)
	})
}

// tileWide emits the exact 4x16 kernel for full-range int8: both operands
// are widened to int16 (vpmovsxbw / vpmovzxbw) and multiplied with
// vpmaddwd, two rows at a time. A widened k group of 4 columns fills one
// YMM: dword 2c+h of it holds the pair h (k 0-1 or 2-3) of column c, and
// vphaddd + vpermq fold the pairs at the end. Accumulators Y0-Y7 (row r,
// columns 4q..4q+3 in Y(4r+q)), panel Y8-Y11, broadcast Y12, product Y13.
func tileWide(name string, signedA bool) {
	TEXT(name, NOSPLIT, tileSig)
	Pragma("noescape")
	Doc(name+" computes mt 4x16 int32 tiles exactly for any int8 values by",
		"widening to int16; see qKernels.tileWide. acc != 0 adds to c.")
	tileFrame(name, func(a0, lda, c, ldc Register) {
		for pass := 0; pass < 2; pass++ {
			lbl := name + "_p" + string(rune('0'+pass))
			kg := Load(Param("kg"), GP64())
			b := Load(Param("b"), GP64())
			a := GP64()
			if pass == 0 {
				MOVQ(a0, a)
			} else {
				LEAQ(Mem{Base: a0, Index: lda, Scale: 2}, a)
			}
			for i := 0; i < 8; i++ {
				VPXOR(ymm(i), ymm(i), ymm(i))
			}
			Label(lbl + "_loop")
			TESTQ(kg, kg)
			JE(LabelRef(lbl + "_done"))
			for q := 0; q < 4; q++ {
				if signedA {
					VPMOVZXBW(Mem{Base: b, Disp: 16 * q}, ymm(8+q))
				} else {
					VPMOVSXBW(Mem{Base: b, Disp: 16 * q}, ymm(8+q))
				}
			}
			for r := 0; r < 2; r++ {
				if r == 0 {
					VPBROADCASTD(Mem{Base: a}, Y12)
				} else {
					VPBROADCASTD(Mem{Base: a, Index: lda, Scale: 1}, Y12)
				}
				if signedA {
					VPMOVSXBW(X12, Y12)
				} else {
					VPMOVZXBW(X12, Y12)
				}
				for q := 0; q < 4; q++ {
					VPMADDWD(ymm(8+q), Y12, Y13)
					VPADDD(Y13, ymm(4*r+q), ymm(4*r+q))
				}
			}
			ADDQ(U8(4), a)
			ADDQ(U8(64), b)
			DECQ(kg)
			JMP(LabelRef(lbl + "_loop"))
			Label(lbl + "_done")
			for r := 0; r < 2; r++ {
				for h := 0; h < 2; h++ {
					lo, hi := ymm(4*r+2*h), ymm(4*r+2*h+1)
					VPHADDD(hi, lo, lo)
					VPERMQ(U8(0xD8), lo, lo)
				}
			}
			storeTile([][2]VecPhysical{{Y0, Y2}, {Y4, Y6}}, c, ldc, 2*pass, lbl)
		}
	})
}

// gemv emits the uint8 x int8 GEMV kernel: one row against np panels, two
// k groups per iteration into two accumulator pairs.
func gemv() {
	name := "qGemvU8S8AVX2"
	TEXT(name, NOSPLIT, "func(kg int, a *byte, b *byte, pstride int, np int, c *int32)")
	Pragma("noescape")
	Doc(name+" computes 16 int32 sums per panel for np panels with vpmaddubsw;",
		"see qKernels.gemv. Four panels are read at once (four memory streams),",
		"then the rest one at a time.")
	b := Load(Param("b"), GP64())
	c := Load(Param("c"), GP64())
	np := Load(Param("np"), GP64())
	pstride := Load(Param("pstride"), GP64())
	ps3 := GP64()
	LEAQ(Mem{Base: pstride, Index: pstride, Scale: 2}, ps3)
	onesW(Y15)

	// Four panels at once: accumulators Y(2h), Y(2h+1) for panel h.
	Label(name + "_quad")
	CMPQ(np, U8(4))
	JL(LabelRef(name + "_panel"))
	{
		kg := Load(Param("kg"), GP64())
		a := Load(Param("a"), GP64())
		bp := GP64()
		MOVQ(b, bp)
		for i := 0; i < 8; i++ {
			VPXOR(ymm(i), ymm(i), ymm(i))
		}
		Label(name + "_qloop")
		TESTQ(kg, kg)
		JE(LabelRef(name + "_qdone"))
		VPBROADCASTD(Mem{Base: a}, Y14)
		for h := 0; h < 4; h++ {
			m := []Mem{{Base: bp}, {Base: bp, Index: pstride, Scale: 1}, {Base: bp, Index: pstride, Scale: 2}, {Base: bp, Index: ps3, Scale: 1}}[h]
			m2 := m
			m2.Disp += 32
			t0, t1 := ymm(8+(2*h)%6), ymm(9+(2*h)%6)
			VPMADDUBSW(m, Y14, t0)
			VPMADDUBSW(m2, Y14, t1)
			VPMADDWD(Y15, t0, t0)
			VPMADDWD(Y15, t1, t1)
			VPADDD(t0, ymm(2*h), ymm(2*h))
			VPADDD(t1, ymm(2*h+1), ymm(2*h+1))
		}
		ADDQ(U8(4), a)
		ADDQ(U8(64), bp)
		DECQ(kg)
		JMP(LabelRef(name + "_qloop"))
		Label(name + "_qdone")
		for i := 0; i < 8; i++ {
			VMOVDQU(ymm(i), Mem{Base: c, Disp: 32 * i})
		}
		ADDQ(U32(256), c)
		LEAQ(Mem{Base: b, Index: pstride, Scale: 4}, b)
		SUBQ(U8(4), np)
		JMP(LabelRef(name + "_quad"))
	}

	Label(name + "_panel")
	TESTQ(np, np)
	JE(LabelRef(name + "_end"))
	kg := Load(Param("kg"), GP64())
	a := Load(Param("a"), GP64())
	bp := GP64()
	MOVQ(b, bp)
	for i := 0; i < 4; i++ {
		VPXOR(ymm(i), ymm(i), ymm(i))
	}
	step := func(i int) {
		t, p0, p1 := ymm(4+3*i), ymm(5+3*i), ymm(6+3*i)
		VPBROADCASTD(Mem{Base: a, Disp: 4 * i}, t)
		VPMADDUBSW(Mem{Base: bp, Disp: 64 * i}, t, p0)
		VPMADDUBSW(Mem{Base: bp, Disp: 64*i + 32}, t, p1)
		VPMADDWD(Y15, p0, p0)
		VPMADDWD(Y15, p1, p1)
		VPADDD(p0, ymm(2*i), ymm(2*i))
		VPADDD(p1, ymm(2*i+1), ymm(2*i+1))
	}
	Label(name + "_loop")
	CMPQ(kg, U8(2))
	JL(LabelRef(name + "_tail"))
	step(0)
	step(1)
	ADDQ(U8(8), a)
	ADDQ(U32(128), bp)
	SUBQ(U8(2), kg)
	JMP(LabelRef(name + "_loop"))
	Label(name + "_tail")
	TESTQ(kg, kg)
	JE(LabelRef(name + "_sum"))
	step(0)
	Label(name + "_sum")
	VPADDD(Y2, Y0, Y0)
	VPADDD(Y3, Y1, Y1)
	VMOVDQU(Y0, Mem{Base: c})
	VMOVDQU(Y1, Mem{Base: c, Disp: 32})
	ADDQ(U8(64), c)
	ADDQ(pstride, b)
	DECQ(np)
	JMP(LabelRef(name + "_panel"))
	Label(name + "_end")
	VZEROUPPER()
	RET()
}

// gemvWide emits the exact widening GEMV kernel (uint8 row, any int8).
func gemvWide() {
	name := "qGemvWideU8S8AVX2"
	TEXT(name, NOSPLIT, "func(kg int, a *byte, b *byte, pstride int, np int, c *int32)")
	Pragma("noescape")
	Doc(name+" computes 16 int32 sums per panel for np panels exactly for any",
		"int8 values by widening to int16; see qKernels.gemvWide.")
	b := Load(Param("b"), GP64())
	c := Load(Param("c"), GP64())
	np := Load(Param("np"), GP64())
	pstride := Load(Param("pstride"), GP64())
	Label(name + "_panel")
	TESTQ(np, np)
	JE(LabelRef(name + "_end"))
	kg := Load(Param("kg"), GP64())
	a := Load(Param("a"), GP64())
	bp := GP64()
	MOVQ(b, bp)
	for i := 0; i < 4; i++ {
		VPXOR(ymm(i), ymm(i), ymm(i))
	}
	Label(name + "_loop")
	TESTQ(kg, kg)
	JE(LabelRef(name + "_sum"))
	VPBROADCASTD(Mem{Base: a}, Y4)
	VPMOVZXBW(X4, Y4)
	for q := 0; q < 4; q++ {
		VPMOVSXBW(Mem{Base: bp, Disp: 16 * q}, ymm(5+q))
	}
	for q := 0; q < 4; q++ {
		VPMADDWD(ymm(5+q), Y4, ymm(5+q))
		VPADDD(ymm(5+q), ymm(q), ymm(q))
	}
	ADDQ(U8(4), a)
	ADDQ(U8(64), bp)
	DECQ(kg)
	JMP(LabelRef(name + "_loop"))
	Label(name + "_sum")
	VPHADDD(Y1, Y0, Y0)
	VPERMQ(U8(0xD8), Y0, Y0)
	VPHADDD(Y3, Y2, Y2)
	VPERMQ(U8(0xD8), Y2, Y2)
	VMOVDQU(Y0, Mem{Base: c})
	VMOVDQU(Y2, Mem{Base: c, Disp: 32})
	ADDQ(U8(64), c)
	ADDQ(pstride, b)
	DECQ(np)
	JMP(LabelRef(name + "_panel"))
	Label(name + "_end")
	VZEROUPPER()
	RET()
}

// sumU8 emits the byte sum of n (a multiple of 32) bytes with vpsadbw.
func sumU8() {
	name := "qSumU8AVX2"
	TEXT(name, NOSPLIT, "func(n int, x *byte) int32")
	Pragma("noescape")
	Doc(name + " returns the sum of n bytes, n a multiple of 32.")
	n := Load(Param("n"), GP64())
	x := Load(Param("x"), GP64())
	VPXOR(Y0, Y0, Y0)
	VPXOR(Y1, Y1, Y1)
	VPXOR(Y2, Y2, Y2)
	Label(name + "_loop64")
	CMPQ(n, U8(64))
	JL(LabelRef(name + "_loop32"))
	VPSADBW(Mem{Base: x}, Y0, Y3)
	VPSADBW(Mem{Base: x, Disp: 32}, Y0, Y4)
	VPADDQ(Y3, Y1, Y1)
	VPADDQ(Y4, Y2, Y2)
	ADDQ(U8(64), x)
	SUBQ(U8(64), n)
	JMP(LabelRef(name + "_loop64"))
	Label(name + "_loop32")
	TESTQ(n, n)
	JE(LabelRef(name + "_done"))
	VPSADBW(Mem{Base: x}, Y0, Y3)
	VPADDQ(Y3, Y1, Y1)
	Label(name + "_done")
	VPADDQ(Y2, Y1, Y1)
	VEXTRACTI128(U8(1), Y1, X2)
	VPADDQ(X2, X1, X1)
	VPSHUFD(U8(0x4E), X1, X2)
	VPADDQ(X2, X1, X1)
	r := GP64()
	VMOVQ(X1, r)
	Store(r.As32(), ReturnIndex(0))
	VZEROUPPER()
	RET()
}

// interleave emits the packing of one k group (4 uint8 rows) into np
// panels with column sums: byte unpacks build the 4-byte column groups,
// vpmaddubsw with ones + vpmaddwd with ones sum them.
func interleave() {
	name := "qInterleaveAVX2"
	TEXT(name, NOSPLIT, "func(np int, r0, r1, r2, r3, dst *byte, dstStride int, colsum *int32)")
	Pragma("noescape")
	Doc(name+" writes the k group of rows r0..r3 into np panels and adds",
		"the column sums; see qKernels.interleave.")
	np := Load(Param("np"), GP64())
	r0 := Load(Param("r0"), GP64())
	r1 := Load(Param("r1"), GP64())
	r2 := Load(Param("r2"), GP64())
	r3 := Load(Param("r3"), GP64())
	dst := Load(Param("dst"), GP64())
	stride := Load(Param("dstStride"), GP64())
	cs := Load(Param("colsum"), GP64())
	VPCMPEQB(Y14, Y14, Y14)
	VPABSB(Y14, Y14) // int8 ones
	onesW(Y15)

	// Two panels (32 columns) per iteration: the unpacks work within 128-bit
	// lanes, so lane 0 holds panel p and lane 1 panel p+1; vperm2i128
	// gathers each panel's 64 bytes into two registers.
	Label(name + "_pair")
	CMPQ(np, U8(2))
	JL(LabelRef(name + "_one"))
	VMOVDQU(Mem{Base: r0}, Y0)
	VMOVDQU(Mem{Base: r1}, Y1)
	VMOVDQU(Mem{Base: r2}, Y2)
	VMOVDQU(Mem{Base: r3}, Y3)
	VPUNPCKLBW(Y1, Y0, Y4)
	VPUNPCKHBW(Y1, Y0, Y5)
	VPUNPCKLBW(Y3, Y2, Y6)
	VPUNPCKHBW(Y3, Y2, Y7)
	VPUNPCKLWD(Y6, Y4, Y8)             // columns 0-3 | 16-19
	VPUNPCKHWD(Y6, Y4, Y9)             // 4-7 | 20-23
	VPUNPCKLWD(Y7, Y5, Y10)            // 8-11 | 24-27
	VPUNPCKHWD(Y7, Y5, Y11)            // 12-15 | 28-31
	VPERM2I128(U8(0x20), Y9, Y8, Y0)   // panel p, columns 0-7
	VPERM2I128(U8(0x20), Y11, Y10, Y1) // panel p, columns 8-15
	VPERM2I128(U8(0x31), Y9, Y8, Y2)   // panel p+1, columns 0-7
	VPERM2I128(U8(0x31), Y11, Y10, Y3) // panel p+1, columns 8-15
	VMOVDQU(Y0, Mem{Base: dst})
	VMOVDQU(Y1, Mem{Base: dst, Disp: 32})
	VMOVDQU(Y2, Mem{Base: dst, Index: stride, Scale: 1})
	VMOVDQU(Y3, Mem{Base: dst, Index: stride, Scale: 1, Disp: 32})
	for i := 0; i < 4; i++ {
		v := ymm(i)
		VPMADDUBSW(Y14, v, v)
		VPMADDWD(Y15, v, v)
		VPADDD(Mem{Base: cs, Disp: 32 * i}, v, v)
		VMOVDQU(v, Mem{Base: cs, Disp: 32 * i})
	}
	ADDQ(U8(32), r0)
	ADDQ(U8(32), r1)
	ADDQ(U8(32), r2)
	ADDQ(U8(32), r3)
	LEAQ(Mem{Base: dst, Index: stride, Scale: 2}, dst)
	ADDQ(U32(128), cs)
	SUBQ(U8(2), np)
	JMP(LabelRef(name + "_pair"))

	Label(name + "_one")
	TESTQ(np, np)
	JE(LabelRef(name + "_end"))
	VMOVDQU(Mem{Base: r0}, X0)
	VMOVDQU(Mem{Base: r1}, X1)
	VMOVDQU(Mem{Base: r2}, X2)
	VMOVDQU(Mem{Base: r3}, X3)
	VPUNPCKLBW(X1, X0, X4)
	VPUNPCKHBW(X1, X0, X5)
	VPUNPCKLBW(X3, X2, X6)
	VPUNPCKHBW(X3, X2, X7)
	VPUNPCKLWD(X6, X4, X8)
	VPUNPCKHWD(X6, X4, X9)
	VPUNPCKLWD(X7, X5, X10)
	VPUNPCKHWD(X7, X5, X11)
	for i := 0; i < 4; i++ {
		v := xmm(8 + i)
		VMOVDQU(v, Mem{Base: dst, Disp: 16 * i})
		VPMADDUBSW(X14, v, X12)
		VPMADDWD(X15, X12, X12)
		VPADDD(Mem{Base: cs, Disp: 16 * i}, X12, X12)
		VMOVDQU(X12, Mem{Base: cs, Disp: 16 * i})
	}
	Label(name + "_end")
	VZEROUPPER()
	RET()
}

// axpyI32 emits y[i] += w*x[i] over int32 for n (a multiple of 8)
// elements, 32 per iteration when it can.
func axpyI32() {
	name := "qAxpyI32AVX2"
	TEXT(name, NOSPLIT, "func(n int, w int32, x, y *int32)")
	Pragma("noescape")
	Doc(name + " computes y[i] += w*x[i] (wrapping int32) for n, a multiple of 8, elements.")
	n := Load(Param("n"), GP64())
	x := Load(Param("x"), GP64())
	y := Load(Param("y"), GP64())
	broadcastParam("w", Y0, X0)
	Label(name + "_loop32")
	CMPQ(n, U8(32))
	JL(LabelRef(name + "_loop8"))
	for i := 0; i < 4; i++ {
		VPMULLD(Mem{Base: x, Disp: 32 * i}, Y0, ymm(1+i))
	}
	for i := 0; i < 4; i++ {
		VPADDD(Mem{Base: y, Disp: 32 * i}, ymm(1+i), ymm(1+i))
		VMOVDQU(ymm(1+i), Mem{Base: y, Disp: 32 * i})
	}
	ADDQ(U8(128), x)
	ADDQ(U8(128), y)
	SUBQ(U8(32), n)
	JMP(LabelRef(name + "_loop32"))
	Label(name + "_loop8")
	TESTQ(n, n)
	JE(LabelRef(name + "_end"))
	VPMULLD(Mem{Base: x}, Y0, Y1)
	VPADDD(Mem{Base: y}, Y1, Y1)
	VMOVDQU(Y1, Mem{Base: y})
	ADDQ(U8(32), x)
	ADDQ(U8(32), y)
	SUBQ(U8(8), n)
	JMP(LabelRef(name + "_loop8"))
	Label(name + "_end")
	VZEROUPPER()
	RET()
}

// widenU8 emits y[i] = int32(x[i]) - zx for n (a multiple of 8) elements.
func widenU8() {
	name := "qWidenU8AVX2"
	TEXT(name, NOSPLIT, "func(n int, x *byte, zx int32, y *int32)")
	Pragma("noescape")
	Doc(name + " writes int32(x[i]) - zx to y[i] for n, a multiple of 8, elements.")
	n := Load(Param("n"), GP64())
	x := Load(Param("x"), GP64())
	y := Load(Param("y"), GP64())
	broadcastParam("zx", Y0, X0)
	Label(name + "_loop")
	TESTQ(n, n)
	JE(LabelRef(name + "_end"))
	VPMOVZXBD(Mem{Base: x}, Y1)
	VPSUBD(Y0, Y1, Y1)
	VMOVDQU(Y1, Mem{Base: y})
	ADDQ(U8(8), x)
	ADDQ(U8(32), y)
	SUBQ(U8(8), n)
	JMP(LabelRef(name + "_loop"))
	Label(name + "_end")
	VZEROUPPER()
	RET()
}

// stage is an output stage function under construction: the registers of
// its column loop and the flags that select specialised loops. The stage
// functions process rows x n outputs: row i reads acc[i*ldacc:], r[i],
// x[i], the scale (and bias) at scale+i*scaleStep bytes (unless per
// column), and writes out[i*ldo:].
type stage struct {
	name              string
	n, acc, c, y, out Register
	row               Register  // current row index
	vary              []int     // flags that select loop variants
	outBytes          int       // output bytes per element
	adv               func(int) // advances stage-specific column pointers
	w                 int       // columns per iteration: 8 (AVX2) or 16 (AVX-512)
}

// vec returns vector register i of the stage's width (Yi or Zi).
func (s *stage) vec(i int) VecPhysical {
	if s.w == 16 {
		return zmm(i)
	}
	return ymm(i)
}

// store writes the whole vector v to m.
func (s *stage) store(v VecPhysical, m Mem) {
	if s.w == 16 {
		VMOVDQU32(v, m)
	} else {
		VMOVDQU(v, m)
	}
}

// stageName returns the name of the stage kernel of width w.
func stageName(base string, w int) string {
	if w == 16 {
		return base + "AVX512"
	}
	return base + "AVX2"
}

// corrected computes v = acc + r + c (+ x*y) for w columns into v; vector
// 14 holds r and 13 x.
func (s *stage) corrected(hasY bool, v VecPhysical) {
	if s.w == 16 {
		VMOVDQU32(Mem{Base: s.acc}, v)
	} else {
		VMOVDQU(Mem{Base: s.acc}, v)
	}
	VPADDD(Mem{Base: s.c}, v, v)
	VPADDD(s.vec(14), v, v)
	if hasY {
		VPMULLD(Mem{Base: s.y}, s.vec(13), s.vec(12))
		VPADDD(s.vec(12), v, v)
	}
}

// rowPtr returns param + row*Load(stride)*size.
func (s *stage) rowPtr(param, stride string, size int) Register {
	p := Load(Param(param), GP64())
	t := Load(Param(stride), GP64())
	IMULQ(s.row, t)
	if size > 1 {
		SHLQ(U8(map[int]uint8{2: 1, 4: 2}[size]), t)
	}
	ADDQ(t, p)
	return p
}

// rows emits the loop over rows around the column loops: setup emits the
// per-row broadcasts (after r and x), body the work on 8 columns.
func (s *stage) rows(setup func(), body func(f int)) {
	name := s.name
	rows := Load(Param("rows"), GP64())
	s.row = GP64()
	XORQ(s.row, s.row)
	Label(name + "_row")
	CMPQ(s.row, rows)
	JGE(LabelRef(name + "_end"))
	rp := Load(Param("r"), GP64())
	VPBROADCASTD(Mem{Base: rp, Index: s.row, Scale: 4}, s.vec(14))
	xp := Load(Param("x"), GP64())
	VPBROADCASTD(Mem{Base: xp, Index: s.row, Scale: 4}, s.vec(13))
	setup()
	s.n = Load(Param("n"), GP64())
	s.acc = s.rowPtr("acc", "ldacc", 4)
	s.out = s.rowPtr("out", "ldo", s.outBytes)
	s.c = Load(Param("c"), GP64())
	s.y = Load(Param("y"), GP64())
	flags := Load(Param("flags"), GP64())
	s.loops(flags, body)
	Label(name + "_next")
	INCQ(s.row)
	JMP(LabelRef(name + "_row"))
	Label(name + "_end")
	VZEROUPPER()
	RET()
}

// loops emits the column loop variants: for each combination of the flag
// bits in s.vary it tests the flags and runs a loop whose body is emitted
// with those bits set, then jumps to the next row.
func (s *stage) loops(flags Register, body func(f int)) {
	name := s.name
	combos := 1 << len(s.vary)
	all := 0
	for _, bit := range s.vary {
		all |= bit
	}
	mask := GP64()
	MOVQ(flags, mask)
	ANDQ(U32(all), mask)
	for cmb := 0; cmb < combos; cmb++ {
		f := 0
		for i, bit := range s.vary {
			if cmb&(1<<i) != 0 {
				f |= bit
			}
		}
		lbl := name + "_v" + string(rune('a'+cmb))
		next := name + "_v" + string(rune('a'+cmb+1))
		if cmb < combos-1 {
			CMPQ(mask, U32(f))
			JNE(LabelRef(next))
		}
		Label(lbl + "_loop")
		TESTQ(s.n, s.n)
		JE(LabelRef(name + "_next"))
		body(f)
		ADDQ(U8(4*s.w), s.acc)
		ADDQ(U8(4*s.w), s.c)
		if f&flagHasY != 0 {
			ADDQ(U8(4*s.w), s.y)
		}
		ADDQ(U8(s.w*s.outBytes), s.out)
		if s.adv != nil {
			s.adv(f)
		}
		SUBQ(U8(s.w), s.n)
		JMP(LabelRef(lbl + "_loop"))
		if cmb < combos-1 {
			Label(next)
		}
	}
}

const stageCommon = "rows, n int, acc *int32, ldacc int, c, y, r, x *int32, "

func newStage(name, sig string, w, outBytes int, vary ...int) *stage {
	TEXT(name, NOSPLIT, "func("+stageCommon+sig+")")
	Pragma("noescape")
	return &stage{name: name, vary: vary, outBytes: outBytes, w: w}
}

// isa names the instruction set of a stage of width w for the docs.
func isa(w int) string {
	if w == 16 {
		return "AVX-512 (16 columns per step)"
	}
	return "AVX2 (8 columns per step)"
}

// stageI32 emits the int32 output stage of width w.
func stageI32(w int) {
	s := newStage(stageName("qStageI32", w), "lo int32, flags uint64, out *int32, ldo int", w, 4, flagHasY)
	Doc(s.name+" writes max(acc+r+c (+x*y), lo) for rows x n (n a multiple of "+itoa(w)+")",
		"outputs with "+isa(w)+"; see qStageI32Generic and the stage type of the generator.")
	broadcastParam("lo", s.vec(11), X11)
	s.rows(func() {}, func(f int) {
		s.corrected(f&flagHasY != 0, s.vec(0))
		VPMAXSD(s.vec(11), s.vec(0), s.vec(0))
		s.store(s.vec(0), Mem{Base: s.out})
	})
}

// scaled converts vector 0 to float32 and multiplies it by the scale (per
// column at sp, or broadcast in vector 10).
func (s *stage) scaled(f int, sp Register) {
	v := s.vec(0)
	VCVTDQ2PS(v, v)
	if f&flagScaleVec != 0 {
		VMULPS(Mem{Base: sp}, v, v)
	} else {
		VMULPS(s.vec(10), v, v)
	}
}

// stageF32 emits the dequantising output stage of width w.
func stageF32(w int) {
	s := newStage(stageName("qStageF32", w),
		"scale *float32, scaleStep int, bias *float32, biasStep int, lo float32, flags uint64, out *float32, ldo int",
		w, 4, flagHasY, flagScaleVec, flagBiasVec)
	Doc(s.name+" dequantises rows x n (n a multiple of "+itoa(w)+") outputs with "+isa(w)+":",
		"max(float32(v)*scale + bias, lo) with a per-column or per-row/broadcast scale",
		"and bias; see qStageF32Generic. A broadcast bias of -0 leaves values unchanged.")
	VBROADCASTSS(resolve("lo"), s.vec(11))
	var sp, bp Register
	v := s.vec(0)
	s.rows(func() {
		sp = s.rowPtr("scale", "scaleStep", 1)
		bp = s.rowPtr("bias", "biasStep", 1)
		VBROADCASTSS(Mem{Base: sp}, s.vec(10))
		VBROADCASTSS(Mem{Base: bp}, s.vec(9))
	}, func(f int) {
		s.adv = func(f int) {
			if f&flagScaleVec != 0 {
				ADDQ(U8(4*w), sp)
			}
			if f&flagBiasVec != 0 {
				ADDQ(U8(4*w), bp)
			}
		}
		s.corrected(f&flagHasY != 0, v)
		s.scaled(f, sp)
		if f&flagBiasVec != 0 {
			VADDPS(Mem{Base: bp}, v, v)
		} else {
			VADDPS(s.vec(9), v, v)
		}
		// Intel max(lo, f) returns f unless lo > f, like Go's
		// "if f < 0 { f = 0 }" with lo = 0 (-Inf without ReLU).
		VMAXPS(v, s.vec(11), v)
		s.store(v, Mem{Base: s.out})
	})
}

// stageQ emits the requantising output stage to bytes of width w.
func stageQ(w int) {
	s := newStage(stageName("qStageQ", w),
		"scale *float32, scaleStep int, zo, qmin, qmax int32, flags uint64, out *byte, ldo int",
		w, 1, flagHasY, flagScaleVec)
	Doc(s.name+" requantises rows x n (n a multiple of "+itoa(w)+") outputs to bytes with "+isa(w)+":",
		"clamp(roundHalfEven(clamp(float32(v)*scale, ±65536)) + zo, qmin, qmax);",
		"see qStageQGeneric.")
	broadcastParam("zo", s.vec(9), X9)
	broadcastParam("qmin", s.vec(8), X8)
	broadcastParam("qmax", s.vec(7), X7)
	broadcastConst(0xC7800000, s.vec(6), X6) // -65536.0
	broadcastConst(0x47800000, s.vec(5), X5) // 65536.0
	if w == 8 {
		VPCMPEQW(X4, X4, X4)
		VPSRLW(U8(8), X4, X4) // 0x00FF words
	}
	var sp Register
	v := s.vec(0)
	s.rows(func() {
		sp = s.rowPtr("scale", "scaleStep", 1)
		VBROADCASTSS(Mem{Base: sp}, s.vec(10))
	}, func(f int) {
		s.adv = func(f int) {
			if f&flagScaleVec != 0 {
				ADDQ(U8(4*w), sp)
			}
		}
		s.corrected(f&flagHasY != 0, v)
		s.scaled(f, sp)
		VMAXPS(s.vec(6), v, v)
		VMINPS(s.vec(5), v, v)
		VCVTPS2DQ(v, v) // MXCSR rounding: to nearest, ties to even
		VPADDD(s.vec(9), v, v)
		VPMAXSD(s.vec(8), v, v)
		VPMINSD(s.vec(7), v, v)
		if w == 16 {
			// The values lie in [qmin, qmax], within a byte's range:
			// truncating each dword to its low byte is exact (two's
			// complement for int8).
			VPMOVDB(v, Mem{Base: s.out})
			return
		}
		VEXTRACTI128(U8(1), Y0, X1)
		VPACKSSDW(X1, X0, X0)
		VPAND(X4, X0, X0)
		VPACKUSWB(X0, X0, X0)
		VMOVQ(X0, Mem{Base: s.out})
	})
}

// itoa formats a small positive int.
func itoa(i int) string {
	if i < 10 {
		return string(rune('0' + i))
	}
	return itoa(i/10) + string(rune('0'+i%10))
}

func zmm(i int) VecPhysical {
	return []VecPhysical{Z0, Z1, Z2, Z3, Z4, Z5, Z6, Z7, Z8, Z9, Z10, Z11, Z12, Z13, Z14, Z15,
		Z16, Z17, Z18, Z19, Z20, Z21, Z22, Z23, Z24, Z25, Z26, Z27, Z28, Z29, Z30, Z31}[i]
}

// vpdpbusd emits VPDPBUSD (AVX512-VNNI; avo has no constructor for it):
// acc += sum of the 4 products of the unsigned bytes of u and the signed
// bytes of s in each dword, exactly (no saturation). With bcst, s is a
// 32-bit memory operand broadcast to every dword.
func vpdpbusd(s Op, u, acc VecPhysical, bcst bool) {
	var suffixes []string
	if bcst {
		suffixes = []string{"BCST"}
	}
	Instruction(&ir.Instruction{
		Opcode:   "VPDPBUSD",
		Suffixes: suffixes,
		Operands: []Op{s, u, acc},
		Inputs:   []Op{s, u, acc},
		Outputs:  []Op{acc},
		ISA:      []string{"AVX512VNNI"},
	})
}

// tileVNNI emits the 4x16 AVX512-VNNI micro-kernel on the same layout: a
// k group of a panel is one ZMM register (16 columns x 4 bytes) and
// vpdpbusd multiplies it with the 4 broadcast bytes of a row, exactly for
// any int8 value. Even and odd k groups accumulate into Z0-Z3 and Z4-Z7 to
// cover the latency of vpdpbusd. Without signedA (QGemm) the rows are the
// unsigned operand and are broadcast into registers; with signedA (weights
// on the left) the panel is the unsigned operand and the signed row bytes
// are broadcast from memory by vpdpbusd itself.
func tileVNNI(name string, signedA bool) {
	TEXT(name, NOSPLIT, tileSig)
	Pragma("noescape")
	Doc(name+" computes mt 4x16 int32 tiles with AVX512-VNNI vpdpbusd, exactly",
		"for any int8 values; see qKernels.tile. acc != 0 adds to c.")
	tileFrame(name, func(a0, lda, c, ldc Register) {
		kg := Load(Param("kg"), GP64())
		b := Load(Param("b"), GP64())
		a := GP64()
		MOVQ(a0, a)
		lda3 := GP64()
		LEAQ(Mem{Base: lda, Index: lda, Scale: 2}, lda3)
		for i := 0; i < 8; i++ {
			VPXORD(zmm(i), zmm(i), zmm(i))
		}
		step := func(i int) {
			bz := zmm(8 + i)
			VMOVDQU32(Mem{Base: b, Disp: 64 * i}, bz)
			for r := 0; r < 4; r++ {
				acc := zmm(4*(i%2) + r)
				if signedA {
					vpdpbusd(rowAddr(a, lda, lda3, r, 4*i), bz, acc, true)
				} else {
					t := zmm(12 + 4*i + r)
					VPBROADCASTD(rowAddr(a, lda, lda3, r, 4*i), t)
					vpdpbusd(bz, t, acc, false)
				}
			}
		}
		kLoop(name, kg, a, b, 4, step)
		for r := 0; r < 4; r++ {
			VPADDD(zmm(4+r), zmm(r), zmm(r))
		}
		flag := Load(Param("acc"), GP64())
		cp := GP64()
		MOVQ(c, cp)
		TESTQ(flag, flag)
		JE(LabelRef(name + "_store"))
		for r := 0; r < 4; r++ {
			VPADDD(Mem{Base: cp}, zmm(r), zmm(r))
			if r < 3 {
				ADDQ(ldc, cp)
			}
		}
		MOVQ(c, cp)
		Label(name + "_store")
		for r := 0; r < 4; r++ {
			VMOVDQU32(zmm(r), Mem{Base: cp})
			if r < 3 {
				ADDQ(ldc, cp)
			}
		}
	})
}

// gemvVNNI emits the AVX512-VNNI GEMV kernel: one row against np panels,
// four k groups per iteration into four accumulators.
func gemvVNNI() {
	name := "qGemvU8S8VNNI"
	TEXT(name, NOSPLIT, "func(kg int, a *byte, b *byte, pstride int, np int, c *int32)")
	Pragma("noescape")
	Doc(name+" computes 16 int32 sums per panel for np panels with AVX512-VNNI,",
		"exactly for any int8 values; see qKernels.gemv. Four panels are read at",
		"once (four memory streams), then the rest one at a time.")
	b := Load(Param("b"), GP64())
	c := Load(Param("c"), GP64())
	np := Load(Param("np"), GP64())
	pstride := Load(Param("pstride"), GP64())
	ps3 := GP64()
	LEAQ(Mem{Base: pstride, Index: pstride, Scale: 2}, ps3)

	// Four panels at once: panel h accumulates into Z(h) (even k groups)
	// and Z(4+h) (odd).
	Label(name + "_quad")
	CMPQ(np, U8(4))
	JL(LabelRef(name + "_panel"))
	{
		kg := Load(Param("kg"), GP64())
		a := Load(Param("a"), GP64())
		bp := GP64()
		MOVQ(b, bp)
		for i := 0; i < 8; i++ {
			VPXORD(zmm(i), zmm(i), zmm(i))
		}
		qstep := func(i int) {
			t := zmm(8 + i)
			VPBROADCASTD(Mem{Base: a, Disp: 4 * i}, t)
			for h := 0; h < 4; h++ {
				m := []Mem{{Base: bp}, {Base: bp, Index: pstride, Scale: 1}, {Base: bp, Index: pstride, Scale: 2}, {Base: bp, Index: ps3, Scale: 1}}[h]
				m.Disp += 64 * i
				vpdpbusd(m, t, zmm(4*i+h), false)
			}
		}
		Label(name + "_qloop")
		CMPQ(kg, U8(2))
		JL(LabelRef(name + "_qtail"))
		qstep(0)
		qstep(1)
		ADDQ(U8(8), a)
		ADDQ(U32(128), bp)
		SUBQ(U8(2), kg)
		JMP(LabelRef(name + "_qloop"))
		Label(name + "_qtail")
		TESTQ(kg, kg)
		JE(LabelRef(name + "_qdone"))
		qstep(0)
		Label(name + "_qdone")
		for h := 0; h < 4; h++ {
			VPADDD(zmm(4+h), zmm(h), zmm(h))
			VMOVDQU32(zmm(h), Mem{Base: c, Disp: 64 * h})
		}
		ADDQ(U32(256), c)
		LEAQ(Mem{Base: b, Index: pstride, Scale: 4}, b)
		SUBQ(U8(4), np)
		JMP(LabelRef(name + "_quad"))
	}

	Label(name + "_panel")
	TESTQ(np, np)
	JE(LabelRef(name + "_end"))
	kg := Load(Param("kg"), GP64())
	a := Load(Param("a"), GP64())
	bp := GP64()
	MOVQ(b, bp)
	for i := 0; i < 4; i++ {
		VPXORD(zmm(i), zmm(i), zmm(i))
	}
	step := func(i int) {
		t := zmm(4 + i)
		VPBROADCASTD(Mem{Base: a, Disp: 4 * i}, t)
		vpdpbusd(Mem{Base: bp, Disp: 64 * i}, t, zmm(i), false)
	}
	Label(name + "_loop")
	CMPQ(kg, U8(4))
	JL(LabelRef(name + "_tail"))
	for i := 0; i < 4; i++ {
		step(i)
	}
	ADDQ(U8(16), a)
	ADDQ(U32(256), bp)
	SUBQ(U8(4), kg)
	JMP(LabelRef(name + "_loop"))
	Label(name + "_tail")
	TESTQ(kg, kg)
	JE(LabelRef(name + "_sum"))
	step(0)
	ADDQ(U8(4), a)
	ADDQ(U8(64), bp)
	DECQ(kg)
	JMP(LabelRef(name + "_tail"))
	Label(name + "_sum")
	VPADDD(Z1, Z0, Z0)
	VPADDD(Z3, Z2, Z2)
	VPADDD(Z2, Z0, Z0)
	VMOVDQU32(Z0, Mem{Base: c})
	ADDQ(U8(64), c)
	ADDQ(pstride, b)
	DECQ(np)
	JMP(LabelRef(name + "_panel"))
	Label(name + "_end")
	VZEROUPPER()
	RET()
}

// tileVNNIn emits a 4 x 16*np AVX512-VNNI kernel over np adjacent panels
// (b, b+pstride, ...): each broadcast row dword feeds np vpdpbusd, which
// divides the loads per multiply of tileVNNI by about np. With phases,
// even and odd k groups accumulate separately.
func tileVNNIn(name string, signedA bool, np int, phases bool) {
	TEXT(name, NOSPLIT, "func(kg, mt int, a *byte, lda int, b *byte, pstride int, c *int32, ldc int, acc uint64)")
	Pragma("noescape")
	Doc(name+" computes mt 4x(16*np) int32 tiles over the panels at b, b+pstride, ...",
		"with AVX512-VNNI vpdpbusd; see qKernels.tile4. acc != 0 adds to c.")
	nph := 1
	if phases {
		nph = 2
	}
	nacc := 4 * np
	accReg := func(ph, r, h int) VecPhysical { return zmm(nacc*ph + np*r + h) }
	bbase := nacc * nph
	tileFrame(name, func(a0, lda, c, ldc Register) {
		kg := Load(Param("kg"), GP64())
		b := Load(Param("b"), GP64())
		ps := Load(Param("pstride"), GP64())
		a := GP64()
		MOVQ(a0, a)
		lda3 := GP64()
		LEAQ(Mem{Base: lda, Index: lda, Scale: 2}, lda3)
		ps3 := GP64()
		if np > 2 {
			LEAQ(Mem{Base: ps, Index: ps, Scale: 2}, ps3)
		}
		for i := 0; i < nacc*nph; i++ {
			VPXORD(zmm(i), zmm(i), zmm(i))
		}
		free := 32 - bbase
		step := func(i int) {
			var bz []VecPhysical
			for h := 0; h < np; h++ {
				z := zmm(bbase + (np*i+h)%(free-4))
				m := Mem{Base: b, Disp: 64 * i}
				switch h {
				case 1:
					m = Mem{Base: b, Index: ps, Scale: 1, Disp: 64 * i}
				case 2:
					m = Mem{Base: b, Index: ps, Scale: 2, Disp: 64 * i}
				case 3:
					m = Mem{Base: b, Index: ps3, Scale: 1, Disp: 64 * i}
				}
				VMOVDQU32(m, z)
				bz = append(bz, z)
			}
			for r := 0; r < 4; r++ {
				t := zmm(28 + r)
				VPBROADCASTD(rowAddr(a, lda, lda3, r, 4*i), t)
				ph := i % nph
				for h := 0; h < np; h++ {
					if signedA {
						vpdpbusd(t, bz[h], accReg(ph, r, h), false)
					} else {
						vpdpbusd(bz[h], t, accReg(ph, r, h), false)
					}
				}
			}
		}
		kLoop(name, kg, a, b, 4, step)
		if phases {
			for i := 0; i < nacc; i++ {
				VPADDD(zmm(nacc+i), zmm(i), zmm(i))
			}
		}
		flag := Load(Param("acc"), GP64())
		cp := GP64()
		MOVQ(c, cp)
		TESTQ(flag, flag)
		JE(LabelRef(name + "_store"))
		for r := 0; r < 4; r++ {
			for h := 0; h < np; h++ {
				VPADDD(Mem{Base: cp, Disp: 64 * h}, accReg(0, r, h), accReg(0, r, h))
			}
			if r < 3 {
				ADDQ(ldc, cp)
			}
		}
		MOVQ(c, cp)
		Label(name + "_store")
		for r := 0; r < 4; r++ {
			for h := 0; h < np; h++ {
				VMOVDQU32(accReg(0, r, h), Mem{Base: cp, Disp: 64 * h})
			}
			if r < 3 {
				ADDQ(ldc, cp)
			}
		}
	})
}
