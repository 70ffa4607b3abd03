package kernels

import "fmt"

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
