package main

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/urfave/cli/v2"

	"github.com/compressml/compress/eval"
	"github.com/compressml/compress/importer"
)

func convertCommand() *cli.Command {
	return &cli.Command{
		Name:      "convert",
		Usage:     "load a model and save it again (proves the ONNX round trip)",
		UsageText: "compress convert IN OUT",
		Description: "Imports an ONNX model (any opset from 7 to 21, rewritten to compress's canonical\n" +
			"opset-18 forms, Constant nodes turned into initializers, external data read) and\n" +
			"exports it to OUT, then loads OUT back to check it. The saved model runs in\n" +
			"onnxruntime with the same outputs. OUT is written through a temporary file, so a\n" +
			"failure never leaves a partial model behind.\n\n" +
			"Example:\n" +
			"   compress convert mnist-8/model.onnx mnist-8-opset18.onnx",
		Action: func(c *cli.Context) error {
			if err := needArgs(c, 2, "IN and OUT model files"); err != nil {
				return err
			}
			in, out := c.Args().Get(0), c.Args().Get(1)
			if a, b := absPath(in), absPath(out); a == b {
				return fmt.Errorf("convert: IN and OUT are the same file (%s); give another OUT", in)
			}
			g, err := loadModel(in)
			if err != nil {
				return fmt.Errorf("convert: %w", err)
			}
			if err := importer.Save(g, out); err != nil {
				return fmt.Errorf("convert: %w", err)
			}
			back, err := importer.Load(out)
			if err != nil {
				return fmt.Errorf("convert: the saved model does not load back: %w", err)
			}
			if len(back.Nodes) != len(g.Nodes) || len(back.Params) != len(g.Params) {
				return fmt.Errorf("convert: the saved model %s has %d nodes and %d parameters, the source %d and %d",
					out, len(back.Nodes), len(back.Params), len(g.Nodes), len(g.Params))
			}
			size := int64(0)
			if st, err := os.Stat(out); err == nil {
				size = st.Size()
			}
			sIn, sOut := eval.Summarize(g, eval.SummaryOptions{}), eval.Summarize(back, eval.SummaryOptions{})
			_, err = fmt.Fprintf(c.App.Writer, "converted %s (opset %d, %d nodes, %s params) to %s (opset %d, %d nodes, %s params, %s bytes)\n",
				in, g.Opset, sIn.NumNodes, eval.Human(sIn.NumParams), out, back.Opset, sOut.NumNodes, eval.Human(sOut.NumParams), eval.Human(size))
			return err
		},
	}
}

func absPath(p string) string {
	if a, err := filepath.Abs(p); err == nil {
		if r, err := filepath.EvalSymlinks(a); err == nil {
			return r
		}
		return a
	}
	return p
}
