package finetune

import (
	"errors"
	"math"
	goruntime "runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/compressml/compress/data"
	rt "github.com/compressml/compress/runtime"
)

// withDropout inserts a Dropout (ratio 0.5) reading value, and makes every
// node that read value read the Dropout's output instead.
func withDropout(g *rt.Graph, value string) *rt.Graph {
	out := value + "_dropped"
	for _, n := range g.Nodes {
		for i, in := range n.Inputs {
			if in == value {
				n.Inputs[i] = out
			}
		}
	}
	d := &rt.Node{Name: value + "_dropout", OpType: "Dropout", Inputs: []string{value}, Outputs: []string{out}}
	for i, n := range g.Nodes {
		if slices.Contains(n.Outputs, value) {
			g.Nodes = slices.Insert(g.Nodes, i+1, d)
			break
		}
	}
	return g
}

// trainOn builds the standard test model (an MLP with hidden layers
// [16, 8] on 4 features and 3 classes, seed 1), applies spec, trains it
// on ds with cfg and returns the graph, the result and the error.
func trainOn(t *testing.T, ds data.Dataset, spec FreezeSpec, cfg Config) (*rt.Graph, *Result, error) {
	t.Helper()
	g := mlp(t, 4, 3, []int{16, 8}, 1)
	if _, err := spec.Apply(g); err != nil {
		t.Fatal(err)
	}
	res, err := Train(t.Context(), g, ds, nil, cfg)
	return g, res, err
}

// split returns the first n examples of ds and the rest.
func split(ds data.Dataset, n int) (data.Dataset, data.Dataset) {
	var a, b []int
	for i := 0; i < ds.Len(); i++ {
		if i < n {
			a = append(a, i)
		} else {
			b = append(b, i)
		}
	}
	return &data.Subset{DS: ds, Indices: a}, &data.Subset{DS: ds, Indices: b}
}

func TestTrainLearnsBlobs(t *testing.T) {
	all := blobs(t, 600, 3, 4, 1.0, 1)
	train, test := split(all, 400)
	tests := []struct {
		name string
		cfg  Config
	}{
		{"adam", Config{Optimizer: OptimizerConfig{Kind: "adam"}, LR: 0.01}},
		{"adamw cosine warm-up", Config{Optimizer: OptimizerConfig{Kind: "adamw", WeightDecay: 0.01}, LR: 0.02,
			Schedule: Schedule{Kind: "cosine", WarmupSteps: 5}}},
		{"sgd momentum step schedule", Config{Optimizer: OptimizerConfig{Kind: "sgd", Momentum: 0.9}, LR: 0.02,
			Schedule: Schedule{Kind: "step", StepSize: 30, Gamma: 0.5}}},
		{"sgd nesterov clipped", Config{Optimizer: OptimizerConfig{Kind: "sgd", Momentum: 0.9, Nesterov: true}, LR: 0.02, ClipNorm: 1}},
		{"adam label smoothing class weights", Config{Optimizer: OptimizerConfig{Kind: "adam"}, LR: 0.01, LabelSmoothing: 0.1, ClassWeights: []float64{1, 2, 1}}},
		{"adam L2 L1", Config{Optimizer: OptimizerConfig{Kind: "adam"}, LR: 0.01, L2: 1e-4, L1: 1e-5}},
		{"mse on one-hot labels", Config{Optimizer: OptimizerConfig{Kind: "adam"}, LR: 0.03, Loss: "mse"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := tc.cfg
			cfg.Epochs, cfg.BatchSize, cfg.Seed, cfg.Threads = 5, 32, 1, 1
			g, res, err := trainOn(t, train, FreezeSpec{}, cfg)
			if err != nil {
				t.Fatal(err)
			}
			h := res.History
			if len(h) != 5 {
				t.Fatalf("%d epochs in the history, want 5", len(h))
			}
			if !(h[len(h)-1].TrainLoss < h[0].TrainLoss) {
				t.Errorf("training loss did not decrease: %v -> %v", h[0].TrainLoss, h[len(h)-1].TrainLoss)
			}
			if acc := accuracy(t, g, test); acc < 0.9 {
				t.Errorf("test accuracy %.3f, want > 0.9", acc)
			}
			if h[len(h)-1].TrainAccuracy < 0.9 {
				t.Errorf("training accuracy %.3f, want > 0.9", h[len(h)-1].TrainAccuracy)
			}
		})
	}
}

// TestTrainBinary trains a one-output model with BCE on 0/1 labels; its
// accuracy counts logits > 0 as class 1.
func TestTrainBinary(t *testing.T) {
	ds := blobs(t, 300, 2, 4, 1.0, 2)
	g := mlp(t, 4, 1, []int{8}, 1)
	res, err := Train(t.Context(), g, ds, nil, Config{Epochs: 5, BatchSize: 32, LR: 0.02, Loss: "bce", Seed: 1, Threads: 1, ValSplit: 0.2})
	if err != nil {
		t.Fatal(err)
	}
	last := res.History[len(res.History)-1]
	if last.TrainAccuracy < 0.9 || last.Val.Accuracy < 0.9 {
		t.Errorf("binary accuracy train %.3f val %.3f, want > 0.9", last.TrainAccuracy, last.Val.Accuracy)
	}
}

// TestTrainSoftmaxOutput checks that a model ending in Softmax trains on
// the logits before it: cross-entropy of the probabilities would be wrong.
// It must reach the same parameters as the model without the Softmax.
func TestTrainSoftmaxOutput(t *testing.T) {
	ds := blobs(t, 200, 3, 4, 1.0, 3)
	cfg := Config{Epochs: 2, BatchSize: 32, LR: 0.01, Seed: 1, Threads: 1}
	plain := mlp(t, 4, 3, []int{8}, 1)
	if _, err := Train(t.Context(), plain, ds, nil, cfg); err != nil {
		t.Fatal(err)
	}
	for _, op := range []string{"Softmax", "LogSoftmax"} {
		g := mlp(t, 4, 3, []int{8}, 1)
		g.Nodes = append(g.Nodes, &rt.Node{Name: "probs", OpType: op, Inputs: []string{"logits"}, Outputs: []string{"probs"},
			Attrs: map[string]rt.Attr{"axis": {Kind: rt.AttrInt, I: 1}}})
		g.Outputs[0].Name = "probs"
		if _, err := Train(t.Context(), g, ds, nil, cfg); err != nil {
			t.Fatal(err)
		}
		if d := diffParams(params(plain), params(g), 0); d != "" {
			t.Errorf("%s output: %s", op, d)
		}
	}
}

func TestTrainDeterministic(t *testing.T) {
	ds := blobs(t, 300, 3, 4, 1.5, 4)
	tests := []struct {
		name    string
		dropout bool
		cfg     Config
	}{
		{"adam", false, Config{}},
		{"dropout sgd val split", true, Config{Optimizer: OptimizerConfig{Kind: "sgd", Momentum: 0.9}, LR: 0.05, ValSplit: 0.2}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			run := func(seed uint64) map[string][]float32 {
				g := mlp(t, 4, 3, []int{16, 8}, 1)
				if tc.dropout {
					withDropout(g, "relu1")
				}
				cfg := tc.cfg
				cfg.Epochs, cfg.BatchSize, cfg.Seed, cfg.Threads = 3, 16, seed, 2
				if _, err := Train(t.Context(), g, ds, nil, cfg); err != nil {
					t.Fatal(err)
				}
				return params(g)
			}
			a, b, c := run(7), run(7), run(8)
			if d := diffParams(a, b, 0); d != "" {
				t.Errorf("same seed, different parameters: %s", d)
			}
			if diffParams(a, c, 0) == "" {
				t.Errorf("seeds 7 and 8 give the same parameters")
			}
		})
	}
}

func TestEarlyStopping(t *testing.T) {
	ds := blobs(t, 300, 3, 4, 0.5, 5)
	// Validation accuracy reaches 1 within a few epochs and cannot
	// improve after that: training stops Patience epochs later and keeps
	// the weights of the first perfect epoch.
	base := Config{Epochs: 30, BatchSize: 32, LR: 0.01, Seed: 1, Threads: 1, ValSplit: 0.2}
	cfg := base
	cfg.Patience = 2
	g, res, err := trainOn(t, ds, FreezeSpec{}, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if !res.StoppedEarly {
		t.Fatalf("did not stop early: %d epochs", len(res.History))
	}
	if res.BestEpoch < 1 || len(res.History) != res.BestEpoch+cfg.Patience {
		t.Fatalf("best epoch %d, %d epochs run; want best+patience", res.BestEpoch, len(res.History))
	}
	best := res.History[res.BestEpoch-1].Val.Accuracy
	for i, h := range res.History {
		if h.Val.Accuracy > best || (i < res.BestEpoch-1 && h.Val.Accuracy >= best) {
			t.Errorf("epoch %d validation accuracy %v vs best epoch %d's %v", i+1, h.Val.Accuracy, res.BestEpoch, best)
		}
	}
	// The weights are those after the best epoch: a run of exactly that
	// many epochs ends with them.
	cfg = base
	cfg.Epochs = res.BestEpoch
	ref, _, err := trainOn(t, ds, FreezeSpec{}, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if d := diffParams(params(g), params(ref), 0); d != "" {
		t.Errorf("restored weights differ from the best epoch's: %s", d)
	}
	// ... and not those after the last epoch.
	cfg.Epochs = len(res.History)
	last, _, err := trainOn(t, ds, FreezeSpec{}, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if diffParams(params(g), params(last), 0) == "" {
		t.Errorf("early stopping kept the last epoch's weights")
	}

	// Resuming a run that stopped early reports the same and ends with the
	// same (best) weights.
	cfg = base
	cfg.Patience = 2
	cfg.Checkpoint = t.TempDir() + "/run.ckpt"
	if _, _, err := trainOn(t, ds, FreezeSpec{}, cfg); err != nil {
		t.Fatal(err)
	}
	cfg.Resume = true
	again, res2, err := trainOn(t, ds, FreezeSpec{}, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if !res2.StoppedEarly || res2.BestEpoch != res.BestEpoch || len(res2.History) != len(res.History) {
		t.Errorf("resumed stopped run: stopped %v best %d epochs %d; want true %d %d", res2.StoppedEarly, res2.BestEpoch, len(res2.History), res.BestEpoch, len(res.History))
	}
	if d := diffParams(params(g), params(again), 0); d != "" {
		t.Errorf("resumed stopped run: %s", d)
	}
}

// TestNoGoroutineLeak checks that a run failing mid-epoch stops its batch
// producer.
func TestNoGoroutineLeak(t *testing.T) {
	ds := blobs(t, 256, 3, 4, 1, 18)
	before := goruntime.NumGoroutine()
	for range 3 {
		_, _, err := trainOn(t, ds, FreezeSpec{}, Config{Epochs: 2, BatchSize: 8, LR: 1e25, Optimizer: OptimizerConfig{Kind: "sgd"}, Seed: 1, Threads: 1})
		var nan *NaNError
		if !errors.As(err, &nan) || nan.Step >= 32 {
			t.Fatalf("error %v, want a NaNError before the end of the epoch", err)
		}
	}
	deadline := time.Now().Add(2 * time.Second)
	for goruntime.NumGoroutine() > before && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := goruntime.NumGoroutine(); n > before {
		t.Errorf("%d goroutines before, %d after three failed runs", before, n)
	}
}

// TestEarlyStoppingValLoss freezes learning (a group with LR 0 for every
// parameter), so the validation loss never improves after epoch 1.
func TestEarlyStoppingValLoss(t *testing.T) {
	ds := blobs(t, 200, 3, 4, 1, 6)
	_, res, err := trainOn(t, ds, FreezeSpec{}, Config{Epochs: 10, BatchSize: 50, Seed: 1, Threads: 1, ValSplit: 0.25,
		Patience: 3, Monitor: "val_loss", Groups: []LRGroup{{Pattern: "*", LR: 0}}})
	if err != nil {
		t.Fatal(err)
	}
	if !res.StoppedEarly || res.BestEpoch != 1 || len(res.History) != 4 {
		t.Errorf("stopped early %v, best epoch %d, %d epochs; want true, 1, 4", res.StoppedEarly, res.BestEpoch, len(res.History))
	}
}

func TestValidationData(t *testing.T) {
	ds := blobs(t, 400, 3, 4, 1, 7)
	tests := []struct {
		name      string
		val       data.Dataset
		split     float64
		wantTrain int
		wantVal   int
	}{
		{"split 0.25", nil, 0.25, 300, 100},
		{"split 0.1", nil, 0.1, 360, 40},
		{"explicit validation set wins over the split", blobs(t, 50, 3, 4, 1, 8), 0.25, 400, 50},
		{"no validation", nil, 0, 400, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			g := mlp(t, 4, 3, []int{8}, 1)
			var steps []Event
			cfg := Config{Epochs: 2, BatchSize: 64, Seed: 1, Threads: 1, ValSplit: tc.split, Progress: func(e Event) {
				if e.Kind == "step" {
					steps = append(steps, e)
				}
			}}
			res, err := Train(t.Context(), g, ds, tc.val, cfg)
			if err != nil {
				t.Fatal(err)
			}
			wantSteps := (tc.wantTrain + 63) / 64
			if len(steps) != 2*wantSteps || steps[0].Steps != wantSteps {
				t.Errorf("%d step events of %d steps, want %d of %d", len(steps), steps[0].Steps, 2*wantSteps, wantSteps)
			}
			for _, h := range res.History {
				switch {
				case tc.wantVal == 0 && h.Val != nil:
					t.Errorf("epoch %d has validation metrics without validation data", h.Epoch)
				case tc.wantVal > 0 && (h.Val == nil || h.Val.Examples != tc.wantVal):
					t.Errorf("epoch %d validation %+v, want %d examples", h.Epoch, h.Val, tc.wantVal)
				}
			}
		})
	}
}

func TestSplitValidation(t *testing.T) {
	ds := blobs(t, 100, 2, 2, 1, 9)
	tr, va := SplitValidation(ds, 0.3, 5)
	tr2, va2 := SplitValidation(ds, 0.3, 5)
	_, va3 := SplitValidation(ds, 0.3, 6)
	ti, vi := tr.(*data.Subset).Indices, va.(*data.Subset).Indices
	if len(ti) != 70 || len(vi) != 30 {
		t.Fatalf("split %d/%d, want 70/30", len(ti), len(vi))
	}
	all := append(slices.Clone(ti), vi...)
	slices.Sort(all)
	for i, v := range all {
		if v != i {
			t.Fatalf("train and validation indices are not a partition of 0..99")
		}
	}
	if !slices.Equal(ti, tr2.(*data.Subset).Indices) || !slices.Equal(vi, va2.(*data.Subset).Indices) {
		t.Errorf("same seed, different split")
	}
	if slices.Equal(vi, va3.(*data.Subset).Indices) {
		t.Errorf("different seeds, same split")
	}
	if tr, va := SplitValidation(ds, 0.001, 1); va != nil || tr != ds {
		t.Errorf("a split rounding to no example should keep all data for training")
	}
}

func TestLRGroups(t *testing.T) {
	ds := blobs(t, 200, 3, 4, 1, 10)
	tests := []struct {
		name   string
		groups []LRGroup
		frozen func(string) bool // parameters that must not change
	}{
		{"fc1 at LR 0", []LRGroup{{"fc1.*", 0}}, func(n string) bool { return strings.HasPrefix(n, "fc1.") }},
		{"node name", []LRGroup{{"fc2", 0}}, func(n string) bool { return strings.HasPrefix(n, "fc2.") }},
		{"first matching group wins", []LRGroup{{"*.bias", 0}, {"fc*", 0.1}}, func(n string) bool { return strings.HasSuffix(n, ".bias") }},
		{"regex", []LRGroup{{"/^fc[12]\\./", 0}}, func(n string) bool { return n != "fc.weight" && n != "fc.bias" }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			g := mlp(t, 4, 3, []int{16, 8}, 1)
			before := params(g)
			if _, err := Train(t.Context(), g, ds, nil, Config{Epochs: 2, BatchSize: 32, LR: 0.01, Groups: tc.groups, Seed: 1, Threads: 1,
				Optimizer: OptimizerConfig{Kind: "adamw", WeightDecay: 0.1}}); err != nil {
				t.Fatal(err)
			}
			after := params(g)
			for name, v := range before {
				changed := !slices.Equal(v, after[name])
				if changed == tc.frozen(name) {
					t.Errorf("%s changed: %v, want %v", name, changed, !tc.frozen(name))
				}
			}
		})
	}
}

// oneStep trains the MLP for exactly one step (the whole data set is one
// batch) with plain SGD at LR lr and returns the parameters before and
// after.
func oneStep(t *testing.T, ds data.Dataset, lr float64, mod func(*Config)) (before, after map[string][]float32) {
	t.Helper()
	g := mlp(t, 4, 3, []int{16, 8}, 1)
	before = params(g)
	cfg := Config{Epochs: 1, BatchSize: ds.Len(), LR: lr, Optimizer: OptimizerConfig{Kind: "sgd"}, Seed: 1, Threads: 1}
	if mod != nil {
		mod(&cfg)
	}
	if _, err := Train(t.Context(), g, ds, nil, cfg); err != nil {
		t.Fatal(err)
	}
	return before, params(g)
}

func updateNorm(before, after map[string][]float32) (norm, maxAbs float64) {
	for name, b := range before {
		for i, v := range b {
			d := float64(after[name][i]) - float64(v)
			norm += d * d
			maxAbs = math.Max(maxAbs, math.Abs(d))
		}
	}
	return math.Sqrt(norm), maxAbs
}

func TestClipping(t *testing.T) {
	ds := blobs(t, 64, 3, 4, 1, 11)
	const lr = 1.0
	b, a := oneStep(t, ds, lr, nil)
	norm0, max0 := updateNorm(b, a)
	// Clip well below the unclipped values so that clipping must act.
	clipNorm, clipValue := norm0/lr/10, max0/lr/10
	b, a = oneStep(t, ds, lr, func(c *Config) { c.ClipNorm = clipNorm })
	norm, _ := updateNorm(b, a)
	if math.Abs(norm-lr*clipNorm) > 1e-4*norm {
		t.Errorf("ClipNorm %g: update norm %g, want %g (unclipped %g)", clipNorm, norm, lr*clipNorm, norm0)
	}
	b, a = oneStep(t, ds, lr, func(c *Config) { c.ClipValue = clipValue })
	_, mx := updateNorm(b, a)
	if mx > lr*clipValue*(1+1e-5) || mx < lr*clipValue*(1-1e-5) {
		t.Errorf("ClipValue %g: largest update %g, want %g (unclipped %g)", clipValue, mx, lr*clipValue, max0)
	}
	// A bound above the gradient changes nothing.
	_, a1 := oneStep(t, ds, lr, func(c *Config) { c.ClipNorm, c.ClipValue = 10*norm0, 10*max0 })
	_, a0 := oneStep(t, ds, lr, nil)
	if d := diffParams(a0, a1, 0); d != "" {
		t.Errorf("clipping above the gradient changed the update: %s", d)
	}
}

// TestPenalties checks one SGD step with L1 and L2 against the step
// without: weights (rank >= 2) move by an extra -lr*(L1*sign(w) + 2*L2*w),
// biases do not.
func TestPenalties(t *testing.T) {
	ds := blobs(t, 64, 3, 4, 1, 12)
	const lr = 0.5
	_, plain := oneStep(t, ds, lr, nil)
	tests := []struct{ l1, l2 float64 }{{0, 0.1}, {0.01, 0}, {0.01, 0.05}}
	for _, tc := range tests {
		before, after := oneStep(t, ds, lr, func(c *Config) { c.L1, c.L2 = tc.l1, tc.l2 })
		for name, w0 := range before {
			isWeight := strings.HasSuffix(name, ".weight")
			for i, w := range w0 {
				sign := 0.0
				if w > 0 {
					sign = 1
				} else if w < 0 {
					sign = -1
				}
				extra := 0.0
				if isWeight {
					extra = -lr * (tc.l1*sign + 2*tc.l2*float64(w))
				}
				got := float64(after[name][i]) - float64(plain[name][i])
				if math.Abs(got-extra) > 1e-6 {
					t.Fatalf("L1 %g L2 %g: %s[%d] moved %g more than without penalty, want %g", tc.l1, tc.l2, name, i, got, extra)
				}
			}
		}
	}
}

// TestAfterStep checks the hook runs once per step, after the update and
// before the step's event, and that its changes to parameters persist.
func TestAfterStep(t *testing.T) {
	ds := blobs(t, 100, 3, 4, 1, 19)
	g := mlp(t, 4, 3, []int{8}, 1)
	w := g.Params["fc.weight"].T.F32
	calls, events := 0, 0
	cfg := Config{Epochs: 2, BatchSize: 25, LR: 0.1, Seed: 1, Threads: 1,
		AfterStep: func() {
			calls++
			if calls != events+1 {
				t.Errorf("AfterStep call %d after %d step events", calls, events)
			}
			w[0], w[5] = 0, 0 // a pruning mask
		},
		Progress: func(e Event) {
			if e.Kind == "step" {
				events++
			}
		}}
	if _, err := Train(t.Context(), g, ds, nil, cfg); err != nil {
		t.Fatal(err)
	}
	if calls != 8 || events != 8 {
		t.Errorf("%d AfterStep calls and %d step events, want 8", calls, events)
	}
	if w[0] != 0 || w[5] != 0 {
		t.Errorf("masked weights are %v and %v after training", w[0], w[5])
	}
}

func TestProgressEvents(t *testing.T) {
	ds := blobs(t, 100, 3, 4, 1, 13)
	var events []Event
	cfg := Config{Epochs: 3, BatchSize: 30, LR: 0.1, Schedule: Schedule{Kind: "step", StepSize: 4, Gamma: 0.5}, Seed: 1, Threads: 1,
		ValSplit: 0.2, Progress: func(e Event) { events = append(events, e) }}
	if _, _, err := trainOn(t, ds, FreezeSpec{}, cfg); err != nil {
		t.Fatal(err)
	}
	// 80 training examples in batches of 30: 3 steps per epoch.
	if len(events) != 3*(3+1) {
		t.Fatalf("%d events, want 12", len(events))
	}
	global := 0
	for _, e := range events {
		if e.Kind == "epoch" {
			if e.Val == nil || e.Val.Examples != 20 {
				t.Errorf("epoch event %+v without validation of 20 examples", e)
			}
			continue
		}
		global++
		if e.GlobalStep != global || e.Steps != 3 || e.Epochs != 3 {
			t.Errorf("step event %+v, want global step %d of 3 steps", e, global)
		}
		if want := cfg.Schedule.LR(0.1, global-1); e.LR != want {
			t.Errorf("step %d LR %v, want %v", global, e.LR, want)
		}
		if math.IsNaN(e.Loss) || e.Accuracy < 0 || e.Accuracy > 1 {
			t.Errorf("step %d: loss %v accuracy %v", global, e.Loss, e.Accuracy)
		}
	}
}

func TestNaNInData(t *testing.T) {
	tests := []struct {
		name   string
		spec   FreezeSpec
		cfg    Config
		value  float32
		wantIn string
	}{
		{"nan", FreezeSpec{}, Config{}, float32(math.NaN()), "example 17 "},
		{"inf with validation split", FreezeSpec{}, Config{ValSplit: 0.3}, float32(math.Inf(1)), "example 17 "},
		{"nan with cached frozen prefix", FreezeSpec{Freeze: []string{"fc1"}}, Config{CacheFrozen: true}, float32(math.NaN()), "example 17 "},
		{"nan with cached prefix and split", FreezeSpec{Freeze: []string{"fc1"}}, Config{CacheFrozen: true, ValSplit: 0.3}, float32(math.NaN()), "example 17 "},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ds := blobs(t, 100, 3, 4, 1, 14)
			x := make([]float32, 4)
			// Poison example 17 through a copy of the data set.
			raw := rt.New(rt.Float32, 100, 4)
			labels := make([]int, 100)
			for i := range labels {
				labels[i], _ = ds.Example(i, x)
				copy(raw.F32[i*4:], x)
			}
			raw.F32[17*4+2] = tc.value
			bad, err := data.NewInMemory("poisoned blobs", raw, labels, 3)
			if err != nil {
				t.Fatal(err)
			}
			cfg := tc.cfg
			cfg.Epochs, cfg.BatchSize, cfg.Seed, cfg.Threads = 2, 16, 1, 1
			_, _, err = trainOn(t, bad, tc.spec, cfg)
			if err == nil {
				t.Fatal("training on data holding NaN succeeded")
			}
			var nan *NaNError
			if errors.As(err, &nan) {
				t.Fatalf("got a NaNError (%v), want the data error naming the example", err)
			}
			if msg := err.Error(); !strings.Contains(msg, tc.wantIn) || !strings.Contains(msg, "poisoned blobs") {
				t.Errorf("error %q should name example 17 of the poisoned data set", msg)
			}
		})
	}
}

func TestNaNFromHugeLR(t *testing.T) {
	ds := blobs(t, 64, 3, 4, 1, 15)
	ckpt := t.TempDir() + "/run.ckpt"
	// One step per epoch: epoch 1's step is finite and blows the weights
	// up, epoch 2's loss overflows.
	_, _, err := trainOn(t, ds, FreezeSpec{}, Config{Epochs: 3, BatchSize: 64, LR: 1e25, Optimizer: OptimizerConfig{Kind: "sgd"},
		Seed: 1, Threads: 1, Checkpoint: ckpt})
	var nan *NaNError
	if !errors.As(err, &nan) {
		t.Fatalf("error %v, want a *NaNError", err)
	}
	if nan.Epoch != 2 || nan.Step != 1 || nan.Checkpoint != ckpt {
		t.Errorf("NaNError %+v, want epoch 2 step 1 checkpoint %s", *nan, ckpt)
	}
	for _, want := range []string{"epoch 2 step 1", ckpt} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
	// Without a checkpoint the error says so.
	_, _, err = trainOn(t, ds, FreezeSpec{}, Config{Epochs: 3, BatchSize: 64, LR: 1e25, Optimizer: OptimizerConfig{Kind: "sgd"}, Seed: 1, Threads: 1})
	if !errors.As(err, &nan) || nan.Checkpoint != "" || !strings.Contains(err.Error(), "no checkpoint") {
		t.Errorf("error %v, want a NaNError without a checkpoint", err)
	}
}

// TestNonFiniteGradient checks adjustGrads' report of a gradient holding
// NaN or Inf, which names the parameter.
func TestNonFiniteGradient(t *testing.T) {
	g := mlp(t, 4, 3, []int{8}, 1)
	tr := &trainer{g: g, trainable: []string{"fc.bias", "fc.weight"}}
	grads := []*rt.Tensor{rt.New(rt.Float32, 3), rt.New(rt.Float32, 3, 8)}
	if what := tr.adjustGrads(grads); what != "" {
		t.Fatalf("zero gradients reported: %s", what)
	}
	grads[1].F32[5] = float32(math.Inf(-1))
	if what := tr.adjustGrads(grads); !strings.Contains(what, `"fc.weight"`) {
		t.Errorf("report %q should name fc.weight", what)
	}
}

func TestTrainErrors(t *testing.T) {
	ds := blobs(t, 40, 3, 4, 1, 16)
	tests := []struct {
		name string
		spec FreezeSpec
		cfg  Config
		want string
	}{
		{"everything frozen", FreezeSpec{FreezeUntil: "fc"}, Config{}, "every parameter is frozen"},
		{"negative epochs", FreezeSpec{}, Config{Epochs: -1}, "epochs"},
		{"negative batch", FreezeSpec{}, Config{BatchSize: -2}, "batch size"},
		{"negative lr", FreezeSpec{}, Config{LR: -1}, "learning rate"},
		{"val split 1", FreezeSpec{}, Config{ValSplit: 1}, "validation split"},
		{"negative patience", FreezeSpec{}, Config{Patience: -1}, "patience"},
		{"patience without validation", FreezeSpec{}, Config{Patience: 2}, "validation"},
		{"unknown monitor", FreezeSpec{}, Config{Monitor: "accuracy"}, "monitor"},
		{"resume without checkpoint", FreezeSpec{}, Config{Resume: true}, "checkpoint"},
		{"checkpoint in a missing folder", FreezeSpec{}, Config{Checkpoint: "/nonexistent/dir/x.ckpt"}, "folder does not exist"},
		{"resume from a missing file", FreezeSpec{}, Config{Resume: true, Checkpoint: "/nonexistent/x.ckpt"}, "x.ckpt"},
		{"unknown loss", FreezeSpec{}, Config{Loss: "hinge"}, "unknown loss"},
		{"unknown optimizer", FreezeSpec{}, Config{Optimizer: OptimizerConfig{Kind: "lamb"}}, "unknown optimizer"},
		{"bad group pattern", FreezeSpec{}, Config{Groups: []LRGroup{{"/(/", 0.1}}}, "pattern"},
		{"negative group lr", FreezeSpec{}, Config{Groups: []LRGroup{{"fc*", -0.1}}}, "learning rate"},
		{"bad schedule", FreezeSpec{}, Config{Schedule: Schedule{Kind: "step"}}, "step size"},
		{"negative clip", FreezeSpec{}, Config{ClipNorm: -1}, "clip"},
		{"class weights", FreezeSpec{}, Config{ClassWeights: []float64{1, 2}}, "class weights"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := tc.cfg
			cfg.Threads = 1
			_, _, err := trainOn(t, ds, tc.spec, cfg)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one containing %q", err, tc.want)
			}
		})
	}
	t.Run("labels beyond the head", func(t *testing.T) {
		g := mlp(t, 4, 2, []int{8}, 1) // 2 outputs, 3 classes
		_, err := Train(t.Context(), g, ds, nil, Config{Threads: 1})
		if err == nil || !strings.Contains(err.Error(), "--num-classes") {
			t.Fatalf("error %v, want one suggesting --num-classes", err)
		}
	})
	t.Run("no training examples", func(t *testing.T) {
		g := mlp(t, 4, 3, []int{8}, 1)
		_, err := Train(t.Context(), g, &data.Subset{DS: ds}, nil, Config{Threads: 1})
		if err == nil || !strings.Contains(err.Error(), "no training examples") {
			t.Fatalf("error %v", err)
		}
	})
	t.Run("wrong example size", func(t *testing.T) {
		g := mlp(t, 5, 3, []int{8}, 1)
		_, err := Train(t.Context(), g, ds, nil, Config{Threads: 1})
		if err == nil {
			t.Fatal("training a 5-feature model on 4-feature data succeeded")
		}
	})
}

// TestTrainBatchNorm trains the small ResNet (BatchNormalization in
// training mode): the running statistics move, and stay put when the
// BatchNormalization layers are frozen.
func TestTrainBatchNorm(t *testing.T) {
	ds := images(t, 48, 2, 17)
	tests := []struct {
		name      string
		spec      FreezeSpec
		wantMoved bool
	}{
		{"trainable", FreezeSpec{}, true},
		{"frozen batch norm", FreezeSpec{Freeze: []string{"/bn|downsample\\.1/"}}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			g := smallResNet(t)
			if _, err := tc.spec.Apply(g); err != nil {
				t.Fatal(err)
			}
			before := params(g)
			if _, err := Train(t.Context(), g, ds, nil, Config{Epochs: 1, BatchSize: 16, LR: 0.01, Seed: 1, Threads: 1}); err != nil {
				t.Fatal(err)
			}
			after := params(g)
			moved := !slices.Equal(before["layer1.0.bn1.running_mean"], after["layer1.0.bn1.running_mean"])
			if moved != tc.wantMoved {
				t.Errorf("running mean moved: %v, want %v", moved, tc.wantMoved)
			}
		})
	}
}

// images makes n random 1x8x8 images in classes with a class-dependent
// brightness.
func images(t testing.TB, n, classes int, seed uint64) *data.InMemory {
	t.Helper()
	b := blobs(t, n, classes, 64, 0.5, seed)
	x := rt.New(rt.Float32, n, 1, 8, 8)
	labels := make([]int, n)
	for i := range labels {
		var err error
		if labels[i], err = b.Example(i, x.F32[i*64:(i+1)*64]); err != nil {
			t.Fatal(err)
		}
	}
	ds, err := data.NewInMemory("images", x, labels, classes)
	if err != nil {
		t.Fatal(err)
	}
	return ds
}
