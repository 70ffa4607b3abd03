package main

import (
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/compressml/compress/eval"
	"github.com/compressml/compress/importer"
	rt "github.com/compressml/compress/runtime"
)

func runCommand() *cli.Command {
	return &cli.Command{
		Name:      "run",
		UsageText: "compress run --model MODEL --input FILE|NAME=FILE... [--output FILE|NAME=FILE|DIR]... [--threads T]",
		Usage:     "run a model on input tensor files and print or save its outputs",
		Description: "Runs an ONNX model once on the given inputs and prints every output: name, type,\n" +
			"shape, the first values, min/max/mean, and for a 2-D output the argmax of each row.\n\n" +
			"Inputs and outputs are ONNX TensorProto files (.pb, as in the ONNX test data sets)\n" +
			"or NumPy arrays (.npy), chosen by extension. --input is repeatable: give\n" +
			"NAME=FILE for a model with several inputs; a bare FILE goes to the input named\n" +
			"in the .pb file, or to the next input in the model's order.\n\n" +
			"--output FILE saves the only output; with several outputs give NAME=FILE for\n" +
			"each one to save, or a directory (existing, or ending in /) to save all of them\n" +
			"as DIR/NAME.pb (or .npy with --format npy).\n\n" +
			"Example:\n" +
			"   compress run --model mnist-8/model.onnx --input mnist-8/test_data_set_0/input_0.pb --output out.npy\n" +
			"   compress run --model two-in.onnx --input a=a.npy --input b=b.pb --output outs/",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "model", Aliases: []string{"m"}, Usage: "ONNX model `FILE`"},
			&cli.StringSliceFlag{Name: "input", Aliases: []string{"i"}, Usage: "input tensor `FILE` or NAME=FILE (.pb or .npy; repeatable)"},
			&cli.StringSliceFlag{Name: "output", Aliases: []string{"o"}, Usage: "save outputs: `FILE`, NAME=FILE (repeatable) or a directory"},
			&cli.StringFlag{Name: "format", Value: "pb", Usage: "file format for outputs saved to a directory: pb or npy"},
			&cli.IntFlag{Name: "values", Value: 10, Usage: "number of leading values printed per output"},
			threadsFlag(),
			noSparseFlag(),
		},
		Action: runAction,
	}
}

func runAction(c *cli.Context) error {
	if err := needArgs(c, 0, "no positional arguments (give files with --model and --input)"); err != nil {
		return err
	}
	modelPath := c.String("model")
	if modelPath == "" {
		return fmt.Errorf("run: missing --model: give the ONNX model to run, e.g. --model model.onnx")
	}
	specs := c.StringSlice("input")
	if len(specs) == 0 {
		return fmt.Errorf("run: missing --input: give a .pb or .npy file for each model input, e.g. --input input_0.pb")
	}
	format := strings.ToLower(c.String("format"))
	if format != "pb" && format != "npy" {
		return fmt.Errorf("run: --format %q: use pb or npy", c.String("format"))
	}
	th, err := threads(c)
	if err != nil {
		return fmt.Errorf("run: %w", err)
	}
	g, err := loadModel(modelPath)
	if err != nil {
		return fmt.Errorf("run: %w", err)
	}
	ex, err := rt.NewExecutor(g, rt.Options{Threads: th, NoSparse: c.Bool("no-sparse")})
	if err != nil {
		return fmt.Errorf("run: %s: %w", modelPath, err)
	}
	inputs, err := importer.ReadInputs(g, specs)
	if err != nil {
		return fmt.Errorf("run: %w", err)
	}
	targets, err := outputTargets(g, c.StringSlice("output"), format)
	if err != nil {
		return fmt.Errorf("run: %w", err)
	}
	outs, err := ex.Run(c.Context, inputs)
	if err != nil {
		return fmt.Errorf("run: %s: %w", modelPath, err)
	}
	w := c.App.Writer
	for _, o := range g.Outputs {
		printTensor(w, o.Name, outs[o.Name], c.Int("values"))
	}
	for _, o := range g.Outputs {
		path, ok := targets[o.Name]
		if !ok {
			continue
		}
		if err := importer.SaveTensor(path, o.Name, outs[o.Name]); err != nil {
			return fmt.Errorf("run: output %q: %w", o.Name, err)
		}
		fmt.Fprintf(w, "saved %s to %s\n", o.Name, path)
	}
	return nil
}

// outputTargets maps model outputs to the files --output names.
func outputTargets(g *rt.Graph, specs []string, format string) (map[string]string, error) {
	targets := map[string]string{}
	if len(specs) == 0 {
		return targets, nil
	}
	var names []string
	isOut := map[string]bool{}
	for _, o := range g.Outputs {
		names = append(names, o.Name)
		isOut[o.Name] = true
	}
	list := strings.Join(names, ", ")
	var bare []string
	for _, s := range specs {
		if name, path, ok := strings.Cut(s, "="); ok && isOut[name] {
			if _, dup := targets[name]; dup {
				return nil, fmt.Errorf("--output for %q is given twice", name)
			}
			targets[name] = path
			continue
		} else if ok && !strings.ContainsAny(name, `/\.`) {
			return nil, fmt.Errorf("--output %q: the model has no output %q (its outputs: %s)", s, name, list)
		}
		bare = append(bare, s)
	}
	if len(bare) > 1 {
		return nil, fmt.Errorf("--output is given %d file names without NAME=; give NAME=FILE for each output (%s), or one directory", len(bare), list)
	}
	if len(bare) == 1 {
		p := bare[0]
		st, err := os.Stat(p)
		isDir := err == nil && st.IsDir() || strings.HasSuffix(p, "/") || strings.HasSuffix(p, string(filepath.Separator))
		switch {
		case isDir:
			if err := os.MkdirAll(p, 0o755); err != nil {
				return nil, fmt.Errorf("--output %s: %w", p, err)
			}
			for _, n := range names {
				if _, set := targets[n]; !set {
					targets[n] = filepath.Join(p, fileName(n)+"."+format)
				}
			}
		case len(names) == 1 && len(targets) == 0:
			targets[names[0]] = p
		default:
			return nil, fmt.Errorf("--output %s: the model has %d outputs (%s); give NAME=FILE for each, or a directory", p, len(names), list)
		}
	}
	for n, p := range targets {
		ext := strings.ToLower(filepath.Ext(p))
		if ext != ".pb" && ext != ".npy" {
			return nil, fmt.Errorf("--output %s (for %q): unknown extension %q; name the file .pb (ONNX TensorProto) or .npy (NumPy)", p, n, ext)
		}
	}
	return targets, nil
}

// fileName makes a value name safe as a file name.
func fileName(name string) string {
	b := []byte(name)
	for i, c := range b {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			b[i] = '_'
		}
	}
	if len(b) == 0 || b[0] == '.' {
		b = append([]byte("output"), b...)
	}
	return string(b)
}

// printTensor writes a short description of t.
func printTensor(w io.Writer, name string, t *rt.Tensor, nvals int) {
	if t == nil {
		fmt.Fprintf(w, "%s: (not produced)\n", name)
		return
	}
	n := t.Len()
	fmt.Fprintf(w, "%s: %v %s\n", name, t.DType, eval.FormatShape(t.Shape, nil))
	if n == 0 {
		fmt.Fprintf(w, "  (no values)\n")
		return
	}
	k := max(0, min(nvals, n))
	vals := make([]string, k)
	for i := range k {
		vals[i] = fmt.Sprintf("%.6g", t.Float64At(i))
	}
	more := ""
	if k < n {
		more = fmt.Sprintf(" ... (%d values)", n)
	}
	if k > 0 {
		fmt.Fprintf(w, "  values: [%s%s]\n", strings.Join(vals, " "), more)
	}
	lo, hi, sum := math.Inf(1), math.Inf(-1), 0.0
	for i := range n {
		v := t.Float64At(i)
		lo, hi, sum = math.Min(lo, v), math.Max(hi, v), sum+v
	}
	fmt.Fprintf(w, "  min %.6g  max %.6g  mean %.6g\n", lo, hi, sum/float64(n))
	if t.DType == rt.Float32 && len(t.Shape) == 2 && t.Shape[1] > 0 {
		rows, cols := t.Shape[0], t.Shape[1]
		show := min(rows, 16)
		am := make([]string, show)
		for r := range show {
			best := 0
			for j := 1; j < cols; j++ {
				if t.F32[r*cols+j] > t.F32[r*cols+best] {
					best = j
				}
			}
			am[r] = fmt.Sprint(best)
		}
		more := ""
		if show < rows {
			more = fmt.Sprintf(" ... (%d rows)", rows)
		}
		fmt.Fprintf(w, "  argmax per row: [%s%s]\n", strings.Join(am, " "), more)
	}
}
