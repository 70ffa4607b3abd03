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
// [B, C], with optional label smoothing (the target puts 1-s on the label
// and s/C on every class) and per-class weights (the loss of an example is
// scaled by its class's weight and the batch mean divides by the sum of the
// weights, as PyTorch does).
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
	s := l.LabelSmoothing
	if s < 0 || s >= 1 {
		return 0, fmt.Errorf("label smoothing %g: must be in [0, 1)", s)
	}
	probs := make([]float64, c)
	total, wsum := 0.0, 0.0
	for i := 0; i < b; i++ {
		y := labels[i]
		if y < 0 || y >= c {
			return 0, fmt.Errorf("label %d of example %d is outside [0, %d): the model has %d outputs; use --num-classes to replace its head", y, i, c, c)
		}
		w := 1.0
		if l.ClassWeights != nil {
			w = l.ClassWeights[y]
		}
		wsum += w
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
		for j := range probs {
			probs[j] /= z
			t := s / float64(c)
			if j == y {
				t += 1 - s
			}
			if t > 0 {
				total -= w * t * (float64(row[j]) - logZ)
			}
			grad.F32[i*c+j] = float32(w * (probs[j] - t))
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

// MSE is the mean squared error over all output values.
type MSE struct{}

// Eval implements Loss.
func (MSE) Eval(out *rt.Tensor, _ []int, targets []float32, grad *rt.Tensor) (float64, error) {
	n := out.Len()
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
