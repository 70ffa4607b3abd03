package runtime

import (
	"math"
	"strings"
	"testing"
)

// Gradient checks and direct tests of the backward of
// InstanceNormalization (grad_instnorm.go).

func init() {
	r := randTensor
	in := func(seed uint64, shape ...int) []*Tensor {
		c := shape[1]
		return []*Tensor{r(seed, -2, 2, shape...), r(seed+1, 0.5, 1.5, c), r(seed+2, -1, 1, c)}
	}
	inst := func(eps float32) *Node {
		return gnnNode("InstanceNormalization", map[string]Attr{"epsilon": gnnFloat(eps)})
	}
	gradCases = append(gradCases,
		gradCase{name: "nn/InstanceNorm/2d", node: inst(1e-5), inputs: in(500, 2, 3, 2, 3)},
		gradCase{name: "nn/InstanceNorm/1d", node: inst(1e-5), inputs: in(510, 3, 2, 5)},
		gradCase{name: "nn/InstanceNorm/1d_even", node: inst(1e-5), inputs: in(515, 2, 2, 4)},
		gradCase{name: "nn/InstanceNorm/eps_large", node: inst(0.5), inputs: in(520, 2, 2, 2, 2)},
		gradCase{name: "nn/InstanceNorm/default_eps", node: gnnNode("InstanceNormalization", nil), inputs: in(530, 1, 3, 4)},
		gradCase{name: "nn/InstanceNorm/3d", node: inst(1e-3), inputs: in(540, 1, 2, 2, 2, 2)},
		gradCase{name: "nn/InstanceNorm/x_only", node: inst(1e-5), inputs: in(550, 2, 2, 3, 2), fixed: []int{1, 2}},
		gradCase{name: "nn/InstanceNorm/affine_only", node: inst(1e-5), inputs: in(560, 2, 3, 2, 2), fixed: []int{0}},
		gradCase{name: "nn/InstanceNorm/scale_only", node: inst(1e-5), inputs: in(570, 3, 2, 3), fixed: []int{0, 2}},
		gradCase{name: "nn/InstanceNorm/B_only", node: inst(1e-5), inputs: in(580, 2, 2, 2, 2), fixed: []int{0, 1}},
	)
}

// instNormRefGrad is a float64 reference of the InstanceNormalization
// backward for x [n c inner].
func instNormRefGrad(x, scale, dy []float32, n, c, inner int, eps float64) (dx, dscale, dbias []float64) {
	dx, dscale, dbias = make([]float64, len(x)), make([]float64, c), make([]float64, c)
	m := float64(inner)
	for p := 0; p < n*c; p++ {
		xs, gs := x[p*inner:(p+1)*inner], dy[p*inner:(p+1)*inner]
		var mean, v float64
		for _, e := range xs {
			mean += float64(e)
		}
		mean /= m
		for _, e := range xs {
			v += (float64(e) - mean) * (float64(e) - mean)
		}
		v /= m
		inv := 1 / math.Sqrt(v+eps)
		var sy, syx float64
		for i, g := range gs {
			sy += float64(g)
			syx += float64(g) * (float64(xs[i]) - mean) * inv
		}
		dbias[p%c] += sy
		dscale[p%c] += syx
		k := float64(scale[p%c]) * inv
		for i, g := range gs {
			xh := (float64(xs[i]) - mean) * inv
			dx[p*inner+i] = k * (float64(g) - sy/m - xh*syx/m)
		}
	}
	return dx, dscale, dbias
}

// TestInstanceNormGradDirect runs the backward kernel directly: it checks
// the result against a float64 reference, that gradients are added (not
// stored), that nil gradients are skipped, that the result is bit-identical
// for 1 and 2 threads, and that a call allocates nothing on one thread.
func TestInstanceNormGradDirect(t *testing.T) {
	tests := []struct {
		name  string
		shape []int
		eps   float32
	}{
		{"2d", []int{2, 3, 4, 5}, 1e-5},
		{"1d", []int{3, 2, 7}, 1e-3},
		{"many planes", []int{8, 16, 3, 3}, 1e-5},
		{"big plane", []int{2, 2, 100, 90}, 1e-5},
	}
	for ti, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			n, c, inner := tc.shape[0], tc.shape[1], NumElements(tc.shape[2:])
			seed := uint64(600 + 10*ti)
			x := randTensor(seed, -2, 2, tc.shape...)
			scale := randTensor(seed+1, 0.5, 1.5, c)
			bias := randTensor(seed+2, -1, 1, c)
			dy := randTensor(seed+3, -1, 1, tc.shape...)
			meta := []ValueMeta{{DType: Float32, Shape: tc.shape}, {DType: Float32, Shape: []int{c}}, {DType: Float32, Shape: []int{c}}}
			node := gnnNode("InstanceNormalization", map[string]Attr{"epsilon": gnnFloat(tc.eps)})
			gk, err := compileInstanceNormGrad(node, meta, meta[:1], []bool{true, true, true})
			if err != nil {
				t.Fatal(err)
			}
			wdx, wds, wdb := instNormRefGrad(x.F32, scale.F32, dy.F32, n, c, inner, float64(tc.eps))
			run := func(threads int, gradIn []*Tensor) {
				t.Helper()
				ctx := &ExecContext{Threads: threads}
				if err := gk.Backward(ctx, []*Tensor{x, scale, bias}, []*Tensor{nil}, []*Tensor{dy}, gradIn); err != nil {
					t.Fatal(err)
				}
			}
			ones := func(shape ...int) *Tensor {
				g := New(Float32, shape...)
				for i := range g.F32 {
					g.F32[i] = 1
				}
				return g
			}
			var first []*Tensor
			for _, threads := range []int{1, 2} {
				gi := []*Tensor{ones(tc.shape...), ones(c), ones(c)}
				run(threads, gi)
				for i, want := range [][]float64{wdx, wds, wdb} {
					for j, w := range want {
						if got := float64(gi[i].F32[j]) - 1; math.Abs(got-w) > 1e-4*math.Max(1, math.Abs(w)) {
							t.Fatalf("threads %d: gradient %d [%d] = %v, want %v", threads, i, j, got, w)
						}
					}
				}
				if first == nil {
					first = gi
					continue
				}
				for i := range gi {
					for j := range gi[i].F32 {
						if math.Float32bits(gi[i].F32[j]) != math.Float32bits(first[i].F32[j]) {
							t.Fatalf("gradient %d [%d] differs between 1 and 2 threads", i, j)
						}
					}
				}
			}
			// Only dx, then only dscale: the others are nil and skipped, the
			// requested one equals that of a full call from zero.
			full := []*Tensor{New(Float32, tc.shape...), New(Float32, c), New(Float32, c)}
			run(1, full)
			dxOnly := []*Tensor{New(Float32, tc.shape...), nil, nil}
			run(2, dxOnly)
			for j := range dxOnly[0].F32 {
				if dxOnly[0].F32[j] != full[0].F32[j] {
					t.Fatalf("dx only [%d] = %v, want %v", j, dxOnly[0].F32[j], full[0].F32[j])
				}
			}
			dsOnly := []*Tensor{nil, New(Float32, c), nil}
			run(1, dsOnly)
			for j := range dsOnly[1].F32 {
				if dsOnly[1].F32[j] != full[1].F32[j] {
					t.Fatalf("dscale only [%d] = %v, want %v", j, dsOnly[1].F32[j], full[1].F32[j])
				}
			}
			// A nil output gradient adds nothing.
			gi := []*Tensor{New(Float32, tc.shape...), New(Float32, c), New(Float32, c)}
			if err := gk.Backward(&ExecContext{Threads: 1}, []*Tensor{x, scale, bias}, []*Tensor{nil}, []*Tensor{nil}, gi); err != nil {
				t.Fatal(err)
			}
			for i := range gi {
				for _, v := range gi[i].F32 {
					if v != 0 {
						t.Fatalf("nil output gradient changed gradient %d", i)
					}
				}
			}
			ctx, ins, outs, gOut := &ExecContext{Threads: 1}, []*Tensor{x, scale, bias}, []*Tensor{nil}, []*Tensor{dy}
			allocs := testing.AllocsPerRun(5, func() {
				if err := gk.Backward(ctx, ins, outs, gOut, gi); err != nil {
					t.Fatal(err)
				}
			})
			if allocs != 0 {
				t.Fatalf("Backward allocated %v times per call on one thread", allocs)
			}
		})
	}
}

func TestInstanceNormGradErrors(t *testing.T) {
	f := func(s ...int) ValueMeta { return ValueMeta{DType: Float32, Shape: s} }
	node := gnnNode("InstanceNormalization", nil)
	tests := []struct {
		name string
		in   []ValueMeta
		want string
	}{
		{"rank", []ValueMeta{f(2, 3), f(3), f(3)}, "rank >= 3"},
		{"scale", []ValueMeta{f(1, 2, 3), f(3), f(2)}, "scale must have shape [2]"},
		{"bias", []ValueMeta{f(1, 2, 3), f(2), f(2, 1)}, "B must have shape [2]"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := compileInstanceNormGrad(node, tc.in, tc.in[:1], []bool{true, true, true})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want it to contain %q", err, tc.want)
			}
		})
	}
	// Mismatched run-time lengths are errors, not panics.
	in := []ValueMeta{f(1, 2, 3), f(2), f(2)}
	gk, err := compileInstanceNormGrad(node, in, in[:1], []bool{true, true, true})
	if err != nil {
		t.Fatal(err)
	}
	x, s, b := New(Float32, 1, 2, 3), New(Float32, 2), New(Float32, 2)
	err = gk.Backward(&ExecContext{Threads: 1}, []*Tensor{x, s, b}, []*Tensor{nil}, []*Tensor{New(Float32, 5)}, []*Tensor{New(Float32, 1, 2, 3), nil, nil})
	if err == nil || !strings.Contains(err.Error(), "output gradient") {
		t.Fatalf("short output gradient: error %v", err)
	}
}
