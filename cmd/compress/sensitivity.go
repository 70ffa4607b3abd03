package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/compressml/compress/data"
	"github.com/compressml/compress/eval"
	"github.com/compressml/compress/prune"
	rt "github.com/compressml/compress/runtime"
)

func sensitivityCommand() *cli.Command {
	return &cli.Command{
		Name:      "sensitivity",
		Usage:     "measure how much accuracy each layer loses when pruned, and write a per-layer pruning plan",
		UsageText: "compress sensitivity --model M --data D [--sparsities 0.3,0.5,0.7,0.9] [--limit N] [--max-drop 0.01] [--plan plan.json] [--chart chart.png] [--json]",
		Description: "Prunes each prunable layer (Conv, Gemm, MatMul) alone, by weight magnitude, at\n" +
			"every sparsity of --sparsities, and measures the test accuracy (on the first --limit\n" +
			"examples). Prints the table of accuracies, draws accuracy against sparsity per layer\n" +
			"(--chart, PNG), and writes a plan (--plan, JSON: {\"layer\": sparsity}) giving each\n" +
			"layer the largest sparsity whose accuracy drop is at most --max-drop (a fraction:\n" +
			"0.01 is one point); 'compress prune --plan FILE' applies it.\n\n" +
			"Example:\n" +
			"   compress sensitivity --model lenet.onnx --data mnist/ --limit 2000 --max-drop 0.005 \\\n" +
			"       --plan lenet-plan.json --chart lenet-sensitivity.png\n" +
			"   compress prune --model lenet.onnx --plan lenet-plan.json --out lenet-pruned.onnx",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "model", Aliases: []string{"m"}, Usage: "ONNX model `FILE`"},
			&cli.StringFlag{Name: "data", Aliases: []string{"d"}, Usage: "data set `PATH`; its test split is used"},
			&cli.StringFlag{Name: "sparsities", Value: "0.3,0.5,0.7,0.9", Usage: "comma-separated sparsities to try"},
			&cli.IntFlag{Name: "limit", Value: 1000, Usage: "evaluate on the first `N` test examples (0: all)"},
			&cli.Float64Flag{Name: "max-drop", Value: 0.01, Usage: "largest accuracy drop (fraction) the plan accepts per layer"},
			&cli.StringSliceFlag{Name: "exclude", Usage: "skip layers matching `PATTERN` (repeatable)"},
			&cli.StringFlag{Name: "plan", Value: "sensitivity-plan.json", Usage: "write the per-layer plan to `FILE` (\"\": do not)"},
			&cli.StringFlag{Name: "chart", Value: "sensitivity.png", Usage: "write the chart to `FILE` (\"\": do not)"},
			&cli.IntFlag{Name: "batch", Value: 256, Usage: "examples per run"},
			&cli.Float64Flag{Name: "scale", Value: 1, Usage: "multiply stored values by `X` first (e.g. 0.00392157 = 1/255)"},
			&cli.StringFlag{Name: "mean", Usage: "subtract `M` (one value, or one per channel)"},
			&cli.StringFlag{Name: "std", Usage: "then divide by `S` (one value, or one per channel)"},
			&cli.BoolFlag{Name: "json", Usage: "print one JSON object with the table and the plan"},
			threadsFlag(),
		},
		Action: sensitivityAction,
	}
}

func sensitivityAction(c *cli.Context) error {
	if err := needArgs(c, 0, "no positional arguments (give files with --model and --data)"); err != nil {
		return err
	}
	modelPath, dataPath := c.String("model"), c.String("data")
	if modelPath == "" {
		return errors.New("sensitivity: missing --model: give the ONNX model to analyse")
	}
	if dataPath == "" {
		return errors.New("sensitivity: missing --data: give the data set to measure accuracy on")
	}
	var sp []float64
	for _, f := range strings.Split(c.String("sparsities"), ",") {
		v, err := strconv.ParseFloat(strings.TrimSpace(f), 64)
		if err != nil {
			return fmt.Errorf("sensitivity: --sparsities %q: give comma-separated fractions such as 0.3,0.5,0.7,0.9", c.String("sparsities"))
		}
		if math.IsNaN(v) || v < 0 || v >= 1 {
			return fmt.Errorf("sensitivity: --sparsities: %v is outside [0, 1)", v)
		}
		sp = append(sp, v)
	}
	if c.Int("limit") < 0 || c.Int("batch") < 1 {
		return errors.New("sensitivity: --limit must not be negative and --batch must be positive")
	}
	th, err := threads(c)
	if err != nil {
		return fmt.Errorf("sensitivity: %w", err)
	}
	pre := data.Preprocess{Scale: float32(c.Float64("scale"))}
	if pre.Mean, err = data.ParseFloats(c.String("mean")); err != nil {
		return fmt.Errorf("sensitivity: --mean: %w", err)
	}
	if pre.Std, err = data.ParseFloats(c.String("std")); err != nil {
		return fmt.Errorf("sensitivity: --std: %w", err)
	}
	if err := pre.Validate(); err != nil {
		return fmt.Errorf("sensitivity: %w", err)
	}
	g, err := loadModel(modelPath)
	if err != nil {
		return fmt.Errorf("sensitivity: %w", err)
	}
	if err := prepareForTraining(g); err != nil {
		return fmt.Errorf("sensitivity: %s: %w", modelPath, err)
	}
	_, test, err := openPruneData(g, dataPath, false)
	if err != nil {
		return fmt.Errorf("sensitivity: %w", err)
	}
	if test == nil {
		// A data set in one part: measure on all of it.
		if test, err = openAll(g, dataPath); err != nil {
			return fmt.Errorf("sensitivity: %w", err)
		}
	}
	quiet := c.Bool("json")
	start := time.Now()
	opts := prune.SensitivityOptions{
		Sparsities: sp, MaxDrop: c.Float64("max-drop"), Exclude: c.StringSlice("exclude"),
		Evaluate: func(ctx context.Context, g *rt.Graph) (float64, error) {
			ex, err := prune.NewExecutor(g, th, 0)
			if err != nil {
				return 0, err
			}
			r, err := eval.Classify(ctx, ex, test, eval.Options{BatchSize: c.Int("batch"), Limit: c.Int("limit"), Preprocess: pre})
			if err != nil {
				return 0, err
			}
			return r.Accuracy, nil
		},
		Progress: func(layer string, s, acc float64) {
			if !quiet {
				fmt.Fprintf(c.App.ErrWriter, "  %-32s sparsity %.2f  accuracy %.4f\n", layer, s, acc)
			}
		},
	}
	rep, err := prune.Sensitivity(c.Context, g, opts)
	if err != nil {
		return fmt.Errorf("sensitivity: %w", err)
	}
	if p := c.String("plan"); p != "" {
		if err := rep.Plan.Write(p); err != nil {
			return fmt.Errorf("sensitivity: --plan: %w", err)
		}
	}
	if p := c.String("chart"); p != "" {
		if err := prune.PlotSensitivity(rep, p); err != nil {
			return fmt.Errorf("sensitivity: --chart: %w", err)
		}
	}
	if quiet {
		return writeJSON(c.App.Writer, struct {
			Model      string  `json:"model"`
			Data       string  `json:"data"`
			Examples   int     `json:"examples"`
			PlanFile   string  `json:"plan_file,omitempty"`
			ChartFile  string  `json:"chart_file,omitempty"`
			ElapsedSec float64 `json:"elapsed_sec"`
			*prune.SensitivityReport
		}{modelPath, dataPath, evalCount(test.Len(), c.Int("limit")), c.String("plan"), c.String("chart"), time.Since(start).Seconds(), rep})
	}
	return writeSensitivityText(c.App.Writer, rep, c.String("plan"), c.String("chart"), evalCount(test.Len(), c.Int("limit")))
}

func evalCount(n, limit int) int {
	if limit > 0 && limit < n {
		return limit
	}
	return n
}

func writeSensitivityText(w io.Writer, rep *prune.SensitivityReport, plan, chart string, examples int) error {
	fmt.Fprintf(w, "baseline accuracy %.4f on %d examples; plan: largest sparsity losing at most %.2f points\n\n", rep.Baseline, examples, 100*rep.MaxDrop)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	head := []string{"layer", "op", "shape", "params"}
	for _, s := range rep.Sparsities {
		head = append(head, fmt.Sprintf("%.0f%%", 100*s))
	}
	head = append(head, "plan")
	fmt.Fprintln(tw, strings.Join(head, "\t")+"\t")
	for _, r := range rep.Rows {
		cells := []string{r.Layer, r.Op, shapeString(r.Shape), fmt.Sprint(r.Params)}
		for _, a := range r.Accuracy {
			cells = append(cells, fmt.Sprintf("%.4f", a))
		}
		cells = append(cells, fmt.Sprintf("%.2f", r.Chosen))
		fmt.Fprintln(tw, strings.Join(cells, "\t")+"\t")
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(w)
	if plan != "" {
		fmt.Fprintf(w, "wrote plan %s (apply with: compress prune --plan %s ...)\n", plan, plan)
	}
	if chart != "" {
		fmt.Fprintf(w, "wrote chart %s\n", chart)
	}
	return nil
}

// openAll opens all of a data set that has no test split, shaped for g's
// input.
func openAll(g *rt.Graph, path string) (data.Dataset, error) {
	opts := data.Options{}
	if in, err := eval.FeedInput(g, "", nil); err == nil {
		opts = opts.WithInputShape(in.Shape)
	}
	return data.OpenWith(path, data.SplitAll, opts)
}
