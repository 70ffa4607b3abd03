package prune

import (
	"fmt"
	"math"
	"slices"
	"sort"

	rt "github.com/compressml/compress/runtime"
)

// Masks holds a keep-mask per parameter: Masks[name][i] is false where
// element i of parameter name is pruned.
type Masks map[string][]bool

// Apply zeroes the pruned elements of g's parameters. It fails when a
// masked parameter is missing or its size changed.
func (m Masks) Apply(g *rt.Graph) error {
	for _, name := range sortedKeys(m) {
		p, ok := g.Params[name]
		if !ok {
			return fmt.Errorf("masked parameter %q is not in the model", name)
		}
		keep := m[name]
		if p.T.DType != rt.Float32 || len(p.T.F32) != len(keep) {
			return fmt.Errorf("masked parameter %q has %d float32 values, its mask %d", name, len(p.T.F32), len(keep))
		}
		for i, k := range keep {
			if !k {
				p.T.F32[i] = 0
			}
		}
	}
	return nil
}

// Pruned returns the number of pruned elements of parameter name.
func (m Masks) Pruned(name string) int {
	n := 0
	for _, k := range m[name] {
		if !k {
			n++
		}
	}
	return n
}

// Merge adds o's masks to m (an element pruned in either stays pruned).
func (m Masks) Merge(o Masks) {
	for name, keep := range o {
		cur, ok := m[name]
		if !ok || len(cur) != len(keep) {
			m[name] = append([]bool{}, keep...)
			continue
		}
		for i, k := range keep {
			cur[i] = cur[i] && k
		}
	}
}

// pruneCount is the number of values of n that sparsity s removes.
func pruneCount(s float64, n int) int {
	k := int(math.Round(s * float64(n)))
	return max(0, min(k, n))
}

// magnitudeMask keeps all but the k values of smallest |w| (ties broken
// by position).
func magnitudeMask(w []float32, k int) []bool {
	keep := make([]bool, len(w))
	for i := range keep {
		keep[i] = true
	}
	pruneSmallest([][]float32{w}, [][]bool{keep}, k)
	return keep
}

func abs32(v float32) float32 { return math.Float32frombits(math.Float32bits(v) &^ (1 << 31)) }

// pruneSmallest clears keep for the k values of smallest magnitude over
// the slices ws taken in order (ties broken by that order; NaN counts as
// smallest). It finds the k-th smallest magnitude by sorting a copy, then
// prunes everything below it and the first of the values equal to it.
func pruneSmallest(ws [][]float32, keeps [][]bool, k int) {
	if k <= 0 {
		return
	}
	total := 0
	for _, w := range ws {
		total += len(w)
	}
	mags := make([]float32, 0, total)
	for _, w := range ws {
		for _, v := range w {
			mags = append(mags, abs32(v))
		}
	}
	slices.Sort(mags) // NaN first
	k = min(k, total)
	t := mags[k-1]
	done := 0
	pass := func(sel func(v float32) bool) {
		for j, w := range ws {
			for i, v := range w {
				if done == k {
					return
				}
				if keeps[j][i] && sel(abs32(v)) {
					keeps[j][i] = false
					done++
				}
			}
		}
	}
	pass(func(v float32) bool { return v != v })
	pass(func(v float32) bool { return v < t })
	pass(func(v float32) bool { return v == t })
}

// globalMasks prunes the round(s*total) values of smallest |w| over all
// the layers together (ties broken by layer order, then position).
func globalMasks(g *rt.Graph, layers []Target, s float64) Masks {
	m := Masks{}
	var ws [][]float32
	var keeps [][]bool
	total := 0
	for _, l := range layers {
		w := g.Params[l.Param].T.F32
		keep := make([]bool, len(w))
		for i := range keep {
			keep[i] = true
		}
		m[l.Param] = keep
		ws, keeps = append(ws, w), append(keeps, keep)
		total += len(w)
	}
	pruneSmallest(ws, keeps, pruneCount(s, total))
	return m
}

// nmMask keeps, in every run of m consecutive values along the reduction
// dimension of l, the n of largest |w| (ties broken by position).
func nmMask(l Layer, w []float32, n, m int) ([]bool, error) {
	if l.In%m != 0 {
		return nil, fmt.Errorf("layer %q (%s, weight %s %v): the reduction dimension (%s = %d) is not divisible by M=%d; exclude the layer with --exclude %q or use another pattern",
			l.Node, l.Op, l.Param, l.Shape, l.ReductionName(), l.In, m, l.Node)
	}
	keep := make([]bool, len(w))
	idx := make([]int, m)
	for o := 0; o < l.Out; o++ {
		for r0 := 0; r0 < l.In; r0 += m {
			for j := range idx {
				idx[j] = l.Index(o, r0+j)
			}
			sort.SliceStable(idx, func(a, b int) bool { return abs32(w[idx[a]]) > abs32(w[idx[b]]) })
			for _, i := range idx[:n] {
				keep[i] = true
			}
		}
	}
	return keep, nil
}

// CheckNM reports whether the weight of l satisfies the N:M pattern: at
// most n nonzeros in every run of m along the reduction dimension.
func CheckNM(l Layer, w []float32, n, m int) error {
	if l.In%m != 0 {
		return fmt.Errorf("layer %q: reduction dimension %d is not divisible by %d", l.Node, l.In, m)
	}
	for o := 0; o < l.Out; o++ {
		for r0 := 0; r0 < l.In; r0 += m {
			nz := 0
			for j := 0; j < m; j++ {
				if w[l.Index(o, r0+j)] != 0 {
					nz++
				}
			}
			if nz > n {
				return fmt.Errorf("layer %q: output %d, reduction positions %d..%d hold %d nonzeros, more than %d", l.Node, o, r0, r0+m-1, nz, n)
			}
		}
	}
	return nil
}

// ComputeMasks computes the masks of the unstructured (Magnitude) or
// semi-structured (NM) pruning opts describes on g's current weights,
// without changing g. Values already zero count as the smallest, so
// pruning again at a higher sparsity keeps what was pruned before.
func ComputeMasks(g *rt.Graph, opts Options) (Masks, []Target, error) {
	if err := opts.Validate(); err != nil {
		return nil, nil, err
	}
	if opts.Method == Channel {
		return nil, nil, fmt.Errorf("channel pruning removes channels: use PruneChannels")
	}
	targets, err := Select(g, opts)
	if err != nil {
		return nil, nil, err
	}
	m := Masks{}
	var global []Target
	for _, t := range targets {
		w := g.Params[t.Param].T.F32
		switch {
		case opts.Method == NM:
			keep, err := nmMask(t.Layer, w, opts.N, opts.M)
			if err != nil {
				return nil, nil, err
			}
			m[t.Param] = keep
		case t.Global:
			global = append(global, t)
		default:
			m[t.Param] = magnitudeMask(w, pruneCount(t.Sparsity, len(w)))
		}
	}
	if len(global) > 0 {
		m.Merge(globalMasks(g, global, opts.Sparsity))
	}
	return m, targets, nil
}

// CubicSparsity is Zhu and Gupta's gradual schedule: the sparsity after
// step t (1..n) of n, from initial si to final sf:
// s_t = sf + (si - sf)(1 - t/n)^3.
func CubicSparsity(si, sf float64, t, n int) float64 {
	if n <= 0 || t >= n {
		return sf
	}
	if t <= 0 {
		return si
	}
	f := 1 - float64(t)/float64(n)
	return sf + (si-sf)*f*f*f
}
