package kernels

import (
	"encoding/binary"
	"fmt"
	"unsafe"
)

// MaxRows sets dst[i] = max(a[i], b[i]) for i < len(dst), with Go's max
// semantics (NaN if either is NaN, max(-0, +0) = +0). dst may be a or b.
func MaxRows(dst, a, b []float32) {
	n := len(dst)
	if n == 0 {
		return
	}
	a, b = a[:n], b[:n]
	if activeImpl == implAVX512 {
		maxRowsAVX512(&dst[0], &a[0], &b[0], n)
		return
	}
	maxRowsGeneric(dst, a, b)
}

func maxRowsGeneric(dst, a, b []float32) {
	b = b[:len(a)]
	dst = dst[:len(a)]
	for i, v := range a {
		dst[i] = max(v, b[i])
	}
}

// MaxPool2x2 max-pools rows output rows of ow values with 2x2 windows and
// stride 2 from x, whose rows are iw values apart (2*ow <= iw): y[r*ow+i]
// is the max (Go semantics, see MaxRows) of x[2r*iw+2i], x[2r*iw+2i+1],
// x[(2r+1)*iw+2i] and x[(2r+1)*iw+2i+1]. It panics on short slices.
func MaxPool2x2(y, x []float32, rows, ow, iw int) {
	if rows <= 0 || ow <= 0 {
		return
	}
	if 2*ow > iw || len(y) < rows*ow || len(x) < (2*rows-1)*iw+2*ow {
		panic(fmt.Sprintf("kernels: MaxPool2x2: %d rows of %d outputs from rows of %d: buffers of %d and %d values are too short",
			rows, ow, iw, len(y), len(x)))
	}
	if activeImpl == implAVX512 {
		maxPool2x2AVX512(&y[0], &x[0], rows, ow, iw)
		return
	}
	maxPool2x2Generic(y, x, rows, ow, iw)
}

func maxPool2x2Generic(y, x []float32, rows, ow, iw int) {
	for r := 0; r < rows; r++ {
		a, b := x[2*r*iw:][:2*ow], x[(2*r+1)*iw:][:2*ow]
		yr := y[r*ow : (r+1)*ow]
		for i := range yr {
			yr[i] = max(a[2*i], a[2*i+1], b[2*i], b[2*i+1])
		}
	}
}

// MaxPool2x2Int is MaxPool2x2 for int8 or uint8 values (exact, pure Go):
// y[r*ow+i] = max(x[2r*iw+2i], x[2r*iw+2i+1], x[(2r+1)*iw+2i],
// x[(2r+1)*iw+2i+1]). It panics on short slices. Eight outputs at a time
// are computed branch-free in 64-bit words (SWAR, see maxU8x8); int8
// values are mapped to uint8 order by flipping their sign bit. With
// AVX-512 (BW) the rows run in qMaxPool2x2AVX512 (qconv_amd64.s), up to 32
// outputs a row at a time.
func MaxPool2x2Int[T int8 | uint8](y, x []T, rows, ow, iw int) {
	if rows <= 0 || ow <= 0 {
		return
	}
	if 2*ow > iw || len(y) < rows*ow || len(x) < (2*rows-1)*iw+2*ow {
		panic(fmt.Sprintf("kernels: MaxPool2x2Int: %d rows of %d outputs from rows of %d: buffers of %d and %d values are too short",
			rows, ow, iw, len(y), len(x)))
	}
	yb, xb, bias := asBytes(y), asBytes(x), signBias[T]()
	if qconvAVX512 {
		signed := 0
		if bias != 0 {
			signed = 1
		}
		// Column blocks of up to 32 outputs (64 input bytes a row).
		for c := 0; c < ow; c += 32 {
			qMaxPool2x2AVX512(&yb[c], ow, &xb[2*c], iw, rows, min(32, ow-c), signed)
		}
		return
	}
	maxPool2x2Bytes(yb, xb, rows, ow, iw, bias)
}

// MaxRowsInt sets dst[i] = max(a[i], b[i]) for i < len(dst), for int8 or
// uint8 values. dst may be a or b. It panics if a or b is shorter than dst.
func MaxRowsInt[T int8 | uint8](dst, a, b []T) {
	n := len(dst)
	if n == 0 {
		return
	}
	a, b = a[:n], b[:n]
	maxRowsBytes(asBytes(dst), asBytes(a), asBytes(b), signBias[T]())
}

// asBytes views an int8 or uint8 slice as bytes (same size, no copy).
func asBytes[T int8 | uint8](x []T) []byte {
	if len(x) == 0 {
		return nil
	}
	return unsafe.Slice((*byte)(unsafe.Pointer(&x[0])), len(x))
}

// signBias returns the word that maps each byte of T to uint8 order by
// XOR: 0x80 per byte for int8 (flips the sign bit), 0 for uint8.
func signBias[T int8 | uint8]() uint64 {
	var v T
	v--
	if v < 0 {
		return 0x8080808080808080
	}
	return 0
}

const (
	bytesHigh = 0x8080808080808080
	bytesEven = 0x00ff00ff00ff00ff
)

// maxU8x8 is the unsigned per-byte max of two words, without branches:
// a byte of a is >= the byte of b when its top bit is set and b's is not,
// or both top bits agree and the low seven bits of a are >= those of b
// (the top bit of (0x80 + a7) - b7, computed for all bytes at once with no
// borrow between them).
func maxU8x8(a, b uint64) uint64 {
	d := (a | bytesHigh) - (b &^ bytesHigh)
	ge := (a&^b | ^(a^b)&d) & bytesHigh
	m := (ge - ge>>7) | ge // 0xff in the bytes where a >= b
	return a&m | b&^m
}

// packEven gathers bytes 0, 2, 4 and 6 of v into the low 32 bits.
func packEven(v uint64) uint64 {
	v &= bytesEven
	v = (v | v>>8) & 0x0000ffff0000ffff
	return (v | v>>16) & 0xffffffff
}

// maxU8 is the scalar branch-free max of two bytes.
func maxU8(a, b byte) byte {
	d := int(b) - int(a)
	return byte(int(b) - d&(d>>63))
}

func maxPool2x2Bytes(y, x []byte, rows, ow, iw int, bias uint64) {
	for r := 0; r < rows; r++ {
		a, b := x[2*r*iw:][:2*ow], x[(2*r+1)*iw:][:2*ow]
		yr := y[r*ow:][:ow]
		if ow < 4 {
			b8 := byte(bias)
			for i := range yr {
				a2, b2 := a[2*i:][:2], b[2*i:][:2]
				yr[i] = maxU8(maxU8(a2[0]^b8, a2[1]^b8), maxU8(b2[0]^b8, b2[1]^b8)) ^ b8
			}
			continue
		}
		// Blocks of eight (then four) outputs; a last partial block is
		// recomputed overlapping the one before, which writes the same
		// values again.
		i := 0
		for ; i+8 <= ow; i += 8 {
			maxPool8(yr[i:], a[2*i:], b[2*i:], bias)
		}
		switch {
		case i == ow:
		case ow >= 8:
			maxPool8(yr[ow-8:], a[2*(ow-8):], b[2*(ow-8):], bias)
		default:
			maxPool4(yr, a, b, bias)
			if ow > 4 {
				maxPool4(yr[ow-4:], a[2*(ow-4):], b[2*(ow-4):], bias)
			}
		}
	}
}

// maxPool8 writes y[:8] from a[:16] and b[:16] (one 2x2 window row pair).
func maxPool8(y, a, b []byte, bias uint64) {
	a, b = a[:16], b[:16]
	v0 := maxU8x8(binary.LittleEndian.Uint64(a)^bias, binary.LittleEndian.Uint64(b)^bias)
	v1 := maxU8x8(binary.LittleEndian.Uint64(a[8:])^bias, binary.LittleEndian.Uint64(b[8:])^bias)
	even := packEven(v0) | packEven(v1)<<32
	odd := packEven(v0>>8) | packEven(v1>>8)<<32
	binary.LittleEndian.PutUint64(y, maxU8x8(even, odd)^bias)
}

// maxPool4 writes y[:4] from a[:8] and b[:8].
func maxPool4(y, a, b []byte, bias uint64) {
	v := maxU8x8(binary.LittleEndian.Uint64(a)^bias, binary.LittleEndian.Uint64(b)^bias)
	h := maxU8x8(v, v>>8)
	binary.LittleEndian.PutUint32(y, uint32(packEven(h))^uint32(bias))
}

func maxRowsBytes(dst, a, b []byte, bias uint64) {
	a, b = a[:len(dst)], b[:len(dst)]
	i := 0
	for ; i+8 <= len(dst); i += 8 {
		m := maxU8x8(binary.LittleEndian.Uint64(a[i:])^bias, binary.LittleEndian.Uint64(b[i:])^bias)
		binary.LittleEndian.PutUint64(dst[i:], m^bias)
	}
	b8 := byte(bias)
	for ; i < len(dst); i++ {
		dst[i] = maxU8(a[i]^b8, b[i]^b8) ^ b8
	}
}

// SumFloat64 returns the sum of x accumulated in float64 (the order of the
// additions depends on the implementation, never on the data or threads).
func SumFloat64(x []float32) float64 {
	if len(x) == 0 {
		return 0
	}
	if activeImpl == implAVX512 {
		return sumF64AVX512(&x[0], len(x))
	}
	return sumF64Generic(x)
}

func sumF64Generic(x []float32) float64 {
	var s float64
	for _, v := range x {
		s += float64(v)
	}
	return s
}
