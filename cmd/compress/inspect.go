package main

import (
	"fmt"
	"os"

	"github.com/urfave/cli/v2"

	"github.com/compressml/compress/eval"
	"github.com/compressml/compress/importer"
)

func inspectCommand() *cli.Command {
	return &cli.Command{
		Name:      "inspect",
		Usage:     "describe a model: nodes, shapes, parameters, MACs",
		UsageText: "compress inspect [--json] [--batch N] [--optimized] MODEL",
		Description: "Lists every node of an ONNX model with its op, output shapes, the number of\n" +
			"parameter elements it reads and its multiply-accumulates (MACs), then the totals.\n" +
			"The header gives the graph name, producer, opset, IR version, and the inputs and\n" +
			"outputs with their shapes (dynamic dimensions by name). Shapes and MACs come from\n" +
			"planning the model with every dynamic dimension set to --batch. A model that uses\n" +
			"ops compress cannot run is still listed, with the reason shapes are missing.\n\n" +
			"Example:\n" +
			"   compress inspect mnist-8/model.onnx\n" +
			"   compress inspect mnist-8/model.onnx --json --batch 32",
		Flags: []cli.Flag{
			&cli.BoolFlag{Name: "json", Usage: "print one JSON object instead of a table"},
			&cli.IntFlag{Name: "batch", Value: 1, Usage: "size of dynamic (batch) dimensions when planning shapes and MACs"},
			&cli.BoolFlag{Name: "optimized", Usage: "describe the graph as the executor runs it (constants and BatchNorm folded, activations fused)"},
		},
		Action: func(c *cli.Context) error {
			if err := needArgs(c, 1, "one MODEL file"); err != nil {
				return err
			}
			if b := c.Int("batch"); b < 1 {
				return fmt.Errorf("inspect: --batch %d: give a positive batch size", b)
			}
			path := c.Args().First()
			g, err := loadModel(path, importer.LoadOptions{AllowUnsupported: true})
			if err != nil {
				return fmt.Errorf("inspect: %w", err)
			}
			s := eval.Summarize(g, eval.SummaryOptions{Batch: c.Int("batch"), Optimized: c.Bool("optimized")})
			if raw, err := os.ReadFile(path); err == nil {
				if h, err := importer.ReadModelHeader(raw); err == nil {
					s.IRVersion = h.IRVersion
				}
			}
			if c.Bool("json") {
				return writeJSON(c.App.Writer, s)
			}
			return s.WriteText(c.App.Writer)
		},
	}
}
