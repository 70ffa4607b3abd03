package runtime

import (
	"fmt"
	goruntime "runtime"

	"github.com/compressml/compress/internal/parallel"
	"github.com/compressml/compress/runtime/kernels"
)

// This file holds the backward kernels of Gemm and MatMul (ops_gemm.go).
//
// Every input gradient is a matrix product of the output gradient with the
// other operand, computed by the packed GEMM with beta = 1 so that it ADDS
// into gradIn directly: no temporary of the gradient's size, no separate
// accumulation pass. Packing scratch is allocated once when the backward is
// compiled; a Backward allocates nothing on one goroutine.
//
// For Y = alpha*op(A)*op(B) + beta*C (op(A) is M x K, op(B) is K x N):
//
//	d op(A) = alpha * dY * op(B)^T   (M x K)
//	d op(B) = alpha * op(A)^T * dY   (K x N)
//	dC      = beta * dY summed over the dimensions C is broadcast along
//
// and when A (B) is stored transposed its gradient is the transpose of
// d op(A) (d op(B)), which is again a single product with the operands
// swapped. Fused activations (set by the inference fusion pass) are not
// differentiated: training graphs never have them.

// gemmGradWorkspace returns the packing scratch a product needs on up to
// threads goroutines.
func gemmGradWorkspace(m, n, k, threads int) int {
	g := kernels.Gemm{M: m, N: n, K: k, Threads: threads}
	return g.WorkspaceSize()
}

// gemmAcc computes C += alpha*op(A)*op(B) with the scratch ws.
func gemmAcc(transA, transB bool, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, c []float32, ldc, threads int, ws []float32) {
	g := kernels.Gemm{M: m, N: n, K: k, TransA: transA, A: a, LDA: lda, TransB: transB, B: b, LDB: ldb,
		C: c, LDC: ldc, Alpha: alpha, Beta: 1, Threads: threads, Workspace: ws}
	g.Run()
}

// gradLenErr describes a tensor whose size differs from what a backward
// was compiled for.
func gradLenErr(what string, got, want int) error {
	return fmt.Errorf("%s has %d elements, the backward was compiled for %d", what, got, want)
}

// ---------------------------------------------------------------- Gemm

// gemmGradKernel is the backward of Gemm.
type gemmGradKernel struct {
	m, n, k        int
	transA, transB bool
	alpha, beta    float32
	needA, needB   bool
	reduceC        *ReducePlan // [M N] -> shape of C; nil when C needs no gradient
	ws             []float32
}

func compileGemmGrad(n *Node, in, out []ValueMeta, needGrad []bool) (GradKernel, error) {
	if act := n.AttrString("activation", ""); act != "" {
		return nil, fmt.Errorf("Gemm has the fused activation %q (an inference-only rewrite); train the graph before fusing activations", act)
	}
	fk, err := newGemmKernel(n, in)
	if err != nil {
		return nil, err
	}
	k := &gemmGradKernel{m: fk.m, n: fk.n, k: fk.k, transA: fk.transA, transB: fk.transB, alpha: fk.alpha, beta: fk.beta}
	k.needA = len(needGrad) > 0 && needGrad[0]
	k.needB = len(needGrad) > 1 && needGrad[1]
	if len(needGrad) > 2 && needGrad[2] && fk.hasC && k.beta != 0 {
		if k.reduceC, err = NewReducePlan([]int{k.m, k.n}, in[2].Shape); err != nil {
			return nil, err
		}
	}
	threads := goruntime.NumCPU()
	ws := 0
	if k.needA {
		if k.transA {
			ws = max(ws, gemmGradWorkspace(k.k, k.m, k.n, threads))
		} else {
			ws = max(ws, gemmGradWorkspace(k.m, k.k, k.n, threads))
		}
	}
	if k.needB {
		if k.transB {
			ws = max(ws, gemmGradWorkspace(k.n, k.k, k.m, threads))
		} else {
			ws = max(ws, gemmGradWorkspace(k.k, k.n, k.m, threads))
		}
	}
	k.ws = make([]float32, ws)
	return k, nil
}

// Backward adds the gradients of A, B and C.
func (k *gemmGradKernel) Backward(ctx *ExecContext, in, out, gradOut, gradIn []*Tensor) error {
	if gradOut[0] == nil {
		return nil
	}
	m, n, kk := k.m, k.n, k.k
	dy := gradOut[0].F32
	if len(dy) != m*n {
		return gradLenErr("the output gradient", len(dy), m*n)
	}
	a, b := in[0].F32, in[1].F32
	if len(a) != m*kk {
		return gradLenErr("A", len(a), m*kk)
	}
	if len(b) != kk*n {
		return gradLenErr("B", len(b), kk*n)
	}
	// Leading dimensions of A and B as stored.
	lda, ldb := kk, n
	if k.transA {
		lda = m
	}
	if k.transB {
		ldb = kk
	}
	th := ctx.Threads
	if gi := gradIn[0]; k.needA && gi != nil {
		if len(gi.F32) != m*kk {
			return gradLenErr("the gradient of A", len(gi.F32), m*kk)
		}
		if k.transA {
			// dA (K x M) = alpha * op(B) * dY^T
			gemmAcc(k.transB, true, kk, m, n, k.alpha, b, ldb, dy, n, gi.F32, m, th, k.ws)
		} else {
			// dA (M x K) = alpha * dY * op(B)^T
			gemmAcc(false, !k.transB, m, kk, n, k.alpha, dy, n, b, ldb, gi.F32, kk, th, k.ws)
		}
	}
	if gi := gradIn[1]; k.needB && gi != nil {
		if len(gi.F32) != kk*n {
			return gradLenErr("the gradient of B", len(gi.F32), kk*n)
		}
		if k.transB {
			// dB (N x K) = alpha * dY^T * op(A)
			gemmAcc(true, k.transA, n, kk, m, k.alpha, dy, n, a, lda, gi.F32, kk, th, k.ws)
		} else {
			// dB (K x N) = alpha * op(A)^T * dY
			gemmAcc(!k.transA, false, kk, n, m, k.alpha, a, lda, dy, n, gi.F32, n, th, k.ws)
		}
	}
	if len(gradIn) > 2 && gradIn[2] != nil && k.reduceC != nil {
		if err := k.reduceC.Run(th, gradIn[2].F32, dy, k.beta, true); err != nil {
			return fmt.Errorf("gradient of C: %w", err)
		}
	}
	return nil
}

// ---------------------------------------------------------------- MatMul

// matMulGradKernel is the backward of MatMul. Batches that read the same A
// (B) matrix, because it is broadcast, form one group whose gradients are
// added in batch order by one goroutine; distinct groups write disjoint
// matrices and may run in parallel.
type matMulGradKernel struct {
	m, n, k      int
	batch        int
	aOff, bOff   []int
	needA, needB bool
	aGroups      []mmGroup // distinct A matrices
	bGroups      []mmGroup // distinct B matrices
	lenA, lenB   int
	// small is set when the products are small enough to run one per
	// goroutine; each goroutine then uses its own wsPart-sized slice of ws.
	small  bool
	wsPart int
	ws     []float32
}

// mmGroup is one operand matrix (at offset off) and the batches using it.
type mmGroup struct {
	off     int
	batches []int
}

// mmGroups groups the batches by operand offset, in order of first use.
func mmGroups(offs []int) []mmGroup {
	index := map[int]int{}
	var gs []mmGroup
	for b, off := range offs {
		gi, ok := index[off]
		if !ok {
			gi = len(gs)
			index[off] = gi
			gs = append(gs, mmGroup{off: off})
		}
		gs[gi].batches = append(gs[gi].batches, b)
	}
	return gs
}

func compileMatMulGrad(n *Node, in, out []ValueMeta, needGrad []bool) (GradKernel, error) {
	fk, _, err := newMatMulKernel(in)
	if err != nil {
		return nil, err
	}
	k := &matMulGradKernel{m: fk.m, n: fk.n, k: fk.k, batch: fk.batch, aOff: fk.aOff, bOff: fk.bOff,
		lenA: NumElements(in[0].Shape), lenB: NumElements(in[1].Shape)}
	k.needA = len(needGrad) > 0 && needGrad[0]
	k.needB = len(needGrad) > 1 && needGrad[1]
	if k.needA {
		k.aGroups = mmGroups(k.aOff)
	}
	if k.needB {
		k.bGroups = mmGroups(k.bOff)
	}
	threads := goruntime.NumCPU()
	k.small = k.batch > 1 && int64(k.m)*int64(k.n)*int64(k.k) < 1<<16
	if k.small {
		one := max(gemmGradWorkspace(k.m, k.k, k.n, 1), gemmGradWorkspace(k.k, k.n, k.m, 1))
		k.wsPart = one
		k.ws = make([]float32, one*threads)
		return k, nil
	}
	ws := 0
	if k.needA {
		ws = max(ws, gemmGradWorkspace(k.m, k.k, k.n, threads))
	}
	if k.needB {
		ws = max(ws, gemmGradWorkspace(k.k, k.n, k.m, threads))
	}
	k.ws = make([]float32, ws)
	return k, nil
}

// Backward adds the gradients of A and B.
func (k *matMulGradKernel) Backward(ctx *ExecContext, in, out, gradOut, gradIn []*Tensor) error {
	if gradOut[0] == nil {
		return nil
	}
	mn := k.m * k.n
	dy := gradOut[0].F32
	if len(dy) != k.batch*mn {
		return gradLenErr("the output gradient", len(dy), k.batch*mn)
	}
	a, b := in[0].F32, in[1].F32
	if len(a) != k.lenA {
		return gradLenErr("A", len(a), k.lenA)
	}
	if len(b) != k.lenB {
		return gradLenErr("B", len(b), k.lenB)
	}
	var da, db []float32
	if k.needA && gradIn[0] != nil {
		if da = gradIn[0].F32; len(da) != k.lenA {
			return gradLenErr("the gradient of A", len(da), k.lenA)
		}
	}
	if k.needB && gradIn[1] != nil {
		if db = gradIn[1].F32; len(db) != k.lenB {
			return gradLenErr("the gradient of B", len(db), k.lenB)
		}
	}
	if da != nil {
		k.runGroups(ctx.Threads, k.aGroups, false, a, b, dy, da)
	}
	if db != nil {
		k.runGroups(ctx.Threads, k.bGroups, true, a, b, dy, db)
	}
	return nil
}

// runGroups adds the gradient of A (ofB false) or B (ofB true) into dst for
// every group. Large products run one after the other with every thread
// inside the GEMM; small ones run one group range per goroutine, part t
// with its own slice of the scratch.
func (k *matMulGradKernel) runGroups(threads int, groups []mmGroup, ofB bool, a, b, dy, dst []float32) {
	ng := len(groups)
	if !k.small {
		for gi := range groups {
			k.groupGrad(&groups[gi], ofB, a, b, dy, dst, threads, k.ws)
		}
		return
	}
	parts := max(1, min(threads, ng, len(k.ws)/max(k.wsPart, 1)))
	if parts == 1 {
		for gi := range groups {
			k.groupGrad(&groups[gi], ofB, a, b, dy, dst, 1, k.ws)
		}
		return
	}
	parallel.For(parts, parts, 1, func(lo, hi int) {
		for t := lo; t < hi; t++ {
			ws := k.ws[t*k.wsPart : (t+1)*k.wsPart]
			for gi := t * ng / parts; gi < (t+1)*ng/parts; gi++ {
				k.groupGrad(&groups[gi], ofB, a, b, dy, dst, 1, ws)
			}
		}
	})
}

// groupGrad adds, in batch order, the gradients of one operand matrix:
// dA_i += dY_i * B_i^T (M x K) or dB_i += A_i^T * dY_i (K x N).
func (k *matMulGradKernel) groupGrad(g *mmGroup, ofB bool, a, b, dy, dst []float32, threads int, ws []float32) {
	mn := k.m * k.n
	for _, i := range g.batches {
		if ofB {
			gemmAcc(true, false, k.k, k.n, k.m, 1, a[k.aOff[i]:], k.k, dy[i*mn:], k.n, dst[g.off:], k.n, threads, ws)
		} else {
			gemmAcc(false, true, k.m, k.k, k.n, 1, dy[i*mn:], k.n, b[k.bOff[i]:], k.n, dst[g.off:], k.k, threads, ws)
		}
	}
}
