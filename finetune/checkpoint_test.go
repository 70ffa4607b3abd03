package finetune

import (
	"bytes"
	"context"
	"encoding/gob"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/compressml/compress/data"
	rt "github.com/compressml/compress/runtime"
)

func readCheckpoint(t *testing.T, path string) checkpointFile {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var cf checkpointFile
	if err := gob.NewDecoder(bytes.NewReader(raw)).Decode(&cf); err != nil {
		t.Fatal(err)
	}
	return cf
}

func TestCheckpointEveryEpoch(t *testing.T) {
	ds := blobs(t, 120, 3, 4, 1, 20)
	path := filepath.Join(t.TempDir(), "run.ckpt")
	var epochs []int
	cfg := Config{Epochs: 3, BatchSize: 32, Seed: 1, Threads: 1, Checkpoint: path, ValSplit: 0.2, Progress: func(e Event) {
		if e.Kind != "epoch" {
			return
		}
		cf := readCheckpoint(t, path)
		if cf.Magic != checkpointMagic || cf.State.Epoch != e.Epoch || cf.State.StepInEpoch != 0 || len(cf.State.History) != e.Epoch {
			t.Errorf("after epoch %d the checkpoint holds epoch %d step %d, %d history entries", e.Epoch, cf.State.Epoch, cf.State.StepInEpoch, len(cf.State.History))
		}
		if cf.Optimizer.Kind != "adam" || cf.Optimizer.Step != int64(e.GlobalStep) {
			t.Errorf("after epoch %d the optimizer state is %s at step %d, want adam at %d", e.Epoch, cf.Optimizer.Kind, cf.Optimizer.Step, e.GlobalStep)
		}
		epochs = append(epochs, e.Epoch)
	}}
	g, _, err := trainOn(t, ds, FreezeSpec{Freeze: []string{"fc1"}}, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if len(epochs) != 3 {
		t.Fatalf("saw %d epoch events", len(epochs))
	}
	cf := readCheckpoint(t, path)
	if strings.Join(cf.Trainable, ",") != "fc.bias,fc.weight,fc2.bias,fc2.weight" {
		t.Errorf("checkpoint trainable %v", cf.Trainable)
	}
	final := params(g)
	for name, v := range cf.Params {
		if d := diffParams(map[string][]float32{name: v}, map[string][]float32{name: final[name]}, 0); d != "" {
			t.Errorf("checkpoint after the last epoch: %s", d)
		}
	}
	// No temporary files are left beside it.
	entries, _ := os.ReadDir(filepath.Dir(path))
	if len(entries) != 1 {
		t.Errorf("%d files in the checkpoint directory, want 1", len(entries))
	}
}

// resumeCase is a recipe for the interrupt-and-resume tests.
type resumeCase struct {
	name    string
	model   func(t *testing.T) *rt.Graph
	ds      data.Dataset
	spec    FreezeSpec
	cfg     Config
	stopAt  []int // cancel after these global steps (one interruption each)
	wantErr bool
}

func TestInterruptAndResume(t *testing.T) {
	blobData := blobs(t, 150, 3, 4, 1.5, 21)
	imgData := images(t, 40, 2, 22)
	mlpModel := func(t *testing.T) *rt.Graph { return mlp(t, 4, 3, []int{16, 8}, 1) }
	dropoutModel := func(t *testing.T) *rt.Graph { return withDropout(mlp(t, 4, 3, []int{16, 8}, 1), "relu1") }
	resnet := func(t *testing.T) *rt.Graph { return smallResNet(t) }
	// 150 examples in batches of 32: 5 steps per epoch (4 with a 0.2 split).
	tests := []resumeCase{
		{name: "mid-epoch", model: mlpModel, ds: blobData, cfg: Config{}, stopAt: []int{7}},
		{name: "first step", model: mlpModel, ds: blobData, cfg: Config{}, stopAt: []int{1}},
		{name: "end of an epoch", model: mlpModel, ds: blobData, cfg: Config{}, stopAt: []int{5}},
		{name: "twice", model: mlpModel, ds: blobData, cfg: Config{}, stopAt: []int{3, 11}},
		{name: "sgd nesterov cosine warm-up", model: mlpModel, ds: blobData,
			cfg: Config{Optimizer: OptimizerConfig{Kind: "sgd", Momentum: 0.9, Nesterov: true}, LR: 0.05, Schedule: Schedule{Kind: "cosine", WarmupSteps: 3}}, stopAt: []int{8}},
		{name: "dropout adamw validation patience", model: dropoutModel, ds: blobData,
			cfg: Config{Optimizer: OptimizerConfig{Kind: "adamw", WeightDecay: 0.01}, ValSplit: 0.2, Patience: 1, LR: 0.01}, stopAt: []int{6}},
		{name: "cached frozen prefix", model: mlpModel, ds: blobData, spec: FreezeSpec{Freeze: []string{"fc1"}},
			cfg: Config{CacheFrozen: true, ValSplit: 0.2}, stopAt: []int{9}},
		{name: "batch norm", model: resnet, ds: imgData, cfg: Config{BatchSize: 16}, stopAt: []int{4}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := tc.cfg
			cfg.Epochs, cfg.Seed, cfg.Threads = 3, 5, 2
			if cfg.BatchSize == 0 {
				cfg.BatchSize = 32
			}
			fresh := func() *rt.Graph {
				g := tc.model(t)
				if _, err := tc.spec.Apply(g); err != nil {
					t.Fatal(err)
				}
				return g
			}
			ref := fresh()
			refRes, err := Train(t.Context(), ref, tc.ds, nil, cfg)
			if err != nil {
				t.Fatal(err)
			}

			g := fresh()
			cfg.Checkpoint = filepath.Join(t.TempDir(), "run.ckpt")
			var res *Result
			for i := 0; ; i++ {
				ctx, cancel := context.WithCancel(t.Context())
				run := cfg
				run.Resume = i > 0
				if i < len(tc.stopAt) {
					stop := tc.stopAt[i]
					run.Progress = func(e Event) {
						if e.Kind == "step" && e.GlobalStep == stop {
							cancel()
						}
					}
				}
				res, err = Train(ctx, g, tc.ds, nil, run)
				cancel()
				if i < len(tc.stopAt) {
					if !errors.Is(err, ErrInterrupted) || !strings.Contains(err.Error(), cfg.Checkpoint) {
						t.Fatalf("interruption %d: error %v, want ErrInterrupted naming the checkpoint", i+1, err)
					}
					continue
				}
				if err != nil {
					t.Fatal(err)
				}
				break
			}
			if d := diffParams(params(ref), params(g), 0); d != "" {
				t.Errorf("resumed run differs from the uninterrupted one: %s", d)
			}
			if len(res.History) != len(refRes.History) || res.BestEpoch != refRes.BestEpoch || res.StoppedEarly != refRes.StoppedEarly {
				t.Errorf("resumed result %d epochs best %d stopped %v; uninterrupted %d best %d stopped %v",
					len(res.History), res.BestEpoch, res.StoppedEarly, len(refRes.History), refRes.BestEpoch, refRes.StoppedEarly)
			}
			for i := range min(len(res.History), len(refRes.History)) {
				a, b := res.History[i], refRes.History[i]
				if a.TrainLoss != b.TrainLoss || a.TrainAccuracy != b.TrainAccuracy {
					t.Errorf("epoch %d: resumed train loss/accuracy %v/%v, uninterrupted %v/%v", i+1, a.TrainLoss, a.TrainAccuracy, b.TrainLoss, b.TrainAccuracy)
				}
			}
		})
	}
}

// TestInterruptWithoutCheckpoint: the error says the progress is lost.
func TestInterruptWithoutCheckpoint(t *testing.T) {
	ds := blobs(t, 100, 3, 4, 1, 26)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	g := mlp(t, 4, 3, []int{8}, 1)
	_, err := Train(ctx, g, ds, nil, Config{Epochs: 2, BatchSize: 10, Threads: 1, Progress: func(e Event) {
		if e.GlobalStep == 3 {
			cancel()
		}
	}})
	if !errors.Is(err, ErrInterrupted) || !strings.Contains(err.Error(), "progress is lost") {
		t.Fatalf("error %v, want ErrInterrupted saying the progress is lost", err)
	}
}

// TestInterruptDuringValidation cancels while the validation of epoch 1
// runs (from a data set whose Example notices the cancellation): the
// checkpoint is written and resuming ends like an uninterrupted run.
func TestInterruptDuringValidation(t *testing.T) {
	train := blobs(t, 100, 3, 4, 1, 23)
	val := blobs(t, 600, 3, 4, 1, 24)
	cfg := Config{Epochs: 2, BatchSize: 25, Seed: 1, Threads: 1}
	ref := mlp(t, 4, 3, []int{8}, 1)
	if _, err := Train(t.Context(), ref, train, val, cfg); err != nil {
		t.Fatal(err)
	}
	g := mlp(t, 4, 3, []int{8}, 1)
	cfg.Checkpoint = filepath.Join(t.TempDir(), "run.ckpt")
	ctx, cancel := context.WithCancel(t.Context())
	cv := &cancelOnRead{Dataset: val, after: 300, cancel: cancel}
	_, err := Train(ctx, g, train, cv, cfg)
	cancel()
	if !errors.Is(err, ErrInterrupted) {
		t.Fatalf("error %v, want ErrInterrupted", err)
	}
	if cf := readCheckpoint(t, cfg.Checkpoint); cf.State.Epoch != 0 || cf.State.StepInEpoch != 4 {
		t.Errorf("checkpoint at epoch %d step %d, want epoch 0 (in progress) after its 4 steps", cf.State.Epoch, cf.State.StepInEpoch)
	}
	cfg.Resume = true
	res, err := Train(t.Context(), g, train, val, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.History) != 2 || res.History[0].Val == nil || res.History[0].Val.Examples != 600 {
		t.Errorf("history after resuming: %+v", res.History)
	}
	if d := diffParams(params(ref), params(g), 0); d != "" {
		t.Errorf("resumed run differs: %s", d)
	}
}

// cancelOnRead cancels a context once after examples have been read.
type cancelOnRead struct {
	data.Dataset
	after  int
	n      int
	cancel func()
}

func (c *cancelOnRead) Example(i int, x []float32) (int, error) {
	c.n++
	if c.n == c.after {
		c.cancel()
	}
	return c.Dataset.Example(i, x)
}

func TestResumeErrors(t *testing.T) {
	ds := blobs(t, 100, 3, 4, 1, 25)
	dir := t.TempDir()
	path := filepath.Join(dir, "run.ckpt")
	base := Config{Epochs: 1, BatchSize: 20, Seed: 1, Threads: 1, Checkpoint: path}
	if _, _, err := trainOn(t, ds, FreezeSpec{}, base); err != nil {
		t.Fatal(err)
	}
	garbage := filepath.Join(dir, "garbage.ckpt")
	if err := os.WriteFile(garbage, []byte("not a checkpoint"), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		spec FreezeSpec
		mod  func(*Config)
		ds   data.Dataset
		want string
	}{
		{"other trainable parameters", FreezeSpec{Freeze: []string{"fc1"}}, nil, ds, "trained other parameters"},
		{"other optimizer", FreezeSpec{}, func(c *Config) { c.Optimizer.Kind = "sgd" }, ds, "optimizer state"},
		{"other batch size", FreezeSpec{}, func(c *Config) { c.BatchSize = 10 }, ds, "batch size"},
		{"other seed", FreezeSpec{}, func(c *Config) { c.Seed = 2 }, ds, "seed"},
		{"other data", FreezeSpec{}, nil, blobs(t, 80, 3, 4, 1, 25), "training examples"},
		{"damaged file", FreezeSpec{}, func(c *Config) { c.Checkpoint = garbage }, ds, "not a compress checkpoint"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := base
			cfg.Epochs, cfg.Resume = 2, true
			if tc.mod != nil {
				tc.mod(&cfg)
			}
			g := mlp(t, 4, 3, []int{16, 8}, 1)
			if _, err := tc.spec.Apply(g); err != nil {
				t.Fatal(err)
			}
			before := params(g)
			_, err := Train(t.Context(), g, tc.ds, nil, cfg)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one containing %q", err, tc.want)
			}
			if d := diffParams(before, params(g), 0); d != "" {
				t.Errorf("a refused resume changed the model: %s", d)
			}
		})
	}
}
