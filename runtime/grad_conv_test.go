package runtime

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	goruntime "runtime"
	"syscall"
	"testing"
	"time"
)

// Gradient checks and direct tests of the backward kernels of Conv and the
// pooling ops (grad_conv.go, grad_pool.go).

// distinctTensor returns a tensor whose values are distinct and at least
// 0.03 apart (a shuffled ramp centred on 0), so that a finite-difference
// step never changes which element of a pooling window is the maximum.
// Meant for tensors of at most 150 elements.
func distinctTensor(seed uint64, shape ...int) *Tensor {
	t := New(Float32, shape...)
	n := len(t.F32)
	perm := rand.New(rand.NewPCG(seed, 11)).Perm(n)
	for i, p := range perm {
		t.F32[i] = float32(0.03 * (float64(p) - float64(n-1)/2))
	}
	return t
}

// convGradSpec is one Conv geometry of the gradient tests.
type convGradSpec struct {
	name    string
	x, w    []int
	bias    bool
	group   int
	strides []int
	dil     []int
	pads    []int
	autoPad string
}

func (s convGradSpec) node() *Node {
	attrs := map[string]any{}
	if s.group > 1 {
		attrs["group"] = s.group
	}
	if s.strides != nil {
		attrs["strides"] = i64s(s.strides...)
	}
	if s.dil != nil {
		attrs["dilations"] = i64s(s.dil...)
	}
	if s.pads != nil {
		attrs["pads"] = i64s(s.pads...)
	}
	if s.autoPad != "" {
		attrs["auto_pad"] = s.autoPad
	}
	nIn := 2
	if s.bias {
		nIn = 3
	}
	return nnNode("Conv", nIn, attrs)
}

func (s convGradSpec) inputs(seed uint64) []*Tensor {
	ins := []*Tensor{randTensor(seed, -1, 1, s.x...), randTensor(seed+1, -1, 1, s.w...)}
	if s.bias {
		ins = append(ins, randTensor(seed+2, -1, 1, s.w[0]))
	}
	return ins
}

// convGradSpecs are small geometries for finite differences.
var convGradSpecs = []convGradSpec{
	{name: "1d", x: []int{2, 3, 7}, w: []int{4, 3, 3}, bias: true, pads: []int{1, 1}},
	{name: "1d_stride2_dil2", x: []int{2, 2, 11}, w: []int{3, 2, 3}, strides: []int{2}, dil: []int{2}, pads: []int{0, 1}},
	{name: "1d_depthwise", x: []int{2, 3, 8}, w: []int{3, 1, 3}, group: 3, pads: []int{1, 2}, bias: true},
	{name: "2d", x: []int{2, 3, 5, 5}, w: []int{4, 3, 3, 3}, bias: true, pads: []int{1, 1, 1, 1}},
	{name: "2d_nobias_nopad", x: []int{2, 2, 5, 6}, w: []int{3, 2, 3, 2}},
	{name: "2d_stride2_asympad", x: []int{2, 2, 6, 5}, w: []int{3, 2, 3, 3}, bias: true, strides: []int{2, 2}, pads: []int{1, 0, 0, 1}},
	{name: "2d_dil2", x: []int{1, 2, 7, 7}, w: []int{2, 2, 3, 3}, dil: []int{2, 2}, pads: []int{2, 1, 2, 1}},
	{name: "2d_group2", x: []int{2, 4, 5, 5}, w: []int{6, 2, 3, 3}, bias: true, group: 2, pads: []int{1, 1, 1, 1}},
	{name: "2d_depthwise", x: []int{2, 3, 6, 6}, w: []int{3, 1, 3, 3}, bias: true, group: 3, pads: []int{1, 1, 1, 1}},
	{name: "2d_depthwise_mult2_s2_d2", x: []int{2, 2, 7, 7}, w: []int{4, 1, 3, 3}, group: 2, strides: []int{2, 2}, dil: []int{2, 1}, pads: []int{2, 1, 1, 1}},
	{name: "2d_same_upper_s2", x: []int{2, 2, 5, 6}, w: []int{3, 2, 3, 2}, bias: true, strides: []int{2, 2}, autoPad: "SAME_UPPER"},
	{name: "2d_same_lower", x: []int{1, 2, 5, 4}, w: []int{2, 2, 2, 3}, autoPad: "SAME_LOWER"},
	{name: "2d_valid_s2", x: []int{2, 2, 6, 7}, w: []int{2, 2, 3, 3}, strides: []int{2, 3}, autoPad: "VALID"},
	{name: "2d_pointwise", x: []int{2, 3, 4, 4}, w: []int{5, 3, 1, 1}, bias: true},
	{name: "2d_pointwise_group", x: []int{2, 4, 3, 3}, w: []int{4, 2, 1, 1}, group: 2},
	{name: "2d_pointwise_stride2", x: []int{2, 3, 5, 5}, w: []int{2, 3, 1, 1}, strides: []int{2, 2}},
	{name: "2d_batch10", x: []int{10, 2, 4, 4}, w: []int{3, 2, 3, 3}, bias: true, pads: []int{1, 1, 1, 1}},
	{name: "3d", x: []int{2, 2, 4, 4, 4}, w: []int{3, 2, 2, 3, 3}, bias: true, strides: []int{1, 2, 1}, pads: []int{0, 1, 1, 1, 0, 1}},
	{name: "3d_dil_group2", x: []int{1, 4, 5, 4, 4}, w: []int{2, 2, 2, 2, 2}, group: 2, dil: []int{2, 1, 2}, pads: []int{1, 0, 1, 0, 1, 1}},
	{name: "3d_depthwise", x: []int{1, 2, 4, 4, 4}, w: []int{2, 1, 2, 2, 2}, group: 2, bias: true},
}

// convTransposeGradSpecs are small ConvTranspose geometries (W is
// [C, M/group, kernel...]); the node is built by convGradSpec.node with
// the op type changed and extra attributes.
var convTransposeGradSpecs = []struct {
	spec  convGradSpec
	attrs map[string]any
}{
	{convGradSpec{name: "transpose_2d_s2_outpad", x: []int{2, 3, 3, 4}, w: []int{3, 2, 3, 3}, bias: true, strides: []int{2, 2}, pads: []int{1, 1, 1, 0}}, map[string]any{"output_padding": i64s(1, 1)}},
	{convGradSpec{name: "transpose_1d", x: []int{2, 2, 5}, w: []int{2, 3, 3}, pads: []int{1, 0}}, nil},
	{convGradSpec{name: "transpose_2d_group2", x: []int{2, 4, 3, 3}, w: []int{4, 1, 2, 2}, group: 2, strides: []int{2, 2}, bias: true}, nil},
	{convGradSpec{name: "transpose_2d_dil2", x: []int{1, 2, 4, 4}, w: []int{2, 2, 3, 3}, dil: []int{2, 2}, pads: []int{1, 2, 0, 1}}, nil},
	{convGradSpec{name: "transpose_2d_same_upper", x: []int{2, 2, 3, 3}, w: []int{2, 2, 3, 3}, strides: []int{2, 2}, autoPad: "SAME_UPPER"}, nil},
	{convGradSpec{name: "transpose_2d_output_shape", x: []int{1, 2, 3, 3}, w: []int{2, 2, 3, 3}, strides: []int{2, 2}}, map[string]any{"output_shape": i64s(6, 7)}},
	{convGradSpec{name: "transpose_3d", x: []int{1, 2, 3, 3, 2}, w: []int{2, 2, 2, 2, 2}, strides: []int{2, 1, 2}, bias: true}, nil},
	{convGradSpec{name: "transpose_2d_batch10", x: []int{10, 2, 3, 3}, w: []int{2, 3, 3, 3}, pads: []int{1, 1, 1, 1}, bias: true}, nil},
}

// convTransposeNode builds the ConvTranspose node of a spec.
func convTransposeNode(s convGradSpec, extra map[string]any) *Node {
	n := s.node()
	n.OpType = "ConvTranspose"
	n.Name = "t_convtranspose"
	for k, v := range extra {
		n.SetAttr(k, Attr{Kind: AttrInts, Ints: v.([]int64)})
	}
	return n
}

// convTransposeInputs returns X, W and (with s.bias) B of a ConvTranspose
// spec: B has M = W[1]*group values.
func convTransposeInputs(s convGradSpec, seed uint64) []*Tensor {
	ins := s.inputs(seed)
	if s.bias {
		ins[2] = randTensor(seed+2, -1, 1, s.w[1]*max(s.group, 1))
	}
	return ins
}

// poolGradSpec is one pooling geometry of the gradient tests.
type poolGradSpec struct {
	name  string
	op    string
	x     []int
	attrs map[string]any
}

var poolGradSpecs = []poolGradSpec{
	{"max1d_overlap", "MaxPool", []int{2, 2, 9}, map[string]any{"kernel_shape": i64s(3), "strides": i64s(2), "pads": i64s(1, 1)}},
	{"max2d_2x2", "MaxPool", []int{2, 3, 4, 4}, map[string]any{"kernel_shape": i64s(2, 2), "strides": i64s(2, 2)}},
	{"max2d_overlap_pad", "MaxPool", []int{2, 2, 5, 5}, map[string]any{"kernel_shape": i64s(3, 3), "pads": i64s(1, 1, 1, 1)}},
	{"max2d_ceil", "MaxPool", []int{1, 2, 6, 7}, map[string]any{"kernel_shape": i64s(3, 3), "strides": i64s(2, 2), "ceil_mode": 1}},
	{"max2d_dil2", "MaxPool", []int{1, 2, 7, 7}, map[string]any{"kernel_shape": i64s(2, 2), "dilations": i64s(2, 2), "strides": i64s(1, 2)}},
	{"max2d_same_upper", "MaxPool", []int{1, 2, 5, 5}, map[string]any{"kernel_shape": i64s(3, 3), "strides": i64s(2, 2), "auto_pad": "SAME_UPPER"}},
	{"max3d", "MaxPool", []int{1, 2, 4, 4, 4}, map[string]any{"kernel_shape": i64s(2, 3, 2), "strides": i64s(1, 1, 2), "pads": i64s(0, 1, 0, 1, 1, 0)}},
	{"avg1d", "AveragePool", []int{2, 2, 9}, map[string]any{"kernel_shape": i64s(3), "strides": i64s(2), "pads": i64s(1, 1)}},
	{"avg2d_exclude_pad", "AveragePool", []int{2, 2, 5, 5}, map[string]any{"kernel_shape": i64s(3, 3), "pads": i64s(1, 1, 1, 1)}},
	{"avg2d_include_pad", "AveragePool", []int{2, 2, 5, 5}, map[string]any{"kernel_shape": i64s(3, 3), "strides": i64s(2, 2), "pads": i64s(1, 1, 1, 1), "count_include_pad": 1}},
	{"avg2d_ceil", "AveragePool", []int{1, 2, 6, 7}, map[string]any{"kernel_shape": i64s(3, 3), "strides": i64s(2, 2), "ceil_mode": 1}},
	{"avg2d_ceil_include_pad", "AveragePool", []int{1, 2, 6, 6}, map[string]any{"kernel_shape": i64s(3, 3), "strides": i64s(2, 2), "pads": i64s(1, 1, 0, 0), "ceil_mode": 1, "count_include_pad": 1}},
	{"avg2d_dil2", "AveragePool", []int{1, 2, 7, 7}, map[string]any{"kernel_shape": i64s(2, 2), "dilations": i64s(2, 2)}},
	{"avg3d", "AveragePool", []int{1, 2, 4, 4, 4}, map[string]any{"kernel_shape": i64s(2, 2, 3), "strides": i64s(2, 1, 1), "pads": i64s(0, 1, 1, 0, 0, 1)}},
	{"global_avg", "GlobalAveragePool", []int{2, 3, 4, 5}, nil},
	{"global_avg1d", "GlobalAveragePool", []int{2, 3, 6}, nil},
	{"global_max", "GlobalMaxPool", []int{2, 3, 4, 5}, nil},
	{"global_max3d", "GlobalMaxPool", []int{1, 2, 3, 3, 3}, nil},
}

func init() {
	for i, s := range convGradSpecs {
		seed := uint64(5000 + 10*i)
		gradCases = append(gradCases, gradCase{name: "conv/" + s.name, node: s.node(), inputs: s.inputs(seed)})
	}
	// Only some inputs need gradients: frozen weights (dX only), a frozen
	// input (dW and dB only), and frozen input and bias (dW only).
	for _, s := range []convGradSpec{convGradSpecs[3], convGradSpecs[7], convGradSpecs[8], convGradSpecs[13]} {
		gradCases = append(gradCases,
			gradCase{name: "conv/" + s.name + "_frozenW", node: s.node(), inputs: s.inputs(77), fixed: []int{1, 2}},
			gradCase{name: "conv/" + s.name + "_frozenX", node: s.node(), inputs: s.inputs(78), fixed: []int{0}},
			gradCase{name: "conv/" + s.name + "_onlyW", node: s.node(), inputs: s.inputs(79), fixed: []int{0, 2}},
		)
	}
	for i, c := range convTransposeGradSpecs {
		gradCases = append(gradCases, gradCase{name: "conv/" + c.spec.name, node: convTransposeNode(c.spec, c.attrs),
			inputs: convTransposeInputs(c.spec, uint64(5500+10*i))})
	}
	c := convTransposeGradSpecs[0]
	gradCases = append(gradCases,
		gradCase{name: "conv/" + c.spec.name + "_frozenW", node: convTransposeNode(c.spec, c.attrs), inputs: convTransposeInputs(c.spec, 81), fixed: []int{1, 2}},
		gradCase{name: "conv/" + c.spec.name + "_frozenX", node: convTransposeNode(c.spec, c.attrs), inputs: convTransposeInputs(c.spec, 82), fixed: []int{0}})
	for i, s := range poolGradSpecs {
		n := nnNode(s.op, 1, s.attrs)
		gradCases = append(gradCases, gradCase{name: "pool/" + s.name, node: n,
			inputs: []*Tensor{distinctTensor(uint64(6000+i), s.x...)}})
	}
}

// refConvGrad returns the gradients of X, W and B of a convolution with
// output gradient dy, by direct float64 loops over the definition.
func refConvGrad(x, w, dy *Tensor, group int, strides, dil, pb []int) (dx, dw, db []float64) {
	xs, ws, ys := x.Shape, w.Shape, dy.Shape
	r := len(xs) - 2
	N, M := xs[0], ws[0]
	cg, mg := xs[1]/group, M/group
	dx = make([]float64, len(x.F32))
	dw = make([]float64, len(w.F32))
	db = make([]float64, M)
	pos := make([]int, r)
	out := ys[2:]
	for n := 0; n < N; n++ {
		for m := 0; m < M; m++ {
			g := m / mg
			o := make([]int, r)
			for {
				gy := float64(dy.F32[nnFlat(append([]int{n, m}, o...), ys)])
				db[m] += gy
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
							dx[xi] += float64(w.F32[wi]) * gy
							dw[wi] += float64(x.F32[xi]) * gy
						}
						if !nnNext(kk, ws[2:]) {
							break
						}
					}
				}
				if !nnNext(o, out) {
					break
				}
			}
		}
	}
	return dx, dw, db
}

// runConvGrad compiles the backward of n and runs it with threads
// goroutines on gradient buffers that start at start (to check that the
// kernel adds), returning dX, dW, dB (nil where not needed).
func runConvGrad(t *testing.T, n *Node, ins []*Tensor, constW bool, need []bool, dy *Tensor, start float32, threads int, opts convGradOptions) []*Tensor {
	t.Helper()
	metas := make([]ValueMeta, len(ins))
	for i, x := range ins {
		metas[i] = ValueMeta{DType: Float32, Shape: x.Shape}
		if constW && i > 0 {
			metas[i].Const = x
		}
	}
	_, outMeta, err := CompileNode(n, metas)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := compileConvGrad(n, metas, outMeta, need); err != nil {
		t.Fatal(err)
	}
	gk, err := newConvGrad(n, metas, need, opts)
	if err != nil {
		t.Fatal(err)
	}
	grads := make([]*Tensor, len(ins))
	for i, x := range ins {
		if need[i] {
			grads[i] = New(Float32, x.Shape...)
			for j := range grads[i].F32 {
				grads[i].F32[j] = start
			}
		}
	}
	ec := &ExecContext{Ctx: context.Background(), Threads: threads}
	if err := gk.Backward(ec, ins, nil, []*Tensor{dy}, grads); err != nil {
		t.Fatal(err)
	}
	return grads
}

// TestConvGradReference compares the Conv backward with direct loops on
// geometries too large for finite differences (several column tiles,
// batches with several chunks), for every subset of needed gradients,
// constant and variable weights, every algorithm choice, and 1 to 3
// threads; results must be bit-identical across thread counts.
func TestConvGradReference(t *testing.T) {
	specs := append([]convGradSpec{
		{name: "tiled", x: []int{2, 16, 36, 34}, w: []int{5, 16, 3, 3}, bias: true, pads: []int{1, 1, 1, 1}},
		{name: "tiled_stride2", x: []int{3, 16, 41, 41}, w: []int{6, 16, 3, 3}, strides: []int{2, 2}, pads: []int{1, 0, 1, 1}, bias: true},
		{name: "tiled_group2", x: []int{2, 32, 20, 30}, w: []int{8, 16, 3, 3}, group: 2, pads: []int{1, 1, 1, 1}},
		{name: "3d_tiled", x: []int{1, 8, 6, 10, 12}, w: []int{3, 8, 3, 3, 3}, pads: []int{1, 1, 1, 1, 1, 1}},
		{name: "lenet_c2_batch19", x: []int{19, 6, 14, 14}, w: []int{16, 6, 5, 5}, bias: true},
		{name: "pointwise_batch12", x: []int{12, 8, 5, 7}, w: []int{6, 8, 1, 1}, bias: true},
		{name: "depthwise_batch9", x: []int{9, 4, 9, 8}, w: []int{8, 1, 3, 3}, group: 4, strides: []int{2, 1}, pads: []int{1, 1, 1, 1}, bias: true},
	}, convGradSpecs...)
	needs := [][]bool{{true, true, true}, {true, false, false}, {false, true, false}, {false, false, true}, {false, true, true}}
	for si, s := range specs {
		t.Run(s.name, func(t *testing.T) {
			n := s.node()
			ins := s.inputs(uint64(900 + si))
			_, outMeta, err := CompileNode(n, []ValueMeta{{DType: Float32, Shape: s.x}, {DType: Float32, Shape: s.w}})
			if err != nil {
				t.Fatal(err)
			}
			dy := randTensor(uint64(400+si), -1, 1, outMeta[0].Shape...)
			f, _, _ := compileConv(n, []ValueMeta{{DType: Float32, Shape: s.x}, {DType: Float32, Shape: s.w}})
			g := &f.(*convKernel).g
			off := maxSpatial - g.rank
			group := max(s.group, 1)
			rdx, rdw, rdb := refConvGrad(ins[0], ins[1], dy, group, g.s[off:], g.d[off:], g.pb[off:])
			want := [][]float64{rdx, rdw, rdb}
			const start = 0.25
			for _, need := range needs {
				need = need[:len(ins)]
				for vi, opts := range []convGradOptions{{wide: true, tapDX: true}, {wide: true}, {}} {
					constW := vi == 1
					var first []*Tensor
					for _, threads := range []int{1, 2, 3} {
						got := runConvGrad(t, n, ins, constW, need, dy, start, threads, opts)
						for i := range got {
							if got[i] == nil {
								continue
							}
							for j, v := range got[i].F32 {
								w := want[i][j] + start
								if math.Abs(float64(v)-w) > 1e-4*math.Max(1, math.Abs(w)) {
									t.Fatalf("need %v %+v const %v threads %d: d input %d [%d] = %v, want %v", need, opts, constW, threads, i, j, v, w)
								}
							}
							if first == nil {
								continue
							}
							for j, v := range got[i].F32 {
								if math.Float32bits(v) != math.Float32bits(first[i].F32[j]) {
									t.Fatalf("need %v %+v const %v: threads %d differs from threads 1 at input %d [%d]", need, opts, constW, threads, i, j)
								}
							}
						}
						if first == nil {
							first = got
						}
					}
				}
			}
		})
	}
}

// refConvTransposeGrad returns the gradients of X, W and B of a
// ConvTranspose with output gradient dy, by direct float64 loops.
func refConvTransposeGrad(x, w, dy *Tensor, group int, strides, dil, pb []int) (dx, dw, db []float64) {
	xs, ws, ys := x.Shape, w.Shape, dy.Shape
	r := len(xs) - 2
	N, C, mg := xs[0], xs[1], ws[1]
	cg := C / group
	out := ys[2:]
	dx = make([]float64, len(x.F32))
	dw = make([]float64, len(w.F32))
	db = make([]float64, ys[1])
	for i, v := range dy.F32 {
		db[(i/NumElements(out))%ys[1]] += float64(v)
	}
	pos := make([]int, r)
	for n := 0; n < N; n++ {
		for c := 0; c < C; c++ {
			g := c / cg
			ii := make([]int, r)
			for {
				xi := nnFlat(append([]int{n, c}, ii...), xs)
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
							wi := nnFlat(append([]int{c, m}, kk...), ws)
							gy := float64(dy.F32[nnFlat(append([]int{n, g*mg + m}, pos...), ys)])
							dx[xi] += float64(w.F32[wi]) * gy
							dw[wi] += float64(x.F32[xi]) * gy
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
	return dx, dw, db
}

// TestConvTransposeGradReference compares the ConvTranspose backward with
// direct loops (several tiles, several batch chunks), for subsets of
// needed gradients, constant and variable weights and 1 to 3 threads
// (bit-identical).
func TestConvTransposeGradReference(t *testing.T) {
	specs := append([]struct {
		spec  convGradSpec
		attrs map[string]any
	}{
		{convGradSpec{name: "tiled", x: []int{1, 4, 24, 64}, w: []int{4, 16, 3, 3}, strides: []int{1, 1}, pads: []int{1, 1, 1, 1}, bias: true}, nil},
		{convGradSpec{name: "s2_batch13", x: []int{13, 6, 7, 7}, w: []int{6, 4, 4, 4}, strides: []int{2, 2}, pads: []int{1, 1, 1, 1}, bias: true}, nil},
	}, convTransposeGradSpecs...)
	needs := [][]bool{{true, true, true}, {true, false, false}, {false, true, false}, {false, false, true}}
	for si, c := range specs {
		s := c.spec
		t.Run(s.name, func(t *testing.T) {
			n := convTransposeNode(s, c.attrs)
			ins := convTransposeInputs(s, uint64(1300+si))
			metas := make([]ValueMeta, len(ins))
			for i, x := range ins {
				metas[i] = ValueMeta{DType: Float32, Shape: x.Shape}
			}
			fk, om, err := CompileNode(n, metas)
			if err != nil {
				t.Fatal(err)
			}
			g := &fk.(*convTransposeKernel).g
			off := maxSpatial - g.rank
			dy := randTensor(uint64(1400+si), -1, 1, om[0].Shape...)
			rdx, rdw, rdb := refConvTransposeGrad(ins[0], ins[1], dy, max(s.group, 1), g.s[off:], g.d[off:], g.pb[off:])
			want := [][]float64{rdx, rdw, rdb}
			for _, need := range needs {
				need = need[:len(ins)]
				for _, constW := range []bool{false, true} {
					cm := append([]ValueMeta{}, metas...)
					if constW {
						cm[1].Const = ins[1]
					}
					gk, err := compileConvTransposeGrad(n, cm, om, need)
					if err != nil {
						t.Fatal(err)
					}
					var first []*Tensor
					for _, threads := range []int{1, 2, 3} {
						grads := make([]*Tensor, len(ins))
						for i, x := range ins {
							if need[i] {
								grads[i] = New(Float32, x.Shape...)
							}
						}
						ec := &ExecContext{Ctx: context.Background(), Threads: threads}
						if err := gk.Backward(ec, ins, nil, []*Tensor{dy}, grads); err != nil {
							t.Fatal(err)
						}
						for i, gt := range grads {
							if gt == nil {
								continue
							}
							for j, v := range gt.F32 {
								if w := want[i][j]; math.Abs(float64(v)-w) > 1e-4*math.Max(1, math.Abs(w)) {
									t.Fatalf("need %v const %v threads %d: d input %d [%d] = %v, want %v", need, constW, threads, i, j, v, w)
								}
								if first != nil && math.Float32bits(v) != math.Float32bits(first[i].F32[j]) {
									t.Fatalf("need %v const %v: threads %d differs from threads 1 at input %d [%d]", need, constW, threads, i, j)
								}
							}
						}
						if first == nil {
							first = grads
						}
					}
				}
			}
		})
	}
}

// refPoolGrad is the pooling backward by direct loops (the maximum is the
// first in scan order, as refPool finds it).
func refPoolGrad(x, dy *Tensor, isMax, includePad bool, k, s, d, pb, pe, out []int) []float64 {
	_, idx := refPool(x, true, false, k, s, d, pb, pe, out)
	dx := make([]float64, len(x.F32))
	if isMax {
		for o, i := range idx {
			if i >= 0 {
				dx[i] += float64(dy.F32[o])
			}
		}
		return dx
	}
	xs := x.Shape
	r := len(xs) - 2
	shape := append([]int{xs[0], xs[1]}, out...)
	o := make([]int, len(shape))
	pos := make([]int, r)
	for i := range dy.F32 {
		var taps []int
		cntPad := 0
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
				taps = append(taps, nnFlat(append([]int{o[0], o[1]}, pos...), xs))
			}
			if !nnNext(kk, k) {
				break
			}
		}
		cnt := len(taps)
		if includePad {
			cnt = cntPad
		}
		for _, ti := range taps {
			dx[ti] += float64(dy.F32[i]) / float64(cnt)
		}
		nnNext(o, shape)
	}
	return dx
}

// TestPoolGradReference compares the pooling backward with direct loops
// on larger inputs, with 1 to 3 threads (bit-identical).
func TestPoolGradReference(t *testing.T) {
	specs := append([]poolGradSpec{
		{"max_big_overlap", "MaxPool", []int{3, 5, 17, 19}, map[string]any{"kernel_shape": i64s(3, 3), "strides": i64s(2, 2), "pads": i64s(1, 1, 1, 1)}},
		{"avg_big_ceil", "AveragePool", []int{3, 5, 17, 19}, map[string]any{"kernel_shape": i64s(3, 3), "strides": i64s(2, 2), "ceil_mode": 1}},
	}, poolGradSpecs...)
	for si, s := range specs {
		t.Run(s.name, func(t *testing.T) {
			n := nnNode(s.op, 1, s.attrs)
			x := randTensor(uint64(300+si), -1, 1, s.x...)
			metas := []ValueMeta{{DType: Float32, Shape: s.x}}
			_, outMeta, err := CompileNode(n, metas)
			if err != nil {
				t.Fatal(err)
			}
			spec, _ := LookupOp("", s.op)
			gk, err := spec.Grad(n, metas, outMeta, []bool{true})
			if err != nil {
				t.Fatal(err)
			}
			dy := randTensor(uint64(700+si), -1, 1, outMeta[0].Shape...)
			var want []float64
			r := len(s.x) - 2
			switch s.op {
			case "GlobalAveragePool", "GlobalMaxPool":
				want = refPoolGrad(x, dy, s.op == "GlobalMaxPool", false, s.x[2:], nnOnes(r, 1), nnOnes(r, 1), nnOnes(r, 0), nnOnes(r, 0), nnOnes(r, 1))
			default:
				pk, _, _ := CompileNode(n, metas)
				g := &pk.(*poolKernel).g
				off := maxSpatial - r
				want = refPoolGrad(x, dy, s.op == "MaxPool", pk.(*poolKernel).includePad, g.k[off:], g.s[off:], g.d[off:], g.pb[off:], g.pe[off:], g.out[off:])
			}
			var first []float32
			for _, threads := range []int{1, 2, 3} {
				dx := New(Float32, s.x...)
				for i := range dx.F32 {
					dx.F32[i] = 0.5
				}
				ec := &ExecContext{Ctx: context.Background(), Threads: threads}
				if err := gk.Backward(ec, []*Tensor{x}, nil, []*Tensor{dy}, []*Tensor{dx}); err != nil {
					t.Fatal(err)
				}
				for i, v := range dx.F32 {
					if w := want[i] + 0.5; math.Abs(float64(v)-w) > 1e-5 {
						t.Fatalf("threads %d: dx[%d] = %v, want %v", threads, i, v, w)
					}
				}
				if threads == 1 {
					ins, gout, gin := []*Tensor{x}, []*Tensor{dy}, []*Tensor{New(Float32, s.x...)}
					allocs := testing.AllocsPerRun(3, func() { _ = gk.Backward(ec, ins, nil, gout, gin) })
					if allocs != 0 {
						t.Errorf("Backward allocates %v times per call", allocs)
					}
				}
				if first == nil {
					first = dx.F32
				} else {
					for i, v := range dx.F32 {
						if math.Float32bits(v) != math.Float32bits(first[i]) {
							t.Fatalf("threads %d differs from threads 1 at %d", threads, i)
						}
					}
				}
			}
		})
	}
}

// TestConvGradNoAlloc checks that a single-threaded Backward allocates
// nothing, for each algorithm.
func TestConvGradNoAlloc(t *testing.T) {
	for _, s := range []convGradSpec{convGradSpecs[3], convGradSpecs[5], convGradSpecs[8], convGradSpecs[13], convGradSpecs[16]} {
		n := s.node()
		ins := s.inputs(3)
		metas := make([]ValueMeta, len(ins))
		grads := make([]*Tensor, len(ins))
		need := make([]bool, len(ins))
		for i, x := range ins {
			metas[i] = ValueMeta{DType: Float32, Shape: x.Shape}
			grads[i] = New(Float32, x.Shape...)
			need[i] = true
		}
		_, om, err := CompileNode(n, metas)
		if err != nil {
			t.Fatal(err)
		}
		dy := randTensor(4, -1, 1, om[0].Shape...)
		for _, opts := range []convGradOptions{{wide: true, tapDX: true}, {}} {
			gk, err := newConvGrad(n, metas, need, opts)
			if err != nil {
				t.Fatal(err)
			}
			ec := &ExecContext{Ctx: context.Background(), Threads: 1}
			gout := []*Tensor{dy}
			allocs := testing.AllocsPerRun(5, func() {
				if err := gk.Backward(ec, ins, nil, gout, grads); err != nil {
					t.Fatal(err)
				}
			})
			if allocs != 0 {
				t.Errorf("%s %+v: Backward allocates %v times per call", s.name, opts, allocs)
			}
		}
	}
}

// TestConvGradErrors checks that bad backward inputs give errors, not
// panics, and that a fused activation is refused.
func TestConvGradErrors(t *testing.T) {
	s := convGradSpecs[3]
	n := s.node()
	ins := s.inputs(1)
	metas := []ValueMeta{{DType: Float32, Shape: s.x}, {DType: Float32, Shape: s.w}, {DType: Float32, Shape: []int{s.w[0]}}}
	_, outMeta, err := CompileNode(n, metas)
	if err != nil {
		t.Fatal(err)
	}
	gk, err := compileConvGrad(n, metas, outMeta, []bool{true, true, true})
	if err != nil {
		t.Fatal(err)
	}
	ec := &ExecContext{Ctx: context.Background(), Threads: 1}
	short := New(Float32, 3)
	grads := []*Tensor{New(Float32, s.x...), New(Float32, s.w...), New(Float32, s.w[0])}
	if err := gk.Backward(ec, ins, nil, []*Tensor{short}, grads); err == nil {
		t.Error("a short output gradient was accepted")
	}
	dy := New(Float32, outMeta[0].Shape...)
	if err := gk.Backward(ec, []*Tensor{short, ins[1], ins[2]}, nil, []*Tensor{dy}, grads); err == nil {
		t.Error("a short X was accepted")
	}
	// No output gradient: nothing to do.
	if err := gk.Backward(ec, ins, nil, []*Tensor{nil}, grads); err != nil {
		t.Error(err)
	}
	fused := s.node()
	fused.SetAttr("activation", Attr{Kind: AttrString, S: "Relu"})
	if _, err := compileConvGrad(fused, metas, outMeta, []bool{true, true, true}); err == nil {
		t.Error("a fused activation was accepted")
	}
}

// TestConvTrainFrozenPrefix trains a tiny CNN through the GradExecutor
// with the first convolution frozen: its weights get no gradient, the
// second convolution's do, and they match direct loops.
func TestConvTrainFrozenPrefix(t *testing.T) {
	g := NewGraph("frozen_prefix")
	g.Inputs = []ValueInfo{{Name: "x", DType: Float32, Shape: []int{4, 1, 8, 8}}}
	g.Outputs = []ValueInfo{{Name: "y"}}
	g.AddParam("w1", randTensor(1, -1, 1, 3, 1, 3, 3), false)
	g.AddParam("w2", randTensor(2, -1, 1, 2, 3, 3, 3), true)
	g.AddParam("b2", randTensor(3, -1, 1, 2), true)
	c1 := nnNode("Conv", 2, map[string]any{"pads": i64s(1, 1, 1, 1)})
	c1.Name, c1.Inputs, c1.Outputs = "c1", []string{"x", "w1"}, []string{"h"}
	p := nnNode("MaxPool", 1, map[string]any{"kernel_shape": i64s(2, 2), "strides": i64s(2, 2)})
	p.Name, p.Inputs, p.Outputs = "p", []string{"h"}, []string{"hp"}
	c2 := nnNode("Conv", 3, nil)
	c2.Name, c2.Inputs, c2.Outputs = "c2", []string{"hp", "w2", "b2"}, []string{"y"}
	g.Nodes = []*Node{c1, p, c2}
	ex, err := NewGradExecutor(g, TrainOptions{Threads: 2})
	if err != nil {
		t.Fatal(err)
	}
	x := randTensor(4, -1, 1, 4, 1, 8, 8)
	out, err := ex.Forward(context.Background(), map[string]*Tensor{"x": x}, true)
	if err != nil {
		t.Fatal(err)
	}
	dy := randTensor(5, -1, 1, out["y"].Shape...)
	if err := ex.Backward(context.Background(), map[string]*Tensor{"y": dy}); err != nil {
		t.Fatal(err)
	}
	if ex.Grad("w1") != nil {
		t.Error("the frozen w1 has a gradient")
	}
	// Recompute hp with the inference path and check dW2 and dB2.
	h, err := EvalNode(context.Background(), c1, []*Tensor{x, g.Params["w1"].T}, 1)
	if err != nil {
		t.Fatal(err)
	}
	hp, err := EvalNode(context.Background(), p, []*Tensor{h[0]}, 1)
	if err != nil {
		t.Fatal(err)
	}
	_, rdw, rdb := refConvGrad(hp[0], g.Params["w2"].T, dy, 1, []int{1, 1}, []int{1, 1}, []int{0, 0})
	for name, want := range map[string][]float64{"w2": rdw, "b2": rdb} {
		got := ex.Grad(name)
		if got == nil {
			t.Fatalf("no gradient for %s", name)
		}
		for i, v := range got.F32 {
			if math.Abs(float64(v)-want[i]) > 1e-4*math.Max(1, math.Abs(want[i])) {
				t.Fatalf("%s[%d] = %v, want %v", name, i, v, want[i])
			}
		}
	}
}

// BenchmarkConvGrad measures the Conv backward (dW, dB and dX unless the
// name says otherwise) and, for comparison, the forward with variable
// weights, on LeNet-5 and small ResNet layers.
func BenchmarkConvGrad(b *testing.B) {
	cases := []struct {
		name  string
		x, w  []int
		s, p  int
		dx    bool
		group int
	}{
		{"lenet_c2_b128", []int{128, 6, 14, 14}, []int{16, 6, 5, 5}, 1, 0, true, 1},
		{"lenet_c2_b128_noDX", []int{128, 6, 14, 14}, []int{16, 6, 5, 5}, 1, 0, false, 1},
		{"lenet_c1_b128_noDX", []int{128, 1, 32, 32}, []int{6, 1, 5, 5}, 1, 0, false, 1},
		{"mnist8_c2_b128", []int{128, 8, 14, 14}, []int{16, 8, 5, 5}, 1, 2, true, 1},
		{"res3x3_16_b32", []int{32, 16, 32, 32}, []int{16, 16, 3, 3}, 1, 1, true, 1},
		{"res3x3_64_b32", []int{32, 64, 8, 8}, []int{64, 64, 3, 3}, 1, 1, true, 1},
		{"res3x3_32_s2_b32", []int{32, 16, 32, 32}, []int{32, 16, 3, 3}, 2, 1, true, 1},
		{"dw3x3_64_b32", []int{32, 64, 16, 16}, []int{64, 1, 3, 3}, 1, 1, true, 64},
		{"pw1x1_64_b32", []int{32, 32, 16, 16}, []int{64, 32, 1, 1}, 1, 0, true, 1},
	}
	for _, tc := range cases {
		for _, threads := range []int{1, 2} {
			x, w, bias := nnRand(1, tc.x...), nnRand(2, tc.w...), nnRand(3, tc.w[0])
			p := int64(tc.p)
			n := nnNode("Conv", 3, map[string]any{"strides": i64s(tc.s, tc.s), "pads": []int64{p, p, p, p}, "group": tc.group})
			metas := []ValueMeta{{DType: Float32, Shape: x.Shape}, {DType: Float32, Shape: w.Shape}, {DType: Float32, Shape: bias.Shape}}
			fk, om, err := CompileNode(n, metas)
			if err != nil {
				b.Fatal(err)
			}
			macs := fk.(MACCounter).MACs()
			y := New(Float32, om[0].Shape...)
			ec := &ExecContext{Ctx: context.Background(), Threads: threads, Workspace: make([]float32, fk.(WorkspaceUser).WorkspaceSize())}
			ins := []*Tensor{x, w, bias}
			b.Run(fmt.Sprintf("%s/forward/t%d", tc.name, threads), func(b *testing.B) {
				for i := 0; i < b.N; i++ {
					if err := fk.Run(ec, ins, []*Tensor{y}); err != nil {
						b.Fatal(err)
					}
				}
				b.ReportMetric(2*float64(macs)*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
			})
			need := []bool{tc.dx, true, true}
			gk, err := compileConvGrad(n, metas, om, need)
			if err != nil {
				b.Fatal(err)
			}
			grads := []*Tensor{nil, New(Float32, w.Shape...), New(Float32, bias.Shape...)}
			if tc.dx {
				grads[0] = New(Float32, x.Shape...)
			}
			dy := nnRand(4, om[0].Shape...)
			products := 1.0
			if tc.dx {
				products = 2
			}
			b.Run(fmt.Sprintf("%s/backward/t%d", tc.name, threads), func(b *testing.B) {
				for i := 0; i < b.N; i++ {
					if err := gk.Backward(ec, ins, nil, []*Tensor{dy}, grads); err != nil {
						b.Fatal(err)
					}
				}
				b.ReportMetric(products*2*float64(macs)*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
			})
		}
	}
}

// BenchmarkIm2colSmall measures the column expansion of small feature maps
// (LeNet-5 and mnist-8 second layers, one image); reports GB/s written.
func BenchmarkIm2colSmall(b *testing.B) {
	cases := []struct {
		name string
		x, w []int
		p    int
	}{
		{"lenet_c2", []int{1, 6, 14, 14}, []int{16, 6, 5, 5}, 0},
		{"lenet_c1", []int{1, 1, 32, 32}, []int{6, 1, 5, 5}, 0},
		{"mnist8_c2", []int{1, 8, 14, 14}, []int{16, 8, 5, 5}, 2},
	}
	for _, tc := range cases {
		b.Run(tc.name, func(b *testing.B) {
			p := int64(tc.p)
			n := nnNode("Conv", 2, map[string]any{"pads": []int64{p, p, p, p}})
			k, _, err := CompileNode(n, []ValueMeta{{DType: Float32, Shape: tc.x}, {DType: Float32, Shape: tc.w}})
			if err != nil {
				b.Fatal(err)
			}
			ck := k.(*convKernel)
			x := nnRand(1, tc.x...).F32
			col := make([]float32, len(ck.taps)*ck.outSize)
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				im2colTile(&ck.g, ck.taps, x, col, 0, ck.rows, 1)
			}
			b.ReportMetric(float64(4*len(col))*float64(b.N)/b.Elapsed().Seconds()/1e9, "GB/s")
		})
	}
}

// threadCPU returns the CPU time the calling OS thread has used.
func threadCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(rusageThread, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// rusageThread is RUSAGE_THREAD (Linux).
const rusageThread = 1

// TestConvGradTiming prints the single-thread CPU time of the Conv
// forward and backward (wide and classic column layouts) on typical
// layers; CPU time, unlike wall time, is not inflated by other processes
// sharing the machine. It runs only with COMPRESS_TIMING=1.
func TestConvGradTiming(t *testing.T) {
	if os.Getenv("COMPRESS_TIMING") == "" {
		t.Skip("set COMPRESS_TIMING=1 to print timings")
	}
	goruntime.LockOSThread()
	defer goruntime.UnlockOSThread()
	cases := []struct {
		name string
		x, w []int
		p    int
		dx   bool
	}{
		{"lenet_c2_b128", []int{128, 6, 14, 14}, []int{16, 6, 5, 5}, 0, true},
		{"lenet_c2_b128_noDX", []int{128, 6, 14, 14}, []int{16, 6, 5, 5}, 0, false},
		{"lenet_c1_b128_noDX", []int{128, 1, 32, 32}, []int{6, 1, 5, 5}, 0, false},
		{"mnist8_c1_b128_noDX", []int{128, 1, 28, 28}, []int{8, 1, 5, 5}, 2, false},
		{"mnist8_c2_b128", []int{128, 8, 14, 14}, []int{16, 8, 5, 5}, 2, true},
		{"res3x3_16_b32", []int{32, 16, 32, 32}, []int{16, 16, 3, 3}, 1, true},
		{"res3x3_64_b32", []int{32, 64, 8, 8}, []int{64, 64, 3, 3}, 1, true},
	}
	measure := func(f func()) time.Duration {
		f()
		best := time.Duration(math.MaxInt64)
		for rep := 0; rep < 5; rep++ {
			const iters = 5
			t0 := threadCPU()
			for i := 0; i < iters; i++ {
				f()
			}
			best = min(best, (threadCPU()-t0)/iters)
		}
		return best
	}
	for _, tc := range cases {
		x, w, bias := nnRand(1, tc.x...), nnRand(2, tc.w...), nnRand(3, tc.w[0])
		p := int64(tc.p)
		n := nnNode("Conv", 3, map[string]any{"pads": []int64{p, p, p, p}})
		metas := []ValueMeta{{DType: Float32, Shape: x.Shape}, {DType: Float32, Shape: w.Shape}, {DType: Float32, Shape: bias.Shape}}
		fk, om, err := CompileNode(n, metas)
		if err != nil {
			t.Fatal(err)
		}
		ec := &ExecContext{Ctx: context.Background(), Threads: 1, Workspace: make([]float32, fk.(WorkspaceUser).WorkspaceSize())}
		ins := []*Tensor{x, w, bias}
		y := New(Float32, om[0].Shape...)
		fwd := measure(func() { _ = fk.Run(ec, ins, []*Tensor{y}) })
		dy := nnRand(4, om[0].Shape...)
		grads := []*Tensor{nil, New(Float32, w.Shape...), New(Float32, bias.Shape...)}
		if tc.dx {
			grads[0] = New(Float32, x.Shape...)
		}
		variants := []convGradOptions{{}, {wide: true}, {wide: true, tapDX: true}}
		var kernels []*convGradKernel
		for _, o := range variants {
			gk, err := newConvGrad(n, metas, []bool{tc.dx, true, true}, o)
			if err != nil {
				t.Fatal(err)
			}
			kernels = append(kernels, gk)
		}
		best := make([]time.Duration, len(kernels))
		for round := 0; round < 3; round++ {
			for i, gk := range kernels {
				d := measure(func() { _ = gk.Backward(ec, ins, nil, []*Tensor{dy}, grads) })
				if round == 0 || d < best[i] {
					best[i] = d
				}
			}
		}
		line := fmt.Sprintf("%-22s forward %6.3f ms  backward:", tc.name, fwd.Seconds()*1e3)
		for i, gk := range kernels {
			line += fmt.Sprintf("  [wide %v tapDX %v wT %v] %6.3f ms", gk.wide != nil, gk.tapDX, gk.acc.trans, best[i].Seconds()*1e3)
		}
		t.Log(line)
	}
}

// BenchmarkPoolGrad measures the pooling backward on LeNet-5's first pool
// (batch 128) and an overlapping 3x3/2 max pool.
func BenchmarkPoolGrad(b *testing.B) {
	cases := []struct {
		name  string
		op    string
		x     []int
		attrs map[string]any
	}{
		{"max2x2_lenet_pool1", "MaxPool", []int{128, 6, 28, 28}, map[string]any{"kernel_shape": i64s(2, 2), "strides": i64s(2, 2)}},
		{"max3x3s2_pad1", "MaxPool", []int{32, 16, 32, 32}, map[string]any{"kernel_shape": i64s(3, 3), "strides": i64s(2, 2), "pads": i64s(1, 1, 1, 1)}},
		{"avg2x2", "AveragePool", []int{128, 6, 28, 28}, map[string]any{"kernel_shape": i64s(2, 2), "strides": i64s(2, 2)}},
	}
	for _, tc := range cases {
		for _, threads := range []int{1, 2} {
			b.Run(fmt.Sprintf("%s/t%d", tc.name, threads), func(b *testing.B) {
				n := nnNode(tc.op, 1, tc.attrs)
				metas := []ValueMeta{{DType: Float32, Shape: tc.x}}
				_, om, err := CompileNode(n, metas)
				if err != nil {
					b.Fatal(err)
				}
				spec, _ := LookupOp("", tc.op)
				gk, err := spec.Grad(n, metas, om, []bool{true})
				if err != nil {
					b.Fatal(err)
				}
				ins, gout, gin := []*Tensor{nnRand(1, tc.x...)}, []*Tensor{nnRand(2, om[0].Shape...)}, []*Tensor{New(Float32, tc.x...)}
				ec := &ExecContext{Ctx: context.Background(), Threads: threads}
				b.ResetTimer()
				for i := 0; i < b.N; i++ {
					if err := gk.Backward(ec, ins, nil, gout, gin); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}

// TestMaxPoolGradMatchesIndices checks, on inputs full of ties, signed
// zeros, -Inf and NaN, that the MaxPool backward sends each gradient to
// the element the forward's Indices output names.
func TestMaxPoolGradMatchesIndices(t *testing.T) {
	vals := []float32{-1, 0, float32(math.Copysign(0, -1)), 1, 1, float32(math.Inf(-1)), float32(math.NaN())}
	rng := rand.New(rand.NewPCG(5, 6))
	for _, tc := range []struct {
		x     []int
		attrs map[string]any
	}{
		{[]int{2, 3, 6, 7}, map[string]any{"kernel_shape": i64s(3, 3), "strides": i64s(2, 1), "pads": i64s(1, 1, 1, 1)}},
		{[]int{1, 2, 8, 8}, map[string]any{"kernel_shape": i64s(2, 2), "strides": i64s(2, 2)}},
		{[]int{1, 2, 9}, map[string]any{"kernel_shape": i64s(3), "dilations": i64s(2), "ceil_mode": 1, "strides": i64s(2)}},
	} {
		x := New(Float32, tc.x...)
		for i := range x.F32 {
			x.F32[i] = vals[rng.IntN(len(vals))]
		}
		n := nnNode("MaxPool", 1, tc.attrs)
		n.Outputs = []string{"y", "idx"}
		outs, err := nnRun(t, n, []*Tensor{x}, nil, 1)
		if err != nil {
			t.Fatal(err)
		}
		metas := []ValueMeta{{DType: Float32, Shape: tc.x}}
		_, om, _ := CompileNode(n, metas)
		gk, err := compilePoolGrad(true)(n, metas, om, []bool{true})
		if err != nil {
			t.Fatal(err)
		}
		dy := randTensor(9, 0.5, 1, om[0].Shape...)
		dx := New(Float32, tc.x...)
		if err := gk.Backward(&ExecContext{Ctx: context.Background(), Threads: 1}, []*Tensor{x}, nil, []*Tensor{dy}, []*Tensor{dx}); err != nil {
			t.Fatal(err)
		}
		want := make([]float32, len(dx.F32))
		for o, i := range outs[1].I64 {
			if i >= 0 {
				want[i] += dy.F32[o]
			}
		}
		for i := range want {
			if want[i] != dx.F32[i] {
				t.Fatalf("x %v: dx[%d] = %v, want %v (input %v)", tc.x, i, dx.F32[i], want[i], x.F32)
			}
		}
	}
}
