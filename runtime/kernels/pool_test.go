package kernels

import (
	"math"
	"math/rand/v2"
	"testing"
)

// specials returns values that exercise max's NaN and signed-zero rules.
func poolValues(r *rand.Rand, n int) []float32 {
	x := make([]float32, n)
	specials := []float32{float32(math.NaN()), float32(math.Copysign(0, -1)), 0, float32(math.Inf(1)), float32(math.Inf(-1))}
	for i := range x {
		if r.IntN(6) == 0 {
			x[i] = specials[r.IntN(len(specials))]
		} else {
			x[i] = float32(r.NormFloat64())
		}
	}
	return x
}

func sameBits(a, b []float32) bool {
	for i := range a {
		if math.Float32bits(a[i]) != math.Float32bits(b[i]) && !(a[i] != a[i] && b[i] != b[i]) {
			return false
		}
	}
	return len(a) == len(b)
}

func TestMaxRows(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for n := 0; n < 70; n++ {
		a, b := poolValues(r, n), poolValues(r, n)
		want := make([]float32, n)
		maxRowsGeneric(want, a, b)
		for _, impl := range impls() {
			got := make([]float32, n)
			withImpl(impl, func() { MaxRows(got, a, b) })
			if !sameBits(got, want) {
				t.Fatalf("%s n=%d: got %v, want %v (a %v b %v)", implName(impl), n, got, want, a, b)
			}
		}
	}
}

func TestMaxPool2x2(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	for ow := 1; ow < 40; ow++ {
		rows := 1 + r.IntN(4)
		iw := 2*ow + r.IntN(3)
		x := poolValues(r, (2*rows-1)*iw+2*ow)
		want := make([]float32, rows*ow)
		maxPool2x2Generic(want, x, rows, ow, iw)
		for _, impl := range impls() {
			got := make([]float32, rows*ow)
			withImpl(impl, func() { MaxPool2x2(got, x, rows, ow, iw) })
			if !sameBits(got, want) {
				t.Fatalf("%s ow=%d rows=%d iw=%d: got %v, want %v", implName(impl), ow, rows, iw, got, want)
			}
		}
	}
}

func TestSumFloat64(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	for n := 0; n < 200; n += 1 + n/10 {
		x := make([]float32, n)
		var want float64
		for i := range x {
			x[i] = float32(r.NormFloat64()) * 100
			want += float64(x[i])
		}
		for _, impl := range impls() {
			var got float64
			withImpl(impl, func() { got = SumFloat64(x) })
			if math.Abs(got-want) > 1e-9*(1+math.Abs(want)) {
				t.Fatalf("%s n=%d: got %v, want %v", implName(impl), n, got, want)
			}
		}
	}
}
