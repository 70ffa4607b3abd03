package prune

import (
	"context"
	"fmt"

	"github.com/compressml/compress/data"
	"github.com/compressml/compress/finetune"
	rt "github.com/compressml/compress/runtime"
)

// Schedule says how pruning proceeds.
type Schedule struct {
	// Steps is the number of pruning steps: 0 or 1 prunes at once
	// (one-shot); n > 1 raises the sparsity of every layer along
	// CubicSparsity from Initial to its target over n steps.
	Steps int
	// Initial is the sparsity of the first step's schedule (s_i).
	Initial float64
	// FineTune, when set, runs after every pruning step with the masks in
	// force; it must keep them (FineTune does).
	FineTune func(ctx context.Context, step, steps int, masks Masks) error
	// OnStep, when set, is called before each pruning step with the
	// scheduled sparsity (the fraction of the final target reached).
	OnStep func(step, steps int, fraction float64)
}

// GroupReport describes one channel group after pruning.
type GroupReport struct {
	ID        int      `json:"id"`
	Producers []string `json:"producers"`
	Channels  int      `json:"channels"`
	Removed   int      `json:"removed"`
	Fixed     string   `json:"fixed,omitempty"`
}

// Result is what Prune did.
type Result struct {
	// Targets are the layers pruned (Magnitude, NM) or whose output
	// channels could be pruned (Channel), with their target sparsity.
	Targets []Target
	// Masks are the final masks (Magnitude, NM); nil for Channel, whose
	// pruned values are gone.
	Masks Masks
	// Groups describe the channel groups (Channel).
	Groups []GroupReport
}

// Prune prunes g in place as opts says, in the steps of sched, calling
// sched.FineTune after each. With Method Channel the channels are removed
// at the end (see ChannelAnalysis.RemoveChannels): g then holds smaller
// parameters. Bad options, plans and patterns are reported before g is
// changed.
func Prune(ctx context.Context, g *rt.Graph, opts Options, sched Schedule) (*Result, error) {
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	if ctx == nil {
		ctx = context.Background()
	}
	steps := max(sched.Steps, 1)
	if err := checkSparsity("initial sparsity", sched.Initial); err != nil {
		return nil, err
	}
	if steps > 1 && opts.Method == NM {
		return nil, fmt.Errorf("N:M sparsity is reached in one step (its pattern is fixed): use the one-shot schedule and fine-tune with the mask")
	}
	targets, err := Select(g, opts)
	if err != nil {
		return nil, err
	}
	if opts.Method == Channel {
		return pruneChannels(ctx, g, opts, sched, steps, targets)
	}
	// Check every layer before touching the weights (N:M divisibility).
	if _, _, err := ComputeMasks(g, opts); err != nil {
		return nil, err
	}
	var masks Masks
	for step := 1; step <= steps; step++ {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		f := CubicSparsity(0, 1, step, steps)
		if sched.OnStep != nil {
			sched.OnStep(step, steps, f)
		}
		so := scaled(opts, sched.Initial, step, steps)
		m, _, err := ComputeMasks(g, so)
		if err != nil {
			return nil, err
		}
		if err := m.Apply(g); err != nil {
			return nil, err
		}
		masks = m
		if sched.FineTune != nil {
			if err := sched.FineTune(ctx, step, steps, masks); err != nil {
				return nil, fmt.Errorf("fine-tuning after pruning step %d of %d: %w", step, steps, err)
			}
		}
	}
	return &Result{Targets: targets, Masks: masks}, nil
}

// scaled returns opts with every sparsity set to its value at step of
// steps of the cubic schedule from initial.
func scaled(opts Options, initial float64, step, steps int) Options {
	if steps <= 1 {
		return opts
	}
	so := opts
	so.Sparsity = CubicSparsity(min(initial, opts.Sparsity), opts.Sparsity, step, steps)
	if opts.Plan != nil {
		so.Plan = Plan{}
		for k, v := range opts.Plan {
			so.Plan[k] = CubicSparsity(min(initial, v), v, step, steps)
		}
	}
	return so
}

func pruneChannels(ctx context.Context, g *rt.Graph, opts Options, sched Schedule, steps int, targets []Target) (*Result, error) {
	a, err := AnalyzeChannels(g)
	if err != nil {
		return nil, err
	}
	// A group is pruned when every producer is a selected layer; its
	// sparsity is the lowest of theirs.
	targetOf := map[string]Target{}
	for _, t := range targets {
		targetOf[t.Param] = t
	}
	final := map[int]float64{}
	for _, gr := range a.Groups {
		if gr.Fixed != "" {
			continue
		}
		s, ok := 1.0, true
		for _, p := range gr.Params {
			t, sel := targetOf[p]
			if !sel {
				ok = false
				break
			}
			s = min(s, t.Sparsity)
		}
		if !ok {
			gr.Fixed = "a producer is kept dense (first or last layer, or --exclude)"
			continue
		}
		if s > 0 {
			final[gr.ID] = s
		}
	}
	var sel Selection
	for step := 1; step <= steps; step++ {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		if sched.OnStep != nil {
			sched.OnStep(step, steps, CubicSparsity(0, 1, step, steps))
		}
		cur := map[int]float64{}
		for id, s := range final {
			cur[id] = s
			if steps > 1 {
				cur[id] = CubicSparsity(min(sched.Initial, s), s, step, steps)
			}
		}
		sel = a.Select(cur, opts.Criterion)
		m := a.Masks(sel)
		if err := m.Apply(g); err != nil {
			return nil, err
		}
		if sched.FineTune != nil {
			if err := sched.FineTune(ctx, step, steps, m); err != nil {
				return nil, fmt.Errorf("fine-tuning after pruning step %d of %d: %w", step, steps, err)
			}
		}
	}
	res := &Result{Targets: targets}
	for _, gr := range a.Groups {
		res.Groups = append(res.Groups, GroupReport{ID: gr.ID, Producers: gr.Producers, Channels: gr.Size, Removed: len(sel[gr.ID]), Fixed: gr.Fixed})
	}
	if err := a.RemoveChannels(sel); err != nil {
		return nil, err
	}
	return res, nil
}

// FineTune trains g with finetune.Train (see its Config) keeping masks in
// force: pruned values are zeroed after every optimizer step, so they are
// exactly zero throughout and at the end.
func FineTune(ctx context.Context, g *rt.Graph, masks Masks, train, val data.Dataset, cfg finetune.Config) (*finetune.Result, error) {
	if err := masks.Apply(g); err != nil {
		return nil, err
	}
	prev := cfg.AfterStep
	cfg.AfterStep = func() {
		_ = masks.Apply(g) // sizes were checked above and do not change
		if prev != nil {
			prev()
		}
	}
	res, err := finetune.Train(ctx, g, train, val, cfg)
	if err != nil {
		return nil, err
	}
	return res, masks.Apply(g)
}

// NewExecutor returns an inference executor for g that runs Conv, Gemm and
// MatMul layers with mostly zero weights on the runtime's sparse kernels:
// with threshold 0 those past the break-even of their shape (what
// runtime.NewExecutor does by default, see runtime.SparsifyWeights), with
// threshold in (0, 1] every layer with at least that fraction of zeros,
// above 1 none. g is not modified.
func NewExecutor(g *rt.Graph, threads int, threshold float64) (*rt.Executor, error) {
	if threshold < 0 {
		return nil, fmt.Errorf("sparse threshold %g is negative: give 0 (sparse where faster), a fraction of zeros in (0, 1], or above 1 (never)", threshold)
	}
	return rt.NewExecutor(g, rt.Options{Threads: threads, NoSparse: threshold > 1, SparseThreshold: threshold})
}
