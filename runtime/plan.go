package runtime

import (
	"context"
	"fmt"
)

// PlannedNode describes one node of a compiled plan (for inspection).
type PlannedNode struct {
	Node    *Node
	Outputs []ValueMeta // output metadata (Const set when folded)
	MACs    int64       // multiply-accumulates per run (0 when unknown)
	Folded  bool        // computed at plan time from constants
}

// Plan is a graph compiled for one set of input shapes: kernels, buffer
// assignment and constant values. A Plan is not safe for concurrent use.
type Plan struct {
	Nodes []PlannedNode

	threads   int
	vals      []*Tensor      // by value index; constants and buffers preassigned
	index     map[string]int // value name -> index into vals
	metas     []ValueMeta    // by value index, as compiled
	inputs    map[string]int
	outputs   []outSlot
	steps     []step
	workspace []float32
	params    []bool // by value index: the tensor is a variable parameter's own
	released  bool   // buffers dropped (see release)
}

type outSlot struct {
	name string
	idx  int
}

type step struct {
	node   int // index into Plan.Nodes
	kernel Kernel
	alias  bool // output 0 is a view of in[aliasIn]
	in     []int
	out    []int
	inT    []*Tensor
	outT   []*Tensor
}

// value is the planning state of one named value.
type value struct {
	meta    ValueMeta
	fixed   *Tensor // a variable parameter: its own tensor, not a buffer
	buf     int     // index into buffers, -1 for none (const or graph input)
	lastUse int
	pinned  bool // graph output: never reused
}

type buffer struct {
	dtype DType
	size  int // elements
	refs  int // live values using it
}

// planMode selects how a plan treats parameters and buffers.
type planMode struct {
	// variables: trainable parameters are read from their tensors at every
	// run (never folded or prepacked), so in-place updates are seen.
	variables bool
	// keep: no buffer reuse; every value keeps its own buffer after the run
	// (the backward pass reads them).
	keep bool
	// statics: graph inputs planned as constants with these values.
	statics map[string]*Tensor
}

func compilePlan(g *Graph, shapes map[string][]int, threads int, mode planMode) (*Plan, error) {
	p := &Plan{threads: threads, inputs: map[string]int{}, index: map[string]int{}}
	var vals []*value
	index := p.index
	add := func(name string, v *value) int {
		index[name] = len(vals)
		vals = append(vals, v)
		return len(vals) - 1
	}
	for _, name := range g.ParamNames() {
		prm := g.Params[name]
		t := prm.T
		if mode.variables && prm.Trainable {
			add(name, &value{meta: ValueMeta{DType: t.DType, Shape: t.Shape}, fixed: t, buf: -1})
			continue
		}
		add(name, &value{meta: ValueMeta{DType: t.DType, Shape: t.Shape, Const: t}, buf: -1})
	}
	for _, in := range g.Inputs {
		if _, isParam := g.Params[in.Name]; isParam {
			continue
		}
		if t, ok := mode.statics[in.Name]; ok {
			c := t.Clone()
			add(in.Name, &value{meta: ValueMeta{DType: c.DType, Shape: c.Shape, Const: c}, buf: -1})
			continue
		}
		p.inputs[in.Name] = add(in.Name, &value{meta: ValueMeta{DType: in.DType, Shape: shapes[in.Name]}, buf: -1})
	}

	// Compile every node in order, folding those whose outputs are known.
	type pending struct {
		kernel Kernel
		alias  bool
		in     []int
		out    []int
		node   int
	}
	var steps []pending
	wsSize := 0
	ctx := context.Background()
	for _, n := range g.Nodes {
		metas := make([]ValueMeta, len(n.Inputs))
		inIdx := make([]int, len(n.Inputs))
		allConst := true
		for i, name := range n.Inputs {
			if name == "" {
				inIdx[i] = -1
				continue
			}
			vi, ok := index[name]
			if !ok {
				return nil, fmt.Errorf("%v reads %q, which is not computed before it", n, name)
			}
			inIdx[i] = vi
			metas[i] = vals[vi].meta
			if metas[i].Const == nil {
				allConst = false
			}
		}
		pn := PlannedNode{Node: n}
		if allConst && foldable(n) {
			ins := make([]*Tensor, len(metas))
			for i, m := range metas {
				ins[i] = m.Const
			}
			outs, err := EvalNode(ctx, n, ins, threads)
			if err != nil {
				return nil, err
			}
			for i, name := range n.Outputs {
				m := ValueMeta{DType: outs[i].DType, Shape: outs[i].Shape, Const: outs[i]}
				pn.Outputs = append(pn.Outputs, m)
				if name != "" {
					add(name, &value{meta: m, buf: -1})
				}
			}
			pn.Folded = true
			p.Nodes = append(p.Nodes, pn)
			continue
		}
		k, outMeta, err := CompileNode(n, metas)
		if err != nil {
			return nil, err
		}
		pn.Outputs = outMeta[:len(n.Outputs)]
		if mc, ok := k.(MACCounter); ok {
			pn.MACs = mc.MACs()
		}
		p.Nodes = append(p.Nodes, pn)
		allKnown := true
		for _, m := range pn.Outputs {
			if m.Const == nil {
				allKnown = false
			}
		}
		if allKnown {
			// The op computed its outputs at compile time (Shape, for one).
			pn.Folded = true
			p.Nodes[len(p.Nodes)-1].Folded = true
			for i, name := range n.Outputs {
				if name != "" {
					add(name, &value{meta: pn.Outputs[i], buf: -1})
				}
			}
			continue
		}
		if w, ok := k.(WorkspaceUser); ok && w.WorkspaceSize() > wsSize {
			wsSize = w.WorkspaceSize()
		}
		st := pending{kernel: k, in: inIdx, node: len(p.Nodes) - 1}
		if a, ok := k.(Aliaser); ok && len(n.Outputs) == 1 {
			st.alias = true
			ai := a.AliasInput()
			if ai < 0 || ai >= len(inIdx) || inIdx[ai] < 0 {
				return nil, fmt.Errorf("%v: alias of a missing input", n)
			}
			src := vals[inIdx[ai]].meta
			if src.DType != outMeta[0].DType || NumElements(src.Shape) != NumElements(outMeta[0].Shape) {
				return nil, fmt.Errorf("%v: view output %v %v does not match input %v %v", n, outMeta[0].DType, outMeta[0].Shape, src.DType, src.Shape)
			}
		}
		for i, name := range n.Outputs {
			if name == "" {
				st.out = append(st.out, -1)
				continue
			}
			m := pn.Outputs[i]
			m.Const = nil
			st.out = append(st.out, add(name, &value{meta: m, buf: -1}))
		}
		steps = append(steps, st)
	}

	// Liveness: the last step reading each value; graph outputs are pinned.
	for _, v := range vals {
		v.lastUse = -1
	}
	for si, st := range steps {
		for _, vi := range st.in {
			if vi >= 0 {
				vals[vi].lastUse = si
			}
		}
	}
	for _, o := range g.Outputs {
		vi, ok := index[o.Name]
		if !ok {
			return nil, fmt.Errorf("graph output %q is not produced by any node, input or initializer", o.Name)
		}
		vals[vi].pinned = true
		p.outputs = append(p.outputs, outSlot{name: o.Name, idx: vi})
	}

	// Buffer assignment: best fit among free buffers of the same dtype.
	// An alias output shares its source's buffer.
	var bufs []*buffer
	var free []int
	release := func(vi int) {
		v := vals[vi]
		if v.buf < 0 || v.pinned || mode.keep {
			return
		}
		b := bufs[v.buf]
		b.refs--
		if b.refs == 0 {
			free = append(free, v.buf)
		}
	}
	pinBuf := map[int]bool{}
	for si, st := range steps {
		for oi, vi := range st.out {
			if vi < 0 {
				continue
			}
			v := vals[vi]
			if st.alias && oi == 0 {
				src := vals[st.in[st.kernel.(Aliaser).AliasInput()]]
				v.buf = src.buf
				if v.buf >= 0 {
					bufs[v.buf].refs++
					if v.pinned {
						pinBuf[v.buf] = true
					}
				}
				continue
			}
			need := NumElements(v.meta.Shape)
			best := -1
			if !v.pinned {
				for fi, bi := range free {
					b := bufs[bi]
					if b.dtype != v.meta.DType || b.size < need || pinBuf[bi] {
						continue
					}
					if best < 0 || b.size < bufs[free[best]].size {
						best = fi
					}
				}
			}
			if best >= 0 {
				v.buf = free[best]
				free = append(free[:best], free[best+1:]...)
			} else {
				v.buf = len(bufs)
				bufs = append(bufs, &buffer{dtype: v.meta.DType, size: need})
			}
			bufs[v.buf].refs = 1
			if v.pinned {
				pinBuf[v.buf] = true
			}
		}
		// Values read for the last time here, and outputs nobody reads, die.
		seen := map[int]bool{}
		for _, vi := range st.in {
			if vi >= 0 && vals[vi].lastUse == si && !seen[vi] {
				seen[vi] = true
				release(vi)
			}
		}
		for _, vi := range st.out {
			if vi >= 0 && vals[vi].lastUse < 0 {
				release(vi)
			}
		}
	}
	storage := make([]*Tensor, len(bufs))
	for i, b := range bufs {
		storage[i] = New(b.dtype, b.size)
	}
	p.vals = make([]*Tensor, len(vals))
	p.metas = make([]ValueMeta, len(vals))
	for vi, v := range vals {
		p.metas[vi] = v.meta
		switch {
		case v.meta.Const != nil:
			p.vals[vi] = v.meta.Const
		case v.fixed != nil:
			p.vals[vi] = v.fixed
			if p.params == nil {
				p.params = make([]bool, len(vals))
			}
			p.params[vi] = true
		case v.buf >= 0:
			p.vals[vi] = view(storage[v.buf], v.meta)
		default:
			// Graph input, or a view of one: filled at run time.
			p.vals[vi] = &Tensor{DType: v.meta.DType, Shape: append([]int{}, v.meta.Shape...)}
		}
	}
	p.workspace = make([]float32, wsSize)
	for _, st := range steps {
		s := step{node: st.node, kernel: st.kernel, alias: st.alias, in: st.in, out: st.out,
			inT: make([]*Tensor, len(st.in)), outT: make([]*Tensor, len(st.out))}
		for i, vi := range st.out {
			if vi >= 0 {
				s.outT[i] = p.vals[vi]
			} else {
				m := p.Nodes[st.node].Outputs[i]
				s.outT[i] = New(m.DType, m.Shape...) // unnamed output: scratch
			}
		}
		p.steps = append(p.steps, s)
	}
	return p, nil
}

// foldable reports whether a node with constant inputs may be computed at
// plan time: every op but a training-mode Dropout (whose mask changes from
// run to run) is a pure function of its inputs.
func foldable(n *Node) bool { return !(n.OpType == "Dropout" && n.Domain == "" && n.Input(2) != "") }

// view makes a tensor of meta's shape over the first elements of storage.
func view(storage *Tensor, m ValueMeta) *Tensor {
	n := NumElements(m.Shape)
	t := &Tensor{DType: m.DType, Shape: append([]int{}, m.Shape...)}
	switch m.DType {
	case Float32:
		t.F32 = storage.F32[:n]
	case Int8:
		t.I8 = storage.I8[:n]
	case Uint8:
		t.U8 = storage.U8[:n]
	case Int32:
		t.I32 = storage.I32[:n]
	case Int64:
		t.I64 = storage.I64[:n]
	case Bool:
		t.B = storage.B[:n]
	}
	return t
}

// shareData points dst's data slices at src's (same dtype and length).
func shareData(dst, src *Tensor) {
	dst.F32, dst.I8, dst.U8, dst.I32, dst.I64, dst.B = src.F32, src.I8, src.U8, src.I32, src.I64, src.B
}

// release drops the plan's activation buffers and workspace, keeping its
// metadata (Nodes) for inspection, when a chunked execution (splitPlan)
// replaces it. The plan must not run afterwards.
func (p *Plan) release() {
	empty := &Tensor{}
	for vi, t := range p.vals {
		if p.metas[vi].Const == nil && t != nil && (p.params == nil || !p.params[vi]) {
			shareData(t, empty)
		}
	}
	for _, st := range p.steps {
		for _, t := range st.outT {
			if t != nil {
				shareData(t, empty)
			}
		}
	}
	p.workspace = nil
	p.released = true
}

// matches reports whether inputs are exactly the plan's inputs with the
// shapes it was compiled for (dtypes and data are checked by run).
func (p *Plan) matches(inputs map[string]*Tensor) bool {
	if len(inputs) != len(p.inputs) {
		return false
	}
	for name, vi := range p.inputs {
		t := inputs[name]
		if t == nil || !SameShape(t.Shape, p.vals[vi].Shape) {
			return false
		}
	}
	return true
}

func (p *Plan) run(ctx context.Context, inputs map[string]*Tensor) (map[string]*Tensor, error) {
	out, err := p.runNoCopy(ctx, inputs, 0)
	if err != nil {
		return nil, err
	}
	for name, t := range out {
		out[name] = t.Clone()
	}
	return out, nil
}

// runNoCopy runs the plan and returns its own output tensors. seed is
// passed to kernels (ExecContext.Seed) for training-mode randomness.
func (p *Plan) runNoCopy(ctx context.Context, inputs map[string]*Tensor, seed uint64) (map[string]*Tensor, error) {
	if p.released {
		return nil, fmt.Errorf("internal error: the plan's buffers were released (it runs in batch chunks)")
	}
	for name, vi := range p.inputs {
		t, ok := inputs[name]
		if !ok {
			return nil, fmt.Errorf("missing input %q", name)
		}
		want := p.vals[vi]
		if t.DType != want.DType {
			return nil, fmt.Errorf("input %q: expected %v, got %v", name, want.DType, t.DType)
		}
		if t.Len() != NumElements(want.Shape) || !SameShape(t.Shape, want.Shape) {
			return nil, fmt.Errorf("input %q: expected shape %v, got %v", name, want.Shape, t.Shape)
		}
		if err := checkData(t); err != nil {
			return nil, fmt.Errorf("input %q: %w", name, err)
		}
		shareData(want, t)
	}
	ec := &ExecContext{Ctx: ctx, Threads: p.threads, Workspace: p.workspace, Seed: seed}
	for si := range p.steps {
		st := &p.steps[si]
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		for i, vi := range st.in {
			if vi >= 0 {
				st.inT[i] = p.vals[vi]
			} else {
				st.inT[i] = nil
			}
		}
		if st.alias {
			shareData(st.outT[0], st.inT[st.kernel.(Aliaser).AliasInput()])
			continue
		}
		if err := st.kernel.Run(ec, st.inT, st.outT); err != nil {
			return nil, fmt.Errorf("%v: %w", p.Nodes[st.node].Node, err)
		}
	}
	out := make(map[string]*Tensor, len(p.outputs))
	for _, o := range p.outputs {
		out[o.name] = p.vals[o.idx]
	}
	return out, nil
}

// checkData verifies that a tensor's data slice matches its shape.
func checkData(t *Tensor) error {
	n := t.Len()
	var have int
	switch t.DType {
	case Float32:
		have = len(t.F32)
	case Int8:
		have = len(t.I8)
	case Uint8:
		have = len(t.U8)
	case Int32:
		have = len(t.I32)
	case Int64:
		have = len(t.I64)
	case Bool:
		have = len(t.B)
	default:
		return fmt.Errorf("unsupported dtype %v", t.DType)
	}
	if have != n {
		return fmt.Errorf("shape %v needs %d values, the tensor holds %d", t.Shape, n, have)
	}
	return nil
}
