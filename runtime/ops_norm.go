package runtime

import (
	"fmt"
	"math"

	"github.com/compressml/compress/internal/parallel"
)

// This file holds BatchNormalization (inference and training forms) and
// InstanceNormalization. The backward of BatchNormalization is in
// grad_norm.go.

func init() {
	Register(OpSpec{Type: "BatchNormalization", MinInputs: 5, MaxInputs: 5, Outputs: 3, Compile: compileBatchNorm,
		Grad: compileBatchNormGrad, NonDiff: []int{3, 4}})
	Register(OpSpec{Type: "InstanceNormalization", MinInputs: 3, MaxInputs: 3, Outputs: 1, Compile: compileInstanceNorm, Grad: compileInstanceNormGrad})
}

// batchNormKernel computes y = a[c]*x + b[c] with a = scale/sqrt(var+eps)
// and b = B - mean*a, per channel c (axis 1). In inference mode mean and
// var are the inputs; in training mode (training_mode=1) they are the
// statistics of the batch (population variance), and the optional outputs
// 1 and 2 receive the running statistics
// input*momentum + batch*(1-momentum).
type batchNormKernel struct {
	n, c, inner int
	eps         float32
	a, b        []float32 // precomputed when every parameter is constant (inference)
	training    bool
	momentum    float64
}

func compileBatchNorm(n *Node, in []ValueMeta) (Kernel, []ValueMeta, error) {
	training := n.AttrInt("training_mode", 0) != 0
	if !training {
		for i := 1; i < len(n.Outputs); i++ {
			if n.Outputs[i] != "" {
				return nil, nil, fmt.Errorf("output %d (running mean/var) exists only with training_mode=1", i)
			}
		}
	}
	if err := checkFloat("X", in[0]); err != nil {
		return nil, nil, err
	}
	xs := in[0].Shape
	if len(xs) < 2 {
		return nil, nil, fmt.Errorf("X must have rank >= 2 ([N C ...]), got shape %v", xs)
	}
	k := &batchNormKernel{n: xs[0], c: xs[1], inner: NumElements(xs[2:]), eps: n.AttrFloat("epsilon", 1e-5),
		training: training, momentum: float64(n.AttrFloat("momentum", 0.9))}
	if training && k.n*k.inner == 0 {
		return nil, nil, fmt.Errorf("training_mode=1 needs a non-empty batch, X has shape %v", xs)
	}
	names := [...]string{"", "scale", "B", "input_mean", "input_var"}
	allConst := true
	for i := 1; i < 5; i++ {
		if err := checkFloat(names[i], in[i]); err != nil {
			return nil, nil, err
		}
		if len(in[i].Shape) != 1 || in[i].Shape[0] != k.c {
			return nil, nil, fmt.Errorf("%s must have shape [%d] (the channels of X %v), got %v", names[i], k.c, xs, in[i].Shape)
		}
		if in[i].Const == nil {
			allConst = false
		}
	}
	if allConst && !training {
		k.a, k.b = make([]float32, k.c), make([]float32, k.c)
		bnCoefficients(in[1].Const.F32, in[2].Const.F32, in[3].Const.F32, in[4].Const.F32, k.eps, k.a, k.b)
	}
	out := []ValueMeta{{DType: Float32, Shape: append([]int{}, xs...)}}
	for i := 1; i < len(n.Outputs); i++ {
		out = append(out, ValueMeta{DType: Float32, Shape: []int{k.c}})
	}
	return k, out, nil
}

// bnCoefficients computes the per-channel affine form of batch
// normalisation: a = scale/sqrt(var+eps), b = bias - mean*a.
func bnCoefficients(scale, bias, mean, variance []float32, eps float32, a, b []float32) {
	for c := range a {
		inv := 1 / math.Sqrt(float64(variance[c])+float64(eps))
		av := float64(scale[c]) * inv
		a[c] = float32(av)
		b[c] = float32(float64(bias[c]) - float64(mean[c])*av)
	}
}

func (k *batchNormKernel) WorkspaceSize() int {
	if k.a != nil {
		return 0
	}
	if k.training {
		return 4 * k.c
	}
	return 2 * k.c
}

func (k *batchNormKernel) MACs() int64 { return int64(k.n) * int64(k.c) * int64(k.inner) }

func (k *batchNormKernel) Run(ctx *ExecContext, in, out []*Tensor) error {
	a, b := k.a, k.b
	x, y := in[0].F32, out[0].F32
	if a == nil {
		if len(ctx.Workspace) < k.WorkspaceSize() {
			return fmt.Errorf("workspace has %d floats, BatchNormalization needs %d", len(ctx.Workspace), k.WorkspaceSize())
		}
		a, b = ctx.Workspace[:k.c], ctx.Workspace[k.c:2*k.c]
		mean, variance := in[3].F32, in[4].F32
		if k.training {
			mean, variance = ctx.Workspace[2*k.c:3*k.c], ctx.Workspace[3*k.c:4*k.c]
			k.batchStats(x, mean, variance, ctx.Threads)
			for i, o := range out[1:] {
				if o == nil {
					continue
				}
				run, cur := in[3+i].F32, mean
				if i == 1 {
					cur = variance
				}
				for c := range o.F32 {
					o.F32[c] = float32(float64(run[c])*k.momentum + float64(cur[c])*(1-k.momentum))
				}
			}
		}
		bnCoefficients(in[1].F32, in[2].F32, mean, variance, k.eps, a, b)
	}
	planes := k.n * k.c
	grain := max(1, 8192/max(k.inner, 1))
	parallel.For(ctx.Threads, planes, grain, func(lo, hi int) {
		for p := lo; p < hi; p++ {
			av, bv := a[p%k.c], b[p%k.c]
			xs := x[p*k.inner : (p+1)*k.inner]
			ys := y[p*k.inner : (p+1)*k.inner]
			for i, v := range xs {
				ys[i] = av*v + bv
			}
		}
	})
	return nil
}

// batchStats computes the per-channel mean and population variance of x
// over the batch and spatial axes (bnStats), in parallel over channels.
func (k *batchNormKernel) batchStats(x, mean, variance []float32, threads int) {
	stats := func(lo, hi int) {
		for c := lo; c < hi; c++ {
			m, v := bnStats(x, k.n, k.c, k.inner, c)
			mean[c], variance[c] = float32(m), float32(v)
		}
	}
	if grain := bnChannelGrain(k.n * k.inner); threads <= 1 || k.c <= grain {
		stats(0, k.c)
	} else {
		parallel.For(threads, k.c, grain, stats)
	}
}

// bnChannelGrain is the least number of channels of perChannel elements
// worth a goroutine.
func bnChannelGrain(perChannel int) int { return max(1, (1<<14)/max(perChannel, 1)) }

// bnShift is the value channel ch's sums are taken relative to: its first
// element. Shifting by a value of the data keeps the one-pass variance
// E[(x-s)^2] - E[x-s]^2 accurate (no cancellation against a large mean).
func bnShift(x []float32, c, inner, ch int) float64 { return float64(x[ch*inner]) }

// bnMoments turns shifted sums over cnt elements into the mean and the
// population variance.
func bnMoments(shift, s1, s2, cnt float64) (mean, variance float64) {
	d := s1 / cnt
	return shift + d, max(s2/cnt-d*d, 0)
}

// bnStats returns the mean and population variance of channel ch of x
// ([n c inner], n*inner > 0), in one pass, accumulated in float64 in a
// fixed order: planes by bnPlaneStats, added in image order. The backward
// (bnGradKernel.sums) accumulates the same sums in the same order, so both
// passes see bit-identical statistics.
func bnStats(x []float32, n, c, inner, ch int) (mean, variance float64) {
	sh := bnShift(x, c, inner, ch)
	var s1, s2 float64
	if inner == 1 {
		for img := 0; img < n; img++ {
			d := float64(x[img*c+ch]) - sh
			s1 += d
			s2 += float64(d * d)
		}
	} else {
		for img := 0; img < n; img++ {
			o := (img*c + ch) * inner
			p1, p2 := bnPlaneStats(x[o:o+inner], sh)
			s1 += p1
			s2 += p2
		}
	}
	return bnMoments(sh, s1, s2, float64(n*inner))
}

// bnPlaneStats returns the sums of x-s and (x-s)^2 over xs, with two
// interleaved float64 accumulators each (even and odd elements). Explicit
// conversions keep the compiler from fusing multiply-adds, so that
// bnPlaneGradStats, which follows the same order, gets bit-identical sums.
func bnPlaneStats(xs []float32, s float64) (s1, s2 float64) {
	var a0, a1, q0, q1 float64
	i := 0
	for ; i+2 <= len(xs); i += 2 {
		d0, d1 := float64(xs[i])-s, float64(xs[i+1])-s
		a0 += d0
		a1 += d1
		q0 += float64(d0 * d0)
		q1 += float64(d1 * d1)
	}
	if i < len(xs) {
		d := float64(xs[i]) - s
		a0 += d
		q0 += float64(d * d)
	}
	return a0 + a1, q0 + q1
}

// instanceNormKernel normalises every (image, channel) plane by its own
// mean and variance, then applies the per-channel scale and bias.
type instanceNormKernel struct {
	n, c, inner int
	eps         float64
}

func compileInstanceNorm(n *Node, in []ValueMeta) (Kernel, []ValueMeta, error) {
	if err := checkFloat("input", in[0]); err != nil {
		return nil, nil, err
	}
	xs := in[0].Shape
	if len(xs) < 3 {
		return nil, nil, fmt.Errorf("input must have rank >= 3 ([N C spatial...]), got shape %v", xs)
	}
	k := &instanceNormKernel{n: xs[0], c: xs[1], inner: NumElements(xs[2:]), eps: float64(n.AttrFloat("epsilon", 1e-5))}
	for i, name := range []string{"", "scale", "B"} {
		if i == 0 {
			continue
		}
		if err := checkFloat(name, in[i]); err != nil {
			return nil, nil, err
		}
		if len(in[i].Shape) != 1 || in[i].Shape[0] != k.c {
			return nil, nil, fmt.Errorf("%s must have shape [%d] (the channels of input %v), got %v", name, k.c, xs, in[i].Shape)
		}
	}
	return k, []ValueMeta{{DType: Float32, Shape: append([]int{}, xs...)}}, nil
}

func (k *instanceNormKernel) Run(ctx *ExecContext, in, out []*Tensor) error {
	x, scale, bias, y := in[0].F32, in[1].F32, in[2].F32, out[0].F32
	grain := max(1, 8192/max(k.inner, 1))
	parallel.For(ctx.Threads, k.n*k.c, grain, func(lo, hi int) {
		for p := lo; p < hi; p++ {
			xs := x[p*k.inner : (p+1)*k.inner]
			ys := y[p*k.inner : (p+1)*k.inner]
			var sum float64
			for _, v := range xs {
				sum += float64(v)
			}
			mean := sum / float64(len(xs))
			var sq float64
			for _, v := range xs {
				d := float64(v) - mean
				sq += d * d
			}
			variance := sq / float64(len(xs))
			a := float64(scale[p%k.c]) / math.Sqrt(variance+k.eps)
			b := float64(bias[p%k.c]) - mean*a
			af, bf := float32(a), float32(b)
			for i, v := range xs {
				ys[i] = af*v + bf
			}
		}
	})
	return nil
}
