package runtime

import (
	"fmt"
	goruntime "runtime"

	"github.com/compressml/compress/internal/parallel"
	"github.com/compressml/compress/runtime/kernels"
)

// This file holds Conv and ConvTranspose, and the window geometry (kernel,
// strides, dilations, pads, auto_pad) they share with the pooling ops.
//
// Spatial ranks 1 to 3 are supported. Internally every geometry is
// normalised to 3 spatial dimensions by prepending dimensions of size 1
// (kernel 1, stride 1, no padding), so one set of loops serves 1-D, 2-D and
// 3-D; the extra dimensions cost nothing.

// maxSpatial is the largest spatial rank the NN ops support.
const maxSpatial = 3

// geom3 is a window geometry normalised to 3 spatial dimensions.
type geom3 struct {
	rank    int    // spatial rank of the original op (1..3)
	in, out [3]int // spatial sizes
	k       [3]int // kernel sizes
	s, d    [3]int // strides, dilations
	pb, pe  [3]int // pads at the beginning and end (may be negative for ConvTranspose)
}

func (g *geom3) inSize() int  { return g.in[0] * g.in[1] * g.in[2] }
func (g *geom3) outSize() int { return g.out[0] * g.out[1] * g.out[2] }
func (g *geom3) kSize() int   { return g.k[0] * g.k[1] * g.k[2] }

// outSpatial returns the output spatial sizes in the op's own rank.
func (g *geom3) outSpatial() []int { return append([]int{}, g.out[3-g.rank:]...) }

// floorDiv divides rounding toward minus infinity (b > 0).
func floorDiv(a, b int) int {
	q := a / b
	if a%b != 0 && a < 0 {
		q--
	}
	return q
}

// ceilDiv divides rounding toward plus infinity (b > 0).
func ceilDiv(a, b int) int { return -floorDiv(-a, b) }

// windowAttrs reads kernel_shape (defaulting to kernelDef when non-nil),
// strides, dilations and pads for a window op of the given spatial rank.
// Explicit pads are returned; auto_pad is resolved by the caller.
func windowAttrs(n *Node, rank int, kernelDef []int) (g geom3, autoPad string, err error) {
	if rank < 1 || rank > maxSpatial {
		return g, "", fmt.Errorf("only 1 to %d spatial dimensions are supported, input has %d", maxSpatial, rank)
	}
	g.rank = rank
	off := maxSpatial - rank
	for i := 0; i < maxSpatial; i++ {
		g.in[i], g.out[i], g.k[i], g.s[i], g.d[i] = 1, 1, 1, 1, 1
	}
	ks := n.AttrInts("kernel_shape", nil)
	if ks == nil {
		if kernelDef == nil {
			return g, "", fmt.Errorf("attribute kernel_shape is required")
		}
		for _, v := range kernelDef {
			ks = append(ks, int64(v))
		}
	}
	if len(ks) != rank {
		return g, "", fmt.Errorf("kernel_shape %v has %d values, the input has %d spatial dimensions", ks, len(ks), rank)
	}
	if kernelDef != nil {
		for i, v := range ks {
			if int(v) != kernelDef[i] {
				return g, "", fmt.Errorf("kernel_shape %v does not match the weight's spatial shape %v", ks, kernelDef)
			}
		}
	}
	get := func(name string, def int64, want int) ([]int64, error) {
		v := n.AttrInts(name, nil)
		if v == nil {
			v = make([]int64, want)
			for i := range v {
				v[i] = def
			}
		}
		if len(v) != want {
			return nil, fmt.Errorf("%s %v has %d values, want %d (the input has %d spatial dimensions)", name, v, len(v), want, rank)
		}
		return v, nil
	}
	st, err := get("strides", 1, rank)
	if err != nil {
		return g, "", err
	}
	dl, err := get("dilations", 1, rank)
	if err != nil {
		return g, "", err
	}
	pads, err := get("pads", 0, 2*rank)
	if err != nil {
		return g, "", err
	}
	for i := 0; i < rank; i++ {
		if ks[i] < 1 || st[i] < 1 || dl[i] < 1 {
			return g, "", fmt.Errorf("kernel_shape %v, strides %v and dilations %v must all be positive", ks, st, dl)
		}
		if ks[i] > 1<<20 || st[i] > 1<<20 || dl[i] > 1<<20 || pads[i] > 1<<20 || pads[i+rank] > 1<<20 {
			return g, "", fmt.Errorf("kernel_shape %v, strides %v, dilations %v or pads %v are absurdly large", ks, st, dl, pads)
		}
		g.k[off+i], g.s[off+i], g.d[off+i] = int(ks[i]), int(st[i]), int(dl[i])
		g.pb[off+i], g.pe[off+i] = int(pads[i]), int(pads[i+rank])
	}
	autoPad = n.AttrString("auto_pad", "NOTSET")
	switch autoPad {
	case "NOTSET", "VALID", "SAME_UPPER", "SAME_LOWER":
	case "":
		autoPad = "NOTSET"
	default:
		return g, "", fmt.Errorf("auto_pad %q is not one of NOTSET, SAME_UPPER, SAME_LOWER, VALID", autoPad)
	}
	return g, autoPad, nil
}

// forwardGeom completes a Conv or pooling geometry for spatial input sizes
// inSp: it resolves auto_pad and computes the output sizes. ceil selects
// ceil_mode rounding (pooling only).
func forwardGeom(g *geom3, inSp []int, autoPad string, ceil bool) error {
	off := maxSpatial - g.rank
	for i, v := range inSp {
		g.in[off+i] = v
	}
	for i := off; i < maxSpatial; i++ {
		in, s := g.in[i], g.s[i]
		ek := (g.k[i]-1)*g.d[i] + 1
		switch autoPad {
		case "VALID":
			g.pb[i], g.pe[i] = 0, 0
		case "SAME_UPPER", "SAME_LOWER":
			out := ceilDiv(in, s)
			total := max(0, (out-1)*s+ek-in)
			small := total / 2
			if autoPad == "SAME_UPPER" {
				g.pb[i], g.pe[i] = small, total-small
			} else {
				g.pb[i], g.pe[i] = total-small, small
			}
		}
		span := in + g.pb[i] + g.pe[i] - ek
		if span < 0 {
			return fmt.Errorf("the window (kernel %v, dilations %v) is larger than the padded input %v (pads %v %v)",
				g.k[off:], g.d[off:], inSp, g.pb[off:], g.pe[off:])
		}
		out := span/s + 1
		if ceil && autoPad == "NOTSET" {
			out = ceilDiv(span, s) + 1
			// A window must start inside the input or the leading padding.
			if (out-1)*s >= in+g.pb[i] {
				out--
			}
		}
		g.out[i] = out
	}
	return nil
}

// ---------------------------------------------------------------- Conv

// convKernel is a compiled N-D convolution. Each (image, group) is one
// GEMM Y_g[Mg x out] = W_g[Mg x Cg*K] * im2col(X_g) with the weights packed
// once at compile time when they are constant (a plan built from them must
// be recompiled if they change), or once per Run into buffers of the
// kernel when they are variables (training), bias and ReLU applied in the
// GEMM's epilogue, other fused activations right after:
//   - im2col into workspace tiles of whole output rows that stay in cache
//     (measured faster than kernels' Gemm.BConv on the ResNet fixture);
//   - stride-1 1-D/2-D convolutions whose output is narrower than the
//     input (no padding: LeNet): the wide column layout (wideLayout), long
//     copies instead of one short copy per output row, and a GEMM into a
//     scratch tile compacted into Y;
//   - 1x1, stride 1, no padding: the input is the column matrix;
//   - group == C (depthwise): direct loops, kernels.DepthwiseConv2D for
//     1-D/2-D with one output channel per group.
//
// Work items (image, group, tile) run concurrently, one thread each, when
// there are at least as many as threads; otherwise the threads work inside
// each item. The kernels give the same bits for any thread count.
type convKernel struct {
	g geom3
	convDims
	inSize, outSize    int // spatial elements per plane
	kSize, colRows     int // kernel elements; rows of the im2col matrix (cg*kSize)
	pointwise          bool
	depthwise          bool
	slots              int                // work items the workspace lets run concurrently
	rows               int                // output rows per plane (out[0]*out[1]), each out[2] wide
	tileRows, tiles    int                // output rows per column tile; tiles per (image, group)
	taps               []colTap           // rows of the im2col matrix
	w                  []float32          // weights [M, Cg*K] when constant
	packed             []*kernels.PackedA // per group, when the weights are constant
	bias               []float32          // bias [M] when constant
	hasBias, constBias bool
	act                fusedAct
	dw2d               *kernels.Conv2DShape // depthwise 1-D/2-D with one output per channel: the kernels' fast path
	// wide is set for stride-1 1-D and 2-D convolutions whose output is
	// narrower than the input (no padding, as in LeNet): tiles then use the
	// wide column layout, whose rows are long copies, and their GEMM
	// writes a scratch tile that is compacted into Y.
	wide  *wideLayout
	ntMax int // columns of a full wide tile
	// repack holds variable weights packed by Run (k.packed points at it).
	repack    []kernels.PackedA
	repackBuf []float32
	// direct, when set, runs the forward pass (see ops_conv_direct.go).
	direct *kernels.DirectConv
}

func init() {
	Register(OpSpec{Type: "Conv", MinInputs: 2, MaxInputs: 3, Outputs: 1, Compile: compileConv, Grad: compileConvGrad})
	Register(OpSpec{Type: "ConvTranspose", MinInputs: 2, MaxInputs: 3, Outputs: 1, Compile: compileConvTranspose, Grad: compileConvTransposeGrad})
}

func compileConv(n *Node, in []ValueMeta) (Kernel, []ValueMeta, error) {
	if err := checkFloat("X", in[0]); err != nil {
		return nil, nil, err
	}
	if err := checkFloat("W", in[1]); err != nil {
		return nil, nil, err
	}
	xs, ws := in[0].Shape, in[1].Shape
	if len(xs) < 3 {
		return nil, nil, fmt.Errorf("X must be [N C spatial...], got shape %v", xs)
	}
	if len(ws) != len(xs) {
		return nil, nil, fmt.Errorf("W of shape %v must have the rank of X %v", ws, xs)
	}
	k := &convKernel{}
	g, outShape, err := k.convDims.check(n, xs, ws)
	if err != nil {
		return nil, nil, err
	}
	k.g = g
	if err := CheckShape([]int{k.cg, g.kSize(), g.outSize()}); err != nil {
		return nil, nil, fmt.Errorf("im2col matrix: %w", err)
	}
	if k.act, err = parseFusedAct(n); err != nil {
		return nil, nil, err
	}
	if k.hasBias, k.constBias, k.bias, err = convBias(in, k.m); err != nil {
		return nil, nil, err
	}
	if in[1].Const != nil {
		k.w = in[1].Const.F32
	}
	k.inSize, k.outSize, k.kSize = g.inSize(), g.outSize(), g.kSize()
	k.colRows = k.cg * k.kSize
	k.pointwise = k.kSize == 1
	for i := 0; i < maxSpatial; i++ {
		if g.s[i] != 1 || g.pb[i] != 0 || g.pe[i] != 0 {
			k.pointwise = false
		}
	}
	k.depthwise = k.cg == 1 && k.group > 1 && !k.pointwise
	if k.depthwise && k.mg == 1 && g.k[0] == 1 && g.in[0] == 1 {
		k.dw2d = &kernels.Conv2DShape{C: k.c, H: g.in[1], W: g.in[2], KH: g.k[1], KW: g.k[2],
			PadTop: g.pb[1], PadLeft: g.pb[2], PadBottom: g.pe[1], PadRight: g.pe[2],
			StrideH: g.s[1], StrideW: g.s[2], DilationH: g.d[1], DilationW: g.d[2]}
		if k.dw2d.Validate() != nil || k.dw2d.OutH() != g.out[1] || k.dw2d.OutW() != g.out[2] {
			k.dw2d = nil
		}
	}
	if k.w != nil && !k.depthwise && k.colRows > 0 && k.mg > 0 {
		for grp := 0; grp < k.group; grp++ {
			k.packed = append(k.packed, kernels.PackA(false, k.mg, k.colRows, k.w[grp*k.mg*k.colRows:], k.colRows))
		}
	} else if !k.depthwise && k.colRows > 0 && k.mg > 0 {
		// Variable weights (training): packed once per Run into buffers of
		// the kernel instead of once per tile by the GEMM.
		k.repack = make([]kernels.PackedA, k.group)
		k.repackBuf = make([]float32, k.group*kernels.PackedASize(k.mg, k.colRows))
		for grp := range k.repack {
			k.packed = append(k.packed, &k.repack[grp])
		}
	}
	// im2col runs in tiles of whole output rows whose column buffer stays
	// in the L2 cache (the column matrix is kSize times the input).
	k.rows = g.out[0] * g.out[1]
	k.tileRows = max(1, min(k.rows, colTileBudget/max(1, k.colRows*g.out[2])))
	if k.pointwise {
		k.tileRows = max(k.rows, 1)
	}
	if !k.pointwise && !k.depthwise && g.out[2] != g.in[2] && wideEligible(&g) {
		pw := g.in[2] + g.pb[2] + g.pe[2]
		k.tileRows = max(1, min(k.rows, colTileBudget/max(1, k.colRows*pw)))
		k.wide = newWideLayout(&g, k.cg, k.tileRows)
		k.ntMax = k.wide.tileCols(&g, k.tileRows)
	}
	k.tiles = ceilDiv(max(k.rows, 1), k.tileRows)
	k.slots = 1
	if !k.depthwise {
		k.slots = min(k.items(), goruntime.NumCPU(), 8)
	}
	if k.colSize() > 0 {
		k.taps = makeColTaps(&g, k.cg)
	}
	k.direct = newDirectConv(k)
	return k, []ValueMeta{{DType: Float32, Shape: outShape}}, nil
}

// colTileBudget bounds the float32 count of one im2col tile.
const colTileBudget = 64 << 10

// items is the number of independent (image, group, tile) products.
func (k *convKernel) items() int { return k.n * k.group * k.tiles }

// colSize is the float32 count of one tile's im2col buffer.
func (k *convKernel) colSize() int {
	if k.pointwise || k.depthwise {
		return 0
	}
	if k.wide != nil {
		// Columns, padded input window and the GEMM's output tile.
		return k.colRows*k.ntMax + k.wide.winSize(k.cg) + k.mg*k.ntMax
	}
	return k.colRows * k.tileRows * k.g.out[2]
}

// gemmScratch is the packing scratch of one tile's GEMM run with threads
// goroutines.
func (k *convKernel) gemmScratch(threads int) int {
	if k.depthwise {
		return 0
	}
	g := kernels.Gemm{M: k.mg, N: k.tileRows * k.g.out[2], K: k.colRows, Threads: threads}
	if k.wide != nil {
		g.N = k.ntMax
	}
	if k.packed != nil {
		g.PA = k.packed[0]
	}
	return g.WorkspaceSize()
}

// slotSize is the workspace of one tile processed on one thread.
func (k *convKernel) slotSize() int { return k.colSize() + k.gemmScratch(1) }

// WorkspaceSize covers either k.slots tiles in parallel, one thread each,
// or one tile at a time with every CPU in its GEMM.
func (k *convKernel) WorkspaceSize() int {
	if k.direct != nil {
		return k.directWorkspace()
	}
	if k.depthwise {
		return 0
	}
	return max(k.slots*k.slotSize(), k.colSize()+k.gemmScratch(goruntime.NumCPU()))
}

func (k *convKernel) MACs() int64 {
	return int64(k.n) * int64(k.m) * int64(k.outSize) * int64(k.colRows)
}

func (k *convKernel) Run(ctx *ExecContext, in, out []*Tensor) error {
	x, y := in[0].F32, out[0].F32
	w := k.w
	if w == nil {
		w = in[1].F32
	}
	if k.repack != nil {
		if len(w) != k.m*k.colRows {
			return fmt.Errorf("W has %d elements, Conv was compiled for %d", len(w), k.m*k.colRows)
		}
		per := kernels.PackedASize(k.mg, k.colRows)
		for grp := range k.repack {
			k.repack[grp] = kernels.PackAInto(k.repackBuf[grp*per:(grp+1)*per], false, k.mg, k.colRows, w[grp*k.mg*k.colRows:], k.colRows)
		}
	}
	bias := k.bias
	if k.hasBias && !k.constBias {
		bias = in[2].F32
	}
	threads := max(ctx.Threads, 1)
	if k.direct != nil {
		k.runDirect(x, y, bias, nil, threads, ctx.Workspace)
		return nil
	}
	if k.depthwise {
		k.runDepthwise(x, w, bias, y, threads)
		return nil
	}
	col := k.colSize()
	ws := ctx.Workspace
	if len(ws) < col {
		return fmt.Errorf("workspace has %d floats, Conv needs at least %d", len(ws), col)
	}
	// With at least one tile per thread, tiles run concurrently, each on one
	// thread with its own buffers; otherwise they run one after another
	// with every thread inside im2col and the GEMM. Tiles write disjoint
	// outputs and the kernels' results do not depend on their thread
	// count, so every split gives the same bits.
	items := k.items()
	// Small products do not repay a goroutine hand-off.
	itemMACs := int64(k.mg) * int64(k.tileRows*k.g.out[2]) * int64(k.colRows)
	threads = min(threads, max(1, int(int64(items)*itemMACs/minConvMACsPerThread)))
	if slot := k.slotSize(); threads > 1 && items >= threads && len(ws) >= 2*slot {
		slots := min(threads, len(ws)/slot)
		parallel.For(slots, slots, 1, func(lo, hi int) {
			for s := lo; s < hi; s++ {
				buf := ws[s*slot : (s+1)*slot]
				for it := s * items / slots; it < (s+1)*items/slots; it++ {
					k.tile(x, w, bias, y, buf[:col], buf[col:], it, 1)
				}
			}
		})
		return nil
	}
	threads = min(threads, max(1, int(itemMACs/minConvMACsPerThread)))
	for it := 0; it < items; it++ {
		k.tile(x, w, bias, y, ws[:col], ws[col:], it, threads)
	}
	return nil
}

// minConvMACsPerThread is the least convolution work (multiply-adds) worth
// a goroutine of its own.
const minConvMACsPerThread = 1 << 20

// tile computes work item it: output rows [r0, r1) of every output channel
// of one group of one image, with buf for the im2col tile and gws as GEMM
// scratch.
func (k *convKernel) tile(x, w, bias, y, buf, gws []float32, it, threads int) {
	img, grp, t := it/(k.group*k.tiles), (it/k.tiles)%k.group, it%k.tiles
	r0, r1 := t*k.tileRows, min((t+1)*k.tileRows, k.rows)
	if k.wide != nil {
		k.wideTile(x, w, bias, y, buf, gws, img, grp, r0, r1, threads)
		return
	}
	ow := k.g.out[2]
	j0, cols := r0*ow, (r1-r0)*ow
	xg := x[(img*k.c+grp*k.cg)*k.inSize : (img*k.c+(grp+1)*k.cg)*k.inSize]
	yt := y[(img*k.m+grp*k.mg)*k.outSize+j0:]
	relu, after := k.act.epilogue()
	g := kernels.Gemm{M: k.mg, N: cols, K: k.colRows, C: yt, LDC: k.outSize, Alpha: 1, Threads: threads, Workspace: gws}
	if k.pointwise {
		g.B, g.LDB = xg[j0:], k.inSize
	} else {
		im2colTile(&k.g, k.taps, xg, buf, r0, r1, threads)
		g.B, g.LDB = buf, cols
	}
	if k.packed != nil {
		g.PA = k.packed[grp]
	} else {
		g.A, g.LDA = w[grp*k.mg*k.colRows:], k.colRows
	}
	g.Epilogue.Relu = relu
	if bias != nil {
		g.Epilogue.BiasRow = bias[grp*k.mg : (grp+1)*k.mg]
	}
	g.Run()
	if after {
		for m := 0; m < k.mg; m++ {
			k.act.apply(yt[m*k.outSize : m*k.outSize+cols])
		}
	}
}

// wideTile computes output rows [y0, y1) of every output channel of one
// group of one image with the wide column layout: a GEMM into a scratch
// tile of (y1-y0-1)*pw + out[2] columns, whose real columns are then
// copied to Y (the activation applied to them after).
func (k *convKernel) wideTile(x, w, bias, y, buf, gws []float32, img, grp, y0, y1, threads int) {
	g, l := &k.g, k.wide
	ow, pw := g.out[2], l.pw
	n := l.tileCols(g, y1-y0)
	winN := l.winSize(k.cg)
	col, win, yw := buf[:k.colRows*n], buf[k.colRows*k.ntMax:k.colRows*k.ntMax+winN], buf[k.colRows*k.ntMax+winN:][:k.mg*n]
	xg := x[(img*k.c+grp*k.cg)*k.inSize : (img*k.c+(grp+1)*k.cg)*k.inSize]
	src, base := l.source(g, xg, win, y0, y1, k.cg)
	if threads > 1 {
		parallel.For(threads, k.colRows, max(1, 8192/max(1, n)), func(lo, hi int) {
			l.im2col(src, base, col, n, lo, hi)
		})
	} else {
		l.im2col(src, base, col, n, 0, k.colRows)
	}
	relu, after := k.act.epilogue()
	gm := kernels.Gemm{M: k.mg, N: n, K: k.colRows, B: col, LDB: n, C: yw, LDC: n, Alpha: 1, Threads: threads, Workspace: gws}
	if k.packed != nil {
		gm.PA = k.packed[grp]
	} else {
		gm.A, gm.LDA = w[grp*k.mg*k.colRows:], k.colRows
	}
	gm.Epilogue.Relu = relu
	if bias != nil {
		gm.Epilogue.BiasRow = bias[grp*k.mg : (grp+1)*k.mg]
	}
	gm.Run()
	for m := 0; m < k.mg; m++ {
		dst := y[(img*k.m+grp*k.mg+m)*k.outSize+y0*ow : (img*k.m+grp*k.mg+m)*k.outSize+y1*ow]
		src := yw[m*n : (m+1)*n]
		for r := 0; r < y1-y0; r++ {
			copy(dst[r*ow:(r+1)*ow], src[r*pw:r*pw+ow])
		}
		if after {
			k.act.apply(dst)
		}
	}
}

// validRange returns the output positions [lo, hi) of one axis whose input
// coordinate o*s + off lies in [0, in).
func validRange(out, in, s, off int) (int, int) {
	lo := 0
	if off < 0 {
		lo = ceilDiv(-off, s)
	}
	hi := floorDiv(in-1-off, s) + 1
	hi = max(0, min(hi, out))
	if lo > hi {
		lo = hi
	}
	return lo, hi
}

// colTap is one row of the im2col matrix: the input channel plane it
// reads, the offsets of its kernel tap along each axis, and the output
// positions [lo, hi) of each axis whose input is inside the image.
type colTap struct {
	plane            int // element offset of the channel plane
	offD, offH, offW int
	dlo, dhi         int
	hlo, hhi         int
	wlo, whi         int
}

// makeColTaps precomputes the rows of the im2col matrix of geometry g
// over channels input planes.
func makeColTaps(g *geom3, channels int) []colTap {
	kSize := g.kSize()
	taps := make([]colTap, channels*kSize)
	for r := range taps {
		kr := r % kSize
		kw := kr % g.k[2]
		kh := (kr / g.k[2]) % g.k[1]
		kd := kr / (g.k[2] * g.k[1])
		t := colTap{plane: r / kSize * g.inSize(), offD: kd*g.d[0] - g.pb[0], offH: kh*g.d[1] - g.pb[1], offW: kw*g.d[2] - g.pb[2]}
		t.dlo, t.dhi = validRange(g.out[0], g.in[0], g.s[0], t.offD)
		t.hlo, t.hhi = validRange(g.out[1], g.in[1], g.s[1], t.offH)
		t.wlo, t.whi = validRange(g.out[2], g.in[2], g.s[2], t.offW)
		taps[r] = t
	}
	return taps
}

// im2colTile writes the im2col columns of output rows [r0, r1) (a row is
// one (d, h) position, out[2] outputs wide) into col, a
// [len(taps), (r1-r0)*out[2]] matrix, in parallel over its rows.
func im2colTile(g *geom3, taps []colTap, x, col []float32, r0, r1, threads int) {
	n := (r1 - r0) * g.out[2]
	grain := max(1, 8192/max(n, 1))
	// With unit H and W strides and an output as wide as the input (for
	// example 3x3 kernels with one pixel of padding), a row of col is the
	// input plane shifted by a constant: one copy per plane, then zeros in
	// the border columns.
	shifted := g.s[1] == 1 && g.s[2] == 1 && g.out[2] == g.in[2]
	if threads <= 1 {
		im2colRows(g, taps, x, col, r0, r1, 0, len(taps), shifted)
		return
	}
	parallel.For(threads, len(taps), grain, func(lo, hi int) {
		im2colRows(g, taps, x, col, r0, r1, lo, hi, shifted)
	})
}

// im2colRows writes rows [lo, hi) of an im2col tile (see im2colTile).
func im2colRows(g *geom3, taps []colTap, x, col []float32, r0, r1, lo, hi int, shifted bool) {
	n := (r1 - r0) * g.out[2]
	inSize := g.inSize()
	for r := lo; r < hi; r++ {
		t := &taps[r]
		dst := col[r*n : (r+1)*n]
		xc := x[t.plane : t.plane+inSize]
		if shifted {
			im2colRowShifted(g, t, xc, dst, r0, r1)
		} else {
			im2colRow(g, t, xc, dst, r0, r1)
		}
	}
}

// zero sets every element of s to 0 with an inline loop: the borders it
// is used for are a few elements long, shorter than a call to memclr.
func zero(s []float32) {
	for i := 0; i < len(s); i++ {
		s[i] = 0
	}
}

// im2colRow writes the im2col row of tap t over input plane xc for output
// rows [r0, r1) into dst (any geometry).
func im2colRow(g *geom3, t *colTap, xc, dst []float32, r0, r1 int) {
	ow, oh1, sw, ihw, iw := g.out[2], g.out[1], g.s[2], g.in[1]*g.in[2], g.in[2]
	wlo, whi, offW := t.wlo, t.whi, t.offW
	od, oh := r0/oh1, r0%oh1
	for o := 0; o < (r1-r0)*ow; o += ow {
		row := dst[o : o+ow]
		if od < t.dlo || od >= t.dhi || oh < t.hlo || oh >= t.hhi || wlo >= whi {
			zero(row)
		} else {
			xr := xc[(od*g.s[0]+t.offD)*ihw+(oh*g.s[1]+t.offH)*iw:]
			zero(row[:wlo])
			if sw == 1 {
				copy(row[wlo:whi], xr[wlo+offW:whi+offW])
			} else {
				d := row[wlo:whi]
				src := xr[wlo*sw+offW : (whi-1)*sw+offW+1]
				for i := range d {
					d[i] = src[i*sw]
				}
			}
			zero(row[whi:])
		}
		if oh++; oh == oh1 {
			oh, od = 0, od+1
		}
	}
}

// ---------------------------------------------------------------- wide column layout

// wideLayout is a column layout for stride-1 1-D and 2-D convolutions in
// which the columns of a tile of output rows [y0, y1) are indexed by
// position in the padded input rows: column j is output (y0 + j/pw, j%pw),
// a real output when j%pw < out[2] and a junk column otherwise (the last
// row stops at out[2], so a tile has (y1-y0-1)*pw + out[2] columns). Each
// im2col row is then one contiguous slice of the (padded) input shifted by
// its tap's offset: the column matrix is built with one long copy per row
// instead of one short copy per output row, and col2im is one long
// addition per row. Products over the columns treat junk columns like the
// others; a forward drops them and a backward feeds zeros through them.
//
// Without padding, the slices are read from the input directly; with
// padding, a tile first copies the padded window of input rows it reads
// (winRows rows of pw per channel).
type wideLayout struct {
	pw      int   // padded input width: columns per output row
	padded  bool  // tiles read a padded copy of their input window
	winRows int   // padded input rows of a full tile's window
	offs    []int // per column row (channel, tap): its slice's offset, without the tile's row offset
}

// wideEligible reports whether geometry g can use the wide layout, and
// whether it wastes at most as many junk columns as real ones.
func wideEligible(g *geom3) bool {
	if g.rank > 2 || g.s[1] != 1 || g.s[2] != 1 {
		return false
	}
	for a := 0; a < maxSpatial; a++ {
		if g.pb[a] < 0 || g.pe[a] < 0 {
			return false
		}
	}
	return g.in[2]+g.pb[2]+g.pe[2] <= 2*g.out[2]
}

// newWideLayout prepares the wide layout of geometry g (wideEligible) over
// channels input planes for tiles of at most tileRows output rows.
func newWideLayout(g *geom3, channels, tileRows int) *wideLayout {
	l := &wideLayout{pw: g.in[2] + g.pb[2] + g.pe[2]}
	l.padded = g.pb[1] != 0 || g.pe[1] != 0 || g.pb[2] != 0 || g.pe[2] != 0
	l.winRows = tileRows + (g.k[1]-1)*g.d[1]
	plane, rowLen := g.inSize(), g.in[2]
	if l.padded {
		plane, rowLen = l.winRows*l.pw, l.pw
	}
	kSize := g.kSize()
	l.offs = make([]int, channels*kSize)
	for r := range l.offs {
		kr := r % kSize
		kw, kh := kr%g.k[2], kr/g.k[2]
		l.offs[r] = r/kSize*plane + kh*g.d[1]*rowLen + kw*g.d[2]
	}
	return l
}

// tileCols returns the number of columns of a tile of rows output rows.
func (l *wideLayout) tileCols(g *geom3, rows int) int { return (rows-1)*l.pw + g.out[2] }

// winSize is the float32 count of a padded window over channels planes.
func (l *wideLayout) winSize(channels int) int {
	if !l.padded {
		return 0
	}
	return channels * l.winRows * l.pw
}

// source returns the slice the offsets of a tile starting at output row y0
// index, and the tile's offset in it: the input planes xg themselves, or
// win filled with the padded window of rows the tile reads.
func (l *wideLayout) source(g *geom3, xg, win []float32, y0, y1, channels int) ([]float32, int) {
	if !l.padded {
		return xg, y0 * g.in[2]
	}
	pw, iw, ih := l.pw, g.in[2], g.in[1]
	pl := g.pb[2]
	rows := y1 - y0 + (g.k[1]-1)*g.d[1]
	for c := 0; c < channels; c++ {
		for wr := 0; wr < rows; wr++ {
			dst := win[(c*l.winRows+wr)*pw : (c*l.winRows+wr+1)*pw]
			iy := y0 + wr - g.pb[1]
			if iy < 0 || iy >= ih {
				zero(dst)
				continue
			}
			zero(dst[:pl])
			copy(dst[pl:pl+iw], xg[c*g.inSize()+iy*iw:][:iw])
			zero(dst[pl+iw:])
		}
	}
	return win, 0
}

// addWindow adds the part of a padded window (see source) that lies
// inside the input back into the input planes dxg.
func (l *wideLayout) addWindow(g *geom3, win, dxg []float32, y0, y1, channels int) {
	pw, iw, ih := l.pw, g.in[2], g.in[1]
	pl := g.pb[2]
	rows := y1 - y0 + (g.k[1]-1)*g.d[1]
	for c := 0; c < channels; c++ {
		for wr := 0; wr < rows; wr++ {
			iy := y0 + wr - g.pb[1]
			if iy < 0 || iy >= ih {
				continue
			}
			src := win[(c*l.winRows+wr)*pw+pl:][:iw]
			dst := dxg[c*g.inSize()+iy*iw:][:iw]
			for i, v := range src {
				dst[i] += v
			}
		}
	}
}

// im2col writes rows [lo, hi) of a wide column tile of n columns whose
// slices start at src[offs[r]+base].
func (l *wideLayout) im2col(src []float32, base int, col []float32, n, lo, hi int) {
	for r := lo; r < hi; r++ {
		copy(col[r*n:(r+1)*n], src[l.offs[r]+base:][:n])
	}
}

// col2im adds a wide column tile of n columns into dst (the input planes
// or a padded window, as returned by source), in parallel over channels
// of kSize rows (each channel's rows write only its plane).
func (l *wideLayout) col2im(col, dst []float32, base, n, kSize, threads int) {
	channels := len(l.offs) / kSize
	if threads <= 1 || channels == 1 {
		l.col2imRows(col, dst, base, n, 0, len(l.offs))
		return
	}
	parallel.For(threads, channels, max(1, 8192/max(1, n*kSize)), func(lo, hi int) {
		l.col2imRows(col, dst, base, n, lo*kSize, hi*kSize)
	})
}

// col2imRows adds rows [lo, hi) of a wide column tile into dst.
func (l *wideLayout) col2imRows(col, dst []float32, base, n, lo, hi int) {
	for r := lo; r < hi; r++ {
		s := col[r*n : (r+1)*n]
		d := dst[l.offs[r]+base:][:len(s)]
		for i, v := range s {
			d[i] += v
		}
	}
}

// im2colRowShifted is im2colRow when the H and W strides are 1 and the
// output is as wide as the input: within a plane, element i of the row is
// input element i + offH*W + offW, except in the border columns.
func im2colRowShifted(g *geom3, t *colTap, xc, dst []float32, r0, r1 int) {
	w, oh, ihw := g.out[2], g.out[1], g.in[1]*g.in[2]
	shift := t.offH*w + t.offW
	wlo, whi := t.wlo, t.whi
	for rr := r0; rr < r1; {
		// Rows [a, b) of plane od.
		od, a := rr/oh, rr%oh
		b := min(oh, a+r1-rr)
		seg := dst[(rr-r0)*w : (rr-r0+b-a)*w]
		rr += b - a
		va, vb := max(a, t.hlo), min(b, t.hhi)
		if od < t.dlo || od >= t.dhi || va >= vb || wlo >= whi {
			clear(seg)
			continue
		}
		// Plane-relative flat positions p of rows [va, vb) read input
		// element p+shift; those outside the plane are border columns,
		// zeroed below.
		clear(seg[:(va-a)*w])
		clear(seg[(vb-a)*w:])
		xd := xc[(od*g.s[0]+t.offD)*ihw : (od*g.s[0]+t.offD+1)*ihw]
		lo, hi := max(va*w, -shift), min(vb*w, ihw-shift)
		if lo < hi {
			copy(seg[lo-a*w:hi-a*w], xd[lo+shift:hi+shift])
		}
		if wlo > 0 || whi < w {
			seg := seg[(va-a)*w : (vb-a)*w]
			for base := 0; base < len(seg); base += w {
				for i := base; i < base+wlo; i++ {
					seg[i] = 0
				}
				for i := base + whi; i < base+w; i++ {
					seg[i] = 0
				}
			}
		}
	}
}

// runDepthwise convolves group == C, one input channel per group, directly:
// each output plane (image, channel) is independent.
func (k *convKernel) runDepthwise(x, w, bias, y []float32, threads int) {
	if k.dw2d != nil {
		relu, after := k.act.epilogue()
		for img := 0; img < k.n; img++ {
			yi := y[img*k.m*k.outSize : (img+1)*k.m*k.outSize]
			kernels.DepthwiseConv2D(k.dw2d, x[img*k.c*k.inSize:(img+1)*k.c*k.inSize], w, bias, relu, yi, threads)
			if after {
				biasAct(yi, k.m, k.m, k.outSize, nil, k.act, threads)
			}
		}
		return
	}
	g := &k.g
	planes := k.n * k.m
	work := k.outSize * k.kSize
	grain := max(1, (1<<15)/max(work, 1))
	parallel.For(threads, planes, grain, func(lo, hi int) {
		for p := lo; p < hi; p++ {
			img, oc := p/k.m, p%k.m
			ic := oc / k.mg
			xc := x[(img*k.c+ic)*k.inSize : (img*k.c+ic+1)*k.inSize]
			yc := y[p*k.outSize : (p+1)*k.outSize]
			wc := w[oc*k.kSize : (oc+1)*k.kSize]
			b := float32(0)
			if bias != nil {
				b = bias[oc]
			}
			for i := range yc {
				yc[i] = b
			}
			depthwisePlane(g, xc, wc, yc)
			k.act.apply(yc)
		}
	})
}

// depthwisePlane accumulates the convolution of one input plane with one
// kernel into one output plane.
func depthwisePlane(g *geom3, xc, wc, yc []float32) {
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
				wv := wc[(kd*g.k[1]+kh)*g.k[2]+kw]
				for od := dlo; od < dhi; od++ {
					xd := xc[(od*g.s[0]+offD)*ihw:]
					yd := yc[od*ohw:]
					for oh := hlo; oh < hhi; oh++ {
						xr := xd[(oh*g.s[1]+offH)*g.in[2]:]
						yr := yd[oh*g.out[2] : (oh+1)*g.out[2]]
						if g.s[2] == 1 {
							xs := xr[wlo+offW : whi+offW]
							ys := yr[wlo:whi]
							for i, v := range xs {
								ys[i] += wv * v
							}
						} else {
							for ow := wlo; ow < whi; ow++ {
								yr[ow] += wv * xr[ow*g.s[2]+offW]
							}
						}
					}
				}
			}
		}
	}
}

// ---------------------------------------------------------------- ConvTranspose

// convTransposeKernel is a compiled N-D transposed convolution: per image
// and group a GEMM (W^T * X) into a column buffer, then col2im scatters the
// columns into the output, in parallel over output channels.
type convTransposeKernel struct {
	g                  geom3 // in: X's spatial sizes, out: Y's
	n, c, m            int
	group, cg, mg      int
	inSize, outSize    int
	kSize, colRows     int // colRows = mg*kSize
	w, bias            []float32
	packed             []*kernels.PackedA // per group W_g^T, when the weights are constant
	hasBias, constBias bool
	act                fusedAct
}

func compileConvTranspose(n *Node, in []ValueMeta) (Kernel, []ValueMeta, error) {
	if err := checkFloat("X", in[0]); err != nil {
		return nil, nil, err
	}
	if err := checkFloat("W", in[1]); err != nil {
		return nil, nil, err
	}
	xs, ws := in[0].Shape, in[1].Shape
	if len(xs) < 3 {
		return nil, nil, fmt.Errorf("X must be [N C spatial...], got shape %v", xs)
	}
	if len(ws) != len(xs) {
		return nil, nil, fmt.Errorf("W of shape %v must have the rank of X %v", ws, xs)
	}
	rank := len(xs) - 2
	g, autoPad, err := windowAttrs(n, rank, ws[2:])
	if err != nil {
		return nil, nil, err
	}
	k := &convTransposeKernel{n: xs[0], c: xs[1], group: int(n.AttrInt("group", 1))}
	if k.group < 1 {
		return nil, nil, fmt.Errorf("group must be positive, got %d", k.group)
	}
	if ws[0] != k.c {
		return nil, nil, fmt.Errorf("input has %d channels, weight expects %d (W is [C_in, C_out/group, kernel...])", k.c, ws[0])
	}
	if k.c%k.group != 0 {
		return nil, nil, fmt.Errorf("input channels %d must be divisible by group %d", k.c, k.group)
	}
	k.cg, k.mg = k.c/k.group, ws[1]
	k.m = k.mg * k.group
	off := maxSpatial - rank
	outPad := n.AttrInts("output_padding", nil)
	if outPad != nil && len(outPad) != rank {
		return nil, nil, fmt.Errorf("output_padding %v has %d values, want %d", outPad, len(outPad), rank)
	}
	outShapeAttr := n.AttrInts("output_shape", nil)
	switch len(outShapeAttr) {
	case 0, rank:
	case rank + 2:
		outShapeAttr = outShapeAttr[2:]
	default:
		return nil, nil, fmt.Errorf("output_shape %v has %d values, want %d", outShapeAttr, len(outShapeAttr), rank)
	}
	for i := 0; i < rank; i++ {
		a := off + i
		g.in[a] = xs[2+i]
		op := 0
		if outPad != nil {
			op = int(outPad[i])
		}
		if op < 0 || op > 1<<20 {
			return nil, nil, fmt.Errorf("output_padding %v is out of range", outPad)
		}
		full := g.s[a]*(g.in[a]-1) + op + (g.k[a]-1)*g.d[a] + 1
		split := func(total int) {
			half := floorDiv(total, 2)
			if autoPad == "SAME_UPPER" {
				g.pb[a], g.pe[a] = half, total-half
			} else {
				g.pb[a], g.pe[a] = total-half, half
			}
		}
		switch {
		case outShapeAttr != nil:
			if outShapeAttr[i] < 1 || outShapeAttr[i] > 1<<30 {
				return nil, nil, fmt.Errorf("output_shape %v is out of range", outShapeAttr)
			}
			split(full - int(outShapeAttr[i]))
		case autoPad == "SAME_UPPER" || autoPad == "SAME_LOWER":
			split(full - g.in[a]*g.s[a])
		case autoPad == "VALID":
			g.pb[a], g.pe[a] = 0, 0
		}
		g.out[a] = full - g.pb[a] - g.pe[a]
		if g.out[a] < 1 {
			return nil, nil, fmt.Errorf("output spatial size would be %d along axis %d (pads %v %v)", g.out[a], 2+i, g.pb[off:], g.pe[off:])
		}
	}
	k.g = g
	if k.act, err = parseFusedAct(n); err != nil {
		return nil, nil, err
	}
	if k.hasBias, k.constBias, k.bias, err = convBias(in, k.m); err != nil {
		return nil, nil, err
	}
	if in[1].Const != nil {
		k.w = in[1].Const.F32
	}
	k.inSize, k.outSize, k.kSize = g.inSize(), g.outSize(), g.kSize()
	k.colRows = k.mg * k.kSize
	if k.w != nil && k.colRows > 0 && k.cg > 0 {
		for grp := 0; grp < k.group; grp++ {
			k.packed = append(k.packed, kernels.PackA(true, k.colRows, k.cg, k.w[grp*k.cg*k.colRows:], k.colRows))
		}
	}
	outShape := append([]int{k.n, k.m}, g.outSpatial()...)
	if err := CheckShape(outShape); err != nil {
		return nil, nil, err
	}
	if err := CheckShape([]int{k.colRows, k.inSize}); err != nil {
		return nil, nil, fmt.Errorf("column buffer: %w", err)
	}
	return k, []ValueMeta{{DType: Float32, Shape: outShape}}, nil
}

// WorkspaceSize covers the column buffer and the GEMM's scratch.
func (k *convTransposeKernel) WorkspaceSize() int {
	g := kernels.Gemm{M: k.colRows, N: k.inSize, K: k.cg, Threads: goruntime.NumCPU()}
	if k.packed != nil {
		g.PA = k.packed[0]
	}
	return k.colRows*k.inSize + g.WorkspaceSize()
}

func (k *convTransposeKernel) MACs() int64 {
	return int64(k.n) * int64(k.c) * int64(k.inSize) * int64(k.colRows)
}

func (k *convTransposeKernel) Run(ctx *ExecContext, in, out []*Tensor) error {
	x, y := in[0].F32, out[0].F32
	w := k.w
	if w == nil {
		w = in[1].F32
	}
	bias := k.bias
	if k.hasBias && !k.constBias {
		bias = in[2].F32
	}
	threads := max(ctx.Threads, 1)
	colN := k.colRows * k.inSize
	if len(ctx.Workspace) < colN {
		return fmt.Errorf("workspace has %d floats, ConvTranspose needs %d", len(ctx.Workspace), colN)
	}
	col, gws := ctx.Workspace[:colN], ctx.Workspace[colN:]
	for img := 0; img < k.n; img++ {
		for grp := 0; grp < k.group; grp++ {
			g := kernels.Gemm{M: k.colRows, N: k.inSize, K: k.cg, B: x[(img*k.c+grp*k.cg)*k.inSize:], LDB: k.inSize,
				C: col, LDC: k.inSize, Alpha: 1, Threads: threads, Workspace: gws}
			if k.packed != nil {
				g.PA = k.packed[grp]
			} else {
				g.TransA, g.A, g.LDA = true, w[grp*k.cg*k.colRows:], k.colRows
			}
			g.Run()
			yg := y[(img*k.m+grp*k.mg)*k.outSize : (img*k.m+(grp+1)*k.mg)*k.outSize]
			var bg []float32
			if bias != nil {
				bg = bias[grp*k.mg : (grp+1)*k.mg]
			}
			k.col2im(col, yg, bg, threads)
		}
	}
	return nil
}

// col2im writes mg output planes of yg: bias, plus every column entry
// scattered to its output position, then the fused activation.
func (k *convTransposeKernel) col2im(col, yg, bias []float32, threads int) {
	g := &k.g
	inSize, outSize, kSize := k.inSize, k.outSize, k.kSize
	ihw, ohw := g.in[1]*g.in[2], g.out[1]*g.out[2]
	grain := max(1, (1<<15)/max(kSize*inSize, 1))
	parallel.For(threads, k.mg, grain, func(lo, hi int) {
		for m := lo; m < hi; m++ {
			yc := yg[m*outSize : (m+1)*outSize]
			b := float32(0)
			if bias != nil {
				b = bias[m]
			}
			for i := range yc {
				yc[i] = b
			}
			for kr := 0; kr < kSize; kr++ {
				kw := kr % g.k[2]
				kh := (kr / g.k[2]) % g.k[1]
				kd := kr / (g.k[2] * g.k[1])
				src := col[(m*kSize+kr)*inSize : (m*kSize+kr+1)*inSize]
				offD := kd*g.d[0] - g.pb[0]
				offH := kh*g.d[1] - g.pb[1]
				offW := kw*g.d[2] - g.pb[2]
				// Input positions i whose output position i*s+off is inside Y.
				dlo, dhi := validRange(g.in[0], g.out[0], g.s[0], offD)
				hlo, hhi := validRange(g.in[1], g.out[1], g.s[1], offH)
				wlo, whi := validRange(g.in[2], g.out[2], g.s[2], offW)
				for id := dlo; id < dhi; id++ {
					yd := yc[(id*g.s[0]+offD)*ohw:]
					sd := src[id*ihw:]
					for ih := hlo; ih < hhi; ih++ {
						yr := yd[(ih*g.s[1]+offH)*g.out[2]:]
						sr := sd[ih*g.in[2] : (ih+1)*g.in[2]]
						if g.s[2] == 1 {
							ys := yr[wlo+offW : whi+offW]
							for i, v := range sr[wlo:whi] {
								ys[i] += v
							}
						} else {
							for iw := wlo; iw < whi; iw++ {
								yr[iw*g.s[2]+offW] += sr[iw]
							}
						}
					}
				}
			}
			k.act.apply(yc)
		}
	})
}

// convBias checks the optional float bias B (input 2) of a Conv or
// ConvTranspose with m output channels: whether there is one, and its
// values when it is a constant.
func convBias(in []ValueMeta, m int) (has, isConst bool, bias []float32, err error) {
	if len(in) <= 2 || in[2].DType == Undefined {
		return false, false, nil, nil
	}
	if err := checkFloat("B", in[2]); err != nil {
		return false, false, nil, err
	}
	if len(in[2].Shape) != 1 || in[2].Shape[0] != m {
		return false, false, nil, fmt.Errorf("bias B must have shape [%d], got %v", m, in[2].Shape)
	}
	if in[2].Const != nil {
		return true, true, in[2].Const.F32, nil
	}
	return true, false, nil, nil
}

// convDims are the batch size and channel counts of a convolution.
type convDims struct {
	n, c, m, group int
	cg, mg         int // channels per group: input, output
}

// check reads them from X [N C spatial...], W [M C/group kernel...] and
// the group attribute, checks that they agree, and returns the window
// geometry with its output sizes and the output shape.
func (d *convDims) check(n *Node, xs, ws []int) (geom3, []int, error) {
	g, autoPad, err := windowAttrs(n, len(xs)-2, ws[2:])
	if err != nil {
		return g, nil, err
	}
	d.n, d.c, d.m, d.group = xs[0], xs[1], ws[0], int(n.AttrInt("group", 1))
	if d.group < 1 {
		return g, nil, fmt.Errorf("group must be positive, got %d", d.group)
	}
	if d.c%d.group != 0 || d.m%d.group != 0 {
		return g, nil, fmt.Errorf("input channels %d and output channels %d must both be divisible by group %d", d.c, d.m, d.group)
	}
	d.cg, d.mg = d.c/d.group, d.m/d.group
	if ws[1] != d.cg {
		return g, nil, fmt.Errorf("input has %d channels, weight expects %d (group %d)", d.c, ws[1]*d.group, d.group)
	}
	if err := forwardGeom(&g, xs[2:], autoPad, false); err != nil {
		return g, nil, err
	}
	outShape := append([]int{d.n, d.m}, g.outSpatial()...)
	if err := CheckShape(outShape); err != nil {
		return g, nil, err
	}
	return g, outShape, nil
}
