package quantize

import (
	"fmt"
	"math"
)

// Calibration methods.
const (
	MinMax     = "minmax"
	Percentile = "percentile"
	Entropy    = "entropy"
	MSE        = "mse"
)

// HistBins is the number of histogram bins the Percentile, Entropy and MSE
// methods use.
const HistBins = 2048

// ValidMethod reports an error for an unknown calibration method.
func ValidMethod(m string) error {
	switch m {
	case MinMax, Percentile, Entropy, MSE:
		return nil
	}
	return fmt.Errorf("calibration method %q is unknown; use minmax, percentile, entropy or mse", m)
}

// Observer accumulates the range and value distribution of one tensor over
// calibration batches. Observe first for every batch with Hist false (the
// range), then, for the histogram methods, again with Hist true.
type Observer struct {
	Min, Max float32
	seen     bool
	// Hist counts values over [Min, Max] in HistBins bins; AbsHist counts
	// the non-zero |x| over [0, max(|Min|, |Max|)].
	Hist, AbsHist []float64
}

// Observe adds values: to the range, or to the histograms when hist is set.
func (o *Observer) Observe(x []float32, hist bool) {
	if !hist {
		for _, v := range x {
			if v != v || math.IsInf(float64(v), 0) {
				continue
			}
			if !o.seen {
				o.Min, o.Max, o.seen = v, v, true
			}
			o.Min = min(o.Min, v)
			o.Max = max(o.Max, v)
		}
		return
	}
	if o.Hist == nil {
		o.Hist = make([]float64, HistBins)
		o.AbsHist = make([]float64, HistBins)
	}
	w := float64(o.Max) - float64(o.Min)
	amax := math.Max(math.Abs(float64(o.Min)), math.Abs(float64(o.Max)))
	for _, v := range x {
		if v != v || math.IsInf(float64(v), 0) {
			continue
		}
		if w > 0 {
			o.Hist[binOf(float64(v)-float64(o.Min), w)]++
		} else {
			o.Hist[0]++
		}
		if amax > 0 {
			// Exact zeros (half of a ReLU output) are represented exactly
			// and would dominate the first bin of the KL search.
			if v != 0 {
				o.AbsHist[binOf(math.Abs(float64(v)), amax)]++
			}
		} else {
			o.AbsHist[0]++
		}
	}
}

func binOf(v, width float64) int {
	b := int(v / width * HistBins)
	return min(max(b, 0), HistBins-1)
}

// Range returns the calibrated range [lo, hi] of the observed tensor for a
// method. percentile is the Percentile method's coverage (e.g. 99.99);
// levels is the number of quantisation levels (256 for 8 bits).
func (o *Observer) Range(method string, percentile float64, levels int) (lo, hi float32) {
	lo, hi = o.Min, o.Max
	if method == MinMax || o.Hist == nil || hi <= lo {
		return lo, hi
	}
	switch method {
	case Percentile:
		return o.percentileRange(percentile)
	case Entropy:
		t := float32(entropyThreshold(o.AbsHist, math.Max(math.Abs(float64(lo)), math.Abs(float64(hi))), lo >= 0, levels))
		return max(lo, -t), min(hi, t)
	case MSE:
		return o.mseRange(levels)
	}
	return lo, hi
}

func (o *Observer) percentileRange(p float64) (float32, float32) {
	if p <= 0 || p > 100 {
		p = 99.99
	}
	total := 0.0
	for _, c := range o.Hist {
		total += c
	}
	if total == 0 {
		return o.Min, o.Max
	}
	tail := total * (100 - p) / 100
	if o.Min >= 0 { // one-sided (e.g. after ReLU): clip only the top
		tail *= 2
	}
	width := float64(o.Max-o.Min) / HistBins
	lo, hi := float64(o.Min), float64(o.Max)
	if o.Min < 0 {
		acc := 0.0
		for i, c := range o.Hist {
			acc += c
			if acc > tail/2 {
				lo = float64(o.Min) + float64(i)*width
				break
			}
		}
	}
	acc := 0.0
	for i := HistBins - 1; i >= 0; i-- {
		acc += o.Hist[i]
		if acc > tail/2 {
			hi = float64(o.Min) + float64(i+1)*width
			break
		}
	}
	return float32(lo), float32(hi)
}

// entropyThreshold picks the clipping threshold of |x| that minimises the
// KL divergence between the reference distribution and its quantised
// version (TensorRT's calibration). hist counts |x| over [0, amax].
func entropyThreshold(hist []float64, amax float64, nonNeg bool, levels int) float64 {
	target := levels / 2 // symmetric signed data: 128 levels per side
	if nonNeg {
		target = levels
	}
	nb := len(hist)
	if target >= nb {
		return amax
	}
	width := amax / float64(nb)
	best, bestKL := nb, math.Inf(1)
	p := make([]float64, nb)
	q := make([]float64, nb)
	for i := target; i <= nb; i++ {
		copy(p, hist[:i])
		for _, c := range hist[i:] {
			p[i-1] += c
		}
		// Quantise hist[:i] into target bins, expand back over non-zero bins.
		for j := range q[:i] {
			q[j] = 0
		}
		for b := range target {
			start := b * i / target
			end := (b + 1) * i / target
			sum, nz := 0.0, 0
			for j := start; j < end; j++ {
				sum += hist[j]
				if hist[j] != 0 {
					nz++
				}
			}
			if nz == 0 {
				continue
			}
			for j := start; j < end; j++ {
				if hist[j] != 0 {
					q[j] = sum / float64(nz)
				}
			}
		}
		kl := klDivergence(p[:i], q[:i])
		if kl < bestKL {
			bestKL, best = kl, i
		}
	}
	return (float64(best) + 0.5) * width
}

// klDivergence is KL(p||q) of two unnormalised distributions; bins where p
// is non-zero and q zero get a small smoothing mass.
func klDivergence(p, q []float64) float64 {
	sp, sq := 0.0, 0.0
	for i := range p {
		sp += p[i]
		sq += q[i]
	}
	if sp == 0 || sq == 0 {
		return math.Inf(1)
	}
	kl := 0.0
	for i := range p {
		if p[i] == 0 {
			continue
		}
		pi := p[i] / sp
		qi := q[i] / sq
		if qi == 0 {
			qi = 1e-12
		}
		kl += pi * math.Log(pi/qi)
	}
	return kl
}

// mseRange shrinks the range towards zero and keeps the candidate with the
// smallest expected squared quantisation error over the histogram.
func (o *Observer) mseRange(levels int) (float32, float32) {
	lo0, hi0 := math.Min(float64(o.Min), 0), math.Max(float64(o.Max), 0)
	width := (float64(o.Max) - float64(o.Min)) / HistBins
	bestLo, bestHi, bestErr := lo0, hi0, math.Inf(1)
	for k := 0; k < 100; k++ {
		a := 1 - float64(k)*0.01
		lo, hi := lo0*a, hi0*a
		scale := (hi - lo) / float64(levels-1)
		if scale <= 0 {
			break
		}
		zp := math.Round(-lo / scale)
		e := 0.0
		for i, c := range o.Hist {
			if c == 0 {
				continue
			}
			x := float64(o.Min) + (float64(i)+0.5)*width
			q := math.Min(math.Max(math.Round(x/scale)+zp, 0), float64(levels-1))
			d := x - (q-zp)*scale
			e += c * d * d
		}
		if e < bestErr {
			bestErr, bestLo, bestHi = e, lo, hi
		}
	}
	return float32(bestLo), float32(bestHi)
}

// ActParams returns the scale and zero point of an activation range:
// uint8 asymmetric (zero point in [0, 255]) or, when symmetric, int8 with
// zero point 0. The range is widened to include zero.
func ActParams(lo, hi float32, symmetric bool) (scale float32, zp int) {
	lo, hi = min(lo, 0), max(hi, 0)
	if symmetric {
		a := max(-lo, hi)
		if a == 0 {
			return 1, 0
		}
		return a / 127, 0
	}
	if hi == lo {
		return 1, 0
	}
	scale = (hi - lo) / 255
	zp = int(math.Round(float64(-lo / scale)))
	return scale, min(max(zp, 0), 255)
}

// SQNR returns the signal-to-quantisation-noise ratio in dB of an
// approximation y of x: 10·log10(Σx² / Σ(x-y)²). It is +Inf when y equals
// x and -Inf when x is all zeros and y is not.
func SQNR(x, y []float32) float64 {
	var s, n float64
	for i := range x {
		s += float64(x[i]) * float64(x[i])
		d := float64(x[i]) - float64(y[i])
		n += d * d
	}
	return sqnrOf(s, n)
}

func sqnrOf(s, n float64) float64 {
	if n == 0 {
		return math.Inf(1)
	}
	return 10 * math.Log10(s/n)
}
