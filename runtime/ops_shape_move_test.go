package runtime

import (
	"context"
	"fmt"
	"strings"
	"testing"
)

// shpNextIdx advances a row-major multi-index; false after the last one.
func shpNextIdx(idx, shape []int) bool {
	for d := len(shape) - 1; d >= 0; d-- {
		idx[d]++
		if idx[d] < shape[d] {
			return true
		}
		idx[d] = 0
	}
	return false
}

// shpRef builds the expected output of shape outShape whose element at
// multi-index idx is x's element at flat index src(idx) (or fill when src
// returns -1).
func shpRef(x *Tensor, outShape []int, fill float64, src func(idx []int) int) *Tensor {
	out := New(x.DType, outShape...)
	if out.Len() == 0 {
		return out
	}
	idx := make([]int, len(outShape))
	for o := 0; ; o++ {
		if s := src(idx); s >= 0 {
			shpSet(out, o, x.Float64At(s))
		} else {
			shpSet(out, o, fill)
		}
		if !shpNextIdx(idx, outShape) {
			break
		}
	}
	return out
}

func shpFlat(idx, shape []int) int {
	f := 0
	for d := range shape {
		f = f*shape[d] + idx[d]
	}
	return f
}

func shpPerms(n int) [][]int64 {
	if n == 0 {
		return [][]int64{{}}
	}
	var out [][]int64
	for _, p := range shpPerms(n - 1) {
		for pos := 0; pos <= len(p); pos++ {
			q := append(append(append([]int64{}, p[:pos]...), int64(n-1)), p[pos:]...)
			out = append(out, q)
		}
	}
	return out
}

func TestTranspose(t *testing.T) {
	type tc struct {
		shape []int
		perms [][]int64
	}
	cases := []tc{
		{[]int{2, 3, 4, 5}, shpPerms(4)},
		{[]int{3, 1, 4, 1, 2}, shpPerms(5)},
		{[]int{37, 45}, [][]int64{{1, 0}}},
		{[]int{2, 33, 7, 40}, [][]int64{{0, 2, 3, 1}, {0, 3, 1, 2}, {0, 2, 1, 3}, {3, 2, 1, 0}, {1, 0, 3, 2}}},
		{[]int{3, 64, 9, 9}, [][]int64{{0, 2, 3, 1}}},
		{[]int{2, 9, 9, 64}, [][]int64{{0, 3, 1, 2}}},
		{[]int{5}, [][]int64{{0}}},
		{[]int{}, [][]int64{{}}},
		{[]int{4, 0, 3}, [][]int64{{2, 0, 1}}},
	}
	for ci, c := range cases {
		for _, dt := range shpAllTypes {
			x := shpSeq(dt, c.shape...)
			for _, perm := range c.perms {
				name := fmt.Sprintf("%d/%v/%v/%v", ci, dt, c.shape, perm)
				outs, err := shpEval(t, shpNode("Transpose", 1, 1, shpAttrs("perm", perm)), []*Tensor{x})
				if err != nil {
					t.Fatalf("%s: %v", name, err)
				}
				outShape := make([]int, len(perm))
				for i, p := range perm {
					outShape[i] = c.shape[p]
				}
				inIdx := make([]int, len(perm))
				want := shpRef(x, outShape, 0, func(idx []int) int {
					for i, p := range perm {
						inIdx[p] = idx[i]
					}
					return shpFlat(inIdx, c.shape)
				})
				if err := shpSame(outs[0], want); err != nil {
					t.Fatalf("%s: %v", name, err)
				}
			}
		}
	}
	// Default perm reverses the axes.
	x := shpSeq(Float32, 2, 3)
	outs, err := shpEval(t, shpNode("Transpose", 1, 1, nil), []*Tensor{x})
	if err != nil {
		t.Fatal(err)
	}
	if err := shpSame(outs[0], shpT(Float32, []int{3, 2}, 0, 3, 1, 4, 2, 5)); err != nil {
		t.Fatal(err)
	}
	bad := []struct {
		perm []int64
		err  string
	}{
		{[]int64{0}, "rank 2"},
		{[]int64{0, 2}, "out of range"},
		{[]int64{-1, 0}, "out of range"},
		{[]int64{1, 1}, "twice"},
	}
	for i, b := range bad {
		_, err := shpEval(t, shpNode("Transpose", 1, 1, shpAttrs("perm", b.perm)), []*Tensor{x})
		if err == nil || !strings.Contains(err.Error(), b.err) {
			t.Errorf("bad case %d: error = %v, want %q", i, err, b.err)
		}
	}
}

// shpPySlice resolves one axis like Python's slice.indices, which ONNX
// Slice follows.
func shpPySlice(start, stop, step int64, n int) []int {
	length := int64(n)
	lower, upper := int64(0), length
	if step < 0 {
		lower, upper = -1, length-1
	}
	fix := func(v int64) int64 {
		if v < 0 {
			v += length
			if v < lower {
				v = lower
			}
		} else if v > upper {
			v = upper
		}
		return v
	}
	start, stop = fix(start), fix(stop)
	var out []int
	for i := start; (step > 0 && i < stop) || (step < 0 && i > stop); i += step {
		out = append(out, int(i))
	}
	return out
}

func TestSlice(t *testing.T) {
	x := shpSeq(Float32, 4, 5, 6)
	type sc struct {
		starts, ends, axes, steps []int64
	}
	cases := []sc{
		{starts: []int64{0, 0}, ends: []int64{3, 10}, axes: []int64{0, 1}, steps: []int64{1, 1}},
		{starts: []int64{1}, ends: []int64{-1}},
		{starts: []int64{0, 0, 3}, ends: []int64{20, 10, 4}},
		{starts: []int64{1}, ends: []int64{1000}, axes: []int64{1}, steps: []int64{2}},
		{starts: []int64{-1}, ends: []int64{-1000}, axes: []int64{-1}, steps: []int64{-1}},
		{starts: []int64{20, 10, 4}, ends: []int64{0, 0, 1}, axes: []int64{0, 1, 2}, steps: []int64{-1, -3, -2}},
		{starts: []int64{1000}, ends: []int64{1000}, axes: []int64{1}},
		{starts: []int64{-9223372036854775807}, ends: []int64{9223372036854775807}, axes: []int64{2}, steps: []int64{3}},
		{starts: []int64{3, 2}, ends: []int64{1, 4}, axes: []int64{2, -3}},
		{starts: []int64{5}, ends: []int64{-7}, axes: []int64{2}, steps: []int64{-1}},
		{starts: []int64{0}, ends: []int64{-1}, axes: []int64{1}, steps: []int64{-1}},
	}
	for ci, c := range cases {
		for _, dt := range shpAllTypes {
			xd := shpSeq(dt, x.Shape...)
			ins := []*Tensor{xd, shpInts(c.starts...), shpInts(c.ends...)}
			if c.axes != nil {
				ins = append(ins, shpInts(c.axes...))
			}
			if c.steps != nil {
				if c.axes == nil {
					ins = append(ins, nil)
				}
				ins = append(ins, shpInts(c.steps...))
			}
			outs, err := shpEval(t, shpNode("Slice", len(ins), 1, nil), ins)
			if err != nil {
				t.Fatalf("case %d %v: %v", ci, dt, err)
			}
			sel := make([][]int, 3)
			for d := range sel {
				sel[d] = shpPySlice(0, int64(x.Shape[d]), 1, x.Shape[d])
			}
			for i := range c.starts {
				a := int64(i)
				if c.axes != nil {
					a = c.axes[i]
					if a < 0 {
						a += 3
					}
				}
				step := int64(1)
				if c.steps != nil {
					step = c.steps[i]
				}
				sel[a] = shpPySlice(c.starts[i], c.ends[i], step, x.Shape[a])
			}
			outShape := []int{len(sel[0]), len(sel[1]), len(sel[2])}
			want := shpRef(xd, outShape, 0, func(idx []int) int {
				return shpFlat([]int{sel[0][idx[0]], sel[1][idx[1]], sel[2][idx[2]]}, x.Shape)
			})
			if err := shpSame(outs[0], want); err != nil {
				t.Fatalf("case %d %v: %v", ci, dt, err)
			}
		}
	}
	bad := []struct {
		ins []*Tensor
		err string
	}{
		{[]*Tensor{x, shpInts(0), shpInts(1, 2)}, "must match"},
		{[]*Tensor{x, shpInts(0), shpInts(1), shpInts(3)}, "out of range"},
		{[]*Tensor{x, shpInts(0, 0), shpInts(1, 1), shpInts(1, -2)}, "twice"},
		{[]*Tensor{x, shpInts(0), shpInts(1), shpInts(0), shpInts(0)}, "is 0"},
		{[]*Tensor{x, shpInts(0), shpInts(1), shpInts(0), shpInts(1, 1)}, "must match"},
		{[]*Tensor{x, shpInts(0, 0, 0, 0), shpInts(1, 1, 1, 1)}, "rank 3"},
	}
	for i, b := range bad {
		_, err := shpEval(t, shpNode("Slice", len(b.ins), 1, nil), b.ins)
		if err == nil || !strings.Contains(err.Error(), b.err) {
			t.Errorf("bad case %d: error = %v, want %q", i, err, b.err)
		}
	}
}

func TestTile(t *testing.T) {
	cases := []struct {
		shape []int
		reps  []int64
	}{
		{[]int{2, 2}, []int64{2, 2}},
		{[]int{3}, []int64{4}},
		{[]int{2, 3, 4}, []int64{1, 3, 2}},
		{[]int{2, 1, 40}, []int64{3, 5, 1}},
		{[]int{2, 3}, []int64{0, 2}},
		{[]int{}, []int64{}},
	}
	for ci, c := range cases {
		for _, dt := range shpAllTypes {
			x := shpSeq(dt, c.shape...)
			outs, err := shpEval(t, shpNode("Tile", 2, 1, nil), []*Tensor{x, shpInts(c.reps...)})
			if err != nil {
				t.Fatalf("case %d: %v", ci, err)
			}
			outShape := make([]int, len(c.shape))
			for d := range outShape {
				outShape[d] = c.shape[d] * int(c.reps[d])
			}
			in := make([]int, len(c.shape))
			want := shpRef(x, outShape, 0, func(idx []int) int {
				for d := range idx {
					in[d] = idx[d] % c.shape[d]
				}
				return shpFlat(in, c.shape)
			})
			if err := shpSame(outs[0], want); err != nil {
				t.Fatalf("case %d %v: %v", ci, dt, err)
			}
		}
	}
	x := shpSeq(Float32, 2, 2)
	for i, b := range []struct {
		reps *Tensor
		err  string
	}{{shpInts(2), "rank 2"}, {shpInts(2, -1), "invalid"}} {
		_, err := shpEval(t, shpNode("Tile", 2, 1, nil), []*Tensor{x, b.reps})
		if err == nil || !strings.Contains(err.Error(), b.err) {
			t.Errorf("bad case %d: error = %v, want %q", i, err, b.err)
		}
	}
}

func TestConcatSplit(t *testing.T) {
	a := shpT(Float32, []int{2, 2}, 1, 2, 3, 4)
	b := shpT(Float32, []int{2, 1}, 5, 6)
	c := shpT(Float32, []int{2, 3}, 7, 8, 9, 10, 11, 12)
	cases := []shpCase{
		{name: "concat axis 1", op: "Concat", attrs: shpAttrs("axis", 1), ins: []*Tensor{a, b, c},
			want: []*Tensor{shpT(Float32, []int{2, 6}, 1, 2, 5, 7, 8, 9, 3, 4, 6, 10, 11, 12)}},
		{name: "concat axis -1", op: "Concat", attrs: shpAttrs("axis", -1), ins: []*Tensor{a, b},
			want: []*Tensor{shpT(Float32, []int{2, 3}, 1, 2, 5, 3, 4, 6)}},
		{name: "concat axis 0", op: "Concat", attrs: shpAttrs("axis", 0), ins: []*Tensor{a, a},
			want: []*Tensor{shpT(Float32, []int{4, 2}, 1, 2, 3, 4, 1, 2, 3, 4)}},
		{name: "concat int64 1d", op: "Concat", attrs: shpAttrs("axis", 0), ins: []*Tensor{shpInts(1, 2), shpInts(), shpInts(3)},
			want: []*Tensor{shpInts(1, 2, 3)}},
		{name: "concat bool", op: "Concat", attrs: shpAttrs("axis", -2), ins: []*Tensor{shpT(Bool, []int{1, 2}, 1, 0), shpT(Bool, []int{1, 2}, 0, 1)},
			want: []*Tensor{shpT(Bool, []int{2, 2}, 1, 0, 0, 1)}},
		{name: "concat single", op: "Concat", attrs: shpAttrs("axis", 1), ins: []*Tensor{a}, want: []*Tensor{a}},
		{name: "concat no axis", op: "Concat", ins: []*Tensor{a, b}, wantErr: "axis attribute is required"},
		{name: "concat bad axis", op: "Concat", attrs: shpAttrs("axis", 2), ins: []*Tensor{a, b}, wantErr: "out of range"},
		{name: "concat shape mismatch", op: "Concat", attrs: shpAttrs("axis", 0), ins: []*Tensor{a, b}, wantErr: "differ in dimension 1"},
		{name: "concat rank mismatch", op: "Concat", attrs: shpAttrs("axis", 0), ins: []*Tensor{a, shpSeq(Float32, 2)}, wantErr: "rank"},
		{name: "concat dtype mismatch", op: "Concat", attrs: shpAttrs("axis", 0), ins: []*Tensor{a, shpSeq(Int32, 2, 2)}, wantErr: "int32"},
		{name: "concat scalar", op: "Concat", attrs: shpAttrs("axis", 0), ins: []*Tensor{shpT(Float32, nil, 1)}, wantErr: "scalar"},

		{name: "split equal", op: "Split", attrs: shpAttrs("axis", 1), ins: []*Tensor{c}, nOut: 3,
			want: []*Tensor{shpT(Float32, []int{2, 1}, 7, 10), shpT(Float32, []int{2, 1}, 8, 11), shpT(Float32, []int{2, 1}, 9, 12)}},
		{name: "split sizes", op: "Split", attrs: shpAttrs("axis", -1), ins: []*Tensor{c, shpInts(1, 2)}, nOut: 2,
			want: []*Tensor{shpT(Float32, []int{2, 1}, 7, 10), shpT(Float32, []int{2, 2}, 8, 9, 11, 12)}},
		{name: "split default axis", op: "Split", ins: []*Tensor{shpSeq(Int64, 6)}, nOut: 2,
			want: []*Tensor{shpInts(0, 1, 2), shpInts(3, 4, 5)}},
		{name: "split zero sizes", op: "Split", ins: []*Tensor{shpSeq(Int32, 3), shpInts(0, 3, 0)}, nOut: 3,
			want: []*Tensor{New(Int32, 0), shpT(Int32, []int{3}, 0, 1, 2), New(Int32, 0)}},
		{name: "split num_outputs uneven", op: "Split", attrs: shpAttrs("num_outputs", 3), ins: []*Tensor{shpSeq(Uint8, 7)}, nOut: 3,
			want: []*Tensor{shpT(Uint8, []int{3}, 0, 1, 2), shpT(Uint8, []int{3}, 3, 4, 5), shpT(Uint8, []int{1}, 6)}},
		{name: "split num_outputs mismatch", op: "Split", attrs: shpAttrs("num_outputs", 2), ins: []*Tensor{shpSeq(Uint8, 7)}, nOut: 3, wantErr: "does not match"},
		{name: "split uneven", op: "Split", ins: []*Tensor{shpSeq(Int64, 7)}, nOut: 2, wantErr: "evenly"},
		{name: "split sizes sum", op: "Split", ins: []*Tensor{shpSeq(Int64, 7), shpInts(3, 3)}, nOut: 2, wantErr: "sums to 6"},
		{name: "split sizes count", op: "Split", ins: []*Tensor{shpSeq(Int64, 7), shpInts(7)}, nOut: 2, wantErr: "2 outputs"},
		{name: "split negative size", op: "Split", ins: []*Tensor{shpSeq(Int64, 7), shpInts(8, -1)}, nOut: 2, wantErr: "invalid size"},
		{name: "split bad axis", op: "Split", attrs: shpAttrs("axis", 1), ins: []*Tensor{shpSeq(Int64, 6)}, nOut: 2, wantErr: "out of range"},
	}
	shpRunCases(t, cases)

	// Concat then Split along each axis of a bigger tensor gives back the pieces.
	for _, dt := range shpAllTypes {
		x := shpSeq(dt, 3, 70, 5, 40)
		for axis := -4; axis < 4; axis++ {
			a := (axis + 4) % 4
			sizes := []int64{1, int64(x.Shape[a] - 1)}
			parts, err := shpEval(t, shpNode("Split", 2, 2, shpAttrs("axis", axis)), []*Tensor{x, shpInts(sizes...)})
			if err != nil {
				t.Fatal(err)
			}
			back, err := shpEval(t, shpNode("Concat", 2, 1, shpAttrs("axis", axis)), parts)
			if err != nil {
				t.Fatal(err)
			}
			if err := shpSame(back[0], x); err != nil {
				t.Fatalf("%v axis %d: %v", dt, axis, err)
			}
		}
	}

	// An absent (nil) output of Split is skipped.
	k, _, err := CompileNode(shpNode("Split", 1, 2, nil), []ValueMeta{{DType: Float32, Shape: []int{4}}})
	if err != nil {
		t.Fatal(err)
	}
	o := New(Float32, 2)
	if err := k.Run(&ExecContext{Threads: 1}, []*Tensor{shpSeq(Float32, 4)}, []*Tensor{nil, o}); err != nil {
		t.Fatal(err)
	}
	if err := shpSame(o, shpT(Float32, []int{2}, 2, 3)); err != nil {
		t.Fatal(err)
	}
}

func TestGather(t *testing.T) {
	d := shpT(Float32, []int{3, 2}, 1, 1.2, 2.3, 3.4, 4.5, 5.7)
	d3 := shpT(Float32, []int{3, 3}, 1, 1.2, 1.9, 2.3, 3.4, 3.9, 4.5, 5.7, 5.9)
	i32 := func(shape []int, v ...float64) *Tensor { return shpT(Int32, shape, v...) }
	cases := []shpCase{
		{name: "axis 0", op: "Gather", ins: []*Tensor{d, shpT(Int64, []int{2, 2}, 0, 1, 1, 2)},
			want: []*Tensor{shpT(Float32, []int{2, 2, 2}, 1, 1.2, 2.3, 3.4, 2.3, 3.4, 4.5, 5.7)}},
		{name: "axis 1", op: "Gather", attrs: shpAttrs("axis", 1), ins: []*Tensor{d3, shpT(Int64, []int{1, 2}, 0, 2)},
			want: []*Tensor{shpT(Float32, []int{3, 1, 2}, 1, 1.9, 2.3, 3.9, 4.5, 5.9)}},
		{name: "axis -1 int32 negative", op: "Gather", attrs: shpAttrs("axis", -1), ins: []*Tensor{d3, i32([]int{2}, -1, -3)},
			want: []*Tensor{shpT(Float32, []int{3, 2}, 1.9, 1, 3.9, 2.3, 5.9, 4.5)}},
		{name: "scalar index", op: "Gather", ins: []*Tensor{d, FromInt64([]int64{-1})},
			want: []*Tensor{shpT(Float32, []int{2}, 4.5, 5.7)}},
		{name: "shape gather", op: "Gather", ins: []*Tensor{shpInts(1, 3, 224, 224), shpInts(0)},
			want: []*Tensor{shpInts(1)}},
		{name: "bool data", op: "Gather", ins: []*Tensor{shpT(Bool, []int{3}, 1, 0, 1), shpInts(1, 1, 2)},
			want: []*Tensor{shpT(Bool, []int{3}, 0, 0, 1)}},
		{name: "empty indices", op: "Gather", ins: []*Tensor{d, shpInts()}, want: []*Tensor{New(Float32, 0, 2)}},
		{name: "out of range", op: "Gather", ins: []*Tensor{d, shpInts(3)}, wantErr: "index 3 at position 0 of indices is out of range for axis 0 of size 3"},
		{name: "out of range negative", op: "Gather", ins: []*Tensor{d, shpInts(0, -4)}, wantErr: "out of range"},
		{name: "bad axis", op: "Gather", attrs: shpAttrs("axis", 2), ins: []*Tensor{d, shpInts(0)}, wantErr: "out of range"},
		{name: "float indices", op: "Gather", ins: []*Tensor{d, shpSeq(Float32, 1)}, wantErr: "int32 or int64"},
		{name: "scalar data", op: "Gather", ins: []*Tensor{shpT(Float32, nil, 1), shpInts(0)}, wantErr: "rank >= 1"},
	}
	shpRunCases(t, cases)

	// Indices computed at run time are checked when the kernel runs.
	n := shpNode("Gather", 2, 1, nil)
	k, outMeta, err := CompileNode(n, []ValueMeta{{DType: Float32, Shape: []int{3, 2}}, {DType: Int32, Shape: []int{2}}})
	if err != nil {
		t.Fatal(err)
	}
	out := New(outMeta[0].DType, outMeta[0].Shape...)
	err = k.Run(&ExecContext{Ctx: context.Background(), Threads: 2}, []*Tensor{d, i32([]int{2}, 0, 7)}, []*Tensor{out})
	if err == nil || !strings.Contains(err.Error(), "index 7 at position 1") {
		t.Fatalf("run-time out-of-range index: error = %v", err)
	}

	// A large gather over many threads matches a reference.
	for _, dt := range shpAllTypes {
		x := shpSeq(dt, 4, 50, 30)
		idx := New(Int64, 7, 3)
		for i := range idx.I64 {
			idx.I64[i] = int64((i*17)%100 - 50)
		}
		outs, err := shpEval(t, shpNode("Gather", 2, 1, shpAttrs("axis", 1)), []*Tensor{x, idx})
		if err != nil {
			t.Fatal(err)
		}
		want := shpRef(x, []int{4, 7, 3, 30}, 0, func(ix []int) int {
			v := int(idx.I64[ix[1]*3+ix[2]])
			if v < 0 {
				v += 50
			}
			return shpFlat([]int{ix[0], v, ix[3]}, x.Shape)
		})
		if err := shpSame(outs[0], want); err != nil {
			t.Fatalf("%v: %v", dt, err)
		}
	}
}

func TestPad(t *testing.T) {
	d := shpT(Float32, []int{3, 2}, 1, 1.2, 2.3, 3.4, 4.5, 5.7)
	f := func(shape []int, v ...float64) *Tensor { return shpT(Float32, shape, v...) }
	cases := []shpCase{
		{name: "constant", op: "Pad", ins: []*Tensor{d, shpInts(0, 2, 0, 0)},
			want: []*Tensor{f([]int{3, 4}, 0, 0, 1, 1.2, 0, 0, 2.3, 3.4, 0, 0, 4.5, 5.7)}},
		{name: "constant value", op: "Pad", attrs: shpAttrs("mode", "constant"), ins: []*Tensor{d, shpInts(1, 0, 0, 1), shpT(Float32, nil, 9)},
			want: []*Tensor{f([]int{4, 3}, 9, 9, 9, 1, 1.2, 9, 2.3, 3.4, 9, 4.5, 5.7, 9)}},
		{name: "reflect", op: "Pad", attrs: shpAttrs("mode", "reflect"), ins: []*Tensor{d, shpInts(0, 2, 0, 0)},
			want: []*Tensor{f([]int{3, 4}, 1, 1.2, 1, 1.2, 2.3, 3.4, 2.3, 3.4, 4.5, 5.7, 4.5, 5.7)}},
		{name: "edge", op: "Pad", attrs: shpAttrs("mode", "edge"), ins: []*Tensor{d, shpInts(0, 2, 0, 0)},
			want: []*Tensor{f([]int{3, 4}, 1, 1, 1, 1.2, 2.3, 2.3, 2.3, 3.4, 4.5, 4.5, 4.5, 5.7)}},
		{name: "reflect 1d", op: "Pad", attrs: shpAttrs("mode", "reflect"), ins: []*Tensor{shpInts(1, 2, 3, 4), shpInts(2, 3)},
			want: []*Tensor{shpInts(3, 2, 1, 2, 3, 4, 3, 2, 1)}},
		{name: "reflect wide (numpy)", op: "Pad", attrs: shpAttrs("mode", "reflect"), ins: []*Tensor{shpInts(1, 2, 3), shpInts(5, 0)},
			want: []*Tensor{shpInts(2, 1, 2, 3, 2, 1, 2, 3)}},
		{name: "reflect size 1", op: "Pad", attrs: shpAttrs("mode", "reflect"), ins: []*Tensor{shpInts(7), shpInts(1, 2)},
			want: []*Tensor{shpInts(7, 7, 7, 7)}},
		{name: "wrap", op: "Pad", attrs: shpAttrs("mode", "wrap"), ins: []*Tensor{shpInts(1, 2, 3), shpInts(4, 4)},
			want: []*Tensor{shpInts(3, 1, 2, 3, 1, 2, 3, 1, 2, 3, 1)}},
		{name: "negative crops", op: "Pad", ins: []*Tensor{d, shpInts(-1, 1, 0, -1)},
			want: []*Tensor{f([]int{2, 2}, 0, 2.3, 0, 4.5)}},
		{name: "axes", op: "Pad", ins: []*Tensor{d, shpInts(1, 0), nil, shpInts(-1)},
			want: []*Tensor{f([]int{3, 3}, 0, 1, 1.2, 0, 2.3, 3.4, 0, 4.5, 5.7)}},
		{name: "bool", op: "Pad", ins: []*Tensor{shpT(Bool, []int{2}, 1, 1), shpInts(1, 1), shpT(Bool, nil, 0)},
			want: []*Tensor{shpT(Bool, []int{4}, 0, 1, 1, 0)}},
		{name: "scalar", op: "Pad", ins: []*Tensor{shpT(Int8, nil, 5), shpInts()}, want: []*Tensor{shpT(Int8, nil, 5)}},
		{name: "empty axis constant", op: "Pad", ins: []*Tensor{New(Int32, 2, 0), shpInts(0, 1, 0, 1)}, want: []*Tensor{New(Int32, 2, 2)}},
		{name: "empty axis edge", op: "Pad", attrs: shpAttrs("mode", "edge"), ins: []*Tensor{New(Int32, 2, 0), shpInts(0, 1, 0, 1)}, wantErr: "empty axis"},
		{name: "bad mode", op: "Pad", attrs: shpAttrs("mode", "mirror"), ins: []*Tensor{d, shpInts(0, 0, 0, 0)}, wantErr: "not supported"},
		{name: "bad pads len", op: "Pad", ins: []*Tensor{d, shpInts(0, 0, 0)}, wantErr: "need 2 per padded axis"},
		{name: "crop too much", op: "Pad", ins: []*Tensor{d, shpInts(-2, 0, -2, 0)}, wantErr: "remove more"},
		{name: "constant dtype", op: "Pad", ins: []*Tensor{d, shpInts(0, 0, 0, 0), shpInts(1)}, wantErr: "must match"},
	}
	shpRunCases(t, cases)

	// 4-D constant/edge/reflect pads against a reference, all dtypes.
	shape := []int{2, 3, 17, 19}
	pads := []int64{0, 1, 2, 3, 1, 0, 4, 5}
	for _, mode := range []string{"constant", "edge", "reflect", "wrap"} {
		for _, dt := range shpAllTypes {
			x := shpSeq(dt, shape...)
			outs, err := shpEval(t, shpNode("Pad", 3, 1, shpAttrs("mode", mode)), []*Tensor{x, shpInts(pads...), shpT(dt, nil, 1)})
			if err != nil {
				t.Fatal(err)
			}
			outShape := make([]int, 4)
			for a := range outShape {
				outShape[a] = shape[a] + int(pads[a]+pads[a+4])
			}
			in := make([]int, 4)
			want := shpRef(x, outShape, 1, func(idx []int) int {
				for a := range idx {
					i, n := idx[a]-int(pads[a]), shape[a]
					for i < 0 || i >= n {
						switch mode {
						case "constant":
							return -1
						case "edge":
							i = min(max(i, 0), n-1)
						case "reflect":
							if i < 0 {
								i = -i
							} else {
								i = 2*(n-1) - i
							}
						case "wrap":
							i = (i + n) % n
						}
					}
					in[a] = i
				}
				return shpFlat(in, shape)
			})
			if err := shpSame(outs[0], want); err != nil {
				t.Fatalf("%s %v: %v", mode, dt, err)
			}
		}
	}
}

func TestStridedPlan(t *testing.T) {
	cases := []struct {
		shape []int
		perm  []int64
		rank  int  // rank after merging
		tiled bool // blocked 2-D path
	}{
		{[]int{2, 32, 7, 9}, []int64{0, 2, 3, 1}, 3, true},    // NCHW -> NHWC
		{[]int{2, 7, 9, 32}, []int64{0, 3, 1, 2}, 3, true},    // NHWC -> NCHW
		{[]int{2, 12, 64, 32}, []int64{0, 2, 1, 3}, 4, false}, // attention heads: row copies
		{[]int{1, 1, 5, 1}, []int64{3, 2, 1, 0}, 1, false},
		{[]int{4, 5, 6}, []int64{0, 1, 2}, 1, false},
	}
	for i, c := range cases {
		k, _, err := CompileNode(shpNode("Transpose", 1, 1, shpAttrs("perm", c.perm)), []ValueMeta{{DType: Float32, Shape: c.shape}})
		if err != nil {
			t.Fatal(err)
		}
		sk := k.(*stridedKernel)
		if len(sk.sizes) != c.rank || (sk.tileJ >= 0) != c.tiled {
			t.Errorf("case %d: reduced to %v strides %v tileJ %d; want rank %d tiled %v", i, sk.sizes, sk.istr, sk.tileJ, c.rank, c.tiled)
		}
	}
}

func benchKernel(b *testing.B, n *Node, ins []*Tensor, threads int) {
	metas := make([]ValueMeta, len(ins))
	for i, t := range ins {
		metas[i] = ValueMeta{DType: t.DType, Shape: t.Shape}
		if i > 0 {
			metas[i].Const = t
		}
	}
	k, om, err := CompileNode(n, metas)
	if err != nil {
		b.Fatal(err)
	}
	out := []*Tensor{New(om[0].DType, om[0].Shape...)}
	ec := &ExecContext{Ctx: context.Background(), Threads: threads}
	b.SetBytes(int64(ins[0].Len() * ins[0].DType.Size()))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := k.Run(ec, ins, out); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkTransposeNCHWtoNHWC(b *testing.B) {
	x := shpSeq(Float32, 8, 64, 56, 56)
	benchKernel(b, shpNode("Transpose", 1, 1, shpAttrs("perm", []int64{0, 2, 3, 1})), []*Tensor{x}, 1)
}

func BenchmarkTranspose2D(b *testing.B) {
	x := shpSeq(Float32, 1024, 1000)
	benchKernel(b, shpNode("Transpose", 1, 1, nil), []*Tensor{x}, 1)
}

func BenchmarkSliceStep2(b *testing.B) {
	x := shpSeq(Float32, 8, 64, 56, 56)
	benchKernel(b, shpNode("Slice", 5, 1, nil), []*Tensor{x, shpInts(0), shpInts(56), shpInts(3), shpInts(2)}, 1)
}

func BenchmarkConcatChannels(b *testing.B) {
	x := shpSeq(Float32, 8, 64, 56, 56)
	benchKernel(b, shpNode("Concat", 2, 1, shpAttrs("axis", 1)), []*Tensor{x, x}, 1)
}

func BenchmarkPadConstant(b *testing.B) {
	x := shpSeq(Float32, 8, 64, 56, 56)
	benchKernel(b, shpNode("Pad", 2, 1, nil), []*Tensor{x, shpInts(0, 0, 1, 1, 0, 0, 1, 1)}, 1)
}

func TestShapeMoveExtremes(t *testing.T) {
	x := shpSeq(Float32, 3, 4)
	cases := []shpCase{
		{name: "slice huge step", op: "Slice", ins: []*Tensor{x, shpInts(1), shpInts(4), shpInts(1), shpInts(1 << 62)},
			want: []*Tensor{shpT(Float32, []int{3, 1}, 1, 5, 9)}},
		{name: "slice min step", op: "Slice", ins: []*Tensor{x, shpInts(-1), shpInts(-1 << 63), shpInts(0), FromInt64([]int64{-1 << 63}, 1)},
			want: []*Tensor{shpT(Float32, []int{1, 4}, 8, 9, 10, 11)}},
		{name: "pad huge", op: "Pad", ins: []*Tensor{x, shpInts(0, 0, 1<<31, 1<<31)}, wantErr: "more than"},
		{name: "tile huge", op: "Tile", ins: []*Tensor{x, shpInts(1<<31, 1<<31)}, wantErr: "too large"},
		{name: "reshape huge", op: "Reshape", ins: []*Tensor{x, shpInts(1<<40, 1)}, wantErr: "larger than"},
		{name: "gather huge index", op: "Gather", ins: []*Tensor{x, shpInts(1 << 62)}, wantErr: "out of range"},
	}
	shpRunCases(t, cases)
}
