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
