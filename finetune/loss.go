package finetune

import (
	"fmt"
	"math"

	rt "github.com/compressml/compress/runtime"
)

// Loss turns a batch of model outputs and targets into a scalar loss (the
// batch mean) and the gradient of that loss with respect to the outputs.
type Loss interface {
	// Eval writes dL/doutput into grad (same shape as out) and returns L.
	// labels holds one class per example; targets (for regression losses)
	// holds one row of values per example. Either may be nil when unused.
	Eval(out *rt.Tensor, labels []int, targets []float32, grad *rt.Tensor) (float64, error)
}

// CrossEntropy is softmax cross-entropy over the last axis of logits
// [B, C], with optional label smoothing and per-class weights, computed as
// PyTorch's F.cross_entropy(logits, labels, weight, label_smoothing=s)
// with the mean reduction:
//
//	loss_i = (1-s) * w[y_i] * -log p_i[y_i]  +  s/C * sum_j w[j] * -log p_i[j]
//	loss   = sum_i loss_i / sum_i w[y_i]
//
// Without weights (w = 1) this is the cross-entropy against the smoothed
// target that puts 1-s+s/C on the label and s/C on every other class.
type CrossEntropy struct {
	LabelSmoothing float64
	ClassWeights   []float64
}

// Eval implements Loss.
func (l CrossEntropy) Eval(out *rt.Tensor, labels []int, _ []float32, grad *rt.Tensor) (float64, error) {
	if out.Rank() != 2 {
		return 0, fmt.Errorf("cross-entropy needs logits of shape [batch, classes], got %v", out.Shape)
	}
	b, c := out.Shape[0], out.Shape[1]
	if len(labels) != b {
		return 0, fmt.Errorf("cross-entropy: %d labels for a batch of %d", len(labels), b)
	}
	if l.ClassWeights != nil && len(l.ClassWeights) != c {
		return 0, fmt.Errorf("cross-entropy: %d class weights for %d classes", len(l.ClassWeights), c)
	}
	for j, w := range l.ClassWeights {
		if w < 0 || math.IsNaN(w) || math.IsInf(w, 0) {
			return 0, fmt.Errorf("cross-entropy: class weight %d is %g; weights must be finite and not negative", j, w)
		}
	}
	s := l.LabelSmoothing
	if s < 0 || s >= 1 || math.IsNaN(s) {
		return 0, fmt.Errorf("label smoothing %g: must be in [0, 1)", s)
	}
	weight := func(j int) float64 {
		if l.ClassWeights == nil {
			return 1
		}
		return l.ClassWeights[j]
	}
	probs := make([]float64, c)
	coef := make([]float64, c) // c_j: the loss of the row is sum_j c_j * -log p_j
	total, wsum := 0.0, 0.0
	for i := 0; i < b; i++ {
		y := labels[i]
		if y < 0 || y >= c {
			return 0, fmt.Errorf("label %d of example %d is outside [0, %d): the model has %d outputs; use --num-classes to replace its head", y, i, c, c)
		}
		wsum += weight(y)
		row := out.F32[i*c : (i+1)*c]
		mx := math.Inf(-1)
		for _, v := range row {
			mx = math.Max(mx, float64(v))
		}
		z := 0.0
		for j, v := range row {
			probs[j] = math.Exp(float64(v) - mx)
			z += probs[j]
		}
		logZ := math.Log(z) + mx
		csum := 0.0
		for j := range coef {
			coef[j] = s / float64(c) * weight(j)
			if j == y {
				coef[j] += (1 - s) * weight(y)
			}
			csum += coef[j]
			if coef[j] != 0 {
				total -= coef[j] * (float64(row[j]) - logZ)
			}
		}
		// d/dz_k sum_j c_j * -log p_j = p_k * sum_j c_j - c_k.
		for j := range probs {
			grad.F32[i*c+j] = float32(probs[j]/z*csum - coef[j])
		}
	}
	if wsum == 0 {
		return 0, fmt.Errorf("cross-entropy: the class weights of this batch sum to zero")
	}
	inv := float32(1 / wsum)
	for i := range grad.F32[:b*c] {
		grad.F32[i] *= inv
	}
	return total / wsum, nil
}

// MSE is the mean squared error over all output values. With labels
// instead of targets, the target of a [B, C] output (C > 1) is the one-hot
// encoding of the label, and that of a [B] or [B, 1] output the label
// itself.
type MSE struct{}

// Eval implements Loss.
func (MSE) Eval(out *rt.Tensor, labels []int, targets []float32, grad *rt.Tensor) (float64, error) {
	n := out.Len()
	if targets == nil && labels != nil {
		var err error
		if targets, err = labelTargets("mse", out, labels); err != nil {
			return 0, err
		}
	}
	if len(targets) != n {
		return 0, fmt.Errorf("mse: %d targets for %d outputs %v", len(targets), n, out.Shape)
	}
	total := 0.0
	scale := 2 / float64(n)
	for i, v := range out.F32 {
		d := float64(v) - float64(targets[i])
		total += d * d
		grad.F32[i] = float32(scale * d)
	}
	return total / float64(n), nil
}

// labelTargets turns class labels into regression targets for out: one-hot
// rows for [B, C] with C > 1, the label values for one output per example.
func labelTargets(who string, out *rt.Tensor, labels []int) ([]float32, error) {
	n := out.Len()
	targets := make([]float32, n)
	if len(labels) == n { // one output per example
		for i, y := range labels {
			targets[i] = float32(y)
		}
		return targets, nil
	}
	if out.Rank() != 2 || out.Shape[0] != len(labels) {
		return nil, fmt.Errorf("%s: %d labels for outputs of shape %v; want [batch] or [batch, classes]", who, len(labels), out.Shape)
	}
	c := out.Shape[1]
	for i, y := range labels {
		if y < 0 || y >= c {
			return nil, fmt.Errorf("%s: label %d of example %d is outside [0, %d): the model has %d outputs; use --num-classes to replace its head", who, y, i, c, c)
		}
		targets[i*c+y] = 1
	}
	return targets, nil
}

// BCEWithLogits is binary cross-entropy on logits (numerically stable),
// averaged over all output values. Targets are in [0, 1]; with labels
// instead, a single-output model takes label 0 or 1 as its target.
type BCEWithLogits struct{}

// Eval implements Loss.
func (BCEWithLogits) Eval(out *rt.Tensor, labels []int, targets []float32, grad *rt.Tensor) (float64, error) {
	n := out.Len()
	if targets == nil {
		if len(labels) != n {
			return 0, fmt.Errorf("bce: %d labels for %d outputs %v (binary cross-entropy with labels needs one output per example)", len(labels), n, out.Shape)
		}
		targets = make([]float32, n)
		for i, y := range labels {
			if y != 0 && y != 1 {
				return 0, fmt.Errorf("bce: label %d of example %d is not 0 or 1", y, i)
			}
			targets[i] = float32(y)
		}
	}
	if len(targets) != n {
		return 0, fmt.Errorf("bce: %d targets for %d outputs", len(targets), n)
	}
	total := 0.0
	for i, v := range out.F32 {
		x, t := float64(v), float64(targets[i])
		// log(1+exp(-|x|)) + max(x,0) - x*t
		total += math.Max(x, 0) - x*t + math.Log1p(math.Exp(-math.Abs(x)))
		sig := 1 / (1 + math.Exp(-x))
		grad.F32[i] = float32((sig - t) / float64(n))
	}
	return total / float64(n), nil
}

// NewLoss returns the loss named "cross-entropy" (or "ce"), "mse" or "bce".
func NewLoss(name string, labelSmoothing float64, classWeights []float64) (Loss, error) {
	switch name {
	case "", "ce", "cross-entropy", "crossentropy":
		return CrossEntropy{LabelSmoothing: labelSmoothing, ClassWeights: classWeights}, nil
	case "mse":
		return MSE{}, nil
	case "bce", "bce-with-logits":
		return BCEWithLogits{}, nil
	}
	return nil, fmt.Errorf("unknown loss %q: use cross-entropy, mse or bce", name)
}
