package runtime

import (
	"context"
	"fmt"
	"math"
	"strings"
	"testing"
)

// shpNode builds a node with inputs i0..i<nIn-1> and outputs o0..o<nOut-1>.
func shpNode(op string, nIn, nOut int, attrs map[string]Attr) *Node {
	n := &Node{Name: "n_" + op, OpType: op, Attrs: attrs}
	for i := 0; i < nIn; i++ {
		n.Inputs = append(n.Inputs, fmt.Sprintf("i%d", i))
	}
	for i := 0; i < nOut; i++ {
		n.Outputs = append(n.Outputs, fmt.Sprintf("o%d", i))
	}
	return n
}

// shpAllConst lists the ops whose every input must be known at plan time.
var shpAllConst = map[string]bool{"ConstantOfShape": true, "Range": true}

// shpRun compiles n with input 0 as a run-time value (every other present
// input known at plan time, as initializers are) and calls Run directly,
// even for view kernels, with the given thread count.
func shpRun(n *Node, ins []*Tensor, threads int) ([]*Tensor, error) {
	metas := make([]ValueMeta, len(ins))
	for i, t := range ins {
		if t == nil {
			continue
		}
		metas[i] = ValueMeta{DType: t.DType, Shape: t.Shape}
		if i > 0 || shpAllConst[n.OpType] {
			metas[i].Const = t
		}
	}
	k, outMeta, err := CompileNode(n, metas)
	if err != nil {
		return nil, err
	}
	outs := make([]*Tensor, len(n.Outputs))
	for i := range outs {
		outs[i] = New(outMeta[i].DType, outMeta[i].Shape...)
		shpPoison(outs[i])
	}
	ec := &ExecContext{Ctx: context.Background(), Threads: threads}
	if w, ok := k.(WorkspaceUser); ok {
		ec.Workspace = make([]float32, w.WorkspaceSize())
	}
	if err := k.Run(ec, ins, outs); err != nil {
		return nil, err
	}
	return outs, nil
}

// shpPoison fills a fresh output with garbage, as the executor's reused
// buffers would hold.
func shpPoison(t *Tensor) {
	for i := range t.F32 {
		t.F32[i] = float32(math.NaN())
	}
	for i := range t.I8 {
		t.I8[i] = 0x55
	}
	for i := range t.U8 {
		t.U8[i] = 0xAA
	}
	for i := range t.I32 {
		t.I32[i] = -12345
	}
	for i := range t.I64 {
		t.I64[i] = -12345
	}
	for i := range t.B {
		t.B[i] = i%2 == 0
	}
}

// shpEval runs n through shpRun with 1 and 3 threads and through EvalNode
// (all inputs constant, views aliased) and checks that the three agree
// bit for bit.
func shpEval(t *testing.T, n *Node, ins []*Tensor) ([]*Tensor, error) {
	t.Helper()
	a, err := shpRun(n, ins, 1)
	if err != nil {
		return nil, err
	}
	b, err := shpRun(n, ins, 3)
	if err != nil {
		t.Fatalf("%v: 3 threads failed but 1 thread did not: %v", n, err)
	}
	c, err := EvalNode(context.Background(), n, ins, 2)
	if err != nil {
		t.Fatalf("%v: EvalNode failed but Run did not: %v", n, err)
	}
	for i := range a {
		if err := shpSame(a[i], b[i]); err != nil {
			t.Fatalf("%v output %d: 1 vs 3 threads: %v", n, i, err)
		}
		if err := shpSame(a[i], c[i]); err != nil {
			t.Fatalf("%v output %d: Run vs EvalNode: %v", n, i, err)
		}
	}
	return a, nil
}

// shpSame compares dtype, shape and every element bit for bit (any NaN
// matches any NaN).
func shpSame(got, want *Tensor) error {
	if got.DType != want.DType || !SameShape(got.Shape, want.Shape) {
		return fmt.Errorf("got %v %v, want %v %v", got.DType, got.Shape, want.DType, want.Shape)
	}
	if err := checkData(got); err != nil {
		return fmt.Errorf("got: %w", err)
	}
	for i := 0; i < want.Len(); i++ {
		if got.DType == Float32 {
			g, w := got.F32[i], want.F32[i]
			if math.Float32bits(g) != math.Float32bits(w) && !(g != g && w != w) {
				return fmt.Errorf("element %d: got %v, want %v", i, got.F32[i], want.F32[i])
			}
			continue
		}
		if got.Float64At(i) != want.Float64At(i) {
			return fmt.Errorf("element %d: got %v, want %v", i, got.Float64At(i), want.Float64At(i))
		}
	}
	return nil
}

// shpT builds a tensor of dtype dt and shape from float64 values.
func shpT(dt DType, shape []int, vals ...float64) *Tensor {
	t := New(dt, shape...)
	if len(vals) != t.Len() {
		panic(fmt.Sprintf("shpT: %d values for shape %v", len(vals), shape))
	}
	for i, v := range vals {
		shpSet(t, i, v)
	}
	return t
}

func shpSet(t *Tensor, i int, v float64) {
	switch t.DType {
	case Float32:
		t.F32[i] = float32(v)
	case Int8:
		t.I8[i] = int8(v)
	case Uint8:
		t.U8[i] = uint8(v)
	case Int32:
		t.I32[i] = int32(v)
	case Int64:
		t.I64[i] = int64(v)
	case Bool:
		t.B[i] = v != 0
	}
}

// shpSeq is a tensor holding 0, 1, 2, ... (wrapping for small types; bool
// alternates in a pattern that is not periodic in small powers of two).
func shpSeq(dt DType, shape ...int) *Tensor {
	t := New(dt, shape...)
	for i := 0; i < t.Len(); i++ {
		v := float64(i)
		switch dt {
		case Int8:
			v = float64(int8(i % 251))
		case Uint8:
			v = float64(i % 253)
		case Bool:
			v = float64((i * 7 / 3) % 2)
		}
		shpSet(t, i, v)
	}
	return t
}

// shpInts is a 1-D int64 tensor.
func shpInts(v ...int64) *Tensor { return FromInt64(append([]int64{}, v...), len(v)) }

func shpAttrs(kv ...any) map[string]Attr {
	m := map[string]Attr{}
	for i := 0; i < len(kv); i += 2 {
		name := kv[i].(string)
		switch v := kv[i+1].(type) {
		case int:
			m[name] = Attr{Kind: AttrInt, I: int64(v)}
		case float32:
			m[name] = Attr{Kind: AttrFloat, F: v}
		case string:
			m[name] = Attr{Kind: AttrString, S: v}
		case []int64:
			m[name] = Attr{Kind: AttrInts, Ints: v}
		case []float32:
			m[name] = Attr{Kind: AttrFloats, Floats: v}
		case *Tensor:
			m[name] = Attr{Kind: AttrTensor, T: v}
		default:
			panic(fmt.Sprintf("shpAttrs: %T", v))
		}
	}
	return m
}

var shpAllTypes = []DType{Float32, Int8, Uint8, Int32, Int64, Bool}

// shpCase is one table entry: an op with attributes, its inputs, and either
// the expected output shapes (data taken from the input in order, for views)
// or an error substring.
type shpCase struct {
	name    string
	op      string
	attrs   map[string]Attr
	ins     []*Tensor
	nOut    int
	want    []*Tensor // full expected outputs, or nil
	shapes  [][]int   // expected shapes when want is nil
	wantErr string
}

func shpRunCases(t *testing.T, cases []shpCase) {
	t.Helper()
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			nOut := max(c.nOut, 1)
			n := shpNode(c.op, len(c.ins), nOut, c.attrs)
			outs, err := shpEval(t, n, c.ins)
			if c.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), c.wantErr) {
					t.Fatalf("case %d: error = %v, want it to contain %q", i, err, c.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("case %d: %v", i, err)
			}
			if len(outs) != nOut {
				t.Fatalf("case %d: %d outputs, want %d", i, len(outs), nOut)
			}
			for j, o := range outs {
				if c.want != nil {
					if err := shpSame(o, c.want[j]); err != nil {
						t.Fatalf("case %d output %d: %v", i, j, err)
					}
					continue
				}
				if !SameShape(o.Shape, c.shapes[j]) {
					t.Fatalf("case %d output %d: shape %v, want %v", i, j, o.Shape, c.shapes[j])
				}
			}
		})
	}
}

func TestViewOps(t *testing.T) {
	x := shpSeq(Float32, 2, 3, 4)
	one := shpSeq(Float32, 1, 3, 1, 2)
	cases := []shpCase{
		{name: "reshape", op: "Reshape", ins: []*Tensor{x, shpInts(4, 6)}, shapes: [][]int{{4, 6}}},
		{name: "reshape -1", op: "Reshape", ins: []*Tensor{x, shpInts(-1, 2)}, shapes: [][]int{{12, 2}}},
		{name: "reshape 0 copies", op: "Reshape", ins: []*Tensor{x, shpInts(0, -1)}, shapes: [][]int{{2, 12}}},
		{name: "reshape 0 and -1", op: "Reshape", ins: []*Tensor{x, shpInts(0, 0, -1, 1)}, shapes: [][]int{{2, 3, 4, 1}}},
		{name: "reshape scalar", op: "Reshape", ins: []*Tensor{shpSeq(Int64, 1), shpInts()}, shapes: [][]int{{}}},
		{name: "reshape allowzero", op: "Reshape", attrs: shpAttrs("allowzero", 1), ins: []*Tensor{New(Float32, 0, 3), shpInts(3, 0)}, shapes: [][]int{{3, 0}}},
		{name: "reshape allowzero=0 copies zero dim", op: "Reshape", ins: []*Tensor{New(Float32, 0, 3), shpInts(0, -1)}, shapes: [][]int{{0, 0}}},
		{name: "reshape bool", op: "Reshape", ins: []*Tensor{shpSeq(Bool, 6), shpInts(3, 2)}, shapes: [][]int{{3, 2}}},
		{name: "reshape bad product", op: "Reshape", ins: []*Tensor{x, shpInts(5, 5)}, wantErr: "cannot reshape"},
		{name: "reshape -1 not divisible", op: "Reshape", ins: []*Tensor{x, shpInts(5, -1)}, wantErr: "not a multiple"},
		{name: "reshape two -1", op: "Reshape", ins: []*Tensor{x, shpInts(-1, -1)}, wantErr: "more than one -1"},
		{name: "reshape -2", op: "Reshape", ins: []*Tensor{x, shpInts(-2, 12)}, wantErr: "invalid dimension"},
		{name: "reshape 0 beyond rank", op: "Reshape", ins: []*Tensor{shpSeq(Float32, 6), shpInts(6, 0)}, wantErr: "has rank 1"},
		{name: "reshape allowzero with -1", op: "Reshape", attrs: shpAttrs("allowzero", 1), ins: []*Tensor{New(Float32, 0, 3), shpInts(0, -1)}, wantErr: "both a 0"},
		{name: "reshape float shape", op: "Reshape", ins: []*Tensor{x, shpSeq(Float32, 2)}, wantErr: "must be int64"},

		{name: "flatten default", op: "Flatten", ins: []*Tensor{x}, shapes: [][]int{{2, 12}}},
		{name: "flatten 0", op: "Flatten", attrs: shpAttrs("axis", 0), ins: []*Tensor{x}, shapes: [][]int{{1, 24}}},
		{name: "flatten rank", op: "Flatten", attrs: shpAttrs("axis", 3), ins: []*Tensor{x}, shapes: [][]int{{24, 1}}},
		{name: "flatten -1", op: "Flatten", attrs: shpAttrs("axis", -1), ins: []*Tensor{x}, shapes: [][]int{{6, 4}}},
		{name: "flatten -3", op: "Flatten", attrs: shpAttrs("axis", -3), ins: []*Tensor{x}, shapes: [][]int{{1, 24}}},
		{name: "flatten out of range", op: "Flatten", attrs: shpAttrs("axis", 4), ins: []*Tensor{x}, wantErr: "out of range"},
		{name: "flatten out of range neg", op: "Flatten", attrs: shpAttrs("axis", -4), ins: []*Tensor{x}, wantErr: "out of range"},

		{name: "squeeze all", op: "Squeeze", ins: []*Tensor{one}, shapes: [][]int{{3, 2}}},
		{name: "squeeze axes", op: "Squeeze", ins: []*Tensor{one, shpInts(2)}, shapes: [][]int{{1, 3, 2}}},
		{name: "squeeze negative", op: "Squeeze", ins: []*Tensor{one, shpInts(-2, 0)}, shapes: [][]int{{3, 2}}},
		{name: "squeeze empty axes", op: "Squeeze", ins: []*Tensor{one, shpInts()}, shapes: [][]int{{3, 2}}},
		{name: "squeeze not one", op: "Squeeze", ins: []*Tensor{one, shpInts(1)}, wantErr: "not 1"},
		{name: "squeeze out of range", op: "Squeeze", ins: []*Tensor{one, shpInts(4)}, wantErr: "out of range"},
		{name: "squeeze duplicate", op: "Squeeze", ins: []*Tensor{one, shpInts(0, -4)}, wantErr: "twice"},

		{name: "unsqueeze 0", op: "Unsqueeze", ins: []*Tensor{x, shpInts(0)}, shapes: [][]int{{1, 2, 3, 4}}},
		{name: "unsqueeze two", op: "Unsqueeze", ins: []*Tensor{x, shpInts(1, 4)}, shapes: [][]int{{2, 1, 3, 4, 1}}},
		{name: "unsqueeze unsorted", op: "Unsqueeze", ins: []*Tensor{x, shpInts(5, 4, 2)}, shapes: [][]int{{2, 3, 1, 4, 1, 1}}},
		{name: "unsqueeze negative", op: "Unsqueeze", ins: []*Tensor{x, shpInts(-1)}, shapes: [][]int{{2, 3, 4, 1}}},
		{name: "unsqueeze scalar", op: "Unsqueeze", ins: []*Tensor{shpSeq(Int64), shpInts(0)}, shapes: [][]int{{1}}},
		{name: "unsqueeze out of range", op: "Unsqueeze", ins: []*Tensor{x, shpInts(4)}, wantErr: "out of range"},
		{name: "unsqueeze duplicate", op: "Unsqueeze", ins: []*Tensor{x, shpInts(0, -5)}, wantErr: "twice"},

		{name: "identity", op: "Identity", ins: []*Tensor{x}, shapes: [][]int{{2, 3, 4}}},
		{name: "identity int8", op: "Identity", ins: []*Tensor{shpSeq(Int8, 5)}, shapes: [][]int{{5}}},
		{name: "dropout", op: "Dropout", ins: []*Tensor{x}, shapes: [][]int{{2, 3, 4}}},
		{name: "dropout ratio", op: "Dropout", ins: []*Tensor{x, shpT(Float32, nil, 0.5)}, shapes: [][]int{{2, 3, 4}}},
		{name: "dropout training false", op: "Dropout", ins: []*Tensor{x, shpT(Float32, nil, 0.5), shpT(Bool, nil, 0)}, shapes: [][]int{{2, 3, 4}}},
		// Training with ratio 0 is the identity (TestDropoutTraining covers
		// the random masks).
		{name: "dropout training ratio 0", op: "Dropout", ins: []*Tensor{x, shpT(Float32, nil, 0), shpT(Bool, nil, 1)}, shapes: [][]int{{2, 3, 4}}},
	}
	shpRunCases(t, cases)
	// Every successful view keeps the data in order.
	for _, c := range cases {
		if c.wantErr != "" {
			continue
		}
		outs, err := shpRun(shpNode(c.op, len(c.ins), 1, c.attrs), c.ins, 1)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if err := shpSame(outs[0], c.ins[0].Reshaped(outs[0].Shape...)); err != nil {
			t.Errorf("%s: data changed: %v", c.name, err)
		}
	}
}

func TestViewsAlias(t *testing.T) {
	for _, op := range []string{"Reshape", "Flatten", "Squeeze", "Unsqueeze", "Identity", "Dropout"} {
		ins := []ValueMeta{{DType: Float32, Shape: []int{2, 3}}}
		switch op {
		case "Reshape":
			ins = append(ins, ValueMeta{DType: Int64, Shape: []int{1}, Const: shpInts(6)})
		case "Unsqueeze":
			ins = append(ins, ValueMeta{DType: Int64, Shape: []int{1}, Const: shpInts(0)})
		}
		k, _, err := CompileNode(shpNode(op, len(ins), 1, nil), ins)
		if err != nil {
			t.Fatalf("%s: %v", op, err)
		}
		if a, ok := k.(Aliaser); !ok || a.AliasInput() != 0 {
			t.Errorf("%s: kernel is not a view of input 0", op)
		}
	}
}

func TestReshapeNeedsConstShape(t *testing.T) {
	n := shpNode("Reshape", 2, 1, nil)
	_, _, err := CompileNode(n, []ValueMeta{{DType: Float32, Shape: []int{2, 3}}, {DType: Int64, Shape: []int{2}}})
	if err == nil || !strings.Contains(err.Error(), "Reshape needs a shape known at plan time") {
		t.Fatalf("error = %v", err)
	}
	for _, op := range []string{"Unsqueeze", "Squeeze", "Slice", "Tile", "Pad"} {
		ins := []ValueMeta{{DType: Float32, Shape: []int{2, 3}}, {DType: Int64, Shape: []int{2}}}
		if op == "Slice" {
			ins = append(ins, ValueMeta{DType: Int64, Shape: []int{2}})
		}
		_, _, err := CompileNode(shpNode(op, len(ins), 1, nil), ins)
		if err == nil || !strings.Contains(err.Error(), "plan time") {
			t.Errorf("%s with a run-time input 1: error = %v", op, err)
		}
	}
}

func TestDropoutMask(t *testing.T) {
	x := shpSeq(Float32, 3, 2)
	outs, err := shpEval(t, shpNode("Dropout", 1, 2, nil), []*Tensor{x})
	if err != nil {
		t.Fatal(err)
	}
	if err := shpSame(outs[0], x); err != nil {
		t.Fatal(err)
	}
	if err := shpSame(outs[1], shpT(Bool, []int{3, 2}, 1, 1, 1, 1, 1, 1)); err != nil {
		t.Fatal(err)
	}
}

func TestShapeSizeConstant(t *testing.T) {
	x := New(Float32, 2, 3, 4, 5)
	fl := func(v ...float64) []float64 { return v }
	cases := []shpCase{
		{name: "shape", op: "Shape", ins: []*Tensor{x}, want: []*Tensor{shpInts(2, 3, 4, 5)}},
		{name: "shape start 1", op: "Shape", attrs: shpAttrs("start", 1), ins: []*Tensor{x}, want: []*Tensor{shpInts(3, 4, 5)}},
		{name: "shape end -1", op: "Shape", attrs: shpAttrs("end", -1), ins: []*Tensor{x}, want: []*Tensor{shpInts(2, 3, 4)}},
		{name: "shape start -1", op: "Shape", attrs: shpAttrs("start", -1), ins: []*Tensor{x}, want: []*Tensor{shpInts(5)}},
		{name: "shape 1..-1", op: "Shape", attrs: shpAttrs("start", 1, "end", -1), ins: []*Tensor{x}, want: []*Tensor{shpInts(3, 4)}},
		{name: "shape clip", op: "Shape", attrs: shpAttrs("start", -10, "end", 10), ins: []*Tensor{x}, want: []*Tensor{shpInts(2, 3, 4, 5)}},
		{name: "shape empty", op: "Shape", attrs: shpAttrs("start", 3, "end", 1), ins: []*Tensor{x}, want: []*Tensor{shpInts()}},
		{name: "shape scalar", op: "Shape", ins: []*Tensor{New(Int64)}, want: []*Tensor{shpInts()}},
		{name: "size", op: "Size", ins: []*Tensor{x}, want: []*Tensor{FromInt64([]int64{120})}},
		{name: "size empty", op: "Size", ins: []*Tensor{New(Bool, 3, 0)}, want: []*Tensor{FromInt64([]int64{0})}},

		{name: "constant value", op: "Constant", attrs: shpAttrs("value", shpT(Int32, []int{2}, 7, 8)), want: []*Tensor{shpT(Int32, []int{2}, 7, 8)}},
		{name: "constant value_float", op: "Constant", attrs: shpAttrs("value_float", float32(1.5)), want: []*Tensor{shpT(Float32, nil, 1.5)}},
		{name: "constant value_floats", op: "Constant", attrs: shpAttrs("value_floats", []float32{1, 2}), want: []*Tensor{shpT(Float32, []int{2}, 1, 2)}},
		{name: "constant value_int", op: "Constant", attrs: shpAttrs("value_int", 3), want: []*Tensor{FromInt64([]int64{3})}},
		{name: "constant value_ints", op: "Constant", attrs: shpAttrs("value_ints", []int64{3, 4}), want: []*Tensor{shpInts(3, 4)}},
		{name: "constant none", op: "Constant", wantErr: "exactly one"},
		{name: "constant two", op: "Constant", attrs: shpAttrs("value_int", 3, "value_float", float32(1)), wantErr: "exactly one"},
		{name: "constant string", op: "Constant", attrs: map[string]Attr{"value_string": {Kind: AttrString, S: "x"}}, wantErr: "not supported"},

		{name: "constantofshape default", op: "ConstantOfShape", ins: []*Tensor{shpInts(2, 2)}, want: []*Tensor{shpT(Float32, []int{2, 2}, 0, 0, 0, 0)}},
		{name: "constantofshape int", op: "ConstantOfShape", attrs: shpAttrs("value", shpT(Int32, []int{1}, 7)), ins: []*Tensor{shpInts(3)}, want: []*Tensor{shpT(Int32, []int{3}, 7, 7, 7)}},
		{name: "constantofshape zero dim", op: "ConstantOfShape", attrs: shpAttrs("value", shpT(Int64, []int{1}, 1)), ins: []*Tensor{shpInts(0, 2)}, want: []*Tensor{New(Int64, 0, 2)}},
		{name: "constantofshape scalar", op: "ConstantOfShape", attrs: shpAttrs("value", shpT(Bool, []int{1}, 1)), ins: []*Tensor{shpInts()}, want: []*Tensor{shpT(Bool, nil, 1)}},
		{name: "constantofshape negative", op: "ConstantOfShape", ins: []*Tensor{shpInts(2, -1)}, wantErr: "invalid dimension"},
		{name: "constantofshape value not scalar", op: "ConstantOfShape", attrs: shpAttrs("value", shpT(Int32, []int{2}, 1, 2)), ins: []*Tensor{shpInts(2)}, wantErr: "one-element"},

		{name: "range float", op: "Range", ins: []*Tensor{shpT(Float32, nil, 1), shpT(Float32, nil, 5), shpT(Float32, nil, 2)}, want: []*Tensor{shpT(Float32, []int{2}, 1, 3)}},
		{name: "range float fractional", op: "Range", ins: []*Tensor{shpT(Float32, nil, 0), shpT(Float32, nil, 1), shpT(Float32, nil, 0.25)}, want: []*Tensor{shpT(Float32, []int{4}, fl(0, 0.25, 0.5, 0.75)...)}},
		{name: "range int32 negative", op: "Range", ins: []*Tensor{shpT(Int32, nil, 10), shpT(Int32, nil, 6), shpT(Int32, nil, -3)}, want: []*Tensor{shpT(Int32, []int{2}, 10, 7)}},
		{name: "range int64", op: "Range", ins: []*Tensor{shpT(Int64, nil, 3), shpT(Int64, nil, 9), shpT(Int64, nil, 3)}, want: []*Tensor{shpT(Int64, []int{2}, 3, 6)}},
		{name: "range empty", op: "Range", ins: []*Tensor{shpT(Int64, nil, 3), shpT(Int64, nil, 1), shpT(Int64, nil, 1)}, want: []*Tensor{New(Int64, 0)}},
		{name: "range zero delta", op: "Range", ins: []*Tensor{shpT(Int64, nil, 3), shpT(Int64, nil, 1), shpT(Int64, nil, 0)}, wantErr: "non-zero"},
		{name: "range mixed types", op: "Range", ins: []*Tensor{shpT(Int64, nil, 3), shpT(Int32, nil, 1), shpT(Int64, nil, 1)}, wantErr: "one dtype"},
		{name: "range huge", op: "Range", ins: []*Tensor{shpT(Int64, nil, 0), FromInt64([]int64{math.MaxInt64}), shpT(Int64, nil, 1)}, wantErr: "too many"},
	}
	shpRunCases(t, cases)
}

func TestShapeOutputsAreConst(t *testing.T) {
	for _, op := range []string{"Shape", "Size"} {
		_, outs, err := CompileNode(shpNode(op, 1, 1, nil), []ValueMeta{{DType: Float32, Shape: []int{2, 5}}})
		if err != nil {
			t.Fatal(err)
		}
		if outs[0].Const == nil {
			t.Errorf("%s: output is not marked known at plan time", op)
		}
	}
}

func TestRangeCount(t *testing.T) {
	cases := []struct{ start, limit, delta, want int64 }{
		{0, 10, 3, 4}, {0, 9, 3, 3}, {10, 4, -2, 3}, {10, 3, -2, 4}, {5, 5, 1, 0}, {5, 6, -1, 0},
		{math.MinInt64, math.MaxInt64, math.MaxInt64, 3},
		{math.MaxInt64, math.MinInt64, math.MinInt64, 2},
	}
	for i, c := range cases {
		if got := rangeCount(c.start, c.limit, c.delta); got != c.want {
			t.Errorf("case %d: rangeCount(%d, %d, %d) = %d, want %d", i, c.start, c.limit, c.delta, got, c.want)
		}
	}
}

func TestAbsentRequiredInputs(t *testing.T) {
	x := ValueMeta{DType: Float32, Shape: []int{2, 3}}
	i := ValueMeta{DType: Int64, Shape: []int{1}, Const: shpInts(0)}
	var none ValueMeta
	cases := []struct {
		op string
		in []ValueMeta
	}{
		{"Reshape", []ValueMeta{x, none}},
		{"Reshape", []ValueMeta{none, i}},
		{"Unsqueeze", []ValueMeta{x, none}},
		{"Squeeze", []ValueMeta{none, i}},
		{"Slice", []ValueMeta{x, none, i}},
		{"Tile", []ValueMeta{x, none}},
		{"Gather", []ValueMeta{x, none}},
		{"Pad", []ValueMeta{x, none, i}},
		{"ReduceSum", []ValueMeta{none, i}},
		{"Range", []ValueMeta{i, none, i}},
	}
	for k, c := range cases {
		_, _, err := CompileNode(shpNode(c.op, len(c.in), 1, nil), c.in)
		if err == nil || !strings.Contains(err.Error(), "required") && !strings.Contains(err.Error(), "needs at least") {
			t.Errorf("case %d %s: error = %v, want a missing-input error", k, c.op, err)
		}
	}
}
