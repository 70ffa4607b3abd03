package eval

import (
	"errors"
	"fmt"
	"math"
	"sort"
)

// ROCAUC returns the area under the ROC curve of scores for the examples
// marked positive, computed exactly as the Mann-Whitney statistic: the
// probability that a random positive scores above a random negative, ties
// counting one half. This equals the trapezoidal area under the ROC curve
// with one point per distinct score, as scikit-learn's roc_auc_score
// computes it. The result depends only on the multiset of (score, positive)
// pairs, never on their order. NaN scores rank below every number. It is an
// error when there are no positives or no negatives.
func ROCAUC(scores []float64, positive []bool) (float64, error) {
	if len(scores) != len(positive) {
		return 0, fmt.Errorf("%d scores for %d labels", len(scores), len(positive))
	}
	auc, ok := rocAUC(scores, positive)
	if !ok {
		return 0, errors.New("ROC-AUC needs at least one positive and one negative example")
	}
	return auc, nil
}

// rocAUC is ROCAUC without argument checks; ok is false when the area is
// undefined.
func rocAUC(scores []float64, positive []bool) (float64, bool) {
	var nPos, nNeg int64
	for _, p := range positive {
		if p {
			nPos++
		} else {
			nNeg++
		}
	}
	if nPos == 0 || nNeg == 0 {
		return 0, false
	}
	key := func(v float64) float64 {
		if math.IsNaN(v) {
			return math.Inf(-1)
		}
		return v
	}
	idx := make([]int, len(scores))
	for i := range idx {
		idx[i] = i
	}
	sort.Slice(idx, func(a, b int) bool { return key(scores[idx[a]]) < key(scores[idx[b]]) })
	// Sum of the (mid-)ranks of the positives; ranks start at 1. Within a
	// group of equal scores every member gets the group's mean rank, so the
	// sum is exact (halves) and independent of the order inside the group.
	var rankSum float64
	for lo := 0; lo < len(idx); {
		v := key(scores[idx[lo]])
		hi := lo + 1
		for hi < len(idx) && key(scores[idx[hi]]) == v {
			hi++
		}
		var pos int64
		for _, i := range idx[lo:hi] {
			if positive[i] {
				pos++
			}
		}
		mid := float64(lo+1+hi) / 2 // mean of ranks lo+1..hi
		rankSum += float64(pos) * mid
		lo = hi
	}
	u := rankSum - float64(nPos)*float64(nPos+1)/2
	return u / (float64(nPos) * float64(nNeg)), true
}

// probabilities returns the class probabilities of rows of k scores: the
// scores themselves when every row already is a probability distribution
// (values in [0, 1] summing to 1 within 1e-3, e.g. a model ending in
// Softmax), and their softmax otherwise. NaN scores count as -Inf.
func probabilities(scores []float32, k int) []float64 {
	out := make([]float64, len(scores))
	isProb := true
	for r := 0; r+k <= len(scores) && isProb; r += k {
		var sum float64
		for _, v := range scores[r : r+k] {
			if !(v >= 0 && v <= 1) {
				isProb = false
				break
			}
			sum += float64(v)
		}
		if math.Abs(sum-1) > 1e-3 {
			isProb = false
		}
	}
	if isProb {
		for i, v := range scores {
			out[i] = float64(v)
		}
		return out
	}
	for r := 0; r+k <= len(scores); r += k {
		row, p := scores[r:r+k], out[r:r+k]
		m := math.Inf(-1)
		for _, v := range row {
			if v == v && float64(v) > m {
				m = float64(v)
			}
		}
		if math.IsInf(m, 0) { // all NaN or -Inf, or +Inf present
			for j, v := range row {
				if float64(v) == m && !math.IsInf(m, -1) {
					p[j] = 1
				} else {
					p[j] = 0
				}
			}
			continue
		}
		var sum float64
		for j, v := range row {
			if v != v {
				p[j] = 0
				continue
			}
			p[j] = math.Exp(float64(v) - m)
			sum += p[j]
		}
		for j := range p {
			p[j] /= sum
		}
	}
	return out
}

// classAUC computes the one-vs-rest ROC-AUC of every class from rows of k
// scores and their labels; an entry is nil when the class has no positive
// or no negative example. For two classes the headline is class 1's
// (binary ROC-AUC). Its score is the softmax probability of class 1, ranked
// through the margin s1-s0, which orders examples the same way without
// float saturation; class 0's one-vs-rest area is then the same number. For more
// classes each class is scored by its softmax probability (see
// probabilities) and the headline is the mean over the classes whose area
// is defined (macro one-vs-rest). It is nil when no class's area is
// defined.
func classAUC(scores []float32, labels []int32, k int) (headline *float64, per []*float64) {
	if k < 2 || len(labels) == 0 {
		return nil, nil
	}
	n := len(labels)
	var probs []float64
	if k == 2 {
		probs = make([]float64, 2*n)
		for i := range n {
			d := float64(scores[2*i+1]) - float64(scores[2*i])
			probs[2*i], probs[2*i+1] = -d, d
		}
	} else {
		probs = probabilities(scores, k)
	}
	col := make([]float64, n)
	pos := make([]bool, n)
	per = make([]*float64, k)
	var sum float64
	defined := 0
	for c := range k {
		for i := range n {
			col[i] = probs[i*k+c]
			pos[i] = int(labels[i]) == c
		}
		if auc, ok := rocAUC(col, pos); ok {
			per[c] = &auc
			sum += auc
			defined++
		}
	}
	switch {
	case k == 2:
		headline = per[1]
	case defined > 0:
		m := sum / float64(defined)
		headline = &m
	}
	return headline, per
}
