package eval

import (
	"encoding/json"
	"math"
	"reflect"
	"strings"
	"sync"
	"testing"
)

func TestRank(t *testing.T) {
	nan := float32(math.NaN())
	for i, tc := range []struct {
		scores []float32
		label  int
		pred   int
		before int
	}{
		{[]float32{0.1, 0.7, 0.2}, 1, 1, 0},
		{[]float32{0.1, 0.7, 0.2}, 0, 1, 2},
		{[]float32{0.1, 0.7, 0.2}, 2, 1, 1},
		{[]float32{1, 1, 1}, 0, 0, 0}, // ties: the lowest index wins
		{[]float32{1, 1, 1}, 2, 0, 2},
		{[]float32{nan, 1, 2}, 2, 2, 0},
		{[]float32{nan, 1, 2}, 0, 2, 2}, // NaN ranks last
		{[]float32{nan, nan}, 1, 0, 1},
		{[]float32{-1}, 0, 0, 0},
	} {
		pred, before := rank(tc.scores, tc.label)
		if pred != tc.pred || before != tc.before {
			t.Errorf("%d: rank(%v, %d) = %d, %d; want %d, %d", i, tc.scores, tc.label, pred, before, tc.pred, tc.before)
		}
	}
}

// TestReportHandComputed checks every metric on a small case worked out by
// hand.
//
// 3 classes, 6 examples, predictions (argmax) and labels:
//
//	label: 0 0 0 1 1 2
//	pred:  0 0 1 1 2 2
//
// Confusion [[2 1 0] [0 1 1] [0 0 1]]. Accuracy 4/6.
// Precision: c0 2/2=1, c1 1/2, c2 1/2. Recall: c0 2/3, c1 1/2, c2 1/1.
// F1: c0 2*(1*2/3)/(5/3)=0.8, c1 0.5, c2 2*(0.5)/(1.5)=2/3.
// Macro P (1+0.5+0.5)/3=2/3, R (2/3+1/2+1)/3=13/18, F1 (0.8+0.5+2/3)/3=59/90.
// Top-5 with 3 classes: every example is a hit.
func TestReportHandComputed(t *testing.T) {
	c, err := NewClassification(3)
	if err != nil {
		t.Fatal(err)
	}
	scores := []float32{
		9, 1, 0, // label 0 -> 0
		5, 2, 1, // label 0 -> 0
		1, 3, 2, // label 0 -> 1
		0, 4, 1, // label 1 -> 1
		0, 1, 4, // label 1 -> 2
		0, 0, 1, // label 2 -> 2
	}
	if err := c.Add(scores, []int{0, 0, 0, 1, 1, 2}); err != nil {
		t.Fatal(err)
	}
	r := c.Report()
	near := func(a, b float64) bool { return math.Abs(a-b) < 1e-12 }
	checks := []struct {
		name      string
		got, want float64
	}{
		{"accuracy", r.Accuracy, 4.0 / 6},
		{"top5", r.Top5Accuracy, 1},
		{"macro precision", r.MacroPrecision, 2.0 / 3},
		{"macro recall", r.MacroRecall, 13.0 / 18},
		{"macro F1", r.MacroF1, 59.0 / 90},
		{"precision 0", r.PerClass[0].Precision, 1},
		{"recall 0", r.PerClass[0].Recall, 2.0 / 3},
		{"F1 0", r.PerClass[0].F1, 0.8},
		{"precision 1", r.PerClass[1].Precision, 0.5},
		{"F1 2", r.PerClass[2].F1, 2.0 / 3},
	}
	for i, ch := range checks {
		if !near(ch.got, ch.want) {
			t.Errorf("%d (%s): %v, want %v", i, ch.name, ch.got, ch.want)
		}
	}
	want := [][]int64{{2, 1, 0}, {0, 1, 1}, {0, 0, 1}}
	if !reflect.DeepEqual(r.ConfusionMatrix, want) {
		t.Errorf("confusion %v, want %v", r.ConfusionMatrix, want)
	}
	if r.NumExamples != 6 || r.NumClasses != 3 || r.PerClass[0].Support != 3 || r.PerClass[1].Predicted != 2 {
		t.Errorf("counts: %+v", r)
	}
}

func TestTop5(t *testing.T) {
	c, _ := NewClassification(7)
	// True class 6 ranks 5th (4 higher scores): a hit. True class 0 ranks
	// 6th: a miss. True class 3 ties with 5 others at the top and has 3
	// lower-index ties before it: a hit.
	err := c.Add([]float32{
		7, 6, 5, 4, 1, 0, 2,
		1, 7, 6, 5, 4, 3, 2,
		1, 1, 1, 1, 1, 1, 0,
	}, []int{6, 0, 3})
	if err != nil {
		t.Fatal(err)
	}
	r := c.Report()
	if r.Top5Accuracy != 2.0/3 || r.Accuracy != 0 {
		t.Errorf("top5 %v accuracy %v, want 2/3 and 0", r.Top5Accuracy, r.Accuracy)
	}
}

func TestMacroSkipsAbsentClasses(t *testing.T) {
	c, _ := NewClassification(4)
	if err := c.AddPredictions([]int{0, 1, 1}, []int{0, 1, 0}); err != nil {
		t.Fatal(err)
	}
	r := c.Report()
	// Classes 2 and 3 never occur: the macro averages are over classes 0, 1.
	// P: c0 1/1, c1 1/2 -> 0.75. R: c0 1/2, c1 1/1 -> 0.75.
	if r.MacroPrecision != 0.75 || r.MacroRecall != 0.75 || r.Top5Accuracy != 2.0/3 {
		t.Errorf("macro P %v R %v top5 %v", r.MacroPrecision, r.MacroRecall, r.Top5Accuracy)
	}
}

func TestClassificationErrors(t *testing.T) {
	if _, err := NewClassification(0); err == nil {
		t.Errorf("0 classes: no error")
	}
	c, _ := NewClassification(2)
	for i, tc := range []struct {
		err  error
		want string
	}{
		{c.Add([]float32{1, 2, 3}, []int{0, 1}), "3 scores for 2 examples of 2 classes (want 4)"},
		{c.Add([]float32{1, 2}, []int{2}), "label 2 of example 0 is outside the 2 classes"},
		{c.Add([]float32{1, 2}, []int{-1}), "label -1"},
		{c.AddPredictions([]int{0}, []int{0, 1}), "1 predictions for 2 labels"},
		{c.AddPredictions([]int{5}, []int{0}), "prediction 5"},
		{c.Merge(mustClassification(t, 3)), "cannot merge results for 3 classes"},
	} {
		if tc.err == nil || !strings.Contains(tc.err.Error(), tc.want) {
			t.Errorf("%d: error %v, want one containing %q", i, tc.err, tc.want)
		}
	}
	if r := c.Report(); r.NumExamples != 0 || r.Accuracy != 0 {
		t.Errorf("failed Adds changed the counts: %+v", r)
	}
}

func mustClassification(t *testing.T, k int) *Classification {
	c, err := NewClassification(k)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestConcurrentAndMergeDeterministic(t *testing.T) {
	const k, n = 10, 1000
	scores := make([]float32, n*k)
	labels := make([]int, n)
	for i := range labels {
		labels[i] = (i * 7) % k
		for j := range k {
			scores[i*k+j] = float32((i*31 + j*17) % 23)
		}
	}
	serial := mustClassification(t, k)
	if err := serial.Add(scores, labels); err != nil {
		t.Fatal(err)
	}
	conc := mustClassification(t, k)
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < n; i += 8 {
				if err := conc.Add(scores[i*k:(i+1)*k], labels[i:i+1]); err != nil {
					t.Error(err)
				}
			}
		}()
	}
	wg.Wait()
	merged := mustClassification(t, k)
	for _, part := range [][2]int{{0, 400}, {400, n}} {
		p := mustClassification(t, k)
		if err := p.Add(scores[part[0]*k:part[1]*k], labels[part[0]:part[1]]); err != nil {
			t.Fatal(err)
		}
		if err := merged.Merge(p); err != nil {
			t.Fatal(err)
		}
	}
	want, _ := json.Marshal(serial.Report())
	for name, c := range map[string]*Classification{"concurrent": conc, "merged": merged} {
		got, _ := json.Marshal(c.Report())
		if string(got) != string(want) {
			t.Errorf("%s report differs from the serial one", name)
		}
	}
}

func TestReportJSONFieldNames(t *testing.T) {
	c := mustClassification(t, 2)
	c.AddPredictions([]int{0, 1}, []int{0, 0})
	b, err := json.Marshal(c.Report())
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"num_examples", "num_classes", "accuracy", "top5_accuracy", "macro_precision",
		"macro_recall", "macro_f1", "per_class", "confusion_matrix"} {
		if _, ok := m[k]; !ok {
			t.Errorf("JSON lacks %q: %s", k, b)
		}
	}
	pc := m["per_class"].([]any)[0].(map[string]any)
	for _, k := range []string{"class", "support", "predicted", "precision", "recall", "f1"} {
		if _, ok := pc[k]; !ok {
			t.Errorf("per_class JSON lacks %q: %s", k, b)
		}
	}
	var sb strings.Builder
	if err := c.Report().WriteText(&sb); err != nil || !strings.Contains(sb.String(), "accuracy        0.5000") {
		t.Errorf("WriteText: %v\n%s", err, sb.String())
	}
}
