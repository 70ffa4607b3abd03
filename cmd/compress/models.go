package main

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/compressml/compress/eval"
	"github.com/compressml/compress/importer"
	"github.com/compressml/compress/models"
)

func modelsCommand() *cli.Command {
	return &cli.Command{
		Name:  "models",
		Usage: "list and create the built-in architectures (MLP, LeNet-5, ResNet, MobileNet)",
		Description: "Built-in architectures, freshly initialised (seeded), to train from scratch with\n" +
			"'compress finetune' (nothing frozen), or to use as students.\n\n" +
			"Examples:\n" +
			"   compress models list\n" +
			"   compress models new --arch lenet5 --input 1x28x28 --classes 10 -o lenet5.onnx",
		Subcommands: []*cli.Command{
			{
				Name:        "list",
				Usage:       "list the architectures",
				Description: "Example:\n   compress models list",
				Action: func(c *cli.Context) error {
					for _, a := range models.Archs() {
						fmt.Fprintf(c.App.Writer, "%-10s %s\n", a.Name, a.Summary)
					}
					return nil
				},
			},
			{
				Name:      "new",
				Usage:     "write a freshly initialised model to an ONNX file",
				UsageText: "compress models new --arch ARCH --input SHAPE --classes N [--width W] [--depth D] [--hidden 128,64] [--init NAME] [--seed S] -o FILE",
				Description: "Builds an architecture for the given input shape (C x H x W, or features for an\n" +
					"MLP) and number of classes and saves it as ONNX (opset 18, dynamic batch).\n\n" +
					"Example:\n   compress models new --arch resnet --input 1x28x28 --classes 10 --width 0.5 -o resnet.onnx",
				Flags: []cli.Flag{
					&cli.StringFlag{Name: "arch", Usage: "architecture (see 'compress models list')"},
					&cli.StringFlag{Name: "input", Usage: "input `SHAPE` without the batch, e.g. 1x28x28 or 784"},
					&cli.IntFlag{Name: "classes", Usage: "number of classes"},
					&cli.Float64Flag{Name: "width", Value: 1, Usage: "width multiplier (channels and hidden sizes)"},
					&cli.IntFlag{Name: "depth", Value: 1, Usage: "ResNet blocks per stage"},
					&cli.StringFlag{Name: "hidden", Usage: "MLP hidden sizes, comma-separated (default 128)"},
					&cli.StringFlag{Name: "init", Usage: "initialiser: xavier_uniform, xavier_normal, kaiming_uniform, kaiming_normal (default: Kaiming for Conv, Xavier for Gemm)"},
					&cli.Uint64Flag{Name: "seed", Usage: "initialisation seed"},
					&cli.StringFlag{Name: "out", Aliases: []string{"o"}, Usage: "output ONNX `FILE`"},
				},
				Action: modelsNewAction,
			},
		},
	}
}

func modelsNewAction(c *cli.Context) error {
	if c.String("arch") == "" || c.String("input") == "" || c.Int("classes") == 0 || c.String("out") == "" {
		return errors.New("models new: --arch, --input, --classes and -o are required; see 'compress models new --help'")
	}
	shape, err := models.ParseShape(c.String("input"))
	if err != nil {
		return fmt.Errorf("models new: --input: %w", err)
	}
	cfg := models.Config{Input: shape, Classes: c.Int("classes"), Width: c.Float64("width"), Depth: c.Int("depth"),
		Seed: c.Uint64("seed"), Init: c.String("init")}
	if h := c.String("hidden"); h != "" {
		for _, s := range strings.Split(h, ",") {
			v, err := strconv.Atoi(strings.TrimSpace(s))
			if err != nil || v < 1 {
				return fmt.Errorf("models new: --hidden %q: want positive sizes separated by commas", h)
			}
			cfg.Hidden = append(cfg.Hidden, v)
		}
	}
	g, err := models.Build(c.String("arch"), cfg)
	if err != nil {
		return fmt.Errorf("models new: %w", err)
	}
	if err := importer.Save(g, c.String("out")); err != nil {
		return fmt.Errorf("models new: %w", err)
	}
	total, trainable := models.CountParams(g)
	_, err = fmt.Fprintf(c.App.Writer, "wrote %s: %s (%s params, %s trainable)\n", c.String("out"), g.Meta["compress.config"],
		eval.Human(int64(total)), eval.Human(int64(trainable)))
	return err
}
