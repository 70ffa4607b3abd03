//go:build !amd64 || purego

package runtime

// sparseImpls lists the CSR row kernels available: only the portable one
// without the amd64 assembly.
func sparseImpls() []int { return []int{sparseGeneric} }

// sparseRowTiles has no assembly to run here: every column is left to the
// portable code.
func sparseRowTiles(int, []float32, []int32, []float32, int, []float32, int, float32, bool) int {
	return 0
}

// transpose8 writes the 8 x 8 block of a (row stride lda) transposed into
// t (row stride ldt).
func transpose8(a []float32, lda int, t []float32, ldt int) { transpose8Generic(a, lda, t, ldt) }
