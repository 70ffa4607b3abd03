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
