package runtime

import (
	"fmt"
	goruntime "runtime"

	"github.com/compressml/compress/internal/parallel"
	"github.com/compressml/compress/runtime/kernels"
)

// This file holds the backward kernels of Conv and ConvTranspose
// (ops_conv.go).
//
// Conv, per image and group, is Y_g = W_g * col(X_g) + B, where col is the
// im2col matrix [Cg*K x positions]. Its gradients are
//
//	dW_g += dY_g * col^T, or transposed dW_g^T += col * dY_g^T
//	dX_g += col2im(W_g^T * dY_g)
//	dB   += dY summed over images and positions
//
// computed tile by tile (whole output rows whose column tile stays in
// cache), so the column matrix of a whole image never exists. Only the
// gradients asked for are computed: a convolution whose input needs no
// gradient (the first layer, or the first trainable layer after a frozen
// prefix) does no dX work, and one with frozen weights builds no columns.
//
// Three choices make small feature maps (LeNet, mnist-8) fast:
//   - the wide column layout (wideLayout, ops_conv.go) for stride-1 1-D
//     and 2-D convolutions: a column row is one long copy of the (padded)
//     input instead of one short copy per output row; dY is spread into
//     the same layout with zero junk columns;
//   - with it, dX is one GEMM per kernel tap, W_t^T [Cg x Mg] * dY, that
//     the GEMM accumulates (beta = 1) straight into the input gradient
//     shifted by the tap's offset: no column tile and no scalar col2im;
//   - the weight-gradient product is oriented by a packing-cost estimate
//     (gemmCost): the column matrix is the larger operand and packing it
//     costs as much as the multiply-adds when channels are few.
//
// Work splits: the batch is cut into a fixed number of chunks chosen from
// the shapes alone; each chunk sums its images' weight gradients in image
// order into a buffer of its own (wgradAcc), and the chunk sums are then
// added in chunk order. Workers take whole chunks, so images (and the dX
// planes they write) never overlap between goroutines, and the result is
// bit-identical for every thread count. When there are fewer chunks than
// threads, the threads work inside the GEMMs and the column loops instead
// (also thread-count independent).
//
// Depthwise convolutions (group == C) use direct loops: dX per (image,
// channel) plane, dW per output channel over images in order.
//
// Scratch (column tiles, GEMM packing, packed weights, chunk partial sums)
// is allocated once when the backward is compiled; a single-threaded
// Backward allocates nothing, a parallel one only its goroutines.

// maxGradChunks bounds the batch chunks of a weight gradient; the partial
// sums of all chunks but the first cost one weight-sized buffer each.
const maxGradChunks = 8

// gradPartialBudget bounds the float32s of the chunk partial sums of one
// weight gradient.
const gradPartialBudget = 1 << 22

// convLenErr describes a tensor whose size differs from what a backward
// was compiled for.
func convLenErr(what string, got, want int) error {
	return fmt.Errorf("%s has %d elements, the backward was compiled for %d", what, got, want)
}

// convGradOperands holds what the Conv and ConvTranspose backwards need to
// check their operands: which gradients they compute and the lengths of X,
// W and dY they were compiled for.
type convGradOperands struct {
	needX, needW, needB bool
	xLen, wLen, yLen    int
}

// operands checks the lengths of X, W, dY and of the gradients to compute
// (m output channels for the bias) and returns them; a gradient that is not
// wanted is nil.
func (o *convGradOperands) operands(in, gradOut, gradIn []*Tensor, m int) (x, w, dy, dx, dw, db []float32, err error) {
	dy = gradOut[0].F32
	if len(dy) != o.yLen {
		return nil, nil, nil, nil, nil, nil, convLenErr("the output gradient", len(dy), o.yLen)
	}
	x, w = in[0].F32, in[1].F32
	if len(x) != o.xLen {
		return nil, nil, nil, nil, nil, nil, convLenErr("X", len(x), o.xLen)
	}
	if len(w) != o.wLen {
		return nil, nil, nil, nil, nil, nil, convLenErr("W", len(w), o.wLen)
	}
	if o.needX && gradIn[0] != nil {
		if dx = gradIn[0].F32; len(dx) != o.xLen {
			return nil, nil, nil, nil, nil, nil, convLenErr("the gradient of X", len(dx), o.xLen)
		}
	}
	if o.needW && gradIn[1] != nil {
		if dw = gradIn[1].F32; len(dw) != o.wLen {
			return nil, nil, nil, nil, nil, nil, convLenErr("the gradient of W", len(dw), o.wLen)
		}
	}
	if o.needB && len(gradIn) > 2 && gradIn[2] != nil {
		if db = gradIn[2].F32; len(db) != m {
			return nil, nil, nil, nil, nil, nil, convLenErr("the gradient of B", len(db), m)
		}
	}
	return x, w, dy, dx, dw, db, nil
}

// gradChunks returns the number of batch chunks for a weight gradient of
// wsize elements over n images (needW) or for the input gradient alone.
func gradChunks(n, wsize int, needW bool) int {
	if !needW {
		return max(1, min(n, 64))
	}
	c := min(n, maxGradChunks)
	if wsize > 0 {
		c = min(c, 1+gradPartialBudget/wsize)
	}
	return max(c, 1)
}

// wgradAcc accumulates a weight gradient over batch chunks. The weight is
// groups blocks of rows x cols ([rows x cols] per group, rows*groups rows
// in all); a product adds one tile's contribution either as [rows x cols]
// or, transposed, as [cols x rows] (trans). Each chunk sums its images in
// order into a buffer of its own (chunk 0 straight into the gradient when
// not transposed); reduce then adds the chunk sums in chunk order.
type wgradAcc struct {
	chunks          int
	trans           bool
	rows, cols, len int // per-group block and whole weight sizes
	partial         []float32
}

func newWgradAcc(chunks, groups, rows, cols int, trans bool) wgradAcc {
	a := wgradAcc{chunks: chunks, trans: trans, rows: rows, cols: cols, len: groups * rows * cols}
	own := chunks - 1
	if trans {
		own = chunks
	}
	a.partial = make([]float32, own*a.len)
	return a
}

// target returns the buffer chunk c accumulates into (cleared unless it
// is dw itself) and the leading dimension of a group's block in it.
func (a *wgradAcc) target(c int, dw []float32) ([]float32, int) {
	var t []float32
	switch {
	case a.trans:
		t = a.partial[c*a.len : (c+1)*a.len]
	case c == 0:
		return dw, a.cols
	default:
		t = a.partial[(c-1)*a.len : c*a.len]
	}
	clear(t)
	if a.trans {
		return t, a.rows
	}
	return t, a.cols
}

// reduce adds the chunk sums to dw in chunk order, in parallel over
// disjoint ranges of dw.
func (a *wgradAcc) reduce(dw []float32, threads int) {
	n, grain := len(dw), 1<<14
	if a.trans {
		n, grain = len(dw)/a.cols, max(1, (1<<14)/max(1, a.cols*a.chunks))
	}
	if threads <= 1 {
		a.reduceRange(dw, 0, n)
		return
	}
	parallel.For(threads, n, grain, func(lo, hi int) { a.reduceRange(dw, lo, hi) })
}

// reduceRange adds the chunk sums of elements [lo, hi) of dw, or with
// transposed sums of its rows [lo, hi).
func (a *wgradAcc) reduceRange(dw []float32, lo, hi int) {
	n := len(dw)
	if !a.trans {
		d := dw[lo:hi]
		for p := 0; p < a.chunks-1; p++ {
			src := a.partial[p*n+lo : p*n+hi]
			for i, v := range src {
				d[i] += v
			}
		}
		return
	}
	for row := lo; row < hi; row++ {
		grp, m := row/a.rows, row%a.rows
		d := dw[row*a.cols : (row+1)*a.cols]
		for p := 0; p < a.chunks; p++ {
			src := a.partial[p*n+grp*a.rows*a.cols:]
			for r := range d {
				d[r] += src[r*a.rows+m]
			}
		}
	}
}

// convGradKernel is the backward of Conv.
type convGradKernel struct {
	f *convKernel
	convGradOperands
	chunks int // fixed batch chunks (see the file comment)
	// acc sums the weight gradient; it is transposed, per group
	// [Cg*K x Mg] = col * dY^T, when that product (many rows, Mg columns)
	// is cheaper to pack than dY * col^T.
	acc wgradAcc
	// The tiles: the forward's, or the wide layout's (wide != nil).
	wide              *wideLayout
	tileRows, tiles   int
	ntMax             int // columns of a full tile
	colN, dcolN, dywN int // floats of the column tiles for dW and dX, and of the wide dY tile
	winN              int // floats of a padded input window
	scratch           []convGradScratch
	wTp               []kernels.PackedA // per group, W_g^T packed for dX (per group and tap with tapDX)
	wTbuf             []float32
	wTconst           bool
	// tapDX: with the wide layout, dX is one product per kernel tap,
	// W_t^T [Cg x Mg] * dY, accumulated by the GEMM (beta = 1) straight
	// into the input window shifted by the tap's offset: no column tile
	// and no scalar col2im pass.
	tapDX  bool
	tapTmp []float32 // one tap's weights [Mg x Cg] while packing
	dyPkN  int       // floats of the packed wide dY tile
}

// convGradScratch is the scratch of one backward worker.
type convGradScratch struct {
	buf []float32
	dyB kernels.PackedB // the packed wide dY tile (tapDX), in buf
}

// gemmCost estimates the cycles per k step of an m x n product whose A
// (aTrans: stored transposed) and B (bTrans) are packed from plain
// matrices: micro-tiles plus packing, a transposed operand costing more.
func gemmCost(m, n int, aTrans, bTrans bool) float64 {
	tiles := float64(ceilDiv(m, 6) * ceilDiv(n, 16))
	pack := func(v int, trans bool) float64 {
		if trans {
			return float64(v)
		}
		return 0.3 * float64(v)
	}
	return 3*tiles + pack(m, aTrans) + pack(n, bTrans)
}

func compileConvGrad(n *Node, in, out []ValueMeta, needGrad []bool) (GradKernel, error) {
	return newConvGrad(n, in, needGrad, convGradOptions{wide: true, tapDX: true})
}

// convGradOptions select the algorithms a Conv backward may use (tests and
// benchmarks compare them; the op always allows all).
type convGradOptions struct {
	wide  bool // the wide column layout for stride-1 1-D and 2-D convolutions
	tapDX bool // with wide: dX as one product per tap
}

// newConvGrad compiles the backward of Conv with the algorithms opts allows.
func newConvGrad(n *Node, in []ValueMeta, needGrad []bool, opts convGradOptions) (*convGradKernel, error) {
	if act := n.AttrString("activation", ""); act != "" {
		return nil, fmt.Errorf("Conv has the fused activation %q (an inference-only rewrite); train the graph before fusing activations", act)
	}
	fk, _, err := compileConv(n, in)
	if err != nil {
		return nil, err
	}
	f := fk.(*convKernel)
	need := func(i int) bool { return i < len(needGrad) && needGrad[i] }
	k := &convGradKernel{f: f, convGradOperands: convGradOperands{needX: need(0), needW: need(1), needB: need(2) && f.hasBias}}
	k.xLen, k.wLen = NumElements(in[0].Shape), NumElements(in[1].Shape)
	k.yLen = f.n * f.m * f.outSize
	if f.depthwise || (!k.needX && !k.needW) {
		return k, nil
	}
	g := &f.g
	k.tileRows, k.tiles = f.tileRows, f.tiles
	k.ntMax = f.tileRows * g.out[2]
	if opts.wide && !f.pointwise && wideEligible(g) {
		pw := g.in[2] + g.pb[2] + g.pe[2]
		k.tileRows = max(1, min(f.rows, colTileBudget/max(1, f.colRows*pw)))
		k.tiles = ceilDiv(f.rows, k.tileRows)
		k.wide = newWideLayout(g, f.cg, k.tileRows)
		k.ntMax = k.wide.tileCols(g, k.tileRows)
		k.dywN = f.mg * k.ntMax
		k.winN = k.wide.winSize(f.cg)
		if k.needX && opts.tapDX {
			k.tapDX = true
			k.dyPkN = kernels.PackedBSize(f.mg, k.ntMax)
		}
	}
	k.chunks = gradChunks(f.n, k.wLen, k.needW)
	if k.needW {
		// Both orientations read dY plainly and the columns transposed.
		trans := gemmCost(f.colRows, f.mg, false, true) < gemmCost(f.mg, f.colRows, false, true)
		k.acc = newWgradAcc(k.chunks, f.group, f.mg, f.colRows, trans)
	}
	if !f.pointwise {
		if k.needW {
			k.colN = f.colRows * k.ntMax
		}
		if k.needX && !k.tapDX {
			k.dcolN = f.colRows * k.ntMax
		}
	}
	cpus := goruntime.NumCPU()
	workers := min(cpus, k.chunks)
	for wk := 0; wk < workers; wk++ {
		threads := 1
		if wk == 0 {
			threads = cpus
		}
		gs := 0
		if k.needW {
			g := kernels.Gemm{M: f.mg, N: f.colRows, K: k.ntMax, Threads: threads}
			if k.acc.trans {
				g.M, g.N = f.colRows, f.mg
			}
			gs = max(gs, g.WorkspaceSize())
		}
		if k.needX {
			g := kernels.Gemm{M: f.colRows, N: k.ntMax, K: f.mg, PA: &kernels.PackedA{}, Threads: threads}
			gs = max(gs, g.WorkspaceSize())
		}
		k.scratch = append(k.scratch, convGradScratch{buf: make([]float32, k.colN+k.dcolN+k.dywN+k.winN+k.dyPkN+gs)})
	}
	if k.tapDX {
		k.wTbuf = make([]float32, kernels.PackedASize(f.cg, f.mg)*f.group*f.kSize)
		k.wTp = make([]kernels.PackedA, f.group*f.kSize)
		k.tapTmp = make([]float32, f.mg*f.cg)
	} else if k.needX {
		k.wTbuf = make([]float32, kernels.PackedASize(f.colRows, f.mg)*f.group)
		k.wTp = make([]kernels.PackedA, f.group)
	}
	if k.needX {
		if f.w != nil {
			k.packWT(f.w)
			k.wTconst = true
		}
	}
	return k, nil
}

// packWT packs W_g^T ([Cg*K x Mg]) of every group for the dX products.
func (k *convGradKernel) packWT(w []float32) {
	f := k.f
	if k.tapDX {
		per := kernels.PackedASize(f.cg, f.mg)
		for grp := 0; grp < f.group; grp++ {
			for t := 0; t < f.kSize; t++ {
				for m := 0; m < f.mg; m++ {
					row := w[(grp*f.mg+m)*f.colRows+t:]
					tmp := k.tapTmp[m*f.cg : (m+1)*f.cg]
					for c := range tmp {
						tmp[c] = row[c*f.kSize]
					}
				}
				i := grp*f.kSize + t
				k.wTp[i] = kernels.PackAInto(k.wTbuf[i*per:(i+1)*per], true, f.cg, f.mg, k.tapTmp, f.cg)
			}
		}
		return
	}
	per := kernels.PackedASize(f.colRows, f.mg)
	for grp := 0; grp < f.group; grp++ {
		k.wTp[grp] = kernels.PackAInto(k.wTbuf[grp*per:(grp+1)*per], true, f.colRows, f.mg, w[grp*f.mg*f.colRows:], f.colRows)
	}
}

// Backward adds the gradients of X, W and B.
func (k *convGradKernel) Backward(ctx *ExecContext, in, out, gradOut, gradIn []*Tensor) error {
	if gradOut[0] == nil {
		return nil
	}
	f := k.f
	x, w, dy, dx, dw, db, err := k.operands(in, gradOut, gradIn, f.m)
	if err != nil {
		return err
	}
	threads := max(ctx.Threads, 1)
	if db != nil {
		channelSumGrad(dy, db, f.n, f.m, f.outSize, threads)
	}
	if dx == nil && dw == nil {
		return nil
	}
	if f.depthwise {
		k.depthwiseBackward(x, w, dy, dx, dw, threads)
		return nil
	}
	if dx != nil && !k.wTconst {
		k.packWT(w)
	}
	workers := max(1, min(threads, k.chunks, len(k.scratch)))
	if workers == 1 {
		for c := 0; c < k.chunks; c++ {
			k.chunk(c, x, dy, dx, dw, &k.scratch[0], threads)
		}
	} else {
		inner := max(1, threads/workers)
		parallel.For(workers, workers, 1, func(lo, hi int) {
			for wk := lo; wk < hi; wk++ {
				for c := wk * k.chunks / workers; c < (wk+1)*k.chunks/workers; c++ {
					k.chunk(c, x, dy, dx, dw, &k.scratch[wk], inner)
				}
			}
		})
	}
	if dw != nil {
		k.acc.reduce(dw, threads)
	}
	return nil
}

// chunk processes the images of batch chunk c with the scratch buf and
// threads goroutines inside each product.
func (k *convGradKernel) chunk(c int, x, dy, dx, dw []float32, sc *convGradScratch, threads int) {
	f := k.f
	i0, i1 := c*f.n/k.chunks, (c+1)*f.n/k.chunks
	var dwc []float32 // this chunk's weight-gradient target
	if dw != nil {
		dwc, _ = k.acc.target(c, dw)
	}
	buf := sc.buf
	col, buf := buf[:k.colN], buf[k.colN:]
	dcol, buf := buf[:k.dcolN], buf[k.dcolN:]
	dyw, buf := buf[:k.dywN], buf[k.dywN:]
	win, buf := buf[:k.winN], buf[k.winN:]
	dyPk, gws := buf[:k.dyPkN], buf[k.dyPkN:]
	for img := i0; img < i1; img++ {
		for grp := 0; grp < f.group; grp++ {
			xg := x[(img*f.c+grp*f.cg)*f.inSize : (img*f.c+(grp+1)*f.cg)*f.inSize]
			var dxg, dwg []float32
			if dx != nil {
				dxg = dx[(img*f.c+grp*f.cg)*f.inSize : (img*f.c+(grp+1)*f.cg)*f.inSize]
			}
			if dwc != nil {
				dwg = dwc[grp*f.mg*f.colRows : (grp+1)*f.mg*f.colRows]
			}
			dyg := dy[(img*f.m+grp*f.mg)*f.outSize : (img*f.m+(grp+1)*f.mg)*f.outSize]
			for t := 0; t < k.tiles; t++ {
				r0, r1 := t*k.tileRows, min((t+1)*k.tileRows, f.rows)
				if k.wide != nil {
					k.wideTile(grp, xg, dyg, dxg, dwg, col, dcol, dyw, win, dyPk, gws, &sc.dyB, r0, r1, threads)
				} else {
					k.tile(grp, xg, dyg, dxg, dwg, col, dcol, gws, r0, r1, threads)
				}
			}
		}
	}
}

// weightGemm adds the weight gradient of one tile to dwg: dY * col^T into
// [Mg x Cg*K], or col * dY^T into the transposed [Cg*K x Mg]. a is
// the tile's dY ([Mg x n], leading dimension lda), b its columns ([Cg*K x
// n], leading dimension ldb).
func (k *convGradKernel) weightGemm(a []float32, lda int, b []float32, ldb int, n int, dwg, gws []float32, threads int) {
	f := k.f
	g := kernels.Gemm{M: f.mg, N: f.colRows, K: n, A: a, LDA: lda, TransB: true, B: b, LDB: ldb,
		C: dwg, LDC: f.colRows, Alpha: 1, Beta: 1, Threads: threads, Workspace: gws}
	if k.acc.trans {
		g.M, g.N, g.A, g.LDA, g.B, g.LDB, g.LDC = f.colRows, f.mg, b, ldb, a, lda, f.mg
	}
	g.Run()
}

// tile adds the gradients of output rows [r0, r1) of one image and group
// with the forward's column layout (any geometry).
func (k *convGradKernel) tile(grp int, xg, dyg, dxg, dwg, col, dcol, gws []float32, r0, r1, threads int) {
	f := k.f
	ow := f.g.out[2]
	j0, cols := r0*ow, (r1-r0)*ow
	dyt := dyg[j0:]
	if dwg != nil {
		if f.pointwise {
			k.weightGemm(dyt, f.outSize, xg[j0:], f.inSize, cols, dwg, gws, threads)
		} else {
			im2colTile(&f.g, f.taps, xg, col, r0, r1, threads)
			k.weightGemm(dyt, f.outSize, col[:f.colRows*cols], cols, cols, dwg, gws, threads)
		}
	}
	if dxg != nil {
		g := kernels.Gemm{M: f.colRows, N: cols, K: f.mg, PA: &k.wTp[grp], B: dyt, LDB: f.outSize,
			Alpha: 1, Threads: threads, Workspace: gws}
		if f.pointwise {
			g.C, g.LDC, g.Beta = dxg[j0:], f.inSize, 1
			g.Run()
		} else {
			g.C, g.LDC = dcol[:f.colRows*cols], cols
			g.Run()
			col2imTile(&f.g, f.taps, f.kSize, dcol, dxg, r0, r1, threads)
		}
	}
}

// wideTile is tile with the wide column layout (stride-1 1-D and 2-D
// convolutions): dY is copied into dyw with zero junk columns, and the
// column rows are long slices of the (padded) input.
func (k *convGradKernel) wideTile(grp int, xg, dyg, dxg, dwg, col, dcol, dyw, win, dyPk, gws []float32, pb *kernels.PackedB, y0, y1, threads int) {
	f := k.f
	g := &f.g
	l := k.wide
	ow, pw := g.out[2], l.pw
	n := l.tileCols(g, y1-y0)
	dyw = dyw[:f.mg*n]
	for m := 0; m < f.mg; m++ {
		src := dyg[m*f.outSize+y0*ow : m*f.outSize+y1*ow]
		dst := dyw[m*n : (m+1)*n]
		for y := 0; y < y1-y0; y++ {
			copy(dst[y*pw:y*pw+ow], src[y*ow:(y+1)*ow])
			if y < y1-y0-1 {
				zero(dst[y*pw+ow : (y+1)*pw])
			}
		}
	}
	if dwg != nil {
		src, base := l.source(g, xg, win, y0, y1, f.cg)
		col = col[:f.colRows*n]
		if threads > 1 {
			parallel.For(threads, f.colRows, max(1, 8192/max(1, n)), func(lo, hi int) {
				l.im2col(src, base, col, n, lo, hi)
			})
		} else {
			l.im2col(src, base, col, n, 0, f.colRows)
		}
		k.weightGemm(dyw, n, col, n, n, dwg, gws, threads)
	}
	if dxg != nil && k.tapDX {
		*pb = kernels.PackBInto(dyPk, false, f.mg, n, dyw, n)
		dst, base, plane := dxg, y0*g.in[2], f.inSize
		if l.padded {
			win = win[:l.winSize(f.cg)]
			clear(win)
			dst, base, plane = win, 0, l.winRows*pw
		}
		for t := 0; t < f.kSize; t++ {
			gm := kernels.Gemm{M: f.cg, N: n, K: f.mg, PA: &k.wTp[grp*f.kSize+t], PB: pb,
				C: dst[l.offs[t]+base:], LDC: plane, Alpha: 1, Beta: 1, Threads: threads}
			gm.Run()
		}
		if l.padded {
			l.addWindow(g, win, dxg, y0, y1, f.cg)
		}
	} else if dxg != nil {
		dcol = dcol[:f.colRows*n]
		gm := kernels.Gemm{M: f.colRows, N: n, K: f.mg, PA: &k.wTp[grp], B: dyw, LDB: n,
			C: dcol, LDC: n, Alpha: 1, Threads: threads, Workspace: gws}
		gm.Run()
		if l.padded {
			win = win[:l.winSize(f.cg)]
			clear(win)
			l.col2im(dcol, win, 0, n, f.kSize, threads)
			l.addWindow(g, win, dxg, y0, y1, f.cg)
		} else {
			l.col2im(dcol, dxg, y0*g.in[2], n, f.kSize, threads)
		}
	}
}

// col2imTile adds the column tile col ([len(taps), (r1-r0)*out[2]], see
// im2colTile) into the input planes x it was taken from, in parallel over
// channels (the kSize rows of a channel write only its plane).
func col2imTile(g *geom3, taps []colTap, kSize int, col, x []float32, r0, r1, threads int) {
	channels := len(taps) / kSize
	n := (r1 - r0) * g.out[2]
	if threads <= 1 || channels == 1 {
		col2imRows(g, taps, col, x, r0, r1, 0, len(taps))
		return
	}
	grain := max(1, 8192/max(n*kSize, 1))
	parallel.For(threads, channels, grain, func(lo, hi int) {
		col2imRows(g, taps, col, x, r0, r1, lo*kSize, hi*kSize)
	})
}

// col2imRows adds rows [lo, hi) of a column tile into x.
func col2imRows(g *geom3, taps []colTap, col, x []float32, r0, r1, lo, hi int) {
	n := (r1 - r0) * g.out[2]
	inSize := g.inSize()
	ow, sw, ihw, iw := g.out[2], g.s[2], g.in[1]*g.in[2], g.in[2]
	for r := lo; r < hi; r++ {
		t := &taps[r]
		src := col[r*n : (r+1)*n]
		xc := x[t.plane : t.plane+inSize]
		wlo, whi, offW := t.wlo, t.whi, t.offW
		if wlo >= whi {
			continue
		}
		for rr := r0; rr < r1; rr++ {
			od, oh := rr/g.out[1], rr%g.out[1]
			if od < t.dlo || od >= t.dhi || oh < t.hlo || oh >= t.hhi {
				continue
			}
			row := src[(rr-r0)*ow : (rr-r0+1)*ow]
			xr := xc[(od*g.s[0]+t.offD)*ihw+(oh*g.s[1]+t.offH)*iw:]
			if sw == 1 {
				d := xr[wlo+offW : whi+offW]
				for i, v := range row[wlo:whi] {
					d[i] += v
				}
			} else {
				for o := wlo; o < whi; o++ {
					xr[o*sw+offW] += row[o]
				}
			}
		}
	}
}

// channelSumGrad adds to db[c] the sum of dy's channel c over n images of
// planes of size elements (a bias gradient), accumulated in float64 in a
// fixed order (four interleaved partial sums per plane, planes in image
// order), in parallel over channels.
func channelSumGrad(dy, db []float32, n, channels, size, threads int) {
	if threads <= 1 {
		channelSumRange(dy, db, n, channels, size, 0, channels)
		return
	}
	parallel.For(threads, channels, max(1, (1<<14)/max(1, n*size)), func(lo, hi int) {
		channelSumRange(dy, db, n, channels, size, lo, hi)
	})
}

// channelSumRange is channelSumGrad for channels [lo, hi).
func channelSumRange(dy, db []float32, n, channels, size, lo, hi int) {
	for c := lo; c < hi; c++ {
		var s float64
		for img := 0; img < n; img++ {
			p := dy[(img*channels+c)*size : (img*channels+c+1)*size]
			var s0, s1, s2, s3 float64
			i := 0
			for ; i+4 <= len(p); i += 4 {
				q := p[i : i+4 : i+4]
				s0 += float64(q[0])
				s1 += float64(q[1])
				s2 += float64(q[2])
				s3 += float64(q[3])
			}
			for ; i < len(p); i++ {
				s0 += float64(p[i])
			}
			s += (s0 + s1) + (s2 + s3)
		}
		db[c] += float32(s)
	}
}

// depthwiseBackward computes the gradients of a depthwise convolution
// (one input channel per group, mg outputs per channel) directly: dX in
// parallel over (image, channel) planes, dW over output channels.
func (k *convGradKernel) depthwiseBackward(x, w, dy, dx, dw []float32, threads int) {
	f := k.f
	if dx != nil {
		if threads <= 1 {
			k.depthwiseDX(w, dy, dx, 0, f.n*f.c)
		} else {
			parallel.For(threads, f.n*f.c, max(1, (1<<15)/max(1, f.outSize*f.kSize*f.mg)), func(lo, hi int) {
				k.depthwiseDX(w, dy, dx, lo, hi)
			})
		}
	}
	if dw != nil {
		if threads <= 1 {
			k.depthwiseDW(x, dy, dw, 0, f.m)
		} else {
			parallel.For(threads, f.m, max(1, (1<<15)/max(1, f.n*f.outSize*f.kSize)), func(lo, hi int) {
				k.depthwiseDW(x, dy, dw, lo, hi)
			})
		}
	}
}

// depthwiseDX adds the input gradient of (image, channel) planes [lo, hi).
func (k *convGradKernel) depthwiseDX(w, dy, dx []float32, lo, hi int) {
	f := k.f
	for p := lo; p < hi; p++ {
		img, ic := p/f.c, p%f.c
		dxc := dx[p*f.inSize : (p+1)*f.inSize]
		for j := 0; j < f.mg; j++ {
			oc := ic*f.mg + j
			dyc := dy[(img*f.m+oc)*f.outSize : (img*f.m+oc+1)*f.outSize]
			depthwisePlaneGradX(&f.g, dyc, w[oc*f.kSize:(oc+1)*f.kSize], dxc)
		}
	}
}

// depthwiseDW adds the kernel gradients of output channels [lo, hi), over
// images in order.
func (k *convGradKernel) depthwiseDW(x, dy, dw []float32, lo, hi int) {
	f := k.f
	for oc := lo; oc < hi; oc++ {
		ic := oc / f.mg
		dwc := dw[oc*f.kSize : (oc+1)*f.kSize]
		for img := 0; img < f.n; img++ {
			xc := x[(img*f.c+ic)*f.inSize : (img*f.c+ic+1)*f.inSize]
			dyc := dy[(img*f.m+oc)*f.outSize : (img*f.m+oc+1)*f.outSize]
			depthwisePlaneGradW(&f.g, xc, dyc, dwc)
		}
	}
}

// depthwisePlaneGradX adds the input gradient of one depthwise output
// plane dyc (kernel wc) into the input plane dxc: the transpose of
// depthwisePlane.
func depthwisePlaneGradX(g *geom3, dyc, wc, dxc []float32) {
	ohw := g.out[1] * g.out[2]
	ihw := g.in[1] * g.in[2]
	for kd := 0; kd < g.k[0]; kd++ {
		offD := kd*g.d[0] - g.pb[0]
		dlo, dhi := validRange(g.out[0], g.in[0], g.s[0], offD)
		for kh := 0; kh < g.k[1]; kh++ {
			offH := kh*g.d[1] - g.pb[1]
			hlo, hhi := validRange(g.out[1], g.in[1], g.s[1], offH)
			for kw := 0; kw < g.k[2]; kw++ {
				offW := kw*g.d[2] - g.pb[2]
				wlo, whi := validRange(g.out[2], g.in[2], g.s[2], offW)
				if wlo >= whi {
					continue
				}
				wv := wc[(kd*g.k[1]+kh)*g.k[2]+kw]
				for od := dlo; od < dhi; od++ {
					xd := dxc[(od*g.s[0]+offD)*ihw:]
					yd := dyc[od*ohw:]
					for oh := hlo; oh < hhi; oh++ {
						xr := xd[(oh*g.s[1]+offH)*g.in[2]:]
						yr := yd[oh*g.out[2] : (oh+1)*g.out[2]]
						if g.s[2] == 1 {
							xs := xr[wlo+offW : whi+offW]
							for i, v := range yr[wlo:whi] {
								xs[i] += wv * v
							}
						} else {
							for ow := wlo; ow < whi; ow++ {
								xr[ow*g.s[2]+offW] += wv * yr[ow]
							}
						}
					}
				}
			}
		}
	}
}

// depthwisePlaneGradW adds the kernel gradient of one depthwise output
// plane dyc over input plane xc into dwc.
func depthwisePlaneGradW(g *geom3, xc, dyc, dwc []float32) {
	ohw := g.out[1] * g.out[2]
	ihw := g.in[1] * g.in[2]
	for kd := 0; kd < g.k[0]; kd++ {
		offD := kd*g.d[0] - g.pb[0]
		dlo, dhi := validRange(g.out[0], g.in[0], g.s[0], offD)
		for kh := 0; kh < g.k[1]; kh++ {
			offH := kh*g.d[1] - g.pb[1]
			hlo, hhi := validRange(g.out[1], g.in[1], g.s[1], offH)
			for kw := 0; kw < g.k[2]; kw++ {
				offW := kw*g.d[2] - g.pb[2]
				wlo, whi := validRange(g.out[2], g.in[2], g.s[2], offW)
				if wlo >= whi {
					continue
				}
				var s float32
				for od := dlo; od < dhi; od++ {
					xd := xc[(od*g.s[0]+offD)*ihw:]
					yd := dyc[od*ohw:]
					for oh := hlo; oh < hhi; oh++ {
						xr := xd[(oh*g.s[1]+offH)*g.in[2]:]
						yr := yd[oh*g.out[2] : (oh+1)*g.out[2]]
						if g.s[2] == 1 {
							xs := xr[wlo+offW : whi+offW]
							for i, v := range yr[wlo:whi] {
								s += v * xs[i]
							}
						} else {
							for ow := wlo; ow < whi; ow++ {
								s += yr[ow] * xr[ow*g.s[2]+offW]
							}
						}
					}
				}
				dwc[(kd*g.k[1]+kh)*g.k[2]+kw] += s
			}
		}
	}
}

// ---------------------------------------------------------------- ConvTranspose

// convTransposeGradKernel is the backward of ConvTranspose. Per image and
// group the forward is Y_g = col2im(W_g^T * X_g) + B, so with col =
// im2col(dY_g) taken over the transposed geometry (the convolution whose
// input is Y and whose output positions are X's):
//
//	dX_g += W_g * col          ([Cg x Mg*K] * [Mg*K x positions])
//	dW_g += X_g * col^T        ([Cg x positions] * [positions x Mg*K])
//	dB   += dY summed over images and positions
//
// with the same tiling (rows of X positions), batch chunks and
// determinism as the Conv backward.
type convTransposeGradKernel struct {
	f    *convTransposeKernel
	cg3  geom3    // im2col geometry over dY: in = Y's spatial sizes, out = X's
	taps []colTap // rows of the column matrix (Mg channels of dY)
	convGradOperands
	rows, tileRows int // X rows (positions / X's last axis) and rows per tile
	tiles, chunks  int
	acc            wgradAcc
	colN           int
	scratch        [][]float32
	wp             []kernels.PackedA // per group W_g [Cg x Mg*K] packed for dX
	wpBuf          []float32
	wpConst        bool
}

func compileConvTransposeGrad(n *Node, in, out []ValueMeta, needGrad []bool) (GradKernel, error) {
	if act := n.AttrString("activation", ""); act != "" {
		return nil, fmt.Errorf("ConvTranspose has the fused activation %q (an inference-only rewrite); train the graph before fusing activations", act)
	}
	fk, _, err := compileConvTranspose(n, in)
	if err != nil {
		return nil, err
	}
	f := fk.(*convTransposeKernel)
	need := func(i int) bool { return i < len(needGrad) && needGrad[i] }
	k := &convTransposeGradKernel{f: f, convGradOperands: convGradOperands{needX: need(0), needW: need(1), needB: need(2) && f.hasBias}}
	k.xLen, k.wLen = NumElements(in[0].Shape), NumElements(in[1].Shape)
	k.yLen = f.n * f.m * f.outSize
	if !k.needX && !k.needW {
		return k, nil
	}
	g := f.g
	k.cg3 = geom3{rank: g.rank, in: g.out, out: g.in, k: g.k, s: g.s, d: g.d, pb: g.pb, pe: g.pe}
	k.taps = makeColTaps(&k.cg3, f.mg)
	k.rows = g.in[0] * g.in[1]
	k.tileRows = max(1, min(k.rows, colTileBudget/max(1, f.colRows*g.in[2])))
	k.tiles = ceilDiv(max(k.rows, 1), k.tileRows)
	k.chunks = gradChunks(f.n, k.wLen, k.needW)
	cols := k.tileRows * g.in[2]
	k.colN = f.colRows * cols
	if k.needW {
		// dW_g [Cg x Mg*K] = X * col^T, or transposed col * X^T.
		trans := gemmCost(f.colRows, f.cg, false, true) < gemmCost(f.cg, f.colRows, false, true)
		k.acc = newWgradAcc(k.chunks, f.group, f.cg, f.colRows, trans)
	}
	cpus := goruntime.NumCPU()
	for wk := 0; wk < min(cpus, k.chunks); wk++ {
		threads := 1
		if wk == 0 {
			threads = cpus
		}
		gs := 0
		if k.needW {
			gm := kernels.Gemm{M: f.cg, N: f.colRows, K: cols, Threads: threads}
			if k.acc.trans {
				gm.M, gm.N = f.colRows, f.cg
			}
			gs = max(gs, gm.WorkspaceSize())
		}
		if k.needX {
			gm := kernels.Gemm{M: f.cg, N: cols, K: f.colRows, PA: &kernels.PackedA{}, Threads: threads}
			gs = max(gs, gm.WorkspaceSize())
		}
		k.scratch = append(k.scratch, make([]float32, k.colN+gs))
	}
	if k.needX {
		k.wp = make([]kernels.PackedA, f.group)
		k.wpBuf = make([]float32, f.group*kernels.PackedASize(f.cg, f.colRows))
		if f.w != nil {
			k.packW(f.w)
			k.wpConst = true
		}
	}
	return k, nil
}

// packW packs W_g ([Cg x Mg*K]) of every group for the dX products.
func (k *convTransposeGradKernel) packW(w []float32) {
	f := k.f
	per := kernels.PackedASize(f.cg, f.colRows)
	for grp := 0; grp < f.group; grp++ {
		k.wp[grp] = kernels.PackAInto(k.wpBuf[grp*per:(grp+1)*per], false, f.cg, f.colRows, w[grp*f.cg*f.colRows:], f.colRows)
	}
}

// Backward adds the gradients of X, W and B.
func (k *convTransposeGradKernel) Backward(ctx *ExecContext, in, out, gradOut, gradIn []*Tensor) error {
	if gradOut[0] == nil {
		return nil
	}
	f := k.f
	x, w, dy, dx, dw, db, err := k.operands(in, gradOut, gradIn, f.m)
	if err != nil {
		return err
	}
	threads := max(ctx.Threads, 1)
	if db != nil {
		channelSumGrad(dy, db, f.n, f.m, f.outSize, threads)
	}
	if dx == nil && dw == nil {
		return nil
	}
	if dx != nil && !k.wpConst {
		k.packW(w)
	}
	workers := max(1, min(threads, k.chunks, len(k.scratch)))
	if workers == 1 {
		for c := 0; c < k.chunks; c++ {
			k.chunk(c, x, dy, dx, dw, k.scratch[0], threads)
		}
	} else {
		inner := max(1, threads/workers)
		parallel.For(workers, workers, 1, func(lo, hi int) {
			for wk := lo; wk < hi; wk++ {
				for c := wk * k.chunks / workers; c < (wk+1)*k.chunks/workers; c++ {
					k.chunk(c, x, dy, dx, dw, k.scratch[wk], inner)
				}
			}
		})
	}
	if dw != nil {
		k.acc.reduce(dw, threads)
	}
	return nil
}

// chunk processes the images of batch chunk c with the scratch buf.
func (k *convTransposeGradKernel) chunk(c int, x, dy, dx, dw, buf []float32, threads int) {
	f := k.f
	var dwc []float32
	if dw != nil {
		dwc, _ = k.acc.target(c, dw)
	}
	col, gws := buf[:k.colN], buf[k.colN:]
	iw := f.g.in[2]
	for img := c * f.n / k.chunks; img < (c+1)*f.n/k.chunks; img++ {
		for grp := 0; grp < f.group; grp++ {
			xg := x[(img*f.c+grp*f.cg)*f.inSize : (img*f.c+(grp+1)*f.cg)*f.inSize]
			dyg := dy[(img*f.m+grp*f.mg)*f.outSize : (img*f.m+(grp+1)*f.mg)*f.outSize]
			for t := 0; t < k.tiles; t++ {
				r0, r1 := t*k.tileRows, min((t+1)*k.tileRows, k.rows)
				j0, cols := r0*iw, (r1-r0)*iw
				tc := col[:f.colRows*cols]
				im2colTile(&k.cg3, k.taps, dyg, tc, r0, r1, threads)
				if dwc != nil {
					dwg := dwc[grp*f.cg*f.colRows : (grp+1)*f.cg*f.colRows]
					gm := kernels.Gemm{M: f.cg, N: f.colRows, K: cols, A: xg[j0:], LDA: f.inSize, TransB: true, B: tc, LDB: cols,
						C: dwg, LDC: f.colRows, Alpha: 1, Beta: 1, Threads: threads, Workspace: gws}
					if k.acc.trans {
						gm.M, gm.N, gm.A, gm.LDA, gm.B, gm.LDB, gm.LDC = f.colRows, f.cg, tc, cols, xg[j0:], f.inSize, f.cg
					}
					gm.Run()
				}
				if dx != nil {
					dxg := dx[(img*f.c+grp*f.cg)*f.inSize+j0:]
					gm := kernels.Gemm{M: f.cg, N: cols, K: f.colRows, PA: &k.wp[grp], B: tc, LDB: cols,
						C: dxg, LDC: f.inSize, Alpha: 1, Beta: 1, Threads: threads, Workspace: gws}
					gm.Run()
				}
			}
		}
	}
}
