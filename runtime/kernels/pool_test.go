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

// TestMaxU8x8 checks the SWAR byte max on every pair of byte values, in
// every lane, against the scalar max (maxU8 is checked too).
func TestMaxU8x8(t *testing.T) {
	for a := 0; a < 256; a++ {
		for b := 0; b < 256; b++ {
			want := byte(max(a, b))
			if got := maxU8(byte(a), byte(b)); got != want {
				t.Fatalf("maxU8(%d, %d) = %d, want %d", a, b, got, want)
			}
			lane := (a + b) % 8
			// Other lanes hold values that would borrow or carry into
			// this one if the lanes were not isolated.
			wa := uint64(0x00ff7f80_01fe00ff) &^ (0xff << (8 * lane))
			wb := uint64(0xff007f7f_80ff01fe) &^ (0xff << (8 * lane))
			wa |= uint64(a) << (8 * lane)
			wb |= uint64(b) << (8 * lane)
			m := maxU8x8(wa, wb)
			for l := 0; l < 8; l++ {
				x, y := byte(wa>>(8*l)), byte(wb>>(8*l))
				if g := byte(m >> (8 * l)); g != max(x, y) {
					t.Fatalf("maxU8x8(%#x, %#x) lane %d = %d, want %d", wa, wb, l, g, max(x, y))
				}
			}
			if byte(m>>(8*lane)) != want {
				t.Fatalf("maxU8x8 lane %d of %d, %d: got %d", lane, a, b, byte(m>>(8*lane)))
			}
		}
	}
}

func maxPool2x2Ref[T int8 | uint8](y, x []T, rows, ow, iw int) {
	for r := 0; r < rows; r++ {
		for i := 0; i < ow; i++ {
			y[r*ow+i] = max(x[2*r*iw+2*i], x[2*r*iw+2*i+1], x[(2*r+1)*iw+2*i], x[(2*r+1)*iw+2*i+1])
		}
	}
}

// testMaxPool2x2Int compares MaxPool2x2Int (AVX-512 where available) and
// the portable SWAR code with the scalar reference on widths 1 to 80 (one
// and several 32-output column blocks, partial 8- and 4-output blocks) and
// row strides with slack.
func testMaxPool2x2Int[T int8 | uint8](t *testing.T, name string) {
	r := rand.New(rand.NewPCG(11, 12))
	for ow := 1; ow <= 80; ow++ {
		rows := 1 + r.IntN(4)
		iw := 2*ow + r.IntN(3)
		x := make([]T, (2*rows-1)*iw+2*ow)
		for i := range x {
			x[i] = T(r.IntN(256))
			if r.IntN(4) == 0 { // extremes and ties
				x[i] = T([]int{0, 127, 128, 255}[r.IntN(4)])
			}
		}
		want := make([]T, rows*ow)
		maxPool2x2Ref(want, x, rows, ow, iw)
		got := make([]T, rows*ow)
		MaxPool2x2Int(got, x, rows, ow, iw)
		portable := make([]T, rows*ow)
		maxPool2x2Bytes(asBytes(portable), asBytes(x), rows, ow, iw, signBias[T]())
		for i := range want {
			if got[i] != want[i] || portable[i] != want[i] {
				t.Fatalf("%s ow=%d rows=%d iw=%d: output %d = %d (portable %d), want %d",
					name, ow, rows, iw, i, got[i], portable[i], want[i])
			}
		}
	}
}

func TestMaxPool2x2Int(t *testing.T) {
	testMaxPool2x2Int[uint8](t, "uint8")
	testMaxPool2x2Int[int8](t, "int8")
	defer func() {
		if recover() == nil {
			t.Error("MaxPool2x2Int on a short buffer did not panic")
		}
	}()
	MaxPool2x2Int(make([]uint8, 4), make([]uint8, 8), 2, 2, 4)
}

func testMaxRowsInt[T int8 | uint8](t *testing.T, name string) {
	r := rand.New(rand.NewPCG(13, 14))
	for n := 0; n < 40; n++ {
		a, b := make([]T, n), make([]T, n)
		for i := range a {
			a[i], b[i] = T(r.IntN(256)), T(r.IntN(256))
		}
		got := make([]T, n)
		MaxRowsInt(got, a, b)
		for i := range got {
			if want := max(a[i], b[i]); got[i] != want {
				t.Fatalf("%s n=%d: element %d = %d, want %d", name, n, i, got[i], want)
			}
		}
		MaxRowsInt(a, a, b) // in place
		for i := range a {
			if a[i] != got[i] {
				t.Fatalf("%s n=%d in place: element %d = %d, want %d", name, n, i, a[i], got[i])
			}
		}
	}
}

func TestMaxRowsInt(t *testing.T) {
	testMaxRowsInt[uint8](t, "uint8")
	testMaxRowsInt[int8](t, "int8")
}
