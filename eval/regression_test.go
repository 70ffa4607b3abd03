package eval

import (
	"context"
	"encoding/json"
	"math"
	"strings"
	"testing"

	"github.com/compressml/compress/data"
	rt "github.com/compressml/compress/runtime"
)

// The reference values were computed once with scikit-learn 1.2.1
// (mean_squared_error, mean_absolute_error, r2_score) on the same numbers.
var (
	regTargets = []float32{3, -0.5, 2, 1.5, 7, 2, 4, 4}
	regPreds   = []float32{2.5, 0, 0, 2, 8, 2, 4, 5}
)

func TestRegressionMetrics(t *testing.T) {
	near := func(a, b float64) bool { return math.Abs(a-b) < 1e-12 }
	r, err := NewRegression(2)
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Add(regPreds[:4], regTargets[:4]); err != nil {
		t.Fatal(err)
	}
	if err := r.Add(regPreds[4:], regTargets[4:]); err != nil {
		t.Fatal(err)
	}
	rep := r.Report()
	for i, c := range []struct {
		name      string
		got, want float64
	}{
		{"mse", rep.MSE, 0.84375},
		{"rmse", rep.RMSE, math.Sqrt(0.84375)},
		{"mae", rep.MAE, 0.6875},
		{"r2", rep.R2, 0.7393292682926829},
		{"mse 0", rep.PerOutput[0].MSE, 1.3125},
		{"r2 0", rep.PerOutput[0].R2, 0.625},
		{"r2 1", rep.PerOutput[1].R2, 0.8536585365853658},
	} {
		if !near(c.got, c.want) {
			t.Errorf("%d (%s): %v, want %v", i, c.name, c.got, c.want)
		}
	}
	if rep.NumExamples != 4 || rep.NumOutputs != 2 {
		t.Errorf("counts %+v", rep)
	}
	b, _ := json.Marshal(rep)
	for _, k := range []string{`"mse":`, `"mae":`, `"r2":`, `"rmse":`, `"num_examples":4`, `"per_output":[`} {
		if !strings.Contains(string(b), k) {
			t.Errorf("JSON lacks %s: %s", k, b)
		}
	}
	var sb strings.Builder
	rep.WriteText(&sb)
	if !strings.Contains(sb.String(), "R2              0.7393") {
		t.Errorf("text:\n%s", sb.String())
	}
}

func TestRegressionEdgeCases(t *testing.T) {
	// Constant targets: R2 is 1 for a perfect fit, 0 otherwise.
	r, _ := NewRegression(1)
	r.Add([]float32{2, 2}, []float32{2, 2})
	if rep := r.Report(); rep.R2 != 1 || rep.MSE != 0 || rep.PerOutput != nil {
		t.Errorf("perfect constant fit: %+v", rep)
	}
	r, _ = NewRegression(1)
	r.Add([]float32{1, 3}, []float32{2, 2})
	if rep := r.Report(); rep.R2 != 0 || rep.MSE != 1 {
		t.Errorf("constant targets: %+v", rep)
	}
	for i, tc := range []struct {
		pred, target []float32
		want         string
	}{
		{[]float32{1}, []float32{1, 2}, "1 predictions for 2 targets"},
		{[]float32{float32(math.NaN())}, []float32{1}, "prediction 0 of example 0 is NaN"},
		{[]float32{1}, []float32{float32(math.Inf(1))}, "target 0 of example 0 is +Inf"},
	} {
		r, _ := NewRegression(1)
		if err := r.Add(tc.pred, tc.target); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%d: error %v, want %q", i, err, tc.want)
		}
	}
	if _, err := NewRegression(0); err == nil {
		t.Errorf("NewRegression(0): no error")
	}
}

func TestRegress(t *testing.T) {
	// Examples [pred0, pred1, 0, 0]; the model returns the first two
	// features.
	x := rt.New(rt.Float32, 4, 4)
	for i := range 4 {
		x.F32[i*4], x.F32[i*4+1] = regPreds[2*i], regPreds[2*i+1]
	}
	ds, err := data.NewRegression("reg", x, rt.FromFloat32(regTargets, 4, 2))
	if err != nil {
		t.Fatal(err)
	}
	for _, batch := range []int{-1, 3} {
		ex, err := rt.NewExecutor(gemmGraph(batch, 2), rt.Options{Threads: 1})
		if err != nil {
			t.Fatal(err)
		}
		rep, err := Regress(context.Background(), ex, ds, Options{BatchSize: 3})
		if err != nil {
			t.Fatal(err)
		}
		if rep.NumExamples != 4 || math.Abs(rep.MSE-0.84375) > 1e-12 || math.Abs(rep.R2-0.7393292682926829) > 1e-12 {
			t.Errorf("batch %d: %+v", batch, rep)
		}
	}
	// Errors: a classification data set, a model with the wrong number of
	// outputs.
	ex, _ := rt.NewExecutor(gemmGraph(-1, 3), rt.Options{Threads: 1})
	if _, err := Regress(context.Background(), ex, ds, Options{}); err == nil || !strings.Contains(err.Error(), "must hold 2 float32 value(s) per example") {
		t.Errorf("wrong outputs: %v", err)
	}
	cls := tinyData(t, []int{0}, []int{0})
	if _, err := Regress(context.Background(), ex, cls, Options{}); err == nil || !strings.Contains(err.Error(), "has class labels, not regression targets") {
		t.Errorf("classification data: %v", err)
	}
}
