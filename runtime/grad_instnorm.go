package runtime

import (
	"fmt"
	"math"

	"github.com/compressml/compress/internal/parallel"
)

// This file holds the backward of InstanceNormalization (ops_norm.go).
//
// Per (image, channel) plane of M spatial elements, with mean and the
// biased variance var of the plane, inv = 1/sqrt(var + eps),
// xhat = (x - mean) * inv and y = scale*xhat + B:
//
//	dB     = sum over planes of the channel of sum(dy)
//	dscale = sum over planes of the channel of sum(dy * xhat)
//	dx     = scale * inv * (dy - sum(dy)/M - xhat * sum(dy*xhat)/M)
//
// where the inner sums run over one plane. The plane statistics are
// recomputed from x with the forward's arithmetic (same sums in the same
// order), so the backward sees the statistics the forward used. Planes are
// independent tasks of parallel.For: each writes only its own slice of dx
// and its own two per-plane sums into scratch allocated at compile time;
// the per-channel gradients of scale and B are then reduced over the
// images in image order, so the result does not depend on the thread
// count. Every sum is accumulated in float64.

// instNormGradKernel is the backward of InstanceNormalization.
type instNormGradKernel struct {
	n, c, inner int
	eps         float64
	// planeSums holds, per plane p, sum(dy) at 2p and sum(dy*xhat) at
	// 2p+1. Tasks write disjoint entries.
	planeSums []float64
	// body is k.planes, bound once at compile time so that a call does not
	// allocate a closure; x, scale, dy and dx are the operands of the
	// current call, cleared when it returns.
	body          func(lo, hi int)
	x, scale, dy  []float32
	dx            []float32
	needParamSums bool
}

func compileInstanceNormGrad(n *Node, in, out []ValueMeta, needGrad []bool) (GradKernel, error) {
	if len(in) < 3 {
		return nil, fmt.Errorf("InstanceNormalization %q: backward needs 3 inputs (input, scale, B), got %d", n.Name, len(in))
	}
	xs := in[0].Shape
	if len(xs) < 3 {
		return nil, fmt.Errorf("InstanceNormalization %q: input must have rank >= 3 ([N C spatial...]), got shape %v", n.Name, xs)
	}
	k := &instNormGradKernel{n: xs[0], c: xs[1], inner: NumElements(xs[2:]), eps: float64(n.AttrFloat("epsilon", 1e-5))}
	for i, name := range []string{"", "scale", "B"} {
		if i == 0 {
			continue
		}
		if len(in[i].Shape) != 1 || in[i].Shape[0] != k.c {
			return nil, fmt.Errorf("InstanceNormalization %q: %s must have shape [%d] (the channels of input %v), got %v",
				n.Name, name, k.c, xs, in[i].Shape)
		}
	}
	k.planeSums = make([]float64, 2*k.n*k.c)
	k.body = k.planes
	return k, nil
}

// Backward adds the gradients of input, scale and B.
func (k *instNormGradKernel) Backward(ctx *ExecContext, in, out, gradOut, gradIn []*Tensor) error {
	if len(gradOut) == 0 || gradOut[0] == nil {
		return nil
	}
	total := k.n * k.c * k.inner
	if len(in) < 3 || in[0] == nil || in[1] == nil {
		return fmt.Errorf("InstanceNormalization backward needs the forward input and scale")
	}
	if len(in[0].F32) != total {
		return gradLenErr("the input", len(in[0].F32), total)
	}
	if len(in[1].F32) != k.c {
		return gradLenErr("scale", len(in[1].F32), k.c)
	}
	if len(gradOut[0].F32) != total {
		return gradLenErr("the output gradient", len(gradOut[0].F32), total)
	}
	var dx, dscale, dbias []float32
	if len(gradIn) > 0 && gradIn[0] != nil {
		if len(gradIn[0].F32) != total {
			return gradLenErr("the gradient of the input", len(gradIn[0].F32), total)
		}
		dx = gradIn[0].F32
	}
	if len(gradIn) > 1 && gradIn[1] != nil {
		if len(gradIn[1].F32) != k.c {
			return gradLenErr("the gradient of scale", len(gradIn[1].F32), k.c)
		}
		dscale = gradIn[1].F32
	}
	if len(gradIn) > 2 && gradIn[2] != nil {
		if len(gradIn[2].F32) != k.c {
			return gradLenErr("the gradient of B", len(gradIn[2].F32), k.c)
		}
		dbias = gradIn[2].F32
	}
	if k.inner == 0 || (dx == nil && dscale == nil && dbias == nil) {
		return nil
	}
	k.x, k.scale, k.dy, k.dx = in[0].F32, in[1].F32, gradOut[0].F32, dx
	k.needParamSums = dscale != nil || dbias != nil
	grain := max(1, 8192/k.inner)
	parallel.For(ctx.Threads, k.n*k.c, grain, k.body)
	k.x, k.scale, k.dy, k.dx = nil, nil, nil, nil
	if !k.needParamSums {
		return nil
	}
	for ch := 0; ch < k.c; ch++ {
		var sy, syx float64
		for img := 0; img < k.n; img++ {
			p := img*k.c + ch
			sy += k.planeSums[2*p]
			syx += k.planeSums[2*p+1]
		}
		if dbias != nil {
			dbias[ch] += float32(sy)
		}
		if dscale != nil {
			dscale[ch] += float32(syx)
		}
	}
	return nil
}

// planes does the backward of planes [lo, hi): it adds the plane's slice
// of dx and records the plane's sum(dy) and sum(dy*xhat).
func (k *instNormGradKernel) planes(lo, hi int) {
	m := float64(k.inner)
	for p := lo; p < hi; p++ {
		xs := k.x[p*k.inner : (p+1)*k.inner]
		gs := k.dy[p*k.inner : (p+1)*k.inner]
		gs = gs[:len(xs)]
		// Statistics exactly as instanceNormKernel.Run computes them.
		var sum float64
		for _, v := range xs {
			sum += float64(v)
		}
		mean := sum / m
		var sq, sy, syd float64
		for i, v := range xs {
			d := float64(v) - mean
			sq += d * d
			g := float64(gs[i])
			sy += g
			syd += float64(g * d)
		}
		variance := sq / m
		inv := 1 / math.Sqrt(variance+k.eps)
		syx := syd * inv // sum(dy * xhat)
		if k.needParamSums {
			k.planeSums[2*p], k.planeSums[2*p+1] = sy, syx
		}
		if k.dx == nil {
			continue
		}
		// dx = a*dy + b*(x - mean) + c in float64.
		a := float64(k.scale[p%k.c]) * inv
		b := -a * inv * syx / m
		c := -a * sy / m
		ds := k.dx[p*k.inner : (p+1)*k.inner]
		ds = ds[:len(xs)]
		for i, v := range xs {
			ds[i] += float32(a*float64(gs[i]) + b*(float64(v)-mean) + c)
		}
	}
}
