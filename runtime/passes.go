package runtime

import (
	"context"
	"fmt"
	"math"
)

// Optimize rewrites g in place for inference: constant folding, BatchNorm
// folding into a preceding Conv or Gemm, bias and activation fusion into
// Conv and Gemm, dead-code removal, and last SparsifyWeights in its
// automatic mode, so that Conv, Gemm and MatMul layers whose weights are
// mostly zeros (after unstructured pruning) run on the sparse kernels
// where these are faster for their shape. Trainable parameters are treated
// as constants too, so run it on a copy of a graph that is being trained.
//
// Activation fusion sets the attributes "activation" (the op type, e.g.
// "Relu"), and for some activations "activation_alpha", "activation_beta"
// on the Conv or Gemm node, and sparse layers become ops of SparseDomain;
// such nodes are for the executor only and are not valid ONNX. Use
// FoldConstants, FoldBatchNorm and RemoveDeadCode alone for graphs that
// are exported.
func Optimize(g *Graph) error { return optimize(g, Options{}) }

// optimize is Optimize with the sparse-kernel choice of opts: none with
// NoSparse, else SparsifyWeights(g, opts.SparseThreshold).
func optimize(g *Graph, opts Options) error {
	FuseQDQ(g) // before FoldConstants, which would fold the weights' DequantizeLinear
	if err := FoldConstants(g); err != nil {
		return err
	}
	FoldBatchNorm(g)
	FuseBias(g)
	FuseActivations(g)
	RemoveDeadCode(g)
	if !opts.NoSparse {
		SparsifyWeights(g, opts.SparseThreshold) // after BatchNorm folding: the weights are final
	}
	return nil
}

// FoldConstants replaces every node whose inputs are all parameters (and
// every Constant node) by parameters holding its outputs.
func FoldConstants(g *Graph) error {
	kept := g.Nodes[:0]
	for _, n := range g.Nodes {
		ins := make([]*Tensor, len(n.Inputs))
		allConst := true
		for i, name := range n.Inputs {
			if name == "" {
				continue
			}
			p, ok := g.Params[name]
			if !ok {
				allConst = false
				break
			}
			ins[i] = p.T
		}
		if !allConst || len(n.Inputs) == 0 && n.OpType != "Constant" {
			kept = append(kept, n)
			continue
		}
		outs, err := EvalNode(context.Background(), n, ins, 1)
		if err != nil {
			return fmt.Errorf("folding constants: %w", err)
		}
		for i, name := range n.Outputs {
			if name != "" {
				g.AddParam(name, outs[i].Clone(), false)
			}
		}
	}
	g.Nodes = kept
	return nil
}

// singleConsumer returns the only node reading value name, or nil when
// there are several, none, or name is a graph output.
func singleConsumer(g *Graph, cons map[string][]*Node, name string) *Node {
	for _, o := range g.Outputs {
		if o.Name == name {
			return nil
		}
	}
	if c := cons[name]; len(c) == 1 {
		return c[0]
	}
	return nil
}

func constParam(g *Graph, name string) *Tensor {
	if p, ok := g.Params[name]; ok && p.T.DType == Float32 {
		return p.T
	}
	return nil
}

// FoldBatchNorm folds an inference BatchNormalization into the Conv or Gemm
// that feeds it alone, when all the parameters involved are constants. The
// BatchNormalization node disappears; new weight and bias parameters are
// added under fresh names.
func FoldBatchNorm(g *Graph) {
	cons := g.Consumers()
	removed := map[*Node]bool{}
	for _, n := range g.Nodes {
		if n.OpType != "Conv" && n.OpType != "Gemm" || n.Domain != "" || len(n.Outputs) != 1 {
			continue
		}
		bn := singleConsumer(g, cons, n.Outputs[0])
		if bn == nil || bn.OpType != "BatchNormalization" || bn.AttrInt("training_mode", 0) != 0 || len(bn.Outputs) != 1 || len(bn.Inputs) < 5 || bn.Input(0) != n.Outputs[0] {
			continue
		}
		w := constParam(g, n.Input(1))
		scale, shift, mean, vr := constParam(g, bn.Inputs[1]), constParam(g, bn.Inputs[2]), constParam(g, bn.Inputs[3]), constParam(g, bn.Inputs[4])
		if w == nil || scale == nil || shift == nil || mean == nil || vr == nil {
			continue
		}
		var outC, inner int
		if n.OpType == "Conv" {
			outC = w.Shape[0]
			inner = w.Len() / outC
		} else {
			// Gemm: Y = A*op(B) + C; only fold when C (if any) is a 1-D
			// vector and there is no alpha/beta scaling oddity.
			if n.AttrInt("transA", 0) != 0 || w.Rank() != 2 {
				continue
			}
			if n.AttrInt("transB", 0) != 0 {
				outC = w.Shape[0]
			} else {
				outC = w.Shape[1]
			}
			inner = w.Len() / outC
		}
		if scale.Len() != outC || shift.Len() != outC || mean.Len() != outC || vr.Len() != outC {
			continue
		}
		var bias *Tensor
		if b := n.Input(2); b != "" {
			bias = constParam(g, b)
			if bias == nil || bias.Len() != outC || (n.OpType == "Gemm" && bias.Rank() != 1) {
				continue
			}
		}
		if n.OpType == "Gemm" && (n.AttrFloat("alpha", 1) != 1 || n.AttrFloat("beta", 1) != 1) {
			continue
		}
		eps := float64(bn.AttrFloat("epsilon", 1e-5))
		nw := w.Clone()
		nb := New(Float32, outC)
		for c := 0; c < outC; c++ {
			s := float64(scale.F32[c]) / math.Sqrt(float64(vr.F32[c])+eps)
			b0 := 0.0
			if bias != nil {
				b0 = float64(bias.F32[c])
			}
			nb.F32[c] = float32((b0-float64(mean.F32[c]))*s + float64(shift.F32[c]))
			switch {
			case n.OpType == "Conv":
				for i := c * inner; i < (c+1)*inner; i++ {
					nw.F32[i] = float32(float64(w.F32[i]) * s)
				}
			case n.AttrInt("transB", 0) != 0:
				for i := c * inner; i < (c+1)*inner; i++ {
					nw.F32[i] = float32(float64(w.F32[i]) * s)
				}
			default: // B is [K, N]: scale column c
				for r := 0; r < inner; r++ {
					nw.F32[r*outC+c] = float32(float64(w.F32[r*outC+c]) * s)
				}
			}
		}
		wName := uniqueName(g, n.Name+"_bnfolded_W")
		bName := uniqueName(g, n.Name+"_bnfolded_B")
		g.AddParam(wName, nw, false)
		g.AddParam(bName, nb, false)
		for len(n.Inputs) < 3 {
			n.Inputs = append(n.Inputs, "")
		}
		n.Inputs[1], n.Inputs[2] = wName, bName
		n.Outputs[0] = bn.Outputs[0]
		removed[bn] = true
	}
	dropNodes(g, removed)
}

// FuseBias folds an Add of a constant per-channel vector into the bias-less
// Conv that feeds it alone. CNTK and some
// other exporters emit the bias as a separate Add.
func FuseBias(g *Graph) {
	cons := g.Consumers()
	removed := map[*Node]bool{}
	for _, n := range g.Nodes {
		if n.OpType != "Conv" || n.Domain != "" || len(n.Outputs) != 1 || n.Input(2) != "" {
			continue
		}
		w := constParam(g, n.Input(1))
		add := singleConsumer(g, cons, n.Outputs[0])
		if w == nil || add == nil || add.OpType != "Add" || len(add.Inputs) != 2 {
			continue
		}
		other := add.Inputs[1]
		if add.Inputs[1] == n.Outputs[0] {
			other = add.Inputs[0]
		}
		b := constParam(g, other)
		outC := w.Shape[0]
		if b == nil || b.Len() != outC || !isChannelVector(b.Shape, w.Rank()) {
			continue
		}
		bName := uniqueName(g, n.Name+"_bias")
		g.AddParam(bName, b.Reshaped(outC).Clone(), false)
		for len(n.Inputs) < 3 {
			n.Inputs = append(n.Inputs, "")
		}
		n.Inputs[2] = bName
		n.Outputs[0] = add.Outputs[0]
		removed[add] = true
	}
	dropNodes(g, removed)
}

// isChannelVector reports whether a constant of this shape, added to the
// output of a convolution of the given rank (N, C, spatial...), is a
// per-channel vector: [C,1,...,1] (rank-1 dims) or [1,C,1,...,1].
func isChannelVector(shape []int, rank int) bool {
	if len(shape) == rank {
		if shape[0] != 1 {
			return false
		}
		shape = shape[1:]
	}
	if len(shape) != rank-1 {
		return false
	}
	for _, d := range shape[1:] {
		if d != 1 {
			return false
		}
	}
	return true
}

// FuseActivations marks Conv and Gemm nodes whose only consumer is an
// activation (Relu, LeakyRelu, Sigmoid, Tanh, HardSigmoid, HardSwish, or Clip with
// constant bounds) with the activation attributes and removes the
// activation node.
func FuseActivations(g *Graph) {
	cons := g.Consumers()
	removed := map[*Node]bool{}
	for _, n := range g.Nodes {
		fusedConv := n.OpType == "FusedConv" && n.Domain == FusedDomain
		if (n.OpType != "Conv" && n.OpType != "Gemm" || n.Domain != "") && !fusedConv || len(n.Outputs) != 1 {
			continue
		}
		if _, done := n.Attrs["activation"]; done {
			continue
		}
		act := singleConsumer(g, cons, n.Outputs[0])
		if act == nil || act.Domain != "" || act.Input(0) != n.Outputs[0] || len(act.Outputs) != 1 {
			continue
		}
		switch act.OpType {
		case "Relu", "Sigmoid", "Tanh", "HardSwish":
		case "LeakyRelu":
			n.SetAttr("activation_alpha", Attr{Kind: AttrFloat, F: act.AttrFloat("alpha", 0.01)})
		case "HardSigmoid":
			n.SetAttr("activation_alpha", Attr{Kind: AttrFloat, F: act.AttrFloat("alpha", 0.2)})
			n.SetAttr("activation_beta", Attr{Kind: AttrFloat, F: act.AttrFloat("beta", 0.5)})
		case "Clip":
			lo, hi := float32(math.Inf(-1)), float32(math.Inf(1))
			if name := act.Input(1); name != "" {
				t := constParam(g, name)
				if t == nil || t.Len() != 1 {
					continue
				}
				lo = t.F32[0]
			}
			if name := act.Input(2); name != "" {
				t := constParam(g, name)
				if t == nil || t.Len() != 1 {
					continue
				}
				hi = t.F32[0]
			}
			n.SetAttr("activation_alpha", Attr{Kind: AttrFloat, F: lo})
			n.SetAttr("activation_beta", Attr{Kind: AttrFloat, F: hi})
		default:
			continue
		}
		n.SetAttr("activation", Attr{Kind: AttrString, S: act.OpType})
		n.Outputs[0] = act.Outputs[0]
		removed[act] = true
	}
	dropNodes(g, removed)
}

// FuseConvResidual merges a Conv (without a fused activation) whose output
// only feeds an Add, whose other input is computed before the Conv (the
// residual connection of a ResNet block), into one FusedConv node (domain
// FusedDomain) at the Conv's place: Y = Conv(X, W, B) + Z. Run
// FuseActivations after it to fold a following ReLU in as well. The
// direct convolution kernel then adds Z while the output tile is in
// registers, which saves a pass over the output. FusedConv is for the
// executor only (the graph is no longer valid ONNX); NewExecutor runs this
// pass after Optimize.
func FuseConvResidual(g *Graph) {
	cons := g.Consumers()
	pos := map[string]int{} // value -> index of the node producing it
	for i, n := range g.Nodes {
		for _, o := range n.Outputs {
			if o != "" {
				pos[o] = i
			}
		}
	}
	removed := map[*Node]bool{}
	for _, add := range g.Nodes {
		if add.OpType != "Add" || add.Domain != "" || len(add.Inputs) != 2 || len(add.Outputs) != 1 || add.Outputs[0] == "" {
			continue
		}
		for side := 0; side < 2; side++ {
			y, z := add.Inputs[side], add.Inputs[1-side]
			ci, ok := pos[y]
			if !ok || y == z || z == "" {
				continue
			}
			conv := g.Nodes[ci]
			if conv.OpType != "Conv" || conv.Domain != "" || removed[conv] || len(conv.Outputs) != 1 || singleConsumer(g, cons, y) != add {
				continue
			}
			if _, hasAct := conv.Attrs["activation"]; hasAct {
				continue
			}
			if zi, ok := pos[z]; ok && zi >= ci {
				continue // Z is not ready where the Conv runs
			}
			ins := []string{conv.Input(0), conv.Input(1), conv.Input(2), z}
			attrs := make(map[string]Attr, len(conv.Attrs))
			for k, v := range conv.Attrs {
				attrs[k] = v
			}
			g.Nodes[ci] = &Node{Name: conv.Name, OpType: "FusedConv", Domain: FusedDomain, Inputs: ins,
				Outputs: []string{add.Outputs[0]}, Attrs: attrs}
			removed[add] = true
			break
		}
	}
	dropNodes(g, removed)
}

// RemoveDeadCode drops nodes none of whose outputs reach a graph output, and
// parameters no node reads and no graph output names.
func RemoveDeadCode(g *Graph) {
	live := map[string]bool{}
	for _, o := range g.Outputs {
		live[o.Name] = true
	}
	keep := make([]bool, len(g.Nodes))
	for i := len(g.Nodes) - 1; i >= 0; i-- {
		n := g.Nodes[i]
		for _, o := range n.Outputs {
			if live[o] {
				keep[i] = true
				break
			}
		}
		if keep[i] {
			for _, in := range n.Inputs {
				live[in] = true
			}
		}
	}
	kept := g.Nodes[:0]
	for i, n := range g.Nodes {
		if keep[i] {
			kept = append(kept, n)
		}
	}
	g.Nodes = kept
	for name := range g.Params {
		if !live[name] && !g.isInputName(name) {
			delete(g.Params, name)
		}
	}
}

func (g *Graph) isInputName(name string) bool {
	for _, in := range g.Inputs {
		if in.Name == name {
			return true
		}
	}
	return false
}

func dropNodes(g *Graph, removed map[*Node]bool) {
	if len(removed) == 0 {
		return
	}
	kept := g.Nodes[:0]
	for _, n := range g.Nodes {
		if !removed[n] {
			kept = append(kept, n)
		}
	}
	g.Nodes = kept
}

// uniqueName returns base, or base with a numeric suffix, unused by any
// parameter or node output of g.
func uniqueName(g *Graph, base string) string {
	used := func(s string) bool {
		if _, ok := g.Params[s]; ok {
			return true
		}
		for _, n := range g.Nodes {
			for _, o := range n.Outputs {
				if o == s {
					return true
				}
			}
		}
		return false
	}
	name := base
	for i := 1; used(name); i++ {
		name = fmt.Sprintf("%s_%d", base, i)
	}
	return name
}

// MakeBatchDynamic turns a model exported for one fixed batch size into one
// that takes any batch: the first dimension of every graph input and output
// becomes dynamic, and every Reshape whose constant target shape starts with
// the old batch size (and whose data is computed from the inputs) gets -1
// there (0, "copy the input's", when the shape already has a -1). It returns
// the number of Reshape nodes changed. Exporters such as CNTK's write the
// batch size into Reshape shapes; this is what makes such models trainable
// and evaluable in batches.
func MakeBatchDynamic(g *Graph) int {
	batch := -1
	for i, in := range g.Inputs {
		if _, isParam := g.Params[in.Name]; isParam || len(in.Shape) == 0 {
			continue
		}
		if in.Shape[0] >= 0 {
			if batch < 0 {
				batch = in.Shape[0]
			}
			g.Inputs[i].Shape = append([]int{-1}, in.Shape[1:]...)
			g.Inputs[i].DimNames = batchDimName(in)
		}
	}
	for i, out := range g.Outputs {
		if len(out.Shape) > 0 && out.Shape[0] >= 0 {
			g.Outputs[i].Shape = append([]int{-1}, out.Shape[1:]...)
			g.Outputs[i].DimNames = batchDimName(out)
		}
	}
	if batch < 0 {
		return 0
	}
	// Values computed from graph inputs (not constants).
	dynamic := map[string]bool{}
	for _, in := range g.Inputs {
		if _, isParam := g.Params[in.Name]; !isParam {
			dynamic[in.Name] = true
		}
	}
	changed := 0
	for _, n := range g.Nodes {
		dyn := false
		for _, in := range n.Inputs {
			dyn = dyn || dynamic[in]
		}
		if !dyn {
			continue
		}
		for _, o := range n.Outputs {
			dynamic[o] = true
		}
		if n.OpType != "Reshape" || n.Domain != "" {
			continue
		}
		p, ok := g.Params[n.Input(1)]
		if !ok || p.T.DType != Int64 || p.T.Len() == 0 || p.T.I64[0] != int64(batch) || !dynamic[n.Input(0)] {
			continue
		}
		shape := append([]int64{}, p.T.I64...)
		shape[0] = -1
		for _, d := range p.T.I64[1:] {
			if d == -1 {
				shape[0] = 0
			}
		}
		name := uniqueName(g, n.Input(1)+"_dynamic_batch")
		g.AddParam(name, FromInt64(shape, len(shape)), false)
		n.Inputs[1] = name
		changed++
	}
	return changed
}

func batchDimName(vi ValueInfo) []string {
	names := make([]string, len(vi.Shape))
	copy(names, vi.DimNames)
	names[0] = "N"
	return names
}
