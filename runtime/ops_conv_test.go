package runtime

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"testing"
)

// ---------------------------------------------------------------- helpers shared by the NN op tests

// nnRand returns a float32 tensor with values uniform in [-1, 1).
func nnRand(seed uint64, shape ...int) *Tensor {
	r := rand.New(rand.NewPCG(seed, 0x9e3779b97f4a7c15))
	t := New(Float32, shape...)
	for i := range t.F32 {
		t.F32[i] = float32(r.Float64()*2 - 1)
	}
	return t
}

// nnNode builds a node with the given attributes (int, float32, string,
// []int64 values).
func nnNode(op string, nIn int, attrs map[string]any) *Node {
	n := &Node{Name: "t_" + strings.ToLower(op), OpType: op, Outputs: []string{"y"}}
	for i := 0; i < nIn; i++ {
		n.Inputs = append(n.Inputs, fmt.Sprintf("in%d", i))
	}
	for k, v := range attrs {
		switch v := v.(type) {
		case int:
			n.SetAttr(k, Attr{Kind: AttrInt, I: int64(v)})
		case float32:
			n.SetAttr(k, Attr{Kind: AttrFloat, F: v})
		case string:
			n.SetAttr(k, Attr{Kind: AttrString, S: v})
		case []int64:
			n.SetAttr(k, Attr{Kind: AttrInts, Ints: v})
		default:
			panic(fmt.Sprintf("nnNode: attribute %s has unsupported type %T", k, v))
		}
	}
	return n
}

// nnRun compiles n with inputs (nil = absent); inputs whose index is in
// constIdx are marked constant at plan time, the others are only known at
// run time. It runs the kernel with threads goroutines and returns the
// outputs. Output buffers start filled with NaN to catch unwritten
// elements.
func nnRun(t *testing.T, n *Node, inputs []*Tensor, constIdx []int, threads int) ([]*Tensor, error) {
	t.Helper()
	metas := make([]ValueMeta, len(inputs))
	for i, x := range inputs {
		if x != nil {
			metas[i] = ValueMeta{DType: x.DType, Shape: x.Shape}
		}
	}
	for _, i := range constIdx {
		if i < len(inputs) && inputs[i] != nil {
			metas[i].Const = inputs[i]
		}
	}
	k, outMeta, err := CompileNode(n, metas)
	if err != nil {
		return nil, err
	}
	outs := make([]*Tensor, len(n.Outputs))
	for i := range outs {
		outs[i] = New(outMeta[i].DType, outMeta[i].Shape...)
		for j := range outs[i].F32 {
			outs[i].F32[j] = float32(math.NaN())
		}
		for j := range outs[i].I64 {
			outs[i].I64[j] = -7
		}
	}
	ec := &ExecContext{Ctx: context.Background(), Threads: threads}
	if w, ok := k.(WorkspaceUser); ok {
		ec.Workspace = make([]float32, w.WorkspaceSize())
		for i := range ec.Workspace {
			ec.Workspace[i] = float32(math.NaN())
		}
	}
	if err := k.Run(ec, inputs, outs); err != nil {
		return nil, err
	}
	return outs, nil
}

// nnClose reports the first element where got and want differ by more
// than tol relative to max(1, |want|).
func nnClose(got, want []float32, tol float64) error {
	if len(got) != len(want) {
		return fmt.Errorf("got %d values, want %d", len(got), len(want))
	}
	for i := range want {
		g, w := float64(got[i]), float64(want[i])
		if math.IsNaN(g) != math.IsNaN(w) || math.Abs(g-w) > tol*math.Max(1, math.Abs(w)) {
			return fmt.Errorf("element %d: got %v, want %v", i, g, w)
		}
	}
	return nil
}

// nnCheckAll runs n for every (const weights?, threads) combination, checks
// each output against want, and checks that two runs with 2 threads are
// bit-identical.
func nnCheckAll(t *testing.T, n *Node, inputs []*Tensor, wantShape []int, want []float32) {
	t.Helper()
	var first []float32
	for _, constIdx := range [][]int{nil, {1, 2, 3, 4}} {
		for _, threads := range []int{1, 2, 3} {
			outs, err := nnRun(t, n, inputs, constIdx, threads)
			if err != nil {
				t.Fatalf("const %v threads %d: %v", constIdx, threads, err)
			}
			if !SameShape(outs[0].Shape, wantShape) {
				t.Fatalf("const %v threads %d: shape %v, want %v", constIdx, threads, outs[0].Shape, wantShape)
			}
			if err := nnClose(outs[0].F32, want, 1e-4); err != nil {
				t.Fatalf("const %v threads %d: %v", constIdx, threads, err)
			}
			if threads == 2 {
				if first == nil {
					first = outs[0].F32
				} else {
					again, _ := nnRun(t, n, inputs, constIdx, threads)
					for i := range first {
						if math.Float32bits(again[0].F32[i]) != math.Float32bits(outs[0].F32[i]) {
							t.Fatalf("const %v: two runs with 2 threads differ at %d", constIdx, i)
						}
					}
				}
			}
		}
	}
}

// nnIndex iterates a multi-index over shape in row-major order.
func nnNext(idx, shape []int) bool {
	for i := len(shape) - 1; i >= 0; i-- {
		idx[i]++
		if idx[i] < shape[i] {
			return true
		}
		idx[i] = 0
	}
	return false
}

func nnFlat(idx, shape []int) int {
	f := 0
	for i := range shape {
		f = f*shape[i] + idx[i]
	}
	return f
}

func nnOnes(n, v int) []int {
	s := make([]int, n)
	for i := range s {
		s[i] = v
	}
	return s
}

func i64s(v ...int) []int64 {
	out := make([]int64, len(v))
	for i, x := range v {
		out[i] = int64(x)
	}
	return out
}

// ---------------------------------------------------------------- Conv

// refConv is a direct N-D convolution with explicit pads; it returns the
// output shape and values.
func refConv(x, w, b *Tensor, group int, strides, dil, pb, pe []int) ([]int, []float32) {
	xs, ws := x.Shape, w.Shape
	r := len(xs) - 2
	N, C, M := xs[0], xs[1], ws[0]
	cg, mg := C/group, M/group
	out := make([]int, r)
	for i := 0; i < r; i++ {
		out[i] = (xs[2+i]+pb[i]+pe[i]-((ws[2+i]-1)*dil[i]+1))/strides[i] + 1
	}
	ks := ws[2:]
	shape := append([]int{N, M}, out...)
	y := make([]float32, NumElements(shape))
	pos := make([]int, r)
	for n := 0; n < N; n++ {
		for m := 0; m < M; m++ {
			g := m / mg
			o := make([]int, r)
			for {
				var s float64
				if b != nil {
					s = float64(b.F32[m])
				}
				for c := 0; c < cg; c++ {
					kk := make([]int, r)
					for {
						ok := true
						for i := 0; i < r; i++ {
							pos[i] = o[i]*strides[i] - pb[i] + kk[i]*dil[i]
							if pos[i] < 0 || pos[i] >= xs[2+i] {
								ok = false
							}
						}
						if ok {
							xi := nnFlat(append([]int{n, g*cg + c}, pos...), xs)
							wi := nnFlat(append([]int{m, c}, kk...), ws)
							s += float64(x.F32[xi]) * float64(w.F32[wi])
						}
						if !nnNext(kk, ks) {
							break
						}
					}
				}
				y[nnFlat(append([]int{n, m}, o...), shape)] = float32(s)
				if !nnNext(o, out) {
					break
				}
			}
		}
	}
	return shape, y
}

func TestConv(t *testing.T) {
	tests := []struct {
		name     string
		x, w     []int // shapes
		bias     bool
		group    int
		strides  []int
		dil      []int
		pads     []int // explicit pads for the node (nil: attribute absent)
		autoPad  string
		refPads  []int // pads the reference uses (begin..., end...); nil: pads
		kShape   bool  // set kernel_shape
		act      string
		actAlpha float32
	}{
		{name: "2d basic", x: []int{2, 3, 7, 8}, w: []int{4, 3, 3, 3}, bias: true, pads: []int{1, 1, 1, 1}},
		{name: "2d no pad no bias", x: []int{1, 2, 5, 5}, w: []int{3, 2, 3, 3}},
		{name: "2d stride2 asym pads", x: []int{2, 3, 9, 8}, w: []int{5, 3, 3, 2}, bias: true, strides: []int{2, 2}, pads: []int{1, 0, 2, 1}},
		{name: "2d stride 3x1", x: []int{1, 2, 10, 7}, w: []int{2, 2, 4, 3}, strides: []int{3, 1}, pads: []int{2, 1, 0, 1}, kShape: true},
		{name: "2d dilation", x: []int{1, 3, 11, 10}, w: []int{4, 3, 3, 3}, bias: true, dil: []int{2, 3}, pads: []int{2, 1, 2, 3}},
		{name: "2d dilation stride", x: []int{2, 2, 12, 12}, w: []int{3, 2, 3, 2}, dil: []int{2, 2}, strides: []int{2, 3}},
		{name: "2d groups 2", x: []int{2, 4, 6, 6}, w: []int{6, 2, 3, 3}, bias: true, group: 2, pads: []int{1, 1, 1, 1}},
		{name: "2d groups 3 stride", x: []int{1, 6, 9, 7}, w: []int{3, 2, 2, 2}, group: 3, strides: []int{2, 2}},
		{name: "2d depthwise", x: []int{2, 4, 8, 8}, w: []int{4, 1, 3, 3}, bias: true, group: 4, strides: []int{2, 2}, pads: []int{1, 1, 1, 1}},
		{name: "2d depthwise mult2", x: []int{1, 3, 7, 9}, w: []int{6, 1, 3, 3}, bias: true, group: 3, pads: []int{1, 1, 1, 1}},
		{name: "2d depthwise dilated", x: []int{3, 2, 10, 10}, w: []int{2, 1, 3, 3}, group: 2, dil: []int{2, 2}, pads: []int{2, 2, 2, 2}, act: "Relu"},
		{name: "2d depthwise 5x5 s2", x: []int{1, 5, 13, 12}, w: []int{5, 1, 5, 5}, group: 5, strides: []int{2, 2}, pads: []int{2, 2, 1, 1}},
		{name: "2d pointwise", x: []int{3, 5, 4, 6}, w: []int{7, 5, 1, 1}, bias: true},
		{name: "2d pointwise relu", x: []int{4, 8, 3, 3}, w: []int{6, 8, 1, 1}, bias: true, act: "Relu"},
		{name: "2d pointwise stride2", x: []int{2, 4, 7, 7}, w: []int{3, 4, 1, 1}, strides: []int{2, 2}},
		{name: "2d pointwise padded", x: []int{1, 4, 3, 3}, w: []int{3, 4, 1, 1}, pads: []int{1, 0, 0, 1}},
		{name: "2d pointwise groups", x: []int{2, 4, 5, 5}, w: []int{4, 1, 1, 1}, group: 4, bias: true},
		{name: "2d batch slots", x: []int{5, 3, 9, 9}, w: []int{8, 3, 3, 3}, bias: true, pads: []int{1, 1, 1, 1}, act: "LeakyRelu", actAlpha: 0.1},
		{name: "2d shifted asym", x: []int{1, 2, 6, 7}, w: []int{3, 2, 3, 3}, pads: []int{2, 0, 0, 2}, bias: true},
		{name: "2d shifted dilated", x: []int{1, 2, 9, 9}, w: []int{2, 2, 3, 3}, dil: []int{2, 2}, pads: []int{2, 2, 2, 2}},
		{name: "2d shifted one column", x: []int{2, 2, 5, 1}, w: []int{2, 2, 3, 1}, pads: []int{1, 0, 1, 0}},
		{name: "2d shifted pad > kernel", x: []int{1, 1, 3, 3}, w: []int{1, 1, 2, 2}, pads: []int{3, 1, 3, 0}},
		{name: "3d shifted stride d", x: []int{1, 2, 6, 4, 5}, w: []int{2, 2, 3, 3, 3}, strides: []int{2, 1, 1}, pads: []int{1, 1, 1, 1, 1, 1}},
		{name: "2d tiled", x: []int{1, 16, 40, 40}, w: []int{4, 16, 3, 3}, pads: []int{1, 1, 1, 1}, bias: true, act: "Relu"},
		{name: "2d tiled stride2 batch", x: []int{3, 16, 41, 41}, w: []int{8, 16, 3, 3}, strides: []int{2, 2}, pads: []int{1, 1, 1, 1}, bias: true},
		{name: "2d tiled pointwise", x: []int{2, 64, 50, 50}, w: []int{8, 64, 1, 1}, act: "Clip"},
		{name: "3d tiled", x: []int{1, 8, 6, 10, 12}, w: []int{3, 8, 3, 3, 3}, pads: []int{1, 1, 1, 1, 1, 1}},
		{name: "2d kernel = input", x: []int{2, 3, 4, 4}, w: []int{5, 3, 4, 4}, bias: true},
		{name: "2d pad > kernel", x: []int{1, 1, 3, 3}, w: []int{2, 1, 2, 2}, pads: []int{3, 3, 3, 3}},
		{name: "2d same_upper", x: []int{1, 2, 7, 6}, w: []int{3, 2, 3, 3}, strides: []int{2, 2}, autoPad: "SAME_UPPER", refPads: []int{1, 0, 1, 1}},
		{name: "2d same_upper even", x: []int{1, 2, 6, 6}, w: []int{3, 2, 4, 2}, strides: []int{2, 1}, autoPad: "SAME_UPPER", refPads: []int{1, 0, 1, 1}},
		{name: "2d same_lower even", x: []int{1, 2, 6, 6}, w: []int{3, 2, 4, 2}, strides: []int{2, 1}, autoPad: "SAME_LOWER", refPads: []int{1, 1, 1, 0}},
		{name: "2d valid", x: []int{1, 2, 7, 8}, w: []int{3, 2, 3, 3}, strides: []int{2, 2}, autoPad: "VALID", pads: nil, refPads: []int{0, 0, 0, 0}},
		{name: "1d", x: []int{2, 3, 10}, w: []int{4, 3, 3}, bias: true, strides: []int{2}, pads: []int{1, 1}},
		{name: "1d dilated groups", x: []int{2, 4, 17}, w: []int{6, 2, 3}, group: 2, dil: []int{3}, pads: []int{0, 2}},
		{name: "1d depthwise", x: []int{1, 3, 12}, w: []int{3, 1, 5}, group: 3, pads: []int{2, 2}, bias: true},
		{name: "1d pointwise", x: []int{2, 3, 7}, w: []int{2, 3, 1}},
		{name: "1d same_lower", x: []int{1, 2, 9}, w: []int{2, 2, 4}, strides: []int{2}, autoPad: "SAME_LOWER", refPads: []int{2, 1}},
		{name: "3d", x: []int{1, 2, 5, 6, 7}, w: []int{3, 2, 2, 3, 3}, bias: true, strides: []int{1, 2, 1}, pads: []int{0, 1, 1, 1, 0, 1}},
		{name: "3d dilated", x: []int{2, 2, 6, 6, 6}, w: []int{2, 2, 2, 2, 2}, dil: []int{2, 1, 2}, pads: []int{1, 0, 0, 0, 1, 1}},
		{name: "3d groups", x: []int{1, 4, 4, 5, 6}, w: []int{4, 2, 3, 3, 3}, group: 2, pads: []int{1, 1, 1, 1, 1, 1}},
		{name: "3d depthwise", x: []int{1, 3, 4, 5, 6}, w: []int{3, 1, 3, 3, 3}, group: 3, strides: []int{2, 1, 2}, pads: []int{1, 1, 1, 1, 1, 1}},
		{name: "3d same_upper", x: []int{1, 1, 5, 5, 5}, w: []int{2, 1, 3, 3, 3}, strides: []int{2, 2, 2}, autoPad: "SAME_UPPER", refPads: []int{1, 1, 1, 1, 1, 1}},
		{name: "clip act", x: []int{2, 3, 6, 6}, w: []int{4, 3, 3, 3}, bias: true, pads: []int{1, 1, 1, 1}, act: "Clip"},
	}
	for ti, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := len(tc.x) - 2
			group := max(tc.group, 1)
			strides, dil := tc.strides, tc.dil
			attrs := map[string]any{}
			if group != 1 {
				attrs["group"] = group
			}
			if strides != nil {
				attrs["strides"] = i64s(strides...)
			} else {
				strides = nnOnes(r, 1)
			}
			if dil != nil {
				attrs["dilations"] = i64s(dil...)
			} else {
				dil = nnOnes(r, 1)
			}
			if tc.pads != nil {
				attrs["pads"] = i64s(tc.pads...)
			}
			if tc.autoPad != "" {
				attrs["auto_pad"] = tc.autoPad
			}
			if tc.kShape {
				attrs["kernel_shape"] = i64s(tc.w[2:]...)
			}
			if tc.act != "" {
				attrs["activation"] = tc.act
				if tc.actAlpha != 0 {
					attrs["activation_alpha"] = tc.actAlpha
				}
				if tc.act == "Clip" {
					attrs["activation_alpha"] = float32(-0.5)
					attrs["activation_beta"] = float32(0.7)
				}
			}
			pads := tc.refPads
			if pads == nil {
				pads = tc.pads
			}
			if pads == nil {
				pads = nnOnes(2*r, 0)
			}
			x := nnRand(uint64(ti)*3+1, tc.x...)
			w := nnRand(uint64(ti)*3+2, tc.w...)
			var b *Tensor
			nIn := 2
			if tc.bias {
				b = nnRand(uint64(ti)*3+3, tc.w[0])
				nIn = 3
			}
			shape, want := refConv(x, w, b, group, strides, dil, pads[:r], pads[r:])
			switch tc.act {
			case "Relu":
				for i, v := range want {
					want[i] = max(v, 0)
				}
			case "LeakyRelu":
				for i, v := range want {
					if v < 0 {
						want[i] = v * tc.actAlpha
					}
				}
			case "Clip":
				for i, v := range want {
					want[i] = min(max(v, -0.5), 0.7)
				}
			}
			inputs := []*Tensor{x, w}
			if b != nil {
				inputs = append(inputs, b)
			}
			nnCheckAll(t, nnNode("Conv", nIn, attrs), inputs, shape, want)
		})
	}
}

func TestConvMACsAndWorkspace(t *testing.T) {
	n := nnNode("Conv", 2, map[string]any{"pads": i64s(1, 1, 1, 1)})
	k, _, err := CompileNode(n, []ValueMeta{{DType: Float32, Shape: []int{2, 3, 8, 8}}, {DType: Float32, Shape: []int{4, 3, 3, 3}}})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := k.(MACCounter).MACs(), int64(2*4*64*27); got != want {
		t.Errorf("MACs = %d, want %d", got, want)
	}
	if ws := k.(WorkspaceUser).WorkspaceSize(); ws < 27*64 {
		t.Errorf("WorkspaceSize = %d, want at least %d", ws, 27*64)
	}
}

func TestConvErrors(t *testing.T) {
	f := func(s ...int) ValueMeta { return ValueMeta{DType: Float32, Shape: s} }
	tests := []struct {
		name  string
		attrs map[string]any
		in    []ValueMeta
		want  string
	}{
		{"channels", nil, []ValueMeta{f(1, 3, 5, 5), f(2, 4, 3, 3)}, "input has 3 channels, weight expects 4 (group 1)"},
		{"channels group", map[string]any{"group": 2}, []ValueMeta{f(1, 4, 5, 5), f(2, 1, 3, 3)}, "input has 4 channels, weight expects 2 (group 2)"},
		{"group divides", map[string]any{"group": 3}, []ValueMeta{f(1, 4, 5, 5), f(3, 1, 3, 3)}, "divisible by group 3"},
		{"rank", nil, []ValueMeta{f(1, 3, 5, 5), f(2, 3, 3)}, "must have the rank of X"},
		{"too small", nil, []ValueMeta{f(1, 1, 2, 2), f(1, 1, 3, 3)}, "larger than the padded input"},
		{"4d spatial", nil, []ValueMeta{f(1, 1, 2, 2, 2, 2), f(1, 1, 1, 1, 1, 1)}, "spatial dimensions"},
		{"auto_pad", map[string]any{"auto_pad": "SAME"}, []ValueMeta{f(1, 1, 5, 5), f(1, 1, 3, 3)}, "auto_pad"},
		{"kernel_shape", map[string]any{"kernel_shape": i64s(2, 2)}, []ValueMeta{f(1, 1, 5, 5), f(1, 1, 3, 3)}, "kernel_shape"},
		{"strides len", map[string]any{"strides": i64s(1)}, []ValueMeta{f(1, 1, 5, 5), f(1, 1, 3, 3)}, "strides"},
		{"bias", nil, []ValueMeta{f(1, 1, 5, 5), f(2, 1, 3, 3), f(3)}, "bias B must have shape [2]"},
		{"dtype", nil, []ValueMeta{{DType: Int64, Shape: []int{1, 1, 5, 5}}, f(2, 1, 3, 3)}, "float32"},
		{"activation", map[string]any{"activation": "Gelu"}, []ValueMeta{f(1, 1, 5, 5), f(1, 1, 3, 3)}, "Gelu"},
		{"zero stride", map[string]any{"strides": i64s(0, 1)}, []ValueMeta{f(1, 1, 5, 5), f(1, 1, 3, 3)}, "positive"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			n := nnNode("Conv", len(tc.in), tc.attrs)
			_, _, err := CompileNode(n, tc.in)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want it to contain %q", err, tc.want)
			}
			if !strings.Contains(err.Error(), "Conv node") {
				t.Errorf("error %q does not name the node", err)
			}
		})
	}
}

// ---------------------------------------------------------------- ConvTranspose

// refConvTranspose scatters every input element through the kernel; pads
// may be negative (the output then extends beyond the full result).
func refConvTranspose(x, w, b *Tensor, group int, strides, dil, pb, pe, outPad []int) ([]int, []float32) {
	xs, ws := x.Shape, w.Shape
	r := len(xs) - 2
	N, C, mg := xs[0], xs[1], ws[1]
	cg := C / group
	M := mg * group
	out := make([]int, r)
	for i := 0; i < r; i++ {
		out[i] = strides[i]*(xs[2+i]-1) + outPad[i] + (ws[2+i]-1)*dil[i] + 1 - pb[i] - pe[i]
	}
	shape := append([]int{N, M}, out...)
	acc := make([]float64, NumElements(shape))
	if b != nil {
		for i := range acc {
			acc[i] = float64(b.F32[(i/NumElements(out))%M])
		}
	}
	pos := make([]int, r)
	for n := 0; n < N; n++ {
		for c := 0; c < C; c++ {
			g := c / cg
			ii := make([]int, r)
			for {
				xv := float64(x.F32[nnFlat(append([]int{n, c}, ii...), xs)])
				for m := 0; m < mg; m++ {
					kk := make([]int, r)
					for {
						ok := true
						for i := 0; i < r; i++ {
							pos[i] = ii[i]*strides[i] - pb[i] + kk[i]*dil[i]
							if pos[i] < 0 || pos[i] >= out[i] {
								ok = false
							}
						}
						if ok {
							wv := float64(w.F32[nnFlat(append([]int{c, m}, kk...), ws)])
							acc[nnFlat(append([]int{n, g*mg + m}, pos...), shape)] += xv * wv
						}
						if !nnNext(kk, ws[2:]) {
							break
						}
					}
				}
				if !nnNext(ii, xs[2:]) {
					break
				}
			}
		}
	}
	y := make([]float32, len(acc))
	for i, v := range acc {
		y[i] = float32(v)
	}
	return shape, y
}

func TestConvTranspose(t *testing.T) {
	tests := []struct {
		name    string
		x, w    []int
		bias    bool
		group   int
		strides []int
		dil     []int
		pads    []int
		outPad  []int
		outSh   []int
		autoPad string
		refPads []int
	}{
		{name: "2d basic", x: []int{1, 2, 3, 3}, w: []int{2, 3, 3, 3}, bias: true},
		{name: "2d stride2", x: []int{2, 3, 4, 5}, w: []int{3, 2, 3, 3}, strides: []int{2, 2}, pads: []int{1, 1, 1, 1}},
		{name: "2d stride 3x2 pads", x: []int{1, 1, 3, 3}, w: []int{1, 2, 3, 3}, strides: []int{3, 2}, pads: []int{1, 2, 1, 2}},
		{name: "2d output_padding", x: []int{1, 2, 3, 4}, w: []int{2, 2, 3, 3}, strides: []int{2, 3}, outPad: []int{1, 2}, bias: true},
		{name: "2d dilations", x: []int{1, 1, 3, 3}, w: []int{1, 1, 2, 2}, dil: []int{2, 2}},
		{name: "2d groups", x: []int{2, 4, 3, 3}, w: []int{4, 3, 2, 2}, group: 2, strides: []int{2, 2}, bias: true},
		{name: "2d depthwise", x: []int{1, 3, 4, 4}, w: []int{3, 1, 3, 3}, group: 3, strides: []int{2, 2}, pads: []int{1, 1, 0, 0}},
		{name: "2d output_shape", x: []int{1, 1, 3, 3}, w: []int{1, 2, 3, 3}, strides: []int{3, 2}, outSh: []int{10, 8}, refPads: []int{0, 0, -1, -1}},
		{name: "2d output_shape crop", x: []int{1, 2, 4, 4}, w: []int{2, 2, 3, 3}, strides: []int{2, 2}, outSh: []int{7, 8}, refPads: []int{1, 1, 1, 0}},
		{name: "2d same_upper", x: []int{1, 1, 3, 3}, w: []int{1, 2, 3, 3}, strides: []int{2, 2}, autoPad: "SAME_UPPER", refPads: []int{0, 0, 1, 1}},
		{name: "2d same_lower", x: []int{1, 1, 3, 3}, w: []int{1, 2, 3, 3}, strides: []int{2, 2}, autoPad: "SAME_LOWER", refPads: []int{1, 1, 0, 0}},
		{name: "2d valid", x: []int{1, 1, 3, 3}, w: []int{1, 2, 3, 3}, strides: []int{2, 2}, autoPad: "VALID", refPads: []int{0, 0, 0, 0}},
		{name: "1d", x: []int{1, 1, 3}, w: []int{1, 2, 3}},
		{name: "1d stride dil", x: []int{2, 2, 5}, w: []int{2, 3, 3}, strides: []int{3}, dil: []int{2}, pads: []int{1, 2}, bias: true},
		{name: "3d", x: []int{1, 1, 3, 4, 5}, w: []int{1, 2, 3, 3, 3}},
		{name: "3d strides", x: []int{1, 2, 2, 3, 3}, w: []int{2, 2, 2, 3, 2}, strides: []int{2, 1, 3}, pads: []int{0, 1, 1, 1, 0, 0}, bias: true},
	}
	for ti, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := len(tc.x) - 2
			group := max(tc.group, 1)
			attrs := map[string]any{}
			strides, dil, outPad := tc.strides, tc.dil, tc.outPad
			if group != 1 {
				attrs["group"] = group
			}
			if strides != nil {
				attrs["strides"] = i64s(strides...)
			} else {
				strides = nnOnes(r, 1)
			}
			if dil != nil {
				attrs["dilations"] = i64s(dil...)
			} else {
				dil = nnOnes(r, 1)
			}
			if outPad != nil {
				attrs["output_padding"] = i64s(outPad...)
			} else {
				outPad = nnOnes(r, 0)
			}
			if tc.pads != nil {
				attrs["pads"] = i64s(tc.pads...)
			}
			if tc.outSh != nil {
				attrs["output_shape"] = i64s(tc.outSh...)
			}
			if tc.autoPad != "" {
				attrs["auto_pad"] = tc.autoPad
			}
			pads := tc.refPads
			if pads == nil {
				pads = tc.pads
			}
			if pads == nil {
				pads = nnOnes(2*r, 0)
			}
			x := nnRand(uint64(ti)*3+101, tc.x...)
			w := nnRand(uint64(ti)*3+102, tc.w...)
			var b *Tensor
			inputs := []*Tensor{x, w}
			if tc.bias {
				b = nnRand(uint64(ti)*3+103, tc.w[1]*group)
				inputs = append(inputs, b)
			}
			shape, want := refConvTranspose(x, w, b, group, strides, dil, pads[:r], pads[r:], outPad)
			nnCheckAll(t, nnNode("ConvTranspose", len(inputs), attrs), inputs, shape, want)
		})
	}
}

// TestConvTransposeONNXExample checks the output_shape example of the ONNX
// operator tests (test_convtranspose_output_shape), values copied from its
// expected output.
func TestConvTransposeONNXExample(t *testing.T) {
	x := FromFloat32([]float32{0, 1, 2, 3, 4, 5, 6, 7, 8}, 1, 1, 3, 3)
	w := New(Float32, 1, 2, 3, 3)
	for i := range w.F32 {
		w.F32[i] = 1
	}
	n := nnNode("ConvTranspose", 2, map[string]any{"strides": i64s(3, 2), "output_shape": i64s(10, 8)})
	outs, err := EvalNode(context.Background(), n, []*Tensor{x, w}, 1)
	if err != nil {
		t.Fatal(err)
	}
	rows := [][]float32{
		{0, 0, 1, 1, 3, 2, 2, 0}, {0, 0, 1, 1, 3, 2, 2, 0}, {0, 0, 1, 1, 3, 2, 2, 0},
		{3, 3, 7, 4, 9, 5, 5, 0}, {3, 3, 7, 4, 9, 5, 5, 0}, {3, 3, 7, 4, 9, 5, 5, 0},
		{6, 6, 13, 7, 15, 8, 8, 0}, {6, 6, 13, 7, 15, 8, 8, 0}, {6, 6, 13, 7, 15, 8, 8, 0},
		{0, 0, 0, 0, 0, 0, 0, 0},
	}
	var want []float32
	for c := 0; c < 2; c++ {
		for _, r := range rows {
			want = append(want, r...)
		}
	}
	if !SameShape(outs[0].Shape, []int{1, 2, 10, 8}) {
		t.Fatalf("shape %v", outs[0].Shape)
	}
	if err := nnClose(outs[0].F32, want, 0); err != nil {
		t.Fatal(err)
	}
}

func TestConvTransposeErrors(t *testing.T) {
	f := func(s ...int) ValueMeta { return ValueMeta{DType: Float32, Shape: s} }
	tests := []struct {
		name  string
		attrs map[string]any
		in    []ValueMeta
		want  string
	}{
		{"channels", nil, []ValueMeta{f(1, 3, 5, 5), f(2, 4, 3, 3)}, "input has 3 channels, weight expects 2"},
		{"group", map[string]any{"group": 2}, []ValueMeta{f(1, 3, 5, 5), f(3, 1, 3, 3)}, "divisible by group 2"},
		{"output_padding len", map[string]any{"output_padding": i64s(1)}, []ValueMeta{f(1, 1, 5, 5), f(1, 1, 3, 3)}, "output_padding"},
		{"empty output", map[string]any{"pads": i64s(3, 3, 3, 3)}, []ValueMeta{f(1, 1, 2, 2), f(1, 1, 2, 2)}, "output spatial size"},
		{"bias", nil, []ValueMeta{f(1, 1, 5, 5), f(1, 2, 3, 3), f(1)}, "bias B must have shape [2]"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := CompileNode(nnNode("ConvTranspose", len(tc.in), tc.attrs), tc.in)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want it to contain %q", err, tc.want)
			}
		})
	}
}

// ---------------------------------------------------------------- benchmarks

// BenchmarkConv measures compiled Conv kernels on typical CNN layers
// (weights constant, as in an inference plan); it reports GFLOP/s.
func BenchmarkConv(b *testing.B) {
	cases := []struct {
		name  string
		x, w  []int
		group int
		s, p  int
	}{
		{"mnist8_c1_b1", []int{1, 1, 28, 28}, []int{8, 1, 5, 5}, 1, 1, 2},
		{"mnist8_c2_b1", []int{1, 8, 14, 14}, []int{16, 8, 5, 5}, 1, 1, 2},
		{"stem3x3_b32", []int{32, 3, 32, 32}, []int{16, 3, 3, 3}, 1, 1, 1},
		{"3x3_16_b32", []int{32, 16, 32, 32}, []int{16, 16, 3, 3}, 1, 1, 1},
		{"3x3_64_b32_s1", []int{32, 64, 8, 8}, []int{64, 64, 3, 3}, 1, 1, 1},
		{"3x3_32_b32_s2", []int{32, 16, 32, 32}, []int{32, 16, 3, 3}, 1, 2, 1},
		{"1x1_64_b32", []int{32, 32, 16, 16}, []int{64, 32, 1, 1}, 1, 1, 0},
		{"dw3x3_64_b32", []int{32, 64, 16, 16}, []int{64, 1, 3, 3}, 64, 1, 1},
		{"3x3_64_56x56_b1", []int{1, 64, 56, 56}, []int{64, 64, 3, 3}, 1, 1, 1},
	}
	for _, tc := range cases {
		for _, threads := range []int{1, 2} {
			b.Run(fmt.Sprintf("%s/t%d", tc.name, threads), func(b *testing.B) {
				x, w, bias := nnRand(1, tc.x...), nnRand(2, tc.w...), nnRand(3, tc.w[0])
				p := int64(tc.p)
				n := nnNode("Conv", 3, map[string]any{"group": tc.group, "strides": i64s(tc.s, tc.s),
					"pads": []int64{p, p, p, p}, "activation": "Relu"})
				metas := []ValueMeta{{DType: Float32, Shape: x.Shape}, {DType: Float32, Shape: w.Shape, Const: w}, {DType: Float32, Shape: bias.Shape, Const: bias}}
				k, om, err := CompileNode(n, metas)
				if err != nil {
					b.Fatal(err)
				}
				y := New(Float32, om[0].Shape...)
				ec := &ExecContext{Ctx: context.Background(), Threads: threads, Workspace: make([]float32, k.(WorkspaceUser).WorkspaceSize())}
				ins, outs := []*Tensor{x, w, bias}, []*Tensor{y}
				b.ResetTimer()
				for i := 0; i < b.N; i++ {
					if err := k.Run(ec, ins, outs); err != nil {
						b.Fatal(err)
					}
				}
				macs := k.(MACCounter).MACs()
				b.ReportMetric(2*float64(macs)*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
			})
		}
	}
}

// TestNNGraphFusedMatchesPlain runs a small CNN through the executor with
// and without the inference passes (BatchNorm folding, bias and activation
// fusion into Conv and Gemm) and compares the results.
func TestNNGraphFusedMatchesPlain(t *testing.T) {
	g := NewGraph("cnn")
	g.Inputs = []ValueInfo{{Name: "x", DType: Float32, Shape: []int{-1, 3, 12, 12}}}
	g.Outputs = []ValueInfo{{Name: "y", DType: Float32}}
	g.AddParam("w1", nnRand(11, 8, 3, 3, 3), true)
	g.AddParam("b1", nnRand(12, 8), true)
	g.AddParam("bn_s", nnRand(13, 8), false)
	g.AddParam("bn_b", nnRand(14, 8), false)
	g.AddParam("bn_m", nnRand(15, 8), false)
	v := nnRand(16, 8)
	for i := range v.F32 {
		v.F32[i] = v.F32[i]*v.F32[i] + 0.5
	}
	g.AddParam("bn_v", v, false)
	g.AddParam("w2", nnRand(17, 8, 1, 3, 3), true)
	g.AddParam("w3", nnRand(18, 10, 8), true)
	g.AddParam("b3", nnRand(19, 10), true)
	node := func(op string, in, out []string, attrs map[string]any) *Node {
		n := nnNode(op, 0, attrs)
		n.Name, n.Inputs, n.Outputs = out[0]+"_node", in, out
		return n
	}
	g.Nodes = []*Node{
		node("Conv", []string{"x", "w1", "b1"}, []string{"c1"}, map[string]any{"pads": i64s(1, 1, 1, 1)}),
		node("BatchNormalization", []string{"c1", "bn_s", "bn_b", "bn_m", "bn_v"}, []string{"n1"}, nil),
		node("Relu", []string{"n1"}, []string{"r1"}, nil),
		node("MaxPool", []string{"r1"}, []string{"p1"}, map[string]any{"kernel_shape": i64s(2, 2), "strides": i64s(2, 2)}),
		node("Conv", []string{"p1", "w2"}, []string{"c2"}, map[string]any{"group": 8, "pads": i64s(1, 1, 1, 1)}),
		node("Relu", []string{"c2"}, []string{"r2"}, nil),
		node("AveragePool", []string{"r2"}, []string{"a2"}, map[string]any{"kernel_shape": i64s(3, 3), "pads": i64s(1, 1, 1, 1)}),
		node("GlobalAveragePool", []string{"a2"}, []string{"gp"}, nil),
		node("Flatten", []string{"gp"}, []string{"f"}, nil),
		node("Gemm", []string{"f", "w3", "b3"}, []string{"y"}, map[string]any{"transB": 1}),
	}
	x := nnRand(20, 4, 3, 12, 12)
	var results [][]float32
	for _, noOpt := range []bool{true, false} {
		for _, threads := range []int{1, 2} {
			ex, err := NewExecutor(g, Options{Threads: threads, NoOptimize: noOpt})
			if err != nil {
				t.Fatal(err)
			}
			out, err := ex.Run(context.Background(), map[string]*Tensor{"x": x})
			if err != nil {
				t.Fatal(err)
			}
			if !SameShape(out["y"].Shape, []int{4, 10}) {
				t.Fatalf("shape %v", out["y"].Shape)
			}
			results = append(results, out["y"].F32)
			if testing.Verbose() && !noOpt && threads == 1 {
				for _, n := range ex.Graph().Nodes {
					t.Logf("%s %v act=%q", n.OpType, n.Inputs, n.AttrString("activation", ""))
				}
			}
		}
	}
	for i := 1; i < len(results); i++ {
		if err := nnClose(results[i], results[0], 1e-4); err != nil {
			t.Errorf("run %d: %v", i, err)
		}
	}
}

// BenchmarkIm2col measures the column expansion of a 3x3 pad-1 layer
// (stride 1 and 2) on one 16-channel 32x32 image; reports GB/s written.
func BenchmarkIm2col(b *testing.B) {
	for _, s := range []int{1, 2} {
		b.Run(fmt.Sprintf("s%d", s), func(b *testing.B) {
			n := nnNode("Conv", 2, map[string]any{"pads": i64s(1, 1, 1, 1), "strides": i64s(s, s)})
			k, _, err := CompileNode(n, []ValueMeta{{DType: Float32, Shape: []int{1, 16, 32, 32}}, {DType: Float32, Shape: []int{16, 16, 3, 3}}})
			if err != nil {
				b.Fatal(err)
			}
			ck := k.(*convKernel)
			x := nnRand(1, 16, 32, 32).F32
			taps := makeColTaps(&ck.g, 16)
			col := make([]float32, len(taps)*ck.outSize)
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				im2colTile(&ck.g, taps, x, col, 0, ck.rows, 1)
			}
			b.ReportMetric(float64(4*len(col))*float64(b.N)/b.Elapsed().Seconds()/1e9, "GB/s")
		})
	}
}

func TestConvPaths(t *testing.T) {
	tests := []struct {
		x, w  []int
		pads  []int
		group int
		tiles bool // im2col in several tiles (the other TestConv cases rely on it)
		dw    bool
	}{
		{x: []int{1, 16, 40, 40}, w: []int{4, 16, 3, 3}, pads: []int{1, 1, 1, 1}, tiles: true},
		{x: []int{3, 16, 41, 41}, w: []int{8, 16, 3, 3}, pads: []int{1, 1, 1, 1}, tiles: true},
		{x: []int{1, 16, 40}, w: []int{4, 16, 3}, pads: []int{1, 1}},
		{x: []int{1, 8, 6, 10, 12}, w: []int{3, 8, 3, 3, 3}, pads: []int{1, 1, 1, 1, 1, 1}, tiles: true},
		{x: []int{2, 64, 50, 50}, w: []int{8, 64, 1, 1}, pads: []int{0, 0, 0, 0}},
		{x: []int{2, 8, 10, 10}, w: []int{8, 1, 3, 3}, pads: []int{1, 1, 1, 1}, group: 8, dw: true},
	}
	for _, tc := range tests {
		n := nnNode("Conv", 2, map[string]any{"pads": i64s(tc.pads...), "group": max(tc.group, 1)})
		k, _, err := CompileNode(n, []ValueMeta{{DType: Float32, Shape: tc.x}, {DType: Float32, Shape: tc.w}})
		if err != nil {
			t.Fatal(err)
		}
		ck := k.(*convKernel)
		if (ck.tiles > 1) != tc.tiles || ck.depthwise != tc.dw {
			t.Errorf("x %v w %v: %d tile(s), depthwise %v; want tiles %v, depthwise %v",
				tc.x, tc.w, ck.tiles, ck.depthwise, tc.tiles, tc.dw)
		}
	}
}
