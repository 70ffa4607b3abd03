package finetune

import (
	"context"
	"fmt"

	"github.com/compressml/compress/data"
	rt "github.com/compressml/compress/runtime"
)

// SplitFrozen cuts g where training starts: prefix holds the nodes that no
// trainable parameter reaches (their outputs never change while training),
// suffix the rest, and frontier names the values that cross from one to
// the other. The suffix takes the frontier values as its inputs and shares
// g's parameters. prefix is nil when nothing is frozen at the front of the
// network. Training the suffix on cached prefix outputs is exact when the
// prefix has no randomness: a Dropout in the prefix is an error.
func SplitFrozen(g *rt.Graph) (prefix, suffix *rt.Graph, frontier []string, err error) {
	reach := map[string]bool{}
	for name, p := range g.Params {
		if p.Trainable {
			reach[name] = true
		}
	}
	var pre, post []*rt.Node
	for _, n := range g.Nodes {
		r := false
		for _, in := range n.Inputs {
			r = r || reach[in]
		}
		if r {
			for _, o := range n.Outputs {
				reach[o] = true
			}
			post = append(post, n)
		} else {
			pre = append(pre, n)
		}
	}
	if len(pre) == 0 {
		return nil, g, nil, nil
	}
	produced := map[string]bool{}
	for _, n := range pre {
		for _, o := range n.Outputs {
			produced[o] = true
		}
	}
	// Prefix nodes whose outputs feed nothing in the suffix (nor an output)
	// are dead for training; keep only what the frontier needs.
	seen := map[string]bool{}
	isParam := func(s string) bool { _, ok := g.Params[s]; return ok }
	for _, n := range post {
		for _, in := range n.Inputs {
			if in != "" && !reach[in] && !isParam(in) && !seen[in] {
				seen[in] = true
				frontier = append(frontier, in)
			}
		}
	}
	for _, o := range g.Outputs {
		if !reach[o.Name] && !seen[o.Name] {
			return nil, nil, nil, fmt.Errorf("output %q does not depend on any trainable parameter; nothing to cache for", o.Name)
		}
	}
	if len(frontier) == 0 {
		return nil, g, nil, nil
	}
	onlyInputs := true
	for _, f := range frontier {
		onlyInputs = onlyInputs && !produced[f]
	}
	if onlyInputs {
		return nil, g, nil, nil
	}
	for _, n := range pre {
		if n.OpType == "Dropout" {
			return nil, nil, nil, fmt.Errorf("--cache-frozen: %v comes before the first trainable layer and is random in training; drop --cache-frozen or remove the Dropout", n)
		}
	}
	prefix = &rt.Graph{Name: g.Name + "_frozen_prefix", Inputs: g.Inputs, Params: map[string]*rt.Param{}, Opset: g.Opset}
	prefix.Nodes = pre
	for _, f := range frontier {
		prefix.Outputs = append(prefix.Outputs, rt.ValueInfo{Name: f, DType: rt.Float32})
	}
	suffix = &rt.Graph{Name: g.Name + "_trainable_suffix", Outputs: g.Outputs, Params: map[string]*rt.Param{}, Opset: g.Opset}
	suffix.Nodes = post
	for name, p := range g.Params {
		prefix.Params[name] = p
		suffix.Params[name] = p
	}
	rt.RemoveDeadCode(prefix)
	rt.RemoveDeadCode(suffix)
	return prefix, suffix, frontier, nil
}

// cachedSource serves batches of precomputed frontier values.
type cachedSource struct {
	names  []string
	shapes [][]int // per-example shape of each frontier value
	values [][]float32
	labels []int
	batch  int
}

// cachePrefix runs prefix over every example of ds once and keeps the
// frontier values.
func cachePrefix(ctx context.Context, prefix *rt.Graph, frontier []string, ds data.Dataset, shape []int, cfg Config) (*cachedSource, error) {
	ex, err := rt.NewExecutor(prefix, rt.Options{Threads: cfg.Threads})
	if err != nil {
		return nil, fmt.Errorf("--cache-frozen: %w", err)
	}
	in := realInputs(prefix)[0].Name
	l, err := data.NewLoader(ds, data.LoaderOptions{BatchSize: 256, Shape: shape, Preprocess: cfg.Preprocess})
	if err != nil {
		return nil, err
	}
	cs := &cachedSource{names: frontier, batch: cfg.BatchSize, labels: make([]int, 0, ds.Len())}
	var b *data.Batch
	for i := 0; i < l.NumBatches(); i++ {
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("%w while caching the frozen prefix's outputs (%v); nothing was trained yet", ErrInterrupted, err)
		}
		if b, err = l.Batch(i, b); err != nil {
			return nil, err
		}
		if j := firstNonFinite(b.X.F32); j >= 0 {
			return nil, nonFiniteExample(ds, b.Indices[j/(len(b.X.F32)/len(b.Labels))])
		}
		out, err := ex.Run(ctx, map[string]*rt.Tensor{in: b.X})
		if err != nil {
			return nil, fmt.Errorf("--cache-frozen: %w", err)
		}
		for k, f := range frontier {
			t := out[f]
			if t.DType != rt.Float32 || t.Rank() < 1 || t.Shape[0] != len(b.Labels) {
				return nil, fmt.Errorf("--cache-frozen: frontier value %q is %v %v, expected float32 with the batch first", f, t.DType, t.Shape)
			}
			if cs.shapes == nil {
				cs.shapes = make([][]int, len(frontier))
				cs.values = make([][]float32, len(frontier))
			}
			if cs.shapes[k] == nil {
				cs.shapes[k] = append([]int{}, t.Shape[1:]...)
				cs.values[k] = make([]float32, 0, ds.Len()*rt.NumElements(cs.shapes[k]))
			}
			cs.values[k] = append(cs.values[k], t.F32...)
		}
		cs.labels = append(cs.labels, b.Labels...)
	}
	return cs, nil
}

func (s *cachedSource) Len() int { return len(s.labels) }

func (s *cachedSource) epoch(ctx context.Context, _ int, perm []int, start int) <-chan batchOrErr {
	ch := make(chan batchOrErr, 1)
	go func() {
		defer close(ch)
		n := len(s.labels)
		var ring [3]map[string]*rt.Tensor
		var labRing [3][]int
		for i := start; i*s.batch < n; i++ {
			lo, hi := i*s.batch, min((i+1)*s.batch, n)
			bs := hi - lo
			slot := i % 3
			if ring[slot] == nil || ring[slot][s.names[0]].Shape[0] != bs {
				ring[slot] = map[string]*rt.Tensor{}
				for k, name := range s.names {
					ring[slot][name] = rt.New(rt.Float32, append([]int{bs}, s.shapes[k]...)...)
				}
				labRing[slot] = make([]int, bs)
			}
			for j := 0; j < bs; j++ {
				idx := lo + j
				if perm != nil {
					idx = perm[idx]
				}
				labRing[slot][j] = s.labels[idx]
				for k, name := range s.names {
					per := rt.NumElements(s.shapes[k])
					copy(ring[slot][name].F32[j*per:(j+1)*per], s.values[k][idx*per:(idx+1)*per])
				}
			}
			select {
			case ch <- batchOrErr{inputs: ring[slot], labels: labRing[slot]}:
			case <-ctx.Done():
				return
			}
		}
	}()
	return ch
}
