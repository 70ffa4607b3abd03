package finetune

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/compressml/compress/data"
)

// Config is a training recipe. The zero value of a field means its default.
type Config struct {
	Epochs    int // default 1
	BatchSize int // default 64

	Optimizer OptimizerConfig
	LR        float64 // base learning rate (default 1e-3)
	// Groups give parameters matching a pattern (by parameter name or the
	// name of a node reading it, as in FreezeSpec) their own learning rate
	// (the first matching group wins; others use LR), e.g. a lower rate for
	// an unfrozen backbone than for a new head. The schedule scales every
	// group's rate alike.
	Groups   []LRGroup
	Schedule Schedule

	L1, L2    float64 // penalties on weights (parameters of rank >= 2): L1*sum|w| and L2*sum w^2
	ClipNorm  float64 // clip the global gradient norm to this (0: off)
	ClipValue float64 // clip every gradient value to [-ClipValue, ClipValue] (0: off)

	Loss           string // cross-entropy (default), mse, bce
	LabelSmoothing float64
	ClassWeights   []float64

	ValSplit float64 // fraction of the training data held out for validation
	Patience int     // early stopping: epochs without improvement (0: off)
	Monitor  string  // "val_accuracy" (default) or "val_loss"

	Seed    uint64
	Threads int

	Preprocess data.Preprocess

	// EvalMode names BatchNormalization and Dropout nodes (patterns, see
	// ParsePattern) that stay in inference mode while training: such a
	// BatchNormalization normalises with its running statistics and does not
	// update them, such a Dropout passes values through. A BatchNormalization
	// whose scale and bias are both frozen is in inference mode anyway.
	EvalMode []Pattern

	// Augment, when set and enabled, randomly transforms every training
	// example (never validation or test examples) before Preprocess, with
	// new draws every epoch (Augment.Epoch is set by the trainer; its Seed
	// is used as given). The draws depend only on the seed, the epoch and
	// the example, so training stays deterministic and resumable. It cannot
	// be combined with CacheFrozen, which computes the frozen layers'
	// outputs once.
	Augment *data.Augment

	// Checkpoint is a file written at the end of every epoch and when the
	// context is cancelled; Resume continues from it.
	Checkpoint string
	Resume     bool

	// CacheFrozen computes the frozen prefix of the network once for the
	// whole training set and trains only the rest (see SplitFrozen).
	CacheFrozen bool

	// Progress, when set, receives an event after every step and epoch.
	Progress func(Event)

	// AfterStep, when set, is called after every optimizer step, once the
	// parameters have been updated (and before the step's Progress event).
	// Pruning uses it to re-apply its masks so that pruned weights stay
	// exactly zero; it may change parameter values in place.
	AfterStep func()
}

// LRGroup sets the learning rate of the parameters matching Pattern (a
// glob or /regexp/ over parameter and node names; see ParsePattern).
type LRGroup struct {
	Pattern string
	LR      float64
}

// Event reports training progress.
type Event struct {
	Kind          string // "step" or "epoch"
	Epoch, Epochs int    // 1-based epoch
	Step, Steps   int    // 1-based step within the epoch
	GlobalStep    int
	LR            float64
	Loss          float64 // running mean over the epoch so far
	Accuracy      float64 // running training accuracy (classification)
	SamplesPerSec float64
	Elapsed       time.Duration
	// Epoch events only:
	Val *Metrics
}

// Metrics are loss and accuracy on a data set.
type Metrics struct {
	Loss     float64 `json:"loss"`
	Accuracy float64 `json:"accuracy"`
	Examples int     `json:"examples"`
}

// EpochStats summarise one epoch.
type EpochStats struct {
	Epoch         int      `json:"epoch"`
	LR            float64  `json:"lr"`
	TrainLoss     float64  `json:"train_loss"`
	TrainAccuracy float64  `json:"train_accuracy"`
	Val           *Metrics `json:"val,omitempty"`
	Seconds       float64  `json:"seconds"`
	SamplesPerSec float64  `json:"samples_per_sec"`
}

// Result is what Train returns.
type Result struct {
	History      []EpochStats `json:"history"`
	BestEpoch    int          `json:"best_epoch"`
	StoppedEarly bool         `json:"stopped_early"`
	Trainable    []string     `json:"trainable"`
	CachedFrozen bool         `json:"cached_frozen"`
	// CacheSeconds is the time spent computing the frozen prefix once; it is
	// counted in SamplesPerSec, which covers all training steps.
	CacheSeconds  float64 `json:"cache_seconds"`
	SamplesPerSec float64 `json:"samples_per_sec"` // over all training steps
}

// ErrInterrupted is wrapped by the error Train returns when its context is
// cancelled; a checkpoint was written if Config.Checkpoint is set.
var ErrInterrupted = errors.New("training interrupted")

// NaNError reports a NaN or Inf in the loss or the gradients.
type NaNError struct {
	Epoch, Step int
	What        string
	Checkpoint  string // last good checkpoint, "" if none
}

func (e *NaNError) Error() string {
	s := fmt.Sprintf("%s at epoch %d step %d: training stopped", e.What, e.Epoch, e.Step)
	if e.Checkpoint != "" {
		s += "; the last good checkpoint is " + e.Checkpoint
	} else {
		s += "; no checkpoint was written yet"
	}
	return s + " (check the data for NaN/Inf values, or lower the learning rate, or clip gradients with --clip-norm)"
}

func (c *Config) defaults() error {
	if c.Epochs == 0 {
		c.Epochs = 1
	}
	if c.BatchSize == 0 {
		c.BatchSize = 64
	}
	if c.LR == 0 {
		c.LR = 1e-3
	}
	if c.Monitor == "" {
		c.Monitor = "val_accuracy"
	}
	switch {
	case c.Epochs < 0:
		return fmt.Errorf("epochs %d: must be positive", c.Epochs)
	case c.BatchSize < 0:
		return fmt.Errorf("batch size %d: must be positive", c.BatchSize)
	case c.LR < 0 || math.IsNaN(c.LR):
		return fmt.Errorf("learning rate %g: must be positive", c.LR)
	case c.ValSplit < 0 || c.ValSplit >= 1:
		return fmt.Errorf("validation split %g: must be in [0, 1)", c.ValSplit)
	case c.Patience < 0:
		return fmt.Errorf("patience %d: must not be negative", c.Patience)
	case c.Monitor != "val_accuracy" && c.Monitor != "val_loss":
		return fmt.Errorf("monitor %q: use val_accuracy or val_loss", c.Monitor)
	case c.ClipNorm < 0 || c.ClipValue < 0 || c.L1 < 0 || c.L2 < 0:
		return fmt.Errorf("clip and penalty values must not be negative")
	case c.Resume && c.Checkpoint == "":
		return fmt.Errorf("--resume needs a checkpoint file")
	}
	return c.Schedule.Validate()
}

// SplitValidation holds out frac of ds (a seeded random choice) for
// validation.
func SplitValidation(ds data.Dataset, frac float64, seed uint64) (train, val data.Dataset) {
	n := ds.Len()
	nv := int(math.Round(float64(n) * frac))
	if nv == 0 || nv >= n {
		return ds, nil
	}
	perm := rand.New(rand.NewPCG(seed, 0x76616c)).Perm(n) // "val"
	v := append([]int{}, perm[:nv]...)
	t := append([]int{}, perm[nv:]...)
	slices.Sort(v)
	slices.Sort(t)
	return &data.Subset{DS: ds, Indices: t}, &data.Subset{DS: ds, Indices: v}
}
