package runtime

import (
	"context"
	"math"
	"strings"
	"testing"
)

// refPool pools x directly. out gives the output spatial sizes; pb and pe
// the pads. It returns the values and (for max) the row-major flat input
// index of each maximum.
func refPool(x *Tensor, isMax, includePad bool, k, s, d, pb, pe, out []int) ([]float32, []int64) {
	xs := x.Shape
	r := len(xs) - 2
	shape := append([]int{xs[0], xs[1]}, out...)
	y := make([]float32, NumElements(shape))
	idx := make([]int64, len(y))
	o := make([]int, len(shape))
	pos := make([]int, r)
	for i := range y {
		best, bi := math.Inf(-1), int64(-1)
		var sum float64
		cnt, cntPad := 0, 0
		kk := make([]int, r)
		for {
			ok, okPad := true, true
			for a := 0; a < r; a++ {
				pos[a] = o[2+a]*s[a] - pb[a] + kk[a]*d[a]
				if pos[a] < 0 || pos[a] >= xs[2+a] {
					ok = false
				}
				if pos[a] < -pb[a] || pos[a] >= xs[2+a]+pe[a] {
					okPad = false
				}
			}
			if okPad {
				cntPad++
			}
			if ok {
				fi := nnFlat(append([]int{o[0], o[1]}, pos...), xs)
				v := x.Float64At(fi)
				sum += v
				cnt++
				if v > best {
					best, bi = v, int64(fi)
				}
			}
			if !nnNext(kk, k) {
				break
			}
		}
		if isMax {
			y[i] = float32(best)
		} else if includePad {
			y[i] = float32(sum / float64(cntPad))
		} else {
			y[i] = float32(sum / float64(cnt))
		}
		idx[i] = bi
		nnNext(o, shape)
	}
	return y, idx
}

func TestPool(t *testing.T) {
	tests := []struct {
		name       string
		op         string
		x          []int
		k, s, d    []int
		pads       []int // node pads attribute (nil: absent)
		autoPad    string
		ceil       bool
		includePad bool
		refPads    []int // nil: pads or zeros
		out        []int // expected output spatial shape
	}{
		{name: "max 2d default", op: "MaxPool", x: []int{2, 3, 4, 5}, k: []int{2, 2}, out: []int{3, 4}},
		{name: "max 2d stem", op: "MaxPool", x: []int{1, 2, 9, 9}, k: []int{3, 3}, s: []int{2, 2}, pads: []int{1, 1, 1, 1}, out: []int{5, 5}},
		{name: "max 2d ceil", op: "MaxPool", x: []int{1, 1, 4, 4}, k: []int{3, 3}, s: []int{2, 2}, ceil: true, out: []int{2, 2}},
		{name: "max 2d ceil odd", op: "MaxPool", x: []int{2, 2, 6, 7}, k: []int{2, 2}, s: []int{2, 2}, ceil: true, out: []int{3, 4}},
		{name: "max ceil window in pad", op: "MaxPool", x: []int{1, 1, 5, 5}, k: []int{2, 2}, s: []int{2, 2}, pads: []int{1, 1, 1, 1}, ceil: true, out: []int{3, 3}},
		{name: "max 2d dilations", op: "MaxPool", x: []int{1, 2, 7, 8}, k: []int{2, 3}, d: []int{2, 2}, s: []int{1, 2}, out: []int{5, 2}},
		{name: "max 2d same_upper", op: "MaxPool", x: []int{1, 1, 5, 6}, k: []int{3, 2}, s: []int{2, 2}, autoPad: "SAME_UPPER", refPads: []int{1, 0, 1, 0}, out: []int{3, 3}},
		{name: "max 2d same_lower", op: "MaxPool", x: []int{1, 1, 6, 6}, k: []int{2, 3}, s: []int{1, 1}, autoPad: "SAME_LOWER", refPads: []int{1, 1, 0, 1}, out: []int{6, 6}},
		{name: "max 2d valid", op: "MaxPool", x: []int{1, 1, 7, 6}, k: []int{3, 3}, s: []int{2, 2}, autoPad: "VALID", out: []int{3, 2}},
		{name: "max 1d", op: "MaxPool", x: []int{2, 3, 11}, k: []int{3}, s: []int{2}, pads: []int{1, 0}, out: []int{5}},
		{name: "max 3d", op: "MaxPool", x: []int{1, 2, 5, 6, 7}, k: []int{2, 2, 3}, s: []int{1, 2, 2}, pads: []int{0, 1, 1, 1, 0, 0}, out: []int{5, 3, 3}},
		{name: "avg 2d default", op: "AveragePool", x: []int{2, 3, 5, 5}, k: []int{2, 2}, out: []int{4, 4}},
		{name: "avg 2d pads exclude", op: "AveragePool", x: []int{1, 2, 5, 5}, k: []int{3, 3}, pads: []int{2, 2, 2, 2}, out: []int{7, 7}},
		{name: "avg 2d pads include", op: "AveragePool", x: []int{1, 2, 5, 5}, k: []int{3, 3}, pads: []int{2, 2, 2, 2}, includePad: true, out: []int{7, 7}},
		{name: "avg 2d ceil", op: "AveragePool", x: []int{1, 1, 4, 4}, k: []int{3, 3}, s: []int{2, 2}, ceil: true, out: []int{2, 2}},
		{name: "avg 2d ceil include pad", op: "AveragePool", x: []int{1, 1, 6, 6}, k: []int{3, 3}, s: []int{2, 2}, pads: []int{1, 1, 1, 1}, ceil: true, includePad: true, out: []int{4, 4}},
		{name: "avg 2d same_upper", op: "AveragePool", x: []int{1, 1, 5, 5}, k: []int{2, 2}, autoPad: "SAME_UPPER", refPads: []int{0, 0, 1, 1}, out: []int{5, 5}},
		{name: "avg 2d same_lower include", op: "AveragePool", x: []int{1, 1, 5, 5}, k: []int{2, 2}, autoPad: "SAME_LOWER", includePad: true, refPads: []int{1, 1, 0, 0}, out: []int{5, 5}},
		{name: "avg 2d strides", op: "AveragePool", x: []int{2, 2, 8, 9}, k: []int{3, 2}, s: []int{3, 2}, out: []int{2, 4}},
		{name: "avg 2d dilations", op: "AveragePool", x: []int{1, 1, 8, 8}, k: []int{2, 2}, d: []int{3, 2}, pads: []int{1, 1, 1, 1}, out: []int{7, 8}},
		{name: "avg 1d", op: "AveragePool", x: []int{2, 3, 9}, k: []int{2}, out: []int{8}},
		{name: "avg 3d", op: "AveragePool", x: []int{1, 2, 4, 5, 6}, k: []int{2, 2, 2}, s: []int{2, 2, 2}, pads: []int{0, 1, 1, 0, 0, 1}, includePad: true, out: []int{2, 3, 4}},
		{name: "avg big plane", op: "AveragePool", x: []int{3, 5, 20, 20}, k: []int{4, 4}, s: []int{4, 4}, out: []int{5, 5}},
	}
	for ti, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := len(tc.x) - 2
			attrs := map[string]any{"kernel_shape": i64s(tc.k...)}
			s, d := tc.s, tc.d
			if s != nil {
				attrs["strides"] = i64s(s...)
			} else {
				s = nnOnes(r, 1)
			}
			if d != nil {
				attrs["dilations"] = i64s(d...)
			} else {
				d = nnOnes(r, 1)
			}
			if tc.pads != nil {
				attrs["pads"] = i64s(tc.pads...)
			}
			if tc.autoPad != "" {
				attrs["auto_pad"] = tc.autoPad
			}
			if tc.ceil {
				attrs["ceil_mode"] = 1
			}
			if tc.includePad {
				attrs["count_include_pad"] = 1
			}
			pads := tc.refPads
			if pads == nil {
				pads = tc.pads
			}
			if pads == nil {
				pads = nnOnes(2*r, 0)
			}
			x := nnRand(uint64(ti)+500, tc.x...)
			isMax := tc.op == "MaxPool"
			want, wantIdx := refPool(x, isMax, tc.includePad, tc.k, s, d, pads[:r], pads[r:], tc.out)
			shape := append([]int{tc.x[0], tc.x[1]}, tc.out...)
			n := nnNode(tc.op, 1, attrs)
			nnCheckAll(t, n, []*Tensor{x}, shape, want)
			if isMax {
				n.Outputs = append(n.Outputs, "idx")
				for _, threads := range []int{1, 2} {
					outs, err := nnRun(t, n, []*Tensor{x}, nil, threads)
					if err != nil {
						t.Fatal(err)
					}
					for i, v := range outs[1].I64 {
						if v != wantIdx[i] {
							t.Fatalf("threads %d: index %d = %d, want %d", threads, i, v, wantIdx[i])
						}
					}
				}
			}
		})
	}
}

func TestMaxPoolIndicesColumnMajor(t *testing.T) {
	// 1x1x3x4 input, 2x2 kernel stride 2: maxima at known positions.
	x := FromFloat32([]float32{
		1, 9, 2, 3,
		4, 5, 8, 6,
		7, 0, 1, 2,
	}, 1, 1, 3, 4)
	n := nnNode("MaxPool", 1, map[string]any{"kernel_shape": i64s(2, 2), "strides": i64s(2, 2), "storage_order": 1, "ceil_mode": 1})
	n.Outputs = append(n.Outputs, "idx")
	outs, err := EvalNode(context.Background(), n, []*Tensor{x}, 1)
	if err != nil {
		t.Fatal(err)
	}
	// Windows: rows 0-1 x cols 0-1 (max 9 at h0 w1), rows 0-1 x cols 2-3
	// (8 at h1 w2), row 2 x cols 0-1 (7 at h2 w0), row 2 x cols 2-3 (2 at h2 w3).
	wantY := []float32{9, 8, 7, 2}
	wantI := []int64{0 + 1*3, 1 + 2*3, 2 + 0*3, 2 + 3*3}
	if err := nnClose(outs[0].F32, wantY, 0); err != nil {
		t.Fatal(err)
	}
	for i, v := range outs[1].I64 {
		if v != wantI[i] {
			t.Fatalf("index %d = %d, want %d", i, v, wantI[i])
		}
	}
}

func TestMaxPoolIntegers(t *testing.T) {
	x8 := &Tensor{DType: Int8, Shape: []int{1, 2, 3, 3}, I8: []int8{-5, 3, -128, 7, 0, 1, -2, -3, 127, 1, 2, 3, 4, 5, 6, 7, 8, -9}}
	xu := &Tensor{DType: Uint8, Shape: []int{1, 2, 3, 3}, U8: []uint8{5, 3, 255, 7, 0, 1, 2, 3, 127, 1, 2, 3, 4, 5, 6, 7, 8, 9}}
	for _, x := range []*Tensor{x8, xu} {
		for _, op := range []string{"MaxPool", "GlobalMaxPool"} {
			attrs := map[string]any{}
			out := []int{2, 2}
			k := []int{2, 2}
			if op == "MaxPool" {
				attrs["kernel_shape"] = i64s(2, 2)
			} else {
				out, k = []int{1, 1}, []int{3, 3}
			}
			outs, err := EvalNode(context.Background(), nnNode(op, 1, attrs), []*Tensor{x}, 2)
			if err != nil {
				t.Fatal(err)
			}
			want, _ := refPool(x, true, false, k, []int{1, 1}, []int{1, 1}, []int{0, 0}, []int{0, 0}, out)
			y := outs[0]
			if y.DType != x.DType {
				t.Fatalf("%s %v: output dtype %v", op, x.DType, y.DType)
			}
			for i := range want {
				if got := y.Float64At(i); got != float64(want[i]) {
					t.Fatalf("%s %v: element %d = %v, want %v", op, x.DType, i, got, want[i])
				}
			}
		}
	}
}

func TestGlobalPool(t *testing.T) {
	for ti, shape := range [][]int{{2, 3, 5}, {2, 3, 4, 5}, {1, 4, 2, 3, 4}, {3, 2, 1, 1}} {
		x := nnRand(uint64(ti)+900, shape...)
		r := len(shape) - 2
		out := nnOnes(r, 1)
		for _, op := range []string{"GlobalAveragePool", "GlobalMaxPool"} {
			want, _ := refPool(x, op == "GlobalMaxPool", false, shape[2:], nnOnes(r, 1), nnOnes(r, 1), nnOnes(r, 0), nnOnes(r, 0), out)
			nnCheckAll(t, nnNode(op, 1, nil), []*Tensor{x}, append([]int{shape[0], shape[1]}, out...), want)
		}
	}
}

func TestPoolErrors(t *testing.T) {
	f := func(s ...int) ValueMeta { return ValueMeta{DType: Float32, Shape: s} }
	tests := []struct {
		name  string
		op    string
		attrs map[string]any
		in    ValueMeta
		want  string
	}{
		{"no kernel", "MaxPool", nil, f(1, 1, 4, 4), "kernel_shape is required"},
		{"kernel rank", "MaxPool", map[string]any{"kernel_shape": i64s(2)}, f(1, 1, 4, 4), "kernel_shape"},
		{"too big", "AveragePool", map[string]any{"kernel_shape": i64s(5, 5)}, f(1, 1, 4, 4), "larger than the padded input"},
		{"rank", "MaxPool", map[string]any{"kernel_shape": i64s(2)}, f(1, 4), "[N C spatial...]"},
		{"storage_order", "MaxPool", map[string]any{"kernel_shape": i64s(2, 2), "storage_order": 2}, f(1, 1, 4, 4), "storage_order"},
		{"avg int", "AveragePool", map[string]any{"kernel_shape": i64s(2, 2)}, ValueMeta{DType: Int8, Shape: []int{1, 1, 4, 4}}, "float32"},
		{"negative pads", "MaxPool", map[string]any{"kernel_shape": i64s(2, 2), "pads": i64s(-1, 0, 0, 0)}, f(1, 1, 4, 4), "negative"},
		{"global rank", "GlobalAveragePool", nil, f(4), "[N C spatial...]"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := CompileNode(nnNode(tc.op, 1, tc.attrs), []ValueMeta{tc.in})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want it to contain %q", err, tc.want)
			}
		})
	}
}

// BenchmarkPool measures pooling kernels; reports ns per output.
func BenchmarkPool(b *testing.B) {
	cases := []struct {
		name  string
		op    string
		x     []int
		attrs map[string]any
	}{
		{"max2x2_mnist", "MaxPool", []int{1, 8, 28, 28}, map[string]any{"kernel_shape": i64s(2, 2), "strides": i64s(2, 2)}},
		{"max3x3s2p1_b32", "MaxPool", []int{32, 16, 32, 32}, map[string]any{"kernel_shape": i64s(3, 3), "strides": i64s(2, 2), "pads": i64s(1, 1, 1, 1)}},
		{"avg3x3p1_b32", "AveragePool", []int{32, 16, 32, 32}, map[string]any{"kernel_shape": i64s(3, 3), "pads": i64s(1, 1, 1, 1)}},
		{"gap_b32", "GlobalAveragePool", []int{32, 64, 8, 8}, nil},
	}
	for _, tc := range cases {
		b.Run(tc.name, func(b *testing.B) {
			x := nnRand(1, tc.x...)
			k, om, err := CompileNode(nnNode(tc.op, 1, tc.attrs), []ValueMeta{{DType: Float32, Shape: x.Shape}})
			if err != nil {
				b.Fatal(err)
			}
			y := New(Float32, om[0].Shape...)
			ec := &ExecContext{Ctx: context.Background(), Threads: 1}
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if err := k.Run(ec, []*Tensor{x}, []*Tensor{y}); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(y.Len()), "ns/out")
		})
	}
}
