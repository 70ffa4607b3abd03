package runtime

import (
	"context"
	"fmt"
	"math"
	"strings"
	"testing"
)

// Gradient checks and direct tests of the backward kernels of Gemm, MatMul
// and BatchNormalization (grad_gemm.go, grad_norm.go).

func gnnNode(op string, attrs map[string]Attr) *Node {
	return &Node{Name: "n_" + op, OpType: op, Attrs: attrs}
}

func gnnInt(v int64) Attr     { return Attr{Kind: AttrInt, I: v} }
func gnnFloat(v float32) Attr { return Attr{Kind: AttrFloat, F: v} }

func init() {
	r := randTensor
	// Gemm: every transA/transB combination, alpha and beta, and C of
	// every broadcastable shape (none, scalar, [N], [1 N], [M 1], [M N]).
	const m, k, n = 3, 4, 5
	cShapes := []struct {
		name  string
		shape []int // nil: no C
	}{
		{"noC", nil}, {"Cscalar", []int{}}, {"CN", []int{n}}, {"C1xN", []int{1, n}},
		{"CMx1", []int{m, 1}}, {"CMxN", []int{m, n}}, {"C1x1", []int{1, 1}},
	}
	seed := uint64(100)
	for _, ta := range []int64{0, 1} {
		for _, tb := range []int64{0, 1} {
			for _, cs := range cShapes {
				seed++
				as, bs := []int{m, k}, []int{k, n}
				if ta == 1 {
					as = []int{k, m}
				}
				if tb == 1 {
					bs = []int{n, k}
				}
				attrs := map[string]Attr{"transA": gnnInt(ta), "transB": gnnInt(tb),
					"alpha": gnnFloat(0.7), "beta": gnnFloat(1.3)}
				ins := []*Tensor{r(seed, -1, 1, as...), r(seed+1000, -1, 1, bs...)}
				if cs.shape != nil {
					ins = append(ins, r(seed+2000, -1, 1, cs.shape...))
				}
				gradCases = append(gradCases, gradCase{
					name:   fmt.Sprintf("nn/Gemm/tA%d_tB%d_%s", ta, tb, cs.name),
					node:   gnnNode("Gemm", attrs),
					inputs: ins,
				})
			}
		}
	}
	// Defaults (alpha = beta = 1), beta = 0 (C gets no gradient but must
	// still be accepted), and a frozen A (only B and C train).
	gradCases = append(gradCases,
		gradCase{name: "nn/Gemm/defaults", node: gnnNode("Gemm", nil),
			inputs: []*Tensor{r(1, -1, 1, 2, 3), r(2, -1, 1, 3, 4), r(3, -1, 1, 4)}},
		gradCase{name: "nn/Gemm/beta0", node: gnnNode("Gemm", map[string]Attr{"beta": gnnFloat(0)}),
			inputs: []*Tensor{r(4, -1, 1, 2, 3), r(5, -1, 1, 3, 4), r(6, -1, 1, 4)}, fixed: []int{2}},
		gradCase{name: "nn/Gemm/frozenA_transB", node: gnnNode("Gemm", map[string]Attr{"transB": gnnInt(1)}),
			inputs: []*Tensor{r(7, -1, 1, 6, 3), r(8, -1, 1, 4, 3), r(9, -1, 1, 4)}, fixed: []int{0}},
	)

	// MatMul: 2-D, batched, broadcast batches and 1-D operands.
	mm := []struct {
		name string
		a, b []int
	}{
		{"2d", []int{3, 4}, []int{4, 5}},
		{"batched", []int{2, 3, 4}, []int{2, 4, 5}},
		{"batchedA_sharedB", []int{2, 3, 4}, []int{4, 5}},
		{"bcastA1_B2", []int{1, 3, 4}, []int{2, 4, 5}},
		{"sharedA_batchedB", []int{3, 4}, []int{2, 4, 5}},
		{"bcast_both", []int{2, 1, 3, 4}, []int{1, 2, 4, 5}},
		{"bcastB1", []int{3, 2, 3, 4}, []int{3, 1, 4, 2}},
		{"vecA", []int{4}, []int{4, 5}},
		{"vecB", []int{3, 4}, []int{4}},
		{"dot", []int{4}, []int{4}},
		{"batchedA_vecB", []int{2, 3, 4}, []int{4}},
		{"vecA_batchedB", []int{4}, []int{2, 4, 5}},
	}
	for i, c := range mm {
		s := uint64(300 + 2*i)
		gradCases = append(gradCases, gradCase{
			name:   "nn/MatMul/" + c.name,
			node:   gnnNode("MatMul", nil),
			inputs: []*Tensor{r(s, -1, 1, c.a...), r(s+1, -1, 1, c.b...)},
		})
	}
	gradCases = append(gradCases, gradCase{name: "nn/MatMul/frozenB", node: gnnNode("MatMul", nil),
		inputs: []*Tensor{r(340, -1, 1, 2, 3, 4), r(341, -1, 1, 4, 5)}, fixed: []int{1}})

	// BatchNormalization. Running statistics are never differentiated.
	bn := func(eps, momentum float32) *Node {
		return gnnNode("BatchNormalization", map[string]Attr{"epsilon": gnnFloat(eps), "momentum": gnnFloat(momentum)})
	}
	bnIn := func(seed uint64, shape ...int) []*Tensor {
		c := shape[1]
		return []*Tensor{r(seed, -2, 2, shape...), r(seed+1, 0.5, 1.5, c), r(seed+2, -1, 1, c),
			r(seed+3, -0.5, 0.5, c), r(seed+4, 0.5, 2, c)}
	}
	gradCases = append(gradCases,
		gradCase{name: "nn/BN/train_nchw", node: bn(1e-5, 0.9), inputs: bnIn(400, 4, 3, 2, 2), fixed: []int{3, 4}, train: true},
		gradCase{name: "nn/BN/train_nc", node: bn(1e-5, 0.9), inputs: bnIn(410, 6, 3), fixed: []int{3, 4}, train: true},
		gradCase{name: "nn/BN/train_odd_inner", node: bn(1e-3, 0.8), inputs: bnIn(420, 3, 2, 5), fixed: []int{3, 4}, train: true},
		gradCase{name: "nn/BN/train_x_only", node: bn(1e-5, 0.9), inputs: bnIn(430, 3, 2, 3, 1), fixed: []int{1, 2, 3, 4}, train: true},
		gradCase{name: "nn/BN/train_affine_only", node: bn(1e-5, 0.9), inputs: bnIn(440, 2, 3, 2, 2), fixed: []int{0, 3, 4}, train: true},
		gradCase{name: "nn/BN/infer_nchw", node: bn(1e-5, 0.9), inputs: bnIn(450, 2, 3, 2, 2), fixed: []int{3, 4}},
		gradCase{name: "nn/BN/infer_nc", node: bn(1e-2, 0.9), inputs: bnIn(460, 5, 4), fixed: []int{3, 4}},
		gradCase{name: "nn/BN/infer_x_only", node: bn(1e-5, 0.9), inputs: bnIn(470, 2, 3, 3), fixed: []int{1, 2, 3, 4}},
	)
}

// gnnRefMatMul is a float64 reference of C = op(A)*op(B) for row-major
// matrices.
func gnnRefMatMul(transA, transB bool, m, n, k int, a, b []float32) []float64 {
	c := make([]float64, m*n)
	for i := 0; i < m; i++ {
		for j := 0; j < n; j++ {
			var s float64
			for p := 0; p < k; p++ {
				av := a[i*k+p]
				if transA {
					av = a[p*m+i]
				}
				bv := b[p*n+j]
				if transB {
					bv = b[j*k+p]
				}
				s += float64(av) * float64(bv)
			}
			c[i*n+j] = s
		}
	}
	return c
}

// gnnClose compares got with want (relative to the largest |want|).
func gnnClose(t *testing.T, what string, got []float32, want []float64, tol float64) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d values, want %d", what, len(got), len(want))
	}
	scale := 1.0
	for _, w := range want {
		scale = math.Max(scale, math.Abs(w))
	}
	for i := range got {
		if d := math.Abs(float64(got[i]) - want[i]); d > tol*scale {
			t.Fatalf("%s[%d] = %v, want %v", what, i, got[i], want[i])
		}
	}
}

// TestGemmGradLarge checks the Gemm backward against a float64 reference on
// shapes large enough for the blocked, multi-threaded GEMM paths, checks
// that it accumulates into the gradients, and that its result does not
// depend on the thread count.
func TestGemmGradLarge(t *testing.T) {
	const m, k, n = 70, 300, 37
	for _, ta := range []bool{false, true} {
		for _, tb := range []bool{false, true} {
			t.Run(fmt.Sprintf("tA%v_tB%v", ta, tb), func(t *testing.T) {
				as, bs := []int{m, k}, []int{k, n}
				if ta {
					as = []int{k, m}
				}
				if tb {
					bs = []int{n, k}
				}
				a, b, c := randTensor(1, -1, 1, as...), randTensor(2, -1, 1, bs...), randTensor(3, -1, 1, n)
				dy := randTensor(4, -1, 1, m, n)
				node := gnnNode("Gemm", map[string]Attr{"transA": gnnInt(gnnB2I(ta)), "transB": gnnInt(gnnB2I(tb)),
					"alpha": gnnFloat(0.5), "beta": gnnFloat(2)})
				in := []ValueMeta{{DType: Float32, Shape: as}, {DType: Float32, Shape: bs}, {DType: Float32, Shape: []int{n}}}
				out := []ValueMeta{{DType: Float32, Shape: []int{m, n}}}
				gk, err := compileGemmGrad(node, in, out, []bool{true, true, true})
				if err != nil {
					t.Fatal(err)
				}
				var first [3]*Tensor
				for _, threads := range []int{1, 2, 3} {
					gi := []*Tensor{New(Float32, as...), New(Float32, bs...), New(Float32, n)}
					for _, g := range gi {
						for i := range g.F32 {
							g.F32[i] = 1 // checks accumulation
						}
					}
					ctx := &ExecContext{Ctx: context.Background(), Threads: threads}
					if err := gk.Backward(ctx, []*Tensor{a, b, c}, []*Tensor{nil}, []*Tensor{dy}, gi); err != nil {
						t.Fatal(err)
					}
					if threads == 1 {
						// Reference: d op(A) = alpha dY op(B)^T, d op(B) = alpha op(A)^T dY.
						opB := gnnTranspose(b.F32, bs, tb) // op(B), k x n
						opA := gnnTranspose(a.F32, as, ta) // op(A), m x k
						dOpA := gnnRefMatMul(false, true, m, k, n, dy.F32, opB)
						dOpB := gnnRefMatMul(true, false, k, n, m, opA, dy.F32)
						wantA, wantB := make([]float64, m*k), make([]float64, k*n)
						for i := 0; i < m; i++ {
							for p := 0; p < k; p++ {
								v := 1 + 0.5*dOpA[i*k+p]
								if ta {
									wantA[p*m+i] = v
								} else {
									wantA[i*k+p] = v
								}
							}
						}
						for p := 0; p < k; p++ {
							for j := 0; j < n; j++ {
								v := 1 + 0.5*dOpB[p*n+j]
								if tb {
									wantB[j*k+p] = v
								} else {
									wantB[p*n+j] = v
								}
							}
						}
						wantC := make([]float64, n)
						for j := range wantC {
							wantC[j] = 1
							for i := 0; i < m; i++ {
								wantC[j] += 2 * float64(dy.F32[i*n+j])
							}
						}
						gnnClose(t, "dA", gi[0].F32, wantA, 1e-5)
						gnnClose(t, "dB", gi[1].F32, wantB, 1e-5)
						gnnClose(t, "dC", gi[2].F32, wantC, 1e-5)
						copy(first[:], gi)
						continue
					}
					for i := range gi {
						for j, v := range gi[i].F32 {
							if v != first[i].F32[j] {
								t.Fatalf("threads=%d: gradient %d [%d] = %v, with 1 thread %v", threads, i, j, v, first[i].F32[j])
							}
						}
					}
				}
			})
		}
	}
}

func gnnB2I(b bool) int64 {
	if b {
		return 1
	}
	return 0
}

// gnnTranspose returns x (stored with shape s) as its logical matrix: x
// itself, or its transpose when trans is set.
func gnnTranspose(x []float32, s []int, trans bool) []float32 {
	if !trans {
		return x
	}
	r, c := s[0], s[1]
	out := make([]float32, len(x))
	for i := 0; i < r; i++ {
		for j := 0; j < c; j++ {
			out[j*r+i] = x[i*c+j]
		}
	}
	return out
}

// TestMatMulGradLarge checks batched, broadcast MatMul backwards against a
// float64 reference, on large and small (one product per goroutine)
// products, and their independence of the thread count.
func TestMatMulGradLarge(t *testing.T) {
	cases := []struct {
		name string
		a, b []int
	}{
		{"large_bcastA", []int{1, 40, 70}, []int{3, 70, 50}},
		{"large_sharedB", []int{3, 40, 70}, []int{70, 50}},
		{"small_bcast", []int{4, 1, 5, 6}, []int{1, 3, 6, 7}},
		{"small_batched", []int{8, 5, 6}, []int{8, 6, 7}},
	}
	for ci, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			a, b := randTensor(uint64(10*ci), -1, 1, c.a...), randTensor(uint64(10*ci+1), -1, 1, c.b...)
			in := []ValueMeta{{DType: Float32, Shape: c.a}, {DType: Float32, Shape: c.b}}
			_, outMeta, err := compileMatMul(gnnNode("MatMul", nil), in)
			if err != nil {
				t.Fatal(err)
			}
			os := outMeta[0].Shape
			dy := randTensor(uint64(10*ci+2), -1, 1, os...)
			gk, err := compileMatMulGrad(gnnNode("MatMul", nil), in, outMeta, []bool{true, true})
			if err != nil {
				t.Fatal(err)
			}
			// Reference by explicit broadcasting of the batch index.
			ra, rb := len(c.a), len(c.b)
			m, kk, n := c.a[ra-2], c.a[ra-1], c.b[rb-1]
			batch := os[:len(os)-2]
			wantA, wantB := make([]float64, len(a.F32)), make([]float64, len(b.F32))
			abat, bbat := gnnPadShape(c.a[:ra-2], len(batch)), gnnPadShape(c.b[:rb-2], len(batch))
			idx := make([]int, len(batch))
			for bi := 0; bi < NumElements(batch); bi++ {
				oa, ob := 0, 0
				for d := range batch {
					oa = oa*abat[d] + idx[d]%abat[d]
					ob = ob*bbat[d] + idx[d]%bbat[d]
				}
				ga := gnnRefMatMul(false, true, m, kk, n, dy.F32[bi*m*n:], b.F32[ob*kk*n:])
				gb := gnnRefMatMul(true, false, kk, n, m, a.F32[oa*m*kk:], dy.F32[bi*m*n:])
				for i, v := range ga {
					wantA[oa*m*kk+i] += v
				}
				for i, v := range gb {
					wantB[ob*kk*n+i] += v
				}
				for d := len(idx) - 1; d >= 0; d-- {
					if idx[d]++; idx[d] < batch[d] {
						break
					}
					idx[d] = 0
				}
			}
			var first []*Tensor
			for _, threads := range []int{1, 2, 4} {
				gi := []*Tensor{New(Float32, c.a...), New(Float32, c.b...)}
				ctx := &ExecContext{Ctx: context.Background(), Threads: threads}
				if err := gk.Backward(ctx, []*Tensor{a, b}, []*Tensor{nil}, []*Tensor{dy}, gi); err != nil {
					t.Fatal(err)
				}
				if first == nil {
					gnnClose(t, "dA", gi[0].F32, wantA, 1e-5)
					gnnClose(t, "dB", gi[1].F32, wantB, 1e-5)
					first = gi
					continue
				}
				for i := range gi {
					for j, v := range gi[i].F32 {
						if v != first[i].F32[j] {
							t.Fatalf("threads=%d: gradient %d [%d] = %v, with 1 thread %v", threads, i, j, v, first[i].F32[j])
						}
					}
				}
			}
		})
	}
}

// gnnPadShape left-pads s with ones to rank r.
func gnnPadShape(s []int, r int) []int {
	out := make([]int, r-len(s), r)
	for i := range out {
		out[i] = 1
	}
	return append(out, s...)
}

// TestGemmGradFusedActivation checks that a Gemm with a fused activation
// refuses to compile a backward, with an error that says why.
func TestGemmGradFusedActivation(t *testing.T) {
	node := gnnNode("Gemm", map[string]Attr{"activation": {Kind: AttrString, S: "Relu"}})
	in := []ValueMeta{{DType: Float32, Shape: []int{2, 3}}, {DType: Float32, Shape: []int{3, 4}}}
	_, err := compileGemmGrad(node, in, []ValueMeta{{DType: Float32, Shape: []int{2, 4}}}, []bool{true, true})
	if err == nil || !strings.Contains(err.Error(), "fused activation") {
		t.Fatalf("got error %v, want one about the fused activation", err)
	}
}

// TestBatchNormTrainingStep runs a training forward and backward of a
// BatchNormalization through the GradExecutor and checks the outputs, the
// running statistics (ONNX momentum semantics, population variance), the
// gradients against a float64 reference, and thread-count independence.
func TestBatchNormTrainingStep(t *testing.T) {
	for _, s := range []struct{ n, c, h, w int }{{8, 5, 6, 7}, {3, 7, 5, 1}, {256, 300, 1, 1}, {64, 40, 3, 3}} {
		t.Run(fmt.Sprintf("%dx%dx%dx%d", s.n, s.c, s.h, s.w), func(t *testing.T) { gnnBNStep(t, s.n, s.c, s.h, s.w) })
	}
}

func gnnBNStep(t *testing.T, n, c, h, w int) {
	x := randTensor(1, -3, 5, n, c, h, w)
	scale, bias := randTensor(2, 0.5, 1.5, c), randTensor(3, -1, 1, c)
	rmean, rvar := randTensor(4, -1, 1, c), randTensor(5, 0.5, 2, c)
	dy := randTensor(6, -1, 1, n, c, h, w)
	const eps, momentum = 1e-5, 0.9
	var firstY []float32
	var firstG map[string][]float32
	for _, threads := range []int{1, 2} {
		g := NewGraph("bn")
		g.AddParam("x", x.Clone(), true)
		g.AddParam("scale", scale.Clone(), true)
		g.AddParam("B", bias.Clone(), true)
		g.AddParam("mean", rmean.Clone(), false)
		g.AddParam("var", rvar.Clone(), false)
		g.Nodes = []*Node{{Name: "bn", OpType: "BatchNormalization", Inputs: []string{"x", "scale", "B", "mean", "var"},
			Outputs: []string{"y"}, Attrs: map[string]Attr{"epsilon": gnnFloat(eps), "momentum": gnnFloat(momentum)}}}
		g.Outputs = []ValueInfo{{Name: "y"}}
		ex, err := NewGradExecutor(g, TrainOptions{Threads: threads})
		if err != nil {
			t.Fatal(err)
		}
		ctx := context.Background()
		out, err := ex.Forward(ctx, nil, true)
		if err != nil {
			t.Fatal(err)
		}
		y := append([]float32(nil), out["y"].F32...)
		if err := ex.Backward(ctx, map[string]*Tensor{"y": dy}); err != nil {
			t.Fatal(err)
		}
		grads := map[string][]float32{}
		for _, p := range []string{"x", "scale", "B"} {
			grads[p] = append([]float32(nil), ex.Grad(p).F32...)
		}
		if threads == 1 {
			// float64 reference.
			cnt := float64(n * h * w)
			wantY, wantDX := make([]float64, len(x.F32)), make([]float64, len(x.F32))
			wantDS, wantDB := make([]float64, c), make([]float64, c)
			for ch := 0; ch < c; ch++ {
				var s, sq float64
				each := func(f func(i int)) {
					for img := 0; img < n; img++ {
						for i := 0; i < h*w; i++ {
							f((img*c+ch)*h*w + i)
						}
					}
				}
				each(func(i int) { s += float64(x.F32[i]) })
				mu := s / cnt
				each(func(i int) { d := float64(x.F32[i]) - mu; sq += d * d })
				v := sq / cnt
				inv := 1 / math.Sqrt(v+eps)
				var sdy, sdyx float64
				each(func(i int) {
					xh := (float64(x.F32[i]) - mu) * inv
					wantY[i] = float64(scale.F32[ch])*xh + float64(bias.F32[ch])
					sdy += float64(dy.F32[i])
					sdyx += float64(dy.F32[i]) * xh
				})
				wantDB[ch], wantDS[ch] = sdy, sdyx
				each(func(i int) {
					xh := (float64(x.F32[i]) - mu) * inv
					wantDX[i] = float64(scale.F32[ch]) * inv * (float64(dy.F32[i]) - sdy/cnt - xh*sdyx/cnt)
				})
				gotM, gotV := g.Params["mean"].T.F32[ch], g.Params["var"].T.F32[ch]
				wm := momentum*float64(rmean.F32[ch]) + (1-momentum)*mu
				wv := momentum*float64(rvar.F32[ch]) + (1-momentum)*v
				if math.Abs(float64(gotM)-wm) > 1e-5 || math.Abs(float64(gotV)-wv) > 1e-5*math.Max(1, wv) {
					t.Errorf("channel %d: running mean/var %v %v, want %v %v", ch, gotM, gotV, wm, wv)
				}
			}
			gnnClose(t, "y", y, wantY, 1e-5)
			gnnClose(t, "dx", grads["x"], wantDX, 1e-4)
			gnnClose(t, "dscale", grads["scale"], wantDS, 1e-5)
			gnnClose(t, "dB", grads["B"], wantDB, 1e-5)
			firstY, firstG = y, grads
			continue
		}
		for i, v := range y {
			if v != firstY[i] {
				t.Fatalf("threads=%d: y[%d] = %v, with 1 thread %v", threads, i, v, firstY[i])
			}
		}
		for p, gs := range grads {
			for i, v := range gs {
				if v != firstG[p][i] {
					t.Fatalf("threads=%d: d%s[%d] = %v, with 1 thread %v", threads, p, i, v, firstG[p][i])
				}
			}
		}
	}
}

// TestNNGradNoAlloc checks that the backward kernels allocate nothing per
// call on one goroutine.
func TestNNGradNoAlloc(t *testing.T) {
	ctx := &ExecContext{Ctx: context.Background(), Threads: 1}
	gemmIn := []ValueMeta{{DType: Float32, Shape: []int{64, 100}}, {DType: Float32, Shape: []int{10, 100}}, {DType: Float32, Shape: []int{10}}}
	gemm, err := compileGemmGrad(gnnNode("Gemm", map[string]Attr{"transB": gnnInt(1)}), gemmIn,
		[]ValueMeta{{DType: Float32, Shape: []int{64, 10}}}, []bool{true, true, true})
	if err != nil {
		t.Fatal(err)
	}
	mmIn := []ValueMeta{{DType: Float32, Shape: []int{4, 1, 8, 9}}, {DType: Float32, Shape: []int{3, 9, 5}}}
	mm, err := compileMatMulGrad(gnnNode("MatMul", nil), mmIn, []ValueMeta{{DType: Float32, Shape: []int{4, 3, 8, 5}}}, []bool{true, true})
	if err != nil {
		t.Fatal(err)
	}
	bnIn := []ValueMeta{{DType: Float32, Shape: []int{8, 4, 5, 5}}}
	for i := 0; i < 4; i++ {
		bnIn = append(bnIn, ValueMeta{DType: Float32, Shape: []int{4}})
	}
	bnNode := gnnNode("BatchNormalization", map[string]Attr{"training_mode": gnnInt(1)})
	bn, err := compileBatchNormGrad(bnNode, bnIn, []ValueMeta{bnIn[0]}, []bool{true, true, true, false, false})
	if err != nil {
		t.Fatal(err)
	}
	tensors := func(ms []ValueMeta) []*Tensor {
		var ts []*Tensor
		for i, m := range ms {
			ts = append(ts, randTensor(uint64(i), 0.5, 1, m.Shape...))
		}
		return ts
	}
	cases := []struct {
		name string
		k    GradKernel
		in   []ValueMeta
		out  []int
	}{
		{"Gemm", gemm, gemmIn, []int{64, 10}},
		{"MatMul", mm, mmIn, []int{4, 3, 8, 5}},
		{"BatchNormalization", bn, bnIn, []int{8, 4, 5, 5}},
	}
	for _, c := range cases {
		in, gi := tensors(c.in), tensors(c.in)
		dy := []*Tensor{randTensor(9, -1, 1, c.out...)}
		if c.name == "BatchNormalization" {
			gi[3], gi[4] = nil, nil
		}
		allocs := testing.AllocsPerRun(10, func() {
			if err := c.k.Backward(ctx, in, nil, dy, gi); err != nil {
				t.Fatal(err)
			}
		})
		if allocs != 0 {
			t.Errorf("%s backward: %v allocations per call, want 0", c.name, allocs)
		}
	}
}
