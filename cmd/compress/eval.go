package main

import (
	"fmt"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/compressml/compress/data"
	"github.com/compressml/compress/eval"
	rt "github.com/compressml/compress/runtime"
)

func evalCommand() *cli.Command {
	return &cli.Command{
		Name:      "eval",
		UsageText: "compress eval --model MODEL --data PATH [--split test] [--batch B] [--limit N] [--scale X --mean M --std S] [--json] [--threads T]",
		Usage:     "measure a classifier's accuracy on a data set",
		Description: "Runs a classification model over a data set and reports accuracy, top-5\n" +
			"accuracy, per-class precision, recall and F1 with their macro averages, and the\n" +
			"confusion matrix (rows: true class, columns: predicted class).\n\n" +
			"--data is a folder of MNIST-format idx files named as MNIST's are\n" +
			"(train-images-idx3-ubyte, train-labels-idx1-ubyte, t10k-images-idx3-ubyte,\n" +
			"t10k-labels-idx1-ubyte, each optionally .gz), such as MNIST's or Fashion-MNIST's.\n" +
			"Each example is reshaped to the model input's shape (same number of values).\n\n" +
			"Pixel values are fed as stored (0-255) unless --scale, --mean or --std say\n" +
			"otherwise: x*scale, then (x-mean)/std, where mean and std are one number or one\n" +
			"per channel (comma-separated). A model whose batch dimension is fixed (e.g. 1)\n" +
			"runs batches of that size; otherwise --batch examples run at once.\n\n" +
			"Example:\n" +
			"   compress eval --model mnist-8/model.onnx --data $(go env GOMODCACHE)/github.com/petar/!go!m!n!i!s!t@v0.0.0-20150320212226-2fbe10d0fa63/data\n" +
			"   compress eval --model cnn.onnx --data /usr/share/datasets/fashion-mnist --scale 0.00392157 --mean 0.5 --std 0.5 --json",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "model", Aliases: []string{"m"}, Usage: "ONNX model `FILE`"},
			&cli.StringFlag{Name: "data", Aliases: []string{"d"}, Usage: "data set `PATH` (a folder of MNIST-format idx files)"},
			&cli.StringFlag{Name: "split", Value: "test", Usage: "which part of the data set: train or test"},
			&cli.IntFlag{Name: "batch", Value: data.DefaultBatchSize, Usage: "examples per run when the model's batch dimension is dynamic"},
			&cli.IntFlag{Name: "limit", Usage: "evaluate only the first `N` examples (0: all)"},
			&cli.Float64Flag{Name: "scale", Value: 1, Usage: "multiply stored values by `X` first (e.g. 0.00392157 = 1/255)"},
			&cli.StringFlag{Name: "mean", Usage: "subtract `M` (one value, or one per channel: 0.485,0.456,0.406)"},
			&cli.StringFlag{Name: "std", Usage: "then divide by `S` (one value, or one per channel)"},
			&cli.StringFlag{Name: "input", Usage: "model input `NAME` to feed (default: the only input)"},
			&cli.StringFlag{Name: "output", Usage: "model output `NAME` holding class scores (default: the first output)"},
			&cli.BoolFlag{Name: "json", Usage: "print one JSON object (fields accuracy, top5_accuracy, confusion_matrix, ...)"},
			threadsFlag(),
		},
		Action: evalAction,
	}
}

// evalResult is the JSON output of eval: the run's settings and the report.
type evalResult struct {
	Model      string  `json:"model"`
	Data       string  `json:"data"`
	Split      string  `json:"split"`
	Threads    int     `json:"threads"`
	ElapsedSec float64 `json:"elapsed_sec"`
	*eval.ClassificationReport
}

func evalAction(c *cli.Context) error {
	if err := needArgs(c, 0, "no positional arguments (give files with --model and --data)"); err != nil {
		return err
	}
	modelPath, dataPath := c.String("model"), c.String("data")
	if modelPath == "" {
		return fmt.Errorf("eval: missing --model: give the ONNX classifier to evaluate, e.g. --model model.onnx")
	}
	if dataPath == "" {
		return fmt.Errorf("eval: missing --data: give the folder holding the data set's idx files")
	}
	split, err := data.ParseSplit(c.String("split"))
	if err != nil {
		return fmt.Errorf("eval: --split: %w", err)
	}
	if b := c.Int("batch"); b < 1 {
		return fmt.Errorf("eval: --batch %d: give a positive batch size", b)
	}
	if l := c.Int("limit"); l < 0 {
		return fmt.Errorf("eval: --limit %d: give a positive number of examples, or 0 for all", l)
	}
	th, err := threads(c)
	if err != nil {
		return fmt.Errorf("eval: %w", err)
	}
	pre := data.Preprocess{Scale: float32(c.Float64("scale"))}
	if pre.Mean, err = data.ParseFloats(c.String("mean")); err != nil {
		return fmt.Errorf("eval: --mean: %w", err)
	}
	if pre.Std, err = data.ParseFloats(c.String("std")); err != nil {
		return fmt.Errorf("eval: --std: %w", err)
	}
	if pre.Scale == 0 {
		return fmt.Errorf("eval: --scale 0 would zero every value; give a non-zero scale")
	}
	if err := pre.Validate(); err != nil {
		return fmt.Errorf("eval: %w", err)
	}

	g, err := loadModel(modelPath)
	if err != nil {
		return fmt.Errorf("eval: %w", err)
	}
	ex, err := rt.NewExecutor(g, rt.Options{Threads: th})
	if err != nil {
		return fmt.Errorf("eval: %s: %w", modelPath, err)
	}
	ds, err := data.Open(dataPath, split)
	if err != nil {
		return fmt.Errorf("eval: %w", err)
	}
	start := time.Now()
	r, err := eval.Classify(c.Context, ex, ds, eval.Options{
		Input: c.String("input"), Output: c.String("output"),
		BatchSize: c.Int("batch"), Limit: c.Int("limit"), Preprocess: pre,
	})
	if err != nil {
		return fmt.Errorf("eval: %s on %s: %w", modelPath, dataPath, err)
	}
	elapsed := time.Since(start)
	if c.Bool("json") {
		return writeJSON(c.App.Writer, evalResult{Model: modelPath, Data: dataPath, Split: string(split),
			Threads: ex.Threads(), ElapsedSec: elapsed.Seconds(), ClassificationReport: r})
	}
	fmt.Fprintf(c.App.Writer, "model           %s\ndata            %s\n", modelPath, data.Name(ds))
	if err := r.WriteText(c.App.Writer); err != nil {
		return err
	}
	_, err = fmt.Fprintf(c.App.Writer, "\nevaluated in %.2fs on %d threads\n", elapsed.Seconds(), ex.Threads())
	return err
}
