//go:build !amd64 || purego

package kernels

// Only the portable micro-kernel exists without the amd64 assembly.
const (
	implGeneric = iota
	implAVX2
	implAVX512
)

// availableImpls lists the implementations this build can run.
func availableImpls() []int { return []int{implGeneric} }

// activeImpl is the micro-kernel in use.
var activeImpl = implGeneric

// microKernel computes one mr x nr tile; see kernelGeneric for the contract.
func microKernel(k int, a, b, c []float32, ldc int, alpha, beta float32, biasRow, biasCol []float32, relu bool) {
	kernelGeneric(k, a, b, c, ldc, alpha, beta, biasRow, biasCol, relu)
}

// axpy computes y[i] += a*x[i] for i < len(y); x must be as long as y.
func axpy(a float32, x, y []float32) { axpyGeneric(a, x, y) }

// copyRowsAVX512 and copyRows2AVX512 exist only in the amd64 assembly.
func copyRowsAVX512(dst *float32, dstRow, dstPlane int, src *float32, srcRow, srcPlane, n, rows, planes, lead, trail int) {
	panic("kernels: no assembly in this build")
}

func copyRows2AVX512(dst *float32, dstRow, dstPlane int, src *float32, srcRow, srcPlane, n, rows, planes, lead, trail int) {
	panic("kernels: no assembly in this build")
}

func maxRowsAVX512(dst, a, b *float32, n int) { panic("kernels: no assembly in this build") }

func maxPool2x2AVX512(y, x *float32, rows, ow, iw int) { panic("kernels: no assembly in this build") }

func sumF64AVX512(x *float32, n int) float64 { panic("kernels: no assembly in this build") }

// convTilesAsm is the portable loop: there is no assembly in this build.
func convTilesAsm(impl, k int, a []float32, offs []int32, src, y []float32, ldc int, bias, res []float32, pairs []int32, panels int, flags uint64) {
	convTilesGeneric(k, a, offs, src, y, ldc, bias, res, pairs, panels, flags)
}
