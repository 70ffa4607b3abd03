package kernels

import (
	"math"
	"math/rand/v2"
	"testing"
)

// quantizeRef is QuantizeLinear's definition: NaN gives lo, then clamp to
// [lo, hi], round half to even, add zp.
func quantizeRef(v, s, lo, hi float32, zp int32) int32 {
	q := v / s
	if !(q >= lo) {
		q = lo
	} else if q > hi {
		q = hi
	}
	return int32(math.RoundToEven(float64(q))) + zp
}

func testQuantizeFloat32[T int8 | uint8](t *testing.T, name string, tlo, thi int32) {
	if !qconvAVX512 {
		if QuantizeFloat32(make([]T, 4), make([]float32, 4), 1, 0, 1, 0) {
			t.Fatal("QuantizeFloat32 reported true without AVX-512")
		}
		t.Skip("no AVX-512 on this CPU (or disabled): QuantizeFloat32 reports false and the callers' loops run")
	}
	r := rand.New(rand.NewPCG(21, 22))
	specials := []float32{float32(math.NaN()), float32(math.Inf(1)), float32(math.Inf(-1)), float32(math.Copysign(0, -1)), 0, 1e30, -1e30}
	for trial := 0; trial < 40; trial++ {
		zp := tlo + int32(r.IntN(int(thi-tlo+1)))
		s := float32(0.001 + r.Float64()*0.5)
		if trial%5 == 0 {
			s = -s // negative scales are legal
		}
		lo, hi := float32(tlo-zp), float32(thi-zp)
		if trial%7 == 0 { // a clamp narrower than the type (fused activation)
			lo, hi = max(lo, -3), min(hi, 40)
		}
		n := trial*13 + r.IntN(17) // lengths 0.., partial last blocks
		x := make([]float32, n)
		for i := range x {
			switch r.IntN(6) {
			case 0:
				x[i] = specials[r.IntN(len(specials))]
			case 1: // exact ties: (k + 0.5) * s
				x[i] = (float32(r.IntN(300)-150) + 0.5) * s
			default:
				x[i] = float32(r.NormFloat64()) * 200 * s
			}
		}
		y := make([]T, n+3)
		for i := range y {
			y[i] = T(0x5a)
		}
		if ok := QuantizeFloat32(y, x, s, lo, hi, zp); ok != (n > 0) {
			t.Fatalf("%s n=%d: reported %v", name, n, ok)
		}
		for i, v := range x {
			if want := quantizeRef(v, s, lo, hi, zp); int32(y[i]) != want {
				t.Fatalf("%s trial %d: x=%g s=%g zp=%d [%g, %g]: got %d, want %d", name, trial, v, s, zp, lo, hi, y[i], want)
			}
		}
		for i := n; i < len(y); i++ {
			if y[i] != T(0x5a) {
				t.Fatalf("%s n=%d: wrote past the end (index %d)", name, n, i)
			}
		}
	}
	if QuantizeFloat32(make([]T, 2), make([]float32, 3), 1, 0, 1, 0) {
		t.Fatalf("%s: a short destination was accepted", name)
	}
}

func TestQuantizeFloat32(t *testing.T) {
	t.Run("uint8", func(t *testing.T) { testQuantizeFloat32[uint8](t, "uint8", 0, 255) })
	t.Run("int8", func(t *testing.T) { testQuantizeFloat32[int8](t, "int8", -128, 127) })
}
