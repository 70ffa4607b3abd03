package main

import (
	"fmt"

	"github.com/urfave/cli/v2"

	"github.com/compressml/compress/eval"
	rt "github.com/compressml/compress/runtime"
)

func benchCommand() *cli.Command {
	return &cli.Command{
		Name:      "bench",
		UsageText: "compress bench --model MODEL [--batch N] [--threads T] [--warmup W] [--iters I | --duration D] [--json]",
		Usage:     "measure a model's latency and throughput",
		Description: "Runs a model on random inputs (uniform in [0,1), seeded) of its input shapes\n" +
			"with the batch dimension set to --batch, first --warmup runs that are not\n" +
			"measured, then --iters runs (or as many as fit in --duration, at least 10).\n" +
			"Reports latency p50, p95, mean, min and max, and throughput in samples per\n" +
			"second (batch x runs / time). A model whose batch dimension is fixed must be\n" +
			"benchmarked at that batch.\n\n" +
			"Example:\n" +
			"   compress bench --model mnist-8/model.onnx --threads 2 --iters 2000\n" +
			"   compress bench --model resnet.onnx --batch 32 --duration 10s --json",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "model", Aliases: []string{"m"}, Usage: "ONNX model `FILE`"},
			&cli.IntFlag{Name: "batch", Value: 1, Usage: "batch size `N` of the generated inputs"},
			&cli.IntFlag{Name: "warmup", Value: eval.DefaultWarmup, Usage: "unmeasured runs first"},
			&cli.IntFlag{Name: "iters", Usage: "measured runs (default: as many as fit in --duration)"},
			&cli.DurationFlag{Name: "duration", Usage: "measure for this long, e.g. 5s (default 2s unless --iters is given)"},
			&cli.Uint64Flag{Name: "seed", Value: 1, Usage: "seed of the random inputs"},
			&cli.BoolFlag{Name: "json", Usage: "print one JSON object (fields latency_p50_ms, latency_p95_ms, throughput_samples_per_sec, ...)"},
			threadsFlag(),
			noSparseFlag(),
		},
		Action: benchAction,
	}
}

// benchResult is the JSON output of bench.
type benchResult struct {
	Model string `json:"model"`
	*eval.BenchReport
}

func benchAction(c *cli.Context) error {
	if err := needArgs(c, 0, "no positional arguments (give the model with --model)"); err != nil {
		return err
	}
	modelPath := c.String("model")
	if modelPath == "" {
		return fmt.Errorf("bench: missing --model: give the ONNX model to measure, e.g. --model model.onnx")
	}
	if b := c.Int("batch"); b < 1 {
		return fmt.Errorf("bench: --batch %d: give a positive batch size", b)
	}
	if w := c.Int("warmup"); w < 0 {
		return fmt.Errorf("bench: --warmup %d: give zero or more warm-up runs", w)
	}
	if c.Int("iters") < 0 || c.Duration("duration") < 0 {
		return fmt.Errorf("bench: --iters and --duration must not be negative")
	}
	if c.IsSet("iters") && c.IsSet("duration") {
		return fmt.Errorf("bench: give --iters or --duration, not both")
	}
	th, err := threads(c)
	if err != nil {
		return fmt.Errorf("bench: %w", err)
	}
	g, err := loadModel(modelPath)
	if err != nil {
		return fmt.Errorf("bench: %w", err)
	}
	ex, err := rt.NewExecutor(g, rt.Options{Threads: th, NoSparse: c.Bool("no-sparse")})
	if err != nil {
		return fmt.Errorf("bench: %s: %w", modelPath, err)
	}
	warmup := c.Int("warmup")
	if warmup == 0 {
		warmup = -1 // no warm-up (0 means the default in BenchOptions)
	}
	r, err := eval.Benchmark(c.Context, ex, eval.BenchOptions{
		Batch: c.Int("batch"), Warmup: warmup, Iters: c.Int("iters"), Duration: c.Duration("duration"), Seed: c.Uint64("seed"),
	})
	if err != nil {
		return fmt.Errorf("bench: %s: %w", modelPath, err)
	}
	if c.Bool("json") {
		return writeJSON(c.App.Writer, benchResult{Model: modelPath, BenchReport: r})
	}
	fmt.Fprintf(c.App.Writer, "model       %s\n", modelPath)
	return r.WriteText(c.App.Writer)
}
