package runtime

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
)

// Batch splitting: a convolutional network run on a large batch goes layer
// by layer over the whole batch, so every activation tensor (megabytes)
// lives in the L3 cache or memory. When every op of the graph computes each
// sample independently, the executor instead runs the batch in chunks of a
// few samples through a plan compiled for the chunk size, so that a chunk's
// activations stay in the per-core L2 cache; with several threads each
// worker runs whole chunks on its own plan (single-threaded kernels, no
// per-op synchronisation), taking the next chunk when it is done. A chunk's
// outputs depend only on its samples and the plan, never on the worker or
// the order, so results stay deterministic.

// splitCacheBudget is the per-sample activation footprint budget of a
// chunk, in bytes (half of a 1 MiB L2 cache).
const splitCacheBudget = 512 << 10

// splitWeightBudget bounds the constant operands (weights) of a graph run
// in chunks: every chunk reads all of them again, which only pays while
// they stay in the caches.
const splitWeightBudget = 4 << 20

// splitPlan is the chunked execution of one full-batch plan.
type splitPlan struct {
	batch, chunk, chunks int
	workers              []*Plan // one chunk plan per worker
	tail                 *Plan   // plan for the last chunk when it is smaller (nil otherwise)
	tailSize             int
	outShapes            map[string][]int
	outTypes             map[string]DType
}

// splitFor returns the chunked execution of full-batch plan p (compiled for
// shapes), or nil when p should run as it is: no static inputs, a batch
// dimension shared by every input and output, a footprint per sample that
// makes chunks useful, and every op computing samples independently.
func (e *Executor) splitFor(p *Plan, shapes map[string][]int) *splitPlan {
	if e.noSplit {
		return nil
	}
	if sp, ok := e.splits[p]; ok {
		return sp
	}
	sp := e.makeSplit(p, shapes)
	if e.splits == nil {
		e.splits = map[*Plan]*splitPlan{}
	}
	e.splits[p] = sp
	return sp
}

func (e *Executor) makeSplit(p *Plan, shapes map[string][]int) *splitPlan {
	n := -1
	for name := range p.inputs {
		s := shapes[name]
		if len(s) == 0 || (n >= 0 && s[0] != n) {
			return nil
		}
		n = s[0]
	}
	if n < 2 {
		return nil
	}
	foot, weights := p.sampleFootprint(n)
	if foot <= 0 || weights > splitWeightBudget {
		return nil
	}
	// Split only when a chunk that fits the cache is smaller than the batch;
	// then leave at least one chunk per worker.
	chunk := max(1, splitCacheBudget/foot)
	threads := max(e.threads, 1)
	if chunk < n {
		chunk = min(chunk, max(1, n/threads))
	}
	if e.splitChunk > 0 {
		chunk = e.splitChunk
	}
	if chunk >= n {
		return nil
	}
	chunks := (n + chunk - 1) / chunk
	chunk = (n + chunks - 1) / chunks // balance the chunks
	chunks = (n + chunk - 1) / chunk
	compile := func(size int) *Plan {
		cs := make(map[string][]int, len(shapes))
		for name, s := range shapes {
			c := append([]int{}, s...)
			c[0] = size
			cs[name] = c
		}
		cp, err := compilePlan(e.g, cs, 1, planMode{})
		if err != nil {
			return nil
		}
		return cp
	}
	first := compile(chunk)
	if first == nil || !batchSeparable(e.g, p, first, n, chunk) {
		return nil
	}
	sp := &splitPlan{batch: n, chunk: chunk, chunks: chunks, workers: []*Plan{first},
		outShapes: map[string][]int{}, outTypes: map[string]DType{}}
	for _, o := range p.outputs {
		sp.outShapes[o.name] = p.metas[o.idx].Shape
		sp.outTypes[o.name] = p.metas[o.idx].DType
	}
	for w := 1; w < min(threads, chunks); w++ {
		cp := compile(chunk)
		if cp == nil {
			return nil
		}
		sp.workers = append(sp.workers, cp)
	}
	if t := n - (chunks-1)*chunk; t != chunk {
		sp.tailSize = t
		if sp.tail = compile(t); sp.tail == nil || !batchSeparable(e.g, p, sp.tail, n, t) {
			return nil
		}
	}
	// The chunks replace the full-batch plan: free its buffers.
	p.release()
	return sp
}

// sampleFootprint estimates the bytes one sample touches in the busiest
// step of a full-batch plan over n samples (the largest sum of its
// non-constant inputs and outputs, divided by n), and the bytes of the
// constants the steps read.
func (p *Plan) sampleFootprint(n int) (perSample, weights int) {
	seen := map[int]bool{}
	for _, st := range p.steps {
		bytes := 0
		for _, vi := range append(append([]int{}, st.in...), st.out...) {
			if vi < 0 {
				continue
			}
			size := NumElements(p.metas[vi].Shape) * p.metas[vi].DType.Size()
			if p.metas[vi].Const != nil {
				if !seen[vi] {
					seen[vi] = true
					weights += size
				}
				continue
			}
			bytes += size
		}
		perSample = max(perSample, bytes)
	}
	return perSample / n, weights
}

// run executes the chunks and assembles full-batch outputs.
func (sp *splitPlan) run(ctx context.Context, inputs map[string]*Tensor) (map[string]*Tensor, error) {
	for name, t := range inputs {
		if err := checkData(t); err != nil {
			return nil, fmt.Errorf("input %q: %w", name, err)
		}
	}
	out := make(map[string]*Tensor, len(sp.outShapes))
	for name, s := range sp.outShapes {
		out[name] = New(sp.outTypes[name], s...)
	}
	var next atomic.Int64
	var mu sync.Mutex
	var firstErr error
	work := func(p *Plan) {
		for {
			c := int(next.Add(1)) - 1
			if c >= sp.chunks {
				return
			}
			plan, lo, size := p, c*sp.chunk, sp.chunk
			if c == sp.chunks-1 && sp.tail != nil {
				plan, size = sp.tail, sp.tailSize
			}
			if err := sp.runChunk(ctx, plan, inputs, out, lo, size); err != nil {
				mu.Lock()
				if firstErr == nil {
					firstErr = err
				}
				mu.Unlock()
				next.Store(int64(sp.chunks))
				return
			}
		}
	}
	var wg sync.WaitGroup
	for _, p := range sp.workers[1:] {
		wg.Add(1)
		go func() {
			defer wg.Done()
			work(p)
		}()
	}
	work(sp.workers[0])
	wg.Wait()
	if firstErr != nil {
		return nil, firstErr
	}
	return out, nil
}

// runChunk runs samples [lo, lo+size) through plan and copies its outputs
// into the full-batch tensors of out.
func (sp *splitPlan) runChunk(ctx context.Context, plan *Plan, inputs, out map[string]*Tensor, lo, size int) error {
	views := make(map[string]*Tensor, len(inputs))
	for name, t := range inputs {
		views[name] = batchSlice(t, sp.batch, lo, size)
	}
	res, err := plan.runNoCopy(ctx, views, 0)
	if err != nil {
		return err
	}
	for name, t := range res {
		copyBatchSlice(out[name], t, sp.batch, lo)
	}
	return nil
}

// batchSlice returns samples [lo, lo+size) of t (batch n along dimension 0)
// as a tensor sharing t's data.
func batchSlice(t *Tensor, n, lo, size int) *Tensor {
	per := t.Len() / n
	v := &Tensor{DType: t.DType, Shape: append([]int{size}, t.Shape[1:]...)}
	a, b := lo*per, (lo+size)*per
	switch t.DType {
	case Float32:
		v.F32 = t.F32[a:b]
	case Int8:
		v.I8 = t.I8[a:b]
	case Uint8:
		v.U8 = t.U8[a:b]
	case Int32:
		v.I32 = t.I32[a:b]
	case Int64:
		v.I64 = t.I64[a:b]
	case Bool:
		v.B = t.B[a:b]
	}
	return v
}

// copyBatchSlice copies chunk c (its samples) into dst (batch n) at sample lo.
func copyBatchSlice(dst, c *Tensor, n, lo int) {
	per := dst.Len() / n
	a := lo * per
	switch dst.DType {
	case Float32:
		copy(dst.F32[a:], c.F32)
	case Int8:
		copy(dst.I8[a:], c.I8)
	case Uint8:
		copy(dst.U8[a:], c.U8)
	case Int32:
		copy(dst.I32[a:], c.I32)
	case Int64:
		copy(dst.I64[a:], c.I64)
	case Bool:
		copy(dst.B[a:], c.B)
	}
}

// batchSeparable reports whether running g on chunks of b samples (plan pb)
// computes the same as running it on all n samples (plan pn): every graph
// input and output and every computed value carries the batch along
// dimension 0, every op that runs treats samples independently (a
// conservative list of ops and attributes), and constants folded from the
// input shapes (Shape and what is computed from it) only decide shapes.
func batchSeparable(g *Graph, pn, pb *Plan, n, b int) bool {
	if len(pn.Nodes) != len(pb.Nodes) {
		return false
	}
	carries := func(name string) bool {
		vn, ok1 := pn.index[name]
		vb, ok2 := pb.index[name]
		if !ok1 || !ok2 {
			return false
		}
		return batchCarrying(pn.metas[vn], pb.metas[vb], n, b)
	}
	isConst := func(name string) bool {
		vn, ok1 := pn.index[name]
		vb, ok2 := pb.index[name]
		return ok1 && ok2 && pn.metas[vn].Const != nil && pb.metas[vb].Const != nil
	}
	for name := range pn.inputs {
		if !carries(name) {
			return false
		}
	}
	for _, o := range pn.outputs {
		if !carries(o.name) {
			return false
		}
	}
	// Constants that differ between the plans (computed from the batch
	// size) may only reach shape-deciding inputs.
	shapeOnly := map[string]bool{}
	for i, pnode := range pn.Nodes {
		n0 := pnode.Node
		if pnode.Folded != pb.Nodes[i].Folded {
			return false
		}
		if pnode.Folded {
			for j, name := range n0.Outputs {
				if name == "" {
					continue
				}
				if !sameTensor(pnode.Outputs[j].Const, pb.Nodes[i].Outputs[j].Const) {
					shapeOnly[name] = true
				}
			}
			continue
		}
		spec, _ := LookupOp(n0.Domain, n0.OpType)
		static := map[int]bool{}
		for _, s := range spec.StaticInputs {
			static[s] = true
		}
		for j, name := range n0.Inputs {
			if name != "" && shapeOnly[name] && !static[j] {
				return false
			}
		}
		for _, name := range n0.Outputs {
			if name != "" && !carries(name) {
				return false
			}
		}
		if !perSampleOp(n0, pn, carries, isConst) {
			return false
		}
	}
	return true
}

// batchCarrying reports whether a value has the batch as dimension 0 in
// both plans (n and b samples) and the same other dimensions, and is
// computed at run time.
func batchCarrying(mn, mb ValueMeta, n, b int) bool {
	if mn.Const != nil || mb.Const != nil || len(mn.Shape) == 0 || len(mn.Shape) != len(mb.Shape) {
		return false
	}
	if mn.Shape[0] != n || mb.Shape[0] != b {
		return false
	}
	for i := 1; i < len(mn.Shape); i++ {
		if mn.Shape[i] != mb.Shape[i] {
			return false
		}
	}
	return true
}

// sameTensor reports whether two constants are equal (shape and values).
func sameTensor(a, b *Tensor) bool {
	if a == nil || b == nil {
		return a == b
	}
	if a.DType != b.DType || !SameShape(a.Shape, b.Shape) {
		return false
	}
	switch a.DType {
	case Float32:
		return equalSlices(a.F32, b.F32)
	case Int8:
		return equalSlices(a.I8, b.I8)
	case Uint8:
		return equalSlices(a.U8, b.U8)
	case Int32:
		return equalSlices(a.I32, b.I32)
	case Int64:
		return equalSlices(a.I64, b.I64)
	case Bool:
		return equalSlices(a.B, b.B)
	}
	return false
}

func equalSlices[T comparable](a, b []T) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// Ops that map each element (or each sample's elements) to the same
// position: every computed input carries the batch with the output's rank.
var perSampleElementwise = map[string]bool{
	"Relu": true, "LeakyRelu": true, "Sigmoid": true, "Tanh": true, "Exp": true, "Log": true, "Abs": true,
	"Neg": true, "Sqrt": true, "Reciprocal": true, "Erf": true, "Elu": true, "Selu": true, "HardSigmoid": true,
	"HardSwish": true, "Softplus": true, "Softsign": true, "Floor": true, "Ceil": true, "Round": true,
	"Sign": true, "Not": true, "Identity": true, "Cast": true, "Clip": true, "Mish": true, "Gelu": true,
	"Sin": true, "Cos": true, "IsNaN": true, "IsInf": true,
	"Add": true, "Sub": true, "Mul": true, "Div": true, "Pow": true, "Mod": true, "PRelu": true,
	"Equal": true, "Greater": true, "Less": true, "GreaterOrEqual": true, "LessOrEqual": true,
	"And": true, "Or": true, "Xor": true, "Where": true, "Min": true, "Max": true, "Sum": true, "Mean": true,
}

// perSampleOp reports whether node n (compiled in the full-batch plan pn)
// computes each sample of its batch-carrying inputs independently.
func perSampleOp(n *Node, pn *Plan, carries, isConst func(string) bool) bool {
	meta := func(name string) ValueMeta { return pn.metas[pn.index[name]] }
	rank := len(meta(n.Outputs[0]).Shape)
	// Every input is a constant or a batch-carrying value.
	inputsOK := func(sameRank bool) bool {
		for _, name := range n.Inputs {
			if name == "" || isConst(name) {
				continue
			}
			if !carries(name) || sameRank && len(meta(name).Shape) != rank {
				return false
			}
		}
		return true
	}
	axis := func(name string, def int64, r int) int {
		a := int(n.AttrInt(name, def))
		if a < 0 {
			a += r
		}
		return a
	}
	constInts := func(i int) ([]int64, bool) {
		name := n.Input(i)
		if name == "" {
			return nil, true
		}
		if !isConst(name) {
			return nil, false
		}
		v, err := meta(name).Const.Int64s()
		return v, err == nil
	}
	if n.Domain == FusedDomain {
		switch n.OpType {
		case "FusedConv", "QConv", "QConvAdd":
			return inputsOK(true)
		case "QGemm":
			// Rows are samples; every other input is a constant.
			if n.AttrInt("transA", 0) != 0 || !carries(n.Input(0)) || len(meta(n.Input(0)).Shape) != 2 {
				return false
			}
			for _, name := range n.Inputs[1:] {
				if name != "" && !isConst(name) {
					return false
				}
			}
			return true
		}
		return false
	}
	if n.OpType == "QuantizeLinear" || n.OpType == "DequantizeLinear" {
		// Constant per-tensor parameters, or per channel on an axis other
		// than the batch.
		if n.Domain != "" && n.Domain != "ai.onnx" || !carries(n.Input(0)) || !isConst(n.Input(1)) || n.Input(2) != "" && !isConst(n.Input(2)) {
			return false
		}
		if meta(n.Input(1)).Const.Len() == 1 {
			return true
		}
		return axis("axis", 1, len(meta(n.Input(0)).Shape)) != 0
	}
	if n.Domain != "" && n.Domain != "ai.onnx" {
		return false
	}
	if perSampleElementwise[n.OpType] {
		return len(n.Outputs) == 1 && inputsOK(true)
	}
	switch n.OpType {
	case "Conv", "ConvTranspose", "AveragePool", "GlobalAveragePool", "GlobalMaxPool", "InstanceNormalization", "LRN":
		return len(n.Outputs) == 1 && inputsOK(true)
	case "MaxPool":
		// The Indices output holds flat positions in the whole batch.
		return (len(n.Outputs) == 1 || n.Outputs[1] == "") && inputsOK(true)
	case "BatchNormalization":
		return n.AttrInt("training_mode", 0) == 0 && len(n.Outputs) == 1 && inputsOK(true)
	case "Dropout":
		return n.Input(2) == "" && (len(n.Outputs) == 1 || n.Outputs[1] == "") && inputsOK(true)
	case "Softmax", "LogSoftmax", "Hardmax":
		return axis("axis", -1, rank) != 0 && inputsOK(true)
	case "LayerNormalization":
		return axis("axis", -1, rank) != 0 && len(n.Outputs) == 1 && inputsOK(true)
	case "Flatten":
		return axis("axis", 1, len(meta(n.Input(0)).Shape)) >= 1 && inputsOK(false)
	case "Reshape", "Squeeze", "Unsqueeze", "Expand":
		// The output carries the batch (checked by the caller) and the data
		// keeps its row-major order: each sample stays one contiguous block.
		return n.Input(0) != "" && carries(n.Input(0)) && inputsOK(false)
	case "Transpose":
		perm := n.AttrInts("perm", nil)
		return len(perm) > 0 && perm[0] == 0 && inputsOK(true)
	case "Concat":
		return axis("axis", 0, rank) != 0 && inputsOK(true)
	case "Split":
		return axis("axis", 0, rank) != 0 && inputsOK(true)
	case "Slice", "Pad":
		axes, ok := constInts(3)
		if !ok {
			return false
		}
		if n.OpType == "Pad" {
			pads, ok := constInts(1)
			if !ok || pads == nil {
				return false
			}
			if axes == nil {
				return pads[0] == 0 && pads[len(pads)/2] == 0 && inputsOK(true)
			}
			for i, a := range axes {
				if (int(a)+rank)%rank == 0 && (pads[i] != 0 || pads[len(axes)+i] != 0) {
					return false
				}
			}
			return inputsOK(true)
		}
		if axes == nil {
			return false // every axis, the batch included
		}
		for _, a := range axes {
			if (int(a)+rank)%rank == 0 {
				return false
			}
		}
		return inputsOK(true)
	case "Gather":
		return axis("axis", 0, len(meta(n.Input(0)).Shape)) != 0 && isConst(n.Input(1)) && carries(n.Input(0))
	case "ReduceMean", "ReduceSum", "ReduceMax", "ReduceMin", "ReduceProd", "ReduceL2", "ReduceL1", "ReduceSumSquare", "ReduceLogSumExp":
		axes, ok := constInts(1)
		in := len(meta(n.Input(0)).Shape)
		if !ok || len(axes) == 0 || !carries(n.Input(0)) {
			return false
		}
		for _, a := range axes {
			if (int(a)+in)%in == 0 {
				return false
			}
		}
		return true
	case "Gemm":
		return n.AttrInt("transA", 0) == 0 && carries(n.Input(0)) && isConst(n.Input(1)) &&
			(n.Input(2) == "" || isConst(n.Input(2)))
	case "MatMul":
		return carries(n.Input(0)) && isConst(n.Input(1)) && len(meta(n.Input(0)).Shape) >= 2
	}
	return false
}

// runPlanned runs inputs through p, chunked when that is possible.
func (e *Executor) runPlanned(ctx context.Context, p *Plan, shapes map[string][]int, inputs map[string]*Tensor) (map[string]*Tensor, error) {
	if sp := e.splitFor(p, shapes); sp != nil {
		return sp.run(ctx, inputs)
	}
	return p.run(ctx, inputs)
}
