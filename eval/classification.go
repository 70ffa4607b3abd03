package eval

import (
	"fmt"
	"io"
	"strings"
	"sync"
	"text/tabwriter"
)

// TopK is the k of the top-k accuracy that ClassificationReport reports.
const TopK = 5

// Classification accumulates classification results: a confusion matrix and
// top-k hits, and keeps the scores for ROC-AUC. Its methods are safe for
// concurrent use, and the result does not depend on the order of Add calls.
type Classification struct {
	mu        sync.Mutex
	classes   int
	confusion []int64 // [true*classes + predicted]
	topK      int64
	n         int64
	// The scores and labels of every example, for ROC-AUC (whose value
	// does not depend on their order), and how many examples came without
	// scores (AddPredictions).
	scores   []float32
	labels   []int32
	unscored int64
}

// NewClassification returns an empty accumulator for numClasses classes.
func NewClassification(numClasses int) (*Classification, error) {
	if numClasses < 1 || numClasses > 1<<16 {
		return nil, fmt.Errorf("number of classes %d is outside 1..65536", numClasses)
	}
	return &Classification{classes: numClasses, confusion: make([]int64, numClasses*numClasses)}, nil
}

// NumClasses is the number of classes.
func (c *Classification) NumClasses() int { return c.classes }

// rank returns the predicted class (the first highest score) and how many
// classes rank before the true class (higher score, or equal score and lower
// index, the order argmax uses). NaN scores rank below every number.
func rank(scores []float32, label int) (pred, before int) {
	less := func(a, b float32) bool { // a ranks below b
		if a != a { // NaN
			return b == b
		}
		return a < b
	}
	for j, s := range scores {
		if less(scores[pred], s) {
			pred = j
		}
		if j != label && (less(scores[label], s) || (j < label && !less(s, scores[label]))) {
			before++
		}
	}
	return pred, before
}

// Add records a batch: scores holds len(labels) rows of NumClasses() scores
// (logits or probabilities; only their order matters), labels the true
// classes.
func (c *Classification) Add(scores []float32, labels []int) error {
	if len(scores) != len(labels)*c.classes {
		return fmt.Errorf("%d scores for %d examples of %d classes (want %d)", len(scores), len(labels), c.classes, len(labels)*c.classes)
	}
	for i, l := range labels {
		if l < 0 || l >= c.classes {
			return fmt.Errorf("label %d of example %d is outside the %d classes the model scores", l, i, c.classes)
		}
	}
	preds := make([]int, len(labels))
	hits := int64(0)
	for i, l := range labels {
		p, before := rank(scores[i*c.classes:(i+1)*c.classes], l)
		preds[i] = p
		if before < TopK {
			hits++
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for i, l := range labels {
		c.confusion[l*c.classes+preds[i]]++
		c.labels = append(c.labels, int32(l))
	}
	c.scores = append(c.scores, scores...)
	c.topK += hits
	c.n += int64(len(labels))
	return nil
}

// AddPredictions records predicted classes directly (no top-k information:
// a prediction counts as a top-k hit only when it is right).
func (c *Classification) AddPredictions(preds, labels []int) error {
	if len(preds) != len(labels) {
		return fmt.Errorf("%d predictions for %d labels", len(preds), len(labels))
	}
	for i := range labels {
		if labels[i] < 0 || labels[i] >= c.classes || preds[i] < 0 || preds[i] >= c.classes {
			return fmt.Errorf("example %d: label %d or prediction %d is outside the %d classes", i, labels[i], preds[i], c.classes)
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for i, l := range labels {
		c.confusion[l*c.classes+preds[i]]++
		if preds[i] == l {
			c.topK++
		}
	}
	c.n += int64(len(labels))
	c.unscored += int64(len(labels))
	return nil
}

// Merge adds o's counts to c (both must have the same number of classes).
func (c *Classification) Merge(o *Classification) error {
	if o.classes != c.classes {
		return fmt.Errorf("cannot merge results for %d classes into results for %d", o.classes, c.classes)
	}
	o.mu.Lock()
	conf, topK, n := append([]int64{}, o.confusion...), o.topK, o.n
	scores, labels, unscored := append([]float32{}, o.scores...), append([]int32{}, o.labels...), o.unscored
	o.mu.Unlock()
	c.mu.Lock()
	defer c.mu.Unlock()
	for i, v := range conf {
		c.confusion[i] += v
	}
	c.topK += topK
	c.n += n
	c.scores = append(c.scores, scores...)
	c.labels = append(c.labels, labels...)
	c.unscored += unscored
	return nil
}

// ClassMetrics are the metrics of one class.
type ClassMetrics struct {
	Class     int     `json:"class"`
	Support   int64   `json:"support"`   // examples of this class
	Predicted int64   `json:"predicted"` // examples predicted as this class
	Precision float64 `json:"precision"`
	Recall    float64 `json:"recall"`
	F1        float64 `json:"f1"`
	// ROCAUC is the one-vs-rest area under the ROC curve of this class's
	// score; absent when undefined (no example, or only examples, of the
	// class, or predictions recorded without scores).
	ROCAUC *float64 `json:"roc_auc,omitempty"`
}

// ClassificationReport is the result of evaluating a classifier. Field
// names in JSON are stable.
type ClassificationReport struct {
	NumExamples int64 `json:"num_examples"`
	NumClasses  int   `json:"num_classes"`
	// Accuracy is the fraction of examples whose highest score is the true class.
	Accuracy float64 `json:"accuracy"`
	// Top5Accuracy is the fraction whose true class is among the 5 highest
	// scores (ties broken by class index, as for Accuracy).
	Top5Accuracy float64 `json:"top5_accuracy"`
	// Macro averages are unweighted means over the classes that occur as a
	// label or a prediction (scikit-learn's default).
	MacroPrecision float64 `json:"macro_precision"`
	MacroRecall    float64 `json:"macro_recall"`
	MacroF1        float64 `json:"macro_f1"`
	// ROCAUC is the area under the ROC curve: for two classes the binary
	// area of class 1's score (the softmax probability of class 1), for
	// more the mean of the one-vs-rest areas of the classes where it is
	// defined (macro average, scores being softmax probabilities). Null when
	// undefined: a single class present, or predictions without scores.
	// See ROCAUC for the exact definition (scikit-learn's).
	ROCAUC *float64 `json:"roc_auc"`
	// PerClass holds one entry per class.
	PerClass []ClassMetrics `json:"per_class"`
	// ConfusionMatrix[t][p] counts examples of true class t predicted as p.
	ConfusionMatrix [][]int64 `json:"confusion_matrix"`
}

// ratio is a/b, or 0 when b is 0 (scikit-learn's zero_division=0).
func ratio(a, b int64) float64 {
	if b == 0 {
		return 0
	}
	return float64(a) / float64(b)
}

// Report computes the metrics from the counts so far.
func (c *Classification) Report() *ClassificationReport {
	c.mu.Lock()
	defer c.mu.Unlock()
	k := c.classes
	r := &ClassificationReport{NumExamples: c.n, NumClasses: k, Top5Accuracy: ratio(c.topK, c.n)}
	r.ConfusionMatrix = make([][]int64, k)
	var correct int64
	predicted := make([]int64, k)
	for t := range k {
		r.ConfusionMatrix[t] = append([]int64{}, c.confusion[t*k:(t+1)*k]...)
		correct += c.confusion[t*k+t]
		for p := range k {
			predicted[p] += c.confusion[t*k+p]
		}
	}
	r.Accuracy = ratio(correct, c.n)
	present := 0
	for t := range k {
		var support int64
		for _, v := range r.ConfusionMatrix[t] {
			support += v
		}
		tp := c.confusion[t*k+t]
		m := ClassMetrics{Class: t, Support: support, Predicted: predicted[t],
			Precision: ratio(tp, predicted[t]), Recall: ratio(tp, support)}
		if m.Precision+m.Recall > 0 {
			m.F1 = 2 * m.Precision * m.Recall / (m.Precision + m.Recall)
		}
		r.PerClass = append(r.PerClass, m)
		if support > 0 || predicted[t] > 0 {
			present++
			r.MacroPrecision += m.Precision
			r.MacroRecall += m.Recall
			r.MacroF1 += m.F1
		}
	}
	if present > 0 {
		r.MacroPrecision /= float64(present)
		r.MacroRecall /= float64(present)
		r.MacroF1 /= float64(present)
	}
	if c.unscored == 0 {
		var per []*float64
		r.ROCAUC, per = classAUC(c.scores, c.labels, k)
		for t := range per {
			r.PerClass[t].ROCAUC = per[t]
		}
	}
	return r
}

// WriteText writes the report as a human-readable summary: the headline
// metrics, the per-class table and the confusion matrix.
func (r *ClassificationReport) WriteText(w io.Writer) error {
	var b strings.Builder
	fmt.Fprintf(&b, "examples        %d\n", r.NumExamples)
	fmt.Fprintf(&b, "accuracy        %.4f\n", r.Accuracy)
	fmt.Fprintf(&b, "top-%d accuracy  %.4f\n", TopK, r.Top5Accuracy)
	fmt.Fprintf(&b, "macro precision %.4f  recall %.4f  F1 %.4f\n", r.MacroPrecision, r.MacroRecall, r.MacroF1)
	if r.ROCAUC != nil {
		kind := "one-vs-rest macro"
		if r.NumClasses == 2 {
			kind = "binary, class 1"
		}
		fmt.Fprintf(&b, "ROC-AUC         %.4f (%s)\n", *r.ROCAUC, kind)
	}
	b.WriteString("\n")
	auc := func(v *float64) string {
		if v == nil {
			return "-"
		}
		return fmt.Sprintf("%.4f", *v)
	}
	tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "class\tsupport\tprecision\trecall\tF1\tROC-AUC\t")
	for _, m := range r.PerClass {
		fmt.Fprintf(tw, "%d\t%d\t%.4f\t%.4f\t%.4f\t%s\t\n", m.Class, m.Support, m.Precision, m.Recall, m.F1, auc(m.ROCAUC))
	}
	tw.Flush()
	b.WriteString("\nconfusion matrix (rows: true class, columns: predicted class)\n")
	tw = tabwriter.NewWriter(&b, 0, 0, 1, ' ', tabwriter.AlignRight)
	fmt.Fprint(tw, "\t")
	for p := range r.NumClasses {
		fmt.Fprintf(tw, "%d\t", p)
	}
	fmt.Fprintln(tw)
	for t, row := range r.ConfusionMatrix {
		fmt.Fprintf(tw, "%d\t", t)
		for _, v := range row {
			fmt.Fprintf(tw, "%d\t", v)
		}
		fmt.Fprintln(tw)
	}
	tw.Flush()
	_, err := io.WriteString(w, b.String())
	return err
}
