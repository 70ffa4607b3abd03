package runtime

import (
	"fmt"
	goruntime "runtime"

	"github.com/compressml/compress/internal/parallel"
	"github.com/compressml/compress/runtime/kernels"
)

// This file holds the matrix-product ops, Gemm and MatMul, and the fused
// activation shared by Gemm, Conv and ConvTranspose.

func init() {
	Register(OpSpec{Type: "Gemm", MinInputs: 2, MaxInputs: 3, Outputs: 1, Compile: compileGemm, Grad: compileGemmGrad})
	Register(OpSpec{Type: "MatMul", MinInputs: 2, MaxInputs: 2, Outputs: 1, Compile: compileMatMul, Grad: compileMatMulGrad})
}

// fusedAct is the activation the fusion pass (FuseActivations) attached to
// a Conv, ConvTranspose or Gemm node through the attributes "activation"
// (the op type), "activation_alpha" and "activation_beta" (see
// ApplyActivation; for Clip, alpha and beta are the bounds, which may also
// be given as "activation_min" and "activation_max").
type fusedAct struct {
	kind        Activation
	alpha, beta float32
}

// parseFusedAct reads the fused activation attributes of n.
func parseFusedAct(n *Node) (fusedAct, error) {
	name := n.AttrString("activation", "")
	kind, ok := ParseActivation(name)
	if !ok {
		return fusedAct{}, fmt.Errorf("fused activation %q is not supported (supported: %v)", name, activationNames[1:])
	}
	a := fusedAct{kind: kind}
	a.alpha, a.beta = DefaultActivationParams(kind)
	if kind == ActClip {
		a.alpha = n.AttrFloat("activation_min", a.alpha)
		a.beta = n.AttrFloat("activation_max", a.beta)
	}
	a.alpha = n.AttrFloat("activation_alpha", a.alpha)
	a.beta = n.AttrFloat("activation_beta", a.beta)
	return a, nil
}

// none reports whether no activation is fused.
func (a fusedAct) none() bool { return a.kind == ActNone }

// apply applies the activation in place.
func (a fusedAct) apply(x []float32) {
	if a.kind != ActNone {
		ApplyActivation(a.kind, a.alpha, a.beta, x)
	}
}

// biasAct adds bias[c] (when bias is non-nil) to every element of channel
// c of y, laid out as rows*channels planes of size inner, and applies act,
// in parallel over disjoint planes.
func biasAct(y []float32, planes, channels, inner int, bias []float32, act fusedAct, threads int) {
	if bias == nil && act.none() {
		return
	}
	grain := 1
	if inner < 4096 {
		grain = 4096/max(inner, 1) + 1
	}
	parallel.For(threads, planes, grain, func(lo, hi int) {
		for p := lo; p < hi; p++ {
			row := y[p*inner : (p+1)*inner]
			if bias != nil {
				b := bias[p%channels]
				for i := range row {
					row[i] += b
				}
			}
			act.apply(row)
		}
	})
}

// epilogue returns the part of act the GEMM kernels apply while the tile is
// still in registers (ReLU), and whether act must still be applied after.
func (a fusedAct) epilogue() (relu, after bool) {
	switch a.kind {
	case ActNone:
		return false, false
	case ActRelu:
		return true, false
	}
	return false, true
}

func checkFloat(what string, m ValueMeta) error {
	if m.DType != Float32 {
		return fmt.Errorf("%s must be float32, got %v", what, m.DType)
	}
	return nil
}

// ---------------------------------------------------------------- Gemm

// gemmKernel is Y = act(alpha*A'*B' + beta*C).
type gemmKernel struct {
	m, n, k        int
	transA, transB bool
	alpha, beta    float32
	hasC           bool
	cRS, cCS       int  // strides of C over Y's rows and columns (0: broadcast)
	cAsBias        bool // C is one row added as the GEMM epilogue's column bias
	act            fusedAct
	pb             *kernels.PackedB // B packed at compile time when constant
}

func compileGemm(n *Node, in []ValueMeta) (Kernel, []ValueMeta, error) {
	k, err := newGemmKernel(n, in)
	if err != nil {
		return nil, nil, err
	}
	// A constant B (inference, or a frozen weight while training) is packed
	// once; a variable one (a trainable weight) is packed by every Run into
	// the workspace.
	if in[1].Const != nil && k.m > 0 && k.n > 0 && k.k > 0 {
		ldb := k.n
		if k.transB {
			ldb = k.k
		}
		k.pb = kernels.PackB(k.transB, k.k, k.n, in[1].Const.F32, ldb)
	}
	return k, []ValueMeta{{DType: Float32, Shape: []int{k.m, k.n}}}, nil
}

// newGemmKernel validates a Gemm node and resolves its geometry, without
// packing anything (the backward shares it).
func newGemmKernel(n *Node, in []ValueMeta) (*gemmKernel, error) {
	if err := checkFloat("A", in[0]); err != nil {
		return nil, err
	}
	if err := checkFloat("B", in[1]); err != nil {
		return nil, err
	}
	a, b := in[0].Shape, in[1].Shape
	if len(a) != 2 || len(b) != 2 {
		return nil, fmt.Errorf("A and B must be matrices, got shapes %v and %v", a, b)
	}
	k := &gemmKernel{
		transA: n.AttrInt("transA", 0) != 0,
		transB: n.AttrInt("transB", 0) != 0,
		alpha:  n.AttrFloat("alpha", 1),
		beta:   n.AttrFloat("beta", 1),
	}
	var err error
	if k.act, err = parseFusedAct(n); err != nil {
		return nil, err
	}
	k.m, k.k = a[0], a[1]
	if k.transA {
		k.m, k.k = a[1], a[0]
	}
	kb, nn := b[0], b[1]
	if k.transB {
		kb, nn = b[1], b[0]
	}
	k.n = nn
	if kb != k.k {
		return nil, fmt.Errorf("inner dimensions differ: A %v (transA=%v) has K=%d, B %v (transB=%v) has K=%d",
			a, k.transA, k.k, b, k.transB, kb)
	}
	if len(in) > 2 && in[2].DType != Undefined {
		if err := checkFloat("C", in[2]); err != nil {
			return nil, err
		}
		c := in[2].Shape
		if len(c) > 2 {
			return nil, fmt.Errorf("C must have rank <= 2, got shape %v", c)
		}
		k.hasC = true
		// Unidirectional broadcast of C to [M, N].
		cr, cc := 1, 1
		switch len(c) {
		case 1:
			cc = c[0]
		case 2:
			cr, cc = c[0], c[1]
		}
		if (cr != 1 && cr != k.m) || (cc != 1 && cc != k.n) {
			return nil, fmt.Errorf("C of shape %v cannot be broadcast to the output [%d %d]", c, k.m, k.n)
		}
		if cr != 1 {
			k.cRS = cc
		}
		if cc != 1 {
			k.cCS = 1
		}
		k.cAsBias = k.cRS == 0 && k.cCS == 1 && k.beta == 1
	}
	return k, nil
}

// WorkspaceSize is the GEMM's packing scratch with one goroutine per CPU.
func (k *gemmKernel) WorkspaceSize() int {
	g := kernels.Gemm{M: k.m, N: k.n, K: k.k, PB: k.pb, Threads: goruntime.NumCPU()}
	return g.WorkspaceSize()
}

func (k *gemmKernel) MACs() int64 { return int64(k.m) * int64(k.n) * int64(k.k) }

func (k *gemmKernel) Run(ctx *ExecContext, in, out []*Tensor) error {
	y := out[0].F32
	relu, after := k.act.epilogue()
	g := kernels.Gemm{M: k.m, N: k.n, K: k.k, TransA: k.transA, A: in[0].F32, LDA: k.k,
		TransB: k.transB, B: in[1].F32, LDB: k.n, PB: k.pb, C: y, LDC: k.n,
		Alpha: k.alpha, Threads: ctx.Threads, Workspace: ctx.Workspace}
	g.Epilogue.Relu = relu
	if k.transA {
		g.LDA = k.m
	}
	if k.transB {
		g.LDB = k.k
	}
	switch {
	case !k.hasC || k.beta == 0:
	case k.cAsBias:
		g.Epilogue.BiasCol = in[2].F32
	default:
		c := in[2].F32
		for i := 0; i < k.m; i++ {
			row := y[i*k.n : (i+1)*k.n]
			cr := c[i*k.cRS:]
			if k.cCS == 0 {
				v := k.beta * cr[0]
				for j := range row {
					row[j] = v
				}
			} else {
				for j := range row {
					row[j] = k.beta * cr[j]
				}
			}
		}
		g.Beta = 1
	}
	g.Run()
	if after {
		biasAct(y, k.m, 1, k.n, nil, k.act, ctx.Threads)
	}
	return nil
}

// ---------------------------------------------------------------- MatMul

// matMulKernel multiplies (batches of) matrices with numpy semantics.
type matMulKernel struct {
	m, n, k int
	batch   int              // number of output matrices
	aOff    []int            // per output matrix: element offset of its A matrix
	bOff    []int            // per output matrix: element offset of its B matrix
	sharedB bool             // every batch multiplies the same B matrix
	pb      *kernels.PackedB // B packed at compile time when constant and shared by every batch
}

func compileMatMul(n *Node, in []ValueMeta) (Kernel, []ValueMeta, error) {
	k, outShape, err := newMatMulKernel(in)
	if err != nil {
		return nil, nil, err
	}
	// A constant B shared by every batch (inference, or a frozen weight
	// while training) is packed once; a variable one (a trainable weight)
	// is packed by every product into the workspace.
	if k.sharedB && in[1].Const != nil && k.m > 0 && k.n > 0 && k.k > 0 {
		k.pb = kernels.PackB(false, k.k, k.n, in[1].Const.F32, k.n)
	}
	return k, []ValueMeta{{DType: Float32, Shape: outShape}}, nil
}

// newMatMulKernel validates the operands of a MatMul and resolves its
// batches and output shape, without packing anything (the backward shares
// it).
func newMatMulKernel(in []ValueMeta) (*matMulKernel, []int, error) {
	if err := checkFloat("A", in[0]); err != nil {
		return nil, nil, err
	}
	if err := checkFloat("B", in[1]); err != nil {
		return nil, nil, err
	}
	as, bs := in[0].Shape, in[1].Shape
	if len(as) == 0 || len(bs) == 0 {
		return nil, nil, fmt.Errorf("operands must have rank >= 1, got shapes %v and %v", as, bs)
	}
	// Promote 1-D operands: A [K] -> [1 K], B [K] -> [K 1]; the added
	// dimension is removed from the output.
	a2, b2 := as, bs
	if len(as) == 1 {
		a2 = []int{1, as[0]}
	}
	if len(bs) == 1 {
		b2 = []int{bs[0], 1}
	}
	k := &matMulKernel{m: a2[len(a2)-2], k: a2[len(a2)-1], n: b2[len(b2)-1]}
	if kb := b2[len(b2)-2]; kb != k.k {
		return nil, nil, fmt.Errorf("inner dimensions differ: A %v has K=%d, B %v has K=%d", as, k.k, bs, kb)
	}
	ab, bb := a2[:len(a2)-2], b2[:len(b2)-2]
	rank := max(len(ab), len(bb))
	batchShape := make([]int, rank)
	aStr, bStr := make([]int, rank), make([]int, rank)
	accA, accB := k.m*k.k, k.k*k.n
	for i := rank - 1; i >= 0; i-- {
		da, db := 1, 1
		if j := i - (rank - len(ab)); j >= 0 {
			da = ab[j]
		}
		if j := i - (rank - len(bb)); j >= 0 {
			db = bb[j]
		}
		switch {
		case da == db:
			batchShape[i] = da
		case da == 1:
			batchShape[i] = db
		case db == 1:
			batchShape[i] = da
		default:
			return nil, nil, fmt.Errorf("batch dimensions of A %v and B %v cannot be broadcast together", as, bs)
		}
		if da != 1 {
			aStr[i] = accA
		}
		if db != 1 {
			bStr[i] = accB
		}
		accA *= da
		accB *= db
	}
	k.batch = NumElements(batchShape)
	var outShape []int
	outShape = append(outShape, batchShape...)
	if len(as) > 1 {
		outShape = append(outShape, k.m)
	}
	if len(bs) > 1 {
		outShape = append(outShape, k.n)
	}
	if err := CheckShape(outShape); err != nil {
		return nil, nil, err
	}
	// Fold a batched A times one shared B into one tall product.
	shared := true
	for _, s := range bStr {
		if s != 0 {
			shared = false
		}
	}
	aDense := true
	for i, acc := rank-1, k.m*k.k; i >= 0; i-- {
		if batchShape[i] != 1 && aStr[i] != acc {
			aDense = false
		}
		acc *= batchShape[i]
	}
	if shared && aDense {
		k.m *= k.batch
		k.batch = 1
	}
	k.sharedB = shared
	k.aOff = make([]int, k.batch)
	k.bOff = make([]int, k.batch)
	if k.batch > 1 {
		idx := make([]int, rank)
		for b := 0; b < k.batch; b++ {
			oa, ob := 0, 0
			for i := range idx {
				oa += idx[i] * aStr[i]
				ob += idx[i] * bStr[i]
			}
			k.aOff[b], k.bOff[b] = oa, ob
			for i := rank - 1; i >= 0; i-- {
				idx[i]++
				if idx[i] < batchShape[i] {
					break
				}
				idx[i] = 0
			}
		}
	}
	return k, outShape, nil
}

// WorkspaceSize is the packing scratch of one product with one goroutine
// per CPU (batches of small products run without it).
func (k *matMulKernel) WorkspaceSize() int {
	g := kernels.Gemm{M: k.m, N: k.n, K: k.k, PB: k.pb, Threads: goruntime.NumCPU()}
	return g.WorkspaceSize()
}

func (k *matMulKernel) MACs() int64 {
	return int64(k.batch) * int64(k.m) * int64(k.n) * int64(k.k)
}

func (k *matMulKernel) Run(ctx *ExecContext, in, out []*Tensor) error {
	a, b, y := in[0].F32, in[1].F32, out[0].F32
	mn := k.m * k.n
	one := func(i, threads int, ws []float32) {
		g := kernels.Gemm{M: k.m, N: k.n, K: k.k, A: a[k.aOff[i]:], LDA: k.k, C: y[i*mn:], LDC: k.n, Alpha: 1, Threads: threads, Workspace: ws}
		if k.pb != nil {
			g.PB = k.pb
		} else {
			g.B, g.LDB = b[k.bOff[i]:], k.n
		}
		g.Run()
	}
	// Many small products: one goroutine per range of batches; large
	// products: one at a time with every thread inside the GEMM.
	if k.batch > 1 && int64(mn)*int64(k.k) < 1<<16 {
		parallel.For(ctx.Threads, k.batch, 1, func(lo, hi int) {
			for i := lo; i < hi; i++ {
				one(i, 1, nil)
			}
		})
		return nil
	}
	for i := 0; i < k.batch; i++ {
		one(i, ctx.Threads, ctx.Workspace)
	}
	return nil
}
