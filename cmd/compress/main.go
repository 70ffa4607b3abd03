package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/signal"
	goruntime "runtime"
	"runtime/debug"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/compressml/compress/importer"
	rt "github.com/compressml/compress/runtime"
)

// version is the release version, set with -ldflags "-X main.version=v1.2.3";
// otherwise the module version from the build information is used.
var version = ""

func versionString() string {
	v := version
	if v == "" {
		v = "(devel)"
		if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" {
			v = bi.Main.Version
		}
	}
	return v
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	code := run(ctx, os.Args, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// run executes the command line args (args[0] is the program name) and
// returns the exit status. It never panics: an internal error is reported
// as a message.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) (code int) {
	defer func() {
		if r := recover(); r != nil {
			fmt.Fprintf(stderr, "compress: internal error: %v\nthis is a bug in compress; please report it with the command line that caused it\n", r)
			code = 1
		}
	}()
	app := newApp(stdout, stderr)
	if err := app.RunContext(ctx, reorderArgs(app, args)); err != nil {
		msg := err.Error()
		if errors.Is(err, context.Canceled) {
			msg = "interrupted"
		}
		fmt.Fprintf(stderr, "compress: %s\n", msg)
		return 1
	}
	return 0
}

// usageError is returned for bad flags and arguments.
func usageError(c *cli.Context, err error, _ bool) error {
	return fmt.Errorf("%s: %v; see 'compress %s --help'", c.Command.Name, err, c.Command.Name)
}

func newApp(stdout, stderr io.Writer) *cli.App {
	app := &cli.App{
		Name:  "compress",
		Usage: "import, run, evaluate and export ONNX models in pure Go",
		Description: "compress takes a pretrained ONNX model through import, native execution and\n" +
			"evaluation, and writes it back to ONNX. Run 'compress COMMAND --help' for a command's\n" +
			"flags and an example.\n\n" +
			"Examples:\n" +
			"   compress inspect model.onnx\n" +
			"   compress eval --model model.onnx --data /usr/share/datasets/fashion-mnist",
		UsageText:       "compress COMMAND [flags] [arguments]",
		Version:         versionString(),
		Writer:          stdout,
		ErrWriter:       stderr,
		HideHelpCommand: true,
		// Paths may contain commas: --input a,b.npy is one file.
		DisableSliceFlagSeparator: true,
		ExitErrHandler:            func(*cli.Context, error) {}, // run reports errors
		OnUsageError: func(c *cli.Context, err error, _ bool) error {
			return fmt.Errorf("%v; see 'compress --help'", err)
		},
		Action: func(c *cli.Context) error {
			if c.Args().Present() {
				return fmt.Errorf("unknown command %q; the commands are %s (see 'compress --help')", c.Args().First(), commandList(c.App))
			}
			return cli.ShowAppHelp(c)
		},
		Commands: []*cli.Command{
			inspectCommand(),
			runCommand(),
			evalCommand(),
			benchCommand(),
			convertCommand(),
			finetuneCommand(),
			modelsCommand(),
			quantizeCommand(),
			pruneCommand(),
			sensitivityCommand(),
			versionCommand(),
		},
	}
	for _, c := range app.Commands {
		c.OnUsageError = usageError
		c.HideHelpCommand = true
	}
	return app
}

func commandList(app *cli.App) string {
	var names []string
	for _, c := range app.Commands {
		names = append(names, c.Name)
	}
	return strings.Join(names, ", ")
}

// reorderArgs moves the flags of a command that follow its positional
// arguments in front of them ("inspect m.onnx --json" becomes "inspect
// --json m.onnx"): the flag package stops at the first positional argument.
// A "--" ends the flags.
func reorderArgs(app *cli.App, args []string) []string {
	if len(args) < 2 {
		return args
	}
	var cmd *cli.Command
	for _, c := range app.Commands {
		if c.HasName(args[1]) {
			cmd = c
		}
	}
	if cmd == nil {
		return args
	}
	return append([]string{args[0]}, reorderCommandArgs(cmd, args[1:])...)
}

// reorderCommandArgs reorders args[1:] for command cmd (args[0] is its
// name), descending into a subcommand named by args[1].
func reorderCommandArgs(cmd *cli.Command, args []string) []string {
	if len(args) > 1 {
		for _, sub := range cmd.Subcommands {
			if sub.HasName(args[1]) {
				return append([]string{args[0]}, reorderCommandArgs(sub, args[1:])...)
			}
		}
	}
	boolFlag := map[string]bool{"help": true, "h": true}
	for _, f := range cmd.Flags {
		if _, ok := f.(*cli.BoolFlag); ok {
			for _, n := range f.Names() {
				boolFlag[n] = true
			}
		}
	}
	var flags, pos []string
	rest := args[1:]
	for i := 0; i < len(rest); i++ {
		a := rest[i]
		if a == "--" {
			pos = append(pos, rest[i+1:]...)
			break
		}
		if len(a) < 2 || a[0] != '-' {
			pos = append(pos, a)
			continue
		}
		flags = append(flags, a)
		name := strings.TrimLeft(a, "-")
		if strings.Contains(name, "=") || boolFlag[name] {
			continue
		}
		if i+1 < len(rest) { // the flag's value
			i++
			flags = append(flags, rest[i])
		}
	}
	out := append([]string{args[0]}, flags...)
	if len(pos) > 0 {
		out = append(append(out, "--"), pos...)
	}
	return out
}

// threadsFlag is the --threads flag shared by the commands that run models.
func threadsFlag() cli.Flag {
	return &cli.IntFlag{Name: "threads", Usage: "number of threads kernels use (0: one per CPU core)", Value: 0}
}

// noSparseFlag is the --no-sparse flag of the commands that run models.
func noSparseFlag() cli.Flag {
	return &cli.BoolFlag{Name: "no-sparse", Usage: "run every layer on the dense kernels (by default layers with mostly zero weights run on sparse kernels where that is faster)"}
}

// threads validates --threads.
func threads(c *cli.Context) (int, error) {
	t := c.Int("threads")
	if t < 0 {
		return 0, fmt.Errorf("--threads %d: give a positive number of threads, or 0 for one per core", t)
	}
	return t, nil
}

// needArgs checks the number of positional arguments.
func needArgs(c *cli.Context, n int, what string) error {
	if c.NArg() != n {
		return fmt.Errorf("%s: expected %s, got %d argument(s); see 'compress %s --help'", c.Command.Name, what, c.NArg(), c.Command.Name)
	}
	return nil
}

// writeJSON prints v as one indented JSON object.
func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func versionCommand() *cli.Command {
	return &cli.Command{
		Name:        "version",
		Usage:       "print the version of compress",
		Description: "Prints the version of compress, of Go it was built with, and the platform.\n\nExample:\n   compress version",
		Action: func(c *cli.Context) error {
			if err := needArgs(c, 0, "no arguments"); err != nil {
				return err
			}
			_, err := fmt.Fprintf(c.App.Writer, "compress %s (%s, %s/%s)\n", versionString(), goruntime.Version(), goruntime.GOOS, goruntime.GOARCH)
			return err
		},
	}
}

// loadModel loads an ONNX model, saying plainly when the file is missing.
func loadModel(path string, opts ...importer.LoadOptions) (*rt.Graph, error) {
	if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("model file %s does not exist", path)
	}
	return importer.Load(path, opts...)
}
