//go:build amd64 && !purego

package runtime

import "golang.org/x/sys/cpu"

// Row kernels of the CSR product in sparse_amd64.s: c[0:W] = sum over the
// nnz >= 1 nonzeros of vals[i] * b[idx[i]*ldb : idx[i]*ldb+W] (plus the old
// c when flags&tileAccumulate), plus bias, clamped at zero when
// flags&tileRelu.

//go:noescape
func spRow32AVX512(nnz int, vals *float32, idx *int32, b *float32, ldb int, c *float32, bias float32, flags int)

//go:noescape
func spRow16AVX512(nnz int, vals *float32, idx *int32, b *float32, ldb int, c *float32, bias float32, flags int)

//go:noescape
func spRow16AVX2(nnz int, vals *float32, idx *int32, b *float32, ldb int, c *float32, bias float32, flags int)

//go:noescape
func spRow8AVX2(nnz int, vals *float32, idx *int32, b *float32, ldb int, c *float32, bias float32, flags int)

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

// tileWidths returns the column widths of the assembly row kernels of
// impl, widest first (0 for none).
func tileWidths(impl int) (w1, w2 int) {
	switch impl {
	case sparseAVX512:
		return 32, 16
	case sparseAVX2:
		return 16, 8
	}
	return 0, 0
}

// sparseTile runs the assembly row kernel of width w (from tileWidths) on
// len(vals) >= 1 nonzeros: c[0:w] = sum_i vals[i]*b[idx[i]*ldb : +w]
// (+ c when flags&tileAccumulate) + bias, then ReLU when flags&tileRelu.
func sparseTile(impl, w int, vals []float32, idx []int32, b []float32, ldb int, c []float32, bias float32, flags int) {
	_ = c[w-1]
	switch {
	case impl == sparseAVX512 && w == 32:
		spRow32AVX512(len(vals), &vals[0], &idx[0], &b[0], ldb, &c[0], bias, flags)
	case impl == sparseAVX512 && w == 16:
		spRow16AVX512(len(vals), &vals[0], &idx[0], &b[0], ldb, &c[0], bias, flags)
	case impl == sparseAVX2 && w == 16:
		spRow16AVX2(len(vals), &vals[0], &idx[0], &b[0], ldb, &c[0], bias, flags)
	case impl == sparseAVX2 && w == 8:
		spRow8AVX2(len(vals), &vals[0], &idx[0], &b[0], ldb, &c[0], bias, flags)
	default:
		panic("runtime: no sparse row kernel of this width")
	}
}
