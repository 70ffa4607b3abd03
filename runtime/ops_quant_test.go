package runtime

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
)

// Tests of the quantised ops against float64 references written from the
// ONNX definitions: integer outputs must match exactly where the op is
// exact integer arithmetic (MatMulInteger, ConvInteger, QuantizeLinear of
// representable values) and within one quantisation step where the
// reference goes through floating point.

// qtNode builds a node of the default domain (or dom) with attributes.
func qtNode(dom, op string, nIn int, attrs map[string]Attr) *Node {
	n := &Node{Name: "t_" + op, OpType: op, Domain: dom, Outputs: []string{"y"}, Attrs: attrs}
	for i := 0; i < nIn; i++ {
		n.Inputs = append(n.Inputs, fmt.Sprintf("in%d", i))
	}
	return n
}

// qtEval runs a node on inputs (nil = absent optional input) with the given
// thread count.
func qtEval(t *testing.T, n *Node, threads int, ins ...*Tensor) []*Tensor {
	t.Helper()
	for i, in := range ins {
		if in == nil {
			n.Inputs[i] = ""
		}
	}
	outs, err := EvalNode(context.Background(), n, ins, threads)
	if err != nil {
		t.Fatalf("%v: %v", n, err)
	}
	return outs
}

func qtScalarF(v float32) *Tensor { return FromFloat32([]float32{v}) }

// qtScalarQ makes a one-element tensor of an 8-bit type (shape [] or [1]).
func qtScalarQ(dt DType, v int32, shape ...int) *Tensor {
	t := New(dt, shape...)
	qtSet(t, 0, v)
	return t
}

func qtSet(t *Tensor, i int, v int32) {
	switch t.DType {
	case Int8:
		t.I8[i] = int8(v)
	case Uint8:
		t.U8[i] = uint8(v)
	case Int32:
		t.I32[i] = v
	}
}

// qtRand fills a new 8-bit tensor with random values of its full range.
func qtRand(r *rand.Rand, dt DType, shape ...int) *Tensor {
	t := New(dt, shape...)
	lo, hi := qRange(dt)
	for i := 0; i < t.Len(); i++ {
		qtSet(t, i, lo+int32(r.IntN(int(hi-lo+1))))
	}
	return t
}

func qtVecF(vals ...float32) *Tensor { return FromFloat32(vals, len(vals)) }

func qtVecQ(dt DType, vals ...int32) *Tensor {
	t := New(dt, len(vals))
	for i, v := range vals {
		qtSet(t, i, v)
	}
	return t
}

// qtQuant is the reference QuantizeLinear of one value (float32 division,
// round half to even, saturation; NaN to the type's minimum).
func qtQuant(v, s float32, zp int32, dt DType) int32 {
	lo, hi := qRange(dt)
	q := float64(v / s)
	if math.IsNaN(q) {
		return lo
	}
	r := math.RoundToEven(q) + float64(zp)
	return int32(math.Max(float64(lo), math.Min(float64(hi), r)))
}

// qtQuant64 quantises a float64 real value.
func qtQuant64(v float64, s float32, zp int32, dt DType) int32 {
	lo, hi := qRange(dt)
	r := math.RoundToEven(v/float64(s)) + float64(zp)
	return int32(math.Max(float64(lo), math.Min(float64(hi), r)))
}

// qtCheckInts compares an integer tensor with want, allowing tol.
func qtCheckInts(t *testing.T, what string, got *Tensor, want []int32, tol int32) {
	t.Helper()
	if got.Len() != len(want) {
		t.Fatalf("%s: %d values, want %d", what, got.Len(), len(want))
	}
	bad := 0
	for i, w := range want {
		d := qElem(got, i) - w
		if d < -tol || d > tol {
			if bad < 5 {
				t.Errorf("%s: [%d] = %d, want %d (tolerance %d)", what, i, qElem(got, i), w, tol)
			}
			bad++
		}
	}
	if bad > 0 {
		t.Errorf("%s: %d of %d values differ", what, bad, len(want))
	}
}

func TestQuantizeLinear(t *testing.T) {
	nan := float32(math.NaN())
	cases := []struct {
		name  string
		x     *Tensor
		scale *Tensor
		zp    *Tensor
		attrs map[string]Attr
		want  []int32
	}{
		{"u8 round half even", qtVecF(0, 1, 3, 5, 7, -1, 2.5, 510, -510, nan), qtScalarF(2), qtScalarQ(Uint8, 128),
			nil, []int32{128, 128, 130, 130, 132, 128, 129, 255, 0, 0}},
		{"s8 saturation", qtVecF(-1000, -2.5, -1.5, 0.5, 1.5, 1000), qtScalarF(1), qtScalarQ(Int8, -1),
			nil, []int32{-128, -3, -3, -1, 1, 127}},
		{"no zero point is uint8", qtVecF(-3, 3, 300), qtScalarF(1), nil, nil, []int32{0, 3, 255}},
		{"output_dtype int8", qtVecF(-3, 3, 300), qtScalarF(1), nil,
			map[string]Attr{"output_dtype": {Kind: AttrInt, I: onnxInt8}}, []int32{-3, 3, 127}},
		{"per axis 1", FromFloat32([]float32{1, 2, 3, 4, 5, 6}, 2, 3), qtVecF(1, 2, 4), qtVecQ(Uint8, 0, 10, 20),
			nil, []int32{1, 11, 21, 4, 12, 22}},
		{"per axis 0", FromFloat32([]float32{1, 2, 3, 4, 5, 6}, 2, 3), qtVecF(1, 2), qtVecQ(Int8, 0, -10),
			map[string]Attr{"axis": {Kind: AttrInt, I: 0}}, []int32{1, 2, 3, -8, -8, -7}},
		{"negative axis", FromFloat32([]float32{1, 2, 3, 4, 5, 6}, 2, 3), qtVecF(1, 2, 4), qtVecQ(Uint8, 0, 10, 20),
			map[string]Attr{"axis": {Kind: AttrInt, I: -1}}, []int32{1, 11, 21, 4, 12, 22}},
		{"blocked", FromFloat32([]float32{1, 2, 3, 4, 5, 6, 7, 8}, 2, 4), FromFloat32([]float32{1, 2, 4, 8}, 2, 2), nil,
			map[string]Attr{"axis": {Kind: AttrInt, I: 1}, "block_size": {Kind: AttrInt, I: 2}}, []int32{1, 2, 2, 2, 1, 2, 1, 1}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			n := qtNode("", "QuantizeLinear", 3, c.attrs)
			out := qtEval(t, n, 2, c.x, c.scale, c.zp)[0]
			qtCheckInts(t, c.name, out, c.want, 0)
		})
	}
	// int32 input, and agreement with the reference on random data.
	n := qtNode("", "QuantizeLinear", 3, nil)
	out := qtEval(t, n, 1, &Tensor{DType: Int32, Shape: []int{3}, I32: []int32{-7, 5, 1000}}, qtScalarF(2), qtScalarQ(Int8, 0))[0]
	qtCheckInts(t, "int32 input", out, []int32{-4, 2, 127}, 0)
	r := rand.New(rand.NewPCG(1, 2))
	x := New(Float32, 3, 1000)
	for i := range x.F32 {
		x.F32[i] = float32(r.NormFloat64() * 3)
	}
	for _, dt := range []DType{Uint8, Int8} {
		s, z := float32(0.0173), int32(7)
		out := qtEval(t, qtNode("", "QuantizeLinear", 3, nil), 3, x, qtScalarF(s), qtScalarQ(dt, z))[0]
		want := make([]int32, x.Len())
		for i, v := range x.F32 {
			want[i] = qtQuant(v, s, z, dt)
		}
		qtCheckInts(t, "random "+dt.String(), out, want, 0)
	}
}

func TestDequantizeLinear(t *testing.T) {
	cases := []struct {
		name  string
		x     *Tensor
		scale *Tensor
		zp    *Tensor
		attrs map[string]Attr
		want  []float32
	}{
		{"u8", qtVecQ(Uint8, 0, 3, 128, 255), qtScalarF(2), qtScalarQ(Uint8, 128), nil, []float32{-256, -250, 0, 254}},
		{"s8 no zp", qtVecQ(Int8, -128, 0, 127), qtScalarF(0.5), nil, nil, []float32{-64, 0, 63.5}},
		{"int32", qtVecQ(Int32, -1000000, 7), qtScalarF(0.25), nil, nil, []float32{-250000, 1.75}},
		{"per axis", &Tensor{DType: Int8, Shape: []int{2, 2}, I8: []int8{1, 2, 3, 4}}, qtVecF(1, 10), qtVecQ(Int8, 1, 2),
			map[string]Attr{"axis": {Kind: AttrInt, I: 0}}, []float32{0, 1, 10, 20}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			out := qtEval(t, qtNode("", "DequantizeLinear", 3, c.attrs), 1, c.x, c.scale, c.zp)[0]
			for i, w := range c.want {
				if out.F32[i] != w {
					t.Errorf("[%d] = %g, want %g", i, out.F32[i], w)
				}
			}
		})
	}
	// Non-constant parameters are read at run time: through an executor
	// with the scale as a graph input.
	g := NewGraph("dq")
	g.Inputs = []ValueInfo{{Name: "x", DType: Uint8, Shape: []int{3}}, {Name: "s", DType: Float32, Shape: []int{}}}
	g.Outputs = []ValueInfo{{Name: "y", DType: Float32, Shape: []int{3}}}
	g.Nodes = []*Node{{Name: "dq", OpType: "DequantizeLinear", Inputs: []string{"x", "s"}, Outputs: []string{"y"}}}
	ex, err := NewExecutor(g, Options{Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	res, err := ex.Run(context.Background(), map[string]*Tensor{"x": qtVecQ(Uint8, 1, 2, 3), "s": {DType: Float32, Shape: []int{}, F32: []float32{3}}})
	if err != nil {
		t.Fatal(err)
	}
	if got := res["y"].F32; got[0] != 3 || got[2] != 9 {
		t.Errorf("runtime scale: got %v", got)
	}
	// Errors.
	for _, c := range []struct {
		name string
		ins  []*Tensor
	}{
		{"zp type", []*Tensor{qtVecQ(Uint8, 1), qtScalarF(1), qtScalarQ(Int8, 0)}},
		{"scale shape", []*Tensor{qtVecQ(Uint8, 1, 2), qtVecF(1, 2, 3), nil}},
		{"int32 zp", []*Tensor{qtVecQ(Int32, 1), qtScalarF(1), qtScalarQ(Int32, 3)}},
	} {
		n := qtNode("", "DequantizeLinear", 3, nil)
		for i, in := range c.ins {
			if in == nil {
				n.Inputs[i] = ""
			}
		}
		if _, err := EvalNode(context.Background(), n, c.ins, 1); err == nil {
			t.Errorf("%s: no error", c.name)
		}
	}
}

func TestDynamicQuantizeLinear(t *testing.T) {
	cases := []struct {
		x       []float32
		scale   float32
		zp      int32
		quanted []int32
	}{
		// The ONNX node test example.
		{[]float32{0, 2, -3, -2.5, 1.34, 0.5}, 0.019607844, 153, []int32{153, 255, 0, 26, 221, 179}},
		{[]float32{1, 2.1, 1.3, 2.5, 3.34, 10}, 0.039215688, 0, []int32{26, 54, 33, 64, 85, 255}},
		{[]float32{-1, -2.1, -1.3, -2.5, -3.34, -4}, 0.015686275, 255, []int32{191, 121, 172, 96, 42, 0}},
		{[]float32{0, 0, 0}, 1, 0, []int32{0, 0, 0}},
	}
	for _, c := range cases {
		n := qtNode("", "DynamicQuantizeLinear", 1, nil)
		n.Outputs = []string{"y", "s", "z"}
		outs := qtEval(t, n, 2, qtVecF(c.x...))
		if math.Abs(float64(outs[1].F32[0]-c.scale)) > 1e-8 || int32(outs[2].U8[0]) != c.zp {
			t.Errorf("%v: scale %g zp %d, want %g %d", c.x, outs[1].F32[0], outs[2].U8[0], c.scale, c.zp)
		}
		qtCheckInts(t, fmt.Sprint(c.x), outs[0], c.quanted, 0)
	}
}

// qtMatRef computes the zero-point corrected integer product of a [m,k] and
// b [k,n] (b given as [n,k] with transB) with per-column zb.
func qtMatRef(a, b *Tensor, m, k, n int, za int32, zb []int32, transB bool) []int64 {
	out := make([]int64, m*n)
	for i := 0; i < m; i++ {
		for j := 0; j < n; j++ {
			var s int64
			for p := 0; p < k; p++ {
				bi := p*n + j
				if transB {
					bi = j*k + p
				}
				s += int64(qElem(a, i*k+p)-za) * int64(qElem(b, bi)-zb[min(j, len(zb)-1)])
			}
			out[i*n+j] = s
		}
	}
	return out
}

func TestMatMulInteger(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for _, c := range []struct {
		m, k, n  int
		adt, bdt DType
		perCol   bool
	}{
		{1, 1, 1, Uint8, Int8, false}, {3, 5, 17, Uint8, Int8, true}, {17, 33, 5, Int8, Uint8, true},
		{5, 70, 3, Int8, Int8, false}, {33, 17, 65, Uint8, Uint8, true},
	} {
		name := fmt.Sprintf("%dx%dx%d_%v_%v", c.m, c.k, c.n, c.adt, c.bdt)
		a, b := qtRand(r, c.adt, c.m, c.k), qtRand(r, c.bdt, c.k, c.n)
		za := qtScalarQ(c.adt, 3)
		zbv := []int32{-2}
		zb := qtScalarQ(c.bdt, 1)
		if c.bdt == Uint8 {
			zbv = []int32{200}
			zb = qtScalarQ(c.bdt, 200)
		}
		if c.perCol {
			zb = qtRand(r, c.bdt, c.n)
			zbv = make([]int32, c.n)
			for j := range zbv {
				zbv[j] = qElem(zb, j)
			}
		} else if c.bdt == Int8 {
			qtSet(zb, 0, -2)
		}
		want64 := qtMatRef(a, b, c.m, c.k, c.n, 3, zbv, false)
		want := make([]int32, len(want64))
		for i, v := range want64 {
			want[i] = int32(v)
		}
		for _, threads := range []int{1, 3} {
			out := qtEval(t, qtNode("", "MatMulInteger", 4, nil), threads, a, b, za, zb)[0]
			if out.DType != Int32 {
				t.Fatalf("%s: output %v", name, out.DType)
			}
			qtCheckInts(t, name, out, want, 0)
		}
	}
	// Per-row a_zero_point, no b_zero_point, batched A with a shared B.
	a, b := qtRand(r, Uint8, 2, 3, 4), qtRand(r, Int8, 4, 5)
	zaRow := qtVecQ(Uint8, 1, 2, 3)
	out := qtEval(t, qtNode("", "MatMulInteger", 3, nil), 2, a, b, zaRow)[0]
	if !SameShape(out.Shape, []int{2, 3, 5}) {
		t.Fatalf("batched shape %v", out.Shape)
	}
	for bi := 0; bi < 2; bi++ {
		for i := 0; i < 3; i++ {
			for j := 0; j < 5; j++ {
				var s int32
				for p := 0; p < 4; p++ {
					s += (qElem(a, (bi*3+i)*4+p) - int32(i+1)) * qElem(b, p*5+j)
				}
				if g := out.I32[(bi*3+i)*5+j]; g != s {
					t.Errorf("per-row zp [%d,%d,%d] = %d, want %d", bi, i, j, g, s)
				}
			}
		}
	}
}

func TestQLinearMatMul(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	for _, c := range []struct {
		as, bs   []int
		adt, bdt DType
		ydt      DType
		perCol   bool
	}{
		{[]int{4, 8}, []int{8, 3}, Uint8, Int8, Uint8, false},
		{[]int{17, 33}, []int{33, 17}, Uint8, Int8, Int8, true},
		{[]int{2, 3, 9}, []int{9, 5}, Int8, Uint8, Uint8, false},
		{[]int{2, 3, 9}, []int{2, 9, 5}, Uint8, Uint8, Int8, false},
		{[]int{9}, []int{9, 4}, Uint8, Int8, Uint8, true},
	} {
		name := fmt.Sprintf("%v_%v_%v%v%v", c.as, c.bs, c.adt, c.bdt, c.ydt)
		a, b := qtRand(r, c.adt, c.as...), qtRand(r, c.bdt, c.bs...)
		k, n := c.bs[len(c.bs)-2], c.bs[len(c.bs)-1]
		sa, sy := float32(0.02), float32(0.3)
		za, zy := qtRand(r, c.adt, 1), qtRand(r, c.ydt, 1)
		sb, zb := qtScalarF(0.01), qtRand(r, c.bdt, 1)
		if c.perCol {
			sb = New(Float32, n)
			for j := range sb.F32 {
				sb.F32[j] = 0.005 + 0.01*r.Float32()
			}
			zb = qtRand(r, c.bdt, n)
		}
		out := qtEval(t, qtNode("", "QLinearMatMul", 8, nil), 2, a, qtScalarF(sa), za, b, sb, zb, qtScalarF(sy), zy)[0]
		// Reference: per batch, real product of dequantised values.
		batch := out.Len() / n
		m := batch
		if len(c.as) > 1 {
			m = c.as[len(c.as)-2]
		}
		want := make([]int32, out.Len())
		for row := 0; row < batch; row++ {
			bi, i := row/m, row%m
			aOff := row * k
			bOff := 0
			if len(c.bs) == 3 {
				bOff = bi * k * n
			}
			for j := 0; j < n; j++ {
				var s float64
				for p := 0; p < k; p++ {
					s += float64(qElem(a, aOff+p)-qElem(za, 0)) * float64(qElem(b, bOff+p*n+j)-qElem(zb, min(j, zb.Len()-1)))
				}
				_ = i
				real := s * float64(sa) * float64(sb.F32[min(j, sb.Len()-1)])
				want[row*n+j] = qtQuant64(real, sy, qElem(zy, 0), c.ydt)
			}
		}
		if out.DType != c.ydt {
			t.Fatalf("%s: dtype %v", name, out.DType)
		}
		qtCheckInts(t, name, out, want, 1)
	}
}

func TestQGemmContrib(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	m, k, n := 5, 19, 7
	for _, c := range []struct {
		transA, transB bool
		bias, quant    bool
		alpha          float32
		dom            string
		act            string
	}{
		{false, false, false, true, 1, msDomain, ""},
		{true, true, true, true, 0.5, msDomain, ""},
		{false, true, true, false, 1, msDomain, ""},
		{false, false, true, false, 1, FusedDomain, "Relu"},
		{false, true, true, true, 1, FusedDomain, "Relu"},
		{false, false, true, true, 1, FusedDomain, "Clip"},
	} {
		name := fmt.Sprintf("%+v", c)
		as, bs := []int{m, k}, []int{k, n}
		if c.transA {
			as = []int{k, m}
		}
		if c.transB {
			bs = []int{n, k}
		}
		a, b := qtRand(r, Uint8, as...), qtRand(r, Int8, bs...)
		sa, za := float32(0.05), int32(100)
		sb := New(Float32, n)
		for j := range sb.F32 {
			sb.F32[j] = 0.01 + 0.01*r.Float32()
		}
		zb := qtRand(r, Int8, n)
		var bias *Tensor
		if c.bias {
			bias = New(Int32, n)
			for j := range bias.I32 {
				bias.I32[j] = int32(r.IntN(2001) - 1000)
			}
		}
		sy, zy := float32(0.8), int32(120)
		var ys, yz *Tensor
		if c.quant {
			ys, yz = qtScalarF(sy), qtScalarQ(Uint8, zy)
		}
		attrs := map[string]Attr{"alpha": {Kind: AttrFloat, F: c.alpha}}
		if c.transA {
			attrs["transA"] = Attr{Kind: AttrInt, I: 1}
		}
		if c.transB {
			attrs["transB"] = Attr{Kind: AttrInt, I: 1}
		}
		lo, hi := math.Inf(-1), math.Inf(1)
		switch c.act {
		case "Relu":
			attrs["activation"] = Attr{Kind: AttrString, S: "Relu"}
			lo = 0
		case "Clip":
			attrs["activation"] = Attr{Kind: AttrString, S: "Clip"}
			attrs["activation_alpha"] = Attr{Kind: AttrFloat, F: -5}
			attrs["activation_beta"] = Attr{Kind: AttrFloat, F: 6}
			lo, hi = -5, 6
		}
		out := qtEval(t, qtNode(c.dom, "QGemm", 9, attrs), 2, a, qtScalarF(sa), qtScalarQ(Uint8, za), b, sb, zb, bias, ys, yz)[0]
		// Reference with A and B in canonical layout.
		ac := a
		if c.transA {
			ac = New(Uint8, m, k)
			for i := 0; i < m; i++ {
				for p := 0; p < k; p++ {
					ac.U8[i*k+p] = a.U8[p*m+i]
				}
			}
		}
		zbv := make([]int32, n)
		for j := range zbv {
			zbv[j] = qElem(zb, j)
		}
		acc := qtMatRef(ac, b, m, k, n, za, zbv, c.transB)
		want := make([]int32, m*n)
		for i := range acc {
			j := i % n
			v := acc[i]
			if bias != nil {
				v += int64(bias.I32[j])
			}
			real := math.Max(lo, math.Min(hi, float64(v)*float64(c.alpha)*float64(sa)*float64(sb.F32[j])))
			if c.quant {
				want[i] = qtQuant64(real, sy, zy, Uint8)
			} else if d := math.Abs(float64(out.F32[i]) - real); d > 1e-5*math.Max(1, math.Abs(real)) {
				t.Errorf("%s: [%d] = %g, want %g", name, i, out.F32[i], real)
			}
		}
		if c.quant {
			qtCheckInts(t, name, out, want, 1)
		}
	}
}

// qtConvCase is one convolution geometry for the conv tests.
type qtConvCase struct {
	x, w                []int // NC(D)HW and M Cg (K...)
	group               int
	strides, dil, pads  []int64
	autoPad             string
	xdt, wdt, ydt       DType
	perChannel, hasBias bool
}

func (c qtConvCase) attrs() map[string]Attr {
	a := map[string]Attr{"group": {Kind: AttrInt, I: int64(c.group)}}
	if c.strides != nil {
		a["strides"] = Attr{Kind: AttrInts, Ints: c.strides}
	}
	if c.dil != nil {
		a["dilations"] = Attr{Kind: AttrInts, Ints: c.dil}
	}
	if c.pads != nil {
		a["pads"] = Attr{Kind: AttrInts, Ints: c.pads}
	}
	if c.autoPad != "" {
		a["auto_pad"] = Attr{Kind: AttrString, S: c.autoPad}
	}
	return a
}

var qtConvCases = []qtConvCase{
	{x: []int{1, 3, 7, 7}, w: []int{4, 3, 3, 3}, group: 1, xdt: Uint8, wdt: Int8, ydt: Uint8, perChannel: true, hasBias: true},
	{x: []int{2, 4, 9, 8}, w: []int{6, 2, 3, 2}, group: 2, strides: []int64{2, 1}, pads: []int64{1, 0, 1, 1}, xdt: Int8, wdt: Int8, ydt: Int8, hasBias: true},
	{x: []int{1, 5, 6, 6}, w: []int{5, 1, 3, 3}, group: 5, dil: []int64{2, 2}, pads: []int64{2, 2, 2, 2}, xdt: Uint8, wdt: Uint8, ydt: Uint8, perChannel: true},
	{x: []int{1, 8, 5, 5}, w: []int{16, 8, 1, 1}, group: 1, xdt: Uint8, wdt: Int8, ydt: Int8, perChannel: true, hasBias: true},
	{x: []int{2, 3, 10}, w: []int{4, 3, 3}, group: 1, strides: []int64{3}, autoPad: "SAME_UPPER", xdt: Uint8, wdt: Int8, ydt: Uint8, hasBias: true},
	{x: []int{1, 2, 4, 5, 3}, w: []int{3, 2, 2, 3, 2}, group: 1, pads: []int64{1, 0, 1, 0, 1, 0}, xdt: Int8, wdt: Uint8, ydt: Uint8, perChannel: true},
	{x: []int{1, 17, 12, 12}, w: []int{33, 17, 3, 3}, group: 1, pads: []int64{1, 1, 1, 1}, xdt: Uint8, wdt: Int8, ydt: Uint8, perChannel: true, hasBias: true},
}

// qtConvRef computes the zero-point corrected integer convolution by direct
// loops (any spatial rank, via index arithmetic).
func qtConvRef(c qtConvCase, n *Node, x, w *Tensor, zx int32, zw []int32) ([]int64, []int) {
	rank := len(c.x) - 2
	g, autoPad, _ := windowAttrs(n, rank, c.w[2:])
	_ = forwardGeom(&g, c.x[2:], autoPad, false)
	outSp := g.outSpatial()
	N, C, M := c.x[0], c.x[1], c.w[0]
	cg, mg := C/c.group, M/c.group
	inSz, outSz := NumElements(c.x[2:]), NumElements(outSp)
	kSz := NumElements(c.w[2:])
	out := make([]int64, N*M*outSz)
	off := 3 - rank
	for img := 0; img < N; img++ {
		for oc := 0; oc < M; oc++ {
			grp := oc / mg
			for o := 0; o < outSz; o++ {
				var od [3]int
				rem := o
				for d := 2; d >= off; d-- {
					od[d] = rem % g.out[d]
					rem /= g.out[d]
				}
				var s int64
				for ic := 0; ic < cg; ic++ {
					for kk := 0; kk < kSz; kk++ {
						var kd [3]int
						rem := kk
						for d := 2; d >= off; d-- {
							kd[d] = rem % g.k[d]
							rem /= g.k[d]
						}
						xv := zx
						inside := true
						idx := 0
						for d := off; d < 3; d++ {
							p := od[d]*g.s[d] - g.pb[d] + kd[d]*g.d[d]
							if p < 0 || p >= g.in[d] {
								inside = false
							}
							idx = idx*g.in[d] + p
						}
						if inside {
							xv = qElem(x, (img*C+grp*cg+ic)*inSz+idx)
						}
						wv := qElem(w, (oc*cg+ic)*kSz+kk)
						s += int64(xv-zx) * int64(wv-zw[min(oc, len(zw)-1)])
					}
				}
				out[(img*M+oc)*outSz+o] = s
			}
		}
	}
	return out, append([]int{N, M}, outSp...)
}

func TestQLinearConvAndConvInteger(t *testing.T) {
	r := rand.New(rand.NewPCG(9, 10))
	for ci, c := range qtConvCases {
		name := fmt.Sprintf("case%d_%v_%v", ci, c.x, c.w)
		x, w := qtRand(r, c.xdt, c.x...), qtRand(r, c.wdt, c.w...)
		M := c.w[0]
		zx := qtRand(r, c.xdt, 1)
		zw := qtRand(r, c.wdt, 1)
		sw := qtScalarF(0.01)
		if c.perChannel {
			zw = qtRand(r, c.wdt, M)
			if c.wdt == Int8 {
				clear(zw.I8) // symmetric, like onnxruntime's per-channel weights
			}
			sw = New(Float32, M)
			for j := range sw.F32 {
				sw.F32[j] = 0.002 + 0.02*r.Float32()
			}
		}
		zwv := make([]int32, zw.Len())
		for j := range zwv {
			zwv[j] = qElem(zw, j)
		}
		// ConvInteger (exact).
		n := qtNode("", "ConvInteger", 4, c.attrs())
		acc, shape := qtConvRef(c, n, x, w, qElem(zx, 0), zwv)
		want := make([]int32, len(acc))
		for i, v := range acc {
			want[i] = int32(v)
		}
		for _, threads := range []int{1, 2} {
			out := qtEval(t, n, threads, x, w, zx, zw)[0]
			if !SameShape(out.Shape, shape) {
				t.Fatalf("%s: ConvInteger shape %v, want %v", name, out.Shape, shape)
			}
			qtCheckInts(t, name+" ConvInteger", out, want, 0)
		}
		// QLinearConv against the real-valued reference.
		sx, sy := float32(0.04), float32(0.5)
		zy := qtRand(r, c.ydt, 1)
		var bias *Tensor
		if c.hasBias {
			bias = New(Int32, M)
			for j := range bias.I32 {
				bias.I32[j] = int32(r.IntN(4001) - 2000)
			}
		}
		outSz := len(acc) / (c.x[0] * M)
		wantQ := make([]int32, len(acc))
		for i, v := range acc {
			oc := i / outSz % M
			if bias != nil {
				v += int64(bias.I32[oc])
			}
			real := float64(v) * float64(sx) * float64(sw.F32[min(oc, sw.Len()-1)])
			wantQ[i] = qtQuant64(real, sy, qElem(zy, 0), c.ydt)
		}
		for _, dom := range []string{"", msDomain} {
			q := qtNode(dom, "QLinearConv", 9, c.attrs())
			out := qtEval(t, q, 2, x, qtScalarF(sx), zx, w, sw, zw, qtScalarF(sy), zy, bias)[0]
			qtCheckInts(t, name+" QLinearConv "+dom, out, wantQ, 1)
		}
		// Fused QConv with float output and Relu.
		attrs := c.attrs()
		attrs["activation"] = Attr{Kind: AttrString, S: "Relu"}
		fq := qtNode(FusedDomain, "QConv", 9, attrs)
		out := qtEval(t, fq, 2, x, qtScalarF(sx), zx, w, sw, zw, nil, nil, bias)[0]
		for i, v := range acc {
			oc := i / outSz % M
			if bias != nil {
				v += int64(bias.I32[oc])
			}
			real := math.Max(0, float64(v)*float64(sx)*float64(sw.F32[min(oc, sw.Len()-1)]))
			if d := math.Abs(float64(out.F32[i]) - real); d > 1e-5*math.Max(1, math.Abs(real)) {
				t.Fatalf("%s fused float: [%d] = %g, want %g", name, i, out.F32[i], real)
			}
		}
	}
}

func TestQLinearBinary(t *testing.T) {
	r := rand.New(rand.NewPCG(11, 12))
	for _, c := range []struct {
		op     string
		as, bs []int
		dt     DType
	}{
		{"QLinearAdd", []int{2, 3, 4}, []int{2, 3, 4}, Uint8},
		{"QLinearAdd", []int{2, 3, 4}, []int{3, 1}, Int8},
		{"QLinearMul", []int{4, 5}, []int{5}, Uint8},
		{"QLinearMul", []int{1}, []int{3, 7}, Int8},
	} {
		name := fmt.Sprintf("%s_%v_%v_%v", c.op, c.as, c.bs, c.dt)
		a, b := qtRand(r, c.dt, c.as...), qtRand(r, c.dt, c.bs...)
		sa, sb, sc := float32(0.03), float32(0.07), float32(0.05)
		if c.op == "QLinearMul" {
			sc = 0.5
		}
		za, zb, zc := qtRand(r, c.dt, 1), qtRand(r, c.dt, 1), qtRand(r, c.dt, 1)
		out := qtEval(t, qtNode(msDomain, c.op, 8, nil), 2, a, qtScalarF(sa), za, b, qtScalarF(sb), zb, qtScalarF(sc), zc)[0]
		shape, _ := BroadcastShapes(c.as, c.bs)
		plan, _ := NewBroadcastPlan(shape, c.as, c.bs)
		want := make([]int32, NumElements(shape))
		plan.ForEach(1, func(o, ia, ib, _, n int) {
			for i := 0; i < n; i++ {
				x := float64(qElem(a, ia+i*plan.InnerStride(0))-qElem(za, 0)) * float64(sa)
				y := float64(qElem(b, ib+i*plan.InnerStride(1))-qElem(zb, 0)) * float64(sb)
				v := x + y
				if c.op == "QLinearMul" {
					v = x * y
				}
				want[o+i] = qtQuant64(v, sc, qElem(zc, 0), c.dt)
			}
		})
		qtCheckInts(t, name, out, want, 1)
	}
}

func TestQLinearUnaryAndConcat(t *testing.T) {
	r := rand.New(rand.NewPCG(13, 14))
	for _, dt := range []DType{Uint8, Int8} {
		x := qtRand(r, dt, 3, 100)
		sx, sy := float32(0.05), float32(1.0/256)
		zx, zy := qtScalarQ(dt, 5), qtScalarQ(dt, 0)
		if dt == Int8 {
			zy = qtScalarQ(dt, -128)
		}
		out := qtEval(t, qtNode(msDomain, "QLinearSigmoid", 5, nil), 2, x, qtScalarF(sx), zx, qtScalarF(sy), zy)[0]
		want := make([]int32, x.Len())
		for i := range want {
			v := float64(qElem(x, i)-5) * float64(sx)
			want[i] = qtQuant64(1/(1+math.Exp(-v)), sy, qElem(zy, 0), dt)
		}
		qtCheckInts(t, "sigmoid "+dt.String(), out, want, 1)

		sy = 0.04
		zy = qtScalarQ(dt, 10)
		out = qtEval(t, qtNode(msDomain, "QLinearLeakyRelu", 5, map[string]Attr{"alpha": {Kind: AttrFloat, F: 0.1}}), 1, x, qtScalarF(sx), zx, qtScalarF(sy), zy)[0]
		for i := range want {
			v := float64(qElem(x, i)-5) * float64(sx)
			if v < 0 {
				v *= float64(float32(0.1))
			}
			want[i] = qtQuant64(v, sy, 10, dt)
		}
		qtCheckInts(t, "leaky relu "+dt.String(), out, want, 1)

		// Concat of one input with the output's parameters (copied) and
		// one requantised.
		a, b := qtRand(r, dt, 2, 3, 2), qtRand(r, dt, 2, 1, 2)
		n := qtNode(msDomain, "QLinearConcat", 8, map[string]Attr{"axis": {Kind: AttrInt, I: 1}})
		out = qtEval(t, n, 2, qtScalarF(0.1), qtScalarQ(dt, 3), a, qtScalarF(0.1), qtScalarQ(dt, 3), b, qtScalarF(0.25), qtScalarQ(dt, -2+int32(boolInt(dt == Uint8))*10))[0]
		if !SameShape(out.Shape, []int{2, 4, 2}) {
			t.Fatalf("concat shape %v", out.Shape)
		}
		zb := int32(-2 + boolInt(dt == Uint8)*10)
		var wantC []int32
		for o := 0; o < 2; o++ {
			for i := 0; i < 6; i++ {
				wantC = append(wantC, qElem(a, o*6+i))
			}
			for i := 0; i < 2; i++ {
				v := float64(qElem(b, o*2+i)-zb) * 0.25
				wantC = append(wantC, qtQuant64(v, 0.1, 3, dt))
			}
		}
		qtCheckInts(t, "concat "+dt.String(), out, wantC, 1)
	}
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

func TestQLinearPools(t *testing.T) {
	r := rand.New(rand.NewPCG(15, 16))
	x := qtRand(r, Uint8, 2, 3, 7, 6)
	sx, sy := float32(0.02), float32(0.03)
	zx, zy := int32(100), int32(90)
	for _, includePad := range []int64{0, 1} {
		attrs := map[string]Attr{"kernel_shape": {Kind: AttrInts, Ints: []int64{3, 2}}, "strides": {Kind: AttrInts, Ints: []int64{2, 2}},
			"pads": {Kind: AttrInts, Ints: []int64{1, 1, 1, 0}}, "count_include_pad": {Kind: AttrInt, I: includePad}}
		out := qtEval(t, qtNode(msDomain, "QLinearAveragePool", 5, attrs), 2, x, qtScalarF(sx), qtScalarQ(Uint8, zx), qtScalarF(sy), qtScalarQ(Uint8, zy))[0]
		// Float reference through the float AveragePool.
		xf := New(Float32, x.Shape...)
		for i := range xf.F32 {
			xf.F32[i] = float32(int32(x.U8[i])-zx) * sx
		}
		ref := qtEval(t, qtNode("", "AveragePool", 1, attrs), 1, xf)[0]
		if !SameShape(out.Shape, ref.Shape) {
			t.Fatalf("shape %v, want %v", out.Shape, ref.Shape)
		}
		want := make([]int32, ref.Len())
		for i, v := range ref.F32 {
			want[i] = qtQuant64(float64(v), sy, zy, Uint8)
		}
		qtCheckInts(t, fmt.Sprint("avgpool include_pad=", includePad), out, want, 1)
	}
	// Global average pool, NCHW and NHWC.
	for _, cl := range []int64{0, 1} {
		out := qtEval(t, qtNode(msDomain, "QLinearGlobalAveragePool", 5, map[string]Attr{"channels_last": {Kind: AttrInt, I: cl}}), 2,
			x, qtScalarF(sx), qtScalarQ(Uint8, zx), qtScalarF(sy), qtScalarQ(Uint8, zy))[0]
		var want []int32
		if cl == 0 {
			if !SameShape(out.Shape, []int{2, 3, 1, 1}) {
				t.Fatalf("shape %v", out.Shape)
			}
			for p := 0; p < 6; p++ {
				var s float64
				for i := 0; i < 42; i++ {
					s += float64(int32(x.U8[p*42+i]) - zx)
				}
				want = append(want, qtQuant64(s*float64(sx)/42, sy, zy, Uint8))
			}
		} else {
			if !SameShape(out.Shape, []int{2, 1, 1, 6}) {
				t.Fatalf("shape %v", out.Shape)
			}
			for img := 0; img < 2; img++ {
				for c := 0; c < 6; c++ {
					var s float64
					for i := 0; i < 21; i++ {
						s += float64(int32(x.U8[(img*21+i)*6+c]) - zx)
					}
					want = append(want, qtQuant64(s*float64(sx)/21, sy, zy, Uint8))
				}
			}
		}
		qtCheckInts(t, fmt.Sprint("global avgpool channels_last=", cl), out, want, 1)
	}
}

// TestQuantThreadsBitIdentical checks that the quantised products give the
// same bits for every thread count.
func TestQuantThreadsBitIdentical(t *testing.T) {
	r := rand.New(rand.NewPCG(17, 18))
	c := qtConvCases[6]
	x, w := qtRand(r, c.xdt, c.x...), qtRand(r, c.wdt, c.w...)
	sw := New(Float32, c.w[0])
	for j := range sw.F32 {
		sw.F32[j] = 0.001 + 0.01*r.Float32()
	}
	var ref *Tensor
	for _, threads := range []int{1, 2, 3, 4} {
		out := qtEval(t, qtNode("", "QLinearConv", 8, c.attrs()), threads, x, qtScalarF(0.05), qtScalarQ(Uint8, 7), w, sw, New(Int8, c.w[0]), qtScalarF(0.2), qtScalarQ(Uint8, 128))[0]
		if ref == nil {
			ref = out
			continue
		}
		for i := range ref.U8 {
			if ref.U8[i] != out.U8[i] {
				t.Fatalf("threads %d: [%d] = %d, with 1 thread %d", threads, i, out.U8[i], ref.U8[i])
			}
		}
	}
}

func TestQuantOpErrors(t *testing.T) {
	u := qtVecQ(Uint8, 1, 2)
	for _, c := range []struct {
		name string
		node *Node
		ins  []*Tensor
		msg  string
	}{
		{"QLinearMatMul float A", qtNode("", "QLinearMatMul", 8, nil),
			[]*Tensor{qtVecF(1, 2), qtScalarF(1), qtScalarQ(Uint8, 0), u, qtScalarF(1), qtScalarQ(Uint8, 0), qtScalarF(1), qtScalarQ(Uint8, 0)}, "int8 or uint8"},
		{"QLinearMatMul zp type", qtNode("", "QLinearMatMul", 8, nil),
			[]*Tensor{New(Uint8, 2, 2), qtScalarF(1), qtScalarQ(Int8, 0), New(Uint8, 2, 2), qtScalarF(1), qtScalarQ(Uint8, 0), qtScalarF(1), qtScalarQ(Uint8, 0)}, "same type"},
		{"QLinearConv bias type", qtNode("", "QLinearConv", 9, nil),
			[]*Tensor{New(Uint8, 1, 1, 3, 3), qtScalarF(1), qtScalarQ(Uint8, 0), New(Int8, 2, 1, 1, 1), qtScalarF(1), qtScalarQ(Int8, 0), qtScalarF(1), qtScalarQ(Uint8, 0), qtVecF(1, 2)}, "int32"},
		{"QLinearConv w_scale size", qtNode("", "QLinearConv", 8, nil),
			[]*Tensor{New(Uint8, 1, 1, 3, 3), qtScalarF(1), qtScalarQ(Uint8, 0), New(Int8, 2, 1, 1, 1), qtVecF(1, 2, 3), qtScalarQ(Int8, 0), qtScalarF(1), qtScalarQ(Uint8, 0)}, "w_scale"},
		{"QuantizeLinear zero scale", qtNode("", "QuantizeLinear", 2, nil), []*Tensor{qtVecF(1), qtScalarF(0)}, "non-zero"},
		{"QLinearAdd mixed types", qtNode(msDomain, "QLinearAdd", 8, nil),
			[]*Tensor{u, qtScalarF(1), qtScalarQ(Uint8, 0), qtVecQ(Int8, 1, 2), qtScalarF(1), qtScalarQ(Int8, 0), qtScalarF(1), qtScalarQ(Uint8, 0)}, "both"},
		{"QLinearConcat no axis", qtNode(msDomain, "QLinearConcat", 5, nil),
			[]*Tensor{qtScalarF(1), qtScalarQ(Uint8, 0), u, qtScalarF(1), qtScalarQ(Uint8, 0)}, "axis"},
	} {
		_, err := EvalNode(context.Background(), c.node, c.ins, 1)
		if err == nil || !containsStr(err.Error(), c.msg) {
			t.Errorf("%s: error %v, want one mentioning %q", c.name, err, c.msg)
		}
	}
}

func containsStr(s, sub string) bool {
	for i := 0; i+len(sub) <= len(s); i++ {
		if s[i:i+len(sub)] == sub {
			return true
		}
	}
	return false
}

// qtEvalDynamic runs a node through an executor with every input a graph
// input, so that no parameter is known at plan time: the ops then take
// their reference paths (weights packed per run, parameters read per run).
func qtEvalDynamic(t *testing.T, n *Node, threads int, ins ...*Tensor) *Tensor {
	t.Helper()
	g := NewGraph("dyn")
	feeds := map[string]*Tensor{}
	for i, in := range ins {
		if in == nil {
			n.Inputs[i] = ""
			continue
		}
		g.Inputs = append(g.Inputs, ValueInfo{Name: n.Inputs[i], DType: in.DType, Shape: in.Shape})
		feeds[n.Inputs[i]] = in
	}
	g.Nodes = []*Node{n}
	g.Outputs = []ValueInfo{{Name: n.Outputs[0]}}
	ex, err := NewExecutor(g, Options{Threads: threads, NoOptimize: true})
	if err != nil {
		t.Fatalf("%v: %v", n, err)
	}
	res, err := ex.Run(context.Background(), feeds)
	if err != nil {
		t.Fatalf("%v: %v", n, err)
	}
	return res[n.Outputs[0]]
}

// TestQuantFastMatchesReference checks that the int8 kernels (constant
// weights) and the reference loops (weights known only at run time) give
// the same bits, for every output kind and fused activation.
func TestQuantFastMatchesReference(t *testing.T) {
	r := rand.New(rand.NewPCG(19, 20))
	type variant struct {
		dom, op string
		act     string
		float   bool
	}
	variants := []variant{{"", "QLinearConv", "", false}, {FusedDomain, "QConv", "Relu", false}, {FusedDomain, "QConv", "Clip", false},
		{FusedDomain, "QConv", "Relu", true}, {FusedDomain, "QConv", "Clip", true}, {"", "ConvInteger", "", false}}
	for ci, c := range qtConvCases {
		for _, v := range variants {
			name := fmt.Sprintf("case%d %s %s %s float=%v", ci, v.dom, v.op, v.act, v.float)
			x, w := qtRand(r, c.xdt, c.x...), qtRand(r, c.wdt, c.w...)
			M := c.w[0]
			sw := New(Float32, M)
			for j := range sw.F32 {
				sw.F32[j] = 0.002 + 0.02*r.Float32()
			}
			zw := qtRand(r, c.wdt, M)
			bias := New(Int32, M)
			for j := range bias.I32 {
				bias.I32[j] = int32(r.IntN(4001) - 2000)
			}
			attrs := c.attrs()
			if v.act != "" {
				attrs["activation"] = Attr{Kind: AttrString, S: v.act}
				attrs["activation_alpha"] = Attr{Kind: AttrFloat, F: -1}
				attrs["activation_beta"] = Attr{Kind: AttrFloat, F: 3}
			}
			var ins []*Tensor
			if v.op == "ConvInteger" {
				ins = []*Tensor{x, w, qtRand(r, c.xdt, 1), zw}
			} else {
				ys, yz := qtScalarF(0.3), qtRand(r, c.ydt, 1)
				if v.float {
					ys, yz = nil, nil
				}
				ins = []*Tensor{x, qtScalarF(0.05), qtRand(r, c.xdt, 1), w, sw, zw, ys, yz, bias}
			}
			fast := qtEval(t, qtNode(v.dom, v.op, len(ins), attrs), 2, ins...)[0]
			ref := qtEvalDynamic(t, qtNode(v.dom, v.op, len(ins), attrs), 2, ins...)
			for i := 0; i < fast.Len(); i++ {
				if fast.Float64At(i) != ref.Float64At(i) {
					t.Fatalf("%s: [%d] fast %g, reference %g", name, i, fast.Float64At(i), ref.Float64At(i))
				}
			}
		}
	}
	for _, v := range []variant{{"", "QLinearMatMul", "", false}, {"", "MatMulInteger", "", false}, {FusedDomain, "QGemm", "Clip", false},
		{FusedDomain, "QGemm", "Relu", true}, {msDomain, "QGemm", "", true}} {
		for _, sh := range [][3]int{{1, 7, 5}, {17, 33, 40}, {64, 300, 3}} {
			m, k, n := sh[0], sh[1], sh[2]
			for _, adt := range []DType{Uint8, Int8} {
				a, b := qtRand(r, adt, m, k), qtRand(r, Int8, k, n)
				sb := New(Float32, n)
				for j := range sb.F32 {
					sb.F32[j] = 0.002 + 0.02*r.Float32()
				}
				var ins []*Tensor
				attrs := map[string]Attr{}
				switch v.op {
				case "QLinearMatMul":
					ins = []*Tensor{a, qtScalarF(0.05), qtRand(r, adt, 1), b, sb, qtRand(r, Int8, n), qtScalarF(0.7), qtScalarQ(Uint8, 100)}
				case "MatMulInteger":
					ins = []*Tensor{a, b, qtRand(r, adt, 1), qtRand(r, Int8, n)}
				default:
					bias := New(Int32, n)
					for j := range bias.I32 {
						bias.I32[j] = int32(r.IntN(4001) - 2000)
					}
					ys, yz := qtScalarF(0.7), qtScalarQ(Int8, -3)
					if v.float {
						ys, yz = nil, nil
					}
					ins = []*Tensor{a, qtScalarF(0.05), qtRand(r, adt, 1), b, sb, qtRand(r, Int8, n), bias, ys, yz}
					if v.act != "" {
						attrs["activation"] = Attr{Kind: AttrString, S: v.act}
						attrs["activation_alpha"] = Attr{Kind: AttrFloat, F: -1}
						attrs["activation_beta"] = Attr{Kind: AttrFloat, F: 3}
					}
				}
				name := fmt.Sprintf("%s %s %v %v", v.dom, v.op, sh, adt)
				fast := qtEval(t, qtNode(v.dom, v.op, len(ins), attrs), 2, ins...)[0]
				ref := qtEvalDynamic(t, qtNode(v.dom, v.op, len(ins), attrs), 2, ins...)
				for i := 0; i < fast.Len(); i++ {
					if fast.Float64At(i) != ref.Float64At(i) {
						t.Fatalf("%s: [%d] fast %g, reference %g", name, i, fast.Float64At(i), ref.Float64At(i))
					}
				}
			}
		}
	}
}

// qtBenchNode compiles a node once and runs it b.N times.
func qtBenchNode(b *testing.B, n *Node, threads int, macs int64, ins ...*Tensor) {
	metas := make([]ValueMeta, len(ins))
	for i, t := range ins {
		if t == nil {
			n.Inputs[i] = ""
			continue
		}
		metas[i] = ValueMeta{DType: t.DType, Shape: t.Shape, Const: t}
	}
	metas[0].Const = nil // the activation varies
	k, out, err := CompileNode(n, metas)
	if err != nil {
		b.Fatal(err)
	}
	y := New(out[0].DType, out[0].Shape...)
	ec := &ExecContext{Ctx: context.Background(), Threads: threads}
	if w, ok := k.(WorkspaceUser); ok {
		ec.Workspace = make([]float32, w.WorkspaceSize())
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := k.Run(ec, ins, []*Tensor{y}); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(2*macs)*float64(b.N)/b.Elapsed().Seconds()/1e9, "GOP/s")
}

// BenchmarkQLinearConv is a 3x3 convolution of the ResNet fixture's size
// (32 channels, 16x16, batch 32) through QLinearConv.
func BenchmarkQLinearConv(b *testing.B) {
	r := rand.New(rand.NewPCG(1, 2))
	x, w := qtRand(r, Uint8, 32, 32, 16, 16), qtRand(r, Int8, 32, 32, 3, 3)
	for i := range w.I8 {
		w.I8[i] /= 2 // 7-bit weights
	}
	n := qtNode("", "QLinearConv", 9, map[string]Attr{"pads": {Kind: AttrInts, Ints: []int64{1, 1, 1, 1}}})
	macs := int64(32 * 32 * 16 * 16 * 32 * 9)
	for _, threads := range []int{1, 2} {
		b.Run(fmt.Sprint("threads=", threads), func(b *testing.B) {
			qtBenchNode(b, n, threads, macs, x, qtScalarF(0.02), qtScalarQ(Uint8, 128), w, qtScalarF(0.01), qtScalarQ(Int8, 0),
				qtScalarF(0.1), qtScalarQ(Uint8, 128), New(Int32, 32))
		})
	}
}

// BenchmarkQLinearMatMul is a 256x1024x1024 product.
func BenchmarkQLinearMatMul(b *testing.B) {
	r := rand.New(rand.NewPCG(3, 4))
	a, w := qtRand(r, Uint8, 256, 1024), qtRand(r, Int8, 1024, 1024)
	for i := range w.I8 {
		w.I8[i] /= 2
	}
	n := qtNode("", "QLinearMatMul", 8, nil)
	for _, threads := range []int{1, 2} {
		b.Run(fmt.Sprint("threads=", threads), func(b *testing.B) {
			qtBenchNode(b, n, threads, 256*1024*1024, a, qtScalarF(0.02), qtScalarQ(Uint8, 128), w, qtScalarF(0.01), qtScalarQ(Int8, 0),
				qtScalarF(0.1), qtScalarQ(Uint8, 128))
		})
	}
}
