package finetune

import (
	"bytes"
	"encoding/gob"
	"fmt"
	"os"
	"slices"

	"github.com/compressml/compress/internal/atomicfile"
)

// runState is the trainer's progress, saved in checkpoints.
type runState struct {
	Epoch       int // epochs completed (the epoch in progress, 0-based)
	StepInEpoch int // steps done in the epoch in progress
	SumLoss     float64
	SumCorrect  int
	Seen        int
	Best        float64
	BestEpoch   int
	BadEpochs   int
	Stop        bool
	History     []EpochStats
	BestParams  map[string][]float32
}

const checkpointMagic = "compress-checkpoint/1"

type checkpointFile struct {
	Magic     string
	Trainable []string
	State     runState
	Params    map[string][]float32
	Optimizer OptimizerState
	// What decides the order and size of the steps: a resumed run must
	// use the same (0 in files from before these were recorded: unchecked).
	Examples  int
	BatchSize int
	Seed      uint64
}

// saveCheckpoint writes the checkpoint atomically (temp file, then rename).
func (t *trainer) saveCheckpoint(st *runState, best map[string][]float32) error {
	st.BestParams = best
	cf := checkpointFile{Magic: checkpointMagic, Trainable: t.trainable, State: *st, Params: t.snapshot(), Optimizer: t.opt.State(),
		Examples: t.trainSrc.Len(), BatchSize: t.cfg.BatchSize, Seed: t.cfg.Seed}
	var buf bytes.Buffer
	if err := gob.NewEncoder(&buf).Encode(&cf); err != nil {
		return fmt.Errorf("encoding checkpoint: %w", err)
	}
	return atomicfile.WriteBytes(t.cfg.Checkpoint, buf.Bytes())
}

func (t *trainer) loadCheckpoint(st *runState) error {
	raw, err := os.ReadFile(t.cfg.Checkpoint)
	if err != nil {
		return fmt.Errorf("--resume: %w", err)
	}
	var cf checkpointFile
	if err := gob.NewDecoder(bytes.NewReader(raw)).Decode(&cf); err != nil {
		return fmt.Errorf("--resume: %s is not a compress checkpoint (or is damaged): %v", t.cfg.Checkpoint, err)
	}
	if cf.Magic != checkpointMagic {
		return fmt.Errorf("--resume: %s is not a compress checkpoint (it says %q, want %q)", t.cfg.Checkpoint, cf.Magic, checkpointMagic)
	}
	if !slices.Equal(cf.Trainable, t.trainable) {
		return fmt.Errorf("--resume: %s was written by a run that trained other parameters (%d vs %d); resume with the same model and freezing flags", t.cfg.Checkpoint, len(cf.Trainable), len(t.trainable))
	}
	if cf.Examples != 0 {
		switch {
		case cf.Examples != t.trainSrc.Len():
			return fmt.Errorf("--resume: %s was written by a run on %d training examples, this one has %d; resume with the same data and --val-split", t.cfg.Checkpoint, cf.Examples, t.trainSrc.Len())
		case cf.BatchSize != t.cfg.BatchSize:
			return fmt.Errorf("--resume: %s was written by a run with batch size %d, this one uses %d; resume with the same --batch", t.cfg.Checkpoint, cf.BatchSize, t.cfg.BatchSize)
		case cf.Seed != t.cfg.Seed:
			return fmt.Errorf("--resume: %s was written by a run with seed %d, this one uses %d; resume with the same --seed", t.cfg.Checkpoint, cf.Seed, t.cfg.Seed)
		}
	}
	for name, v := range cf.Params {
		p, ok := t.g.Params[name]
		if !ok || len(p.T.F32) != len(v) {
			return fmt.Errorf("--resume: checkpoint parameter %q does not fit the model", name)
		}
	}
	if err := t.opt.SetState(cf.Optimizer); err != nil {
		return fmt.Errorf("--resume: %w", err)
	}
	// Only now that everything fits does the model change.
	for name, v := range cf.Params {
		copy(t.g.Params[name].T.F32, v)
	}
	*st = cf.State
	return nil
}
