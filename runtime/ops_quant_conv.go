package runtime

import (
	"errors"
	"fmt"
	"math"
	goruntime "runtime"

	"github.com/compressml/compress/internal/parallel"
	"github.com/compressml/compress/runtime/kernels"
)

// This file holds the quantised convolutions: QLinearConv (ONNX and
// com.microsoft), ConvInteger, and com.compressml QConv, the fused op
// FuseQDQ makes from a QDQ Conv (QLinearConv's inputs, with y_scale and
// y_zero_point optional for a float32 output, and a fused Relu/Clip).
//
// The geometry (kernel_shape, strides, dilations, pads, auto_pad, group) is
// the float Conv's (geom3, 1 to 3 spatial dimensions). Each (image, group)
// is the integer product of the weights of the group with the columns of
// the input (im2col in uint8, padding with the input's zero point so that
// padded taps contribute nothing), through the shared output stage
// (qStage) per output channel.

func init() {
	for _, dom := range []string{"", "com.microsoft"} {
		Register(OpSpec{Type: "QLinearConv", Domain: dom, MinInputs: 8, MaxInputs: 9, Outputs: 1, Compile: compileQLinearConv})
	}
	Register(OpSpec{Type: "QConv", Domain: FusedDomain, MinInputs: 6, MaxInputs: 10, Outputs: 1, Compile: compileQLinearConv})
	Register(OpSpec{Type: "QConvAdd", Domain: FusedDomain, MinInputs: 14, MaxInputs: 16, Outputs: 1, Compile: compileQConvAdd})
	Register(OpSpec{Type: "ConvInteger", MinInputs: 2, MaxInputs: 4, Outputs: 1, Compile: compileConvInteger})
}

// qconvKernel is a compiled quantised convolution.
type qconvKernel struct {
	g geom3
	convDims
	inSize, outSize   int
	kSize, colRows    int
	xDT               DType
	iX, iXS, iXZ      int
	iW, iWS, iWZ      int
	iYS, iYZ, iB, iFB int
	outKind           qoutKind
	outDT             DType
	act               fusedAct
	actLo, actHi      float32
	wB                []*qmatB // per group, when the weights and their zero points are constant
	dynB              []qmatB  // per group otherwise (rebuilt every run)
	params            qParams  // za is the shifted input zero point; st is per output channel
	constP            bool
	tileRows, tiles   int // output positions per im2col tile; tiles per (image, group)
	slots             int // tiles the workspace lets run concurrently
	taps              []qTap
	fast              *qconvFast // the int8 kernels' path, when it applies
	res               *qResidual // QConvAdd's fused residual Add
}

// qTap is one kernel tap of the im2col: its channel (within the group) and
// offsets along each spatial axis.
type qTap struct {
	plane          int
	offD, offH, oW int
}

func compileQLinearConv(n *Node, in []ValueMeta) (Kernel, []ValueMeta, error) {
	k := &qconvKernel{iX: 0, iXS: 1, iXZ: 2, iW: 3, iWS: 4, iWZ: 5, iYS: 6, iYZ: 7, iB: 8, iFB: -1, outKind: qoutQuant}
	if n.AttrInt("channels_last", 0) != 0 {
		return nil, nil, fmt.Errorf("channels_last=1 is not supported (NCHW only)")
	}
	if n.Domain == FusedDomain {
		k.iFB = 9
		var err error
		if k.act, err = parseFusedAct(n); err != nil {
			return nil, nil, err
		}
		if k.actLo, k.actHi, err = actBounds(k.act); err != nil {
			return nil, nil, err
		}
		if !present(in, k.iYS) {
			k.outKind = qoutFloat
		}
	} else {
		k.actLo, k.actHi, _ = actBounds(fusedAct{})
	}
	return k.compile(n, in)
}

func compileConvInteger(n *Node, in []ValueMeta) (Kernel, []ValueMeta, error) {
	k := &qconvKernel{iX: 0, iXS: -1, iXZ: 2, iW: 1, iWS: -1, iWZ: 3, iYS: -1, iYZ: -1, iB: -1, iFB: -1, outKind: qoutInt32}
	return k.compile(n, in)
}

// present reports whether optional input i (-1: none) was given.
func present(in []ValueMeta, i int) bool {
	return i >= 0 && i < len(in) && in[i].DType != Undefined
}

func (k *qconvKernel) compile(n *Node, in []ValueMeta) (Kernel, []ValueMeta, error) {
	x, w := in[k.iX], in[k.iW]
	if !isQType(x.DType) {
		return nil, nil, fmt.Errorf("x must be int8 or uint8, got %v", x.DType)
	}
	if !isQType(w.DType) {
		return nil, nil, fmt.Errorf("w must be int8 or uint8, got %v", w.DType)
	}
	k.xDT = x.DType
	xs, ws := x.Shape, w.Shape
	if len(xs) < 3 {
		return nil, nil, fmt.Errorf("x must be [N C spatial...], got shape %v", xs)
	}
	if len(ws) != len(xs) {
		return nil, nil, fmt.Errorf("w of shape %v must have the rank of x %v", ws, xs)
	}
	g, outShape, err := k.convDims.check(n, xs, ws)
	if err != nil {
		return nil, nil, err
	}
	k.g = g
	k.inSize, k.outSize, k.kSize = g.inSize(), g.outSize(), g.kSize()
	k.colRows = k.cg * k.kSize
	if err := CheckShape([]int{k.outSize, k.colRows}); err != nil {
		return nil, nil, fmt.Errorf("im2col matrix: %w", err)
	}

	// Parameters.
	if present(in, k.iXZ) {
		if err := checkScalarMeta("x_zero_point", in[k.iXZ], x.DType); err != nil {
			return nil, nil, err
		}
	}
	if err := checkVecMeta("w_zero_point", metaAt(in, k.iWZ), w.DType, k.m, "output channel"); err != nil {
		return nil, nil, err
	}
	if k.outKind != qoutInt32 {
		if err := checkScalarMeta("x_scale", in[k.iXS], Float32); err != nil {
			return nil, nil, err
		}
		if err := checkVecMeta("w_scale", in[k.iWS], Float32, k.m, "output channel"); err != nil {
			return nil, nil, err
		}
	}
	if present(in, k.iB) {
		b := in[k.iB]
		if b.DType != Int32 || len(b.Shape) != 1 || b.Shape[0] != k.m {
			return nil, nil, fmt.Errorf("B must be an int32 vector of %d values (quantised with scale x_scale*w_scale), got %v %v", k.m, b.DType, b.Shape)
		}
	}
	if present(in, k.iFB) {
		if err := checkFloatBias(in[k.iFB], k.m, k.outKind); err != nil {
			return nil, nil, err
		}
	}
	k.outDT = Int32
	switch k.outKind {
	case qoutFloat:
		k.outDT = Float32
	case qoutQuant:
		if err := checkScalarMeta("y_scale", in[k.iYS], Float32); err != nil {
			return nil, nil, err
		}
		k.outDT = Uint8
		if present(in, k.iYZ) {
			if err := checkScalarMeta("y_zero_point", in[k.iYZ], Undefined); err != nil {
				return nil, nil, err
			}
			k.outDT = in[k.iYZ].DType
		}
	}
	k.constP = true
	for _, i := range []int{k.iXS, k.iXZ, k.iWS, k.iWZ, k.iYS, k.iYZ, k.iB, k.iFB} {
		if present(in, i) && in[i].Const == nil {
			k.constP = false
		}
	}
	if k.constP {
		if err := k.setParams(constTensors(in), &k.params); err != nil {
			return nil, nil, err
		}
	}
	if w.Const != nil && (!present(in, k.iWZ) || in[k.iWZ].Const != nil) {
		k.wB = k.packWeights(w.Const, tensorAt(constTensors(in), k.iWZ), nil)
		if k.fast, err = newQConvFast(k); err != nil {
			return nil, nil, err
		}
	} else {
		k.dynB = make([]qmatB, k.group)
	}

	// im2col tiles of whole output positions, about 64 KiB each.
	k.tileRows = max(1, min(k.outSize, (64<<10)/max(1, k.colRows)))
	k.tiles = ceilDiv(max(k.outSize, 1), k.tileRows)
	k.slots = max(1, min(k.n*k.group*k.tiles, goruntime.NumCPU(), 8))
	k.taps = make([]qTap, k.colRows)
	for r := range k.taps {
		kr := r % k.kSize
		kw := kr % g.k[2]
		kh := kr / g.k[2] % g.k[1]
		kd := kr / (g.k[2] * g.k[1])
		k.taps[r] = qTap{plane: r / k.kSize * k.inSize, offD: kd*g.d[0] - g.pb[0], offH: kh*g.d[1] - g.pb[1], oW: kw*g.d[2] - g.pb[2]}
	}
	return k, []ValueMeta{{DType: k.outDT, Shape: outShape}}, nil
}

// packWeights builds the per-group right operands (W_g transposed: K =
// Cg*kernel, N = output channels of the group). dst is reused when non-nil.
func (k *qconvKernel) packWeights(w, wz *Tensor, dst []qmatB) []*qmatB {
	out := make([]*qmatB, k.group)
	for grp := 0; grp < k.group; grp++ {
		var q *qmatB
		if dst != nil {
			q = &dst[grp]
		} else {
			q = &qmatB{}
		}
		var z *Tensor
		if wz != nil {
			z = wz
			if wz.Len() > 1 {
				z = sliceTensor(wz, grp*k.mg, k.mg)
			}
		}
		q.setB(k.colRows, k.mg, w, grp*k.mg*k.colRows, true, z)
		out[grp] = q
	}
	return out
}

// sliceTensor returns elements [off, off+n) of a 1-D int8/uint8 tensor
// (a view).
func sliceTensor(t *Tensor, off, n int) *Tensor {
	s := &Tensor{DType: t.DType, Shape: []int{n}}
	switch t.DType {
	case Int8:
		s.I8 = t.I8[off : off+n]
	case Uint8:
		s.U8 = t.U8[off : off+n]
	}
	return s
}

func (k *qconvKernel) setParams(in []*Tensor, p *qParams) error {
	p.za = scalarZP(tensorAt(in, k.iXZ))
	if k.xDT == Int8 {
		p.za += 128
	}
	st := &p.st
	*st = qStage{kind: k.outKind}
	if b := tensorAt(in, k.iB); b != nil {
		st.bias = b.I32
	}
	if k.outKind == qoutInt32 {
		return nil
	}
	sx := scalarF32(in[k.iXS])
	st.scale = make([]float32, k.m)
	qVecF32(in[k.iWS], k.m, st.scale)
	for j := range st.scale {
		st.scale[j] *= sx
	}
	if k.outKind == qoutFloat {
		st.fLo, st.fHi = k.actLo, k.actHi
		if fb := tensorAt(in, k.iFB); fb != nil {
			st.fbias = fb.F32
		}
		return nil
	}
	ys := scalarF32(in[k.iYS])
	if ys == 0 || ys != ys {
		return fmt.Errorf("y_scale = %g, it must be non-zero", ys)
	}
	for j := range st.scale {
		st.scale[j] /= ys
	}
	st.setQuantOut(k.outDT, ys, scalarZP(tensorAt(in, k.iYZ)), k.actLo, k.actHi)
	return nil
}

// tileBytes is the size of one im2col tile.
func (k *qconvKernel) tileBytes() int { return k.tileRows * k.colRows }

// WorkspaceSize holds one im2col tile per slot.
func (k *qconvKernel) WorkspaceSize() int {
	if k.fast != nil {
		return bytesToFloats(k.fast.scratch(k))
	}
	return bytesToFloats(k.slots * k.tileBytes())
}

// MACs is the number of multiply-accumulates of one run.
func (k *qconvKernel) MACs() int64 {
	return int64(k.n) * int64(k.m) * int64(k.outSize) * int64(k.colRows)
}

func (k *qconvKernel) Run(ctx *ExecContext, in, out []*Tensor) error {
	if k.res != nil {
		return k.runResidual(ctx, in, out)
	}
	return k.runConv(ctx, in, out, nil)
}

// runConv computes the convolution into out[0]. res, when set, is the
// fused residual Add of QConvAdd for the batched kernels: out[0] then
// receives the Add's output, or runConv returns errResidualFallback when
// the batched kernels do not apply (the caller then applies the Add).
func (k *qconvKernel) runConv(ctx *ExecContext, in, out []*Tensor, res *kernels.QConvResidual) error {
	p := &k.params
	if !k.constP {
		p = &qParams{}
		if err := k.setParams(in, p); err != nil {
			return err
		}
	}
	wB := k.wB
	if wB == nil {
		wB = k.packWeights(in[k.iW], tensorAt(in, k.iWZ), k.dynB)
	}
	var x []uint8
	var flip uint8
	if in[k.iX].DType == Uint8 {
		x = in[k.iX].U8
	} else {
		x, flip = asU8(in[k.iX].I8), 0x80
	}
	ws := wsBytes(ctx.Workspace)
	threads := max(ctx.Threads, 1)
	if k.fast != nil {
		if ran, err := k.fast.runBatch(k, p, x, flip, out[0], res, threads); ran || err != nil {
			return err
		}
		if res != nil {
			return errResidualFallback
		}
		if len(ws) < k.fast.scratch(k) {
			return fmt.Errorf("workspace has %d bytes, the convolution needs %d", len(ws), k.fast.scratch(k))
		}
		return k.fast.run(k, p, x, flip, ws, out[0], threads)
	}
	if res != nil {
		return errResidualFallback
	}
	tb := k.tileBytes()
	if len(ws) < tb {
		return fmt.Errorf("workspace has %d bytes, the convolution needs %d", len(ws), tb)
	}
	items := k.n * k.group * k.tiles
	errs := make([]error, items)
	run := func(it int, buf []uint8, threads int) {
		img, rest := it/(k.group*k.tiles), it%(k.group*k.tiles)
		grp, tile := rest/k.tiles, rest%k.tiles
		p0 := tile * k.tileRows
		p1 := min(k.outSize, p0+k.tileRows)
		xg := x[(img*k.c+grp*k.cg)*k.inSize : (img*k.c+(grp+1)*k.cg)*k.inSize]
		k.im2colT(xg, flip, uint8(p.za), p0, p1, buf)
		st := p.st
		if st.scale != nil {
			st.scale = st.scale[grp*k.mg : (grp+1)*k.mg]
		}
		if st.bias != nil {
			st.bias = st.bias[grp*k.mg : (grp+1)*k.mg]
		}
		if st.fbias != nil {
			st.fbias = st.fbias[grp*k.mg : (grp+1)*k.mg]
		}
		d := qDst{t: out[0], off: (img*k.m+grp*k.mg)*k.outSize + p0, ldc: k.outSize, trans: true}
		errs[it] = qgemm(p1-p0, buf, k.colRows, p.za, nil, wB[grp], &st, d, threads)
	}
	if slots := min(threads, k.slots, len(ws)/max(tb, 1)); slots > 1 && items >= slots {
		parallel.For(slots, slots, 1, func(lo, hi int) {
			for s := lo; s < hi; s++ {
				buf := ws[s*tb : (s+1)*tb]
				for it := s * items / slots; it < (s+1)*items/slots; it++ {
					run(it, buf, 1)
				}
			}
		})
	} else {
		for it := 0; it < items; it++ {
			run(it, ws[:tb], threads)
		}
	}
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// im2colT writes the transposed im2col of output positions [p0, p1) of
// one (image, group): row p-p0 holds the colRows input values under the
// kernel taps of output position p (channel-major, then kernel taps), as
// uint8 (int8 input flipped by xor 0x80), pad where a tap is outside the
// input.
func (k *qconvKernel) im2colT(x []uint8, flip, pad uint8, p0, p1 int, dst []uint8) {
	g := &k.g
	oHW, ow := g.out[1]*g.out[2], g.out[2]
	ihw, iw := g.in[1]*g.in[2], g.in[2]
	for p := p0; p < p1; p++ {
		od, oh, ox := p/oHW, p/ow%g.out[1], p%ow
		bd, bh, bw := od*g.s[0], oh*g.s[1], ox*g.s[2]
		row := dst[(p-p0)*k.colRows : (p-p0+1)*k.colRows]
		for r := range row {
			t := &k.taps[r]
			id, ih, iw2 := bd+t.offD, bh+t.offH, bw+t.oW
			if uint(id) < uint(g.in[0]) && uint(ih) < uint(g.in[1]) && uint(iw2) < uint(iw) {
				row[r] = x[t.plane+id*ihw+ih*iw+iw2] ^ flip
			} else {
				row[r] = pad
			}
		}
	}
}

// ---------------------------------------------------------------- QConvAdd

// QConvAdd (com.compressml) is a QConv whose requantised uint8 output q
// feeds a quantised residual Add, the QDQ pattern of a residual block that
// FuseQDQ fuses:
//
//	z = Q(act(DQ(q) + DQ(r)))   (or the float act(DQ(q) + DQ(r)) without z_scale)
//
// Inputs 0-8 are QConv's (y_scale and y_zero_point, the parameters of q,
// required; no float bias), then 9 r (uint8, the output's
// shape), 10 r_scale, 11 r_zero_point, 12 q's DequantizeLinear scale and
// 13 zero point, 14 z_scale and 15 z_zero_point (optional: float output
// without them). Attribute residual_activation: "" or "Relu". All
// parameters are constant: every (q, r) pair maps to one output value,
// computed with the float32 operations of the unfused nodes
// (kernels.QResidualU8, QResidualF32), so the fused op equals the unfused
// graph exactly.

// qResidual is the compiled residual Add of QConvAdd.
type qResidual struct {
	u8  *kernels.QResidualU8  // uint8 output
	f32 *kernels.QResidualF32 // float output
}

// errResidualFallback reports that the batched kernels did not run, so the
// residual must be applied separately.
var errResidualFallback = errors.New("residual not fused")

const (
	qcaR, qcaRS, qcaRZ, qcaQS, qcaQZ, qcaZS, qcaZZ = 9, 10, 11, 12, 13, 14, 15
)

func compileQConvAdd(n *Node, in []ValueMeta) (Kernel, []ValueMeta, error) {
	conv := *n
	conv.Inputs = append(append([]string{}, n.Inputs[:9]...), "")
	kin := append(append([]ValueMeta{}, in[:9]...), ValueMeta{})
	kr, metas, err := compileQLinearConv(&conv, kin)
	if err != nil {
		return nil, nil, err
	}
	k := kr.(*qconvKernel)
	if k.outKind != qoutQuant || k.outDT != Uint8 {
		return nil, nil, fmt.Errorf("QConvAdd: the convolution must be requantised to uint8 (y_scale and a uint8 y_zero_point)")
	}
	r := metaAt(in, qcaR)
	if r.DType != Uint8 || !SameShape(r.Shape, metas[0].Shape) {
		return nil, nil, fmt.Errorf("QConvAdd: the residual must be uint8 of the output shape %v, got %v %v", metas[0].Shape, r.DType, r.Shape)
	}
	scalar := func(i int, name string, dt DType) (float32, int32, error) {
		s, z := metaAt(in, i), metaAt(in, i+1)
		if s.Const == nil || s.DType != Float32 || s.Const.Len() != 1 {
			return 0, 0, fmt.Errorf("QConvAdd: %s scale must be a constant float32 scalar", name)
		}
		v := s.Const.F32[0]
		if v == 0 || v != v || math.IsInf(float64(v), 0) {
			return 0, 0, fmt.Errorf("QConvAdd: %s scale is %g; it must be finite and non-zero", name, v)
		}
		zp := int32(0)
		if z.DType != Undefined {
			if z.Const == nil || z.DType != dt || z.Const.Len() != 1 {
				return 0, 0, fmt.Errorf("QConvAdd: %s zero point must be a constant %v scalar", name, dt)
			}
			zp = scalarZP(z.Const)
		}
		return v, zp, nil
	}
	sr, zr, err := scalar(qcaRS, "residual", Uint8)
	if err != nil {
		return nil, nil, err
	}
	sq, zq, err := scalar(qcaQS, "convolution output", Uint8)
	if err != nil {
		return nil, nil, err
	}
	act := n.AttrString("residual_activation", "")
	if act != "" && act != "Relu" {
		return nil, nil, fmt.Errorf("QConvAdd: residual_activation %q is not supported (\"\" or \"Relu\")", act)
	}
	relu := act == "Relu"
	res := &qResidual{}
	outDT := Float32
	if metaAt(in, qcaZS).DType != Undefined {
		sz, zz, err := scalar(qcaZS, "output", Uint8)
		if err != nil {
			return nil, nil, err
		}
		if res.u8, err = kernels.NewQResidualU8(zq, sq, zr, sr, sz, zz, relu); err != nil {
			return nil, nil, fmt.Errorf("QConvAdd: %w", err)
		}
		outDT = Uint8
	} else {
		if res.f32, err = kernels.NewQResidualF32(zq, sq, zr, sr, relu); err != nil {
			return nil, nil, fmt.Errorf("QConvAdd: %w", err)
		}
	}
	k.res = res
	return k, []ValueMeta{{DType: outDT, Shape: metas[0].Shape}}, nil
}

// runResidual runs QConvAdd: on the batched kernels with the table fused
// into their output, or else the convolution into a temporary uint8
// tensor and the table afterwards.
func (k *qconvKernel) runResidual(ctx *ExecContext, in, out []*Tensor) error {
	r := in[qcaR]
	res := &kernels.QConvResidual{R: r.U8, U8: k.res.u8, F32: k.res.f32}
	err := k.runConv(ctx, in, out, res)
	if err != errResidualFallback {
		return err
	}
	q := New(Uint8, out[0].Shape...)
	if err := k.runConv(ctx, in, []*Tensor{q}, nil); err != nil {
		return err
	}
	for i, v := range q.U8 {
		if k.res.u8 != nil {
			out[0].U8[i] = k.res.u8.Value(v, r.U8[i])
			continue
		}
		out[0].F32[i] = k.res.f32.Value(v, r.U8[i])
	}
	return nil
}
