//go:build amd64 && !purego

package kernels

import "golang.org/x/sys/cpu"

//go:generate go run -C ../../asmgen . -out ../runtime/kernels/sgemm_amd64.s -stubs ../runtime/kernels/sgemm_amd64_stubs.go -pkg kernels

// Micro-kernel implementations. All read the same packed 6x16 layout.
const (
	implGeneric = iota // portable Go
	implAVX2           // AVX2 + FMA, 12 YMM accumulators
	implAVX512         // AVX-512F, 12 ZMM accumulators (two k phases)
)

// availableImpls lists the implementations this CPU can run, fastest last.
// GODEBUG=cpu.avx2=off (or cpu.fma=off) leaves only the portable kernel;
// GODEBUG=cpu.avx512f=off leaves AVX2.
func availableImpls() []int {
	impls := []int{implGeneric}
	if cpu.X86.HasAVX2 && cpu.X86.HasFMA {
		impls = append(impls, implAVX2)
		if cpu.X86.HasAVX512F {
			impls = append(impls, implAVX512)
		}
	}
	return impls
}

// activeImpl is the micro-kernel in use, the fastest available one. It is
// fixed at start-up; tests switch it to cover every implementation.
var activeImpl = availableImpls()[len(availableImpls())-1]

// microKernel computes one mr x nr tile; see kernelGeneric for the contract.
func microKernel(k int, a, b, c []float32, ldc int, alpha, beta float32, biasRow, biasCol []float32, relu bool) {
	if activeImpl == implGeneric {
		kernelGeneric(k, a, b, c, ldc, alpha, beta, biasRow, biasCol, relu)
		return
	}
	_ = a[k*mr-1]
	_ = b[k*nr-1]
	_ = c[(mr-1)*ldc+nr-1]
	var br, bc *float32
	if biasRow != nil {
		_ = biasRow[mr-1]
		br = &biasRow[0]
	}
	if biasCol != nil {
		_ = biasCol[nr-1]
		bc = &biasCol[0]
	}
	var flags uint64
	if beta != 0 {
		flags |= flagLoadC
	}
	if relu {
		flags |= flagRelu
	}
	if activeImpl == implAVX512 {
		sgemmKernel6x16AVX512(k, &a[0], &b[0], &c[0], ldc, alpha, beta, br, bc, flags)
		return
	}
	sgemmKernel6x16(k, &a[0], &b[0], &c[0], ldc, alpha, beta, br, bc, flags)
}

// Flags of the assembly micro-kernels; keep in sync with asmgen.
const (
	flagLoadC = 1 << 0 // add beta*C
	flagRelu  = 1 << 1 // clamp at zero
)

// axpy computes y[i] += a*x[i] for i < len(y); x must be as long as y.
func axpy(a float32, x, y []float32) {
	if activeImpl == implGeneric || len(y) == 0 {
		axpyGeneric(a, x, y)
		return
	}
	x = x[:len(y)]
	saxpyAVX2(len(y), a, &x[0], &y[0])
}

// convTileAsm runs the AVX-512 direct-convolution tile; see
// convTileGeneric for the contract. The bounds checks cover the rows the
// kernel touches; the input offsets were checked by NewDirectConv.
func convTileAsm(k int, a []float32, offs []int32, b0, b1, c0, c1 []float32, ldc int, bias, r0, r1 []float32, masks, flags uint64) {
	_ = a[k*cmr-1]
	_ = offs[k-1]
	_, _ = b0[0], b1[0]
	n0, n1 := maskLen(masks&0xffff), maskLen(masks>>16&0xffff)
	if n0 > 0 {
		_ = c0[(cmr-1)*ldc+n0-1]
	}
	if n1 > 0 {
		_ = c1[(cmr-1)*ldc+n1-1]
	}
	var bp, rp0, rp1 *float32
	if flags&convFlagBias != 0 {
		_ = bias[cmr-1]
		bp = &bias[0]
	}
	if flags&convFlagResid != 0 {
		if n0 > 0 {
			_ = r0[(cmr-1)*ldc+n0-1]
		}
		if n1 > 0 {
			_ = r1[(cmr-1)*ldc+n1-1]
		}
		rp0, rp1 = &r0[0], &r1[0]
	}
	convKernel8x32AVX512(k, &a[0], &offs[0], &b0[0], &b1[0], &c0[0], &c1[0], ldc, bp, rp0, rp1, masks, flags)
}

// maskLen returns the length of a mask of the form 1<<n - 1.
func maskLen(m uint64) int {
	n := 0
	for m&1 != 0 {
		n++
		m >>= 1
	}
	return n
}
