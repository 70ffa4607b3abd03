//go:build !amd64 || purego

package runtime

// sparseImpls lists the CSR row kernels available: only the portable one
// without the amd64 assembly.
func sparseImpls() []int { return []int{sparseGeneric} }

// tileWidths reports no assembly row kernels: every column goes through
// the portable code.
func tileWidths(int) (w1, w2 int) { return 0, 0 }

// sparseTile is never called without assembly kernels.
func sparseTile(int, int, []float32, []int32, []float32, int, []float32, float32, int) {
	panic("runtime: no sparse row kernels")
}

// transpose8 writes the 8 x 8 block of a (row stride lda) transposed into
// t (row stride ldt).
func transpose8(a []float32, lda int, t []float32, ldt int) { transpose8Generic(a, lda, t, ldt) }
