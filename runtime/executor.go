package runtime

import (
	"context"
	"fmt"
	goruntime "runtime"
	"sort"
	"strings"
	"sync"
)

// Options configure an Executor.
type Options struct {
	// Threads is the number of goroutines kernels may use; 0 means one per CPU.
	Threads int
	// NoOptimize runs the graph exactly as given, without the inference passes
	// of Optimize (constant folding, BatchNorm folding, bias and activation
	// fusion, dead-code removal, sparse kernels).
	NoOptimize bool
	// NoSparse keeps every layer on the dense kernels. By default Conv,
	// Gemm and MatMul layers whose constant weights are mostly zeros run on
	// the CSR kernels where these are faster (see SparsifyWeights).
	NoSparse bool
	// SparseThreshold, in (0, 1], runs every such layer with at least this
	// fraction of zero weights on the sparse kernels; 0 (the default)
	// picks them where measured faster for the layer's shape and batch.
	SparseThreshold float64
}

// Executor runs a Graph. It compiles one Plan per distinct set of input
// shapes (kept in a small cache) and reuses it, and its buffers, for every
// run with those shapes. Runs of one Executor are serialised; use one
// Executor per goroutine for concurrency.
type Executor struct {
	g       *Graph
	threads int
	static  map[string]bool // graph inputs whose values decide shapes

	mu    sync.Mutex
	plans map[string]*Plan
	order []string
	last  *Plan // plan of the previous Run, tried first
	// splits caches the chunked execution of each full-batch plan (nil:
	// the plan runs as it is); noSplit disables chunking.
	splits     map[*Plan]*splitPlan
	noSplit    bool
	splitChunk int // chunk size override (tests); 0: from the footprint
}

// maxPlans bounds the plan cache of an Executor.
const maxPlans = 8

// UnsupportedError lists every node whose op the runtime does not support.
type UnsupportedError struct {
	Nodes []*Node
	Opset int64
}

func (e *UnsupportedError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%d node(s) use ops compress does not support (opset %d):", len(e.Nodes), e.Opset)
	for _, n := range e.Nodes {
		dom := n.Domain
		if dom == "" {
			dom = "ai.onnx"
		}
		fmt.Fprintf(&b, "\n  - %s (domain %s) in node %q", n.OpType, dom, n.Name)
	}
	b.WriteString("\nremove or replace these ops (for example re-export from PyTorch with another opset) or open an issue naming them")
	return b.String()
}

// NewExecutor prepares g for execution. g is not modified; the executor
// works on its own (optimised) copy, so later changes to g are not seen.
func NewExecutor(g *Graph, opts Options) (*Executor, error) {
	if un := UnsupportedOps(g); len(un) > 0 {
		return nil, &UnsupportedError{Nodes: un, Opset: g.Opset}
	}
	eg := g.Clone()
	if err := eg.TopoSort(); err != nil {
		return nil, err
	}
	if !opts.NoOptimize {
		if err := optimize(eg, opts); err != nil {
			return nil, fmt.Errorf("optimising graph: %w", err)
		}
		FuseConvResidual(eg)
		FuseActivations(eg)
	}
	threads := opts.Threads
	if threads <= 0 {
		threads = goruntime.NumCPU()
	}
	return &Executor{g: eg, threads: threads, static: staticInputs(eg), plans: map[string]*Plan{}}, nil
}

// staticInputs finds the graph inputs read at an OpSpec.StaticInputs
// position of some node.
func staticInputs(g *Graph) map[string]bool {
	out := map[string]bool{}
	for _, n := range g.Nodes {
		spec, _ := LookupOp(n.Domain, n.OpType)
		for _, i := range spec.StaticInputs {
			if name := n.Input(i); name != "" && g.IsInput(name) {
				out[name] = true
			}
		}
	}
	return out
}

// maxStaticElements bounds a static input (a shape-like tensor).
const maxStaticElements = 1 << 12

// Graph returns the executor's (optimised) graph. Do not modify it.
func (e *Executor) Graph() *Graph { return e.g }

// Threads returns the number of threads kernels use.
func (e *Executor) Threads() int { return e.threads }

// InputShapes returns the graph inputs' shapes with every unknown dimension
// set to def (typically 1, the batch size).
func (e *Executor) InputShapes(def int) map[string][]int {
	out := map[string][]int{}
	for _, in := range e.g.Inputs {
		if _, isParam := e.g.Params[in.Name]; isParam {
			continue
		}
		s := make([]int, len(in.Shape))
		for i, d := range in.Shape {
			if d < 0 {
				d = def
			}
			s[i] = d
		}
		out[in.Name] = s
	}
	return out
}

// Run executes the graph on inputs (one tensor per graph input, by name) and
// returns every graph output by name. Returned tensors belong to the caller.
func (e *Executor) Run(ctx context.Context, inputs map[string]*Tensor) (map[string]*Tensor, error) {
	if ctx == nil {
		ctx = context.Background()
	}
	// Fast path: same input shapes as the previous run (no plan lookup).
	if len(e.static) == 0 {
		e.mu.Lock()
		if p := e.last; p != nil && p.matches(inputs) {
			defer e.mu.Unlock()
			if sp := e.splits[p]; sp != nil {
				return sp.run(ctx, inputs)
			}
			return p.run(ctx, inputs)
		}
		e.mu.Unlock()
	}
	shapes := make(map[string][]int, len(inputs))
	var statics map[string]*Tensor
	for name, t := range inputs {
		if t == nil {
			return nil, fmt.Errorf("input %q is nil", name)
		}
		shapes[name] = t.Shape
		if e.static[name] {
			if err := checkData(t); err != nil {
				return nil, fmt.Errorf("input %q: %w", name, err)
			}
			if t.Len() > maxStaticElements {
				return nil, fmt.Errorf("input %q decides output shapes and must be small (at most %d values), it has %d", name, maxStaticElements, t.Len())
			}
			if statics == nil {
				statics = map[string]*Tensor{}
			}
			statics[name] = t
		}
	}
	p, err := e.plan(shapes, statics)
	if err != nil {
		return nil, err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if len(statics) == 0 {
		e.last = p
		return e.runPlanned(ctx, p, shapes, inputs)
	}
	return p.run(ctx, inputs)
}

// Plan returns the compiled plan for the given input shapes, compiling it on
// first use.
func (e *Executor) Plan(shapes map[string][]int) (*Plan, error) { return e.plan(shapes, nil) }

func (e *Executor) plan(shapes map[string][]int, statics map[string]*Tensor) (*Plan, error) {
	if err := e.checkInputs(shapes); err != nil {
		return nil, err
	}
	key := shapeKey(shapes)
	for _, name := range sortedNames(statics) {
		key += fmt.Sprintf("%s=%v%v%v%v;", name, statics[name].I64, statics[name].I32, statics[name].F32, statics[name].B)
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if p, ok := e.plans[key]; ok {
		return p, nil
	}
	p, err := compilePlan(e.g, shapes, e.threads, planMode{statics: statics})
	if err != nil {
		return nil, err
	}
	if len(e.order) >= maxPlans {
		delete(e.splits, e.plans[e.order[0]])
		if e.last == e.plans[e.order[0]] {
			e.last = nil
		}
		delete(e.plans, e.order[0])
		e.order = e.order[1:]
	}
	e.plans[key] = p
	e.order = append(e.order, key)
	return p, nil
}

func sortedNames[T any](m map[string]T) []string {
	names := make([]string, 0, len(m))
	for n := range m {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

func shapeKey(shapes map[string][]int) string {
	names := make([]string, 0, len(shapes))
	for n := range shapes {
		names = append(names, n)
	}
	sort.Strings(names)
	var b strings.Builder
	for _, n := range names {
		fmt.Fprintf(&b, "%s%v;", n, shapes[n])
	}
	return b.String()
}

func (e *Executor) checkInputs(shapes map[string][]int) error { return checkInputsOf(e.g, shapes) }

func checkInputsOf(g *Graph, shapes map[string][]int) error {
	want := map[string]ValueInfo{}
	for _, in := range g.Inputs {
		if _, isParam := g.Params[in.Name]; !isParam {
			want[in.Name] = in
		}
	}
	for name, s := range shapes {
		vi, ok := want[name]
		if !ok {
			names := make([]string, 0, len(want))
			for n := range want {
				names = append(names, n)
			}
			sort.Strings(names)
			return fmt.Errorf("the model has no input %q (its inputs: %s)", name, strings.Join(names, ", "))
		}
		if err := CheckShape(s); err != nil {
			return fmt.Errorf("input %q: %w", name, err)
		}
		if vi.Shape != nil {
			if len(vi.Shape) != len(s) {
				return fmt.Errorf("input %q: expected rank %d %s, got shape %v", name, len(vi.Shape), fmtDims(vi), s)
			}
			for i, d := range vi.Shape {
				if d >= 0 && d != s[i] {
					return fmt.Errorf("input %q: expected shape %s, got %v (dimension %d differs)", name, fmtDims(vi), s, i)
				}
			}
		}
	}
	for name := range want {
		if _, ok := shapes[name]; !ok {
			return fmt.Errorf("missing input %q (expected shape %s)", name, fmtDims(want[name]))
		}
	}
	return nil
}

func fmtDims(vi ValueInfo) string {
	parts := make([]string, len(vi.Shape))
	for i, d := range vi.Shape {
		switch {
		case d >= 0:
			parts[i] = fmt.Sprint(d)
		case i < len(vi.DimNames) && vi.DimNames[i] != "":
			parts[i] = vi.DimNames[i]
		default:
			parts[i] = "?"
		}
	}
	return "[" + strings.Join(parts, " ") + "]"
}
