package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"text/tabwriter"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/compressml/compress/data"
	"github.com/compressml/compress/eval"
	"github.com/compressml/compress/importer"
	"github.com/compressml/compress/quantize"
	rt "github.com/compressml/compress/runtime"
)

func quantizeCommand() *cli.Command {
	return &cli.Command{
		Name:  "quantize",
		Usage: "quantize a model to int8 (static or dynamic post-training quantization)",
		UsageText: "compress quantize --model IN --out OUT [--mode static|dynamic] [--calib-data PATH] [--calib-size N]\n" +
			"   [--calib-method minmax|percentile|entropy|mse] [--per-channel] [--format qdq]\n" +
			"   [--max-drop X --eval-data PATH] [--scale X --mean M --std S] [--json]",
		Description: "Quantizes the Conv, Gemm and MatMul layers of an ONNX model to int8 and writes the\n" +
			"result to --out in QDQ format (QuantizeLinear/DequantizeLinear around the float ops:\n" +
			"standard ONNX that onnxruntime runs, and that compress runs on its int8 kernels), or with\n" +
			"--format qoperator as QLinearConv/QLinearMatMul/QGemm (com.microsoft) operating on 8-bit\n" +
			"tensors (layers without a quantized output, such as the last one, stay in QDQ form).\n\n" +
			"Static mode (default) calibrates the activation ranges on --calib-size examples of\n" +
			"--calib-data (its training split when it has one), preprocessed with --scale/--mean/--std\n" +
			"as the model expects. BatchNormalization is folded first; a Relu after a layer is kept\n" +
			"before the quantisation. Weights are int8 symmetric per output channel (7-bit by default,\n" +
			"--full-range for 8 bits), activations uint8 asymmetric (--symmetric: int8), biases int32.\n" +
			"Dynamic mode quantises only weights; activations are quantised at run time\n" +
			"(DynamicQuantizeLinear + MatMulInteger/ConvInteger).\n\n" +
			"The table lists each layer's input scale and zero point, weight scales, and the SQNR of\n" +
			"its output against float32. With --max-drop X --eval-data PATH the accuracy of both\n" +
			"models is measured and the layers with the worst SQNR are kept in float32 until the\n" +
			"drop is at most X (a fraction: 0.003 = 0.3 points).\n\n" +
			"Examples:\n" +
			"   compress quantize --model mnist-8/model.onnx --calib-data mnist/ --out mnist-8-int8.onnx\n" +
			"   compress quantize --model lenet.onnx --calib-data mnist/ --scale 0.00392157 \\\n" +
			"       --calib-method percentile --max-drop 0.003 --eval-data mnist/ --out lenet-int8.onnx\n" +
			"   compress quantize --model mlp.onnx --mode dynamic --out mlp-int8.onnx",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "model", Aliases: []string{"m"}, Usage: "ONNX model `FILE` to quantize"},
			&cli.StringFlag{Name: "out", Aliases: []string{"o"}, Usage: "`FILE` to write the quantized model to"},
			&cli.StringFlag{Name: "mode", Value: quantize.ModeStatic, Usage: "static or dynamic"},
			&cli.StringFlag{Name: "format", Value: quantize.FormatQDQ, Usage: "export format: qdq or qoperator (QLinearConv, QLinearMatMul, com.microsoft QGemm)"},
			&cli.StringFlag{Name: "calib-data", Usage: "calibration data `PATH` (MNIST folder, CSV, NPY/NPZ, image folder)"},
			&cli.IntFlag{Name: "calib-size", Value: 512, Usage: "number of calibration examples"},
			&cli.StringFlag{Name: "calib-method", Value: quantize.MinMax, Usage: "minmax, percentile, entropy or mse"},
			&cli.Float64Flag{Name: "percentile", Value: 99.99, Usage: "coverage of the percentile method"},
			&cli.BoolFlag{Name: "per-channel", Value: true, Usage: "one weight scale per output channel (--per-channel=false: per tensor)"},
			&cli.BoolFlag{Name: "full-range", Usage: "8-bit weights [-127, 127] instead of 7-bit [-63, 63]"},
			&cli.BoolFlag{Name: "symmetric", Usage: "int8 symmetric activations instead of uint8 asymmetric"},
			&cli.StringSliceFlag{Name: "keep", Usage: "keep node `NAME` in float32 (repeatable)"},
			&cli.Float64Flag{Name: "max-drop", Usage: "largest accepted accuracy drop `X` (fraction); needs --eval-data"},
			&cli.StringFlag{Name: "eval-data", Usage: "labelled data `PATH` to measure accuracy on (its test split)"},
			&cli.IntFlag{Name: "limit", Usage: "evaluate on the first `N` examples only (0: all)"},
			&cli.Float64Flag{Name: "scale", Value: 1, Usage: "multiply stored values by `X` first (e.g. 0.00392157 = 1/255)"},
			&cli.StringFlag{Name: "mean", Usage: "subtract `M` (one value, or one per channel)"},
			&cli.StringFlag{Name: "std", Usage: "divide by `S` (one value, or one per channel)"},
			&cli.StringFlag{Name: "input", Usage: "model input `NAME` fed with the data (default: the only input)"},
			&cli.IntFlag{Name: "batch", Value: 32, Usage: "batch size of calibration and evaluation"},
			&cli.DurationFlag{Name: "bench-time", Value: time.Second, Usage: "duration of each latency benchmark (0: skip)"},
			&cli.IntFlag{Name: "bench-batch", Value: 1, Usage: "batch size of the latency benchmark"},
			threadsFlag(),
			&cli.BoolFlag{Name: "json", Usage: "print the result as JSON"},
		},
		Action: quantizeAction,
	}
}

// quantTotals are the model totals before or after quantization.
type quantTotals struct {
	FileBytes int64    `json:"file_bytes"`
	LatencyMs float64  `json:"latency_ms,omitempty"`
	Accuracy  *float64 `json:"accuracy,omitempty"`
}

// quantResult is the JSON output of quantize.
type quantResult struct {
	Model      string                 `json:"model"`
	Out        string                 `json:"out"`
	Mode       string                 `json:"mode"`
	Format     string                 `json:"format,omitempty"` // "" in dynamic mode
	Method     string                 `json:"method,omitempty"`
	Calib      int                    `json:"calib_examples,omitempty"`
	Layers     []quantize.LayerReport `json:"layers"`
	Before     quantTotals            `json:"before"`
	After      quantTotals            `json:"after"`
	BenchBatch int                    `json:"bench_batch,omitempty"`
	ElapsedSec float64                `json:"elapsed_sec"`
}

func quantizeAction(c *cli.Context) error {
	if err := needArgs(c, 0, "no positional arguments (give files with --model and --out)"); err != nil {
		return err
	}
	start := time.Now()
	modelPath, out := c.String("model"), c.String("out")
	if modelPath == "" {
		return errors.New("quantize: missing --model: give the ONNX model to quantize")
	}
	if out == "" {
		return errors.New("quantize: missing --out: give the file to write the quantized model to")
	}
	mode := c.String("mode")
	if mode != quantize.ModeStatic && mode != quantize.ModeDynamic {
		return fmt.Errorf("quantize: --mode %q: use static or dynamic", mode)
	}
	format := c.String("format")
	if format != quantize.FormatQDQ && format != quantize.FormatQOperator {
		return fmt.Errorf("quantize: --format %q: use qdq or qoperator", format)
	}
	if format == quantize.FormatQOperator && mode == quantize.ModeDynamic {
		return errors.New("quantize: --format qoperator goes with static mode (dynamic mode writes MatMulInteger/ConvInteger)")
	}
	th, err := threads(c)
	if err != nil {
		return fmt.Errorf("quantize: %w", err)
	}
	cfg := quantize.DefaultConfig()
	cfg.Method = c.String("calib-method")
	if err := quantize.ValidMethod(cfg.Method); err != nil {
		return fmt.Errorf("quantize: --calib-method: %w", err)
	}
	cfg.Percentile = c.Float64("percentile")
	cfg.PerTensor = !c.Bool("per-channel")
	cfg.FullRange = c.Bool("full-range")
	cfg.SymmetricActivations = c.Bool("symmetric")
	cfg.CalibSize = c.Int("calib-size")
	cfg.BatchSize = c.Int("batch")
	cfg.Keep = c.StringSlice("keep")
	cfg.Input = c.String("input")
	cfg.Threads = th
	cfg.EvalLimit = c.Int("limit")
	if cfg.CalibSize <= 0 || cfg.BatchSize <= 0 || cfg.EvalLimit < 0 {
		return fmt.Errorf("quantize: --calib-size %d and --batch %d must be positive, --limit %d not negative", cfg.CalibSize, cfg.BatchSize, cfg.EvalLimit)
	}
	if b := c.Int("bench-batch"); b < 1 {
		return fmt.Errorf("quantize: --bench-batch %d: give a positive batch size", b)
	}
	pre := data.Preprocess{Scale: float32(c.Float64("scale"))}
	if pre.Mean, err = data.ParseFloats(c.String("mean")); err != nil {
		return fmt.Errorf("quantize: --mean: %w", err)
	}
	if pre.Std, err = data.ParseFloats(c.String("std")); err != nil {
		return fmt.Errorf("quantize: --std: %w", err)
	}
	if pre.Scale == 0 {
		return errors.New("quantize: --scale 0 would zero every value; give a non-zero scale")
	}
	if err := pre.Validate(); err != nil {
		return fmt.Errorf("quantize: %w", err)
	}
	cfg.Preprocess = pre
	cfg.MaxDrop = c.Float64("max-drop")
	if c.IsSet("max-drop") && (cfg.MaxDrop < 0 || cfg.MaxDrop >= 1) {
		return fmt.Errorf("quantize: --max-drop %v: give a fraction in [0, 1), e.g. 0.003 for 0.3 points", cfg.MaxDrop)
	}
	if c.IsSet("max-drop") && cfg.MaxDrop == 0 {
		cfg.MaxDrop = 1e-9 // no drop at all
	}
	if c.IsSet("max-drop") && c.String("eval-data") == "" {
		return errors.New("quantize: --max-drop needs --eval-data: give the labelled data to measure the accuracy on")
	}
	if mode == quantize.ModeStatic && c.String("calib-data") == "" {
		return errors.New("quantize: static mode needs --calib-data: give 100 to 1000 representative inputs (or use --mode dynamic)")
	}
	if mode == quantize.ModeDynamic && c.IsSet("max-drop") {
		return errors.New("quantize: --max-drop works with static mode only")
	}

	g, err := loadModel(modelPath)
	if err != nil {
		return fmt.Errorf("quantize: %w", err)
	}
	ctx := c.Context
	if ctx == nil {
		ctx = context.Background()
	}
	open := func(path string, split data.Split) (data.Dataset, error) {
		opts := data.Options{}
		if in, err := eval.FeedInput(g, cfg.Input, nil); err == nil {
			opts = opts.WithInputShape(in.Shape)
		}
		ds, err := data.OpenWith(path, split, opts)
		if errors.Is(err, data.ErrNoSplit) {
			ds, err = data.OpenWith(path, data.SplitAll, opts)
		}
		return ds, err
	}
	var evalDS data.Dataset
	if p := c.String("eval-data"); p != "" {
		if evalDS, err = open(p, data.SplitTest); err != nil {
			return fmt.Errorf("quantize: --eval-data: %w", err)
		}
		cfg.Eval = evalDS
	}
	var qg *rt.Graph
	var rep *quantize.Report
	if mode == quantize.ModeStatic {
		calib, err := open(c.String("calib-data"), data.SplitTrain)
		if err != nil {
			return fmt.Errorf("quantize: --calib-data: %w", err)
		}
		if qg, rep, err = quantize.Static(ctx, g, calib, cfg); err != nil {
			return err
		}
	} else if qg, rep, err = quantize.Dynamic(g, cfg); err != nil {
		return err
	}
	if format == quantize.FormatQOperator {
		qg, _ = quantize.ToQOperator(qg)
	}

	if mode == quantize.ModeDynamic {
		format = ""
	}
	res := &quantResult{Model: modelPath, Out: out, Mode: mode, Format: format, Method: rep.Method, Calib: rep.CalibExamples, Layers: rep.Layers}
	if st, err := os.Stat(modelPath); err == nil {
		res.Before.FileBytes = st.Size()
	}
	bytes, err := importer.Marshal(qg)
	if err != nil {
		return fmt.Errorf("quantize: encoding the quantized model: %w", err)
	}
	res.After.FileBytes = int64(len(bytes))
	if evalDS != nil {
		if rep.AccuracyFloat != nil && rep.AccuracyQuant != nil {
			res.Before.Accuracy, res.After.Accuracy = rep.AccuracyFloat, rep.AccuracyQuant
		} else {
			for i, gr := range []*rt.Graph{g, qg} {
				ex, err := rt.NewExecutor(gr, rt.Options{Threads: th})
				if err != nil {
					return fmt.Errorf("quantize: %w", err)
				}
				r, err := eval.Classify(ctx, ex, evalDS, eval.Options{Input: cfg.Input, BatchSize: cfg.BatchSize, Limit: cfg.EvalLimit, Preprocess: pre})
				if err != nil {
					return fmt.Errorf("quantize: evaluating: %w", err)
				}
				a := r.Accuracy
				if i == 0 {
					res.Before.Accuracy = &a
				} else {
					res.After.Accuracy = &a
				}
			}
		}
	}
	if d := c.Duration("bench-time"); d > 0 {
		lat, err := compareLatency(ctx, []*rt.Graph{g, qg}, th, math.Inf(1), c.Int("bench-batch"), d)
		if err != nil {
			return fmt.Errorf("quantize: %w", err)
		}
		res.Before.LatencyMs, res.After.LatencyMs = lat[0], lat[1]
		res.BenchBatch = c.Int("bench-batch")
	}
	if err := importer.Save(qg, out); err != nil {
		return fmt.Errorf("quantize: writing %s: %w", out, err)
	}
	res.ElapsedSec = time.Since(start).Seconds()
	if c.Bool("json") {
		return writeJSON(c.App.Writer, res)
	}
	return writeQuantText(c.App.Writer, res)
}

func writeQuantText(w io.Writer, r *quantResult) error {
	fmt.Fprintf(w, "%s quantization of %s", r.Mode, r.Model)
	if r.Method != "" {
		fmt.Fprintf(w, " (%s calibration on %d examples)", r.Method, r.Calib)
	}
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "layer\top\tinput scale\tzero point\tweight scale\tSQNR dB\tfp32\t")
	for _, l := range r.Layers {
		ws := fmt.Sprintf("%.3g", l.WeightScaleMin)
		if l.WeightScaleMax != l.WeightScaleMin {
			ws = fmt.Sprintf("%.3g..%.3g", l.WeightScaleMin, l.WeightScaleMax)
		}
		in, zp, sq := "-", "-", "-"
		if l.InputScale != 0 {
			in, zp = fmt.Sprintf("%.4g", l.InputScale), fmt.Sprint(l.InputZeroPoint)
		}
		if r.Mode == quantize.ModeStatic {
			sq = fmt.Sprintf("%.1f", l.SQNR)
		}
		kept := "no"
		if l.Float {
			kept, in, zp, ws = "yes", "-", "-", "-"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t\n", l.Name, l.Op, in, zp, ws, sq, kept)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(w, "\nfile size   %s -> %s (%.2fx smaller)\n", eval.Human(r.Before.FileBytes), eval.Human(r.After.FileBytes), float64(r.Before.FileBytes)/math.Max(1, float64(r.After.FileBytes)))
	if r.Before.Accuracy != nil && r.After.Accuracy != nil {
		fmt.Fprintf(w, "accuracy    %.2f%% -> %.2f%% (drop %.2f points)\n", 100**r.Before.Accuracy, 100**r.After.Accuracy, 100*(*r.Before.Accuracy-*r.After.Accuracy))
	}
	if r.BenchBatch > 0 {
		fmt.Fprintf(w, "latency     %.3f ms -> %.3f ms (batch %d, %.2fx)\n", r.Before.LatencyMs, r.After.LatencyMs, r.BenchBatch, r.Before.LatencyMs/math.Max(1e-9, r.After.LatencyMs))
	}
	_, err := fmt.Fprintf(w, "\nwrote %s (%.1fs)\n", r.Out, r.ElapsedSec)
	return err
}
