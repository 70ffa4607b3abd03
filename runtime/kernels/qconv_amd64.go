//go:build amd64 && !purego

package kernels

import "golang.org/x/sys/cpu"

// qconvAVX512 reports that the AVX-512 helpers of the batched convolution
// (qconv_amd64.s) can run; GODEBUG=cpu.avx512f=off (or cpu.avx2=off)
// disables them.
var qconvAVX512 = cpu.X86.HasAVX2 && cpu.X86.HasAVX512F && cpu.X86.HasAVX512BW

//go:noescape
func qCopyRowsAVX512(rows int, n int, src *byte, lds int, dst *byte, ldd int, zx int)

//go:noescape
func qUnzip2RowsAVX512(rows int, n int, src *byte, lds int, even *byte, odd *byte, ldd int, zx int)

//go:noescape
func qResidualU8AVX512(rows int, n int, q *byte, ldq int, r *byte, out *byte, p *qResParams)

//go:noescape
func qResidualF32AVX512(rows int, n int, q *byte, ldq int, r *byte, out *float32, p *qResParams)

//go:noescape
func qConvOutAVX512(rows int, n int, acc *int32, ldacc int, p *qOutParams, r *byte, rp *qResParams, out *byte, mode int)

//go:noescape
func qInterleaveAVX512(np int, r0 *byte, r1 *byte, r2 *byte, r3 *byte, dst *byte, dstStride int)

//go:noescape
func qMaxPool2x2AVX512(y *byte, ldy int, x *byte, iw int, rows int, ow int, signed int)

//go:noescape
func qQuantizeAVX512(n int, x *float32, y *byte, p *qQuantParams, signed int)
