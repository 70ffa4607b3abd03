package finetune

import (
	"bytes"
	"encoding/gob"
	"fmt"
	"os"
	"path/filepath"
	"slices"
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
}

// saveCheckpoint writes the checkpoint atomically (temp file, then rename).
func (t *trainer) saveCheckpoint(st *runState, best map[string][]float32) error {
	st.BestParams = best
	cf := checkpointFile{Magic: checkpointMagic, Trainable: t.trainable, State: *st, Params: t.snapshot(), Optimizer: t.opt.State()}
	var buf bytes.Buffer
	if err := gob.NewEncoder(&buf).Encode(&cf); err != nil {
		return fmt.Errorf("encoding checkpoint: %w", err)
	}
	return writeFileAtomic(t.cfg.Checkpoint, buf.Bytes())
}

func (t *trainer) loadCheckpoint(st *runState) error {
	raw, err := os.ReadFile(t.cfg.Checkpoint)
	if err != nil {
		return fmt.Errorf("--resume: %w", err)
	}
	var cf checkpointFile
	if err := gob.NewDecoder(bytes.NewReader(raw)).Decode(&cf); err != nil || cf.Magic != checkpointMagic {
		return fmt.Errorf("--resume: %s is not a compress checkpoint (or is damaged): %v", t.cfg.Checkpoint, err)
	}
	if !slices.Equal(cf.Trainable, t.trainable) {
		return fmt.Errorf("--resume: %s was written by a run that trained other parameters (%d vs %d); resume with the same model and freezing flags", t.cfg.Checkpoint, len(cf.Trainable), len(t.trainable))
	}
	for name, v := range cf.Params {
		p, ok := t.g.Params[name]
		if !ok || len(p.T.F32) != len(v) {
			return fmt.Errorf("--resume: checkpoint parameter %q does not fit the model", name)
		}
		copy(p.T.F32, v)
	}
	if err := t.opt.SetState(cf.Optimizer); err != nil {
		return fmt.Errorf("--resume: %w", err)
	}
	*st = cf.State
	return nil
}

// writeFileAtomic writes data to a temporary file beside path and renames
// it over path, so that path never holds a partial file.
func writeFileAtomic(path string, data []byte) error {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	if _, err := f.Write(data); err != nil {
		f.Close()
		os.Remove(tmp)
		return err
	}
	if err := f.Close(); err != nil {
		os.Remove(tmp)
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return err
	}
	return nil
}
