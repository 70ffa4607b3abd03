package finetune

import (
	"context"
	"fmt"
	"maps"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/compressml/compress/data"
	rt "github.com/compressml/compress/runtime"
)

// Train fine-tunes g in place on train (and validates on val, or on a
// Config.ValSplit hold-out of train when val is nil). Which parameters
// train is decided by their Trainable flags (see FreezeSpec); the graph's
// first input takes the examples and its first output is the loss's input.
// When that output is a Softmax or LogSoftmax over the classes (with the
// cross-entropy loss) or a Sigmoid (with BCE), training uses the logits
// before it, as the losses expect logits.
func Train(ctx context.Context, g *rt.Graph, train, val data.Dataset, cfg Config) (*Result, error) {
	if err := cfg.defaults(); err != nil {
		return nil, err
	}
	if ctx == nil {
		ctx = context.Background()
	}
	if cfg.Checkpoint != "" && !cfg.Resume {
		if st, err := os.Stat(filepath.Dir(cfg.Checkpoint)); err != nil || !st.IsDir() {
			return nil, fmt.Errorf("checkpoint %s: its folder does not exist; create it or choose another --checkpoint", cfg.Checkpoint)
		}
	}
	if cfg.Patience > 0 && val == nil && cfg.ValSplit == 0 {
		return nil, fmt.Errorf("early stopping (patience %d) needs validation data: set a validation split (--val-split)", cfg.Patience)
	}
	loss, err := NewLoss(cfg.Loss, cfg.LabelSmoothing, cfg.ClassWeights)
	if err != nil {
		return nil, err
	}
	opt, err := NewOptimizer(cfg.Optimizer)
	if err != nil {
		return nil, err
	}
	groups := make([]struct {
		p  Pattern
		lr float64
	}, len(cfg.Groups))
	for i, gr := range cfg.Groups {
		p, err := ParsePattern(gr.Pattern)
		if err != nil {
			return nil, fmt.Errorf("learning-rate group %d: %w", i+1, err)
		}
		if !(gr.LR >= 0) || math.IsInf(gr.LR, 0) {
			return nil, fmt.Errorf("learning-rate group %q: learning rate %g must be finite and not negative", gr.Pattern, gr.LR)
		}
		groups[i].p, groups[i].lr = p, gr.LR
	}
	if val == nil && cfg.ValSplit > 0 {
		train, val = SplitValidation(train, cfg.ValSplit, cfg.Seed)
		if val == nil && cfg.Patience > 0 {
			return nil, fmt.Errorf("early stopping (patience %d) needs validation data, but a split of %g of %d examples holds none", cfg.Patience, cfg.ValSplit, train.Len())
		}
	}
	if train.Len() == 0 {
		return nil, fmt.Errorf("no training examples")
	}
	inputs := realInputs(g)
	if len(inputs) != 1 || len(g.Outputs) == 0 {
		return nil, fmt.Errorf("training needs a model with one input and at least one output; this one has %d inputs and %d outputs", len(inputs), len(g.Outputs))
	}
	var exShape []int
	if s := inputs[0].Shape; len(s) > 1 {
		exShape = s[1:]
	}
	for _, d := range exShape {
		if d < 0 {
			exShape = nil // let the data decide
		}
	}
	tg := trainingGraph(g, loss)
	var trainable []string
	for _, name := range tg.ParamNames() {
		if p := tg.Params[name]; p.Trainable && p.T.DType == rt.Float32 {
			trainable = append(trainable, name)
		}
	}
	if len(trainable) == 0 {
		return nil, fmt.Errorf("every parameter is frozen: nothing to train (check --freeze, --freeze-until and --train-only)")
	}

	t := &trainer{g: g, cfg: cfg, loss: loss, opt: opt, trainable: trainable, input: inputs[0].Name, output: tg.Outputs[0].Name, exShape: exShape}
	readers := paramReaders(tg)
	for _, name := range trainable {
		lr := cfg.LR
		for _, gr := range groups {
			if matchParam(gr.p, name, readers) {
				lr = gr.lr
				break
			}
		}
		t.lrMult = append(t.lrMult, lr/cfg.LR)
	}
	if err := t.setup(ctx, tg, train, val); err != nil {
		return nil, err
	}
	return t.run(ctx)
}

// trainingGraph is the part of g that training runs: g's nodes and
// parameters (shared, not copied) down to the value the loss takes, which
// is g's first output, or the logits before a final Softmax/LogSoftmax
// over the last axis (cross-entropy) or Sigmoid (BCE). Nodes and
// parameters only other outputs need are left out.
func trainingGraph(g *rt.Graph, loss Loss) *rt.Graph {
	out := g.Outputs[0]
	if n := g.Producers()[out.Name]; n != nil && len(n.Inputs) > 0 {
		logits := false
		switch loss.(type) {
		case CrossEntropy:
			if n.OpType == "Softmax" || n.OpType == "LogSoftmax" {
				axis := n.AttrInt("axis", -1)
				logits = axis == -1 || (len(out.Shape) > 0 && axis == int64(len(out.Shape)-1))
			}
		case BCEWithLogits:
			logits = n.OpType == "Sigmoid"
		}
		if logits && !g.IsInput(n.Inputs[0]) {
			out.Name = n.Inputs[0]
		}
	}
	tg := *g
	tg.Nodes = slices.Clone(g.Nodes)
	tg.Params = maps.Clone(g.Params)
	tg.Outputs = []rt.ValueInfo{out}
	rt.RemoveDeadCode(&tg)
	return &tg
}

// paramReaders maps every parameter to the names of the nodes reading it.
func paramReaders(g *rt.Graph) map[string][]string {
	readers := map[string][]string{}
	for _, n := range g.Nodes {
		for _, in := range n.Inputs {
			if _, ok := g.Params[in]; ok {
				readers[in] = append(readers[in], n.Name)
			}
		}
	}
	return readers
}

// matchParam reports whether p matches the parameter name or a node
// reading it.
func matchParam(p Pattern, name string, readers map[string][]string) bool {
	if p.Match(name) {
		return true
	}
	for _, r := range readers[name] {
		if p.Match(r) {
			return true
		}
	}
	return false
}

type trainer struct {
	g         *rt.Graph
	cfg       Config
	loss      Loss
	opt       Optimizer
	trainable []string
	lrMult    []float64
	input     string // the training graph's input (a frontier value when cached)
	output    string
	exShape   []int

	ex               *rt.GradExecutor
	trainSrc, valSrc source
	state            []string // parameters a training forward changes (BN statistics)
	cached           bool
	cacheSeconds     float64 // time spent computing the cached prefix
}

// source yields the batches of one epoch in a fixed order.
type source interface {
	Len() int
	// epoch returns a channel of the batches of an epoch from batch start
	// on, in the order perm gives (nil: data-set order).
	epoch(ctx context.Context, epoch int, perm []int, start int) <-chan batchOrErr
}

type batchOrErr struct {
	inputs map[string]*rt.Tensor
	labels []int
	err    error
}

func (t *trainer) setup(ctx context.Context, tg *rt.Graph, train, val data.Dataset) error {
	if err := t.cfg.Augment.Validate(); err != nil {
		return err
	}
	if err := checkEvalMode(tg, t.cfg.EvalMode); err != nil {
		return err
	}
	if t.cfg.CacheFrozen && t.cfg.Augment.Enabled() {
		return fmt.Errorf("augmentation changes the images every epoch, so the frozen layers' outputs cannot be cached once: drop --cache-frozen or the augmentation")
	}
	if t.cfg.CacheFrozen {
		prefix, suffix, frontier, err := SplitFrozen(tg)
		if err != nil {
			return err
		}
		if prefix != nil {
			start := time.Now()
			defer func() { t.cacheSeconds = time.Since(start).Seconds() }()
			ptrain, err := cachePrefix(ctx, prefix, frontier, train, t.exShape, t.cfg)
			if err != nil {
				return err
			}
			t.trainSrc = ptrain
			for k, f := range frontier {
				suffix.Inputs = append(suffix.Inputs, rt.ValueInfo{Name: f, DType: rt.Float32, Shape: append([]int{-1}, ptrain.shapes[k]...)})
			}
			if val != nil {
				if t.valSrc, err = cachePrefix(ctx, prefix, frontier, val, t.exShape, t.cfg); err != nil {
					return err
				}
			}
			tg, t.cached = suffix, true
		}
	}
	if !t.cached {
		t.trainSrc = &loaderSource{ds: train, input: t.input, shape: t.exShape, cfg: t.cfg, augment: t.cfg.Augment}
		if val != nil {
			t.valSrc = &loaderSource{ds: val, input: t.input, shape: t.exShape, cfg: t.cfg}
		}
	}
	ex, err := rt.NewGradExecutor(tg, rt.TrainOptions{Threads: t.cfg.Threads, Seed: t.cfg.Seed, EvalMode: evalModeFunc(t.cfg.EvalMode)})
	if err != nil {
		return err
	}
	t.ex = ex
	t.state = ex.TrainingState()
	return nil
}

// loaderSource batches a data set through data.Loader, with a goroutine
// preparing the next batch while the current one trains.
type loaderSource struct {
	ds      data.Dataset
	input   string
	shape   []int
	cfg     Config
	augment *data.Augment // training examples only
}

func (s *loaderSource) Len() int { return s.ds.Len() }

func (s *loaderSource) epoch(ctx context.Context, epoch int, perm []int, start int) <-chan batchOrErr {
	ch := make(chan batchOrErr, 1)
	go func() {
		defer close(ch)
		ds := s.ds
		if perm != nil {
			ds = &data.Subset{DS: s.ds, Indices: perm}
		}
		opts := data.LoaderOptions{BatchSize: s.cfg.BatchSize, Shape: s.shape, Preprocess: s.cfg.Preprocess}
		if s.augment.Enabled() {
			opts.Augment = s.augment
		}
		l, err := data.NewLoader(ds, opts)
		if err != nil {
			ch <- batchOrErr{err: err}
			return
		}
		if opts.Augment != nil {
			l = l.WithEpoch(epoch)
		}
		var ring [3]*data.Batch
		for i := start; i < l.NumBatches(); i++ {
			b, err := l.Batch(i, ring[i%3])
			if err != nil {
				ch <- batchOrErr{err: err}
				return
			}
			ring[i%3] = b
			if j := firstNonFinite(b.X.F32); j >= 0 {
				ex := b.Indices[j/(len(b.X.F32)/len(b.Labels))]
				if perm != nil {
					ex = perm[ex]
				}
				ch <- batchOrErr{err: nonFiniteExample(s.ds, ex)}
				return
			}
			select {
			case ch <- batchOrErr{inputs: map[string]*rt.Tensor{s.input: b.X}, labels: b.Labels}:
			case <-ctx.Done():
				return
			}
		}
	}()
	return ch
}

func (t *trainer) steps() int {
	n, b := t.trainSrc.Len(), t.cfg.BatchSize
	return (n + b - 1) / b
}

// permutation is the visiting order of epoch (0-based).
func (t *trainer) permutation(epoch int) []int {
	return rand.New(rand.NewPCG(t.cfg.Seed, uint64(epoch)+1)).Perm(t.trainSrc.Len())
}

func (t *trainer) run(ctx context.Context) (*Result, error) {
	cfg := t.cfg
	res := &Result{Trainable: t.trainable, CachedFrozen: t.cached, CacheSeconds: t.cacheSeconds}
	steps := t.steps()
	if cfg.Schedule.Kind == "cosine" && cfg.Schedule.TotalSteps == 0 {
		cfg.Schedule.TotalSteps = steps * cfg.Epochs
	}
	st := &runState{Best: math.Inf(-1)}
	if cfg.Resume {
		if err := t.loadCheckpoint(st); err != nil {
			return nil, err
		}
		res.History = st.History
	}
	var best map[string][]float32
	if st.BestParams != nil {
		best = st.BestParams
	}
	lastCkpt := ""
	if cfg.Resume {
		lastCkpt = cfg.Checkpoint
	}
	// The batch producers stop when ctx is cancelled and when run returns
	// (on an error mid-epoch as well).
	srcCtx, stopSources := context.WithCancel(ctx)
	defer stopSources()
	grads := make([]*rt.Tensor, len(t.trainable))
	var lossGrad *rt.Tensor
	totalSamples, totalTime := 0, 0.0
	for epoch := st.Epoch; epoch < cfg.Epochs && !st.Stop; epoch++ {
		perm := t.permutation(epoch)
		start := st.StepInEpoch
		eStart := time.Now()
		sumLoss, sumCorrect, seen := st.SumLoss, st.SumCorrect, st.Seen
		// interrupted saves the progress of this epoch after step steps.
		interrupted := func(step int, cause error) error {
			st.Epoch, st.StepInEpoch, st.SumLoss, st.SumCorrect, st.Seen = epoch, step, sumLoss, sumCorrect, seen
			return t.interrupt(st, best, cause)
		}
		lr := cfg.Schedule.LR(cfg.LR, epoch*steps+max(start-1, 0))
		step := start
		for b := range t.trainSrc.epoch(srcCtx, epoch, perm, start) {
			if b.err != nil {
				return nil, b.err
			}
			if err := ctx.Err(); err != nil {
				return nil, interrupted(step, err)
			}
			global := epoch*steps + step
			lr = cfg.Schedule.LR(cfg.LR, global)
			t.ex.SetSeed(cfg.Seed ^ uint64(global+1)*0x9e3779b97f4a7c15)
			// A step runs to its end even when ctx is cancelled (it takes
			// milliseconds): an interrupted run stops between steps, where
			// the checkpoint describes the state exactly.
			stepCtx := context.WithoutCancel(ctx)
			out, err := t.ex.Forward(stepCtx, b.inputs, true)
			if err != nil {
				return nil, err
			}
			y := out[t.output]
			if lossGrad == nil || !rt.SameShape(lossGrad.Shape, y.Shape) {
				lossGrad = rt.New(rt.Float32, y.Shape...)
			}
			l, err := t.loss.Eval(y, b.labels, nil, lossGrad)
			if err != nil {
				return nil, err
			}
			if math.IsNaN(l) || math.IsInf(l, 0) {
				return nil, &NaNError{Epoch: epoch + 1, Step: step + 1, What: fmt.Sprintf("the loss is %v", l), Checkpoint: lastCkpt}
			}
			if err := t.ex.Backward(stepCtx, map[string]*rt.Tensor{t.output: lossGrad}); err != nil {
				return nil, err
			}
			for i, name := range t.trainable {
				grads[i] = t.ex.Grad(name)
			}
			if what := t.adjustGrads(grads); what != "" {
				return nil, &NaNError{Epoch: epoch + 1, Step: step + 1, What: what, Checkpoint: lastCkpt}
			}
			t.opt.Begin()
			for i, name := range t.trainable {
				if grads[i] == nil {
					continue
				}
				t.opt.Update(name, t.g.Params[name].T.F32, grads[i].F32, lr*t.lrMult[i])
			}
			if cfg.AfterStep != nil {
				cfg.AfterStep()
			}
			bs := len(b.labels)
			sumLoss += l * float64(bs)
			sumCorrect += correct(y, b.labels)
			seen += bs
			step++
			if cfg.Progress != nil {
				el := time.Since(eStart)
				cfg.Progress(Event{Kind: "step", Epoch: epoch + 1, Epochs: cfg.Epochs, Step: step, Steps: steps,
					GlobalStep: global + 1, LR: lr, Loss: sumLoss / float64(seen), Accuracy: float64(sumCorrect) / float64(seen),
					SamplesPerSec: float64(seen-st.Seen) / el.Seconds(), Elapsed: el})
			}
		}
		if err := ctx.Err(); err != nil {
			return nil, interrupted(step, err)
		}
		if step != steps {
			return nil, fmt.Errorf("epoch %d ended after %d of %d steps (the data set changed size?)", epoch+1, step, steps)
		}
		secs := time.Since(eStart).Seconds()
		es := EpochStats{Epoch: epoch + 1, LR: lr, TrainLoss: sumLoss / float64(seen), TrainAccuracy: float64(sumCorrect) / float64(seen),
			Seconds: secs, SamplesPerSec: float64(seen-st.Seen) / secs}
		totalSamples += seen - st.Seen
		totalTime += secs
		if t.valSrc != nil {
			m, err := t.evaluate(srcCtx)
			if err != nil {
				if cerr := ctx.Err(); cerr != nil {
					// Interrupted while validating: resuming redoes the validation.
					return nil, interrupted(step, cerr)
				}
				return nil, err
			}
			es.Val = m
			score := m.Accuracy
			if cfg.Monitor == "val_loss" {
				score = -m.Loss
			}
			if score > st.Best {
				st.Best, st.BestEpoch, st.BadEpochs = score, epoch+1, 0
				if cfg.Patience > 0 {
					best = t.snapshot()
				}
			} else {
				st.BadEpochs++
				if cfg.Patience > 0 && st.BadEpochs >= cfg.Patience {
					st.Stop = true
				}
			}
		}
		res.History = append(res.History, es)
		st.History = res.History
		st.Epoch, st.StepInEpoch, st.SumLoss, st.SumCorrect, st.Seen = epoch+1, 0, 0, 0, 0
		if cfg.Checkpoint != "" {
			if err := t.saveCheckpoint(st, best); err != nil {
				return nil, err
			}
			lastCkpt = cfg.Checkpoint
		}
		if cfg.Progress != nil {
			cfg.Progress(Event{Kind: "epoch", Epoch: epoch + 1, Epochs: cfg.Epochs, Step: steps, Steps: steps, GlobalStep: (epoch + 1) * steps,
				LR: lr, Loss: es.TrainLoss, Accuracy: es.TrainAccuracy, SamplesPerSec: es.SamplesPerSec,
				Elapsed: time.Duration(secs * float64(time.Second)), Val: es.Val})
		}
	}
	res.BestEpoch = st.BestEpoch
	res.StoppedEarly = st.Stop
	if best != nil {
		t.restore(best)
	}
	if totalTime += t.cacheSeconds; totalTime > 0 {
		res.SamplesPerSec = float64(totalSamples) / totalTime
	}
	return res, nil
}

func (t *trainer) interrupt(st *runState, best map[string][]float32, cause error) error {
	if t.cfg.Checkpoint == "" {
		return fmt.Errorf("%w (%v); no checkpoint file was set, so progress is lost", ErrInterrupted, cause)
	}
	if err := t.saveCheckpoint(st, best); err != nil {
		return fmt.Errorf("%w; saving the checkpoint failed too: %v", ErrInterrupted, err)
	}
	return fmt.Errorf("%w at epoch %d step %d: checkpoint saved to %s; continue with --resume", ErrInterrupted, st.Epoch+1, st.StepInEpoch, t.cfg.Checkpoint)
}

// adjustGrads adds the L1/L2 penalties, checks for NaN/Inf and clips. It
// returns a description of a non-finite gradient, or "".
func (t *trainer) adjustGrads(grads []*rt.Tensor) string {
	cfg := t.cfg
	sumSq := 0.0
	for i, g := range grads {
		if g == nil {
			continue
		}
		w := t.g.Params[t.trainable[i]].T
		if w.Rank() >= 2 && (cfg.L1 != 0 || cfg.L2 != 0) {
			l1, l2 := float32(cfg.L1), float32(2*cfg.L2)
			for j, v := range w.F32 {
				d := l2 * v
				if v > 0 {
					d += l1
				} else if v < 0 {
					d -= l1
				}
				g.F32[j] += d
			}
		}
		for _, v := range g.F32 {
			sumSq += float64(v) * float64(v)
		}
		if math.IsNaN(sumSq) || math.IsInf(sumSq, 0) {
			return fmt.Sprintf("the gradient of %q is not finite", t.trainable[i])
		}
	}
	if cfg.ClipNorm > 0 {
		if norm := math.Sqrt(sumSq); norm > cfg.ClipNorm {
			f := float32(cfg.ClipNorm / (norm + 1e-6))
			for _, g := range grads {
				if g != nil {
					for j := range g.F32 {
						g.F32[j] *= f
					}
				}
			}
		}
	}
	if cfg.ClipValue > 0 {
		c := float32(cfg.ClipValue)
		for _, g := range grads {
			if g != nil {
				for j, v := range g.F32 {
					g.F32[j] = max(-c, min(c, v))
				}
			}
		}
	}
	return ""
}

// evaluate computes loss and accuracy on the validation source in
// inference mode.
func (t *trainer) evaluate(ctx context.Context) (*Metrics, error) {
	m := &Metrics{}
	var grad *rt.Tensor
	total := 0.0
	correctN := 0
	for b := range t.valSrc.epoch(ctx, 0, nil, 0) {
		if b.err != nil {
			return nil, b.err
		}
		out, err := t.ex.Forward(ctx, b.inputs, false)
		if err != nil {
			return nil, err
		}
		y := out[t.output]
		if grad == nil || !rt.SameShape(grad.Shape, y.Shape) {
			grad = rt.New(rt.Float32, y.Shape...)
		}
		l, err := t.loss.Eval(y, b.labels, nil, grad)
		if err != nil {
			return nil, err
		}
		total += l * float64(len(b.labels))
		correctN += correct(y, b.labels)
		m.Examples += len(b.labels)
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if m.Examples > 0 {
		m.Loss = total / float64(m.Examples)
		m.Accuracy = float64(correctN) / float64(m.Examples)
	}
	return m, nil
}

// correct counts the rows of y [B, C] whose argmax is the label; for one
// output per example ([B] or [B, 1], a binary classifier's logit), the
// examples whose logit is > 0 for label 1 and <= 0 for label 0.
func correct(y *rt.Tensor, labels []int) int {
	if y.Len() == len(labels) && (y.Rank() == 1 || (y.Rank() == 2 && y.Shape[1] == 1)) {
		n := 0
		for i, lab := range labels {
			if (y.F32[i] > 0) == (lab == 1) {
				n++
			}
		}
		return n
	}
	if y.Rank() != 2 || y.Shape[0] != len(labels) || y.Shape[1] < 2 {
		return 0
	}
	c := y.Shape[1]
	n := 0
	for i, lab := range labels {
		row := y.F32[i*c : (i+1)*c]
		arg := 0
		for j, v := range row {
			if v > row[arg] {
				arg = j
			}
		}
		if arg == lab {
			n++
		}
	}
	return n
}

// snapshot copies every parameter training changes.
func (t *trainer) snapshot() map[string][]float32 {
	out := map[string][]float32{}
	for _, name := range append(append([]string{}, t.trainable...), t.state...) {
		out[name] = append([]float32{}, t.g.Params[name].T.F32...)
	}
	return out
}

func (t *trainer) restore(s map[string][]float32) {
	for name, v := range s {
		copy(t.g.Params[name].T.F32, v)
	}
}

func realInputs(g *rt.Graph) []rt.ValueInfo {
	var out []rt.ValueInfo
	for _, in := range g.Inputs {
		if _, isParam := g.Params[in.Name]; !isParam {
			out = append(out, in)
		}
	}
	return out
}

// nonFiniteExample reports a NaN or Inf in example i of ds, by its index
// in the data set ds views (through validation splits and other subsets).
func nonFiniteExample(ds data.Dataset, i int) error {
	for {
		sub, ok := ds.(*data.Subset)
		if !ok || i < 0 || i >= len(sub.Indices) {
			break
		}
		ds, i = sub.DS, sub.Indices[i]
	}
	return fmt.Errorf("example %d of %s holds a NaN or Inf value (after preprocessing); fix or drop it", i, data.Name(ds))
}

// firstNonFinite returns the index of the first NaN or Inf in x, or -1.
func firstNonFinite(x []float32) int {
	for i, v := range x {
		if v-v != 0 { // NaN and ±Inf give NaN
			return i
		}
	}
	return -1
}

// evalModeFunc turns Config.EvalMode into a TrainOptions.EvalMode: the
// nodes it matches, plus BatchNormalizations whose scale and bias are both
// frozen (the runtime's default). Every pattern must match a
// BatchNormalization or Dropout node of g.
func evalModeFunc(pats []Pattern) func(*rt.Graph, *rt.Node) bool {
	if len(pats) == 0 {
		return nil
	}
	return func(g *rt.Graph, n *rt.Node) bool {
		switch n.OpType {
		case "BatchNormalization":
			if anyMatch(pats, n.Name) {
				return true
			}
			for _, in := range []string{n.Input(1), n.Input(2)} {
				if p, ok := g.Params[in]; ok && p.Trainable {
					return false
				}
			}
			return true
		case "Dropout":
			return anyMatch(pats, n.Name)
		}
		return false
	}
}

// checkEvalMode checks that every Config.EvalMode pattern matches a
// BatchNormalization or Dropout node of g.
func checkEvalMode(g *rt.Graph, pats []Pattern) error {
	for _, p := range pats {
		found := false
		for _, n := range g.Nodes {
			if (n.OpType == "BatchNormalization" || n.OpType == "Dropout") && p.Match(n.Name) {
				found = true
				break
			}
		}
		if !found {
			return fmt.Errorf("eval-mode pattern %q matches no BatchNormalization or Dropout node (node names: see 'compress inspect')", p)
		}
	}
	return nil
}
