package runtime

import (
	"fmt"
	"math"
	"strings"
	"testing"
)

// redRand is a deterministic float32 tensor with values in [lo, hi).
func redRand(seed uint64, lo, hi float64, shape ...int) *Tensor {
	t := New(Float32, shape...)
	s := seed*0x9E3779B97F4A7C15 + 1
	for i := range t.F32 {
		s ^= s << 13
		s ^= s >> 7
		s ^= s << 17
		t.F32[i] = float32(lo + (hi-lo)*float64(s>>11)/float64(1<<53))
	}
	return t
}

// redRef reduces x over axes (already normalised, or all when nil) with a
// plain float64 loop in row-major order of the reduced indices.
func redRef(op string, x *Tensor, axes []int, keep bool) *Tensor {
	r := len(x.Shape)
	red := make([]bool, r)
	for _, a := range axes {
		red[a] = true
	}
	if axes == nil {
		for i := range red {
			red[i] = true
		}
	}
	var outShape, keptShape []int
	for d, sz := range x.Shape {
		if !red[d] {
			outShape = append(outShape, sz)
			keptShape = append(keptShape, sz)
		} else if keep {
			outShape = append(outShape, 1)
		}
	}
	out := New(x.DType, outShape...)
	nOut := NumElements(keptShape)
	isInt := x.DType != Float32
	// One pass over the input in row-major order collects, per output, its
	// values in row-major order of the reduced indices.
	all := make([][]float64, nOut)
	if NumElements(x.Shape) > 0 {
		idx := make([]int, r)
		for i := 0; ; i++ {
			o := 0
			for d := range idx {
				if !red[d] {
					o = o*x.Shape[d] + idx[d]
				}
			}
			all[o] = append(all[o], x.Float64At(i))
			if !shpNextIdx(idx, x.Shape) {
				break
			}
		}
	}
	for o := 0; o < nOut; o++ {
		vals := all[o]
		var acc float64
		switch op {
		case "ReduceProd":
			acc = 1
		case "ReduceMax":
			acc = math.Inf(-1)
		case "ReduceMin":
			acc = math.Inf(1)
		}
		mx := math.Inf(-1)
		for _, v := range vals {
			mx = math.Max(mx, v)
		}
		if math.IsInf(mx, 0) {
			mx = 0
		}
		for _, v := range vals {
			switch op {
			case "ReduceSum", "ReduceMean", "ReduceLogSum":
				acc += v
			case "ReduceL1":
				acc += math.Abs(v)
			case "ReduceL2", "ReduceSumSquare":
				acc += v * v
			case "ReduceProd":
				acc *= v
			case "ReduceMax":
				acc = math.Max(acc, v)
			case "ReduceMin":
				acc = math.Min(acc, v)
			case "ReduceLogSumExp":
				acc += math.Exp(v - mx)
			}
		}
		switch op {
		case "ReduceMean":
			if isInt {
				acc = float64(int64(acc) / int64(max(len(vals), 1)))
			} else {
				acc /= float64(len(vals))
			}
		case "ReduceL2":
			acc = math.Sqrt(acc)
		case "ReduceLogSum":
			acc = math.Log(acc)
		case "ReduceLogSumExp":
			acc = math.Log(acc) + mx
		}
		if isInt && math.IsInf(acc, 0) {
			// Max/Min over nothing: the type's extreme.
			acc = map[DType][2]float64{Int8: {-128, 127}, Uint8: {0, 255}, Int32: {math.MinInt32, math.MaxInt32}, Int64: {math.MinInt64, math.MaxInt64}}[x.DType][map[bool]int{true: 0, false: 1}[acc < 0]]
		}
		if isInt {
			// Wrap like the kernel does (int64 accumulator cast to T).
			shpSet(out, o, float64(int64(acc)))
			switch x.DType {
			case Int8:
				out.I8[o] = int8(int64(acc))
			case Uint8:
				out.U8[o] = uint8(int64(acc))
			case Int32:
				out.I32[o] = int32(int64(acc))
			}
			continue
		}
		out.F32[o] = float32(acc)
	}
	return out
}

var redFloatOps = []string{"ReduceSum", "ReduceMean", "ReduceMax", "ReduceMin", "ReduceProd", "ReduceL1", "ReduceL2", "ReduceSumSquare", "ReduceLogSum", "ReduceLogSumExp"}
var redIntOps = []string{"ReduceSum", "ReduceMean", "ReduceMax", "ReduceMin", "ReduceProd", "ReduceL1", "ReduceSumSquare"}

// redClose checks float outputs within a relative tolerance and integer
// outputs exactly.
func redClose(got, want *Tensor, tol float64) error {
	if got.DType != want.DType || !SameShape(got.Shape, want.Shape) {
		return fmt.Errorf("got %v %v, want %v %v", got.DType, got.Shape, want.DType, want.Shape)
	}
	for i := 0; i < want.Len(); i++ {
		g, w := got.Float64At(i), want.Float64At(i)
		if g == w || (math.IsNaN(g) && math.IsNaN(w)) {
			continue
		}
		if got.DType != Float32 || math.Abs(g-w) > tol*math.Max(1, math.Abs(w)) {
			return fmt.Errorf("element %d: got %v, want %v", i, g, w)
		}
	}
	return nil
}

func TestReduceAgainstReference(t *testing.T) {
	shape := []int{3, 4, 1, 5, 6}
	r := len(shape)
	xs := map[string]*Tensor{
		"signed":   redRand(1, -2, 2, shape...),
		"positive": redRand(2, 0.1, 2, shape...), // for ReduceLogSum
	}
	for mask := 0; mask < 1<<r; mask++ {
		var axes []int64
		var norm []int
		for a := 0; a < r; a++ {
			if mask&(1<<a) != 0 {
				// Alternate positive and negative spellings.
				ax := int64(a)
				if len(axes)%2 == 1 {
					ax -= int64(r)
				}
				axes = append(axes, ax)
				norm = append(norm, a)
			}
		}
		for _, op := range redFloatOps {
			x := xs["signed"]
			if op == "ReduceLogSum" {
				x = xs["positive"]
			}
			for _, keep := range []int{0, 1} {
				ins := []*Tensor{x}
				refAxes := norm
				if len(axes) > 0 {
					ins = append(ins, shpInts(axes...))
				} else {
					refAxes = nil
				}
				name := fmt.Sprintf("%s axes=%v keepdims=%d", op, axes, keep)
				outs, err := shpEval(t, shpNode(op, len(ins), 1, shpAttrs("keepdims", keep)), ins)
				if err != nil {
					t.Fatalf("%s: %v", name, err)
				}
				if err := redClose(outs[0], redRef(op, x, refAxes, keep == 1), 1e-6); err != nil {
					t.Fatalf("%s: %v", name, err)
				}
			}
		}
	}
}

func TestReduceIntegers(t *testing.T) {
	for _, dt := range []DType{Int8, Uint8, Int32, Int64} {
		x := New(dt, 3, 4, 5)
		for i := 0; i < x.Len(); i++ {
			shpSet(x, i, float64((i*37)%23-11))
		}
		if dt == Uint8 {
			for i := range x.U8 {
				x.U8[i] %= 9
			}
		}
		for _, op := range redIntOps {
			for _, axes := range [][]int64{{0}, {1}, {-1}, {0, 2}, nil} {
				ins := []*Tensor{x}
				var norm []int
				if axes != nil {
					ins = append(ins, shpInts(axes...))
					norm, _ = mvAxes(axes, 3, "axes")
				}
				outs, err := shpEval(t, shpNode(op, len(ins), 1, shpAttrs("keepdims", 0)), ins)
				if err != nil {
					t.Fatalf("%v %s %v: %v", dt, op, axes, err)
				}
				if err := redClose(outs[0], redRef(op, x, norm, false), 0); err != nil {
					t.Fatalf("%v %s %v: %v", dt, op, axes, err)
				}
			}
		}
	}
}

func TestReduceLargeParallel(t *testing.T) {
	x := redRand(3, -1, 1, 6, 300, 70)
	for _, axes := range [][]int64{{1}, {2}, {0, 2}, {0}, {0, 1, 2}} {
		norm, _ := mvAxes(axes, 3, "axes")
		for _, op := range []string{"ReduceMean", "ReduceSum", "ReduceMax", "ReduceLogSumExp"} {
			outs, err := shpEval(t, shpNode(op, 2, 1, nil), []*Tensor{x, shpInts(axes...)})
			if err != nil {
				t.Fatal(err)
			}
			if err := redClose(outs[0], redRef(op, x, norm, true), 1e-6); err != nil {
				t.Fatalf("%s %v: %v", op, axes, err)
			}
		}
	}
}

func TestReduceCases(t *testing.T) {
	data := shpT(Float32, []int{3, 2, 2}, 5, 1, 20, 2, 30, 1, 40, 2, 55, 1, 60, 2)
	seq := shpT(Float32, []int{3, 2, 2}, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12)
	f := func(shape []int, v ...float64) *Tensor { return shpT(Float32, shape, v...) }
	inf := math.Inf(1)
	cases := []shpCase{
		{name: "mean keepdims", op: "ReduceMean", ins: []*Tensor{data, shpInts(1)}, want: []*Tensor{f([]int{3, 1, 2}, 12.5, 1.5, 35, 1.5, 57.5, 1.5)}},
		{name: "mean no keepdims", op: "ReduceMean", attrs: shpAttrs("keepdims", 0), ins: []*Tensor{data, shpInts(1)}, want: []*Tensor{f([]int{3, 2}, 12.5, 1.5, 35, 1.5, 57.5, 1.5)}},
		{name: "mean all", op: "ReduceMean", ins: []*Tensor{data}, want: []*Tensor{f([]int{1, 1, 1}, 18.25)}},
		{name: "sum all", op: "ReduceSum", ins: []*Tensor{seq}, want: []*Tensor{f([]int{1, 1, 1}, 78)}},
		{name: "sum empty axes", op: "ReduceSum", attrs: shpAttrs("keepdims", 0), ins: []*Tensor{seq, shpInts()}, want: []*Tensor{f(nil, 78)}},
		{name: "sum noop", op: "ReduceSum", attrs: shpAttrs("noop_with_empty_axes", 1), ins: []*Tensor{seq, shpInts()}, want: []*Tensor{seq}},
		{name: "sum noop absent axes", op: "ReduceSumSquare", attrs: shpAttrs("noop_with_empty_axes", 1), ins: []*Tensor{seq}, want: []*Tensor{seq}},
		{name: "max", op: "ReduceMax", ins: []*Tensor{data, shpInts(1)}, want: []*Tensor{f([]int{3, 1, 2}, 20, 2, 40, 2, 60, 2)}},
		{name: "min", op: "ReduceMin", attrs: shpAttrs("keepdims", 0), ins: []*Tensor{data, shpInts(-2)}, want: []*Tensor{f([]int{3, 2}, 5, 1, 30, 1, 55, 1)}},
		{name: "prod", op: "ReduceProd", attrs: shpAttrs("keepdims", 0), ins: []*Tensor{seq, shpInts(1)}, want: []*Tensor{f([]int{3, 2}, 3, 8, 35, 48, 99, 120)}},
		{name: "l2", op: "ReduceL2", attrs: shpAttrs("keepdims", 0), ins: []*Tensor{shpT(Float32, []int{2, 2}, 3, 4, 0, 0), shpInts(1)}, want: []*Tensor{f([]int{2}, 5, 0)}},
		{name: "max nan", op: "ReduceMax", attrs: shpAttrs("keepdims", 0), ins: []*Tensor{f([]int{3}, 1, math.NaN(), 2)}, want: []*Tensor{f(nil, math.NaN())}},
		{name: "sum over empty", op: "ReduceSum", attrs: shpAttrs("keepdims", 0), ins: []*Tensor{New(Float32, 2, 0), shpInts(1)}, want: []*Tensor{f([]int{2}, 0, 0)}},
		{name: "max over empty", op: "ReduceMax", attrs: shpAttrs("keepdims", 0), ins: []*Tensor{New(Float32, 2, 0), shpInts(1)}, want: []*Tensor{f([]int{2}, -inf, -inf)}},
		{name: "prod over empty", op: "ReduceProd", ins: []*Tensor{New(Float32, 2, 0), shpInts(1)}, want: []*Tensor{f([]int{2, 1}, 1, 1)}},
		{name: "mean over empty", op: "ReduceMean", ins: []*Tensor{New(Float32, 0, 3), shpInts(0)}, want: []*Tensor{f([]int{1, 3}, math.NaN(), math.NaN(), math.NaN())}},
		{name: "kept dim empty", op: "ReduceSum", ins: []*Tensor{New(Float32, 0, 3), shpInts(1)}, want: []*Tensor{New(Float32, 0, 1)}},
		{name: "scalar", op: "ReduceSum", ins: []*Tensor{f(nil, 4)}, want: []*Tensor{f(nil, 4)}},
		{name: "int max over empty", op: "ReduceMax", attrs: shpAttrs("keepdims", 0), ins: []*Tensor{New(Int32, 2, 0), shpInts(1)}, want: []*Tensor{shpT(Int32, []int{2}, math.MinInt32, math.MinInt32)}},
		{name: "int mean truncates", op: "ReduceMean", attrs: shpAttrs("keepdims", 0), ins: []*Tensor{shpT(Int64, []int{3}, -1, -1, 1)}, want: []*Tensor{shpT(Int64, nil, 0)}},

		{name: "axis out of range", op: "ReduceSum", ins: []*Tensor{seq, shpInts(3)}, wantErr: "out of range"},
		{name: "duplicate axes", op: "ReduceMean", ins: []*Tensor{seq, shpInts(0, -3)}, wantErr: "twice"},
		{name: "float axes", op: "ReduceMean", ins: []*Tensor{seq, f([]int{1}, 0)}, wantErr: "int64"},
		{name: "l2 on ints", op: "ReduceL2", ins: []*Tensor{shpInts(1, 2)}, wantErr: "float32"},
		{name: "bool data", op: "ReduceMax", ins: []*Tensor{shpT(Bool, []int{2}, 0, 1)}, wantErr: "unsupported dtype"},
	}
	shpRunCases(t, cases)

	// axes computed at run time cannot be planned.
	_, _, err := CompileNode(shpNode("ReduceMean", 2, 1, nil), []ValueMeta{{DType: Float32, Shape: []int{2, 3}}, {DType: Int64, Shape: []int{1}}})
	if err == nil || !strings.Contains(err.Error(), "plan time") {
		t.Fatalf("run-time axes: error = %v", err)
	}
}

func TestArgMaxMin(t *testing.T) {
	d := shpT(Float32, []int{2, 2}, 2, 1, 3, 10)
	dd := shpT(Float32, []int{2, 2}, 2, 2, 3, 10)
	i64 := func(shape []int, v ...float64) *Tensor { return shpT(Int64, shape, v...) }
	cases := []shpCase{
		{name: "argmax default", op: "ArgMax", ins: []*Tensor{d}, want: []*Tensor{i64([]int{1, 2}, 1, 1)}},
		{name: "argmax axis 1", op: "ArgMax", attrs: shpAttrs("axis", 1), ins: []*Tensor{d}, want: []*Tensor{i64([]int{2, 1}, 0, 1)}},
		{name: "argmax no keepdims", op: "ArgMax", attrs: shpAttrs("axis", -1, "keepdims", 0), ins: []*Tensor{d}, want: []*Tensor{i64([]int{2}, 0, 1)}},
		{name: "argmax first tie", op: "ArgMax", attrs: shpAttrs("axis", 1), ins: []*Tensor{dd}, want: []*Tensor{i64([]int{2, 1}, 0, 1)}},
		{name: "argmax last tie", op: "ArgMax", attrs: shpAttrs("axis", 1, "select_last_index", 1), ins: []*Tensor{dd}, want: []*Tensor{i64([]int{2, 1}, 1, 1)}},
		{name: "argmin default", op: "ArgMin", ins: []*Tensor{d}, want: []*Tensor{i64([]int{1, 2}, 0, 0)}},
		{name: "argmin last tie", op: "ArgMin", attrs: shpAttrs("axis", 1, "select_last_index", 1), ins: []*Tensor{dd}, want: []*Tensor{i64([]int{2, 1}, 1, 0)}},
		{name: "argmin int32", op: "ArgMin", attrs: shpAttrs("keepdims", 0), ins: []*Tensor{shpT(Int32, []int{4}, 5, -3, 7, -3)}, want: []*Tensor{i64(nil, 1)}},
		{name: "argmax nan", op: "ArgMax", ins: []*Tensor{shpT(Float32, []int{4}, 1, math.NaN(), 9, math.NaN())}, want: []*Tensor{i64([]int{1}, 1)}},
		{name: "argmax bad axis", op: "ArgMax", attrs: shpAttrs("axis", 2), ins: []*Tensor{d}, wantErr: "out of range"},
		{name: "argmax empty axis", op: "ArgMax", ins: []*Tensor{New(Float32, 0, 2)}, wantErr: "empty"},
		{name: "argmax scalar", op: "ArgMax", ins: []*Tensor{shpT(Float32, nil, 1)}, wantErr: "rank >= 1"},
	}
	shpRunCases(t, cases)

	// Larger random data against a direct search.
	x := redRand(5, -1, 1, 5, 70, 90)
	for axis := 0; axis < 3; axis++ {
		for _, op := range []string{"ArgMax", "ArgMin"} {
			outs, err := shpEval(t, shpNode(op, 1, 1, shpAttrs("axis", axis, "keepdims", 0)), []*Tensor{x})
			if err != nil {
				t.Fatal(err)
			}
			var outShape []int
			for d, s := range x.Shape {
				if d != axis {
					outShape = append(outShape, s)
				}
			}
			want := New(Int64, outShape...)
			idx := make([]int, 2)
			for o := 0; o < want.Len(); o++ {
				full := make([]int, 3)
				j := 0
				for d := range full {
					if d != axis {
						full[d] = idx[j]
						j++
					}
				}
				best := -1
				var bv float32
				for q := 0; q < x.Shape[axis]; q++ {
					full[axis] = q
					v := x.F32[shpFlat(full, x.Shape)]
					if best < 0 || (op == "ArgMax" && v > bv) || (op == "ArgMin" && v < bv) {
						best, bv = q, v
					}
				}
				want.I64[o] = int64(best)
				shpNextIdx(idx, outShape)
			}
			if err := shpSame(outs[0], want); err != nil {
				t.Fatalf("%s axis %d: %v", op, axis, err)
			}
		}
	}
}

func TestReduceDeterministicAcrossThreads(t *testing.T) {
	x := redRand(9, -1, 1, 4, 256, 96)
	for _, axes := range [][]int64{{1}, {-1}, {0, 2}} {
		n := shpNode("ReduceSum", 2, 1, nil)
		var first *Tensor
		for _, threads := range []int{1, 2, 3, 8} {
			outs, err := shpRun(n, []*Tensor{x, shpInts(axes...)}, threads)
			if err != nil {
				t.Fatal(err)
			}
			if first == nil {
				first = outs[0]
			} else if err := shpSame(outs[0], first); err != nil {
				t.Fatalf("axes %v, %d threads: %v", axes, threads, err)
			}
		}
	}
}

func BenchmarkReduceMeanLastAxis(b *testing.B) {
	x := redRand(1, -1, 1, 512, 4096)
	benchKernel(b, shpNode("ReduceMean", 2, 1, nil), []*Tensor{x, shpInts(-1)}, 1)
}

func BenchmarkReduceMeanSpatial(b *testing.B) {
	x := redRand(1, -1, 1, 8, 256, 32, 32)
	benchKernel(b, shpNode("ReduceMean", 2, 1, nil), []*Tensor{x, shpInts(2, 3)}, 1)
}

func BenchmarkReduceSumAxis0(b *testing.B) {
	x := redRand(1, -1, 1, 512, 4096)
	benchKernel(b, shpNode("ReduceSum", 2, 1, nil), []*Tensor{x, shpInts(0)}, 1)
}

func BenchmarkArgMaxLastAxis(b *testing.B) {
	x := redRand(1, -1, 1, 512, 1000)
	benchKernel(b, shpNode("ArgMax", 1, 1, shpAttrs("axis", -1)), []*Tensor{x}, 1)
}
