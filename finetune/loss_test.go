package finetune

import (
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	rt "github.com/compressml/compress/runtime"
)

// Reference losses and gradients below were computed once with PyTorch 1.13
// (Debian's /usr/bin/python3) in float64:
//
//	F.cross_entropy(x, y, weight=w, label_smoothing=s)
//	F.mse_loss(x, t)
//	F.binary_cross_entropy_with_logits(x, t)
//
// followed by .backward() for x.grad, on the tensors lossLogits,
// lossLabels, lossWeights and lossTargets.
var (
	lossLogits  = []float32{1.0, 2.0, 0.5, 0.1, -1.0, 3.0, 0.3, 0.2, -0.4}
	lossLabels  = []int{1, 2, 0}
	lossWeights = []float64{1.0, 2.0, 0.5}
	lossTargets = []float32{0.0, 1.0, 0.5, 1.0, 0.0, 0.25, 0.5, 0.5, 1.0}
)

func TestLossesAgainstPyTorch(t *testing.T) {
	tests := []struct {
		name     string
		loss     Loss
		labels   []int
		targets  []float32
		want     float64
		wantGrad []float64
	}{
		{"cross-entropy", CrossEntropy{}, lossLabels, nil, 0.470401455182,
			[]float64{0.0770746325, -0.12382276, 0.0467481277, 0.0170878686, 0.00568805733, -0.0227759259, -0.194526729, 0.125597409, 0.0689293197}},
		{"cross-entropy label smoothing 0.1", CrossEntropy{LabelSmoothing: 0.1}, lossLabels, nil, 0.583734788516,
			[]float64{0.0659635214, -0.101600538, 0.0356370166, 0.00597675746, -0.00542305378, -0.000553703676, -0.172304507, 0.114486298, 0.0578182086}},
		{"cross-entropy class weights", CrossEntropy{ClassWeights: lossWeights}, lossLabels, nil, 0.52576744005,
			[]float64{0.132127941, -0.212267589, 0.0801396475, 0.00732337224, 0.00243773886, -0.0097611111, -0.166737196, 0.107654922, 0.0590822741}},
		{"cross-entropy class weights and label smoothing 0.2", CrossEntropy{ClassWeights: lossWeights, LabelSmoothing: 0.2}, lossLabels, nil, 0.766122814505,
			[]float64{0.102069661, -0.166007195, 0.063937534, -0.00977134754, -0.0350074355, 0.0447787831, -0.124676055, 0.0731481816, 0.0515278737}},
		{"mse", MSE{}, nil, lossTargets, 1.49583333333,
			[]float64{0.222222222, 0.222222222, 0.0, -0.2, -0.222222222, 0.611111111, -0.0444444444, -0.0666666667, -0.311111111}},
		{"bce with logits", BCEWithLogits{}, nil, lossTargets, 0.859557972017,
			[]float64{0.081228731, -0.0132447691, 0.0136065924, -0.0527800903, 0.0298823802, 0.0780637919, 0.00827139076, 0.00553711081, -0.0665208511}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out := rt.FromFloat32(append([]float32{}, lossLogits...), 3, 3)
			grad := rt.New(rt.Float32, 3, 3)
			got, err := tc.loss.Eval(out, tc.labels, tc.targets, grad)
			if err != nil {
				t.Fatal(err)
			}
			if !approx(got, tc.want, 1e-6) {
				t.Errorf("loss = %.9g, PyTorch gives %.9g", got, tc.want)
			}
			for i, w := range tc.wantGrad {
				if !approx(float64(grad.F32[i]), w, 1e-6) {
					t.Errorf("grad[%d] = %.9g, PyTorch gives %.9g", i, grad.F32[i], w)
				}
			}
		})
	}
}

// TestLossHandValues checks small cases worked out by hand.
func TestLossHandValues(t *testing.T) {
	ln2 := math.Log(2)
	tests := []struct {
		name    string
		loss    Loss
		shape   []int
		out     []float32
		labels  []int
		targets []float32
		want    float64
		grad    []float64
	}{
		// Equal logits: p = 1/2 each, loss ln 2, grad (p - onehot)/B.
		{"ce uniform", CrossEntropy{}, []int{1, 2}, []float32{0, 0}, []int{0}, nil, ln2, []float64{-0.5, 0.5}},
		// Smoothing s=0.5 over 2 classes: target (0.75, 0.25); loss stays ln 2.
		{"ce smoothing", CrossEntropy{LabelSmoothing: 0.5}, []int{1, 2}, []float32{0, 0}, []int{0}, nil, ln2, []float64{-0.25, 0.25}},
		// Weights scale each example and the mean divides by their sum:
		// (3*ln2 + 1*ln2) / 4 = ln 2; grads are w*(p-onehot)/4.
		{"ce weights", CrossEntropy{ClassWeights: []float64{3, 1}}, []int{2, 2}, []float32{0, 0, 0, 0}, []int{0, 1}, nil, ln2,
			[]float64{-0.375, 0.375, 0.125, -0.125}},
		// Mean of squares: ((1)^2 + (-2)^2) / 2 = 2.5; grad 2d/n.
		{"mse targets", MSE{}, []int{2, 1}, []float32{1, 0}, nil, []float32{0, 2}, 2.5, []float64{1, -2}},
		// BCE at logit 0 is ln 2 whatever the target; grad (1/2 - t)/n.
		{"bce zero logits", BCEWithLogits{}, []int{2, 1}, []float32{0, 0}, nil, []float32{1, 0}, ln2, []float64{-0.25, 0.25}},
		// Labels as targets for a single-output model.
		{"bce labels", BCEWithLogits{}, []int{2, 1}, []float32{0, 0}, []int{1, 0}, nil, ln2, []float64{-0.25, 0.25}},
		// Large logits stay finite: log(1+exp(-100)) + 0 ~ 0, and 100 for the wrong target.
		{"bce large logits", BCEWithLogits{}, []int{2, 1}, []float32{100, -100}, nil, []float32{1, 1}, 50, []float64{0, -0.5}},
		// CE with a huge logit gap stays finite: loss 1000/1 for the wrong class.
		{"ce large logits", CrossEntropy{}, []int{1, 2}, []float32{1000, 0}, []int{1}, nil, 1000, []float64{1, -1}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out := rt.FromFloat32(tc.out, tc.shape...)
			grad := rt.New(rt.Float32, tc.shape...)
			got, err := tc.loss.Eval(out, tc.labels, tc.targets, grad)
			if err != nil {
				t.Fatal(err)
			}
			if !approx(got, tc.want, 1e-6) {
				t.Errorf("loss = %.9g, want %.9g", got, tc.want)
			}
			for i, w := range tc.grad {
				if !approx(float64(grad.F32[i]), w, 1e-6) {
					t.Errorf("grad[%d] = %.9g, want %.9g", i, grad.F32[i], w)
				}
			}
		})
	}
}

// TestLossGradientsFiniteDifferences compares every loss's gradient with
// central differences of its value (in float64 from float32 inputs, so a
// step of 1e-2 on values of order 1 gives ~1e-4 accuracy).
func TestLossGradientsFiniteDifferences(t *testing.T) {
	const b, c = 4, 5
	r := rand.New(rand.NewPCG(7, 7))
	logits := make([]float32, b*c)
	for i := range logits {
		logits[i] = float32(2 * r.NormFloat64())
	}
	labels := []int{0, 3, 4, 3}
	targets := make([]float32, b*c)
	for i := range targets {
		targets[i] = float32(r.Float64())
	}
	oneOut := []float32{0.3, -1.2, 2.5, -0.1}
	binLabels := []int{1, 0, 0, 1}
	tests := []struct {
		name    string
		loss    Loss
		shape   []int
		x       []float32
		labels  []int
		targets []float32
	}{
		{"ce", CrossEntropy{}, []int{b, c}, logits, labels, nil},
		{"ce smoothing", CrossEntropy{LabelSmoothing: 0.15}, []int{b, c}, logits, labels, nil},
		{"ce weights", CrossEntropy{ClassWeights: []float64{0.5, 1, 2, 1.5, 0.25}}, []int{b, c}, logits, labels, nil},
		{"ce weights smoothing", CrossEntropy{ClassWeights: []float64{0.5, 1, 2, 1.5, 0.25}, LabelSmoothing: 0.3}, []int{b, c}, logits, labels, nil},
		{"mse", MSE{}, []int{b, c}, logits, nil, targets},
		{"mse labels (one-hot)", MSE{}, []int{b, c}, logits, labels, nil},
		{"bce", BCEWithLogits{}, []int{b, c}, logits, nil, targets},
		{"bce labels", BCEWithLogits{}, []int{b, 1}, oneOut, binLabels, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			eval := func(x []float32) (float64, []float32) {
				out := rt.FromFloat32(append([]float32{}, x...), tc.shape...)
				g := rt.New(rt.Float32, tc.shape...)
				l, err := tc.loss.Eval(out, tc.labels, tc.targets, g)
				if err != nil {
					t.Fatal(err)
				}
				return l, g.F32
			}
			_, grad := eval(tc.x)
			const h = 1e-2
			for i := range tc.x {
				x := append([]float32{}, tc.x...)
				x[i] = tc.x[i] + h
				lp, _ := eval(x)
				x[i] = tc.x[i] - h
				lm, _ := eval(x)
				num := (lp - lm) / float64((tc.x[i]+h)-(tc.x[i]-h)) // the float32 step actually taken
				if math.Abs(num-float64(grad[i])) > 2e-4+1e-3*math.Abs(num) {
					t.Errorf("d loss/d x[%d]: analytic %.6g, finite differences %.6g", i, grad[i], num)
				}
			}
		})
	}
}

func TestLossErrors(t *testing.T) {
	tests := []struct {
		name    string
		loss    Loss
		shape   []int
		labels  []int
		targets []float32
		want    string
	}{
		{"ce rank 1", CrossEntropy{}, []int{3}, []int{0, 1, 2}, nil, "shape [batch, classes]"},
		{"ce label count", CrossEntropy{}, []int{2, 3}, []int{0}, nil, "1 labels for a batch of 2"},
		{"ce label out of range", CrossEntropy{}, []int{2, 3}, []int{0, 3}, nil, "label 3 of example 1"},
		{"ce weight count", CrossEntropy{ClassWeights: []float64{1, 2}}, []int{2, 3}, []int{0, 1}, nil, "2 class weights for 3 classes"},
		{"ce smoothing 1", CrossEntropy{LabelSmoothing: 1}, []int{2, 3}, []int{0, 1}, nil, "label smoothing"},
		{"ce smoothing negative", CrossEntropy{LabelSmoothing: -0.1}, []int{2, 3}, []int{0, 1}, nil, "label smoothing"},
		{"ce zero weights", CrossEntropy{ClassWeights: []float64{0, 1, 1}}, []int{2, 3}, []int{0, 0}, nil, "sum to zero"},
		{"ce negative weight", CrossEntropy{ClassWeights: []float64{-1, 1, 1}}, []int{2, 3}, []int{0, 1}, nil, "negative"},
		{"mse target count", MSE{}, []int{2, 3}, nil, []float32{1, 2}, "2 targets for 6 outputs"},
		{"mse labels for a rank-3 output", MSE{}, []int{2, 3, 1}, []int{0, 1}, nil, "2 labels for outputs of shape [2 3 1]"},
		{"mse label out of range", MSE{}, []int{2, 3}, []int{0, 5}, nil, "label 5 of example 1"},
		{"bce label not binary", BCEWithLogits{}, []int{2, 1}, []int{0, 2}, nil, "not 0 or 1"},
		{"bce labels for many outputs", BCEWithLogits{}, []int{2, 3}, []int{0, 1}, nil, "one output per example"},
		{"bce target count", BCEWithLogits{}, []int{2, 1}, nil, []float32{1}, "1 targets for 2 outputs"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out := rt.New(rt.Float32, tc.shape...)
			grad := rt.New(rt.Float32, tc.shape...)
			_, err := tc.loss.Eval(out, tc.labels, tc.targets, grad)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one containing %q", err, tc.want)
			}
		})
	}
}

func TestNewLoss(t *testing.T) {
	tests := []struct {
		name    string
		want    Loss
		wantErr bool
	}{
		{"", CrossEntropy{LabelSmoothing: 0.1}, false},
		{"ce", CrossEntropy{LabelSmoothing: 0.1}, false},
		{"cross-entropy", CrossEntropy{LabelSmoothing: 0.1}, false},
		{"mse", MSE{}, false},
		{"bce", BCEWithLogits{}, false},
		{"bce-with-logits", BCEWithLogits{}, false},
		{"hinge", nil, true},
	}
	for _, tc := range tests {
		l, err := NewLoss(tc.name, 0.1, nil)
		if (err != nil) != tc.wantErr {
			t.Errorf("NewLoss(%q): error %v", tc.name, err)
			continue
		}
		if err == nil {
			if ce, ok := l.(CrossEntropy); ok {
				if ce.LabelSmoothing != 0.1 {
					t.Errorf("NewLoss(%q) lost the label smoothing", tc.name)
				}
			} else if l != tc.want {
				t.Errorf("NewLoss(%q) = %#v, want %#v", tc.name, l, tc.want)
			}
		}
	}
}
