//go:build amd64 && !purego

package runtime

import "golang.org/x/sys/cpu"

// Row kernels of the CSR product in sparse_amd64.s: c[0:W] = sum over the
// nnz >= 1 nonzeros of vals[i] * b[idx[i]*ldb : idx[i]*ldb+W], plus bias,
// clamped at zero when relu != 0.

//go:noescape
func spRow32AVX512(nnz int, vals *float32, idx *int32, b *float32, ldb int, c *float32, bias float32, relu int)

//go:noescape
func spRow16AVX512(nnz int, vals *float32, idx *int32, b *float32, ldb int, c *float32, bias float32, relu int)

//go:noescape
func spRow16AVX2(nnz int, vals *float32, idx *int32, b *float32, ldb int, c *float32, bias float32, relu int)

//go:noescape
func spRow8AVX2(nnz int, vals *float32, idx *int32, b *float32, ldb int, c *float32, bias float32, relu int)

//go:noescape
func transpose8AVX(a *float32, lda int, t *float32, ldt int)

// transpose8 writes the 8 x 8 block of a (row stride lda) transposed into
// t (row stride ldt).
func transpose8(a []float32, lda int, t []float32, ldt int) {
	_ = a[7*lda+7]
	_ = t[7*ldt+7]
	if sparseImpl != sparseGeneric {
		transpose8AVX(&a[0], lda, &t[0], ldt)
		return
	}
	transpose8Generic(a, lda, t, ldt)
}

// sparseImpls lists the CSR row kernels this CPU can run, fastest last
// (GODEBUG=cpu.avx512f=off or cpu.avx2=off removes the assembly ones).
func sparseImpls() []int {
	impls := []int{sparseGeneric}
	if cpu.X86.HasAVX2 && cpu.X86.HasFMA {
		impls = append(impls, sparseAVX2)
		if cpu.X86.HasAVX512F {
			impls = append(impls, sparseAVX512)
		}
	}
	return impls
}

// sparseRowTiles computes the columns [0, n) of one output row (with its
// bias and ReLU) that the assembly kernels cover, and returns the first
// column left to do.
func sparseRowTiles(impl int, vals []float32, idx []int32, b []float32, ldb int, c []float32, n int, bias float32, relu bool) int {
	r := 0
	if relu {
		r = 1
	}
	j := 0
	switch impl {
	case sparseAVX512:
		for ; j+32 <= n; j += 32 {
			spRow32AVX512(len(vals), &vals[0], &idx[0], &b[j], ldb, &c[j], bias, r)
		}
		for ; j+16 <= n; j += 16 {
			spRow16AVX512(len(vals), &vals[0], &idx[0], &b[j], ldb, &c[j], bias, r)
		}
	case sparseAVX2:
		for ; j+16 <= n; j += 16 {
			spRow16AVX2(len(vals), &vals[0], &idx[0], &b[j], ldb, &c[j], bias, r)
		}
		for ; j+8 <= n; j += 8 {
			spRow8AVX2(len(vals), &vals[0], &idx[0], &b[j], ldb, &c[j], bias, r)
		}
	}
	return j
}
