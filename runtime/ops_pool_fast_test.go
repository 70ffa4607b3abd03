package runtime

import (
	"math"
	"math/rand/v2"
	"testing"
)

// TestMaxPoolFastMatchesGeneral runs the fast float32 MaxPool path and the
// general maxPlane on the same planes (with NaN, infinities and signed
// zeros) and requires identical bits.
func TestMaxPoolFastMatchesGeneral(t *testing.T) {
	tests := []struct {
		x       []int
		k, s    []int
		pads    []int
		ceil    bool
		useFast bool
	}{
		{x: []int{1, 3, 28, 28}, k: []int{2, 2}, s: []int{2, 2}, useFast: true},
		{x: []int{1, 2, 14, 14}, k: []int{3, 3}, s: []int{3, 3}, useFast: true},
		{x: []int{2, 2, 9, 11}, k: []int{3, 3}, s: []int{2, 2}, useFast: true},
		{x: []int{1, 2, 7, 40}, k: []int{2, 2}, s: []int{2, 2}, useFast: true},
		{x: []int{1, 2, 9, 9}, k: []int{3, 3}, s: []int{2, 2}, pads: []int{1, 0, 1, 0}, useFast: true},
		{x: []int{1, 1, 9, 9}, k: []int{3, 3}, s: []int{2, 2}, pads: []int{1, 1, 1, 1}},
		{x: []int{1, 2, 6, 7}, k: []int{2, 2}, s: []int{2, 2}, ceil: true},
		{x: []int{1, 2, 6, 8}, k: []int{2, 2}, s: []int{2, 2}, ceil: true, useFast: true},
		{x: []int{1, 1, 5, 33}, k: []int{4, 5}, s: []int{1, 3}, useFast: true},
		{x: []int{2, 3, 17}, k: []int{3}, s: []int{2}, useFast: true},
		{x: []int{1, 2, 8, 8}, k: []int{1, 1}, s: []int{2, 2}, useFast: true},
	}
	r := rand.New(rand.NewPCG(9, 10))
	specials := []float32{float32(math.NaN()), float32(math.Copysign(0, -1)), 0, float32(math.Inf(1)), float32(math.Inf(-1))}
	for _, tc := range tests {
		attrs := map[string]any{"kernel_shape": i64s(tc.k...), "strides": i64s(tc.s...)}
		if tc.pads != nil {
			attrs["pads"] = i64s(tc.pads...)
		}
		if tc.ceil {
			attrs["ceil_mode"] = 1
		}
		n := nnNode("MaxPool", 1, attrs)
		in := []ValueMeta{{DType: Float32, Shape: tc.x}}
		kern, out, err := compileMaxPool(n, in)
		if err != nil {
			t.Fatal(err)
		}
		k := kern.(*poolKernel)
		x := make([]float32, NumElements(tc.x))
		for i := range x {
			if r.IntN(5) == 0 {
				x[i] = specials[r.IntN(len(specials))]
			} else {
				x[i] = float32(r.NormFloat64())
			}
		}
		size := NumElements(out[0].Shape) / k.planes
		for p := 0; p < k.planes; p++ {
			xp := x[p*k.inSize : (p+1)*k.inSize]
			want := make([]float32, size)
			maxPlane(k, xp, want, nil, 0, float32(math.Inf(-1)))
			got := make([]float32, size)
			if ok := maxPlaneF32Fast(k, xp, got); ok != tc.useFast {
				t.Fatalf("%+v: fast path used = %v, want %v", tc, ok, tc.useFast)
			} else if !ok {
				continue
			}
			for i := range want {
				if math.Float32bits(got[i]) != math.Float32bits(want[i]) && !(got[i] != got[i] && want[i] != want[i]) {
					t.Fatalf("%+v plane %d: element %d = %v, want %v", tc, p, i, got[i], want[i])
				}
			}
		}
	}
}
