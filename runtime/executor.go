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
	// fusion, dead-code removal).
	NoOptimize bool
}

// Executor runs a Graph. It compiles one Plan per distinct set of input
// shapes (kept in a small cache) and reuses it, and its buffers, for every
// run with those shapes. Runs of one Executor are serialised; use one
// Executor per goroutine for concurrency.
type Executor struct {
	g       *Graph
	threads int

	mu    sync.Mutex
	plans map[string]*Plan
	order []string
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
		if err := Optimize(eg); err != nil {
			return nil, fmt.Errorf("optimising graph: %w", err)
		}
	}
	threads := opts.Threads
	if threads <= 0 {
		threads = goruntime.NumCPU()
	}
	return &Executor{g: eg, threads: threads, plans: map[string]*Plan{}}, nil
}

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
	shapes := make(map[string][]int, len(inputs))
	for name, t := range inputs {
		if t == nil {
			return nil, fmt.Errorf("input %q is nil", name)
		}
		shapes[name] = t.Shape
	}
	p, err := e.Plan(shapes)
	if err != nil {
		return nil, err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	return p.run(ctx, inputs)
}

// Plan returns the compiled plan for the given input shapes, compiling it on
// first use.
func (e *Executor) Plan(shapes map[string][]int) (*Plan, error) {
	if err := e.checkInputs(shapes); err != nil {
		return nil, err
	}
	key := shapeKey(shapes)
	e.mu.Lock()
	defer e.mu.Unlock()
	if p, ok := e.plans[key]; ok {
		return p, nil
	}
	p, err := compilePlan(e.g, shapes, e.threads)
	if err != nil {
		return nil, err
	}
	if len(e.order) >= maxPlans {
		delete(e.plans, e.order[0])
		e.order = e.order[1:]
	}
	e.plans[key] = p
	e.order = append(e.order, key)
	return p, nil
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

func (e *Executor) checkInputs(shapes map[string][]int) error {
	want := map[string]ValueInfo{}
	for _, in := range e.g.Inputs {
		if _, isParam := e.g.Params[in.Name]; !isParam {
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
