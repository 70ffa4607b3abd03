//go:build !amd64 || purego

package kernels

// qconvAVX512 is false: the portable helpers of the batched convolution
// run.
const qconvAVX512 = false

func qCopyRowsAVX512(rows int, n int, src *byte, lds int, dst *byte, ldd int, zx int) {
	panic("kernels: qCopyRowsAVX512 without AVX-512")
}

func qUnzip2RowsAVX512(rows int, n int, src *byte, lds int, even *byte, odd *byte, ldd int, zx int) {
	panic("kernels: qUnzip2RowsAVX512 without AVX-512")
}

func qResidualU8AVX512(rows int, n int, q *byte, ldq int, r *byte, out *byte, p *qResParams) {
	panic("kernels: qResidualU8AVX512 without AVX-512")
}

func qResidualF32AVX512(rows int, n int, q *byte, ldq int, r *byte, out *float32, p *qResParams) {
	panic("kernels: qResidualF32AVX512 without AVX-512")
}

func qConvOutAVX512(rows int, n int, acc *int32, ldacc int, p *qOutParams, r *byte, rp *qResParams, out *byte, mode int) {
	panic("kernels: qConvOutAVX512 without AVX-512")
}

func qInterleaveAVX512(np int, r0 *byte, r1 *byte, r2 *byte, r3 *byte, dst *byte, dstStride int) {
	panic("kernels: qInterleaveAVX512 without AVX-512")
}

func qMaxPool2x2AVX512(y *byte, ldy int, x *byte, iw int, rows int, ow int, signed int) {
	panic("kernels: qMaxPool2x2AVX512 without AVX-512")
}

func qQuantizeAVX512(n int, x *float32, y *byte, p *qQuantParams, signed int) {
	panic("kernels: qQuantizeAVX512 without AVX-512")
}
