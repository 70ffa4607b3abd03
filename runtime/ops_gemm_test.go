package runtime

import (
	"strings"
	"testing"
)

// refGemm computes alpha*op(A)*op(B) + beta*C with C broadcast to [m n].
func refGemm(a, b, c *Tensor, transA, transB bool, alpha, beta float32) (int, int, []float32) {
	m, k := a.Shape[0], a.Shape[1]
	if transA {
		m, k = k, m
	}
	n := b.Shape[1]
	if transB {
		n = b.Shape[0]
	}
	y := make([]float32, m*n)
	for i := 0; i < m; i++ {
		for j := 0; j < n; j++ {
			var s float64
			for p := 0; p < k; p++ {
				ai, bi := i*a.Shape[1]+p, p*b.Shape[1]+j
				if transA {
					ai = p*a.Shape[1] + i
				}
				if transB {
					bi = j*b.Shape[1] + p
				}
				av, bv := a.F32[ai], b.F32[bi]
				s += float64(av) * float64(bv)
			}
			s *= float64(alpha)
			if c != nil {
				ci, cj := i, j
				cs := c.Shape
				for len(cs) < 2 {
					cs = append([]int{1}, cs...)
				}
				if cs[0] == 1 {
					ci = 0
				}
				if cs[1] == 1 {
					cj = 0
				}
				s += float64(beta) * float64(c.F32[ci*cs[1]+cj])
			}
			y[i*n+j] = float32(s)
		}
	}
	return m, n, y
}

func TestGemm(t *testing.T) {
	tests := []struct {
		name           string
		a, b, c        []int // c nil: no C
		transA, transB bool
		alpha, beta    float32
		relu           bool
	}{
		{name: "default no C", a: []int{3, 5}, b: []int{5, 4}},
		{name: "matrix C", a: []int{3, 5}, b: []int{5, 4}, c: []int{3, 4}},
		{name: "vector C", a: []int{2, 7}, b: []int{7, 6}, c: []int{6}},
		{name: "row C", a: []int{2, 7}, b: []int{7, 6}, c: []int{1, 6}},
		{name: "column C", a: []int{4, 7}, b: []int{7, 6}, c: []int{4, 1}},
		{name: "scalar C", a: []int{4, 3}, b: []int{3, 2}, c: []int{}},
		{name: "single elem C", a: []int{4, 3}, b: []int{3, 2}, c: []int{1}},
		{name: "transA", a: []int{6, 3}, b: []int{6, 4}, transA: true, c: []int{4}},
		{name: "transB", a: []int{3, 6}, b: []int{5, 6}, transB: true, c: []int{3, 5}},
		{name: "both trans alpha beta", a: []int{6, 3}, b: []int{5, 6}, transA: true, transB: true, c: []int{3, 5}, alpha: 0.25, beta: 0.35},
		{name: "beta zero", a: []int{2, 2}, b: []int{2, 2}, c: []int{2, 2}, beta: -0},
		{name: "large transB relu", a: []int{33, 129}, b: []int{65, 129}, transB: true, c: []int{65}, relu: true},
		{name: "linear layer", a: []int{8, 256}, b: []int{100, 256}, transB: true, c: []int{100}},
		{name: "k one", a: []int{5, 1}, b: []int{1, 9}},
		{name: "k zero", a: []int{3, 0}, b: []int{0, 4}, c: []int{4}},
		{name: "alpha tiny", a: []int{3, 4}, b: []int{4, 2}, c: []int{3, 2}, alpha: 1e-3, beta: 2},
	}
	for ti, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			attrs := map[string]any{}
			alpha, beta := float32(1), float32(1)
			if tc.alpha != 0 {
				alpha = tc.alpha
				attrs["alpha"] = alpha
			}
			if tc.beta != 0 || tc.name == "beta zero" {
				beta = tc.beta
				attrs["beta"] = beta
			}
			if tc.transA {
				attrs["transA"] = 1
			}
			if tc.transB {
				attrs["transB"] = 1
			}
			if tc.relu {
				attrs["activation"] = "Relu"
			}
			a := nnRand(uint64(ti)+2000, tc.a...)
			b := nnRand(uint64(ti)+3000, tc.b...)
			inputs := []*Tensor{a, b}
			var c *Tensor
			if tc.c != nil {
				c = nnRand(uint64(ti)+4000, tc.c...)
				inputs = append(inputs, c)
			}
			m, n, want := refGemm(a, b, c, tc.transA, tc.transB, alpha, beta)
			if tc.relu {
				for i, v := range want {
					want[i] = max(v, 0)
				}
			}
			nnCheckAll(t, nnNode("Gemm", len(inputs), attrs), inputs, []int{m, n}, want)
		})
	}
}

// refMatMul multiplies with numpy semantics.
func refMatMul(a, b *Tensor) ([]int, []float32) {
	as, bs := a.Shape, b.Shape
	if len(as) == 1 {
		as = []int{1, as[0]}
	}
	if len(bs) == 1 {
		bs = []int{bs[0], 1}
	}
	m, k, n := as[len(as)-2], as[len(as)-1], bs[len(bs)-1]
	ab, bb := as[:len(as)-2], bs[:len(bs)-2]
	r := max(len(ab), len(bb))
	pad := func(s []int) []int {
		for len(s) < r {
			s = append([]int{1}, s...)
		}
		return s
	}
	ab, bb = pad(ab), pad(bb)
	batch := make([]int, r)
	for i := range batch {
		batch[i] = max(ab[i], bb[i])
	}
	var y []float32
	idx := make([]int, r)
	ai, bi := make([]int, r), make([]int, r)
	for {
		for i := range idx {
			ai[i], bi[i] = idx[i], idx[i]
			if ab[i] == 1 {
				ai[i] = 0
			}
			if bb[i] == 1 {
				bi[i] = 0
			}
		}
		ao, bo := nnFlat(ai, ab)*m*k, nnFlat(bi, bb)*k*n
		for i := 0; i < m; i++ {
			for j := 0; j < n; j++ {
				var s float64
				for p := 0; p < k; p++ {
					s += float64(a.F32[ao+i*k+p]) * float64(b.F32[bo+p*n+j])
				}
				y = append(y, float32(s))
			}
		}
		if r == 0 || !nnNext(idx, batch) {
			break
		}
	}
	shape := append([]int{}, batch...)
	if len(a.Shape) > 1 {
		shape = append(shape, m)
	}
	if len(b.Shape) > 1 {
		shape = append(shape, n)
	}
	return shape, y
}

func TestMatMul(t *testing.T) {
	tests := []struct {
		name string
		a, b []int
	}{
		{"2d", []int{3, 4}, []int{4, 5}},
		{"2d large", []int{70, 130}, []int{130, 90}},
		{"1d x 2d", []int{4}, []int{4, 5}},
		{"2d x 1d", []int{3, 4}, []int{4}},
		{"1d x 1d", []int{6}, []int{6}},
		{"3d x 2d", []int{2, 3, 4}, []int{4, 5}},
		{"3d x 1d", []int{2, 3, 4}, []int{4}},
		{"1d x 3d", []int{4}, []int{2, 4, 5}},
		{"3d x 3d", []int{2, 3, 4}, []int{2, 4, 5}},
		{"4d", []int{2, 3, 4, 5}, []int{2, 3, 5, 6}},
		{"broadcast a", []int{1, 3, 4}, []int{3, 4, 5}},
		{"broadcast both", []int{2, 1, 3, 4}, []int{5, 4, 6}},
		{"broadcast mixed", []int{2, 1, 3, 4}, []int{1, 5, 4, 6}},
		{"2d x 3d", []int{3, 4}, []int{3, 4, 2}},
		{"batch large", []int{3, 40, 64}, []int{3, 64, 50}},
		{"k zero", []int{3, 0}, []int{0, 4}},
		{"m zero", []int{2, 0, 3}, []int{3, 4}},
	}
	for ti, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a := nnRand(uint64(ti)+5000, tc.a...)
			b := nnRand(uint64(ti)+6000, tc.b...)
			shape, want := refMatMul(a, b)
			nnCheckAll(t, nnNode("MatMul", 2, nil), []*Tensor{a, b}, shape, want)
		})
	}
}

func TestGemmMatMulErrors(t *testing.T) {
	f := func(s ...int) ValueMeta { return ValueMeta{DType: Float32, Shape: s} }
	tests := []struct {
		name  string
		op    string
		attrs map[string]any
		in    []ValueMeta
		want  string
	}{
		{"gemm K", "Gemm", nil, []ValueMeta{f(2, 3), f(4, 5)}, "inner dimensions differ"},
		{"gemm rank", "Gemm", nil, []ValueMeta{f(2, 3, 1), f(3, 5)}, "must be matrices"},
		{"gemm C", "Gemm", nil, []ValueMeta{f(2, 3), f(3, 5), f(3)}, "cannot be broadcast"},
		{"gemm C rank", "Gemm", nil, []ValueMeta{f(2, 3), f(3, 5), f(1, 2, 5)}, "rank <= 2"},
		{"gemm dtype", "Gemm", nil, []ValueMeta{{DType: Int32, Shape: []int{2, 3}}, f(3, 5)}, "float32"},
		{"matmul K", "MatMul", nil, []ValueMeta{f(2, 3), f(4, 5)}, "inner dimensions differ"},
		{"matmul batch", "MatMul", nil, []ValueMeta{f(2, 2, 3), f(3, 3, 5)}, "cannot be broadcast"},
		{"matmul scalar", "MatMul", nil, []ValueMeta{f(), f(3, 5)}, "rank >= 1"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := CompileNode(nnNode(tc.op, len(tc.in), tc.attrs), tc.in)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want it to contain %q", err, tc.want)
			}
		})
	}
}
