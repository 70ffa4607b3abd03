package runtime

import (
	"fmt"
	"math"

	"github.com/compressml/compress/internal/parallel"
)

// This file holds the backward of BatchNormalization (ops_norm.go).
//
// Per channel, with xhat = (x - mean) * inv and inv = 1/sqrt(var + eps),
// y = scale*xhat + B, and N the number of elements of the channel:
//
//	dB     = sum(dy)
//	dscale = sum(dy * xhat)
//
// In inference mode (mean and var are the inputs, constants of the step)
// dx = dy * scale * inv. In training mode mean and var are the batch
// statistics, themselves functions of x, and
//
//	dx = scale * inv * (dy - dB/N - xhat * dscale/N).
//
// The batch statistics are recomputed from x in the same single pass that
// gathers the gradient sums, with the forward's arithmetic (bnStats: sums
// relative to a shift, in the same order), so the backward sees the
// statistics the forward used, bit for bit, and nothing has to survive
// between the two passes in shared scratch. Every sum is accumulated in
// float64 in a fixed order; channels are independent tasks, so the result
// does not depend on the thread count. The running statistics (outputs 1
// and 2) are state, not a differentiable result: their gradients are
// ignored, and the running mean and variance inputs get none (NonDiff).

// bnGradKernel is the backward of BatchNormalization.
type bnGradKernel struct {
	n, c, inner int
	eps         float64
	training    bool
	// Per-channel scratch of the row-wise path (inner == 1, X is [N C]):
	// shift and sums in float64, dx coefficients in float32. Tasks own
	// disjoint channel ranges of it.
	sums []float64
	coef []float32
}

func compileBatchNormGrad(n *Node, in, out []ValueMeta, needGrad []bool) (GradKernel, error) {
	xs := in[0].Shape
	if len(xs) < 2 {
		return nil, fmt.Errorf("X must have rank >= 2 ([N C ...]), got shape %v", xs)
	}
	k := &bnGradKernel{n: xs[0], c: xs[1], inner: NumElements(xs[2:]),
		eps: float64(n.AttrFloat("epsilon", 1e-5)), training: n.AttrInt("training_mode", 0) != 0}
	for i := 1; i < 5; i++ {
		if len(in[i].Shape) != 1 || in[i].Shape[0] != k.c {
			return nil, fmt.Errorf("input %d must have shape [%d] (the channels of X %v), got %v", i, k.c, xs, in[i].Shape)
		}
	}
	if k.inner == 1 {
		k.sums = make([]float64, 5*k.c)
		k.coef = make([]float32, 3*k.c)
	}
	return k, nil
}

// Backward adds the gradients of X, scale and B.
func (k *bnGradKernel) Backward(ctx *ExecContext, in, out, gradOut, gradIn []*Tensor) error {
	if gradOut[0] == nil {
		return nil
	}
	total := k.n * k.c * k.inner
	if len(in[0].F32) != total {
		return gradLenErr("X", len(in[0].F32), total)
	}
	if len(gradOut[0].F32) != total {
		return gradLenErr("the output gradient", len(gradOut[0].F32), total)
	}
	if gradIn[0] != nil && len(gradIn[0].F32) != total {
		return gradLenErr("the gradient of X", len(gradIn[0].F32), total)
	}
	for i := 1; i < 5; i++ {
		if i >= len(in) || in[i] == nil || len(in[i].F32) != k.c {
			return fmt.Errorf("input %d must hold %d channel values", i, k.c)
		}
		if i < 3 && i < len(gradIn) && gradIn[i] != nil && len(gradIn[i].F32) != k.c {
			return gradLenErr(fmt.Sprintf("the gradient of input %d", i), len(gradIn[i].F32), k.c)
		}
	}
	if k.n*k.inner == 0 {
		return nil
	}
	if grain := bnChannelGrain(k.n * k.inner); ctx.Threads <= 1 || k.c <= grain {
		k.channels(0, k.c, in, gradOut[0].F32, gradIn)
	} else {
		parallel.For(ctx.Threads, k.c, grain, func(lo, hi int) { k.channels(lo, hi, in, gradOut[0].F32, gradIn) })
	}
	return nil
}

// channels does the backward of channels [lo, hi).
func (k *bnGradKernel) channels(lo, hi int, in []*Tensor, dy []float32, gradIn []*Tensor) {
	x := in[0].F32
	dx, dscale, dbias := bnGradOutputs(gradIn)
	if k.inner == 1 {
		k.rows(lo, hi, in, dy, dx, dscale, dbias)
		return
	}
	needSums := k.training || dscale != nil || dbias != nil
	for ch := lo; ch < hi; ch++ {
		sh := bnShift(x, k.c, k.inner, ch)
		if !k.training {
			sh = float64(in[3].F32[ch])
		}
		var s1, s2, sy, syx float64
		if needSums {
			s1, s2, sy, syx = k.channelSums(x, dy, ch, sh)
		}
		a, b, c := k.finish(ch, in, sh, s1, s2, sy, syx, dscale, dbias)
		if dx == nil {
			continue
		}
		for img := 0; img < k.n; img++ {
			o := (img*k.c + ch) * k.inner
			gs := dy[o : o+k.inner]
			xs, d := x[o:o+len(gs)], dx[o:o+len(gs)]
			if k.training {
				for i, g := range gs {
					d[i] += a*g + b*xs[i] + c
				}
			} else {
				for i, g := range gs {
					d[i] += a * g
				}
			}
		}
	}
}

// bnGradOutputs returns the gradient slices of X, scale and B (nil where
// none is needed).
func bnGradOutputs(gradIn []*Tensor) (dx, dscale, dbias []float32) {
	if gradIn[0] != nil {
		dx = gradIn[0].F32
	}
	if len(gradIn) > 1 && gradIn[1] != nil {
		dscale = gradIn[1].F32
	}
	if len(gradIn) > 2 && gradIn[2] != nil {
		dbias = gradIn[2].F32
	}
	return dx, dscale, dbias
}

// finish turns the sums of channel ch, taken relative to sh (the shift in
// training mode, the running mean in inference mode), into the gradients
// of scale and B (added to dscale and dbias when not nil) and returns the
// coefficients of dx = a*dy + b*x + c.
func (k *bnGradKernel) finish(ch int, in []*Tensor, sh, s1, s2, sy, syx float64, dscale, dbias []float32) (a, b, c float32) {
	cnt := float64(k.n * k.inner)
	var m, inv, sdyx float64 // sdyx: sum(dy * (x - m))
	if k.training {
		var v float64
		m, v = bnMoments(sh, s1, s2, cnt)
		inv = 1 / math.Sqrt(v+k.eps)
		sdyx = syx - (m-sh)*sy
	} else {
		m = sh
		inv = 1 / math.Sqrt(float64(in[4].F32[ch])+k.eps)
		sdyx = syx
	}
	if dbias != nil {
		dbias[ch] += float32(sy)
	}
	dsc := sdyx * inv // sum(dy * xhat)
	if dscale != nil {
		dscale[ch] += float32(dsc)
	}
	k1 := float64(in[1].F32[ch]) * inv
	if !k.training {
		return float32(k1), 0, 0
	}
	// dx = k1*(dy - dB/N - xhat*dscale/N), the mean folded into the
	// constant in float64.
	bf := -k1 * inv * dsc / cnt
	return float32(k1), float32(bf), float32(-k1*sy/cnt - bf*m)
}

// rows is the backward of channels [lo, hi) of an X of shape [N C]: it
// walks X row by row with one set of float64 sums per channel, in the same
// per-channel order as the channel-wise path and the forward.
func (k *bnGradKernel) rows(lo, hi int, in []*Tensor, dy, dx, dscale, dbias []float32) {
	x, c := in[0].F32, k.c
	sh, s1, s2 := k.sums[lo:hi], k.sums[c+lo:c+hi], k.sums[2*c+lo:2*c+hi]
	sy, syx := k.sums[3*c+lo:3*c+hi], k.sums[4*c+lo:4*c+hi]
	for j := range sh {
		if k.training {
			sh[j] = float64(x[lo+j])
		} else {
			sh[j] = float64(in[3].F32[lo+j])
		}
		s1[j], s2[j], sy[j], syx[j] = 0, 0, 0, 0
	}
	if k.training || dscale != nil || dbias != nil {
		for img := 0; img < k.n; img++ {
			xr, gr := x[img*c+lo:img*c+hi], dy[img*c+lo:img*c+hi]
			gr = gr[:len(xr)]
			for j, v := range xr {
				d, g := float64(v)-sh[j], float64(gr[j])
				s1[j] += d
				s2[j] += float64(d * d)
				sy[j] += g
				syx[j] += float64(g * d)
			}
		}
	}
	ca, cb, cc := k.coef[lo:hi], k.coef[c+lo:c+hi], k.coef[2*c+lo:2*c+hi]
	for j := range ca {
		ca[j], cb[j], cc[j] = k.finish(lo+j, in, sh[j], s1[j], s2[j], sy[j], syx[j], dscale, dbias)
	}
	if dx == nil {
		return
	}
	for img := 0; img < k.n; img++ {
		o := img*c + lo
		gr := dy[o : o+len(ca)]
		xr, d := x[o:o+len(gr)], dx[o:o+len(gr)]
		cb, cc := cb[:len(gr)], cc[:len(gr)]
		for j, g := range gr {
			d[j] += ca[j]*g + cb[j]*xr[j] + cc[j]
		}
	}
}

// channelSums returns, for channel ch, the sums of x-s and (x-s)^2
// (exactly as bnStats accumulates them), of dy, and of dy*(x-s), in
// float64.
func (k *bnGradKernel) channelSums(x, dy []float32, ch int, s float64) (s1, s2, sdy, sdyx float64) {
	for img := 0; img < k.n; img++ {
		o := (img*k.c + ch) * k.inner
		p1, p2, py, pyx := bnPlaneGradStats(x[o:o+k.inner], dy[o:o+k.inner], s)
		s1 += p1
		s2 += p2
		sdy += py
		sdyx += pyx
	}
	return s1, s2, sdy, sdyx
}

// bnPlaneGradStats returns the sums over one plane of x-s and (x-s)^2
// (exactly as bnPlaneStats), dy and dy*(x-s), with two interleaved float64
// accumulators each.
func bnPlaneGradStats(xs, dys []float32, s float64) (s1, s2, sdy, sdyx float64) {
	dys = dys[:len(xs)]
	var a0, a1, q0, q1, g0s, g1s, p0, p1 float64
	i := 0
	for ; i+2 <= len(xs); i += 2 {
		d0, d1 := float64(xs[i])-s, float64(xs[i+1])-s
		g0, g1 := float64(dys[i]), float64(dys[i+1])
		a0 += d0
		a1 += d1
		q0 += float64(d0 * d0)
		q1 += float64(d1 * d1)
		g0s += g0
		g1s += g1
		p0 += float64(g0 * d0)
		p1 += float64(g1 * d1)
	}
	if i < len(xs) {
		d, g := float64(xs[i])-s, float64(dys[i])
		a0 += d
		q0 += float64(d * d)
		g0s += g
		p0 += float64(g * d)
	}
	return a0 + a1, q0 + q1, g0s + g1s, p0 + p1
}
