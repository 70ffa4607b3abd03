package runtime

import (
	"context"
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

// TestMaxPoolIntFastMatchesGeneral is TestMaxPoolFastMatchesGeneral for
// int8 and uint8 planes (the quantized models' MaxPool): the fast path must
// be taken on the same geometries and give exactly maxPlane's values.
func TestMaxPoolIntFastMatchesGeneral(t *testing.T) {
	tests := []struct {
		x       []int
		k, s    []int
		pads    []int
		ceil    bool
		useFast bool
	}{
		{x: []int{2, 6, 28, 28}, k: []int{2, 2}, s: []int{2, 2}, useFast: true},
		{x: []int{2, 16, 10, 10}, k: []int{2, 2}, s: []int{2, 2}, useFast: true},
		{x: []int{1, 2, 7, 81}, k: []int{2, 2}, s: []int{2, 2}, useFast: true},
		{x: []int{1, 2, 14, 14}, k: []int{3, 3}, s: []int{3, 3}, useFast: true},
		{x: []int{2, 2, 9, 11}, k: []int{3, 3}, s: []int{2, 2}, useFast: true},
		{x: []int{1, 2, 9, 9}, k: []int{3, 3}, s: []int{2, 2}, pads: []int{1, 0, 1, 0}, useFast: true},
		{x: []int{1, 1, 9, 9}, k: []int{3, 3}, s: []int{2, 2}, pads: []int{1, 1, 1, 1}},
		{x: []int{1, 2, 6, 7}, k: []int{2, 2}, s: []int{2, 2}, ceil: true},
		{x: []int{1, 2, 7, 8}, k: []int{2, 2}, s: []int{2, 2}, ceil: true, useFast: true},
		{x: []int{1, 1, 5, 33}, k: []int{4, 5}, s: []int{1, 3}, useFast: true},
		{x: []int{2, 3, 17}, k: []int{3}, s: []int{2}, useFast: true},
	}
	r := rand.New(rand.NewPCG(19, 20))
	for _, dt := range []DType{Uint8, Int8} {
		for _, tc := range tests {
			attrs := map[string]any{"kernel_shape": i64s(tc.k...), "strides": i64s(tc.s...)}
			if tc.pads != nil {
				attrs["pads"] = i64s(tc.pads...)
			}
			if tc.ceil {
				attrs["ceil_mode"] = 1
			}
			kern, out, err := compileMaxPool(nnNode("MaxPool", 1, attrs), []ValueMeta{{DType: dt, Shape: tc.x}})
			if err != nil {
				t.Fatal(err)
			}
			k := kern.(*poolKernel)
			x := make([]uint8, NumElements(tc.x))
			for i := range x {
				x[i] = uint8(r.IntN(256))
			}
			size := NumElements(out[0].Shape) / k.planes
			for p := 0; p < k.planes; p++ {
				xp := x[p*k.inSize : (p+1)*k.inSize]
				want, got := make([]uint8, size), make([]uint8, size)
				var ok bool
				if dt == Uint8 {
					maxPlane(k, xp, want, nil, 0, 0)
					ok = maxPlaneIntFast(k, xp, got, 0)
				} else {
					xs, ws, gs := asInt8(xp), make([]int8, size), make([]int8, size)
					maxPlane(k, xs, ws, nil, 0, math.MinInt8)
					ok = maxPlaneIntFast(k, xs, gs, math.MinInt8)
					want, got = asUint8(ws), asUint8(gs)
				}
				if ok != tc.useFast {
					t.Fatalf("%v %+v: fast path used = %v, want %v", dt, tc, ok, tc.useFast)
				} else if !ok {
					continue
				}
				for i := range want {
					if got[i] != want[i] {
						t.Fatalf("%v %+v plane %d: element %d = %d, want %d", dt, tc, p, i, got[i], want[i])
					}
				}
			}
		}
	}
}

// asUint8 copies int8 values into bytes (same bits).
func asUint8(s []int8) []uint8 {
	b := make([]uint8, len(s))
	for i, v := range s {
		b[i] = uint8(v)
	}
	return b
}

// asInt8 copies bytes into int8 values (same bits).
func asInt8(b []uint8) []int8 {
	s := make([]int8, len(b))
	for i, v := range b {
		s[i] = int8(v)
	}
	return s
}

// TestMaxPoolIntRun runs compiled int8 and uint8 MaxPool kernels (whole
// runs of planes pooled at once where the geometry allows, plane by plane
// otherwise) on 1 and 3 threads and compares every output with maxPlane.
func TestMaxPoolIntRun(t *testing.T) {
	tests := []struct {
		x    []int
		k, s []int
		flat bool
	}{
		{x: []int{3, 5, 12, 10}, k: []int{2, 2}, s: []int{2, 2}, flat: true},
		{x: []int{2, 6, 28, 28}, k: []int{2, 2}, s: []int{2, 2}, flat: true},
		{x: []int{2, 3, 8, 70}, k: []int{2, 2}, s: []int{2, 2}, flat: true},
		{x: []int{2, 3, 9, 11}, k: []int{2, 2}, s: []int{2, 2}}, // odd height: the last row is dropped
		{x: []int{2, 3, 9, 9}, k: []int{3, 3}, s: []int{2, 2}},
	}
	r := rand.New(rand.NewPCG(23, 24))
	for _, dt := range []DType{Uint8, Int8} {
		for _, tc := range tests {
			attrs := map[string]any{"kernel_shape": i64s(tc.k...), "strides": i64s(tc.s...)}
			kern, om, err := compileMaxPool(nnNode("MaxPool", 1, attrs), []ValueMeta{{DType: dt, Shape: tc.x}})
			if err != nil {
				t.Fatal(err)
			}
			k := kern.(*poolKernel)
			if got := k.maxPool2x2Planes(); got != tc.flat {
				t.Fatalf("%v %v: maxPool2x2Planes = %v, want %v", dt, tc.x, got, tc.flat)
			}
			x := New(dt, tc.x...)
			for i := range x.Len() {
				v := uint8(r.IntN(256))
				if dt == Uint8 {
					x.U8[i] = v
				} else {
					x.I8[i] = int8(v)
				}
			}
			for _, threads := range []int{1, 3} {
				y := New(dt, om[0].Shape...)
				ec := &ExecContext{Ctx: context.Background(), Threads: threads}
				if err := k.Run(ec, []*Tensor{x}, []*Tensor{y}); err != nil {
					t.Fatal(err)
				}
				for p := 0; p < k.planes; p++ {
					xs, ys := p*k.inSize, p*k.outSize
					if dt == Uint8 {
						want := make([]uint8, k.outSize)
						maxPlane(k, x.U8[xs:xs+k.inSize], want, nil, 0, 0)
						for i, w := range want {
							if y.U8[ys+i] != w {
								t.Fatalf("%v %v threads %d plane %d: element %d = %d, want %d", dt, tc.x, threads, p, i, y.U8[ys+i], w)
							}
						}
					} else {
						want := make([]int8, k.outSize)
						maxPlane(k, x.I8[xs:xs+k.inSize], want, nil, 0, math.MinInt8)
						for i, w := range want {
							if y.I8[ys+i] != w {
								t.Fatalf("%v %v threads %d plane %d: element %d = %d, want %d", dt, tc.x, threads, p, i, y.I8[ys+i], w)
							}
						}
					}
				}
			}
		}
	}
}
