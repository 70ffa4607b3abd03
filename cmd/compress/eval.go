package main

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/compressml/compress/data"
	"github.com/compressml/compress/eval"
	rt "github.com/compressml/compress/runtime"
)

func evalCommand() *cli.Command {
	return &cli.Command{
		Name: "eval",
		UsageText: "compress eval --model MODEL --data PATH [--split test|train|all] [--task classification|regression]\n" +
			"   [--label-column COL] [--header auto|yes|no] [--batch B] [--limit N] [--scale X --mean M --std S] [--json] [--threads T]",
		Usage: "measure a classifier's accuracy (or a regression model's error) on a data set",
		Description: "Runs a model over a data set. For classification (the default) it reports\n" +
			"accuracy, top-5 accuracy, per-class precision, recall, F1 and ROC-AUC with their\n" +
			"macro averages, and the confusion matrix (rows: true class, columns: predicted\n" +
			"class). ROC-AUC is binary for two classes (the score of class 1: its softmax\n" +
			"probability, or the sigmoid of a single output logit) and one-vs-rest macro for\n" +
			"more. With --task regression it reports MSE, RMSE, MAE and R2 (the model outputs\n" +
			"one value per target).\n\n" +
			"--data is one of:\n" +
			"  - a folder of MNIST-format idx files named as MNIST's are (train-images-idx3-ubyte,\n" +
			"    train-labels-idx1-ubyte, t10k-images-idx3-ubyte, t10k-labels-idx1-ubyte, each\n" +
			"    optionally .gz), such as MNIST's or Fashion-MNIST's;\n" +
			"  - a CSV file (.csv, .tsv, .txt, optionally .gz): one example per row, the label in\n" +
			"    the last column (or --label-column: an index, negative from the end, or a header\n" +
			"    name), every other column a feature. A header row is detected (--header says\n" +
			"    otherwise), as is scikit-learn's. Labels are class indices 0..K-1 or class names\n" +
			"    (numbered in sorted order); for regression, numbers. A folder holding train.csv\n" +
			"    and test.csv works too;\n" +
			"  - NumPy arrays: an .npz archive, or a folder of .npy files, holding x_train,\n" +
			"    y_train, x_test, y_test (or x and y). y holds class indices, one-hot rows, or\n" +
			"    for regression float targets [N] or [N K];\n" +
			"  - an image folder: one sub-folder of PNG/JPEG images per class (classes numbered\n" +
			"    by sorted folder name), optionally below train/ and test/ folders. Images are\n" +
			"    resized (bilinear) to the model input's height and width and converted to its\n" +
			"    channels (1: grayscale, 3: RGB), for a model input of shape [N C H W].\n" +
			"Each example is reshaped to the model input's shape (same number of values).\n\n" +
			"--split picks the part of a data set stored in two parts. A single file or a\n" +
			"folder of class folders is one part: its test split is a companion file next to\n" +
			"it (NAME_test.csv, or the name with \"train\" replaced by \"test\"); without one,\n" +
			"and without an explicit --split, the whole data set is evaluated (--split all).\n\n" +
			"Values are fed as stored (pixels 0-255) unless --scale, --mean or --std say\n" +
			"otherwise: x*scale, then (x-mean)/std, where mean and std are one number or one\n" +
			"per channel (comma-separated). A model whose batch dimension is fixed (e.g. 1)\n" +
			"runs batches of that size; otherwise --batch examples run at once.\n\n" +
			"Example:\n" +
			"   compress eval --model mnist-8/model.onnx --data $(go env GOMODCACHE)/github.com/petar/!go!m!n!i!s!t@v0.0.0-20150320212226-2fbe10d0fa63/data\n" +
			"   compress eval --model cnn.onnx --data /usr/share/datasets/fashion-mnist --scale 0.00392157 --mean 0.5 --std 0.5 --json\n" +
			"   compress eval --model digits-mlp.onnx --data /usr/lib/python3/dist-packages/sklearn/datasets/data/digits.csv.gz --scale 0.0625\n" +
			"   compress eval --model iris.onnx --data iris_test.csv --label-column species\n" +
			"   compress eval --model prices.onnx --data houses.csv --task regression --label-column price\n" +
			"   compress eval --model cnn.onnx --data mnist.npz --scale 0.00392157\n" +
			"   compress eval --model resnet.onnx --data photos/ --split test --scale 0.00392157 --mean 0.485,0.456,0.406 --std 0.229,0.224,0.225",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "model", Aliases: []string{"m"}, Usage: "ONNX model `FILE`"},
			&cli.StringFlag{Name: "data", Aliases: []string{"d"}, Usage: "data set `PATH`: an idx folder, a CSV file, an .npz or .npy folder, an image folder"},
			&cli.StringFlag{Name: "split", Value: "test", Usage: "which part of the data set: train, test or all"},
			&cli.StringFlag{Name: "task", Value: "classification", Usage: "classification or regression"},
			&cli.StringFlag{Name: "label-column", Usage: "CSV label (or target) column: an index (0-based, -1 = last) or a header `NAME` (default: the last)"},
			&cli.StringFlag{Name: "header", Value: "auto", Usage: "whether a CSV file has a header row: auto, yes or no"},
			&cli.IntFlag{Name: "batch", Value: data.DefaultBatchSize, Usage: "examples per run when the model's batch dimension is dynamic"},
			&cli.IntFlag{Name: "limit", Usage: "evaluate only the first `N` examples (0: all)"},
			&cli.Float64Flag{Name: "scale", Value: 1, Usage: "multiply stored values by `X` first (e.g. 0.00392157 = 1/255)"},
			&cli.StringFlag{Name: "mean", Usage: "subtract `M` (one value, or one per channel: 0.485,0.456,0.406)"},
			&cli.StringFlag{Name: "std", Usage: "then divide by `S` (one value, or one per channel)"},
			&cli.StringFlag{Name: "input", Usage: "model input `NAME` to feed (default: the only input)"},
			&cli.StringFlag{Name: "output", Usage: "model output `NAME` holding class scores or predictions (default: the first output)"},
			&cli.BoolFlag{Name: "json", Usage: "print one JSON object (fields accuracy, top5_accuracy, roc_auc, confusion_matrix, ...; mse, mae, r2 for regression)"},
			threadsFlag(),
			noSparseFlag(),
		},
		Action: evalAction,
	}
}

// evalResult is the JSON output of eval for a classifier: the run's
// settings and the report.
type evalResult struct {
	Model      string   `json:"model"`
	Data       string   `json:"data"`
	Split      string   `json:"split"`
	Task       string   `json:"task"`
	Threads    int      `json:"threads"`
	ElapsedSec float64  `json:"elapsed_sec"`
	ClassNames []string `json:"class_names,omitempty"`
	*eval.ClassificationReport
}

// evalRegressionResult is the JSON output of eval for a regression model.
type evalRegressionResult struct {
	Model      string  `json:"model"`
	Data       string  `json:"data"`
	Split      string  `json:"split"`
	Task       string  `json:"task"`
	Threads    int     `json:"threads"`
	ElapsedSec float64 `json:"elapsed_sec"`
	*eval.RegressionReport
}

// parseHeader reads --header.
func parseHeader(s string) (data.HeaderMode, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "", "auto":
		return data.HeaderAuto, nil
	case "yes", "true", "present":
		return data.HeaderPresent, nil
	case "no", "false", "none", "absent":
		return data.HeaderAbsent, nil
	}
	return 0, fmt.Errorf("--header %q: use auto, yes or no", s)
}

func evalAction(c *cli.Context) error {
	if err := needArgs(c, 0, "no positional arguments (give files with --model and --data)"); err != nil {
		return err
	}
	modelPath, dataPath := c.String("model"), c.String("data")
	if modelPath == "" {
		return fmt.Errorf("eval: missing --model: give the ONNX model to evaluate, e.g. --model model.onnx")
	}
	if dataPath == "" {
		return fmt.Errorf("eval: missing --data: give the data set (an idx folder, a CSV file, an .npz archive, an image folder...)")
	}
	split, err := data.ParseSplit(c.String("split"))
	if err != nil {
		return fmt.Errorf("eval: --split: %w", err)
	}
	task, err := data.ParseTask(c.String("task"))
	if err != nil {
		return fmt.Errorf("eval: --task: %w", err)
	}
	header, err := parseHeader(c.String("header"))
	if err != nil {
		return fmt.Errorf("eval: %w", err)
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
	ex, err := rt.NewExecutor(g, rt.Options{Threads: th, NoSparse: c.Bool("no-sparse")})
	if err != nil {
		return fmt.Errorf("eval: %s: %w", modelPath, err)
	}
	opts := data.Options{Task: task, LabelColumn: c.String("label-column"), Header: header}
	if in, err := eval.FeedInput(g, c.String("input"), nil); err == nil {
		opts = opts.WithInputShape(in.Shape) // image folders take the model's size
	}
	ds, err := data.OpenWith(dataPath, split, opts)
	if errors.Is(err, data.ErrNoSplit) && split == data.SplitTest && !c.IsSet("split") {
		// A data set in one part (a single file, a folder of class
		// folders): evaluate all of it.
		split = data.SplitAll
		ds, err = data.OpenWith(dataPath, split, opts)
	}
	if err != nil {
		return fmt.Errorf("eval: %w", err)
	}
	evalOpts := eval.Options{
		Input: c.String("input"), Output: c.String("output"),
		BatchSize: c.Int("batch"), Limit: c.Int("limit"), Preprocess: pre,
	}
	w := c.App.Writer
	start := time.Now()
	if task == data.TaskRegression {
		r, err := eval.Regress(c.Context, ex, ds, evalOpts)
		if err != nil {
			return fmt.Errorf("eval: %s on %s: %w", modelPath, dataPath, err)
		}
		elapsed := time.Since(start)
		if c.Bool("json") {
			return writeJSON(w, evalRegressionResult{Model: modelPath, Data: dataPath, Split: string(split), Task: string(task),
				Threads: ex.Threads(), ElapsedSec: elapsed.Seconds(), RegressionReport: r})
		}
		fmt.Fprintf(w, "model           %s\ndata            %s\n", modelPath, data.Name(ds))
		if err := r.WriteText(w); err != nil {
			return err
		}
		_, err = fmt.Fprintf(w, "\nevaluated in %.2fs on %d threads\n", elapsed.Seconds(), ex.Threads())
		return err
	}
	r, err := eval.Classify(c.Context, ex, ds, evalOpts)
	if err != nil {
		return fmt.Errorf("eval: %s on %s: %w", modelPath, dataPath, err)
	}
	elapsed := time.Since(start)
	var names []string
	if cn, ok := ds.(data.ClassNamer); ok {
		names = cn.ClassNames()
	}
	if c.Bool("json") {
		return writeJSON(w, evalResult{Model: modelPath, Data: dataPath, Split: string(split), Task: string(task),
			Threads: ex.Threads(), ElapsedSec: elapsed.Seconds(), ClassNames: names, ClassificationReport: r})
	}
	fmt.Fprintf(w, "model           %s\ndata            %s\n", modelPath, data.Name(ds))
	if len(names) > 0 {
		fmt.Fprintf(w, "classes         %s\n", strings.Join(names, ", "))
	}
	if err := r.WriteText(w); err != nil {
		return err
	}
	_, err = fmt.Fprintf(w, "\nevaluated in %.2fs on %d threads\n", elapsed.Seconds(), ex.Threads())
	return err
}
