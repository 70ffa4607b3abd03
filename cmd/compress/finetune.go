package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/schollz/progressbar/v3"
	"github.com/urfave/cli/v2"
	"golang.org/x/term"

	"github.com/compressml/compress/data"
	"github.com/compressml/compress/eval"
	"github.com/compressml/compress/finetune"
	"github.com/compressml/compress/importer"
	"github.com/compressml/compress/quantize"
	rt "github.com/compressml/compress/runtime"
)

func finetuneCommand() *cli.Command {
	return &cli.Command{
		Name:  "finetune",
		Usage: "fine-tune a model on new data, with chosen layers frozen and an optional new head",
		UsageText: "compress finetune --model IN --data PATH --out OUT [--freeze P]... [--num-classes N] [--epochs E] [--batch B] [--optimizer adam|adamw|sgd] [--lr X] [--seed S] [--val-split F] [--patience K] [--json]\n" +
			"   compress finetune --qat --model IN --data PATH --out OUT [--qat-calib-batches N] [--calib-method M] [--per-channel] [--full-range] [--symmetric] [training flags]",
		Description: "Trains an ONNX model on a data set (the training split of --data) and writes the\n" +
			"result to --out as ONNX, then reports its accuracy on the test split.\n\n" +
			"Freezing: --freeze P (repeatable) freezes the parameters whose name, or the name\n" +
			"of a node reading them, matches P (a glob such as 'conv*', or a regular expression\n" +
			"between slashes: '/^layer[12]\\./'); --freeze-until NODE freezes everything up to\n" +
			"and including NODE; --train-only P trains only what P matches. A frozen\n" +
			"BatchNormalization stays in inference mode. --num-classes N replaces the final\n" +
			"classifier (Gemm, or MatMul+Add) with a new one of N outputs (Xavier-uniform\n" +
			"weights, zero bias, from --seed). A model exported for a fixed batch size of 1\n" +
			"(as mnist-8 is) is made batch-dynamic first.\n\n" +
			"--cache-frozen computes the frozen front of the network once for the whole data\n" +
			"set and trains only the rest: much faster, and exact when nothing before the first\n" +
			"trainable layer is random (no Dropout there).\n\n" +
			"A checkpoint (OUT.ckpt unless --checkpoint) is written every epoch; Ctrl-C writes\n" +
			"one and stops; --resume continues from it and ends with the same model as an\n" +
			"uninterrupted run. A NaN or Inf in the loss or gradients stops the run with an\n" +
			"error naming the step and the last good checkpoint.\n\n" +
			"Augmentation (--augment-rotate, --augment-flip, --augment-crop, --augment-translate)\n" +
			"randomly transforms the training images, with new draws every epoch that depend only\n" +
			"on --seed, the epoch and the image (validation and test images are never changed); it\n" +
			"cannot be combined with --cache-frozen. --eval-mode P keeps the BatchNormalization or\n" +
			"Dropout nodes matching P in inference mode while the rest trains.\n\n" +
			"Quantisation-aware training (--qat): BatchNormalization is folded into the layers\n" +
			"before it, the activation ranges are calibrated like `compress quantize` does, on the\n" +
			"first --qat-calib-batches batches of the training split (in order), and the model trains\n" +
			"with fake quantisation where `compress quantize` puts QuantizeLinear/DequantizeLinear:\n" +
			"weights rounded to int8 per output channel (7-bit unless --full-range, scales following\n" +
			"the weights), activations with the calibrated (fixed) scales; gradients pass by the\n" +
			"straight-through estimator (zero where a value saturates). Every Conv/Gemm/MatMul weight\n" +
			"and bias trains (no --freeze options). --out is then the int8 model in QDQ format, the same\n" +
			"kind `compress quantize` writes (it runs on compress's int8 kernels and in onnxruntime),\n" +
			"and the summary gives its test accuracy next to the input model's (float32) and the\n" +
			"post-training quantisation's (same calibration). Use a small learning rate and one or\n" +
			"two epochs: with BatchNormalization folded, training is more sensitive to it (for the\n" +
			"ResNet-8 of the example, Adam at 1e-5 keeps the accuracy, 1e-4 loses half a point even\n" +
			"without quantisation).\n\n" +
			"Examples:\n" +
			"   compress finetune --model mnist-8/model.onnx --data /usr/share/datasets/fashion-mnist \\\n" +
			"       --freeze-until Pooling160 --num-classes 10 --epochs 3 --batch 128 \\\n" +
			"       --optimizer adam --lr 1e-3 --seed 0 --out fashion.onnx\n" +
			"   compress finetune --model lenet.onnx --data mnist/ --epochs 10 --optimizer sgd --lr 0.05 \\\n" +
			"       --momentum 0.9 --schedule cosine --val-split 0.1 --patience 3 --out lenet-ft.onnx --plot curves.png\n" +
			"   compress finetune --model resnet8.onnx --data /usr/share/datasets/fashion-mnist \\\n" +
			"       --scale 0.00392156862745098 --augment-rotate 10 --augment-translate 2 --eval-mode 'layer1.*' \\\n" +
			"       --epochs 2 --lr 1e-4 --seed 0 --out resnet8-aug.onnx\n" +
			"   compress finetune --qat --model resnet8.onnx --data /usr/share/datasets/fashion-mnist \\\n" +
			"       --scale 0.00392156862745098 --epochs 1 --lr 1e-5 --seed 0 --out resnet8-int8.onnx",
		Flags: append(trainFlags(),
			&cli.StringFlag{Name: "model", Aliases: []string{"m"}, Usage: "ONNX model `FILE` to fine-tune"},
			&cli.StringSliceFlag{Name: "freeze", Usage: "freeze parameters or nodes matching `PATTERN` (repeatable)"},
			&cli.StringFlag{Name: "freeze-until", Usage: "freeze every parameter up to and including `NODE`"},
			&cli.StringSliceFlag{Name: "train-only", Usage: "train only parameters or nodes matching `PATTERN` (repeatable)"},
			&cli.IntFlag{Name: "num-classes", Usage: "replace the final classifier with a new one of `N` classes"},
			&cli.StringFlag{Name: "head-init", Value: "xavier_uniform", Usage: "initialiser of the new head: xavier_uniform, xavier_normal, kaiming_uniform, kaiming_normal"},
			&cli.BoolFlag{Name: "qat", Usage: "quantisation-aware training: train with fake int8 quantisation and write the int8 QDQ model"},
			&cli.IntFlag{Name: "qat-calib-batches", Value: 8, Usage: "--qat: calibrate the activation ranges on the first `N` training batches"},
			&cli.StringFlag{Name: "calib-method", Value: quantize.MinMax, Usage: "--qat: calibration method: minmax, percentile, entropy or mse"},
			&cli.BoolFlag{Name: "per-channel", Value: true, Usage: "--qat: one weight scale per output channel (--per-channel=false: per tensor)"},
			&cli.BoolFlag{Name: "full-range", Usage: "--qat: 8-bit weights [-127, 127] instead of 7-bit [-63, 63]"},
			&cli.BoolFlag{Name: "symmetric", Usage: "--qat: int8 symmetric activations instead of uint8 asymmetric"},
		),
		Action: finetuneAction,
	}
}

// trainFlags are the flags of every command that trains.
func trainFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "data", Aliases: []string{"d"}, Usage: "data set `PATH`: MNIST-format idx folder, CSV file, NPY folder or NPZ archive, or an image folder (one sub-folder per class)"},
		&cli.StringFlag{Name: "out", Aliases: []string{"o"}, Usage: "write the trained model to `FILE`"},
		&cli.IntFlag{Name: "epochs", Value: 1, Usage: "passes over the training data"},
		&cli.IntFlag{Name: "batch", Value: 64, Usage: "examples per step"},
		&cli.StringFlag{Name: "optimizer", Value: "adam", Usage: "adam, adamw or sgd"},
		&cli.Float64Flag{Name: "lr", Value: 1e-3, Usage: "learning rate"},
		&cli.Float64Flag{Name: "momentum", Usage: "SGD momentum"},
		&cli.BoolFlag{Name: "nesterov", Usage: "SGD with Nesterov momentum"},
		&cli.Float64Flag{Name: "weight-decay", Usage: "weight decay (decoupled for adamw, L2 in the gradient for adam and sgd)"},
		&cli.Float64Flag{Name: "l1", Usage: "L1 penalty on weights"},
		&cli.Float64Flag{Name: "l2", Usage: "L2 penalty on weights"},
		&cli.StringFlag{Name: "schedule", Value: "constant", Usage: "learning-rate schedule: constant, step or cosine"},
		&cli.IntFlag{Name: "step-size", Usage: "step schedule: decay every `N` steps"},
		&cli.Float64Flag{Name: "gamma", Value: 0.1, Usage: "step schedule: decay factor"},
		&cli.IntFlag{Name: "warmup", Usage: "linear warm-up over `N` steps"},
		&cli.Float64Flag{Name: "clip-norm", Usage: "clip the global gradient norm to `X`"},
		&cli.Float64Flag{Name: "clip-value", Usage: "clip each gradient value to [-X, X]"},
		&cli.StringSliceFlag{Name: "lr-group", Usage: "`PATTERN=LR`: a learning rate for the parameters matching PATTERN (repeatable)"},
		&cli.StringFlag{Name: "loss", Value: "cross-entropy", Usage: "cross-entropy, mse or bce"},
		&cli.Float64Flag{Name: "label-smoothing", Usage: "cross-entropy label smoothing"},
		&cli.StringFlag{Name: "class-weights", Usage: "cross-entropy class weights, comma-separated"},
		&cli.Uint64Flag{Name: "seed", Usage: "seed of shuffling, initialisation and dropout"},
		&cli.Float64Flag{Name: "val-split", Usage: "hold out this fraction of the training data for validation"},
		&cli.IntFlag{Name: "patience", Usage: "stop after `K` epochs without validation improvement (keeps the best weights)"},
		&cli.StringFlag{Name: "monitor", Value: "val_accuracy", Usage: "early-stopping metric: val_accuracy or val_loss"},
		&cli.StringFlag{Name: "checkpoint", Usage: "checkpoint `FILE` (default OUT.ckpt)"},
		&cli.BoolFlag{Name: "resume", Usage: "continue from the checkpoint"},
		&cli.BoolFlag{Name: "cache-frozen", Usage: "compute the frozen front of the network once and train the rest"},
		&cli.StringSliceFlag{Name: "eval-mode", Usage: "keep the BatchNormalization or Dropout nodes matching `PATTERN` in inference mode while training (repeatable)"},
		&cli.Float64Flag{Name: "augment-rotate", Usage: "augmentation: rotate training images by a random angle in [-`DEG`, DEG]"},
		&cli.BoolFlag{Name: "augment-flip", Usage: "augmentation: mirror training images left-right with probability 1/2"},
		&cli.Float64Flag{Name: "augment-crop", Usage: "augmentation: random resized crop of an area fraction in [`MIN`, 1] (e.g. 0.5)"},
		&cli.IntFlag{Name: "augment-translate", Usage: "augmentation: shift training images by up to `PX` pixels along each axis"},
		&cli.Float64Flag{Name: "scale", Value: 1, Usage: "multiply stored values by `X` first (e.g. 0.00392157 = 1/255)"},
		&cli.StringFlag{Name: "mean", Usage: "subtract `M` (one value, or one per channel)"},
		&cli.StringFlag{Name: "std", Usage: "then divide by `S` (one value, or one per channel)"},
		&cli.StringFlag{Name: "log", Usage: "write one JSON line per step and epoch to `FILE`"},
		&cli.StringFlag{Name: "plot", Usage: "write training curves (loss and accuracy per epoch) to `FILE`.png"},
		&cli.BoolFlag{Name: "json", Usage: "print one JSON object with the history and test metrics"},
		threadsFlag(),
	}
}

// finetuneResult is the JSON output of finetune.
type finetuneResult struct {
	Model      string                     `json:"model"`
	Out        string                     `json:"out"`
	Trainable  int                        `json:"trainable_params"`
	Frozen     int                        `json:"frozen_params"`
	ElapsedSec float64                    `json:"elapsed_sec"`
	Train      *finetune.Result           `json:"train"`
	Test       *eval.ClassificationReport `json:"test,omitempty"`
	Accuracy   float64                    `json:"accuracy"`
	// QAT is set by --qat; Accuracy is then the int8 model's.
	QAT *qatSummary `json:"qat,omitempty"`
}

// qatSummary describes a quantisation-aware training run.
type qatSummary struct {
	CalibExamples int `json:"calib_examples"`
	// FloatAccuracy is the input model's test accuracy, PTQAccuracy that of
	// its static post-training quantisation with the same calibration.
	FloatAccuracy *float64               `json:"float_accuracy,omitempty"`
	PTQAccuracy   *float64               `json:"ptq_accuracy,omitempty"`
	Layers        []quantize.LayerReport `json:"layers"`
}

func finetuneAction(c *cli.Context) error {
	if err := needArgs(c, 0, "no positional arguments (give files with --model, --data and --out)"); err != nil {
		return err
	}
	modelPath := c.String("model")
	if modelPath == "" {
		return errors.New("finetune: missing --model: give the ONNX model to fine-tune")
	}
	g, err := loadModel(modelPath)
	if err != nil {
		return fmt.Errorf("finetune: %w", err)
	}
	if err := prepareForTraining(g); err != nil {
		return fmt.Errorf("finetune: %s: %w", modelPath, err)
	}
	if n := c.Int("num-classes"); c.IsSet("num-classes") {
		if _, err := finetune.ReplaceHead(g, finetune.HeadConfig{NumClasses: n, Init: c.String("head-init"), Seed: c.Uint64("seed")}); err != nil {
			return fmt.Errorf("finetune: --num-classes: %w", err)
		}
	}
	if c.Bool("qat") {
		qcfg, err := qatConfig(c)
		if err != nil {
			return fmt.Errorf("finetune: %w", err)
		}
		return trainAndSaveWith(c, g, modelPath, &qcfg)
	}
	for _, f := range []string{"qat-calib-batches", "calib-method", "per-channel", "full-range", "symmetric"} {
		if c.IsSet(f) {
			return fmt.Errorf("finetune: --%s goes with --qat", f)
		}
	}
	spec := finetune.FreezeSpec{Freeze: c.StringSlice("freeze"), FreezeUntil: c.String("freeze-until"), TrainOnly: c.StringSlice("train-only")}
	if _, err := spec.Apply(g); err != nil {
		return fmt.Errorf("finetune: %w", err)
	}
	return trainAndSave(c, g, modelPath)
}

// qatConfig reads the quantisation flags of finetune --qat.
func qatConfig(c *cli.Context) (quantize.Config, error) {
	for _, f := range []string{"freeze", "freeze-until", "train-only", "cache-frozen"} {
		if c.IsSet(f) {
			return quantize.Config{}, fmt.Errorf("--%s does not go with --qat: quantisation-aware training trains every weight and bias", f)
		}
	}
	cfg := quantize.DefaultConfig()
	cfg.Method = c.String("calib-method")
	if err := quantize.ValidMethod(cfg.Method); err != nil {
		return cfg, fmt.Errorf("--calib-method: %w", err)
	}
	nb := c.Int("qat-calib-batches")
	if nb < 1 {
		return cfg, fmt.Errorf("--qat-calib-batches %d: give a positive number of batches", nb)
	}
	cfg.BatchSize = c.Int("batch")
	if cfg.BatchSize < 1 {
		return cfg, fmt.Errorf("--batch %d must be positive", cfg.BatchSize)
	}
	cfg.CalibSize = nb * cfg.BatchSize
	cfg.PerTensor = !c.Bool("per-channel")
	cfg.FullRange = c.Bool("full-range")
	cfg.SymmetricActivations = c.Bool("symmetric")
	return cfg, nil
}

// prepareForTraining folds constants (so that weights computed from
// initializers become parameters) and makes a fixed batch dimension dynamic.
func prepareForTraining(g *rt.Graph) error {
	if err := rt.FoldConstants(g); err != nil {
		return err
	}
	rt.RemoveDeadCode(g)
	rt.MakeBatchDynamic(g)
	return nil
}

// trainAndSave runs the trainer with the command's flags, writes the model
// and evaluates it on the test split.
func trainAndSave(c *cli.Context, g *rt.Graph, modelPath string) error {
	return trainAndSaveWith(c, g, modelPath, nil)
}

// trainAndSaveWith is trainAndSave; with qcfg set it runs
// quantisation-aware training and writes the int8 model.
func trainAndSaveWith(c *cli.Context, g *rt.Graph, modelPath string, qcfg *quantize.Config) error {
	cmd := c.Command.Name
	out, dataPath := c.String("out"), c.String("data")
	if out == "" {
		return fmt.Errorf("%s: missing --out: give the file to write the trained model to", cmd)
	}
	if dataPath == "" {
		return fmt.Errorf("%s: missing --data: give the training data set", cmd)
	}
	cfg, err := trainConfig(c)
	if err != nil {
		return fmt.Errorf("%s: %w", cmd, err)
	}
	if cfg.Checkpoint == "" {
		cfg.Checkpoint = out + ".ckpt"
	}
	var exShape []int
	for _, in := range g.Inputs {
		if _, isParam := g.Params[in.Name]; !isParam && len(in.Shape) > 1 {
			exShape = in.Shape[1:]
			break
		}
	}
	dopts := data.Options{}.WithInputShape(exShape)
	train, err := data.OpenWith(dataPath, data.SplitTrain, dopts)
	if err != nil {
		return fmt.Errorf("%s: %w", cmd, err)
	}
	var logw io.Writer
	if p := c.String("log"); p != "" {
		f, err := os.Create(p)
		if err != nil {
			return fmt.Errorf("%s: --log: %w", cmd, err)
		}
		defer f.Close()
		logw = f
	}
	quiet := c.Bool("json")
	prog := newProgress(c.App.ErrWriter, quiet)
	enc := (*json.Encoder)(nil)
	if logw != nil {
		enc = json.NewEncoder(logw)
	}
	cfg.Progress = func(ev finetune.Event) {
		if enc != nil {
			_ = enc.Encode(ev)
		}
		prog.update(ev)
	}
	start := time.Now()
	var (
		res   *finetune.Result
		qres  *finetune.QATResult
		model = g
	)
	if qcfg != nil {
		qres, err = finetune.TrainQAT(c.Context, g, train, nil, cfg, *qcfg)
		if qres != nil {
			res, model = qres.Train, qres.Model
		}
	} else {
		res, err = finetune.Train(c.Context, g, train, nil, cfg)
	}
	prog.done()
	if err != nil {
		return fmt.Errorf("%s: %w", cmd, err)
	}
	if err := importer.Save(model, out); err != nil {
		return fmt.Errorf("%s: %w", cmd, err)
	}
	if p := c.String("plot"); p != "" {
		if err := finetune.PlotHistory(res.History, p); err != nil {
			return fmt.Errorf("%s: --plot: %w", cmd, err)
		}
	}
	trainable, frozen := 0, 0
	for _, p := range g.Params {
		if p.T.DType != rt.Float32 {
			continue
		}
		if p.Trainable {
			trainable += p.T.Len()
		} else {
			frozen += p.T.Len()
		}
	}
	if qres != nil {
		trainable, frozen = qres.TrainableParams, 0
	}
	r := finetuneResult{Model: modelPath, Out: out, Trainable: trainable, Frozen: frozen, Train: res}
	if qres != nil {
		r.QAT = &qatSummary{CalibExamples: min(qcfg.CalibSize, train.Len()), Layers: qres.Report.Layers}
	}
	if test, err := data.OpenWith(dataPath, data.SplitTest, dopts); err == nil {
		classify := func(m *rt.Graph) (*eval.ClassificationReport, error) {
			ex, err := rt.NewExecutor(m, rt.Options{Threads: cfg.Threads})
			if err != nil {
				return nil, err
			}
			rep, err := eval.Classify(c.Context, ex, test, eval.Options{BatchSize: 256, Preprocess: cfg.Preprocess})
			if err != nil {
				return nil, fmt.Errorf("evaluating on the test split: %w", err)
			}
			return rep, nil
		}
		if r.Test, err = classify(model); err != nil {
			return fmt.Errorf("%s: %w", cmd, err)
		}
		r.Accuracy = r.Test.Accuracy
		if qres != nil {
			for _, m := range []struct {
				g   *rt.Graph
				acc **float64
			}{{g, &r.QAT.FloatAccuracy}, {qres.PTQ, &r.QAT.PTQAccuracy}} {
				rep, err := classify(m.g)
				if err != nil {
					return fmt.Errorf("%s: %w", cmd, err)
				}
				*m.acc = &rep.Accuracy
			}
		}
	}
	r.ElapsedSec = time.Since(start).Seconds()
	if quiet {
		return writeJSON(c.App.Writer, r)
	}
	w := c.App.Writer
	fmt.Fprintf(w, "trained %s params (%s frozen) for %d epoch(s) at %.0f samples/s%s\n", eval.Human(int64(trainable)), eval.Human(int64(frozen)),
		len(res.History), res.SamplesPerSec, map[bool]string{true: " (frozen prefix cached)", false: ""}[res.CachedFrozen])
	if res.StoppedEarly {
		fmt.Fprintf(w, "stopped early; kept the weights of epoch %d\n", res.BestEpoch)
	}
	if r.Test != nil && r.QAT != nil {
		fmt.Fprintf(w, "test accuracy   %.4f int8 after QAT (%d examples; calibrated on %d)\n", r.Test.Accuracy, r.Test.NumExamples, r.QAT.CalibExamples)
		fmt.Fprintf(w, "                %.4f int8 post-training quantisation, %.4f float32 input model\n", *r.QAT.PTQAccuracy, *r.QAT.FloatAccuracy)
	} else if r.Test != nil {
		fmt.Fprintf(w, "test accuracy   %.4f (%d examples)\n", r.Test.Accuracy, r.Test.NumExamples)
	} else if r.QAT != nil {
		fmt.Fprintf(w, "int8 model after QAT (no test split to measure it on; calibrated on %d examples)\n", r.QAT.CalibExamples)
	}
	_, err = fmt.Fprintf(w, "wrote %s (checkpoint %s)\n", out, cfg.Checkpoint)
	return err
}

func trainConfig(c *cli.Context) (finetune.Config, error) {
	th, err := threads(c)
	if err != nil {
		return finetune.Config{}, err
	}
	cfg := finetune.Config{
		Epochs: c.Int("epochs"), BatchSize: c.Int("batch"), LR: c.Float64("lr"),
		Optimizer: finetune.OptimizerConfig{Kind: c.String("optimizer"), Momentum: c.Float64("momentum"),
			Nesterov: c.Bool("nesterov"), WeightDecay: c.Float64("weight-decay")},
		Schedule: finetune.Schedule{Kind: c.String("schedule"), StepSize: c.Int("step-size"), Gamma: c.Float64("gamma"),
			WarmupSteps: c.Int("warmup")},
		L1: c.Float64("l1"), L2: c.Float64("l2"), ClipNorm: c.Float64("clip-norm"), ClipValue: c.Float64("clip-value"),
		Loss: c.String("loss"), LabelSmoothing: c.Float64("label-smoothing"),
		ValSplit: c.Float64("val-split"), Patience: c.Int("patience"), Monitor: c.String("monitor"),
		Seed: c.Uint64("seed"), Threads: th, Checkpoint: c.String("checkpoint"), Resume: c.Bool("resume"),
		CacheFrozen: c.Bool("cache-frozen"),
	}
	if cfg.Epochs < 1 || cfg.BatchSize < 1 {
		return cfg, fmt.Errorf("--epochs and --batch must be positive")
	}
	for _, s := range c.StringSlice("lr-group") {
		pat, v, ok := strings.Cut(s, "=")
		lr, err := strconv.ParseFloat(v, 64)
		if !ok || err != nil || lr < 0 {
			return cfg, fmt.Errorf("--lr-group %q: want PATTERN=LR, e.g. 'conv*=1e-4'", s)
		}
		cfg.Groups = append(cfg.Groups, finetune.LRGroup{Pattern: pat, LR: lr})
	}
	if s := c.String("class-weights"); s != "" {
		ws, err := data.ParseFloats(s)
		if err != nil {
			return cfg, fmt.Errorf("--class-weights: %w", err)
		}
		for _, w := range ws {
			cfg.ClassWeights = append(cfg.ClassWeights, float64(w))
		}
	}
	for _, s := range c.StringSlice("eval-mode") {
		p, err := finetune.ParsePattern(s)
		if err != nil {
			return cfg, fmt.Errorf("--eval-mode: %w", err)
		}
		cfg.EvalMode = append(cfg.EvalMode, p)
	}
	aug := &data.Augment{RotateDegrees: c.Float64("augment-rotate"), FlipHorizontal: c.Bool("augment-flip"),
		TranslatePixels: c.Int("augment-translate"), Seed: cfg.Seed}
	if v := c.Float64("augment-crop"); v != 0 {
		if v < 0 || v > 1 {
			return cfg, fmt.Errorf("--augment-crop %g: give the smallest area fraction to keep, in (0, 1]", v)
		}
		aug.CropScale = [2]float64{v, 1}
	}
	if err := aug.Validate(); err != nil {
		return cfg, fmt.Errorf("--augment-*: %w", err)
	}
	if aug.Enabled() {
		cfg.Augment = aug
	}
	cfg.Preprocess = data.Preprocess{Scale: float32(c.Float64("scale"))}
	if cfg.Preprocess.Mean, err = data.ParseFloats(c.String("mean")); err != nil {
		return cfg, fmt.Errorf("--mean: %w", err)
	}
	if cfg.Preprocess.Std, err = data.ParseFloats(c.String("std")); err != nil {
		return cfg, fmt.Errorf("--std: %w", err)
	}
	return cfg, cfg.Preprocess.Validate()
}

// progress shows training progress: a progress bar (schollz/progressbar)
// redrawn in place on a terminal, plain lines (every 100 steps and per
// epoch) otherwise.
type progress struct {
	w     io.Writer
	tty   bool
	quiet bool
	bar   *progressbar.ProgressBar
}

func newProgress(w io.Writer, quiet bool) *progress {
	tty := false
	if f, ok := w.(*os.File); ok {
		tty = term.IsTerminal(int(f.Fd()))
	}
	return &progress{w: w, tty: tty, quiet: quiet}
}

func (p *progress) update(ev finetune.Event) {
	if p.quiet {
		return
	}
	switch ev.Kind {
	case "step":
		if p.tty {
			if p.bar == nil {
				p.bar = progressbar.NewOptions(ev.Steps,
					progressbar.OptionSetWriter(p.w),
					progressbar.OptionSetWidth(24),
					progressbar.OptionThrottle(100*time.Millisecond),
					progressbar.OptionShowCount(),
					progressbar.OptionSetPredictTime(true),
					progressbar.OptionClearOnFinish())
			}
			p.bar.Describe(fmt.Sprintf("epoch %d/%d loss %.4f acc %.4f %.0f samples/s", ev.Epoch, ev.Epochs, ev.Loss, ev.Accuracy, ev.SamplesPerSec))
			_ = p.bar.Set(ev.Step)
		} else if ev.Step%100 == 0 {
			fmt.Fprintf(p.w, "epoch %d/%d step %d/%d loss %.4f acc %.4f %.0f samples/s\n",
				ev.Epoch, ev.Epochs, ev.Step, ev.Steps, ev.Loss, ev.Accuracy, ev.SamplesPerSec)
		}
	case "epoch":
		p.done()
		line := fmt.Sprintf("epoch %d/%d loss %.4f acc %.4f %.0f samples/s %.1fs", ev.Epoch, ev.Epochs, ev.Loss, ev.Accuracy,
			ev.SamplesPerSec, ev.Elapsed.Seconds())
		if ev.Val != nil {
			line += fmt.Sprintf(" | val loss %.4f acc %.4f", ev.Val.Loss, ev.Val.Accuracy)
		}
		fmt.Fprintln(p.w, line)
	}
}

// done clears a bar in progress.
func (p *progress) done() {
	if p.bar != nil {
		_ = p.bar.Clear()
		p.bar = nil
	}
}
