package runtime

import (
	"context"
	"math"
)

// FuseQDQ rewrites the QDQ patterns of a quantised model (float ops between
// DequantizeLinear and QuantizeLinear nodes, the format onnxruntime and
// PyTorch export) into integer ops, so that the model runs on the int8
// kernels:
//
//   - DQ(x) and DQ(constant int8/uint8 weights) into Conv, Gemm or MatMul,
//     with an optional bias (DQ of int32, or a float constant, quantised
//     with scale x_scale*w_scale), an optional Relu or Clip, and an
//     optional QuantizeLinear after: com.compressml QConv or QGemm with the
//     bias in the accumulator, the activation as a clamp and the output
//     requantised (or dequantised to float32 when no QuantizeLinear
//     follows). A MatMul followed by an Add of a constant vector takes it
//     as its bias.
//   - DQ -> Add/Mul -> Q, DQ -> Relu/LeakyRelu/Sigmoid -> Q, DQ ->
//     AveragePool/GlobalAveragePool -> Q and DQ... -> Concat -> Q into the
//     com.microsoft QLinear* ops.
//   - DQ -> MaxPool/Reshape/Flatten/Transpose/Squeeze/Unsqueeze/Identity -> Q
//     with the same scale and zero point on both sides: the op runs on the
//     8-bit values directly.
//   - A residual Add after a fused convolution, QConv -> Q -> DQ ->
//     Add(DQ(r)) (-> Relu) (-> Q): com.compressml QConvAdd, the Add
//     computed in the convolution's output stage, exactly as the unfused
//     float nodes compute it (fuseResidualAdds).
//   - onnxruntime's dynamic quantisation, DynamicQuantizeLinear ->
//     MatMulInteger/ConvInteger (constant weights) -> Cast(float) ->
//     Mul(x_scale * w_scale) (-> Add(constant bias)) (-> Relu): one fused
//     QGemm/QConv with a float output, the bias added in its output stage
//     (bit-identical to the unfused chain).
//
// Only per-tensor activation parameters and per-tensor or per-output-channel
// weight parameters fuse; every other DQ and Q node is left in place and
// stays correct. DequantizeLinear nodes that lose their last consumer are
// removed later by RemoveDeadCode; unfused DequantizeLinear of constants are
// folded by FoldConstants.
//
// FuseQDQ must run before FoldConstants (which would fold the weights' DQ
// into float constants). It first folds the other constant subgraphs
// itself, so that weights given as QuantizeLinear of float constants
// become int8 constants. Integer outputs equal those of the unfused graph
// up to the float rounding of the unfused float ops (bit-equal when scales
// are powers of two).
func FuseQDQ(g *Graph) {
	quantized := false
	for _, n := range g.Nodes {
		if isDQ(n) || n.OpType == "DynamicQuantizeLinear" {
			quantized = true
			break
		}
	}
	if !quantized {
		return
	}
	foldConstantsExceptDQ(g)
	f := &qdqFuser{g: g, prod: g.Producers(), cons: g.Consumers(), removed: map[*Node]bool{}, replace: map[*Node]*Node{}}
	f.inferTypes()
	for _, n := range g.Nodes {
		if n.Domain != "" && n.Domain != "ai.onnx" || f.removed[n] {
			continue
		}
		var r *Node
		switch n.OpType {
		case "Conv":
			r = f.fuseConv(n)
		case "Gemm", "MatMul":
			r = f.fuseGemm(n)
		case "Add", "Mul":
			r = f.fuseBinary(n)
		case "Relu", "LeakyRelu", "Sigmoid":
			r = f.fuseUnary(n)
		case "AveragePool", "GlobalAveragePool":
			r = f.fusePool(n)
		case "Concat":
			r = f.fuseConcat(n)
		case "MaxPool", "Reshape", "Flatten", "Transpose", "Squeeze", "Unsqueeze", "Identity":
			r = f.fuseMove(n)
		case "MatMulInteger", "ConvInteger":
			r = f.fuseDynamic(n)
		}
		if r != nil {
			f.replace[n] = r
		}
	}
	if len(f.replace) == 0 {
		return
	}
	kept := g.Nodes[:0]
	for _, n := range g.Nodes {
		if r, ok := f.replace[n]; ok {
			kept = append(kept, r)
		} else if !f.removed[n] {
			kept = append(kept, n)
		}
	}
	g.Nodes = kept
	fuseResidualAdds(g)
	RemoveDeadCode(g)
}

// isDQ and isQ recognise the two quantisation ops in either domain.
func isDQ(n *Node) bool {
	return n != nil && n.OpType == "DequantizeLinear" && (n.Domain == "" || n.Domain == "ai.onnx" || n.Domain == msDomain)
}

func isQ(n *Node) bool {
	return n != nil && n.OpType == "QuantizeLinear" && (n.Domain == "" || n.Domain == "ai.onnx" || n.Domain == msDomain)
}

// foldConstantsExceptDQ is FoldConstants without folding DequantizeLinear
// (nor anything that depends on one), so that quantised weights stay
// integer constants for the fusion.
func foldConstantsExceptDQ(g *Graph) {
	kept := g.Nodes[:0]
	for _, n := range g.Nodes {
		ins := make([]*Tensor, len(n.Inputs))
		allConst := !isDQ(n) && (len(n.Inputs) > 0 || n.OpType == "Constant")
		for i, name := range n.Inputs {
			if name == "" || !allConst {
				continue
			}
			p, ok := g.Params[name]
			if !ok {
				allConst = false
				break
			}
			ins[i] = p.T
		}
		if allConst {
			if _, ok := LookupOp(n.Domain, n.OpType); !ok {
				allConst = false
			}
		}
		if allConst {
			if outs, err := EvalNode(context.Background(), n, ins, 1); err == nil {
				for i, name := range n.Outputs {
					if name != "" {
						g.AddParam(name, outs[i].Clone(), false)
					}
				}
				continue
			}
		}
		kept = append(kept, n)
	}
	g.Nodes = kept
}

// qdqFuser holds the state of one FuseQDQ run.
type qdqFuser struct {
	g       *Graph
	prod    map[string]*Node
	cons    map[string][]*Node
	types   map[string]DType // element types of quantised values, where known
	removed map[*Node]bool   // nodes absorbed into a replacement
	replace map[*Node]*Node  // op node -> its fused replacement
}

// inferTypes records the element type of every value whose type follows
// from the graph: inputs, parameters, QuantizeLinear outputs and values
// passed through data-movement ops.
func (f *qdqFuser) inferTypes() {
	f.types = map[string]DType{}
	for _, in := range f.g.Inputs {
		f.types[in.Name] = in.DType
	}
	for name, p := range f.g.Params {
		f.types[name] = p.T.DType
	}
	for _, n := range f.g.Nodes {
		if len(n.Outputs) == 0 || n.Outputs[0] == "" {
			continue
		}
		out := n.Outputs[0]
		switch {
		case isQ(n):
			dt := Uint8
			if z := n.Input(2); z != "" {
				dt = f.types[z]
			} else if n.AttrInt("output_dtype", 0) == onnxInt8 {
				dt = Int8
			}
			f.types[out] = dt
		case isDQ(n):
			f.types[out] = Float32
		case n.OpType == "DynamicQuantizeLinear":
			f.types[out] = Uint8
		case n.OpType == "MaxPool" || n.OpType == "Reshape" || n.OpType == "Flatten" || n.OpType == "Transpose" ||
			n.OpType == "Squeeze" || n.OpType == "Unsqueeze" || n.OpType == "Identity" || n.OpType == "Concat" ||
			n.OpType == "Slice" || n.OpType == "Gather" || n.OpType == "Pad" || n.OpType == "Resize":
			if dt, ok := f.types[n.Input(0)]; ok {
				f.types[out] = dt
			}
		}
	}
}

// param returns the constant value of name, or nil.
func (f *qdqFuser) param(name string) *Tensor {
	if p, ok := f.g.Params[name]; ok {
		return p.T
	}
	return nil
}

// graphOutput reports whether name is a graph output.
func (f *qdqFuser) graphOutput(name string) bool {
	for _, o := range f.g.Outputs {
		if o.Name == name {
			return true
		}
	}
	return false
}

// only returns the single consumer of value name (nil when there are
// several or none, or name is a graph output).
func (f *qdqFuser) only(name string) *Node {
	if f.graphOutput(name) {
		return nil
	}
	if c := f.cons[name]; len(c) == 1 && !f.removed[c[0]] && f.replace[c[0]] == nil {
		return c[0]
	}
	return nil
}

// qval describes a value produced by DequantizeLinear (or consumed by
// QuantizeLinear): the quantised value, its type and parameters.
type qval struct {
	node         *Node
	q            string // quantised value (DQ input, Q output)
	dt           DType
	scaleName    string
	zpName       string // "" when absent (zero)
	scale        *Tensor
	zp           *Tensor // nil when absent
	axis         int     // DQ/Q axis attribute, normalised for the data rank when known
	perTensor    bool
	scaleScalar  float32
	zpScalar     int32
	blockedOrBad bool
}

// paramsOf fills the parameter fields of v from node n's inputs 1 and 2.
func (f *qdqFuser) paramsOf(n *Node, v *qval) bool {
	v.node = n
	v.scaleName, v.zpName = n.Input(1), n.Input(2)
	v.scale = f.param(v.scaleName)
	if v.scale == nil || v.scale.DType != Float32 || v.scale.Len() == 0 {
		return false
	}
	if v.zpName != "" {
		if v.zp = f.param(v.zpName); v.zp == nil || v.zp.Len() != v.scale.Len() {
			return false
		}
	}
	if n.AttrInt("block_size", 0) != 0 {
		return false
	}
	for _, s := range v.scale.F32 {
		if s == 0 || s != s || math.IsInf(float64(s), 0) {
			return false
		}
	}
	v.axis = int(n.AttrInt("axis", 1))
	v.perTensor = v.scale.Len() == 1 && v.scale.Rank() <= 1
	if v.perTensor {
		v.scaleScalar = v.scale.F32[0]
		v.zpScalar = scalarZP(v.zp)
	}
	return true
}

// dequantized returns the DequantizeLinear producing name with constant
// parameters and a known 8-bit input type.
func (f *qdqFuser) dequantized(name string) (qval, bool) {
	var v qval
	n := f.prod[name]
	if !isDQ(n) || len(n.Outputs) != 1 || f.removed[n] {
		return v, false
	}
	if !f.paramsOf(n, &v) {
		return v, false
	}
	v.q = n.Input(0)
	if v.zp != nil {
		v.dt = v.zp.DType
	} else {
		v.dt = f.types[v.q]
	}
	if p := f.param(v.q); p != nil && p.DType != v.dt {
		return v, false
	}
	return v, isQType(v.dt)
}

// quantized returns the QuantizeLinear consuming name alone, with constant
// per-tensor parameters.
func (f *qdqFuser) quantized(name string) (qval, bool) {
	var v qval
	n := f.only(name)
	if !isQ(n) || len(n.Outputs) != 1 || n.Input(0) != name || !f.paramsOf(n, &v) || !v.perTensor {
		return v, false
	}
	v.q = n.Outputs[0]
	v.dt = f.types[v.q]
	return v, isQType(v.dt)
}

// activation recognises a Relu or Clip with constant bounds consuming name
// alone.
func (f *qdqFuser) activation(name string) (*Node, fusedAct, bool) {
	n := f.only(name)
	if n == nil || n.Input(0) != name || len(n.Outputs) != 1 {
		return nil, fusedAct{}, false
	}
	kind, alpha, beta, ok := NodeActivation(n, f.param)
	if !ok || kind != ActRelu && kind != ActClip {
		return nil, fusedAct{}, false
	}
	return n, fusedAct{kind: kind, alpha: alpha, beta: beta}, true
}

// newName returns a fresh value name derived from base.
func (f *qdqFuser) newName(base string) string { return uniqueName(f.g, base) }

// ---------------------------------------------------------------- Conv, Gemm, MatMul

// weightScales checks a weight DQ: constant 8-bit weights whose parameters
// are per tensor or per output channel (DQ axis == chAxis of the weight),
// and returns the per-channel scales (length nOut).
func (f *qdqFuser) weightScales(w qval, chAxis, nOut int) ([]float32, bool) {
	t := f.param(w.q)
	if t == nil || !isQType(t.DType) {
		return nil, false
	}
	ax := w.axis
	if ax < 0 {
		ax += t.Rank()
	}
	if !w.perTensor && (ax != chAxis || w.scale.Rank() != 1 || w.scale.Len() != nOut) {
		return nil, false
	}
	s := make([]float32, nOut)
	for j := range s {
		s[j] = w.scale.F32[min(j, w.scale.Len()-1)]
	}
	return s, true
}

// int32Bias returns the name of an int32 bias for a product with input
// scale sx, weight scales sw (per output channel) and multiplier alpha:
// the DQ's int32 input itself when its scale is alpha*sx*sw (within float
// rounding) and its zero point 0, otherwise a new parameter holding the
// float bias (times beta) quantised with that scale. ok is false when the
// bias is not constant or does not fit.
func (f *qdqFuser) int32Bias(name string, sx float32, sw []float32, alpha, beta float32, base string) (string, bool) {
	n := len(sw)
	fb, ok := f.floatBiasValues(name, n)
	if !ok {
		return "", false
	}
	if dq := f.prod[name]; isDQ(dq) {
		var v qval
		f.paramsOf(dq, &v)
		b := f.param(dq.Input(0))
		exact := b.DType == Int32 && beta == 1 && b.Len() == n && b.Rank() == 1 && (v.zp == nil || allZero(v.zp))
		for j := 0; j < n; j++ {
			s := v.scale.F32[min(j, v.scale.Len()-1)]
			want := alpha * sx * sw[j]
			if math.Abs(float64(s-want)) > 1e-6*math.Abs(float64(want)) {
				exact = false
			}
		}
		if exact {
			return dq.Input(0), true
		}
	}
	q := New(Int32, n)
	for j, v := range fb {
		r := math.RoundToEven(float64(beta) * float64(v) / (float64(alpha) * float64(sx) * float64(sw[j])))
		if math.IsNaN(r) || r > math.MaxInt32/2 || r < math.MinInt32/2 {
			return "", false
		}
		q.I32[j] = int32(r)
	}
	bn := f.newName(base + "_bias_int32")
	f.g.AddParam(bn, q, false)
	return bn, true
}

// floatBiasValues returns the n float values of a constant bias: a float32
// parameter, or the DequantizeLinear of an integer constant (one value, or
// one per output channel).
func (f *qdqFuser) floatBiasValues(name string, n int) ([]float32, bool) {
	fb := make([]float32, n)
	if dq := f.prod[name]; isDQ(dq) {
		var v qval
		b := f.param(dq.Input(0))
		if !f.paramsOf(dq, &v) || b == nil || b.DType != Int32 && !isQType(b.DType) || b.Len() != n && b.Len() != 1 ||
			v.scale.Len() != n && v.scale.Len() != 1 {
			return nil, false
		}
		for j := 0; j < n; j++ {
			z := int32(0)
			if v.zp != nil {
				z = qElem(v.zp, min(j, v.zp.Len()-1))
			}
			fb[j] = float32(qElem(b, min(j, b.Len()-1))-z) * v.scale.F32[min(j, v.scale.Len()-1)]
		}
		return fb, true
	}
	t := f.param(name)
	if t == nil || t.DType != Float32 || t.Len() != n && t.Len() != 1 {
		return nil, false
	}
	for j := range fb {
		fb[j] = t.F32[min(j, t.Len()-1)]
	}
	return fb, true
}

// useFloatBias gives a fused product with a float output the bias src
// (times beta) as a float bias (input 9) instead of an int32 one rounded
// to the accumulator's scale, unless the int32 bias is the model's own
// (exact). biasIdx is the int32 bias input, yIdx the y_scale input.
func (f *qdqFuser) useFloatBias(fused *Node, biasIdx, yIdx int, src string, n int, beta float32) {
	if src == "" || fused.Inputs[yIdx] != "" || fused.Inputs[biasIdx] == "" {
		return
	}
	if dq := f.prod[src]; isDQ(dq) && dq.Input(0) == fused.Inputs[biasIdx] {
		return // the model's int32 bias, exact in the accumulator
	}
	fb, ok := f.floatBiasValues(src, n)
	if !ok {
		return
	}
	t := New(Float32, n)
	for j, v := range fb {
		t.F32[j] = beta * v
	}
	name := f.newName(fused.Name + "_bias_float")
	f.g.AddParam(name, t, false)
	fused.Inputs[biasIdx] = ""
	fused.Inputs = append(fused.Inputs, name)
}

func allZero(t *Tensor) bool {
	for i := 0; i < t.Len(); i++ {
		if qElem(t, i) != 0 {
			return false
		}
	}
	return true
}

// finishProduct resolves the output side of a fused product whose float
// output is y: an optional Relu/Clip and an optional QuantizeLinear. It
// fills the fused node's y_scale, y_zero_point (at yIdx) and outputs, marks
// the absorbed nodes and returns false when nothing can be fused.
func (f *qdqFuser) finishProduct(fused *Node, y string, yIdx int) {
	out := y
	act, a, hasAct := f.activation(y)
	if hasAct {
		out = act.Outputs[0]
	}
	if q, ok := f.quantized(out); ok {
		fused.Inputs[yIdx], fused.Inputs[yIdx+1] = q.scaleName, q.zpName
		fused.Outputs = []string{q.q}
		f.removed[q.node] = true
	} else {
		fused.Outputs = []string{out}
	}
	if hasAct {
		f.removed[act] = true
		fused.SetAttr("activation", Attr{Kind: AttrString, S: a.kind.String()})
		if a.kind == ActClip {
			fused.SetAttr("activation_alpha", Attr{Kind: AttrFloat, F: a.alpha})
			fused.SetAttr("activation_beta", Attr{Kind: AttrFloat, F: a.beta})
		}
	}
}

func (f *qdqFuser) fuseConv(n *Node) *Node {
	if len(n.Outputs) != 1 {
		return nil
	}
	x, ok := f.dequantized(n.Input(0))
	if !ok || !x.perTensor {
		return nil
	}
	w, ok := f.dequantized(n.Input(1))
	if !ok {
		return nil
	}
	wt := f.param(w.q)
	if wt == nil || wt.Rank() < 3 {
		return nil
	}
	sw, ok := f.weightScales(w, 0, wt.Shape[0])
	if !ok {
		return nil
	}
	bias := ""
	if b := n.Input(2); b != "" {
		if bias, ok = f.int32Bias(b, x.scaleScalar, sw, 1, 1, n.Name); !ok {
			return nil
		}
	}
	fused := &Node{Name: n.Name, OpType: "QConv", Domain: FusedDomain,
		Inputs: []string{x.q, x.scaleName, x.zpName, w.q, w.scaleName, w.zpName, "", "", bias}}
	for _, a := range []string{"auto_pad", "dilations", "group", "kernel_shape", "pads", "strides"} {
		if v, ok := n.Attrs[a]; ok {
			fused.SetAttr(a, v)
		}
	}
	f.finishProduct(fused, n.Outputs[0], 6)
	f.useFloatBias(fused, 8, 6, n.Input(2), len(sw), 1)
	return fused
}

func (f *qdqFuser) fuseGemm(n *Node) *Node {
	if len(n.Outputs) != 1 {
		return nil
	}
	isGemm := n.OpType == "Gemm"
	if isGemm && n.AttrInt("transA", 0) != 0 {
		return nil
	}
	x, ok := f.dequantized(n.Input(0))
	if !ok || !x.perTensor {
		return nil
	}
	w, ok := f.dequantized(n.Input(1))
	if !ok {
		return nil
	}
	wt := f.param(w.q)
	if wt == nil || wt.Rank() != 2 {
		return nil
	}
	transB := isGemm && n.AttrInt("transB", 0) != 0
	nOut, chAxis := wt.Shape[1], 1
	if transB {
		nOut, chAxis = wt.Shape[0], 0
	}
	sw, ok := f.weightScales(w, chAxis, nOut)
	if !ok {
		return nil
	}
	alpha, beta := float32(1), float32(1)
	if isGemm {
		alpha, beta = n.AttrFloat("alpha", 1), n.AttrFloat("beta", 1)
	}
	y := n.Outputs[0]
	bias, biasSrc := "", ""
	var absorbed *Node
	if isGemm {
		if c := n.Input(2); c != "" {
			biasSrc = c
			if bias, ok = f.int32Bias(c, x.scaleScalar, sw, alpha, beta, n.Name); !ok {
				return nil
			}
		}
	} else if add := f.only(y); add != nil && add.OpType == "Add" && add.Domain == "" && len(add.Inputs) == 2 && len(add.Outputs) == 1 {
		// MatMul + Add(constant row of N values): the bias.
		other := add.Inputs[1]
		if other == y {
			other = add.Inputs[0]
		}
		if c := f.biasRow(other, nOut); c != "" {
			if bias, ok = f.int32Bias(c, x.scaleScalar, sw, 1, 1, n.Name); ok {
				absorbed = add
				y = add.Outputs[0]
				biasSrc = c
			}
		}
	}
	fused := &Node{Name: n.Name, OpType: "QGemm", Domain: FusedDomain,
		Inputs: []string{x.q, x.scaleName, x.zpName, w.q, w.scaleName, w.zpName, bias, "", ""}}
	if transB {
		fused.SetAttr("transB", Attr{Kind: AttrInt, I: 1})
	}
	if alpha != 1 {
		fused.SetAttr("alpha", Attr{Kind: AttrFloat, F: alpha})
	}
	if absorbed != nil {
		f.removed[absorbed] = true
	}
	f.finishProduct(fused, y, 7)
	f.useFloatBias(fused, 6, 7, biasSrc, nOut, beta)
	return fused
}

// biasRow returns name when it is a constant (float, or DQ of a constant)
// holding a row of n values ([n] or [1, n]) that an Add broadcasts along the
// last axis, and "" otherwise.
func (f *qdqFuser) biasRow(name string, n int) string {
	shapeOK := func(s []int) bool {
		return len(s) == 1 && s[0] == n || len(s) == 2 && s[0] == 1 && s[1] == n
	}
	if t := f.param(name); t != nil {
		if t.DType == Float32 && shapeOK(t.Shape) {
			return name
		}
		return ""
	}
	if dq := f.prod[name]; isDQ(dq) {
		if t := f.param(dq.Input(0)); t != nil && shapeOK(t.Shape) {
			return name
		}
	}
	return ""
}

// ---------------------------------------------------------------- QLinear ops

// sameQType reports whether every value has type dt.
func sameQType(dt DType, vs ...qval) bool {
	for _, v := range vs {
		if v.dt != dt {
			return false
		}
	}
	return true
}

func (f *qdqFuser) fuseBinary(n *Node) *Node {
	if len(n.Inputs) != 2 || len(n.Outputs) != 1 {
		return nil
	}
	a, ok1 := f.dequantized(n.Inputs[0])
	b, ok2 := f.dequantized(n.Inputs[1])
	if !ok1 || !ok2 || !a.perTensor || !b.perTensor {
		return nil
	}
	c, ok := f.quantized(n.Outputs[0])
	if !ok || !sameQType(c.dt, a, b) {
		return nil
	}
	f.removed[c.node] = true
	return &Node{Name: n.Name, OpType: "QLinear" + n.OpType, Domain: msDomain,
		Inputs:  []string{a.q, a.scaleName, a.zpName, b.q, b.scaleName, b.zpName, c.scaleName, c.zpName},
		Outputs: []string{c.q}}
}

// oneInOneOut matches a one-output node between a per-tensor
// DequantizeLinear and a QuantizeLinear of the same type, and marks that
// QuantizeLinear removed.
func (f *qdqFuser) oneInOneOut(n *Node) (x, y qval, ok bool) {
	if len(n.Outputs) != 1 {
		return x, y, false
	}
	if x, ok = f.dequantized(n.Input(0)); !ok || !x.perTensor {
		return x, y, false
	}
	if y, ok = f.quantized(n.Outputs[0]); !ok || y.dt != x.dt {
		return x, y, false
	}
	f.removed[y.node] = true
	return x, y, true
}

func (f *qdqFuser) fuseUnary(n *Node) *Node {
	x, y, ok := f.oneInOneOut(n)
	if !ok {
		return nil
	}
	r := &Node{Name: n.Name, OpType: "QLinearLeakyRelu", Domain: msDomain,
		Inputs: []string{x.q, x.scaleName, x.zpName, y.scaleName, y.zpName}, Outputs: []string{y.q}}
	switch n.OpType {
	case "Sigmoid":
		r.OpType = "QLinearSigmoid"
	case "Relu":
		r.SetAttr("alpha", Attr{Kind: AttrFloat, F: 0})
	default:
		r.SetAttr("alpha", Attr{Kind: AttrFloat, F: n.AttrFloat("alpha", 0.01)})
	}
	return r
}

func (f *qdqFuser) fusePool(n *Node) *Node {
	x, y, ok := f.oneInOneOut(n)
	if !ok {
		return nil
	}
	r := &Node{Name: n.Name, OpType: "QLinear" + n.OpType, Domain: msDomain,
		Inputs: []string{x.q, x.scaleName, x.zpName, y.scaleName, y.zpName}, Outputs: []string{y.q}}
	for k, v := range n.Attrs {
		r.SetAttr(k, v)
	}
	return r
}

func (f *qdqFuser) fuseConcat(n *Node) *Node {
	if len(n.Outputs) != 1 || len(n.Inputs) == 0 {
		return nil
	}
	y, ok := f.quantized(n.Outputs[0])
	if !ok {
		return nil
	}
	ins := []string{y.scaleName, y.zpName}
	for _, in := range n.Inputs {
		x, ok := f.dequantized(in)
		if !ok || !x.perTensor || x.dt != y.dt || x.zpName == "" {
			return nil
		}
		ins = append(ins, x.q, x.scaleName, x.zpName)
	}
	if y.zpName == "" {
		return nil
	}
	f.removed[y.node] = true
	r := &Node{Name: n.Name, OpType: "QLinearConcat", Domain: msDomain, Inputs: ins, Outputs: []string{y.q}}
	r.SetAttr("axis", Attr{Kind: AttrInt, I: n.AttrInt("axis", 0)})
	return r
}

// fuseMove runs a max pool or data-movement op on the 8-bit values when the
// DQ before and the Q after use the same parameters.
func (f *qdqFuser) fuseMove(n *Node) *Node {
	if len(n.Outputs) != 1 || n.Outputs[0] == "" {
		return nil
	}
	x, ok := f.dequantized(n.Input(0))
	if !ok || !x.perTensor {
		return nil
	}
	y, ok := f.quantized(n.Outputs[0])
	if !ok || y.dt != x.dt || y.scaleScalar != x.scaleScalar || y.zpScalar != x.zpScalar {
		return nil
	}
	f.removed[y.node] = true
	r := &Node{Name: n.Name, OpType: n.OpType, Domain: n.Domain, Attrs: n.Attrs,
		Inputs: append([]string{x.q}, n.Inputs[1:]...), Outputs: []string{y.q}}
	return r
}

// ---------------------------------------------------------------- dynamic quantisation

// fuseDynamic fuses MatMulInteger/ConvInteger -> Cast -> Mul(scale) ->
// Add(bias)? -> Relu? where the activation comes from DynamicQuantizeLinear
// and the scale is Mul(its scale, constant weight scale).
func (f *qdqFuser) fuseDynamic(n *Node) *Node {
	isConv := n.OpType == "ConvInteger"
	if len(n.Outputs) != 1 || n.Input(2) == "" {
		return nil
	}
	dql := f.prod[n.Inputs[0]]
	if dql == nil || dql.OpType != "DynamicQuantizeLinear" || dql.Domain != "" || len(dql.Outputs) != 3 ||
		dql.Outputs[0] != n.Inputs[0] || dql.Outputs[2] != n.Input(2) {
		return nil
	}
	w := f.param(n.Input(1))
	if w == nil || !isQType(w.DType) || isConv && w.Rank() < 3 || !isConv && w.Rank() != 2 {
		return nil
	}
	wz := n.Input(3)
	if wz != "" && f.param(wz) == nil {
		return nil
	}
	nOut := w.Shape[len(w.Shape)-1]
	if isConv {
		nOut = w.Shape[0]
	}
	cast := f.only(n.Outputs[0])
	if cast == nil || cast.OpType != "Cast" || cast.Domain != "" || cast.AttrInt("to", 0) != 1 || len(cast.Outputs) != 1 {
		return nil
	}
	mul := f.only(cast.Outputs[0])
	if mul == nil || mul.OpType != "Mul" || mul.Domain != "" || len(mul.Inputs) != 2 || len(mul.Outputs) != 1 {
		return nil
	}
	sName := mul.Inputs[1]
	if sName == cast.Outputs[0] {
		sName = mul.Inputs[0]
	}
	// The scale: Mul(x_scale, constant weight scale), per tensor (or per
	// output channel for MatMul: a row of N values).
	sm := f.prod[sName]
	if sm == nil || sm.OpType != "Mul" || sm.Domain != "" || len(sm.Inputs) != 2 {
		return nil
	}
	wsName := sm.Inputs[1]
	if wsName == dql.Outputs[1] {
		wsName = sm.Inputs[0]
	} else if sm.Inputs[0] != dql.Outputs[1] {
		return nil
	}
	ws := f.param(wsName)
	if ws == nil || ws.DType != Float32 || !(ws.Len() == 1 || !isConv && ws.Len() == nOut && ws.Rank() == 1) {
		return nil
	}
	absorbed := []*Node{cast, mul}
	y := mul.Outputs[0]
	fbias := ""
	if add := f.only(y); add != nil && add.OpType == "Add" && add.Domain == "" && len(add.Inputs) == 2 && len(add.Outputs) == 1 {
		other := add.Inputs[1]
		if other == y {
			other = add.Inputs[0]
		}
		if t := f.param(other); t != nil && t.DType == Float32 && t.Len() == nOut &&
			(isConv && isChannelVector(t.Shape, len(w.Shape)) || !isConv && (t.Rank() == 1 || t.Rank() == 2 && t.Shape[0] == 1)) {
			fbias = other
			if t.Rank() != 1 {
				fbias = f.newName(n.Name + "_bias_float")
				f.g.AddParam(fbias, t.Reshaped(nOut).Clone(), false)
			}
			absorbed = append(absorbed, add)
			y = add.Outputs[0]
		}
	}
	var fused *Node
	if isConv {
		fused = &Node{Name: n.Name, OpType: "QConv", Domain: FusedDomain,
			Inputs: []string{n.Inputs[0], dql.Outputs[1], n.Input(2), n.Input(1), wsName, wz, "", "", "", fbias}}
		for _, a := range []string{"auto_pad", "dilations", "group", "kernel_shape", "pads", "strides"} {
			if v, ok := n.Attrs[a]; ok {
				fused.SetAttr(a, v)
			}
		}
	} else {
		fused = &Node{Name: n.Name, OpType: "QGemm", Domain: FusedDomain,
			Inputs: []string{n.Inputs[0], dql.Outputs[1], n.Input(2), n.Input(1), wsName, wz, "", "", "", fbias}}
	}
	if act, a, ok := f.activation(y); ok && a.kind == ActRelu {
		y = act.Outputs[0]
		absorbed = append(absorbed, act)
		fused.SetAttr("activation", Attr{Kind: AttrString, S: "Relu"})
	}
	if fbias == "" {
		fused.Inputs = fused.Inputs[:9]
	}
	fused.Outputs = []string{y}
	for _, a := range absorbed {
		f.removed[a] = true
	}
	return fused
}

// ---------------------------------------------------------------- residual Add

// fuseResidualAdds fuses the quantised residual Add of a residual block
// into the convolution before it, after the QDQ fusion:
//
//	QConv(..) -> q (uint8) -> DQ -> Add(., DQ(r)) [-> Relu] [-> Q] => QConvAdd
//
// where q and its DQ have no other consumer, the parameters are constant
// per-tensor uint8 ones and r is uint8. The fused op tabulates the Add for
// every (q, r) pair, so its output equals the unfused chain's exactly.
// With the Q the output is its uint8 value, otherwise the float value.
func fuseResidualAdds(g *Graph) {
	f := &qdqFuser{g: g, prod: g.Producers(), cons: g.Consumers(), removed: map[*Node]bool{}, replace: map[*Node]*Node{}}
	f.inferTypes()
	for _, n := range g.Nodes {
		if n.OpType != "Add" || n.Domain != "" && n.Domain != "ai.onnx" || len(n.Inputs) != 2 || len(n.Outputs) != 1 {
			continue
		}
		for which := 0; which < 2; which++ {
			if r := f.fuseResidual(n, which); r != nil {
				f.replace[n] = r
				break
			}
		}
	}
	if len(f.replace) == 0 {
		return
	}
	kept := g.Nodes[:0]
	for _, n := range g.Nodes {
		if r, ok := f.replace[n]; ok {
			kept = append(kept, r)
		} else if !f.removed[n] {
			kept = append(kept, n)
		}
	}
	g.Nodes = kept
}

// u8Scalar reports whether v has constant per-tensor parameters and a
// uint8 value.
func u8Scalar(v qval) bool { return v.perTensor && v.dt == Uint8 }

// fuseResidual tries Add input which as the convolution side.
func (f *qdqFuser) fuseResidual(add *Node, which int) *Node {
	dq := f.prod[add.Inputs[which]]
	if !isDQ(dq) || f.removed[dq] || f.only(dq.Outputs[0]) != add || add.Inputs[0] == add.Inputs[1] {
		return nil
	}
	qv, ok := f.dequantized(dq.Outputs[0])
	if !ok || !u8Scalar(qv) {
		return nil
	}
	conv := f.prod[qv.q]
	if conv == nil || conv.OpType != "QConv" || conv.Domain != FusedDomain || f.removed[conv] ||
		len(conv.Inputs) > 9 && conv.Inputs[9] != "" || conv.Input(6) == "" || f.only(qv.q) != dq {
		return nil
	}
	if zp := conv.Input(7); zp != "" {
		if t := f.param(zp); t == nil || t.DType != Uint8 {
			return nil
		}
	}
	rv, ok := f.dequantized(add.Inputs[1-which])
	if !ok || !u8Scalar(rv) {
		return nil
	}
	fused := &Node{Name: conv.Name, OpType: "QConvAdd", Domain: FusedDomain, Attrs: map[string]Attr{}}
	for k, v := range conv.Attrs {
		fused.Attrs[k] = v
	}
	ins := append([]string{}, conv.Inputs[:9]...)
	for len(ins) < 9 {
		ins = append(ins, "")
	}
	fused.Inputs = append(ins, rv.q, rv.scaleName, rv.zpName, qv.scaleName, qv.zpName)
	out := add.Outputs[0]
	absorbed := []*Node{conv, dq}
	if act := f.only(out); act != nil && act.OpType == "Relu" && (act.Domain == "" || act.Domain == "ai.onnx") && len(act.Outputs) == 1 {
		fused.SetAttr("residual_activation", Attr{Kind: AttrString, S: "Relu"})
		absorbed = append(absorbed, act)
		out = act.Outputs[0]
	}
	if z, ok := f.quantized(out); ok && z.dt == Uint8 {
		fused.Inputs = append(fused.Inputs, z.scaleName, z.zpName)
		absorbed = append(absorbed, z.node)
		out = z.q
	}
	fused.Outputs = []string{out}
	for _, a := range absorbed {
		f.removed[a] = true
	}
	return fused
}
