package runtime

import (
	"context"
	"fmt"
	"sort"
	"sync"
)

// ValueMeta describes one value while a graph is planned: its element type,
// its concrete shape, and its contents when they are known at plan time
// (parameters, Constant nodes and anything folded from them).
type ValueMeta struct {
	DType DType
	Shape []int
	Const *Tensor
}

// ExecContext is what a kernel sees while it runs.
type ExecContext struct {
	Ctx     context.Context
	Threads int // goroutines a kernel may use (>= 1)
	// Workspace is scratch memory shared by all kernels of a plan, at least
	// as long as the largest WorkspaceSize any kernel of the plan asked for.
	// Its contents are undefined on entry.
	Workspace []float32
	// Seed varies from run to run of a training forward; kernels with
	// randomness (Dropout) derive their streams from it and their node, so
	// results do not depend on thread scheduling.
	Seed uint64
}

// Kernel is a node compiled for concrete input shapes. Run reads in and
// writes every element of out; out tensors are preallocated by the executor
// with the shapes Compile returned and may hold stale data on entry.
// A kernel must not retain in or out after Run returns.
type Kernel interface {
	Run(ctx *ExecContext, in, out []*Tensor) error
}

// KernelFunc adapts a function to the Kernel interface.
type KernelFunc func(ctx *ExecContext, in, out []*Tensor) error

// Run calls f.
func (f KernelFunc) Run(ctx *ExecContext, in, out []*Tensor) error { return f(ctx, in, out) }

// Optional interfaces a Kernel may implement.
type (
	// MACCounter reports the multiply-accumulates one Run performs
	// (for `compress inspect`).
	MACCounter interface{ MACs() int64 }
	// WorkspaceUser asks for ExecContext.Workspace of at least n float32s.
	WorkspaceUser interface{ WorkspaceSize() int }
	// Aliaser marks a kernel whose output 0 is input AliasInput() with a new
	// shape and the same data (Reshape, Flatten, Squeeze, Identity...). The
	// executor then shares the buffer and never calls Run.
	Aliaser interface{ AliasInput() int }
)

// CompileFunc checks a node against the metadata of its inputs (absent
// optional inputs have DType Undefined) and returns a kernel and the
// metadata of every output. Errors name what is wrong; the executor adds
// the node's name and op type.
type CompileFunc func(n *Node, in []ValueMeta) (Kernel, []ValueMeta, error)

// GradKernel is the backward of a compiled node. It reads the forward
// inputs and outputs and the gradients of the outputs (gradOut[i] is nil
// where no gradient flows: treat it as zero) and ADDS the gradients of the
// inputs into gradIn (gradIn[i] is nil where input i needs no gradient).
type GradKernel interface {
	Backward(ctx *ExecContext, in, out, gradOut, gradIn []*Tensor) error
}

// GradKernelFunc adapts a function to the GradKernel interface.
type GradKernelFunc func(ctx *ExecContext, in, out, gradOut, gradIn []*Tensor) error

// Backward calls f.
func (f GradKernelFunc) Backward(ctx *ExecContext, in, out, gradOut, gradIn []*Tensor) error {
	return f(ctx, in, out, gradOut, gradIn)
}

// GradCompileFunc compiles the backward of a node for the same input
// metadata its forward was compiled with; out is the forward's output
// metadata and needGrad[i] says which inputs need a gradient. Inputs that
// are not differentiable (indices, shapes) never have needGrad set.
type GradCompileFunc func(n *Node, in, out []ValueMeta, needGrad []bool) (GradKernel, error)

// OpSpec registers one operator.
type OpSpec struct {
	Type    string
	Domain  string // "" for the default ONNX domain
	Compile CompileFunc
	// Grad compiles the backward; nil for ops that are not differentiable.
	// Ops whose kernel is an Aliaser need none: the executor passes the
	// gradient through the view itself.
	Grad GradCompileFunc
	// StaticInputs lists input indices whose values decide output shapes
	// (Reshape's shape, Slice's starts...). When such an input is a graph
	// input, the executor plans with its value known, one plan per distinct
	// value, so that kernels always see it as a constant.
	StaticInputs []int
	// NonDiff lists input indices that never carry gradients (indices,
	// shapes, axes); the executor does not ask for them.
	NonDiff []int
	// MinInputs and MaxInputs bound the number of inputs (MaxInputs 0 means
	// no upper bound); Outputs is the maximum number of outputs (0: 1).
	MinInputs, MaxInputs, Outputs int
}

var registry = struct {
	sync.RWMutex
	ops map[string]OpSpec
}{ops: map[string]OpSpec{}}

func opKey(domain, typ string) string {
	if domain == "ai.onnx" {
		domain = ""
	}
	return domain + "::" + typ
}

// Register adds an operator to the registry. It is meant to be called from
// init functions; registering a type twice panics.
func Register(s OpSpec) {
	registry.Lock()
	defer registry.Unlock()
	k := opKey(s.Domain, s.Type)
	if _, dup := registry.ops[k]; dup {
		panic("runtime.Register: op registered twice: " + k)
	}
	registry.ops[k] = s
}

// LookupOp finds a registered operator.
func LookupOp(domain, typ string) (OpSpec, bool) {
	registry.RLock()
	defer registry.RUnlock()
	s, ok := registry.ops[opKey(domain, typ)]
	return s, ok
}

// RegisteredOps lists the registered op types ("domain::Type" for non-default
// domains), sorted.
func RegisteredOps() []string {
	registry.RLock()
	defer registry.RUnlock()
	var out []string
	for _, s := range registry.ops {
		name := s.Type
		if s.Domain != "" && s.Domain != "ai.onnx" {
			name = s.Domain + "::" + s.Type
		}
		out = append(out, name)
	}
	sort.Strings(out)
	return out
}

// UnsupportedOps returns one entry per node whose op is not registered.
func UnsupportedOps(g *Graph) []*Node {
	var out []*Node
	for _, n := range g.Nodes {
		if _, ok := LookupOp(n.Domain, n.OpType); !ok {
			out = append(out, n)
		}
	}
	return out
}

// CompileNode looks up and compiles one node, checking input counts and
// wrapping errors with the node's identity.
func CompileNode(n *Node, in []ValueMeta) (Kernel, []ValueMeta, error) {
	spec, ok := LookupOp(n.Domain, n.OpType)
	if !ok {
		return nil, nil, fmt.Errorf("%v: op %q (domain %q) is not supported", n, n.OpType, n.Domain)
	}
	present := 0
	for i, m := range in {
		if m.DType != Undefined {
			present = i + 1
		}
	}
	if present < spec.MinInputs {
		return nil, nil, fmt.Errorf("%v: needs at least %d inputs, has %d", n, spec.MinInputs, present)
	}
	if spec.MaxInputs > 0 && len(in) > spec.MaxInputs {
		return nil, nil, fmt.Errorf("%v: takes at most %d inputs, has %d", n, spec.MaxInputs, len(in))
	}
	maxOut := spec.Outputs
	if maxOut == 0 {
		maxOut = 1
	}
	if len(n.Outputs) > maxOut {
		return nil, nil, fmt.Errorf("%v: has %d outputs, the op has at most %d", n, len(n.Outputs), maxOut)
	}
	k, out, err := spec.Compile(n, in)
	if err != nil {
		return nil, nil, fmt.Errorf("%v: %w", n, err)
	}
	if len(out) < len(n.Outputs) {
		return nil, nil, fmt.Errorf("%v: op produced metadata for %d outputs, node has %d", n, len(out), len(n.Outputs))
	}
	for i, m := range out {
		if err := CheckShape(m.Shape); err != nil {
			return nil, nil, fmt.Errorf("%v: output %d: %w", n, i, err)
		}
	}
	return k, out, nil
}
