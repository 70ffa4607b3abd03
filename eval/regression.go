package eval

import (
	"context"
	"fmt"
	"io"
	"math"
	"strings"
	"sync"
	"text/tabwriter"

	"github.com/compressml/compress/data"
	rt "github.com/compressml/compress/runtime"
)

// Regression accumulates predictions and targets of a regression model with
// a fixed number of outputs per example. Its methods are safe for
// concurrent use; Add calls made in the same order give bit-identical
// reports.
type Regression struct {
	mu      sync.Mutex
	outputs int
	pred    []float64
	target  []float64
}

// NewRegression returns an empty accumulator for outputs values per example.
func NewRegression(outputs int) (*Regression, error) {
	if outputs < 1 {
		return nil, fmt.Errorf("a regression model needs at least one output per example, not %d", outputs)
	}
	return &Regression{outputs: outputs}, nil
}

// Add records a batch: pred and target each hold Outputs() values per
// example. Non-finite values are an error naming the example.
func (r *Regression) Add(pred, target []float32) error {
	if len(pred) != len(target) || len(pred)%r.outputs != 0 {
		return fmt.Errorf("%d predictions for %d targets (%d per example)", len(pred), len(target), r.outputs)
	}
	for i := range pred {
		if p := float64(pred[i]); math.IsNaN(p) || math.IsInf(p, 0) {
			return fmt.Errorf("prediction %d of example %d is %v", i%r.outputs, i/r.outputs, p)
		}
		if t := float64(target[i]); math.IsNaN(t) || math.IsInf(t, 0) {
			return fmt.Errorf("target %d of example %d is %v; fix the data", i%r.outputs, i/r.outputs, t)
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	for i := range pred {
		r.pred = append(r.pred, float64(pred[i]))
		r.target = append(r.target, float64(target[i]))
	}
	return nil
}

// Outputs is the number of values per example.
func (r *Regression) Outputs() int { return r.outputs }

// RegressionMetrics are the error measures of one output (or all).
type RegressionMetrics struct {
	// MSE is the mean squared error, RMSE its square root, MAE the mean
	// absolute error.
	MSE  float64 `json:"mse"`
	RMSE float64 `json:"rmse"`
	MAE  float64 `json:"mae"`
	// R2 is the coefficient of determination 1 - SS_res/SS_tot; when the
	// targets are constant it is 1 for a perfect fit and 0 otherwise
	// (scikit-learn's r2_score with force_finite).
	R2 float64 `json:"r2"`
}

// RegressionReport is the result of evaluating a regression model. Field
// names in JSON are stable.
type RegressionReport struct {
	NumExamples int64 `json:"num_examples"`
	NumOutputs  int   `json:"num_outputs"`
	// The metrics over every output: MSE and MAE averaged over all values,
	// R2 the mean of the outputs' R2 (scikit-learn's uniform_average).
	RegressionMetrics
	// PerOutput holds each output's metrics when there are several.
	PerOutput []RegressionMetrics `json:"per_output,omitempty"`
}

// Report computes the metrics of the values so far.
func (r *Regression) Report() *RegressionReport {
	r.mu.Lock()
	defer r.mu.Unlock()
	k := r.outputs
	n := len(r.pred) / k
	rep := &RegressionReport{NumExamples: int64(n), NumOutputs: k}
	if n == 0 {
		return rep
	}
	var sse, sae, r2sum float64
	for j := range k {
		var mean, se, ae float64
		for i := range n {
			mean += r.target[i*k+j]
		}
		mean /= float64(n)
		var tot float64
		for i := range n {
			t, p := r.target[i*k+j], r.pred[i*k+j]
			d := t - p
			se += d * d
			ae += math.Abs(d)
			tot += (t - mean) * (t - mean)
		}
		m := RegressionMetrics{MSE: se / float64(n), MAE: ae / float64(n)}
		m.RMSE = math.Sqrt(m.MSE)
		switch {
		case tot > 0:
			m.R2 = 1 - se/tot
		case se == 0:
			m.R2 = 1
		}
		sse += se
		sae += ae
		r2sum += m.R2
		if k > 1 {
			rep.PerOutput = append(rep.PerOutput, m)
		}
	}
	rep.MSE = sse / float64(n*k)
	rep.RMSE = math.Sqrt(rep.MSE)
	rep.MAE = sae / float64(n*k)
	rep.R2 = r2sum / float64(k)
	return rep
}

// WriteText writes the report for a terminal.
func (r *RegressionReport) WriteText(w io.Writer) error {
	var b strings.Builder
	fmt.Fprintf(&b, "examples        %d\n", r.NumExamples)
	fmt.Fprintf(&b, "outputs         %d\n", r.NumOutputs)
	fmt.Fprintf(&b, "MSE             %.6g\n", r.MSE)
	fmt.Fprintf(&b, "RMSE            %.6g\n", r.RMSE)
	fmt.Fprintf(&b, "MAE             %.6g\n", r.MAE)
	fmt.Fprintf(&b, "R2              %.4f\n", r.R2)
	if len(r.PerOutput) > 0 {
		b.WriteString("\n")
		tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', tabwriter.AlignRight)
		fmt.Fprintln(tw, "output\tMSE\tRMSE\tMAE\tR2\t")
		for j, m := range r.PerOutput {
			fmt.Fprintf(tw, "%d\t%.6g\t%.6g\t%.6g\t%.4f\t\n", j, m.MSE, m.RMSE, m.MAE, m.R2)
		}
		tw.Flush()
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// Regress runs a regression model over a data set with float targets (see
// data.Targeter; a CSV or NumPy data set opened with the regression task)
// and reports MSE, RMSE, MAE and R2. The model output must hold the
// targets' number of values per example ([B K], or [B] for one). Batches
// run in order, so the result is deterministic.
func Regress(ctx context.Context, ex *rt.Executor, ds data.Dataset, opts Options) (*RegressionReport, error) {
	k, ok := data.HasTargets(ds)
	if !ok {
		return nil, fmt.Errorf("%s has class labels, not regression targets; open it for regression (--task regression) or evaluate it as a classifier", data.Name(ds))
	}
	acc, err := NewRegression(k)
	if err != nil {
		return nil, err
	}
	err = forEachBatch(ctx, ex, ds, opts, func(bi int, b *data.Batch, y *rt.Tensor, rows int, outName string) error {
		n := len(b.Labels)
		batchOK := len(y.Shape) > 0 && y.Shape[0] == rows || rows == 1
		if y.DType != rt.Float32 || !batchOK || y.Len() != rows*k {
			return fmt.Errorf("model output %q is %v of shape %v; a regression model's output must hold %d float32 value(s) per example ([%d %d])", outName, y.DType, y.Shape, k, rows, k)
		}
		if err := acc.Add(y.F32[:n*k], b.Targets.F32[:n*k]); err != nil {
			return fmt.Errorf("batch %d: %w", bi, err)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return acc.Report(), nil
}
