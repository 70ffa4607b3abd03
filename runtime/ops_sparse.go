package runtime

import (
	"fmt"
	"math"

	"github.com/compressml/compress/internal/parallel"
)

// This file holds the sparse forms of Conv, Gemm and MatMul: internal ops
// of domain SparseDomain that SparsifyWeights substitutes, in an
// executor's own copy of a graph, for nodes whose constant weight is
// mostly zeros (after unstructured pruning). They take exactly the inputs
// and attributes of the op they replace (fused activations included) and
// store the weight in CSR form (see CSR). They never appear in exported
// models.

// SparseDomain is the domain of the runtime's internal sparse ops: the one
// domain of every executor-only op (FusedDomain).
const SparseDomain = FusedDomain

// DefaultSparseThreshold is the smallest fraction of zero weights at which
// SparsifyWeights, in its automatic mode, considers a layer for the sparse
// kernels; the kernel then runs sparse only when the layer is past the
// break-even of its shape (sparseBreakEven), measured against the dense
// kernels (see bench/RESULTS-sparse.md).
const DefaultSparseThreshold = 0.7

// sparseAutoAttr marks a node rewritten by SparsifyWeights in automatic
// mode: its kernel falls back to the dense one below the break-even.
const sparseAutoAttr = "sparse_auto"

// sparseBreakEven is the fraction of zero weights from which the CSR
// kernels beat the dense ones (measured on AMD Zen 5 with AVX-512, one
// thread): a matrix-vector product (one row) needs much sparser weights
// than a batch, and a convolution pays for its im2col either way; for a
// convolution rows is its dense multiply-adds per image, and small ones
// (mnist-8's) are cheaper dense still.
func sparseBreakEven(op string, rows int) float64 {
	switch {
	case op == "Conv" && rows < 4<<20:
		return 0.95
	case op == "Conv":
		return 0.9
	case rows == 1:
		return 0.88
	case rows < 16:
		return 0.8
	}
	return DefaultSparseThreshold
}

// zeroFraction is the fraction of zeros in w.
func zeroFraction(w []float32) float64 {
	if len(w) == 0 {
		return 0
	}
	z := 0
	for _, v := range w {
		if v == 0 {
			z++
		}
	}
	return float64(z) / float64(len(w))
}

// denseBelowBreakEven reports whether a node rewritten in automatic mode
// should run its dense kernel for this weight and number of rows.
func denseBelowBreakEven(n *Node, op string, w []float32, rows int) bool {
	return n.AttrInt(sparseAutoAttr, 0) != 0 && zeroFraction(w) < sparseBreakEven(op, rows)
}

func init() {
	Register(OpSpec{Type: "SparseGemm", Domain: SparseDomain, MinInputs: 2, MaxInputs: 3, Outputs: 1, Compile: compileSparseGemm})
	Register(OpSpec{Type: "SparseMatMul", Domain: SparseDomain, MinInputs: 2, MaxInputs: 2, Outputs: 1, Compile: compileSparseMatMul})
	Register(OpSpec{Type: "SparseConv", Domain: SparseDomain, MinInputs: 2, MaxInputs: 3, Outputs: 1, Compile: compileSparseConv})
}

// SparsifyWeights rewrites, for inference, every Conv (2-D, not
// depthwise), Gemm and MatMul whose weight is a float32 parameter with at
// least minSparsity of its values exactly zero into its sparse form of
// domain SparseDomain, and returns the number of nodes rewritten. With
// minSparsity <= 0 (automatic, what Optimize and so every executor does
// by default) it considers layers with at least DefaultSparseThreshold
// zeros (convolutions: the lowest break-even of sparseBreakEven) and each
// kernel, once the batch is known, runs sparse only past the break-even of
// its shape (the choice depends on shapes only: it is deterministic);
// with minSparsity > 0 the rewritten layers always run sparse. It runs on
// an executor's own copy (the sparse ops are not ONNX), after the other
// passes of Optimize; a node already rewritten is left as it is.
func SparsifyWeights(g *Graph, minSparsity float64) int {
	auto := minSparsity <= 0
	if auto {
		minSparsity = DefaultSparseThreshold
	}
	changed := 0
	for _, n := range g.Nodes {
		if n.Domain != "" {
			continue
		}
		w := constParam(g, n.Input(1))
		if w == nil || w.Len() == 0 {
			continue
		}
		switch n.OpType {
		case "Conv":
			if w.Rank() != 4 || n.AttrInt("group", 1) != 1 && w.Shape[1] == 1 {
				continue
			}
		case "Gemm":
			if w.Rank() != 2 || n.AttrInt("transA", 0) != 0 {
				continue
			}
		case "MatMul":
			if w.Rank() != 2 {
				continue
			}
		default:
			continue
		}
		zf := zeroFraction(w.F32)
		if zf < minSparsity || auto && zf < sparseBreakEven(n.OpType, math.MaxInt) {
			// Automatic mode leaves a layer dense that no batch would run
			// sparse (a Conv below its lowest break-even), so that the
			// executor's dense fusions (FuseConvResidual) still apply.
			continue
		}
		n.Domain = SparseDomain
		n.OpType = "Sparse" + n.OpType
		if auto {
			n.SetAttr(sparseAutoAttr, Attr{Kind: AttrInt, I: 1})
		}
		changed++
	}
	return changed
}

// ---------------------------------------------------------------- Gemm and MatMul

// sparseLinearKernel computes Y[M x N] = act(X[M x K] * W' + bias) with W'
// (K x N) held transposed in CSR form, N rows of K: the product runs as
// Y' = W'^T X^T so that the CSR rows stream over contiguous rows of X^T.
type sparseLinearKernel struct {
	m, k, n int
	w       *CSR
	bias    []float32 // N values, or nil
	biasIn  bool      // the bias is input 2 (not constant)
	act     fusedAct
}

func compileSparseGemm(n *Node, in []ValueMeta) (Kernel, []ValueMeta, error) {
	g, err := newGemmKernel(n, in)
	if err != nil {
		return nil, nil, err
	}
	out := []ValueMeta{{DType: Float32, Shape: []int{g.m, g.n}}}
	// Only the fully-connected form has a sparse kernel; others run dense.
	if in[1].Const == nil || g.transA || g.alpha != 1 || g.hasC && !g.cAsBias || denseBelowBreakEven(n, "Gemm", in[1].Const.F32, g.m) {
		return compileGemm(n, in)
	}
	w := in[1].Const.F32
	at := func(r, c int) float32 { return w[c*g.n+r] } // B [K, N]
	if g.transB {
		at = func(r, c int) float32 { return w[r*g.k+c] } // B [N, K]
	}
	csr, err := NewCSR(g.n, g.k, at)
	if err != nil {
		return nil, nil, err
	}
	k := &sparseLinearKernel{m: g.m, k: g.k, n: g.n, w: csr, act: g.act}
	if g.hasC && g.beta != 0 {
		if in[2].Const != nil {
			k.bias = in[2].Const.F32
		} else {
			k.biasIn = true
		}
	}
	return k, out, nil
}

func compileSparseMatMul(n *Node, in []ValueMeta) (Kernel, []ValueMeta, error) {
	mk, outShape, err := newMatMulKernel(in)
	if err != nil {
		return nil, nil, err
	}
	if in[1].Const == nil || len(in[1].Shape) != 2 || len(in[0].Shape) < 2 || !mk.sharedB || mk.batch != 1 || denseBelowBreakEven(n, "MatMul", in[1].Const.F32, mk.m) {
		return compileMatMul(n, in)
	}
	w := in[1].Const.F32
	csr, err := NewCSR(mk.n, mk.k, func(r, c int) float32 { return w[c*mk.n+r] })
	if err != nil {
		return nil, nil, err
	}
	return &sparseLinearKernel{m: mk.m, k: mk.k, n: mk.n, w: csr}, []ValueMeta{{DType: Float32, Shape: outShape}}, nil
}

// WorkspaceSize holds X^T and Y^T.
func (k *sparseLinearKernel) WorkspaceSize() int { return k.m*k.k + k.m*k.n }

// MACs counts the multiply-adds actually done (one per nonzero and row).
func (k *sparseLinearKernel) MACs() int64 { return int64(k.m) * int64(k.w.NNZ()) }

func (k *sparseLinearKernel) Run(ctx *ExecContext, in, out []*Tensor) error {
	x, y := in[0].F32, out[0].F32
	bias := k.bias
	if k.biasIn {
		bias = in[2].F32
	}
	m, kk, n := k.m, k.k, k.n
	if m == 0 || n == 0 {
		return nil
	}
	ws := ctx.Workspace
	if len(ws) < k.WorkspaceSize() {
		return fmt.Errorf("workspace has %d floats, the sparse product needs %d", len(ws), k.WorkspaceSize())
	}
	threads := max(ctx.Threads, 1)
	relu, after := k.act.epilogue()
	if m == 1 {
		// One row: X^T is X itself and Y^T is Y.
		k.w.MulDense(x, 1, y, 1, 1, bias, relu, threads)
		if after {
			k.act.apply(y)
		}
		return nil
	}
	xt, yt := ws[:m*kk], ws[m*kk:m*kk+m*n]
	transpose(x, xt, m, kk, threads)
	k.w.MulDense(xt, m, yt, m, m, bias, relu, threads)
	transpose(yt, y, n, m, threads)
	if after {
		k.act.apply(y)
	}
	return nil
}

// transpose writes the rows x cols matrix a transposed into t (cols x
// rows). It goes in 8 x 8 tiles: few enough cache lines on each side that
// power-of-two strides (which map every line of a tile to the same cache
// set) do not evict each other. Column tiles are split over threads.
func transpose(a, t []float32, rows, cols, threads int) {
	const blk = 8
	tiles := (cols + blk - 1) / blk
	parallel.For(threads, tiles, max(1, tiles*rows/(1<<16)), func(lo, hi int) {
		cLo, cHi := lo*blk, min(hi*blk, cols)
		full := cLo + (cHi-cLo)/blk*blk
		// The 8 rows of a band on the side with the longer stride stay
		// in cache while the loop streams along them.
		r0 := rows / blk * blk
		if cols >= rows {
			for rb := 0; rb < r0; rb += blk {
				for c0 := cLo; c0 < full; c0 += blk {
					transpose8(a[rb*cols+c0:], cols, t[c0*rows+rb:], rows)
				}
			}
		} else {
			for c0 := cLo; c0 < full; c0 += blk {
				for rb := 0; rb < r0; rb += blk {
					transpose8(a[rb*cols+c0:], cols, t[c0*rows+rb:], rows)
				}
			}
		}
		for r := 0; r < rows; r++ {
			c0 := full
			if r >= r0 {
				c0 = cLo
			}
			for c := c0; c < cHi; c++ {
				t[c*rows+r] = a[r*cols+c]
			}
		}
	})
}

// transpose8Generic is the portable transpose8.
func transpose8Generic(a []float32, lda int, t []float32, ldt int) {
	_ = a[7*lda+7]
	_ = t[7*ldt+7]
	for i := 0; i < 8; i++ {
		r := a[i*lda : i*lda+8 : i*lda+8]
		t[i] = r[0]
		t[ldt+i] = r[1]
		t[2*ldt+i] = r[2]
		t[3*ldt+i] = r[3]
		t[4*ldt+i] = r[4]
		t[5*ldt+i] = r[5]
		t[6*ldt+i] = r[6]
		t[7*ldt+i] = r[7]
	}
}

// ---------------------------------------------------------------- Conv

// sparseConvKernel is a 2-D convolution whose weights are held per group
// in CSR form: Y_g[Mg x OH*OW] = W_g * im2col(X_g), the CSR rows streaming
// over rows of the column matrix. The column matrix is built in tiles of
// whole output rows that stay in cache (as the dense Conv does).
type sparseConvKernel struct {
	n, c, m   int
	group     int
	cg, mg    int
	geom      geom3
	taps      []colTap
	inSize    int
	outSize   int
	ow        int // output width
	rows      int // output rows per plane
	tileRows  int // output rows per im2col tile
	colRows   int
	pointwise bool // 1x1, stride 1, no padding: the input is the column matrix
	w         []*CSR
	bias      []float32
	biasIn    bool
	act       fusedAct
	nnz       int
}

func compileSparseConv(n *Node, in []ValueMeta) (Kernel, []ValueMeta, error) {
	dense, outMeta, err := compileConv(n, in)
	if err != nil {
		return nil, nil, err
	}
	xs, ws := in[0].Shape, in[1].Shape
	macs := int64(0) // dense multiply-adds per image
	if mc, ok := dense.(MACCounter); ok {
		macs = min(mc.MACs()/int64(max(xs[0], 1)), 1<<30)
	}
	if in[1].Const == nil || len(xs) != 4 || denseBelowBreakEven(n, "Conv", in[1].Const.F32, int(macs)) {
		return dense, outMeta, nil
	}
	g, autoPad, err := windowAttrs(n, 2, ws[2:])
	if err != nil {
		return nil, nil, err
	}
	if err := forwardGeom(&g, xs[2:], autoPad, false); err != nil {
		return nil, nil, err
	}
	k := &sparseConvKernel{n: xs[0], c: xs[1], m: ws[0], group: int(n.AttrInt("group", 1)), geom: g}
	k.cg, k.mg = k.c/k.group, k.m/k.group
	if k.cg == 1 && k.group > 1 || g.outSize() != outMeta[0].Shape[2]*outMeta[0].Shape[3] {
		return dense, outMeta, nil // depthwise: the direct dense loops are better
	}
	if k.act, err = parseFusedAct(n); err != nil {
		return nil, nil, err
	}
	k.inSize, k.outSize = g.inSize(), g.outSize()
	k.ow, k.rows = g.out[2], g.out[0]*g.out[1]
	k.colRows = k.cg * g.kSize()
	k.pointwise = g.kSize() == 1
	for i := 0; i < maxSpatial; i++ {
		if g.s[i] != 1 || g.pb[i] != 0 || g.pe[i] != 0 {
			k.pointwise = false
		}
	}
	k.tileRows = max(1, min(k.rows, colTileBudget/max(1, k.colRows*k.ow)))
	if k.pointwise {
		k.tileRows = max(k.rows, 1)
	} else {
		k.taps = makeColTaps(&g, k.cg)
	}
	w := in[1].Const.F32
	for grp := 0; grp < k.group; grp++ {
		base := grp * k.mg * k.colRows
		csr, err := NewCSR(k.mg, k.colRows, func(r, c int) float32 { return w[base+r*k.colRows+c] })
		if err != nil {
			return nil, nil, err
		}
		k.w = append(k.w, csr)
		k.nnz += csr.NNZ()
	}
	if len(in) > 2 && in[2].DType != Undefined {
		if in[2].Const != nil {
			k.bias = in[2].Const.F32
		} else {
			k.biasIn = true
		}
	}
	return k, outMeta, nil
}

// WorkspaceSize holds one im2col tile.
func (k *sparseConvKernel) WorkspaceSize() int {
	if k.pointwise {
		return 0
	}
	return k.colRows * k.tileRows * k.ow
}

// MACs counts the multiply-adds actually done.
func (k *sparseConvKernel) MACs() int64 { return int64(k.n) * int64(k.nnz) * int64(k.outSize) }

func (k *sparseConvKernel) Run(ctx *ExecContext, in, out []*Tensor) error {
	x, y := in[0].F32, out[0].F32
	bias := k.bias
	if k.biasIn {
		bias = in[2].F32
	}
	if len(ctx.Workspace) < k.WorkspaceSize() {
		return fmt.Errorf("workspace has %d floats, the sparse convolution needs %d", len(ctx.Workspace), k.WorkspaceSize())
	}
	buf := ctx.Workspace[:k.WorkspaceSize()]
	threads := max(ctx.Threads, 1)
	relu, after := k.act.epilogue()
	for img := 0; img < k.n; img++ {
		for grp := 0; grp < k.group; grp++ {
			xg := x[(img*k.c+grp*k.cg)*k.inSize : (img*k.c+(grp+1)*k.cg)*k.inSize]
			yg := y[(img*k.m+grp*k.mg)*k.outSize : (img*k.m+(grp+1)*k.mg)*k.outSize]
			var bg []float32
			if bias != nil {
				bg = bias[grp*k.mg : (grp+1)*k.mg]
			}
			for r0 := 0; r0 < k.rows; r0 += k.tileRows {
				r1 := min(r0+k.tileRows, k.rows)
				j0, cols := r0*k.ow, (r1-r0)*k.ow
				b, ldb := xg[j0:], k.inSize
				if !k.pointwise {
					im2colTile(&k.geom, k.taps, xg, buf, r0, r1, threads)
					b, ldb = buf, cols
				}
				k.w[grp].MulDense(b, ldb, yg[j0:], k.outSize, cols, bg, relu, threads)
				if after {
					for m := 0; m < k.mg; m++ {
						k.act.apply(yg[m*k.outSize+j0 : m*k.outSize+j0+cols])
					}
				}
			}
		}
	}
	return nil
}
