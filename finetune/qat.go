package finetune

import (
	"context"
	"fmt"

	"github.com/compressml/compress/data"
	"github.com/compressml/compress/quantize"
	rt "github.com/compressml/compress/runtime"
)

// QATResult is the outcome of TrainQAT.
type QATResult struct {
	// Train is the training history of the fake-quantised model.
	Train *Result
	// Model is the int8 model in QDQ format (quantize.QAT.Finalize).
	Model *rt.Graph
	// PTQ is the static post-training quantisation of the input model with
	// the same calibration, for comparison.
	PTQ *rt.Graph
	// Report describes the quantised layers of Model.
	Report *quantize.Report
	// TrainableParams counts the trained weight and bias values.
	TrainableParams int
}

// TrainQAT runs quantisation-aware training: it calibrates the activation
// ranges of g on the first qcfg.CalibSize examples of train (0: 512), trains
// the fake-quantised model (quantize.PrepareQAT: BatchNormalization folded,
// weights fake-quantised per output channel, activations with the
// calibrated scales; gradients by the straight-through estimator) with the
// recipe cfg, and returns the trained model quantised to int8 in QDQ
// format, the same kind of model as quantize.Static writes. g is not
// modified. qcfg.Preprocess and qcfg.Threads default to cfg's. The
// checkpoint (cfg.Checkpoint) holds the fake-quantised training graph's
// parameters; resuming calibrates again on the same examples, which gives
// the same scales.
func TrainQAT(ctx context.Context, g *rt.Graph, train, val data.Dataset, cfg Config, qcfg quantize.Config) (*QATResult, error) {
	if ctx == nil {
		ctx = context.Background()
	}
	if train == nil || train.Len() == 0 {
		return nil, fmt.Errorf("quantisation-aware training: no training examples")
	}
	if qcfg.Preprocess.IsIdentity() {
		qcfg.Preprocess = cfg.Preprocess
	}
	if qcfg.Threads == 0 {
		qcfg.Threads = cfg.Threads
	}
	q, err := quantize.PrepareQAT(ctx, g, train, qcfg)
	if err != nil {
		return nil, fmt.Errorf("quantisation-aware training: %w", err)
	}
	res, err := Train(ctx, q.Graph, train, val, cfg)
	if err != nil {
		return nil, fmt.Errorf("quantisation-aware training: %w", err)
	}
	model, rep, err := q.Finalize(ctx)
	if err != nil {
		return nil, fmt.Errorf("quantisation-aware training: %w", err)
	}
	n := 0
	for _, p := range q.Graph.Params {
		if p.Trainable && p.T.DType == rt.Float32 {
			n += p.T.Len()
		}
	}
	return &QATResult{Train: res, Model: model, PTQ: q.PTQ, Report: rep, TrainableParams: n}, nil
}
