package runtime

import (
	"context"
	"math"
	"math/rand"
	"strings"
	"testing"
)

// ewRun evaluates one node of type op on the inputs (nil: absent).
func ewRun(op string, attrs map[string]Attr, threads int, inputs ...*Tensor) ([]*Tensor, error) {
	n := &Node{Name: "t", OpType: op, Outputs: []string{"y"}, Attrs: attrs}
	for i, t := range inputs {
		name := ""
		if t != nil {
			name = "x" + string(rune('0'+i))
		}
		n.Inputs = append(n.Inputs, name)
	}
	return EvalNode(context.Background(), n, inputs, threads)
}

// ewMust evaluates and fails the test on error.
func ewMust(t *testing.T, op string, attrs map[string]Attr, inputs ...*Tensor) *Tensor {
	t.Helper()
	out, err := ewRun(op, attrs, 1, inputs...)
	if err != nil {
		t.Fatalf("%s: %v", op, err)
	}
	return out[0]
}

func ewF(data []float32, shape ...int) *Tensor { return FromFloat32(data, shape...) }

func ewI64(data []int64, shape ...int) *Tensor { return FromInt64(data, shape...) }

func ewI32(data []int32, shape ...int) *Tensor {
	t := New(Int32, shape...)
	copy(t.I32, data)
	return t
}

func ewI8(data []int8, shape ...int) *Tensor {
	t := New(Int8, shape...)
	copy(t.I8, data)
	return t
}

func ewU8(data []uint8, shape ...int) *Tensor {
	t := New(Uint8, shape...)
	copy(t.U8, data)
	return t
}

func ewB(data []bool, shape ...int) *Tensor {
	t := New(Bool, shape...)
	copy(t.B, data)
	return t
}

func ewAttrF(name string, v float32) map[string]Attr {
	return map[string]Attr{name: {Kind: AttrFloat, F: v}}
}

func ewAttrI(name string, v int64) map[string]Attr {
	return map[string]Attr{name: {Kind: AttrInt, I: v}}
}

// ewClose reports whether got is within 1e-6 relative (or 1e-7 absolute)
// of want, treating NaNs as equal.
func ewClose(got float32, want float64) bool {
	if math.IsNaN(want) {
		return got != got
	}
	if math.IsInf(want, 0) {
		return float64(got) == want
	}
	d := math.Abs(float64(got) - want)
	return d <= 1e-7 || d <= 1e-6*math.Abs(want)
}

// ewCheckTensor compares a tensor with the expected dtype, shape and values.
func ewCheckTensor(t *testing.T, name string, got *Tensor, dt DType, shape []int, want []float64) {
	t.Helper()
	if got.DType != dt || !SameShape(got.Shape, shape) {
		t.Fatalf("%s: got %v%v, want %v%v", name, got.DType, got.Shape, dt, shape)
	}
	if got.Len() != len(want) {
		t.Fatalf("%s: %d elements, want %d", name, got.Len(), len(want))
	}
	for i, w := range want {
		var ok bool
		if dt == Float32 {
			ok = ewClose(got.F32[i], w)
		} else {
			ok = got.Float64At(i) == w
		}
		if !ok {
			t.Errorf("%s: element %d = %v, want %v", name, i, got.Float64At(i), w)
		}
	}
}

// ewRefIndex maps output index o of out to the row-major index of an
// operand of shape s broadcast to out (the naive reference).
func ewRefIndex(o int, out, s []int) int {
	idx, mul := 0, 1
	for i := len(out) - 1; i >= 0; i-- {
		c := o % out[i]
		o /= out[i]
		j := i - (len(out) - len(s))
		if j >= 0 {
			if s[j] != 1 {
				idx += c * mul
			}
			mul *= s[j]
		}
	}
	return idx
}

func ewRandF(rng *rand.Rand, shape ...int) *Tensor {
	t := New(Float32, shape...)
	for i := range t.F32 {
		t.F32[i] = float32(rng.NormFloat64() * 2)
	}
	return t
}

// ---------------------------------------------------------------- broadcasting

func TestBroadcastShapes(t *testing.T) {
	tests := []struct {
		a, b, want []int
		err        bool
	}{
		{a: []int{2, 3}, b: []int{2, 3}, want: []int{2, 3}},
		{a: []int{2, 3}, b: []int{}, want: []int{2, 3}},
		{a: []int{}, b: []int{}, want: []int{}},
		{a: []int{2, 3, 4, 5}, b: []int{5}, want: []int{2, 3, 4, 5}},
		{a: []int{4, 5}, b: []int{2, 3, 4, 5}, want: []int{2, 3, 4, 5}},
		{a: []int{1, 4, 5}, b: []int{2, 1, 1}, want: []int{2, 4, 5}},
		{a: []int{3, 1}, b: []int{1, 4}, want: []int{3, 4}},
		{a: []int{0, 1}, b: []int{1, 4}, want: []int{0, 4}},
		{a: []int{2, 3}, b: []int{4}, err: true},
		{a: []int{2, 3}, b: []int{3, 3}, err: true},
		{a: []int{0}, b: []int{2}, err: true},
	}
	for i, tc := range tests {
		got, err := BroadcastShapes(tc.a, tc.b)
		if tc.err {
			if err == nil {
				t.Errorf("%d: BroadcastShapes(%v, %v) = %v, want an error", i, tc.a, tc.b, got)
			}
			continue
		}
		if err != nil || !SameShape(got, tc.want) {
			t.Errorf("%d: BroadcastShapes(%v, %v) = %v, %v; want %v", i, tc.a, tc.b, got, err, tc.want)
		}
	}
	_, err := BroadcastShapes([]int{2, 3}, []int{4})
	if err == nil || !strings.Contains(err.Error(), "cannot broadcast [2,3] with [4]") {
		t.Errorf("error message = %v", err)
	}
}

// TestBroadcastPlan checks every run of a plan against the naive index
// mapping, with one and two threads.
func TestBroadcastPlan(t *testing.T) {
	tests := []struct {
		out []int
		ops [][]int
	}{
		{[]int{2, 3}, [][]int{{2, 3}, {2, 3}}},
		{[]int{2, 3}, [][]int{{2, 3}, {}}},
		{[]int{2, 3}, [][]int{{}, {3}}},
		{[]int{2, 3, 4, 5}, [][]int{{2, 3, 4, 5}, {3, 1, 1}}},
		{[]int{2, 3, 4, 5}, [][]int{{1, 3, 1, 1}, {2, 3, 4, 5}}},
		{[]int{3, 4}, [][]int{{3, 1}, {1, 4}}},
		{[]int{2, 1, 3}, [][]int{{2, 1, 1}, {1, 1, 3}, {2, 1, 3}}},
		{[]int{1, 1, 1}, [][]int{{1}, {}}},
		{[]int{}, [][]int{{}, {}}},
		{[]int{5, 1, 7, 1}, [][]int{{5, 1, 1, 1}, {7, 1}, {1}}},
		{[]int{3, 0, 2}, [][]int{{3, 1, 2}, {2}}},
		{[]int{4, 3, 130, 130}, [][]int{{4, 3, 130, 130}, {3, 1, 1}}}, // big: parallel split
		{[]int{300, 257}, [][]int{{300, 1}, {257}, {300, 257}}},       // big, odd run length
		{[]int{2, 2, 2, 2, 2, 2, 2, 2, 2, 3}, [][]int{{2, 1, 2, 1, 2, 1, 2, 1, 2, 3}, {3}}},
	}
	for i, tc := range tests {
		p, err := NewBroadcastPlan(tc.out, tc.ops...)
		if err != nil {
			t.Fatalf("%d: %v", i, err)
		}
		n := NumElements(tc.out)
		for _, threads := range []int{1, 2} {
			seen := make([]int, n)
			idx := make([][]int, len(tc.ops))
			for k := range idx {
				idx[k] = make([]int, n)
			}
			p.ForEach(threads, func(o, a, b, c, cnt int) {
				off := [3]int{a, b, c}
				for j := 0; j < cnt; j++ {
					seen[o+j]++
					for k := range tc.ops {
						idx[k][o+j] = off[k] + j*p.InnerStride(k)
					}
				}
			})
			for o := 0; o < n; o++ {
				if seen[o] != 1 {
					t.Fatalf("%d/%dT: output %d visited %d times", i, threads, o, seen[o])
				}
				for k, s := range tc.ops {
					if want := ewRefIndex(o, tc.out, s); idx[k][o] != want {
						t.Fatalf("%d/%dT: output %d operand %d index %d, want %d", i, threads, o, k, idx[k][o], want)
					}
				}
			}
		}
	}
	if _, err := NewBroadcastPlan([]int{2, 3}, []int{4}); err == nil {
		t.Error("plan of [4] to [2,3] succeeded")
	}
	if _, err := NewBroadcastPlan([]int{3}, []int{2, 3}); err == nil {
		t.Error("plan of [2,3] to [3] succeeded")
	}
	if _, err := NewBroadcastPlan([]int{3}, []int{3}, []int{3}, []int{3}, []int{3}); err == nil {
		t.Error("plan with 4 operands succeeded")
	}
}

// ---------------------------------------------------------------- binary

func TestArithmeticFloat(t *testing.T) {
	ops := map[string]func(a, b float64) float64{
		"Add": func(a, b float64) float64 { return a + b },
		"Sub": func(a, b float64) float64 { return a - b },
		"Mul": func(a, b float64) float64 { return a * b },
		"Div": func(a, b float64) float64 { return a / b },
		"Pow": func(a, b float64) float64 { return math.Pow(math.Abs(a), b) },
		"Max": math.Max,
		"Min": math.Min,
		"Sum": func(a, b float64) float64 { return a + b },
	}
	shapes := [][2][]int{
		{{2, 3}, {2, 3}},
		{{2, 3}, {}},
		{{}, {2, 3}},
		{{2, 3, 4, 5}, {3, 1, 1}},
		{{2, 3, 4, 5}, {5}},
		{{3, 1}, {1, 4}},
		{{1}, {2, 1, 3}},
		{{2, 64, 33, 33}, {64, 1, 1}}, // large: runs in parallel
	}
	rng := rand.New(rand.NewSource(1))
	for op, f := range ops {
		for _, sh := range shapes {
			a, b := ewRandF(rng, sh[0]...), ewRandF(rng, sh[1]...)
			if op == "Pow" {
				for i, v := range a.F32 {
					a.F32[i] = float32(math.Abs(float64(v)))
				}
			}
			out, _ := BroadcastShapes(sh[0], sh[1])
			want := make([]float64, NumElements(out))
			for o := range want {
				x, y := float64(a.F32[ewRefIndex(o, out, sh[0])]), float64(b.F32[ewRefIndex(o, out, sh[1])])
				want[o] = float64(float32(f(x, y)))
			}
			for _, threads := range []int{1, 2} {
				got, err := ewRun(op, nil, threads, a, b)
				if err != nil {
					t.Fatalf("%s %v: %v", op, sh, err)
				}
				ewCheckTensor(t, op+ewShape(sh[0])+ewShape(sh[1]), got[0], Float32, out, want)
			}
		}
	}
}

func TestArithmeticInt(t *testing.T) {
	tests := []struct {
		op   string
		a, b *Tensor
		want *Tensor
	}{
		{"Add", ewI64([]int64{1, 2, 3, 4}, 2, 2), ewI64([]int64{10, 20}, 2), ewI64([]int64{11, 22, 13, 24}, 2, 2)},
		{"Sub", ewI32([]int32{1, 2, 3}, 3), ewI32([]int32{5}, 1), ewI32([]int32{-4, -3, -2}, 3)},
		{"Mul", ewI8([]int8{100, -3}, 2), ewI8([]int8{2, 3}, 2), ewI8([]int8{-56, -9}, 2)},
		{"Div", ewI64([]int64{7, -7, 6}, 3), ewI64([]int64{2}), ewI64([]int64{3, -3, 3}, 3)},
		{"Div", ewU8([]uint8{255, 10}, 2), ewU8([]uint8{2, 3}, 2), ewU8([]uint8{127, 3}, 2)},
		{"Sub", ewU8([]uint8{1}, 1), ewU8([]uint8{2}, 1), ewU8([]uint8{255}, 1)},
		{"Min", ewI32([]int32{1, 5, 3}, 3), ewI32([]int32{4}, 1), ewI32([]int32{1, 4, 3}, 3)},
		{"Max", ewU8([]uint8{1, 5, 3}, 3), ewU8([]uint8{4}, 1), ewU8([]uint8{4, 5, 4}, 3)},
		{"Pow", ewI64([]int64{2, 3, -2}, 3), ewI64([]int64{10}), ewI64([]int64{1024, 59049, 1024}, 3)},
		{"Pow", ewI32([]int32{2, 4}, 2), ewF([]float32{0.5}, 1), ewI32([]int32{1, 2}, 2)},
		{"Pow", ewF([]float32{2, 4}, 2), ewI64([]int64{3}), ewF([]float32{8, 64}, 2)},
		{"Pow", ewF([]float32{-3, 1.5}, 2), ewF([]float32{2}), ewF([]float32{9, 2.25}, 2)}, // square fast path
		{"Pow", ewF([]float32{2}, 1), ewF([]float32{2, 3}, 2), ewF([]float32{4, 8}, 2)},
	}
	for i, tc := range tests {
		got := ewMust(t, tc.op, nil, tc.a, tc.b)
		want := make([]float64, tc.want.Len())
		for j := range want {
			want[j] = tc.want.Float64At(j)
		}
		ewCheckTensor(t, tc.op+string(rune('0'+i)), got, tc.want.DType, tc.want.Shape, want)
	}
}

func TestModAndPRelu(t *testing.T) {
	a := ewI64([]int64{-4, 7, 5, 4, -7, 8}, 6)
	b := ewI64([]int64{2, -3, 8, -2, 3, 5}, 6)
	ewCheckTensor(t, "mod", ewMust(t, "Mod", nil, a, b), Int64, []int{6}, []float64{0, -2, 5, 0, 2, 3})
	ewCheckTensor(t, "fmod", ewMust(t, "Mod", ewAttrI("fmod", 1), a, b), Int64, []int{6}, []float64{0, 1, 5, 0, -1, 3})
	fa := ewF([]float32{-4.3, 7.2, 5.0, 4.3, -7.2, 8.0}, 6)
	fb := ewF([]float32{2.1, -3.4, 8.0, -2.1, 3.4, 5.0}, 6)
	want := make([]float64, 6)
	for i := range want {
		want[i] = float64(float32(math.Mod(float64(fa.F32[i]), float64(fb.F32[i]))))
	}
	ewCheckTensor(t, "fmod float", ewMust(t, "Mod", ewAttrI("fmod", 1), fa, fb), Float32, []int{6}, want)
	ewCheckTensor(t, "mod uint8", ewMust(t, "Mod", nil, ewU8([]uint8{7, 200}, 2), ewU8([]uint8{3}, 1)), Uint8, []int{2}, []float64{1, 2})

	x := ewF([]float32{-1, 2, -3, 4, -5, 6}, 1, 2, 3)
	slope := ewF([]float32{0.1, 0.5}, 2, 1)
	ewCheckTensor(t, "prelu", ewMust(t, "PRelu", nil, x, slope), Float32, []int{1, 2, 3},
		[]float64{-0.1, 2, -0.3, 4, -2.5, 6})
}

func TestVariadic(t *testing.T) {
	a := ewF([]float32{3, 2, 1}, 3)
	b := ewF([]float32{1, 4, 4}, 3)
	c := ewF([]float32{2, 5, 3}, 3)
	tests := []struct {
		op   string
		in   []*Tensor
		want []float64
	}{
		{"Max", []*Tensor{a, b, c}, []float64{3, 5, 4}},
		{"Min", []*Tensor{a, b, c}, []float64{1, 2, 1}},
		{"Sum", []*Tensor{a, b, c}, []float64{6, 11, 8}},
		{"Mean", []*Tensor{a, b, c}, []float64{2, 11.0 / 3, 8.0 / 3}},
		{"Max", []*Tensor{a}, []float64{3, 2, 1}},
		{"Mean", []*Tensor{a}, []float64{3, 2, 1}},
		{"Sum", []*Tensor{a, b}, []float64{4, 6, 5}},
	}
	for _, tc := range tests {
		ewCheckTensor(t, tc.op, ewMust(t, tc.op, nil, tc.in...), Float32, []int{3}, tc.want)
	}
	// Broadcasting across three inputs, the largest last.
	got := ewMust(t, "Sum", nil, ewF([]float32{1}, 1), ewF([]float32{10, 20}, 2, 1), ewF([]float32{100, 200, 300}, 1, 3))
	ewCheckTensor(t, "sum bcast", got, Float32, []int{2, 3}, []float64{111, 211, 311, 121, 221, 321})
	nan := float32(math.NaN())
	got = ewMust(t, "Max", nil, ewF([]float32{nan, 1}, 2), ewF([]float32{1, nan}, 2))
	ewCheckTensor(t, "max nan", got, Float32, []int{2}, []float64{math.NaN(), math.NaN()})
	got = ewMust(t, "Max", nil, ewI64([]int64{1, 9}, 2), ewI64([]int64{5}, 1))
	ewCheckTensor(t, "max int", got, Int64, []int{2}, []float64{5, 9})
}

func TestCompareAndLogic(t *testing.T) {
	a := ewF([]float32{1, 2, 3, 4}, 2, 2)
	b := ewF([]float32{2, 3}, 2)
	tests := []struct {
		op   string
		x, y *Tensor
		want []float64
	}{
		{"Equal", a, ewF([]float32{2}, 1), []float64{0, 1, 0, 0}},
		{"Greater", a, b, []float64{0, 0, 1, 1}},
		{"Less", a, b, []float64{1, 1, 0, 0}},
		{"GreaterOrEqual", a, b, []float64{0, 0, 1, 1}},
		{"LessOrEqual", a, b, []float64{1, 1, 0, 0}},
		{"Equal", ewI64([]int64{1, 2, 3, 4}, 2, 2), ewI64([]int64{3, 4}, 2), []float64{0, 0, 1, 1}},
		{"Equal", ewB([]bool{true, false}, 2), ewB([]bool{true}, 1), []float64{1, 0}},
		{"And", ewB([]bool{true, false, true, false}, 2, 2), ewB([]bool{true, false}, 2), []float64{1, 0, 1, 0}},
		{"Or", ewB([]bool{true, false, true, false}, 2, 2), ewB([]bool{false, false}, 2), []float64{1, 0, 1, 0}},
		{"Xor", ewB([]bool{true, false, true, false}, 2, 2), ewB([]bool{true, true}, 2), []float64{0, 1, 0, 1}},
	}
	for _, tc := range tests {
		shape, _ := BroadcastShapes(tc.x.Shape, tc.y.Shape)
		ewCheckTensor(t, tc.op, ewMust(t, tc.op, nil, tc.x, tc.y), Bool, shape, tc.want)
	}
	ewCheckTensor(t, "Not", ewMust(t, "Not", nil, ewB([]bool{true, false}, 2)), Bool, []int{2}, []float64{0, 1})
}

// ---------------------------------------------------------------- unary

func TestUnaryFloat(t *testing.T) {
	x := []float32{-5, -1.5, -0.3, -1e-4, 0, 1e-4, 0.25, 1, 2.5, 7, 30}
	sig := func(v float64) float64 { return 1 / (1 + math.Exp(-v)) }
	hsig := func(v, a, b float64) float64 { return math.Max(0, math.Min(1, a*v+b)) }
	tests := []struct {
		op    string
		attrs map[string]Attr
		f     func(float64) float64
	}{
		{"Sqrt", nil, math.Sqrt},
		{"Exp", nil, math.Exp},
		{"Log", nil, math.Log},
		{"Erf", nil, math.Erf},
		{"Floor", nil, math.Floor},
		{"Ceil", nil, math.Ceil},
		{"Round", nil, math.RoundToEven},
		{"Neg", nil, func(v float64) float64 { return -v }},
		{"Abs", nil, math.Abs},
		{"Reciprocal", nil, func(v float64) float64 { return 1 / v }},
		{"Relu", nil, func(v float64) float64 { return math.Max(v, 0) }},
		{"LeakyRelu", nil, func(v float64) float64 { return math.Max(v, 0) + 0.01*math.Min(v, 0) }},
		{"LeakyRelu", ewAttrF("alpha", 0.2), func(v float64) float64 { return math.Max(v, 0) + 0.2*math.Min(v, 0) }},
		{"Elu", nil, func(v float64) float64 { return math.Max(v, 0) + math.Min(0, math.Expm1(v)) }},
		{"Elu", ewAttrF("alpha", 2), func(v float64) float64 { return math.Max(v, 0) + 2*math.Min(0, math.Expm1(v)) }},
		{"Selu", nil, func(v float64) float64 {
			const a, g = 1.67326319217681884765625, 1.05070102214813232421875
			if v > 0 {
				return g * v
			}
			return g * a * math.Expm1(v)
		}},
		{"Sigmoid", nil, sig},
		{"Tanh", nil, math.Tanh},
		{"HardSigmoid", nil, func(v float64) float64 { return hsig(v, 0.2, 0.5) }},
		{"HardSigmoid", map[string]Attr{"alpha": {Kind: AttrFloat, F: 0.5}, "beta": {Kind: AttrFloat, F: 0.6}},
			func(v float64) float64 { return hsig(v, 0.5, 0.6) }},
		{"HardSwish", nil, func(v float64) float64 { return v * hsig(v, 1.0/6, 0.5) }},
		{"Softplus", nil, func(v float64) float64 { return math.Log1p(math.Exp(v)) }},
		{"Softsign", nil, func(v float64) float64 { return v / (1 + math.Abs(v)) }},
		{"Sign", nil, func(v float64) float64 {
			if v == 0 {
				return 0
			}
			return math.Copysign(1, v)
		}},
	}
	for _, tc := range tests {
		got := ewMust(t, tc.op, tc.attrs, ewF(append([]float32{}, x...), len(x)))
		want := make([]float64, len(x))
		for i, v := range x {
			want[i] = tc.f(float64(v))
		}
		// Elu and Selu follow the float32 reference formula exp(x)-1, which
		// loses relative accuracy near 0: compare those loosely there.
		if tc.op == "Elu" || tc.op == "Selu" {
			for i, v := range x {
				if math.Abs(float64(v)) < 0.01 && math.Abs(float64(got.F32[i])-want[i]) < 1e-7*math.Max(1, math.Abs(float64(tc.attrs["alpha"].F))) {
					want[i] = float64(got.F32[i])
				}
			}
		}
		ewCheckTensor(t, tc.op, got, Float32, []int{len(x)}, want)
	}
	// Extreme inputs stay finite and saturate.
	big := ewF([]float32{-1000, 1000, float32(math.Inf(-1)), float32(math.Inf(1))}, 4)
	ewCheckTensor(t, "sigmoid extremes", ewMust(t, "Sigmoid", nil, big), Float32, []int{4}, []float64{0, 1, 0, 1})
	ewCheckTensor(t, "softplus extremes", ewMust(t, "Softplus", nil, big), Float32, []int{4}, []float64{0, 1000, 0, math.Inf(1)})
	nan := ewF([]float32{float32(math.NaN()), 1, float32(math.Inf(1)), float32(math.Inf(-1))}, 4)
	ewCheckTensor(t, "isnan", ewMust(t, "IsNaN", nil, nan), Bool, []int{4}, []float64{1, 0, 0, 0})
	ewCheckTensor(t, "isinf", ewMust(t, "IsInf", nil, nan), Bool, []int{4}, []float64{0, 0, 1, 1})
	ewCheckTensor(t, "isinf pos", ewMust(t, "IsInf", ewAttrI("detect_negative", 0), nan), Bool, []int{4}, []float64{0, 0, 1, 0})
	ewCheckTensor(t, "relu nan", ewMust(t, "Relu", nil, nan), Float32, []int{4}, []float64{math.NaN(), 1, math.Inf(1), 0})
}

func TestUnaryInt(t *testing.T) {
	tests := []struct {
		op   string
		in   *Tensor
		want []float64
	}{
		{"Neg", ewI64([]int64{-3, 0, 5}, 3), []float64{3, 0, -5}},
		{"Neg", ewI8([]int8{-128, 1, 2}, 3), []float64{-128, -1, -2}},
		{"Abs", ewI32([]int32{-3, 0, 5}, 3), []float64{3, 0, 5}},
		{"Abs", ewU8([]uint8{3, 0, 255}, 3), []float64{3, 0, 255}},
		{"Relu", ewI32([]int32{-3, 0, 5}, 3), []float64{0, 0, 5}},
		{"Sign", ewI64([]int64{-3, 0, 5}, 3), []float64{-1, 0, 1}},
		{"Sign", ewU8([]uint8{3, 0, 5}, 3), []float64{1, 0, 1}},
	}
	for _, tc := range tests {
		ewCheckTensor(t, tc.op, ewMust(t, tc.op, nil, tc.in), tc.in.DType, []int{3}, tc.want)
	}
}

func TestClip(t *testing.T) {
	x := ewF([]float32{-2, -1, 0, 1, 2, float32(math.NaN())}, 2, 3)
	lo, hi := ewF([]float32{-1}), ewF([]float32{1.5})
	tests := []struct {
		name    string
		in      []*Tensor
		want    []float64
		dtype   DType
		wantErr string
	}{
		{"both", []*Tensor{x, lo, hi}, []float64{-1, -1, 0, 1, 1.5, math.NaN()}, Float32, ""},
		{"min only", []*Tensor{x, lo}, []float64{-1, -1, 0, 1, 2, math.NaN()}, Float32, ""},
		{"max only", []*Tensor{x, nil, hi}, []float64{-2, -1, 0, 1, 1.5, math.NaN()}, Float32, ""},
		{"none", []*Tensor{x}, []float64{-2, -1, 0, 1, 2, math.NaN()}, Float32, ""},
		{"inverted", []*Tensor{x, ewF([]float32{2}), ewF([]float32{1})}, []float64{1, 1, 1, 1, 1, math.NaN()}, Float32, ""},
		{"relu6 shape [1]", []*Tensor{ewF([]float32{-1, 3, 7}, 3), ewF([]float32{0}, 1), ewF([]float32{6}, 1)}, []float64{0, 3, 6}, Float32, ""},
		{"int8", []*Tensor{ewI8([]int8{-128, 0, 127}, 3), ewI8([]int8{-5}), nil}, []float64{-5, 0, 127}, Int8, ""},
		{"int64", []*Tensor{ewI64([]int64{-9, 0, 9}, 3), nil, ewI64([]int64{3})}, []float64{-9, 0, 3}, Int64, ""},
		{"dtype", []*Tensor{x, ewI64([]int64{0})}, nil, 0, "dtype"},
		{"not scalar", []*Tensor{x, ewF([]float32{0, 1}, 2)}, nil, 0, "scalar"},
	}
	for _, tc := range tests {
		out, err := ewRun("Clip", nil, 1, tc.in...)
		if tc.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("%s: error %v, want one containing %q", tc.name, err, tc.wantErr)
			}
			continue
		}
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		ewCheckTensor(t, tc.name, out[0], tc.dtype, tc.in[0].Shape, tc.want)
	}
}

// ---------------------------------------------------------------- softmax

func TestSoftmax(t *testing.T) {
	rng := rand.New(rand.NewSource(2))
	shape := []int{2, 3, 4}
	x := ewRandF(rng, shape...)
	x.F32[0] = 1000 // large values must not overflow
	for _, log := range []bool{false, true} {
		op := "Softmax"
		if log {
			op = "LogSoftmax"
		}
		for _, axis := range []int{-3, -2, -1, 0, 1, 2} {
			a := (axis + 3) % 3
			outer, n, inner := NumElements(shape[:a]), shape[a], NumElements(shape[a+1:])
			want := make([]float64, len(x.F32))
			for o := 0; o < outer; o++ {
				for i := 0; i < inner; i++ {
					m := math.Inf(-1)
					for j := 0; j < n; j++ {
						m = math.Max(m, float64(x.F32[(o*n+j)*inner+i]))
					}
					s := 0.0
					for j := 0; j < n; j++ {
						s += math.Exp(float64(x.F32[(o*n+j)*inner+i]) - m)
					}
					for j := 0; j < n; j++ {
						v := float64(x.F32[(o*n+j)*inner+i]) - m
						if log {
							want[(o*n+j)*inner+i] = v - math.Log(s)
						} else {
							want[(o*n+j)*inner+i] = math.Exp(v) / s
						}
					}
				}
			}
			got := ewMust(t, op, ewAttrI("axis", int64(axis)), x)
			ewCheckTensor(t, op, got, Float32, shape, want)
		}
	}
	// Default axis is the last one.
	got := ewMust(t, "Softmax", nil, ewF([]float32{0, 0, 1, 1}, 2, 2))
	ewCheckTensor(t, "default axis", got, Float32, []int{2, 2}, []float64{0.5, 0.5, 0.5, 0.5})
	got = ewMust(t, "Softmax", nil, ewF([]float32{1, 2, 3}, 3))
	e := []float64{math.Exp(-2), math.Exp(-1), 1}
	sum := e[0] + e[1] + e[2]
	ewCheckTensor(t, "1-D", got, Float32, []int{3}, []float64{e[0] / sum, e[1] / sum, e[2] / sum})
}

// ---------------------------------------------------------------- Where, Expand, Cast

func TestWhere(t *testing.T) {
	c := ewB([]bool{true, false, true, false}, 2, 2)
	x := ewF([]float32{1, 2}, 2)
	y := ewF([]float32{-1}, 1)
	ewCheckTensor(t, "where", ewMust(t, "Where", nil, c, x, y), Float32, []int{2, 2}, []float64{1, -1, 1, -1})
	c2 := ewB([]bool{true, false}, 2, 1)
	xi := ewI64([]int64{1, 2, 3}, 3)
	yi := ewI64([]int64{7, 8, 9, 10, 11, 12}, 2, 3)
	ewCheckTensor(t, "where int", ewMust(t, "Where", nil, c2, xi, yi), Int64, []int{2, 3}, []float64{1, 2, 3, 10, 11, 12})
}

func TestExpand(t *testing.T) {
	tests := []struct {
		in    *Tensor
		shape []int64
		want  []int
		vals  []float64
	}{
		{ewF([]float32{1, 2, 3}, 3, 1), []int64{2, 1, 6}, []int{2, 3, 6}, nil},
		{ewF([]float32{1, 2, 3}, 3, 1), []int64{3, 4}, []int{3, 4}, []float64{1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3}},
		{ewF([]float32{1, 2, 3}, 3, 1), []int64{1}, []int{3, 1}, []float64{1, 2, 3}}, // shape smaller than input
		{ewF([]float32{5}), []int64{2, 2}, []int{2, 2}, []float64{5, 5, 5, 5}},
	}
	for i, tc := range tests {
		got := ewMust(t, "Expand", nil, tc.in, ewI64(tc.shape, len(tc.shape)))
		if !SameShape(got.Shape, tc.want) {
			t.Errorf("%d: shape %v, want %v", i, got.Shape, tc.want)
			continue
		}
		if tc.vals != nil {
			ewCheckTensor(t, "expand", got, Float32, tc.want, tc.vals)
		}
	}
	b := ewMust(t, "Expand", nil, ewB([]bool{true, false}, 2), ewI64([]int64{2, 2}, 2))
	ewCheckTensor(t, "expand bool", b, Bool, []int{2, 2}, []float64{1, 0, 1, 0})
}

func TestCast(t *testing.T) {
	f := ewF([]float32{-2.7, -0.5, 0, 1.9, 300}, 5)
	tests := []struct {
		in   *Tensor
		to   int64
		dt   DType
		want []float64
	}{
		{f, onnxInt64, Int64, []float64{-2, 0, 0, 1, 300}},
		{f, onnxInt32, Int32, []float64{-2, 0, 0, 1, 300}},
		{f, onnxBool, Bool, []float64{1, 1, 0, 1, 1}},
		{f, onnxDouble, Float32, []float64{-2.7, -0.5, 0, 1.9, 300}},
		{f, onnxFloat, Float32, []float64{-2.7, -0.5, 0, 1.9, 300}},
		{ewI64([]int64{-1, 0, 1, 2, 300}, 5), onnxFloat, Float32, []float64{-1, 0, 1, 2, 300}},
		{ewI64([]int64{-1, 0, 1, 2, 300}, 5), onnxUint8, Uint8, []float64{255, 0, 1, 2, 44}},
		{ewI64([]int64{-1, 0, 1, 2, 300}, 5), onnxInt8, Int8, []float64{-1, 0, 1, 2, 44}},
		{ewI32([]int32{-1, 0, 1, 2, 3}, 5), onnxBool, Bool, []float64{1, 0, 1, 1, 1}},
		{ewB([]bool{true, false, true, true, false}, 5), onnxFloat, Float32, []float64{1, 0, 1, 1, 0}},
		{ewB([]bool{true, false, true, true, false}, 5), onnxInt64, Int64, []float64{1, 0, 1, 1, 0}},
		{ewB([]bool{true, false, true, true, false}, 5), onnxBool, Bool, []float64{1, 0, 1, 1, 0}},
		{ewU8([]uint8{0, 1, 128, 255, 7}, 5), onnxFloat, Float32, []float64{0, 1, 128, 255, 7}},
	}
	for i, tc := range tests {
		got := ewMust(t, "Cast", ewAttrI("to", tc.to), tc.in)
		ewCheckTensor(t, "cast"+string(rune('a'+i)), got, tc.dt, []int{5}, tc.want)
	}
	got := ewMust(t, "CastLike", nil, ewI64([]int64{1, 2}, 2), ewF([]float32{0}, 1))
	ewCheckTensor(t, "castlike", got, Float32, []int{2}, []float64{1, 2})
}

// ---------------------------------------------------------------- errors

func TestElementwiseErrors(t *testing.T) {
	f23 := ewF(make([]float32, 6), 2, 3)
	tests := []struct {
		op      string
		attrs   map[string]Attr
		in      []*Tensor
		wantErr string
	}{
		{"Add", nil, []*Tensor{f23, ewF(make([]float32, 4), 4)}, "cannot broadcast [2,3] with [4]"},
		{"Add", nil, []*Tensor{f23, ewI64([]int64{1})}, "different dtypes"},
		{"Add", nil, []*Tensor{ewB([]bool{true}, 1), ewB([]bool{true}, 1)}, "dtype bool"},
		{"Greater", nil, []*Tensor{ewB([]bool{true}, 1), ewB([]bool{true}, 1)}, "dtype bool"},
		{"And", nil, []*Tensor{f23, f23}, "dtype float32"},
		{"Add", nil, []*Tensor{f23}, "needs at least 2 inputs"},
		{"Exp", nil, []*Tensor{ewI64([]int64{1})}, "dtype int64"},
		{"Neg", nil, []*Tensor{ewU8([]uint8{1}, 1)}, "dtype uint8"},
		{"Not", nil, []*Tensor{f23}, "dtype float32"},
		{"Cast", ewAttrI("to", onnxFloat16), []*Tensor{f23}, "FLOAT16"},
		{"Cast", ewAttrI("to", onnxString), []*Tensor{f23}, "STRING"},
		{"Cast", nil, []*Tensor{f23}, "\"to\""},
		{"Softmax", ewAttrI("axis", 2), []*Tensor{f23}, "axis 2 is out of range"},
		{"Softmax", nil, []*Tensor{ewI64([]int64{1}, 1)}, "dtype int64"},
		{"Mod", nil, []*Tensor{f23, f23}, "fmod must be 1"},
		{"Mod", nil, []*Tensor{ewI64([]int64{1, 2}, 2), ewI64([]int64{1, 0}, 2)}, "division by zero"},
		{"Div", nil, []*Tensor{ewI32([]int32{1, 2}, 2), ewI32([]int32{0}, 1)}, "division by zero"},
		{"Where", nil, []*Tensor{f23, f23, f23}, "must be bool"},
		{"Where", nil, []*Tensor{ewB([]bool{true}, 1), f23, ewI64([]int64{1})}, "different dtypes"},
		{"Where", nil, []*Tensor{ewB([]bool{true, false}, 2), f23, f23}, "cannot broadcast"},
		{"Expand", nil, []*Tensor{f23, ewI64([]int64{3, 3}, 2)}, "cannot broadcast"},
		{"Expand", nil, []*Tensor{f23, ewI64([]int64{-1, 3}, 2)}, "invalid dimension"},
		{"Expand", nil, []*Tensor{f23, ewI64([]int64{2, 3}, 1, 2)}, "1-D"},
		{"Expand", nil, []*Tensor{f23, ewF([]float32{2, 3}, 2)}, "integer"},
		{"Sum", nil, []*Tensor{f23, ewI64([]int64{1})}, "insert a Cast"},
		{"Mean", nil, []*Tensor{ewI64([]int64{1}), ewI64([]int64{1})}, "dtype int64"},
		{"PRelu", nil, []*Tensor{ewF([]float32{1, 2}, 2), f23}, "slope must broadcast to X"},
		{"Pow", nil, []*Tensor{f23, ewB([]bool{true}, 1)}, "exponent"},
	}
	for i, tc := range tests {
		_, err := ewRun(tc.op, tc.attrs, 1, tc.in...)
		if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
			t.Errorf("%d %s: error %v, want one containing %q", i, tc.op, err, tc.wantErr)
		}
	}
	// A kernel run on tensors of other sizes than compiled reports an error.
	add := &Node{Name: "a", OpType: "Add", Inputs: []string{"x", "y"}, Outputs: []string{"z"}}
	k, _, err := CompileNode(add, []ValueMeta{{DType: Float32, Shape: []int{2, 3}}, {DType: Float32, Shape: []int{3}}})
	if err != nil {
		t.Fatal(err)
	}
	ctx := &ExecContext{Threads: 1}
	if err := k.Run(ctx, []*Tensor{f23, ewF([]float32{1, 2}, 2)}, []*Tensor{New(Float32, 2, 3)}); err == nil {
		t.Error("Add ran on an operand of the wrong size")
	}
	if err := k.Run(ctx, []*Tensor{f23, ewI64([]int64{1, 2, 3}, 3)}, []*Tensor{New(Float32, 2, 3)}); err == nil {
		t.Error("Add ran on an operand of the wrong dtype")
	}
	// Expand needs its shape at plan time.
	n := &Node{Name: "e", OpType: "Expand", Inputs: []string{"x", "s"}, Outputs: []string{"y"}}
	_, _, err = CompileNode(n, []ValueMeta{{DType: Float32, Shape: []int{2}}, {DType: Int64, Shape: []int{2}}})
	if err == nil || !strings.Contains(err.Error(), "known when the graph is planned") {
		t.Errorf("Expand with a dynamic shape: %v", err)
	}
}

func TestElementwiseEmpty(t *testing.T) {
	empty := New(Float32, 0, 3)
	cases := []struct {
		op    string
		attrs map[string]Attr
		in    []*Tensor
		want  []int
	}{
		{"Add", nil, []*Tensor{empty, ewF([]float32{1, 2, 3}, 3)}, []int{0, 3}},
		{"Relu", nil, []*Tensor{empty}, []int{0, 3}},
		{"Softmax", nil, []*Tensor{empty}, []int{0, 3}},
		{"Softmax", ewAttrI("axis", 0), []*Tensor{New(Float32, 0, 3)}, []int{0, 3}},
		{"LogSoftmax", nil, []*Tensor{New(Float32, 2, 0)}, []int{2, 0}},
		{"Where", nil, []*Tensor{New(Bool, 0, 1), empty, ewF([]float32{1}, 1)}, []int{0, 3}},
		{"Expand", nil, []*Tensor{ewF([]float32{1}, 1), ewI64([]int64{2, 0}, 2)}, []int{2, 0}},
	}
	for _, tc := range cases {
		out, err := ewRun(tc.op, tc.attrs, 2, tc.in...)
		if err != nil {
			t.Fatalf("%s: %v", tc.op, err)
		}
		if !SameShape(out[0].Shape, tc.want) {
			t.Errorf("%s: shape %v, want %v", tc.op, out[0].Shape, tc.want)
		}
	}
}

// ---------------------------------------------------------------- determinism

func TestElementwiseThreadsBitIdentical(t *testing.T) {
	rng := rand.New(rand.NewSource(3))
	a := ewRandF(rng, 3, 64, 30, 30)
	b := ewRandF(rng, 64, 1, 1)
	c := ewRandF(rng, 30)
	cases := []struct {
		op    string
		attrs map[string]Attr
		in    []*Tensor
	}{
		{"Add", nil, []*Tensor{a, b}},
		{"Mul", nil, []*Tensor{c, a}},
		{"Sigmoid", nil, []*Tensor{a}},
		{"Softmax", ewAttrI("axis", 1), []*Tensor{a}},
		{"LogSoftmax", nil, []*Tensor{a}},
		{"Sum", nil, []*Tensor{a, b, c}},
		{"Clip", nil, []*Tensor{a, ewF([]float32{-0.5}), ewF([]float32{0.5})}},
	}
	for _, tc := range cases {
		one, err := ewRun(tc.op, tc.attrs, 1, tc.in...)
		if err != nil {
			t.Fatal(err)
		}
		two, err := ewRun(tc.op, tc.attrs, 2, tc.in...)
		if err != nil {
			t.Fatal(err)
		}
		for i := range one[0].F32 {
			if math.Float32bits(one[0].F32[i]) != math.Float32bits(two[0].F32[i]) {
				t.Fatalf("%s: element %d differs between 1 and 2 threads", tc.op, i)
			}
		}
	}
}

// ---------------------------------------------------------------- activation

func TestApplyActivation(t *testing.T) {
	x := []float32{-3, -0.5, 0, 0.5, 3, 8}
	inf := math.Inf(1)
	tests := []struct {
		kind        Activation
		alpha, beta float32
		want        func(float64) float64
	}{
		{ActNone, 0, 0, func(v float64) float64 { return v }},
		{ActRelu, 0, 0, func(v float64) float64 { return math.Max(v, 0) }},
		{ActLeakyRelu, 0.1, 0, func(v float64) float64 { return math.Max(v, 0) + 0.1*math.Min(v, 0) }},
		{ActSigmoid, 0, 0, func(v float64) float64 { return 1 / (1 + math.Exp(-v)) }},
		{ActTanh, 0, 0, math.Tanh},
		{ActClip, 0, 6, func(v float64) float64 { return math.Min(math.Max(v, 0), 6) }},
		{ActClip, float32(-inf), 1, func(v float64) float64 { return math.Min(v, 1) }},
		{ActHardSigmoid, 0.2, 0.5, func(v float64) float64 { return math.Max(0, math.Min(1, 0.2*v+0.5)) }},
		{ActHardSwish, 0, 0, func(v float64) float64 { return v * math.Max(0, math.Min(1, v/6+0.5)) }},
	}
	for _, tc := range tests {
		y := append([]float32{}, x...)
		ApplyActivation(tc.kind, tc.alpha, tc.beta, y)
		for i, v := range x {
			if w := tc.want(float64(v)); !ewClose(y[i], w) {
				t.Errorf("%v(%v) = %v, want %v", tc.kind, v, y[i], w)
			}
		}
	}
	// The standalone operators give bit-identical results to the fused form.
	ops := []struct {
		op    string
		attrs map[string]Attr
		in    []*Tensor
	}{
		{"Relu", nil, nil},
		{"LeakyRelu", ewAttrF("alpha", 0.3), nil},
		{"Sigmoid", nil, nil},
		{"Tanh", nil, nil},
		{"HardSigmoid", map[string]Attr{"alpha": {Kind: AttrFloat, F: 0.3}}, nil},
		{"HardSwish", nil, nil},
		{"Clip", nil, []*Tensor{ewF([]float32{0}), ewF([]float32{6})}},
	}
	rng := rand.New(rand.NewSource(4))
	xt := ewRandF(rng, 1000)
	for _, o := range ops {
		n := &Node{OpType: o.op, Attrs: o.attrs, Inputs: []string{"x", "lo", "hi"}}
		consts := map[string]*Tensor{}
		if o.in != nil {
			consts["lo"], consts["hi"] = o.in[0], o.in[1]
		}
		kind, alpha, beta, ok := NodeActivation(n, func(name string) *Tensor { return consts[name] })
		if !ok || kind.String() != o.op {
			t.Fatalf("NodeActivation(%s) = %v, %v", o.op, kind, ok)
		}
		got := ewMust(t, o.op, o.attrs, append([]*Tensor{xt}, o.in...)...)
		y := append([]float32{}, xt.F32...)
		ApplyActivation(kind, alpha, beta, y)
		for i := range y {
			if math.Float32bits(y[i]) != math.Float32bits(got.F32[i]) {
				t.Fatalf("%s: fused %v != op %v at %d", o.op, y[i], got.F32[i], i)
			}
		}
	}
	if _, _, _, ok := NodeActivation(&Node{OpType: "Clip", Inputs: []string{"x", "lo"}}, func(string) *Tensor { return nil }); ok {
		t.Error("Clip with a non-constant bound is fusable")
	}
	if _, _, _, ok := NodeActivation(&Node{OpType: "Add"}, nil); ok {
		t.Error("Add is an activation")
	}
	if k, ok := ParseActivation("HardSwish"); !ok || k != ActHardSwish {
		t.Errorf("ParseActivation(HardSwish) = %v, %v", k, ok)
	}
}

// ---------------------------------------------------------------- benchmarks

func BenchmarkAddBias(b *testing.B) {
	rng := rand.New(rand.NewSource(5))
	x, bias := ewRandF(rng, 1, 64, 56, 56), ewRandF(rng, 64, 1, 1)
	n := &Node{OpType: "Add", Inputs: []string{"x", "b"}, Outputs: []string{"y"}}
	k, meta, err := CompileNode(n, []ValueMeta{{DType: Float32, Shape: x.Shape}, {DType: Float32, Shape: bias.Shape}})
	if err != nil {
		b.Fatal(err)
	}
	out := New(Float32, meta[0].Shape...)
	ctx := &ExecContext{Ctx: context.Background(), Threads: 1}
	b.SetBytes(int64(4 * x.Len()))
	for b.Loop() {
		if err := k.Run(ctx, []*Tensor{x, bias}, []*Tensor{out}); err != nil {
			b.Fatal(err)
		}
	}
}
