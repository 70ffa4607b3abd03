package runtime

import (
	"context"
	"errors"
	"fmt"
	goruntime "runtime"
	"sync"
)

// TrainOptions configure a GradExecutor.
type TrainOptions struct {
	// Threads is the number of goroutines kernels may use; 0 means one per CPU.
	Threads int
	// Seed seeds the random parts of training-mode ops (Dropout masks).
	Seed uint64
	// EvalMode reports nodes that stay in inference mode while training
	// (BatchNormalization uses its running statistics and does not update
	// them; Dropout is the identity). nil means the default: a
	// BatchNormalization whose scale and bias are both frozen stays in
	// inference mode, everything else trains.
	EvalMode func(g *Graph, n *Node) bool
}

// GradExecutor runs a graph forward in training or evaluation mode and
// computes the gradients of trainable parameters. Parameters are shared with
// the graph it was made from, not copied: an optimizer updates
// Graph.Params[name].T in place and the next run sees the new values.
//
// Only values a trainable parameter can reach get gradients, so a frozen
// prefix of the network costs no backward work; frozen parameters are
// constants of the plan, folded and prepacked like in inference.
type GradExecutor struct {
	g       *Graph // structure of its own, parameter tensors shared
	threads int
	seed    uint64        // set by SetSeed for the next training forward
	state   []stateUpdate // running statistics written back after a training forward

	mu      sync.Mutex
	plans   map[string]*gradPlan
	last    *gradPlan
	trained bool
}

// stateUpdate copies a training-mode output (a new running mean or
// variance) into a parameter after each training forward.
type stateUpdate struct {
	value string
	param string
}

type gradPlan struct {
	plan     *Plan
	train    bool
	needGrad []bool    // per value
	grads    []*Tensor // per value; nil where no gradient is needed
	bsteps   []bstep   // backward steps in execution order
	params   map[string]int
}

type bstep struct {
	step    *step
	kernel  GradKernel // nil for an alias (view) step
	gradIn  []*Tensor
	gradOut []*Tensor
}

// NewGradExecutor prepares g for training. It adds nothing to g; training
// mode attributes and running-statistics outputs are set on a private copy of
// the graph's structure.
func NewGradExecutor(g *Graph, opts TrainOptions) (*GradExecutor, error) {
	if un := UnsupportedOps(g); len(un) > 0 {
		return nil, &UnsupportedError{Nodes: un, Opset: g.Opset}
	}
	eg := g.shareParams()
	if err := eg.TopoSort(); err != nil {
		return nil, err
	}
	threads := opts.Threads
	if threads <= 0 {
		threads = goruntime.NumCPU()
	}
	e := &GradExecutor{g: eg, threads: threads, seed: opts.Seed, plans: map[string]*gradPlan{}}
	evalMode := opts.EvalMode
	if evalMode == nil {
		evalMode = defaultEvalMode
	}
	for _, n := range eg.Nodes {
		if n.Domain != "" || evalMode(eg, n) {
			continue
		}
		switch n.OpType {
		case "BatchNormalization":
			n.SetAttr("training_mode", Attr{Kind: AttrInt, I: 1})
			for len(n.Outputs) < 3 {
				n.Outputs = append(n.Outputs, "")
			}
			for i, suffix := range []string{"running_mean", "running_var"} {
				param := n.Input(3 + i)
				if _, ok := eg.Params[param]; !ok {
					return nil, fmt.Errorf("%v: %s %q is not a parameter", n, suffix, param)
				}
				out := uniqueName(eg, n.Name+"__new_"+suffix)
				n.Outputs[1+i] = out
				e.state = append(e.state, stateUpdate{value: out, param: param})
			}
		case "Dropout":
			for len(n.Inputs) < 3 {
				n.Inputs = append(n.Inputs, "")
			}
			name := uniqueName(eg, n.Name+"__training_mode")
			eg.AddParam(name, &Tensor{DType: Bool, B: []bool{true}}, false)
			n.Inputs[2] = name
			// The backward pass needs the mask.
			if len(n.Outputs) < 2 || n.Outputs[1] == "" {
				n.Outputs = append(n.Outputs[:1], uniqueName(eg, n.Name+"__mask"))
			}
		}
	}
	return e, nil
}

func defaultEvalMode(g *Graph, n *Node) bool {
	if n.OpType != "BatchNormalization" {
		return false
	}
	for _, in := range []string{n.Input(1), n.Input(2)} {
		if p, ok := g.Params[in]; ok && p.Trainable {
			return false
		}
	}
	return true
}

// shareParams copies g's structure and Param records but shares tensors.
func (g *Graph) shareParams() *Graph { return g.clone(false) }

// Graph returns the executor's graph: its parameters are those of the graph
// given to NewGradExecutor.
func (e *GradExecutor) Graph() *Graph { return e.g }

// SetSeed sets the seed of the random parts (Dropout masks) of the next
// training forwards. A trainer sets it from its own seed and step number, so
// that a resumed run draws the same masks as an uninterrupted one.
func (e *GradExecutor) SetSeed(seed uint64) {
	e.mu.Lock()
	e.seed = seed
	e.mu.Unlock()
}

// TrainingState lists the parameters a training forward changes besides the
// trainable ones (BatchNormalization running statistics), for checkpoints.
func (e *GradExecutor) TrainingState() []string {
	var names []string
	for _, su := range e.state {
		names = append(names, su.param)
	}
	return names
}

// ErrNoForward is returned by Backward before any training forward.
var ErrNoForward = errors.New("runtime: Backward called before a training Forward")

// Forward runs the graph. With train set, BatchNormalization uses batch
// statistics (and updates the running ones) and Dropout drops; the values
// the backward pass needs are kept. The returned tensors are the executor's
// own buffers, valid until the next call.
func (e *GradExecutor) Forward(ctx context.Context, inputs map[string]*Tensor, train bool) (map[string]*Tensor, error) {
	if ctx == nil {
		ctx = context.Background()
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	shapes := make(map[string][]int, len(inputs))
	for name, t := range inputs {
		if t == nil {
			return nil, fmt.Errorf("input %q is nil", name)
		}
		shapes[name] = t.Shape
	}
	key := fmt.Sprint(train, shapeKey(shapes))
	gp, ok := e.plans[key]
	if !ok {
		var err error
		if gp, err = e.compile(shapes, train); err != nil {
			return nil, err
		}
		if len(e.plans) >= maxPlans {
			e.plans = map[string]*gradPlan{}
		}
		e.plans[key] = gp
	}
	out, err := gp.plan.runNoCopy(ctx, inputs, e.seed)
	if err != nil {
		return nil, err
	}
	e.last, e.trained = gp, train
	if train {
		for _, su := range e.state {
			src := gp.plan.vals[gp.plan.index[su.value]]
			copy(e.g.Params[su.param].T.F32, src.F32)
		}
	}
	return out, nil
}

func (e *GradExecutor) compile(shapes map[string][]int, train bool) (*gradPlan, error) {
	src := e.g
	if !train {
		src = e.evalGraph()
	}
	if err := checkInputsOf(src, shapes); err != nil {
		return nil, err
	}
	p, err := compilePlan(src, shapes, e.threads, planMode{variables: true, keep: train})
	if err != nil {
		return nil, err
	}
	gp := &gradPlan{plan: p, train: train, params: map[string]int{}}
	if !train {
		return gp, nil
	}
	gp.needGrad = make([]bool, len(p.vals))
	gp.grads = make([]*Tensor, len(p.vals))
	for name, prm := range src.Params {
		if prm.Trainable && prm.T.DType == Float32 {
			vi := p.index[name]
			gp.needGrad[vi] = true
			gp.params[name] = vi
		}
	}
	var active []int
	for si := range p.steps {
		st := &p.steps[si]
		n := p.Nodes[st.node].Node
		spec, _ := LookupOp(n.Domain, n.OpType)
		any := false
		for i, vi := range st.in {
			if vi >= 0 && gp.needGrad[vi] && !contains(spec.NonDiff, i) {
				any = true
			}
		}
		if !any {
			continue
		}
		for _, vi := range st.out {
			if vi >= 0 && p.metas[vi].DType == Float32 {
				gp.needGrad[vi] = true
			}
		}
		active = append(active, si)
	}
	for vi, need := range gp.needGrad {
		if need {
			m := p.metas[vi]
			gp.grads[vi] = New(m.DType, m.Shape...)
		}
	}
	for _, si := range active {
		st := &p.steps[si]
		pn := p.Nodes[st.node]
		n := pn.Node
		spec, _ := LookupOp(n.Domain, n.OpType)
		bs := bstep{step: st, gradIn: make([]*Tensor, len(st.in)), gradOut: make([]*Tensor, len(st.out))}
		need := make([]bool, len(st.in))
		inMeta := make([]ValueMeta, len(st.in))
		for i, vi := range st.in {
			if vi < 0 {
				continue
			}
			inMeta[i] = p.metas[vi]
			if gp.needGrad[vi] && !contains(spec.NonDiff, i) {
				need[i] = true
				bs.gradIn[i] = gp.grads[vi]
			}
		}
		for i, vi := range st.out {
			if vi >= 0 {
				bs.gradOut[i] = gp.grads[vi]
			}
		}
		if !st.alias {
			if spec.Grad == nil {
				return nil, fmt.Errorf("%v: %s has no backward pass, so the parameters before it cannot be trained; freeze them (for example --freeze-until %s)", n, n.OpType, n.Name)
			}
			k, err := spec.Grad(n, inMeta, pn.Outputs, need)
			if err != nil {
				return nil, fmt.Errorf("%v: backward: %w", n, err)
			}
			bs.kernel = k
		}
		gp.bsteps = append(gp.bsteps, bs)
	}
	return gp, nil
}

// evalGraph is the executor's graph with every node in inference mode.
func (e *GradExecutor) evalGraph() *Graph {
	g := e.g.shareParams()
	for _, n := range g.Nodes {
		switch n.OpType {
		case "BatchNormalization":
			delete(n.Attrs, "training_mode")
			n.Outputs = n.Outputs[:1]
		case "Dropout":
			if len(n.Inputs) > 2 {
				n.Inputs = n.Inputs[:2]
			}
		}
	}
	RemoveDeadCode(g)
	return g
}

func contains(s []int, v int) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

// Backward propagates gradOutputs (by graph output name: the gradient of
// the loss with respect to that output) back to every trainable parameter.
// Gradients are overwritten, not accumulated across calls; read them with
// Grad or Grads.
func (e *GradExecutor) Backward(ctx context.Context, gradOutputs map[string]*Tensor) error {
	if ctx == nil {
		ctx = context.Background()
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	gp := e.last
	if gp == nil || !e.trained {
		return ErrNoForward
	}
	p := gp.plan
	for _, g := range gp.grads {
		if g != nil {
			clear(g.F32)
		}
	}
	for name, t := range gradOutputs {
		vi, ok := p.index[name]
		if !ok {
			return fmt.Errorf("no graph value %q to take a gradient for", name)
		}
		g := gp.grads[vi]
		if g == nil {
			continue // no trainable parameter reaches this output
		}
		if t.DType != Float32 || !SameShape(t.Shape, g.Shape) {
			return fmt.Errorf("gradient for %q: expected float32 %v, got %v %v", name, g.Shape, t.DType, t.Shape)
		}
		copy(g.F32, t.F32)
	}
	ec := &ExecContext{Ctx: ctx, Threads: p.threads, Workspace: p.workspace}
	for i := len(gp.bsteps) - 1; i >= 0; i-- {
		if err := ctx.Err(); err != nil {
			return err
		}
		bs := &gp.bsteps[i]
		st := bs.step
		if bs.kernel == nil { // view: gradient passes through unchanged
			ai := st.kernel.(Aliaser).AliasInput()
			if gi, go0 := bs.gradIn[ai], bs.gradOut[0]; gi != nil && go0 != nil {
				for j, v := range go0.F32 {
					gi.F32[j] += v
				}
			}
			continue
		}
		for j, vi := range st.in {
			if vi >= 0 {
				st.inT[j] = p.vals[vi]
			} else {
				st.inT[j] = nil
			}
		}
		if err := bs.kernel.Backward(ec, st.inT, st.outT, bs.gradOut, bs.gradIn); err != nil {
			return fmt.Errorf("%v: backward: %w", p.Nodes[st.node].Node, err)
		}
	}
	return nil
}

// Grad returns the gradient of a trainable parameter from the last
// Backward, or nil when the parameter is frozen or unreachable.
func (e *GradExecutor) Grad(param string) *Tensor {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.last == nil || !e.last.train {
		return nil
	}
	if vi, ok := e.last.params[param]; ok {
		return e.last.grads[vi]
	}
	return nil
}

// Grads returns every trainable parameter's gradient from the last Backward,
// by parameter name. Parameters no gradient reaches are absent.
func (e *GradExecutor) Grads() map[string]*Tensor {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := map[string]*Tensor{}
	if e.last == nil || !e.last.train {
		return out
	}
	for name, vi := range e.last.params {
		out[name] = e.last.grads[vi]
	}
	return out
}
