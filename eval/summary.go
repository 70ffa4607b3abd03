package eval

import (
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"

	rt "github.com/compressml/compress/runtime"
)

// ValueSummary describes a graph input, a graph output or a node output.
type ValueSummary struct {
	Name  string `json:"name"`
	DType string `json:"dtype"`
	// Shape is the declared shape (-1 for a dynamic dimension) for graph
	// inputs and outputs, and the planned concrete shape for node outputs.
	// It is null when unknown.
	Shape []int `json:"shape"`
	// Dims names dynamic dimensions (ONNX dim_param), when there are any.
	Dims []string `json:"dims,omitempty"`
}

// NodeSummary describes one node.
type NodeSummary struct {
	Name    string         `json:"name"`
	Op      string         `json:"op"`
	Domain  string         `json:"domain,omitempty"`
	Inputs  []string       `json:"inputs"`
	Outputs []ValueSummary `json:"outputs"`
	// Params counts the elements of the weights (initializers) the node
	// reads; see IsWeight.
	Params int64 `json:"params"`
	// MACs counts the multiply-accumulates of one run (0 when the op does
	// not report them or the node was computed at plan time).
	MACs int64 `json:"macs"`
	// Folded is set for nodes computed once at plan time from constants.
	Folded bool `json:"folded,omitempty"`
}

// ModelSummary describes a model for `compress inspect`.
type ModelSummary struct {
	Graph     string `json:"graph"`
	Producer  string `json:"producer"`
	Opset     int64  `json:"opset"`
	IRVersion int64  `json:"ir_version,omitempty"`
	Doc       string `json:"doc,omitempty"`
	// Batch is the size given to dynamic input dimensions when planning.
	Batch   int            `json:"batch"`
	Inputs  []ValueSummary `json:"inputs"`
	Outputs []ValueSummary `json:"outputs"`
	Nodes   []NodeSummary  `json:"nodes"`
	// Totals. NumParams counts the elements of every weight once (see
	// IsWeight), and ParamBytes the size in memory of all parameters.
	NumNodes   int            `json:"num_nodes"`
	NumParams  int64          `json:"num_params"`
	ParamBytes int64          `json:"param_bytes"`
	MACs       int64          `json:"macs"`
	OpCounts   map[string]int `json:"op_counts"`
	// PlanError says why shapes and MACs are missing, when they are.
	PlanError string `json:"plan_error,omitempty"`
}

// SummaryOptions configure Summarize.
type SummaryOptions struct {
	// Batch is the size of dynamic input dimensions (1 if 0).
	Batch int
	// Optimized summarises the graph as the executor runs it (constants
	// folded, BatchNorm folded, activations fused) instead of as imported.
	Optimized bool
}

func valueSummary(vi rt.ValueInfo) ValueSummary {
	v := ValueSummary{Name: vi.Name, DType: vi.DType.String(), Shape: vi.Shape}
	for _, d := range vi.DimNames {
		if d != "" {
			v.Dims = vi.DimNames
			break
		}
	}
	return v
}

// Summarize describes a model: its inputs and outputs, and for every node its
// op, output shapes (planned with dynamic dimensions set to opts.Batch),
// parameter count and MACs, with totals. A model that cannot be planned
// (an unsupported op, inconsistent shapes) is still described, without shapes
// and MACs, and PlanError says why.
func Summarize(g *rt.Graph, opts SummaryOptions) *ModelSummary {
	batch := opts.Batch
	if batch <= 0 {
		batch = 1
	}
	s := &ModelSummary{Graph: g.Name, Producer: g.Producer, Opset: g.Opset, Doc: g.Doc, Batch: batch, OpCounts: map[string]int{}}
	for _, in := range g.Inputs {
		if _, isParam := g.Params[in.Name]; !isParam {
			s.Inputs = append(s.Inputs, valueSummary(in))
		}
	}
	for _, out := range g.Outputs {
		s.Outputs = append(s.Outputs, valueSummary(out))
	}
	s.NumParams, s.ParamBytes = paramTotals(g.Params)

	nodes := g.Nodes
	var planned []rt.PlannedNode
	ex, err := rt.NewExecutor(g, rt.Options{Threads: 1, NoOptimize: !opts.Optimized})
	if err == nil {
		nodes = ex.Graph().Nodes
		var p *rt.Plan
		if p, err = ex.Plan(ex.InputShapes(batch)); err == nil {
			planned = p.Nodes
		}
	}
	if err != nil {
		s.PlanError = err.Error()
	}
	params := g.Params
	if ex != nil {
		params = ex.Graph().Params
	}
	for i, n := range nodes {
		ns := NodeSummary{Name: n.Name, Op: n.OpType, Domain: n.Domain, Inputs: n.Inputs}
		seen := map[string]bool{}
		for _, in := range n.Inputs {
			if p, ok := params[in]; ok && !seen[in] && IsWeight(p.T) {
				seen[in] = true
				ns.Params += int64(p.T.Len())
			}
		}
		for j, o := range n.Outputs {
			v := ValueSummary{Name: o}
			if planned != nil && i < len(planned) && j < len(planned[i].Outputs) {
				m := planned[i].Outputs[j]
				v.DType, v.Shape = m.DType.String(), append([]int{}, m.Shape...)
			}
			ns.Outputs = append(ns.Outputs, v)
		}
		if planned != nil && i < len(planned) {
			ns.MACs, ns.Folded = planned[i].MACs, planned[i].Folded
		}
		s.MACs += ns.MACs
		s.OpCounts[opName(n)]++
		s.Nodes = append(s.Nodes, ns)
	}
	s.NumNodes = len(s.Nodes)
	if opts.Optimized && ex != nil {
		// Report the optimised graph's parameters (folded and fused).
		s.NumParams, s.ParamBytes = paramTotals(params)
	}
	return s
}

// IsWeight reports whether a parameter counts as a weight: float32, int8,
// uint8 and int32 tensors do; int64 and bool ones (shapes, indices, masks)
// do not, as in PyTorch's parameter counts.
func IsWeight(t *rt.Tensor) bool {
	switch t.DType {
	case rt.Float32, rt.Int8, rt.Uint8, rt.Int32:
		return true
	}
	return false
}

func paramTotals(params map[string]*rt.Param) (weights, bytes int64) {
	for _, p := range params {
		n := int64(p.T.Len())
		if IsWeight(p.T) {
			weights += n
		}
		bytes += n * int64(p.T.DType.Size())
	}
	return weights, bytes
}

func opName(n *rt.Node) string {
	if n.Domain != "" && n.Domain != "ai.onnx" {
		return n.Domain + "::" + n.OpType
	}
	return n.OpType
}

// FormatShape writes a shape as [1 3 224 224], with dynamic dimensions
// shown by name (or ? when unnamed); nil is "?".
func FormatShape(shape []int, dims []string) string {
	if shape == nil {
		return "?"
	}
	parts := make([]string, len(shape))
	for i, d := range shape {
		switch {
		case d >= 0:
			parts[i] = fmt.Sprint(d)
		case i < len(dims) && dims[i] != "":
			parts[i] = dims[i]
		default:
			parts[i] = "?"
		}
	}
	return "[" + strings.Join(parts, " ") + "]"
}

// Human formats a count with a k/M/G suffix (e.g. 1.23M).
func Human(n int64) string {
	f := float64(n)
	switch {
	case n >= 1e9:
		return fmt.Sprintf("%.2fG", f/1e9)
	case n >= 1e6:
		return fmt.Sprintf("%.2fM", f/1e6)
	case n >= 1e4:
		return fmt.Sprintf("%.1fk", f/1e3)
	}
	return fmt.Sprint(n)
}

// WriteText writes the summary as a header, a node table and totals.
func (s *ModelSummary) WriteText(w io.Writer) error {
	var b strings.Builder
	name := s.Graph
	if name == "" {
		name = "(unnamed)"
	}
	fmt.Fprintf(&b, "graph     %s\n", name)
	if s.Producer != "" {
		fmt.Fprintf(&b, "producer  %s\n", s.Producer)
	}
	if s.IRVersion > 0 {
		fmt.Fprintf(&b, "opset     %d (IR version %d)\n", s.Opset, s.IRVersion)
	} else {
		fmt.Fprintf(&b, "opset     %d\n", s.Opset)
	}
	for _, in := range s.Inputs {
		fmt.Fprintf(&b, "input     %s %s %s\n", in.Name, in.DType, FormatShape(in.Shape, in.Dims))
	}
	for _, out := range s.Outputs {
		fmt.Fprintf(&b, "output    %s %s %s\n", out.Name, out.DType, FormatShape(out.Shape, out.Dims))
	}
	b.WriteString("\n")
	tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "#\tnode\top\toutput shape (batch %d)\tparams\tMACs\n", s.Batch)
	for i, n := range s.Nodes {
		shapes := make([]string, len(n.Outputs))
		for j, o := range n.Outputs {
			shapes[j] = FormatShape(o.Shape, nil)
		}
		op := n.Op
		if n.Domain != "" {
			op = n.Domain + "::" + n.Op
		}
		macs := Human(n.MACs)
		if n.Folded {
			macs = "folded"
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\n", i, n.Name, op, strings.Join(shapes, " "), Human(n.Params), macs)
	}
	tw.Flush()
	ops := make([]string, 0, len(s.OpCounts))
	for op := range s.OpCounts {
		ops = append(ops, op)
	}
	sort.Strings(ops)
	counts := make([]string, len(ops))
	for i, op := range ops {
		counts[i] = fmt.Sprintf("%s %d", op, s.OpCounts[op])
	}
	fmt.Fprintf(&b, "\ntotal     %d nodes (%s)\n", s.NumNodes, strings.Join(counts, ", "))
	fmt.Fprintf(&b, "params    %d (%s, %s bytes)\n", s.NumParams, Human(s.NumParams), Human(s.ParamBytes))
	fmt.Fprintf(&b, "MACs      %d (%s) per run at batch %d\n", s.MACs, Human(s.MACs), s.Batch)
	if s.PlanError != "" {
		fmt.Fprintf(&b, "\nshapes and MACs are unavailable: %s\n", s.PlanError)
	}
	_, err := io.WriteString(w, b.String())
	return err
}
