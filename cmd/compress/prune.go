package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/compressml/compress/data"
	"github.com/compressml/compress/eval"
	"github.com/compressml/compress/finetune"
	"github.com/compressml/compress/importer"
	"github.com/compressml/compress/prune"
	rt "github.com/compressml/compress/runtime"
)

func pruneCommand() *cli.Command {
	return &cli.Command{
		Name:  "prune",
		Usage: "prune a model: unstructured, N:M or channel pruning, optionally gradual with fine-tuning",
		UsageText: "compress prune --model IN --out OUT --sparsity F [--method magnitude|nm|channel] [--scope layer|global]\n" +
			"   [--pattern N:M] [--schedule oneshot|gradual --steps K] [--exclude P]... [--plan FILE]\n" +
			"   [--data PATH --epochs E --optimizer adam --lr X ...] [--json]",
		Description: "Removes weights from an ONNX model and writes the result to --out, with a table of\n" +
			"every prunable layer (Conv, Gemm, MatMul): weight shape, parameters, non-zeros and\n" +
			"sparsity, and the totals before and after (parameters, non-zeros, file size and\n" +
			"gzip-compressed size, MACs, latency of a short benchmark, and test accuracy when\n" +
			"--data is given).\n\n" +
			"Methods:\n" +
			"  magnitude  zero the weights of smallest |w|: exactly round(F*n) of each layer\n" +
			"             (--scope layer), or of all pruned layers together (--scope global).\n" +
			"  nm         N:M semi-structured sparsity (--pattern 2:4): in every run of M weights\n" +
			"             along the reduction dimension (Conv: in_channels*kh*kw, Gemm: K) keep N.\n" +
			"  channel    remove F of the output channels of every prunable channel group, ranked\n" +
			"             by --criterion (l1, l2 or bn: |BatchNorm gamma|); residual additions,\n" +
			"             concatenations, depthwise convolutions and Flatten->Gemm are followed, and\n" +
			"             the channels are physically removed: a smaller dense model.\n\n" +
			"The first and the last prunable layer stay dense unless --include-first-last;\n" +
			"--exclude P (a glob or /regexp/ over node and weight names, repeatable) keeps more.\n" +
			"--plan FILE (from 'compress sensitivity') gives layers their own sparsity.\n\n" +
			"Layers with mostly zero weights run on sparse kernels (CSR) where that is faster\n" +
			"(--sparse-threshold), here and in 'compress run', 'eval' and 'bench'; the written\n" +
			"model is standard ONNX.\n\n" +
			"With --data the model is evaluated on the test split before and after, and\n" +
			"fine-tuned on the training split after pruning (flags as for 'compress finetune';\n" +
			"--epochs 0 skips fine-tuning) with the masks in force, so pruned weights stay exactly\n" +
			"zero. --schedule gradual --steps K prunes in K steps along Zhu and Gupta's cubic\n" +
			"schedule s_t = s_f + (s_i - s_f)(1 - t/K)^3, fine-tuning --epochs after each step.\n\n" +
			"Example:\n" +
			"   compress prune --model mnist-8/model.onnx --sparsity 0.5 --out mnist-8-pruned.onnx\n" +
			"   compress prune --model resnet.onnx --method channel --sparsity 0.5 --out small.onnx \\\n" +
			"       --data mnist/ --epochs 2 --lr 1e-3\n" +
			"   compress prune --model lenet.onnx --scope global --sparsity 0.8 --schedule gradual \\\n" +
			"       --steps 4 --data mnist/ --epochs 1 --out lenet-80.onnx\n" +
			"   compress prune --model lenet.onnx --method nm --pattern 2:4 --out lenet-24.onnx",
		Flags: append(pruneTrainFlags(),
			&cli.StringFlag{Name: "model", Aliases: []string{"m"}, Usage: "ONNX model `FILE` to prune"},
			&cli.Float64Flag{Name: "sparsity", Aliases: []string{"s"}, Usage: "fraction `F` in [0, 1) of weights (or channels) to remove"},
			&cli.StringFlag{Name: "method", Value: prune.Magnitude, Usage: "magnitude, nm or channel"},
			&cli.StringFlag{Name: "scope", Value: prune.ScopeLayer, Usage: "magnitude pruning per layer, or global"},
			&cli.StringFlag{Name: "pattern", Usage: "`N:M` pattern of the nm method (2:4, 4:8)"},
			&cli.StringFlag{Name: "criterion", Value: prune.CriterionL1, Usage: "channel ranking: l1, l2 or bn"},
			&cli.StringFlag{Name: "schedule", Value: "oneshot", Usage: "oneshot or gradual"},
			&cli.IntFlag{Name: "steps", Value: 4, Usage: "pruning steps of the gradual schedule"},
			&cli.Float64Flag{Name: "initial-sparsity", Usage: "sparsity s_i the gradual schedule starts from"},
			&cli.StringFlag{Name: "lr-schedule", Value: "constant", Usage: "learning-rate schedule of fine-tuning: constant, step or cosine"},
			&cli.StringSliceFlag{Name: "exclude", Usage: "keep layers matching `PATTERN` dense (repeatable)"},
			&cli.BoolFlag{Name: "include-first-last", Usage: "prune the first and last prunable layers too"},
			&cli.StringFlag{Name: "plan", Usage: "per-layer sparsity plan `FILE` (JSON, from 'compress sensitivity')"},
			&cli.IntFlag{Name: "limit", Usage: "evaluate accuracy on the first `N` test examples only (0: all)"},
			&cli.DurationFlag{Name: "bench-time", Value: time.Second, Usage: "duration of each latency benchmark (0: skip)"},
			&cli.IntFlag{Name: "bench-batch", Value: 1, Usage: "batch size of the latency benchmark"},
			&cli.Float64Flag{Name: "sparse-threshold", Usage: "run layers with at least this fraction of zeros on sparse kernels (0: where measured faster, above 1: never)"},
		),
		Action: pruneAction,
	}
}

// pruneTrainFlags are the fine-tuning flags of 'compress finetune' without
// those that mean something else here (--schedule is the pruning
// schedule: the learning-rate one is --lr-schedule) or that do not apply
// across pruning steps (checkpoints, curves).
func pruneTrainFlags() []cli.Flag {
	var out []cli.Flag
	for _, f := range trainFlags() {
		switch f.Names()[0] {
		case "schedule", "checkpoint", "resume", "plot":
			continue
		case "out":
			f = &cli.StringFlag{Name: "out", Aliases: []string{"o"}, Usage: "write the pruned model to `FILE`"}
		}
		out = append(out, f)
	}
	return out
}

// pruneLayerRow is one row of the layer table.
type pruneLayerRow struct {
	Layer        string  `json:"layer"`
	Op           string  `json:"op"`
	ShapeBefore  []int   `json:"shape_before"`
	Shape        []int   `json:"shape"`
	ParamsBefore int     `json:"params_before"`
	Params       int     `json:"params"`
	NonZeros     int     `json:"nonzeros"`
	Sparsity     float64 `json:"sparsity"`
	Pruned       bool    `json:"pruned"`
}

// pruneTotals are the model totals before or after.
type pruneTotals struct {
	prune.ModelStats
	LatencyMs float64  `json:"latency_ms,omitempty"`
	Accuracy  *float64 `json:"accuracy,omitempty"`
}

// pruneResult is the JSON output of prune.
type pruneResult struct {
	Model      string              `json:"model"`
	Out        string              `json:"out"`
	Method     string              `json:"method"`
	Scope      string              `json:"scope,omitempty"`
	Pattern    string              `json:"pattern,omitempty"`
	Schedule   string              `json:"schedule"`
	Steps      int                 `json:"steps"`
	Layers     []pruneLayerRow     `json:"layers"`
	Groups     []prune.GroupReport `json:"groups,omitempty"`
	Before     pruneTotals         `json:"before"`
	After      pruneTotals         `json:"after"`
	BenchBatch int                 `json:"bench_batch"`
	Train      []*finetune.Result  `json:"train,omitempty"`
	ElapsedSec float64             `json:"elapsed_sec"`
}

func pruneAction(c *cli.Context) error {
	if err := needArgs(c, 0, "no positional arguments (give files with --model and --out)"); err != nil {
		return err
	}
	start := time.Now()
	modelPath, out := c.String("model"), c.String("out")
	if modelPath == "" {
		return errors.New("prune: missing --model: give the ONNX model to prune")
	}
	if out == "" {
		return errors.New("prune: missing --out: give the file to write the pruned model to")
	}
	opts := prune.Options{Method: c.String("method"), Sparsity: c.Float64("sparsity"), Scope: c.String("scope"),
		Criterion: c.String("criterion"), Exclude: c.StringSlice("exclude"), IncludeFirstLast: c.Bool("include-first-last")}
	if opts.Method == prune.NM {
		if !c.IsSet("pattern") {
			return errors.New("prune: --method nm needs --pattern N:M, e.g. --pattern 2:4")
		}
		var err error
		if opts.N, opts.M, err = prune.ParsePattern(c.String("pattern")); err != nil {
			return fmt.Errorf("prune: --pattern: %w", err)
		}
	} else if c.IsSet("pattern") {
		if opts.Method != prune.Magnitude || c.IsSet("method") {
			return fmt.Errorf("prune: --pattern goes with --method nm, not %s", opts.Method)
		}
		opts.Method = prune.NM
		var err error
		if opts.N, opts.M, err = prune.ParsePattern(c.String("pattern")); err != nil {
			return fmt.Errorf("prune: --pattern: %w", err)
		}
	}
	if p := c.String("plan"); p != "" {
		plan, err := prune.ReadPlan(p)
		if err != nil {
			return fmt.Errorf("prune: --plan: %w", err)
		}
		opts.Plan = plan
	} else if !c.IsSet("sparsity") && opts.Method != prune.NM {
		return errors.New("prune: missing --sparsity: give the fraction of weights to remove, e.g. --sparsity 0.5 (or a --plan)")
	}
	if err := opts.Validate(); err != nil {
		return fmt.Errorf("prune: %w", err)
	}
	sched := prune.Schedule{Initial: c.Float64("initial-sparsity")}
	switch c.String("schedule") {
	case "oneshot", "one-shot":
		sched.Steps = 1
	case "gradual":
		sched.Steps = c.Int("steps")
		if sched.Steps < 1 {
			return fmt.Errorf("prune: --steps %d: give a positive number of pruning steps", sched.Steps)
		}
	default:
		return fmt.Errorf("prune: --schedule %q: use oneshot or gradual (the learning-rate schedule is --lr-schedule)", c.String("schedule"))
	}
	if l := c.Int("limit"); l < 0 {
		return fmt.Errorf("prune: --limit %d: give a positive number of examples, or 0 for all", l)
	}
	if b := c.Int("bench-batch"); b < 1 {
		return fmt.Errorf("prune: --bench-batch %d: give a positive batch size", b)
	}
	th, err := threads(c)
	if err != nil {
		return fmt.Errorf("prune: %w", err)
	}
	thresh := c.Float64("sparse-threshold")
	if thresh < 0 {
		return fmt.Errorf("prune: --sparse-threshold %g: give 0 (sparse kernels where measured faster), a fraction of zeros in (0, 1], or above 1 (never)", thresh)
	}

	// Fine-tuning configuration (--epochs 0: evaluate only).
	dataPath := c.String("data")
	tune := dataPath != "" && c.Int("epochs") > 0
	if c.Int("epochs") == 0 {
		if err := c.Set("epochs", "1"); err != nil {
			return err
		}
	}
	cfg, err := trainConfig(c)
	if err != nil {
		return fmt.Errorf("prune: %w", err)
	}
	cfg.Schedule.Kind = c.String("lr-schedule")
	if err := cfg.Schedule.Validate(); err != nil {
		return fmt.Errorf("prune: --lr-schedule: %w", err)
	}
	if sched.Steps > 1 && !tune {
		fmt.Fprintln(c.App.ErrWriter, "prune: note: the gradual schedule without fine-tuning (--data, --epochs) ends where one-shot pruning does")
	}
	g, err := loadModel(modelPath)
	if err != nil {
		return fmt.Errorf("prune: %w", err)
	}
	if err := prepareForTraining(g); err != nil {
		return fmt.Errorf("prune: %s: %w", modelPath, err)
	}
	var train, test data.Dataset
	if dataPath != "" {
		if train, test, err = openPruneData(g, dataPath, tune); err != nil {
			return fmt.Errorf("prune: %w", err)
		}
		if test == nil {
			fmt.Fprintf(c.App.ErrWriter, "prune: note: %s has no test split: accuracy is not measured\n", dataPath)
		}
	}
	// Every check of the options against the model runs before anything is
	// changed or measured.
	if _, err := prune.Select(g, opts); err != nil {
		return fmt.Errorf("prune: %s: %w", modelPath, err)
	}
	if opts.Method == prune.NM {
		if _, _, err := prune.ComputeMasks(g, opts); err != nil {
			return fmt.Errorf("prune: %s: %w", modelPath, err)
		}
	}
	quiet := c.Bool("json")
	logf := func(format string, args ...any) {
		if !quiet {
			fmt.Fprintf(c.App.ErrWriter, format, args...)
		}
	}
	measure := func(g *rt.Graph, what string) (pruneTotals, []prune.LayerStats, error) {
		ls, ms, err := prune.Stats(g)
		if err != nil {
			return pruneTotals{}, nil, err
		}
		tot := pruneTotals{ModelStats: *ms}
		if test != nil {
			ex, err := prune.NewExecutor(g, th, thresh)
			if err != nil {
				return tot, nil, err
			}
			{
				logf("evaluating the %s model on %s...\n", what, data.Name(test))
				r, err := eval.Classify(c.Context, ex, test, eval.Options{BatchSize: 256, Limit: c.Int("limit"), Preprocess: cfg.Preprocess})
				if err != nil {
					return tot, nil, fmt.Errorf("evaluating the %s model: %w", what, err)
				}
				acc := r.Accuracy
				tot.Accuracy = &acc
			}
		}
		return tot, ls, nil
	}
	res := pruneResult{Model: modelPath, Out: out, Method: opts.Method, Schedule: c.String("schedule"), Steps: max(sched.Steps, 1),
		BenchBatch: c.Int("bench-batch")}
	if opts.Method == prune.Magnitude {
		res.Scope = opts.Scope
	}
	if opts.Method == prune.NM {
		res.Pattern = fmt.Sprintf("%d:%d", opts.N, opts.M)
	}
	var lsBefore []prune.LayerStats
	if res.Before, lsBefore, err = measure(g, "original"); err != nil {
		return fmt.Errorf("prune: %w", err)
	}
	original := g.Clone()

	if tune {
		if _, err := (finetune.FreezeSpec{}).Apply(g); err != nil {
			return fmt.Errorf("prune: %w", err)
		}
		var logw io.Writer
		if p := c.String("log"); p != "" {
			f, err := os.Create(p)
			if err != nil {
				return fmt.Errorf("prune: --log: %w", err)
			}
			defer f.Close()
			logw = f
		}
		sched.FineTune = func(ctx context.Context, step, steps int, masks prune.Masks) error {
			prog := newProgress(c.App.ErrWriter, quiet)
			var enc *json.Encoder
			if logw != nil {
				enc = json.NewEncoder(logw)
			}
			cfg := cfg
			cfg.Progress = func(ev finetune.Event) {
				if enc != nil {
					_ = enc.Encode(struct {
						PruneStep int `json:"prune_step"`
						finetune.Event
					}{step, ev})
				}
				prog.update(ev)
			}
			r, err := prune.FineTune(ctx, g, masks, train, nil, cfg)
			prog.done()
			if err != nil {
				return err
			}
			res.Train = append(res.Train, r)
			return nil
		}
	}
	sched.OnStep = func(step, steps int, f float64) {
		if steps > 1 {
			logf("pruning step %d/%d (%.0f%% of the target sparsity)\n", step, steps, 100*f)
		}
	}
	pr, err := prune.Prune(c.Context, g, opts, sched)
	if err != nil {
		return fmt.Errorf("prune: %w", err)
	}
	res.Groups = pr.Groups
	var lsAfter []prune.LayerStats
	if res.After, lsAfter, err = measure(g, "pruned"); err != nil {
		return fmt.Errorf("prune: %w", err)
	}
	res.Layers = layerRows(lsBefore, lsAfter, pr)
	if d := c.Duration("bench-time"); d > 0 {
		logf("benchmarking the original and the pruned model (batch %d, %v each)...\n", res.BenchBatch, d)
		ms, err := compareLatency(c.Context, []*rt.Graph{original, g}, th, thresh, res.BenchBatch, d)
		if err != nil {
			return fmt.Errorf("prune: %w", err)
		}
		res.Before.LatencyMs, res.After.LatencyMs = ms[0], ms[1]
	}
	if err := importer.Save(g, out); err != nil {
		return fmt.Errorf("prune: %w", err)
	}
	res.ElapsedSec = time.Since(start).Seconds()
	if quiet {
		return writeJSON(c.App.Writer, res)
	}
	return writePruneText(c.App.Writer, &res)
}

// openPruneData opens the test split of a data set (nil when it has no
// separate one) and, with tune, its training split, shaped for g's input
// (image folders are resized to it).
func openPruneData(g *rt.Graph, path string, tune bool) (train, test data.Dataset, err error) {
	opts := data.Options{}
	if in, err := eval.FeedInput(g, "", nil); err == nil {
		opts = opts.WithInputShape(in.Shape)
	}
	test, err = data.OpenWith(path, data.SplitTest, opts)
	if errors.Is(err, data.ErrNoSplit) {
		test, err = nil, nil
	}
	if err != nil {
		return nil, nil, err
	}
	if tune {
		if train, err = data.OpenWith(path, data.SplitTrain, opts); errors.Is(err, data.ErrNoSplit) {
			train, err = data.OpenWith(path, data.SplitAll, opts)
		}
		if err != nil {
			return nil, nil, err
		}
	}
	return train, test, nil
}

// layerRows pairs the layer statistics before and after pruning (by
// weight name; channel pruning keeps names).
func layerRows(before, after []prune.LayerStats, pr *prune.Result) []pruneLayerRow {
	pruned := map[string]bool{}
	for _, t := range pr.Targets {
		pruned[t.Param] = t.Sparsity > 0
	}
	if pr.Groups != nil {
		// Channel pruning: a layer is pruned when its output channels or
		// its input channels were removed (its shape changed).
		pruned = map[string]bool{}
	}
	aft := map[string]prune.LayerStats{}
	for _, l := range after {
		aft[l.Param] = l
	}
	var rows []pruneLayerRow
	for _, b := range before {
		a, ok := aft[b.Param]
		if !ok {
			continue
		}
		row := pruneLayerRow{Layer: b.Layer, Op: b.Op, ShapeBefore: b.Shape, Shape: a.Shape, ParamsBefore: b.Params,
			Params: a.Params, NonZeros: a.NonZeros, Sparsity: a.Sparsity, Pruned: pruned[b.Param] || a.Params != b.Params}
		rows = append(rows, row)
	}
	return rows
}

func shapeString(s []int) string { return strings.ReplaceAll(fmt.Sprint(s), " ", "x") }

func writePruneText(w io.Writer, r *pruneResult) error {
	what := r.Method
	switch {
	case r.Pattern != "":
		what += " " + r.Pattern
	case r.Scope != "":
		what += ", " + r.Scope + " scope"
	}
	if r.Steps > 1 {
		what += fmt.Sprintf(", gradual in %d steps", r.Steps)
	}
	fmt.Fprintf(w, "pruned %s (%s)\n\n", r.Model, what)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "layer\top\tshape\tparams\tnon-zeros\tsparsity\t\t")
	for _, l := range r.Layers {
		shape := shapeString(l.Shape)
		params := fmt.Sprint(l.Params)
		if !rt.SameShape(l.Shape, l.ShapeBefore) {
			shape = shapeString(l.ShapeBefore) + " -> " + shape
			params = fmt.Sprintf("%d -> %d", l.ParamsBefore, l.Params)
		}
		note := ""
		if !l.Pruned {
			note = "dense"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%.1f%%\t%s\t\n", l.Layer, l.Op, shape, params, l.NonZeros, 100*l.Sparsity, note)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if len(r.Groups) > 0 {
		fmt.Fprintln(w, "\nchannel groups:")
		for _, gr := range r.Groups {
			line := fmt.Sprintf("  %-40s %3d -> %3d channels", strings.Join(gr.Producers, "+"), gr.Channels, gr.Channels-gr.Removed)
			if gr.Fixed != "" {
				line += " (kept: " + gr.Fixed + ")"
			}
			fmt.Fprintln(w, line)
		}
	}
	fmt.Fprintln(w)
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "\tbefore\tafter\tratio\t")
	row := func(name string, b, a int64, human bool) {
		f := func(v int64) string {
			if human {
				return eval.Human(v)
			}
			return fmt.Sprint(v)
		}
		ratio := "-"
		if a > 0 {
			ratio = fmt.Sprintf("%.2fx", float64(b)/float64(a))
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t\n", name, f(b), f(a), ratio)
	}
	row("parameters", r.Before.Params, r.After.Params, false)
	row("non-zeros", r.Before.NonZeros, r.After.NonZeros, false)
	row("file size (bytes)", r.Before.FileBytes, r.After.FileBytes, false)
	row("gzip size (bytes)", r.Before.GzipBytes, r.After.GzipBytes, false)
	row("MACs (dense)", r.Before.MACs, r.After.MACs, true)
	row("MACs (non-zero weights)", r.Before.SparseMACs, r.After.SparseMACs, true)
	if r.Before.LatencyMs > 0 && r.After.LatencyMs > 0 {
		fmt.Fprintf(tw, "latency (batch %d, ms)\t%.3f\t%.3f\t%.2fx\t\n", r.BenchBatch, r.Before.LatencyMs, r.After.LatencyMs, r.Before.LatencyMs/r.After.LatencyMs)
	}
	if r.Before.Accuracy != nil && r.After.Accuracy != nil {
		fmt.Fprintf(tw, "accuracy\t%.4f\t%.4f\t%+.2f pts\t\n", *r.Before.Accuracy, *r.After.Accuracy, 100*(*r.After.Accuracy-*r.Before.Accuracy))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	_, err := fmt.Fprintf(w, "\nwrote %s (%.1fs)\n", r.Out, r.ElapsedSec)
	return err
}

// compareLatency benchmarks the graphs in alternating rounds (so that a
// change of machine load affects them alike) for about d each, and returns
// for each the lowest median latency of its rounds, in milliseconds.
func compareLatency(ctx context.Context, graphs []*rt.Graph, threads int, thresh float64, batch int, d time.Duration) ([]float64, error) {
	const rounds = 5
	exs := make([]*rt.Executor, len(graphs))
	for i, g := range graphs {
		ex, err := prune.NewExecutor(g, threads, thresh)
		if err != nil {
			return nil, err
		}
		exs[i] = ex
	}
	best := make([]float64, len(graphs))
	for r := 0; r < rounds; r++ {
		for i, ex := range exs {
			opts := eval.BenchOptions{Batch: batch, Duration: d / rounds, Warmup: -1}
			if r == 0 {
				opts.Warmup = 0 // the default warm-up
			}
			rep, err := eval.Benchmark(ctx, ex, opts)
			if err != nil {
				return nil, fmt.Errorf("benchmarking: %w", err)
			}
			if r == 0 || rep.P50Ms < best[i] {
				best[i] = rep.P50Ms
			}
		}
	}
	return best, nil
}
