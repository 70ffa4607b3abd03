package prune

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"sort"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"

	"github.com/compressml/compress/internal/atomicfile"
	rt "github.com/compressml/compress/runtime"
)

// DefaultSparsities are the sparsities Sensitivity tries when none are
// given.
var DefaultSparsities = []float64{0.3, 0.5, 0.7, 0.9}

// SensitivityOptions configure Sensitivity.
type SensitivityOptions struct {
	// Sparsities to try on each layer (DefaultSparsities if empty), each in
	// [0, 1).
	Sparsities []float64
	// MaxDrop is the largest accuracy loss (a fraction: 0.01 is one point)
	// the plan accepts for a layer.
	MaxDrop float64
	// Exclude skips the layers whose node or weight name matches one of
	// these patterns.
	Exclude []string
	// Evaluate returns the accuracy of the model as it is (called with the
	// weights of one layer pruned at a time). Required.
	Evaluate func(ctx context.Context, g *rt.Graph) (float64, error)
	// Progress, when set, is called after every evaluation.
	Progress func(layer string, sparsity, accuracy float64)
}

// SensitivityRow is the accuracy of the model with one layer pruned.
type SensitivityRow struct {
	Layer    string    `json:"layer"`
	Op       string    `json:"op"`
	Param    string    `json:"param"`
	Shape    []int     `json:"shape"`
	Params   int       `json:"params"`
	Accuracy []float64 `json:"accuracy"` // per sparsity
	// Chosen is the largest sparsity whose accuracy drop is at most
	// MaxDrop (0 when none is).
	Chosen float64 `json:"chosen"`
}

// SensitivityReport is the result of Sensitivity.
type SensitivityReport struct {
	Baseline   float64          `json:"baseline_accuracy"`
	Sparsities []float64        `json:"sparsities"`
	MaxDrop    float64          `json:"max_drop"`
	Rows       []SensitivityRow `json:"layers"`
	Plan       Plan             `json:"plan"`
}

// Sensitivity prunes each prunable layer of g alone (magnitude, layer
// scope) at every sparsity, measures the accuracy with opts.Evaluate, and
// builds a Plan giving each layer the largest sparsity whose drop from the
// unpruned accuracy is at most opts.MaxDrop. g is restored before it
// returns.
func Sensitivity(ctx context.Context, g *rt.Graph, opts SensitivityOptions) (*SensitivityReport, error) {
	if opts.Evaluate == nil {
		return nil, fmt.Errorf("sensitivity analysis needs an evaluation function")
	}
	sp := append([]float64{}, opts.Sparsities...)
	if len(sp) == 0 {
		sp = append(sp, DefaultSparsities...)
	}
	for _, s := range sp {
		if err := checkSparsity("sparsity", s); err != nil {
			return nil, err
		}
	}
	sort.Float64s(sp)
	if math.IsNaN(opts.MaxDrop) || opts.MaxDrop < 0 {
		return nil, fmt.Errorf("maximum accuracy drop %v must not be negative", opts.MaxDrop)
	}
	pats, err := parsePatterns(opts.Exclude)
	if err != nil {
		return nil, err
	}
	layers := Layers(g)
	if len(layers) == 0 {
		return nil, fmt.Errorf("the model has no prunable layers (Conv, Gemm or MatMul with a float32 weight parameter)")
	}
	base, err := opts.Evaluate(ctx, g)
	if err != nil {
		return nil, fmt.Errorf("evaluating the unpruned model: %w", err)
	}
	rep := &SensitivityReport{Baseline: base, Sparsities: sp, MaxDrop: opts.MaxDrop, Plan: Plan{}}
	for _, l := range layers {
		skip := false
		for _, p := range pats {
			skip = skip || p.Match(l.Node) || p.Match(l.Param)
		}
		if skip {
			continue
		}
		w := g.Params[l.Param].T.F32
		orig := append([]float32{}, w...)
		row := SensitivityRow{Layer: l.Node, Op: l.Op, Param: l.Param, Shape: l.Shape, Params: l.Size()}
		for _, s := range sp {
			keep := magnitudeMask(w, pruneCount(s, len(w)))
			for i, k := range keep {
				if !k {
					w[i] = 0
				}
			}
			acc, err := opts.Evaluate(ctx, g)
			copy(w, orig)
			if err != nil {
				return nil, fmt.Errorf("evaluating with layer %q at sparsity %g: %w", l.Node, s, err)
			}
			row.Accuracy = append(row.Accuracy, acc)
			if base-acc <= opts.MaxDrop+1e-12 {
				row.Chosen = s
			}
			if opts.Progress != nil {
				opts.Progress(l.Node, s, acc)
			}
		}
		rep.Plan[l.Node] = row.Chosen
		rep.Rows = append(rep.Rows, row)
	}
	return rep, nil
}

// ReadPlan reads a plan file: a JSON object mapping layer names (nodes or
// weight parameters) to sparsities, e.g. {"conv2": 0.7, "fc1": 0.5}, or
// such an object under the key "plan" (as `compress sensitivity --json`
// writes).
func ReadPlan(path string) (Plan, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading the plan: %w", err)
	}
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(b, &raw); err != nil {
		return nil, fmt.Errorf("plan %s: %w (want a JSON object such as {\"conv2\": 0.7})", path, err)
	}
	if inner, ok := raw["plan"]; ok {
		raw = nil
		if err := json.Unmarshal(inner, &raw); err != nil {
			return nil, fmt.Errorf("plan %s: \"plan\": %w", path, err)
		}
	}
	p := Plan{}
	for k, v := range raw {
		var s float64
		if err := json.Unmarshal(v, &s); err != nil {
			return nil, fmt.Errorf("plan %s: layer %q: the sparsity must be a number, got %s", path, k, v)
		}
		if err := checkSparsity(fmt.Sprintf("plan %s: layer %q: sparsity", path, k), s); err != nil {
			return nil, err
		}
		p[k] = s
	}
	if len(p) == 0 {
		return nil, fmt.Errorf("plan %s names no layers", path)
	}
	return p, nil
}

// Write saves the plan as a JSON object (layer -> sparsity, sorted).
func (p Plan) Write(path string) error {
	b, err := json.MarshalIndent(p, "", "  ")
	if err != nil {
		return err
	}
	return atomicfile.WriteBytes(path, append(b, '\n'))
}

// PlotSensitivity draws accuracy against sparsity, one line per layer and
// a dashed line at the accuracy the plan accepts, into a PNG file.
func PlotSensitivity(rep *SensitivityReport, path string) error {
	if len(rep.Rows) == 0 {
		return fmt.Errorf("no layers to plot")
	}
	p := plot.New()
	p.Title.Text = "pruning sensitivity (one layer at a time)"
	p.X.Label.Text = "sparsity of the layer"
	p.Y.Label.Text = "accuracy"
	var args []any
	for _, r := range rep.Rows {
		xy := plotter.XYs{{X: 0, Y: rep.Baseline}}
		for i, s := range rep.Sparsities {
			xy = append(xy, plotter.XY{X: s, Y: r.Accuracy[i]})
		}
		args = append(args, r.Layer, xy)
	}
	if err := plotutil.AddLinePoints(p, args...); err != nil {
		return fmt.Errorf("plotting: %w", err)
	}
	limit, err := plotter.NewLine(plotter.XYs{{X: 0, Y: rep.Baseline - rep.MaxDrop}, {X: rep.Sparsities[len(rep.Sparsities)-1], Y: rep.Baseline - rep.MaxDrop}})
	if err != nil {
		return fmt.Errorf("plotting: %w", err)
	}
	limit.Dashes = []vg.Length{vg.Points(4), vg.Points(3)}
	p.Add(limit)
	p.Legend.Add(fmt.Sprintf("baseline - %.3g", rep.MaxDrop), limit)
	p.Legend.Left = true
	p.Legend.Top = false
	const w, h = 8 * vg.Inch, 5 * vg.Inch
	img := vgimg.New(w, h)
	p.Draw(draw.New(img))
	return atomicfile.Write(path, func(w io.Writer) error {
		_, err := (vgimg.PngCanvas{Canvas: img}).WriteTo(w)
		return err
	})
}
