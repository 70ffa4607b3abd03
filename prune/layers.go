package prune

import (
	"fmt"
	"math"
	"sort"
	"strings"

	"github.com/compressml/compress/finetune"
	rt "github.com/compressml/compress/runtime"
)

// Layer is a prunable layer: a Conv, Gemm or MatMul node whose weight
// (input 1) is a float32 parameter of rank >= 2.
type Layer struct {
	Node  string // node name
	Op    string // op type
	Param string // weight parameter
	Shape []int  // weight shape
	// Out is the number of output units (rows) and In the length of the
	// reduction of each: Conv [M, C/g, kh, kw] has Out = M and
	// In = C/g*kh*kw; Gemm with transB=1 ([N, K]) has Out = N, In = K.
	Out, In int
	// Transposed is set when the weight is stored [In, Out] (Gemm with
	// transB=0, MatMul): the reduction runs down the columns.
	Transposed bool
}

// Size is the number of weight values.
func (l Layer) Size() int { return l.Out * l.In }

// Index returns the position in the weight's data of element r of the
// reduction of output unit o.
func (l Layer) Index(o, r int) int {
	if l.Transposed {
		return r*l.Out + o
	}
	return o*l.In + r
}

// ReductionName describes the reduction dimension for error messages.
func (l Layer) ReductionName() string {
	switch l.Op {
	case "Conv":
		return "in_channels*kh*kw"
	default:
		return "K"
	}
}

// Layers lists the prunable layers of g in graph order. A weight read by
// several nodes is listed once, under the first. Weights computed by nodes
// (a Reshape of an initializer, as some exporters write) are not
// parameters: fold constants first (runtime.FoldConstants).
func Layers(g *rt.Graph) []Layer {
	var out []Layer
	seen := map[string]bool{}
	for _, n := range g.Nodes {
		if n.Domain != "" || n.OpType != "Conv" && n.OpType != "Gemm" && n.OpType != "MatMul" {
			continue
		}
		pname := n.Input(1)
		p, ok := g.Params[pname]
		if !ok || seen[pname] || p.T.DType != rt.Float32 || p.T.Rank() < 2 || p.T.Len() == 0 {
			continue
		}
		s := p.T.Shape
		l := Layer{Node: n.Name, Op: n.OpType, Param: pname, Shape: append([]int{}, s...)}
		switch n.OpType {
		case "Conv":
			l.Out, l.In = s[0], p.T.Len()/s[0]
		case "Gemm":
			if p.T.Rank() != 2 {
				continue
			}
			if n.AttrInt("transB", 0) != 0 {
				l.Out, l.In = s[0], s[1]
			} else {
				l.Out, l.In, l.Transposed = s[1], s[0], true
			}
		case "MatMul":
			if p.T.Rank() != 2 {
				continue
			}
			l.Out, l.In, l.Transposed = s[1], s[0], true
		}
		seen[pname] = true
		out = append(out, l)
	}
	return out
}

// Methods of Options.Method.
const (
	Magnitude = "magnitude"
	NM        = "nm"
	Channel   = "channel"
)

// Scopes of Options.Scope.
const (
	ScopeLayer  = "layer"
	ScopeGlobal = "global"
)

// Channel ranking criteria of Options.Criterion.
const (
	CriterionL1 = "l1"
	CriterionL2 = "l2"
	CriterionBN = "bn"
)

// Options say what to prune.
type Options struct {
	// Method is Magnitude (default), NM or Channel.
	Method string
	// Sparsity is the fraction of weights (Magnitude) or channels
	// (Channel) to remove from every selected layer, in [0, 1). NM ignores
	// it: its sparsity is 1 - N/M.
	Sparsity float64
	// Scope is ScopeLayer (default: every layer loses Sparsity of its
	// weights) or ScopeGlobal (the smallest weights of all selected layers
	// together). Magnitude only.
	Scope string
	// N and M are the N:M pattern: N values kept in every M.
	N, M int
	// Criterion ranks channels: CriterionL1 (default), CriterionL2 or
	// CriterionBN (|gamma| of the BatchNormalization layers of the group;
	// groups without one fall back to L1).
	Criterion string
	// Exclude keeps the layers whose node or weight name matches one of
	// these patterns dense (see finetune.ParsePattern).
	Exclude []string
	// IncludeFirstLast prunes the first and last prunable layers too; by
	// default they stay dense.
	IncludeFirstLast bool
	// Plan gives some layers their own sparsity.
	Plan Plan
}

// Validate checks the options.
func (o *Options) Validate() error {
	if o.Method == "" {
		o.Method = Magnitude
	}
	if o.Scope == "" {
		o.Scope = ScopeLayer
	}
	if o.Criterion == "" {
		o.Criterion = CriterionL1
	}
	if err := checkSparsity("sparsity", o.Sparsity); err != nil {
		return err
	}
	switch o.Method {
	case Magnitude, Channel:
	case NM:
		if o.N < 1 || o.M < 1 || o.N >= o.M {
			return fmt.Errorf("N:M pattern %d:%d: need 1 <= N < M (e.g. 2:4)", o.N, o.M)
		}
	default:
		return fmt.Errorf("method %q: use %s, %s or %s", o.Method, Magnitude, NM, Channel)
	}
	switch o.Scope {
	case ScopeLayer:
	case ScopeGlobal:
		if o.Method != Magnitude {
			return fmt.Errorf("scope %q works with the %s method only", o.Scope, Magnitude)
		}
	default:
		return fmt.Errorf("scope %q: use %s or %s", o.Scope, ScopeLayer, ScopeGlobal)
	}
	switch o.Criterion {
	case CriterionL1, CriterionL2, CriterionBN:
	default:
		return fmt.Errorf("criterion %q: use %s, %s or %s", o.Criterion, CriterionL1, CriterionL2, CriterionBN)
	}
	for name, s := range o.Plan {
		if err := checkSparsity(fmt.Sprintf("plan entry %q", name), s); err != nil {
			return err
		}
	}
	_, err := parsePatterns(o.Exclude)
	return err
}

func checkSparsity(what string, s float64) error {
	if math.IsNaN(s) || s < 0 || s >= 1 {
		return fmt.Errorf("%s %v is outside [0, 1): give the fraction of weights to remove, e.g. 0.5", what, s)
	}
	return nil
}

// ParsePattern parses "N:M" (e.g. "2:4").
func ParsePattern(s string) (n, m int, err error) {
	a, b, ok := strings.Cut(s, ":")
	if ok {
		_, err1 := fmt.Sscanf(a, "%d", &n)
		_, err2 := fmt.Sscanf(b, "%d", &m)
		if err1 == nil && err2 == nil && fmt.Sprintf("%d:%d", n, m) == strings.TrimSpace(s) && n >= 1 && n < m {
			return n, m, nil
		}
	}
	return 0, 0, fmt.Errorf("pattern %q: want N:M with 1 <= N < M, e.g. 2:4 or 4:8", s)
}

func parsePatterns(ss []string) ([]finetune.Pattern, error) {
	var out []finetune.Pattern
	for _, s := range ss {
		p, err := finetune.ParsePattern(s)
		if err != nil {
			return nil, fmt.Errorf("--exclude: %w", err)
		}
		out = append(out, p)
	}
	return out, nil
}

// Target is a layer chosen for pruning and its sparsity.
type Target struct {
	Layer
	Sparsity float64
	// Global marks the layers pruned together under ScopeGlobal.
	Global bool
}

// Select chooses the layers opts prunes and their sparsities: every layer
// not excluded at opts.Sparsity, or at its Plan entry. It reports plan
// entries and exclude patterns that name no layer.
func Select(g *rt.Graph, opts Options) ([]Target, error) {
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	layers := Layers(g)
	if len(layers) == 0 {
		return nil, fmt.Errorf("the model has no prunable layers (Conv, Gemm or MatMul with a float32 weight parameter)")
	}
	pats, _ := parsePatterns(opts.Exclude)
	used := make([]bool, len(pats))
	plan, err := opts.Plan.resolve(layers)
	if err != nil {
		return nil, err
	}
	var out []Target
	for i, l := range layers {
		excluded := false
		for j, p := range pats {
			if p.Match(l.Node) || p.Match(l.Param) {
				excluded, used[j] = true, true
			}
		}
		if excluded {
			continue
		}
		s, inPlan := plan[l.Param]
		if !inPlan {
			if !opts.IncludeFirstLast && (i == 0 || i == len(layers)-1) {
				continue
			}
			if opts.Plan != nil && opts.Sparsity == 0 {
				continue
			}
			s = opts.Sparsity
		}
		if opts.Method == NM {
			s = 1 - float64(opts.N)/float64(opts.M)
		}
		out = append(out, Target{Layer: l, Sparsity: s, Global: opts.Scope == ScopeGlobal && !inPlan})
	}
	for j, p := range pats {
		if !used[j] {
			return nil, fmt.Errorf("--exclude %q matches no prunable layer (layers: %s)", p, layerNames(layers))
		}
	}
	return out, nil
}

func layerNames(layers []Layer) string {
	var names []string
	for _, l := range layers {
		names = append(names, l.Node)
	}
	if len(names) > 12 {
		names = append(names[:12], fmt.Sprintf("... %d more", len(names)-12))
	}
	return strings.Join(names, ", ")
}

// Plan is a per-layer sparsity plan: layer (node name, or weight parameter
// name) -> fraction of its weights to remove.
type Plan map[string]float64

// resolve maps plan entries to weight parameter names, reporting entries
// that name no prunable layer.
func (p Plan) resolve(layers []Layer) (map[string]float64, error) {
	out := map[string]float64{}
	var missing []string
	for _, name := range sortedKeys(p) {
		found := false
		for _, l := range layers {
			if l.Node == name || l.Param == name {
				out[l.Param] = p[name]
				found = true
				break
			}
		}
		if !found {
			missing = append(missing, name)
		}
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("the plan names %d layer(s) the model does not have: %s (its prunable layers: %s)",
			len(missing), strings.Join(missing, ", "), layerNames(layers))
	}
	return out, nil
}

func sortedKeys[T any](m map[string]T) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
