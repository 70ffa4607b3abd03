package eval

import (
	"context"
	"encoding/json"
	"math"
	"math/rand/v2"
	"sort"
	"strings"
	"testing"

	"gonum.org/v1/gonum/integrate"
	"gonum.org/v1/gonum/stat"

	"github.com/compressml/compress/data"
	rt "github.com/compressml/compress/runtime"
)

func TestROCAUCHand(t *testing.T) {
	nan := math.NaN()
	for i, tc := range []struct {
		scores []float64
		pos    []bool
		want   float64
	}{
		// scikit-learn's documentation example.
		{[]float64{0.1, 0.4, 0.35, 0.8}, []bool{false, false, true, true}, 0.75},
		// Ties count one half: positives 0.5, 0.9; negatives 0.5, 0.5:
		// (0.5 + 0.5 + 1 + 1) / 4.
		{[]float64{0.5, 0.5, 0.5, 0.9}, []bool{true, false, false, true}, 0.75},
		{[]float64{1, 2, 3}, []bool{false, true, true}, 1},
		{[]float64{1, 2, 3}, []bool{true, false, false}, 0},
		{[]float64{7, 7, 7, 7}, []bool{true, false, true, false}, 0.5},
		// NaN ranks lowest: the positive NaN is below both negatives.
		{[]float64{nan, 1, 2, 3}, []bool{true, false, false, true}, 0.5},
	} {
		got, err := ROCAUC(tc.scores, tc.pos)
		if err != nil || got != tc.want {
			t.Errorf("%d: ROCAUC = %v (%v), want %v", i, got, err, tc.want)
		}
	}
	if _, err := ROCAUC([]float64{1, 2}, []bool{true, true}); err == nil {
		t.Errorf("no negatives: no error")
	}
	if _, err := ROCAUC([]float64{1}, []bool{true, false}); err == nil {
		t.Errorf("length mismatch: no error")
	}
}

// TestROCAUCAgainstGonum compares the rank formula with the trapezoidal
// area under gonum's ROC curve on random scores with many ties, and checks
// that shuffling the examples does not change a bit.
func TestROCAUCAgainstGonum(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for trial := range 50 {
		n := 2 + r.IntN(200)
		scores := make([]float64, n)
		pos := make([]bool, n)
		classes := make([]bool, n)
		for i := range n {
			scores[i] = float64(r.IntN(1 + trial%10)) // few distinct values: ties
			pos[i] = r.Float64() < 0.3+0.4*scores[i]/10
		}
		pos[0], pos[1] = true, false
		got, err := ROCAUC(scores, pos)
		if err != nil {
			t.Fatal(err)
		}
		// gonum wants scores sorted ascending with their classes.
		idx := make([]int, n)
		for i := range idx {
			idx[i] = i
		}
		sort.SliceStable(idx, func(a, b int) bool { return scores[idx[a]] < scores[idx[b]] })
		sorted := make([]float64, n)
		for i, j := range idx {
			sorted[i], classes[i] = scores[j], pos[j]
		}
		tpr, fpr, _ := stat.ROC(nil, sorted, classes, nil)
		want := integrate.Trapezoidal(fpr, tpr)
		if math.Abs(got-want) > 1e-12 {
			t.Fatalf("trial %d: ROCAUC %v, gonum %v", trial, got, want)
		}
		perm := r.Perm(n)
		s2, p2 := make([]float64, n), make([]bool, n)
		for i, j := range perm {
			s2[i], p2[i] = scores[j], pos[j]
		}
		if again, _ := ROCAUC(s2, p2); again != got {
			t.Fatalf("trial %d: shuffled examples give %v, not %v", trial, again, got)
		}
	}
}

// Reference values below were computed once with scikit-learn 1.2.1
// (roc_auc_score) on the same scores, softmax taken in float64.
func TestClassificationROCAUCSklearn(t *testing.T) {
	near := func(a *float64, b float64) bool { return a != nil && math.Abs(*a-b) < 1e-12 }
	// Multi-class logits with many ties (columns 0 and 2 are often equal).
	var logits []float32
	for i := range 12 {
		for j := range 3 {
			logits = append(logits, float32(float64((i*7+j*3)%5)-0.5*float64(j)+0.1*float64(i)))
		}
	}
	labels := []int{1, 1, 2, 0, 1, 0, 0, 1, 2, 0, 1, 2}
	c := mustClassification(t, 3)
	if err := c.Add(logits, labels); err != nil {
		t.Fatal(err)
	}
	r := c.Report()
	if !near(r.ROCAUC, 0.3637290564373898) {
		t.Errorf("multi-class macro ROC-AUC %v, want 0.3637290564373898", deref(r.ROCAUC))
	}
	for k, want := range []float64{0.421875, 0.42857142857142855, 0.24074074074074076} {
		if !near(r.PerClass[k].ROCAUC, want) {
			t.Errorf("class %d ROC-AUC %v, want %v", k, deref(r.PerClass[k].ROCAUC), want)
		}
	}

	// Scores that already are probabilities are used as they are.
	probs := []float32{0.7, 0.2, 0.1, 0.1, 0.8, 0.1, 0.3, 0.3, 0.4, 0.25, 0.5, 0.25, 0.6, 0.1, 0.3, 0.2, 0.2, 0.6}
	c = mustClassification(t, 3)
	c.Add(probs, []int{0, 2, 2, 1, 0, 1})
	r = c.Report()
	if !near(r.ROCAUC, 2.0/3) || !near(r.PerClass[1].ROCAUC, 0.5625) || !near(r.PerClass[2].ROCAUC, 0.4375) {
		t.Errorf("probabilities: ROC-AUC %v, per class %v %v %v", deref(r.ROCAUC), deref(r.PerClass[0].ROCAUC), deref(r.PerClass[1].ROCAUC), deref(r.PerClass[2].ROCAUC))
	}

	// Binary, two logits: the score is the softmax probability of class 1.
	l2 := []float32{0.2, 1.0, 1.5, 0.3, 0, 0, 2, 2.5, -1, 1, 0.5, 0.4, 3, 1, 0.1, 0.1}
	c = mustClassification(t, 2)
	c.Add(l2, []int{1, 0, 1, 1, 1, 0, 0, 0})
	r = c.Report()
	if !near(r.ROCAUC, 0.96875) || !near(r.PerClass[1].ROCAUC, 0.96875) || !near(r.PerClass[0].ROCAUC, 0.96875) {
		t.Errorf("binary ROC-AUC %v (class 0 %v)", deref(r.ROCAUC), deref(r.PerClass[0].ROCAUC))
	}
	var sb strings.Builder
	r.WriteText(&sb)
	if !strings.Contains(sb.String(), "ROC-AUC         0.9688 (binary, class 1)") {
		t.Errorf("text lacks the ROC-AUC:\n%s", sb.String())
	}
	b, _ := json.Marshal(r)
	if !strings.Contains(string(b), `"roc_auc":0.96875`) {
		t.Errorf("JSON lacks roc_auc: %s", b)
	}
}

func deref(p *float64) any {
	if p == nil {
		return nil
	}
	return *p
}

func TestROCAUCUndefined(t *testing.T) {
	// Only class 0 present: no area for any class of two.
	c := mustClassification(t, 2)
	c.Add([]float32{1, 0, 2, 0}, []int{0, 0})
	if r := c.Report(); r.ROCAUC != nil {
		t.Errorf("one class present: ROC-AUC %v, want undefined", *r.ROCAUC)
	}
	// Three classes, class 2 absent: the macro average skips it.
	c = mustClassification(t, 3)
	c.Add([]float32{2, 1, 0, 1, 2, 0, 2, 0, 1, 0, 2, 1}, []int{0, 1, 0, 1})
	r := c.Report()
	if r.PerClass[2].ROCAUC != nil || r.ROCAUC == nil || *r.ROCAUC != 1 {
		t.Errorf("absent class: macro %v, class 2 %v", deref(r.ROCAUC), deref(r.PerClass[2].ROCAUC))
	}
	// Predictions without scores have no ROC-AUC, also after a merge.
	p := mustClassification(t, 3)
	p.AddPredictions([]int{0}, []int{0})
	c.Merge(p)
	if c.Report().ROCAUC != nil {
		t.Errorf("merged predictions without scores still report a ROC-AUC")
	}
	b, _ := json.Marshal(c.Report())
	if !strings.Contains(string(b), `"roc_auc":null`) {
		t.Errorf("undefined ROC-AUC is not null in JSON: %s", b)
	}
}

func TestClassifySingleLogit(t *testing.T) {
	// The score is feature 0: examples 0..5 with values 200 or j+1 and
	// labels; the logit 200 (class 1) for argmax 0, else 1 (class 1 too,
	// since 1 > 0), so use a negative scale through preprocessing.
	ds := tinyData(t, []int{0, 1, 0, 2, 3, 0}, []int{1, 0, 1, 0, 1, 1})
	ex, err := rt.NewExecutor(gemmGraph(-1, 1), rt.Options{Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	// x - 100: logits 100 for argmax-0 examples, -99 otherwise.
	r, err := Classify(context.Background(), ex, ds, Options{BatchSize: 4, Preprocess: data.Preprocess{Mean: []float32{100}}})
	if err != nil {
		t.Fatal(err)
	}
	// Predictions 1 0 1 0 0 1 against labels 1 0 1 0 1 1: 5 of 6.
	if r.NumClasses != 2 || r.Accuracy != 5.0/6 || r.ROCAUC == nil {
		t.Fatalf("report %+v", r)
	}
	// Positives score 100, 100, -99, 100; negatives -99, -99: 3 of 4 above
	// both, one tied with both: (3*2 + 2*0.5) / 8.
	if *r.ROCAUC != 7.0/8 {
		t.Errorf("ROC-AUC %v, want 7/8", *r.ROCAUC)
	}
}
