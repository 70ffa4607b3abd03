//go:build amd64 && !purego

package kernels

import (
	"math/bits"

	"golang.org/x/sys/cpu"
)

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

// maskLen returns the length of a mask of the form 1<<n - 1.
func maskLen(m uint64) int { return bits.TrailingZeros64(^m) }

// convTilesAsm runs convTilesAVX512 or convTilesAVX2 (impl) after
// checking the slices against the extent the kernel touches (input offsets
// were checked by NewDirectConv).
func convTilesAsm(impl, k int, a []float32, offs []int32, src, y []float32, ldc int, bias, res []float32, pairs []int32, panels int, flags uint64) {
	_ = a[panels*k*cmr-1]
	_ = offs[k-1]
	_ = src[0]
	npairs := len(pairs) / pairWords
	last := 0 // largest output index written, plus one
	for i := 0; i < npairs; i++ {
		for b := 0; b < cblk; b++ {
			if n := maskLen(uint64(uint32(pairs[i*pairWords+4])) >> (16 * b) & 0xffff); n > 0 {
				last = max(last, int(pairs[i*pairWords+2+b])+n)
			}
		}
	}
	if last == 0 {
		return
	}
	_ = y[(panels*cmr-1)*ldc+last-1]
	var bp, rp *float32
	if flags&convFlagBias != 0 {
		_ = bias[panels*cmr-1]
		bp = &bias[0]
	}
	if flags&convFlagResid != 0 {
		_ = res[(panels*cmr-1)*ldc+last-1]
		rp = &res[0]
	}
	if impl == implAVX512 {
		convTilesAVX512(k, &a[0], &offs[0], &src[0], &y[0], ldc, bp, rp, &pairs[0], npairs, panels, flags)
		return
	}
	convTilesAVX2(k, &a[0], &offs[0], &src[0], &y[0], ldc, bp, rp, &pairs[0], npairs, panels, flags)
}
