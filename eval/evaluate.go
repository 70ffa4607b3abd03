package eval

import (
	"context"
	"fmt"
	"sort"
	"strings"

	"github.com/compressml/compress/data"
	rt "github.com/compressml/compress/runtime"
)

// Options configure Classify and Regress.
type Options struct {
	// Input names the model input fed with the data; "" means the model's
	// only input.
	Input string
	// Output names the model output holding class scores (or regression
	// predictions); "" means the first output.
	Output string
	// BatchSize is the batch used when the model's batch dimension is
	// dynamic (data.DefaultBatchSize if 0). A model whose batch dimension
	// is fixed runs batches of exactly that size.
	BatchSize int
	// Limit evaluates only the first Limit examples; 0 means all.
	Limit int
	// Preprocess maps stored values to model inputs.
	Preprocess data.Preprocess
	// Progress, when set, is called after every batch with the number of
	// examples done and the total.
	Progress func(done, total int)
}

// ModelInput describes how data is fed to a model input.
type ModelInput struct {
	Name string
	// Shape is the input's per-example shape (without the batch dimension).
	Shape []int
	// FixedBatch is the batch size the model requires, or 0 when the batch
	// dimension is dynamic.
	FixedBatch int
}

// FeedInput picks the model input fed with examples of the given shape:
// the named input, or the only one. Dynamic dimensions other than the batch
// are taken from exampleShape when its rank matches.
func FeedInput(g *rt.Graph, name string, exampleShape []int) (*ModelInput, error) {
	var inputs []rt.ValueInfo
	var names []string
	for _, in := range g.Inputs {
		if _, isParam := g.Params[in.Name]; !isParam {
			inputs = append(inputs, in)
			names = append(names, in.Name)
		}
	}
	var vi *rt.ValueInfo
	switch {
	case name != "":
		for i := range inputs {
			if inputs[i].Name == name {
				vi = &inputs[i]
			}
		}
		if vi == nil {
			return nil, fmt.Errorf("the model has no input %q (its inputs: %s)", name, strings.Join(names, ", "))
		}
	case len(inputs) == 1:
		vi = &inputs[0]
	case len(inputs) == 0:
		return nil, fmt.Errorf("the model has no inputs to feed data to")
	default:
		return nil, fmt.Errorf("the model has %d inputs (%s); name the one the data feeds", len(inputs), strings.Join(names, ", "))
	}
	if vi.DType != rt.Float32 && vi.DType != rt.Undefined {
		return nil, fmt.Errorf("model input %q takes %v values; data sets provide float32", vi.Name, vi.DType)
	}
	mi := &ModelInput{Name: vi.Name}
	if vi.Shape == nil { // rank unknown: feed the examples as they are
		mi.Shape = append([]int{}, exampleShape...)
		return mi, nil
	}
	if len(vi.Shape) == 0 {
		return nil, fmt.Errorf("model input %q is a scalar; it cannot take a batch of examples", vi.Name)
	}
	if vi.Shape[0] > 0 {
		mi.FixedBatch = vi.Shape[0]
	}
	mi.Shape = append([]int{}, vi.Shape[1:]...)
	for i, d := range mi.Shape {
		if d >= 0 {
			continue
		}
		if len(exampleShape) != len(mi.Shape) {
			return nil, fmt.Errorf("model input %q has shape %v with dynamic dimension %d, and examples of shape %v do not say its size", vi.Name, vi.Shape, i+1, exampleShape)
		}
		mi.Shape[i] = exampleShape[i]
	}
	return mi, nil
}

// Classify runs a classifier over a data set and reports its accuracy, top-5
// accuracy, per-class metrics, ROC-AUC and confusion matrix. The model
// output must hold one row of class scores per example ([B, C], or
// [B, C, 1, ...]); a single score per example ([B 1] or [B]) is the logit
// of class 1 of a binary classifier (class 1 when it is positive, its
// sigmoid the probability). Batches are run one after the other; the
// executor's threads parallelise each run. The result is deterministic.
func Classify(ctx context.Context, ex *rt.Executor, ds data.Dataset, opts Options) (*ClassificationReport, error) {
	var acc *Classification
	var binary []float32
	err := forEachBatch(ctx, ex, ds, opts, func(bi int, b *data.Batch, y *rt.Tensor, rows int, outName string) error {
		n := len(b.Labels)
		if y.DType != rt.Float32 {
			return fmt.Errorf("model output %q holds %v values; class scores must be float32", outName, y.DType)
		}
		batchOK := len(y.Shape) > 0 && y.Shape[0] == rows || rows == 1 // [C] is fine for one example
		if !batchOK || y.Len()%rows != 0 || y.Len() == 0 {
			return fmt.Errorf("model output %q has shape %v; a classifier's output must have one row of scores per example ([%d C])", outName, y.Shape, rows)
		}
		classes := y.Len() / rows
		scores := y.F32[:n*classes]
		if classes == 1 && ds.NumClasses() <= 2 {
			// One logit per example: scores [0, logit] rank like sigmoid(logit).
			classes = 2
			binary = append(binary[:0], make([]float32, 2*n)...)
			for i := range n {
				binary[2*i+1] = y.F32[i]
			}
			scores = binary
		}
		if acc == nil {
			if dc := ds.NumClasses(); dc > classes {
				return fmt.Errorf("%s has %d classes but model output %q scores %d; use a model trained for these classes", data.Name(ds), dc, outName, classes)
			}
			var err error
			if acc, err = NewClassification(classes); err != nil {
				return err
			}
		} else if classes != acc.NumClasses() {
			return fmt.Errorf("model output %q scores %d classes in batch %d but %d before", outName, classes, bi, acc.NumClasses())
		}
		if err := acc.Add(scores, b.Labels); err != nil {
			return fmt.Errorf("batch %d: %w", bi, err)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return acc.Report(), nil
}

// forEachBatch runs the model over the data set in order and calls fn with
// every batch, the chosen output (holding rows examples: the batch, padded
// to a fixed batch size) and its name.
func forEachBatch(ctx context.Context, ex *rt.Executor, ds data.Dataset, opts Options, fn func(bi int, b *data.Batch, y *rt.Tensor, rows int, outName string) error) error {
	g := ex.Graph()
	in, err := FeedInput(g, opts.Input, ds.Shape())
	if err != nil {
		return err
	}
	outName := opts.Output
	if outName == "" {
		if len(g.Outputs) == 0 {
			return fmt.Errorf("the model has no outputs")
		}
		outName = g.Outputs[0].Name
	} else if !hasOutput(g, outName) {
		return fmt.Errorf("the model has no output %q (its outputs: %s)", outName, outputNames(g))
	}
	bs := opts.BatchSize
	if in.FixedBatch > 0 {
		bs = in.FixedBatch
	}
	ld, err := data.NewLoader(ds, data.LoaderOptions{BatchSize: bs, Shape: in.Shape, Preprocess: opts.Preprocess, Limit: opts.Limit})
	if err != nil {
		return err
	}
	if ld.Len() == 0 {
		return fmt.Errorf("%s has no examples to evaluate", data.Name(ds))
	}
	var b *data.Batch
	var padded *rt.Tensor
	done := 0
	for bi := range ld.NumBatches() {
		if err := ctx.Err(); err != nil {
			return err
		}
		if b, err = ld.Batch(bi, b); err != nil {
			return err
		}
		n := len(b.Labels)
		x := b.X
		if in.FixedBatch > 0 && n < in.FixedBatch {
			// The last batch of a fixed-batch model: pad with zeros.
			if padded == nil {
				padded = rt.New(rt.Float32, append([]int{in.FixedBatch}, in.Shape...)...)
			}
			clear(padded.F32)
			copy(padded.F32, x.F32)
			x = padded
		}
		outs, err := ex.Run(ctx, map[string]*rt.Tensor{in.Name: x})
		if err != nil {
			return fmt.Errorf("running batch %d (examples %d-%d): %w", bi, done, done+n-1, err)
		}
		y := outs[outName]
		if y == nil {
			return fmt.Errorf("the model did not produce output %q", outName)
		}
		if err := fn(bi, b, y, x.Shape[0], outName); err != nil {
			return err
		}
		done += n
		if opts.Progress != nil {
			opts.Progress(done, ld.Len())
		}
	}
	return nil
}

func hasOutput(g *rt.Graph, name string) bool {
	for _, o := range g.Outputs {
		if o.Name == name {
			return true
		}
	}
	return false
}

func outputNames(g *rt.Graph) string {
	var names []string
	for _, o := range g.Outputs {
		names = append(names, o.Name)
	}
	sort.Strings(names)
	return strings.Join(names, ", ")
}
