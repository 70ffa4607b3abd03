package prune

import (
	"context"
	"fmt"
	"math"
	"sort"
	"strings"

	"github.com/compressml/compress/eval"
	rt "github.com/compressml/compress/runtime"
)

// role says what pruning a channel does to an attached parameter slice.
type role uint8

const (
	roleWeight  role = iota // a producer's weight: scored, masked and sliced
	roleMasked              // bias, BatchNorm shift, per-channel constant: masked and sliced
	roleBNScale             // BatchNorm scale: scored by CriterionBN, masked and sliced
	roleSlice               // consumer weight, BatchNorm statistics, divisor: sliced only
)

// attachment ties a range of a parameter's axis to a channel space:
// channel c of the space is indices [offset+c*inner, offset+(c+1)*inner)
// along axis.
type attachment struct {
	param  string
	axis   int
	offset int
	inner  int
	role   role
	node   string
	space  int
}

// chanSpace is a set of channels with a common indexing (union-find node).
type chanSpace struct {
	size   int
	parent int
	fixed  string // why its channels cannot be removed ("" when they can)
}

// seg is a run of channels of one space inside a value's channel axis.
type seg struct{ space, n int }

// layout says how the channel axis of a value is made of channel spaces:
// the segments in order, each channel repeated over inner consecutive
// indices (a flattened C x H x W gives inner = H*W).
type layout struct {
	axis, rank, inner int
	segs              []seg
}

func (l *layout) channels() int {
	n := 0
	for _, s := range l.segs {
		n += s.n
	}
	return n
}

// Group is a set of channels that must be pruned together: every
// producer's output channel c is the same channel c.
type Group struct {
	ID   int
	Size int // channels
	// Producers are the nodes creating the channels (Conv, Gemm, MatMul),
	// Params their weights.
	Producers []string
	Params    []string
	// Fixed says why the group cannot be pruned ("" when it can).
	Fixed string
	root  int
}

// ChannelAnalysis is the channel dependency structure of a graph (see
// AnalyzeChannels). It stays valid while only parameter values change.
type ChannelAnalysis struct {
	Groups []*Group

	g        *rt.Graph
	spaces   []chanSpace
	attach   []attachment
	depthwis []string // depthwise Conv nodes: group follows the weight
	reshapes []string // flatten-like Reshape nodes: shape becomes [d0, -1]
	shapes   map[string][]int
}

func (a *ChannelAnalysis) find(s int) int {
	for a.spaces[s].parent != s {
		a.spaces[s].parent = a.spaces[a.spaces[s].parent].parent
		s = a.spaces[s].parent
	}
	return s
}

func (a *ChannelAnalysis) newSpace(size int, fixed string) int {
	a.spaces = append(a.spaces, chanSpace{size: size, parent: len(a.spaces), fixed: fixed})
	return len(a.spaces) - 1
}

func (a *ChannelAnalysis) fix(s int, why string) {
	r := a.find(s)
	if a.spaces[r].fixed == "" {
		a.spaces[r].fixed = why
	}
}

func (a *ChannelAnalysis) fixLayout(l *layout, why string) {
	if l == nil {
		return
	}
	for _, sg := range l.segs {
		a.fix(sg.space, why)
	}
}

func (a *ChannelAnalysis) union(x, y int, why string) {
	rx, ry := a.find(x), a.find(y)
	if rx == ry {
		return
	}
	if a.spaces[rx].size != a.spaces[ry].size {
		a.fix(rx, why)
		a.fix(ry, why)
		return
	}
	if rx > ry {
		rx, ry = ry, rx
	}
	a.spaces[ry].parent = rx
	if a.spaces[rx].fixed == "" {
		a.spaces[rx].fixed = a.spaces[ry].fixed
	}
}

// unify ties two layouts of the same tensor positions channel by channel.
func (a *ChannelAnalysis) unify(x, y *layout, node string) bool {
	if x.axis != y.axis || x.inner != y.inner || len(x.segs) != len(y.segs) {
		return false
	}
	for i := range x.segs {
		if x.segs[i].n != y.segs[i].n {
			return false
		}
	}
	for i := range x.segs {
		a.union(x.segs[i].space, y.segs[i].space, "channels tied by "+node+" differ in size")
	}
	return true
}

func (a *ChannelAnalysis) attachLayout(l *layout, param string, axis int, r role, node string) {
	off := 0
	for _, sg := range l.segs {
		a.attach = append(a.attach, attachment{param: param, axis: axis, offset: off * l.inner, inner: l.inner, role: r, node: node, space: sg.space})
		off += sg.n
	}
}

// valueShapes plans g at batch 1 and returns every value's shape.
func valueShapes(g *rt.Graph) (map[string][]int, error) {
	ex, err := rt.NewExecutor(g, rt.Options{Threads: 1, NoOptimize: true})
	if err != nil {
		return nil, err
	}
	p, err := ex.Plan(ex.InputShapes(1))
	if err != nil {
		return nil, err
	}
	shapes := map[string][]int{}
	for name, s := range ex.InputShapes(1) {
		shapes[name] = s
	}
	for name, prm := range g.Params {
		shapes[name] = prm.T.Shape
	}
	for _, pn := range p.Nodes {
		for j, o := range pn.Node.Outputs {
			if o != "" && j < len(pn.Outputs) {
				shapes[o] = pn.Outputs[j].Shape
			}
		}
	}
	return shapes, nil
}

// channel-preserving ops: output 0 has the channels of input 0.
var preserving = map[string]bool{
	"Relu": true, "LeakyRelu": true, "Sigmoid": true, "Tanh": true, "HardSigmoid": true, "HardSwish": true,
	"Clip": true, "Elu": true, "Selu": true, "Celu": true, "Softplus": true, "Softsign": true, "Mish": true,
	"Gelu": true, "Erf": true, "Neg": true, "Abs": true, "Identity": true, "Dropout": true, "Cast": true,
	"MaxPool": true, "AveragePool": true, "GlobalAveragePool": true, "GlobalMaxPool": true, "LpPool": true,
	"ThresholdedRelu": true, "Exp": true, "Sqrt": true, "Floor": true, "Ceil": true, "Round": true, "Sign": true,
}

// elementwise ops whose inputs broadcast together.
var elementwise = map[string]role{
	"Add": roleMasked, "Sub": roleMasked, "Mul": roleMasked, "Max": roleMasked, "Min": roleMasked,
	"Sum": roleMasked, "Mean": roleMasked, "Div": roleSlice, "Pow": roleSlice,
}

func isElementwise(op string) bool {
	_, ok := elementwise[op]
	return ok
}

// AnalyzeChannels finds the channel groups of g: the output channels of
// every Conv, Gemm and MatMul with a weight parameter, tied together where
// the graph requires (residual additions, depthwise convolutions, shared
// weights), with every parameter slice that removing a channel touches.
func AnalyzeChannels(g *rt.Graph) (*ChannelAnalysis, error) {
	shapes, err := valueShapes(g)
	if err != nil {
		return nil, fmt.Errorf("planning the model to find its shapes: %w", err)
	}
	a := &ChannelAnalysis{g: g, shapes: shapes}
	lay := map[string]*layout{}
	param := func(name string) *rt.Param {
		if p, ok := g.Params[name]; ok && p.T.DType == rt.Float32 {
			return p
		}
		return nil
	}
	for _, n := range g.Nodes {
		ins := make([]*layout, len(n.Inputs))
		for i, in := range n.Inputs {
			ins[i] = lay[in]
		}
		fixIns := func(why string) {
			for _, l := range ins {
				a.fixLayout(l, why)
			}
		}
		var out *layout
		what := fmt.Sprintf("%s %q", n.OpType, n.Name)
		switch {
		case n.Domain != "":
			fixIns("read by " + what + ", which channel pruning does not understand")
		case n.OpType == "Conv":
			out = a.conv(n, ins, param(n.Input(1)), param(n.Input(2)))
		case n.OpType == "Gemm":
			out = a.gemm(n, ins, param(n.Input(1)), g.Params[n.Input(2)])
		case n.OpType == "MatMul":
			out = a.matmul(n, ins, param(n.Input(1)))
		case n.OpType == "BatchNormalization":
			out = a.batchNorm(n, ins, param)
		case preserving[n.OpType]:
			for _, l := range ins[1:] {
				a.fixLayout(l, "used as a parameter of "+what)
			}
			isPool := strings.Contains(n.OpType, "Pool")
			if l := ins[0]; l != nil && (!isPool || l.axis == 1 && l.inner == 1) {
				out = l
			} else {
				a.fixLayout(l, "pooled by "+what+" along another axis")
			}
		case n.OpType == "PRelu":
			out = ins[0]
			if ins[1] != nil {
				a.fixLayout(ins[1], "used as the slope of "+what)
			} else if out != nil {
				a.constOperand(n, out, n.Input(1), roleSlice)
			}
		case isElementwise(n.OpType):
			out = a.elementwise(n, ins)
		case n.OpType == "Concat":
			out = a.concat(n, ins)
		case n.OpType == "Flatten":
			out = a.flatten(n, ins[0])
		case n.OpType == "Reshape":
			out = a.reshape(n, ins)
		default:
			fixIns("read by " + what + ", which channel pruning does not follow")
		}
		if out != nil && len(n.Outputs) > 0 && n.Outputs[0] != "" {
			lay[n.Outputs[0]] = out
		}
	}
	for _, o := range g.Outputs {
		a.fixLayout(lay[o.Name], fmt.Sprintf("reaches the graph output %q", o.Name))
	}
	a.checkParams()
	a.buildGroups()
	return a, nil
}

// conv handles a Conv node: its input channels are consumed by the
// weight's axis 1 (group 1), or followed (depthwise); its output channels
// are a new space.
func (a *ChannelAnalysis) conv(n *rt.Node, ins []*layout, w, b *rt.Param) *layout {
	x := ins[0]
	what := fmt.Sprintf("Conv %q", n.Name)
	for _, l := range ins[1:] {
		a.fixLayout(l, "used as a parameter of "+what)
	}
	if x != nil && (x.axis != 1 || x.inner != 1) {
		a.fixLayout(x, "read by "+what+" along an unexpected axis")
		x = nil
	}
	if w == nil || w.T.Rank() < 3 || n.Input(2) != "" && b == nil {
		a.fixLayout(x, what+" has a weight or bias that is not a float32 parameter")
		return nil
	}
	m, cg := w.T.Shape[0], w.T.Shape[1]
	group := int(n.AttrInt("group", 1))
	switch {
	case group == 1:
		if x != nil {
			a.attachLayout(x, n.Input(1), 1, roleSlice, n.Name)
		}
		s := a.newSpace(m, "")
		a.attach = append(a.attach, attachment{param: n.Input(1), axis: 0, inner: 1, role: roleWeight, node: n.Name, space: s})
		if b != nil {
			a.attach = append(a.attach, attachment{param: n.Input(2), axis: 0, inner: 1, role: roleMasked, node: n.Name, space: s})
		}
		return &layout{axis: 1, rank: w.T.Rank(), inner: 1, segs: []seg{{s, m}}}
	case cg == 1 && m == group && x != nil && x.channels() == m:
		// Depthwise: output channel c is input channel c.
		a.attachLayout(x, n.Input(1), 0, roleMasked, n.Name)
		if b != nil {
			a.attachLayout(x, n.Input(2), 0, roleMasked, n.Name)
		}
		a.depthwis = append(a.depthwis, n.Name)
		return x
	default:
		a.fixLayout(x, fmt.Sprintf("read by the grouped %s (group %d)", what, group))
		return nil
	}
}

func (a *ChannelAnalysis) gemm(n *rt.Node, ins []*layout, w *rt.Param, c *rt.Param) *layout {
	x := ins[0]
	what := fmt.Sprintf("Gemm %q", n.Name)
	for _, l := range ins[1:] {
		a.fixLayout(l, "used as a parameter of "+what)
	}
	transB := n.AttrInt("transB", 0) != 0
	if w == nil || w.T.Rank() != 2 || n.AttrInt("transA", 0) != 0 || x != nil && (x.rank != 2 || x.axis != 1) {
		a.fixLayout(x, "read by "+what+", which has no weight parameter or transposes its input")
		return nil
	}
	kAxis, nAxis := 0, 1
	if transB {
		kAxis, nAxis = 1, 0
	}
	if x != nil {
		a.attachLayout(x, n.Input(1), kAxis, roleSlice, n.Name)
	}
	units := w.T.Shape[nAxis]
	s := a.newSpace(units, "")
	a.attach = append(a.attach, attachment{param: n.Input(1), axis: nAxis, inner: 1, role: roleWeight, node: n.Name, space: s})
	if name := n.Input(2); name != "" {
		switch {
		case c == nil || c.T.DType != rt.Float32:
			a.fix(s, what+" has a bias C that is not a float32 parameter")
		case c.T.Len() == 1:
		case c.T.Rank() == 1 && c.T.Shape[0] == units:
			a.attach = append(a.attach, attachment{param: name, axis: 0, inner: 1, role: roleMasked, node: n.Name, space: s})
		case c.T.Rank() == 2 && c.T.Shape[0] == 1 && c.T.Shape[1] == units:
			a.attach = append(a.attach, attachment{param: name, axis: 1, inner: 1, role: roleMasked, node: n.Name, space: s})
		default:
			a.fix(s, what+" has a bias C that is not a vector")
		}
	}
	return &layout{axis: 1, rank: 2, inner: 1, segs: []seg{{s, units}}}
}

func (a *ChannelAnalysis) matmul(n *rt.Node, ins []*layout, w *rt.Param) *layout {
	x := ins[0]
	what := fmt.Sprintf("MatMul %q", n.Name)
	a.fixLayout(ins[1], "used as the weight of "+what)
	if w == nil || w.T.Rank() != 2 || x != nil && x.axis != x.rank-1 {
		a.fixLayout(x, "read by "+what+", which has no weight parameter")
		return nil
	}
	if x != nil {
		a.attachLayout(x, n.Input(1), 0, roleSlice, n.Name)
	}
	units := w.T.Shape[1]
	s := a.newSpace(units, "")
	a.attach = append(a.attach, attachment{param: n.Input(1), axis: 1, inner: 1, role: roleWeight, node: n.Name, space: s})
	rank := len(a.shapes[n.Outputs[0]])
	if rank < 1 {
		a.fix(s, what+" has an output of unknown rank")
		return nil
	}
	return &layout{axis: rank - 1, rank: rank, inner: 1, segs: []seg{{s, units}}}
}

func (a *ChannelAnalysis) batchNorm(n *rt.Node, ins []*layout, param func(string) *rt.Param) *layout {
	x := ins[0]
	what := fmt.Sprintf("BatchNormalization %q", n.Name)
	for _, l := range ins[1:] {
		a.fixLayout(l, "used as a parameter of "+what)
	}
	if x == nil {
		return nil
	}
	if x.axis != 1 || x.inner != 1 || len(n.Inputs) < 5 {
		a.fixLayout(x, "normalised by "+what+" along an unexpected axis")
		return nil
	}
	for i := 1; i <= 4; i++ {
		if p := param(n.Input(i)); p == nil || p.T.Len() != x.channels() {
			a.fixLayout(x, what+" has parameters that are not per-channel float32 parameters")
			return nil
		}
	}
	roles := [5]role{1: roleBNScale, 2: roleMasked, 3: roleSlice, 4: roleSlice}
	for i := 1; i <= 4; i++ {
		a.attachLayout(x, n.Input(i), 0, roles[i], n.Name)
	}
	return x
}

// constOperand attaches a constant operand of an elementwise op that is
// per channel along out's axis (a broadcast one needs nothing).
func (a *ChannelAnalysis) constOperand(n *rt.Node, out *layout, name string, r role) {
	p := a.g.Params[name]
	if p == nil {
		return
	}
	ps := p.T.Shape
	idx := out.axis - (out.rank - len(ps))
	if idx < 0 || idx >= len(ps) || ps[idx] == 1 {
		return
	}
	if ps[idx] != out.channels()*out.inner || p.T.DType != rt.Float32 {
		a.fixLayout(out, fmt.Sprintf("combined by %s %q with the constant %s of shape %v", n.OpType, n.Name, name, ps))
		return
	}
	a.attachLayout(out, name, idx, r, n.Name)
}

func (a *ChannelAnalysis) elementwise(n *rt.Node, ins []*layout) *layout {
	what := fmt.Sprintf("%s %q", n.OpType, n.Name)
	outShape := a.shapes[n.Outputs[0]]
	var ref *layout
	ok := true
	for i, in := range n.Inputs {
		if _, isParam := a.g.Params[in]; isParam || in == "" {
			continue
		}
		l := ins[i]
		if l == nil {
			continue // checked below, once the channel axis is known
		}
		if l.rank != len(outShape) || a.shapes[in][l.axis] != outShape[l.axis] {
			ok = false
			continue
		}
		if ref == nil {
			ref = l
		} else if !a.unify(ref, l, what) {
			ok = false
		}
	}
	if ref != nil {
		// An untracked computed operand must broadcast along the channels.
		for i, in := range n.Inputs {
			if _, isParam := a.g.Params[in]; isParam || in == "" || ins[i] != nil {
				continue
			}
			s := a.shapes[in]
			if idx := ref.axis - (ref.rank - len(s)); idx >= 0 && idx < len(s) && s[idx] != 1 {
				ok = false
			}
		}
	}
	if !ok {
		for _, l := range ins {
			a.fixLayout(l, "combined by "+what+" with values whose channels cannot follow")
		}
		return nil
	}
	if ref == nil {
		return nil
	}
	for _, in := range n.Inputs {
		if _, isParam := a.g.Params[in]; isParam {
			a.constOperand(n, ref, in, elementwise[n.OpType])
		}
	}
	return ref
}

func (a *ChannelAnalysis) concat(n *rt.Node, ins []*layout) *layout {
	what := fmt.Sprintf("Concat %q", n.Name)
	rank := len(a.shapes[n.Outputs[0]])
	axis := int(n.AttrInt("axis", 0))
	if axis < 0 {
		axis += rank
	}
	out := &layout{axis: axis, rank: rank, inner: 1}
	for i, in := range n.Inputs {
		l := ins[i]
		if l == nil {
			s := a.shapes[in]
			if axis < 0 || axis >= len(s) {
				return nil
			}
			// An untracked input is a segment of fixed channels.
			l = &layout{axis: axis, rank: rank, inner: 1, segs: []seg{{a.newSpace(s[axis], "concatenated by "+what+" with values it cannot follow"), s[axis]}}}
		}
		if l.axis != axis || l.inner != 1 || l.rank != rank {
			for _, x := range ins {
				a.fixLayout(x, "concatenated by "+what+" along another axis")
			}
			return nil
		}
		out.segs = append(out.segs, l.segs...)
	}
	return out
}

func (a *ChannelAnalysis) flatten(n *rt.Node, x *layout) *layout {
	if x == nil {
		return nil
	}
	axis := int(n.AttrInt("axis", 1))
	if axis < 0 {
		axis += x.rank
	}
	if x.rank == 2 && axis == 1 {
		return x
	}
	if axis != 1 || x.axis != 1 {
		a.fixLayout(x, fmt.Sprintf("flattened by Flatten %q at axis %d", n.Name, axis))
		return nil
	}
	s := a.shapes[n.Input(0)]
	inner := x.inner
	for _, d := range s[2:] {
		inner *= d
	}
	return &layout{axis: 1, rank: 2, inner: inner, segs: x.segs}
}

// reshape follows a Reshape to [N, C*H*W] (a flatten) of a [N, C, ...]
// value with a constant shape; others fix the channels.
func (a *ChannelAnalysis) reshape(n *rt.Node, ins []*layout) *layout {
	x := ins[0]
	a.fixLayout(ins[1], fmt.Sprintf("used as the shape of Reshape %q", n.Name))
	if x == nil {
		return nil
	}
	in, out := a.shapes[n.Input(0)], a.shapes[n.Outputs[0]]
	sp, isParam := a.g.Params[n.Input(1)]
	if !isParam || sp.T.DType != rt.Int64 || len(out) != 2 || len(in) < 2 || x.axis != 1 || out[0] != in[0] || n.AttrInt("allowzero", 0) != 0 {
		a.fixLayout(x, fmt.Sprintf("reshaped by Reshape %q", n.Name))
		return nil
	}
	inner := x.inner
	for _, d := range in[2:] {
		inner *= d
	}
	a.reshapes = append(a.reshapes, n.Name)
	return &layout{axis: 1, rank: 2, inner: inner, segs: x.segs}
}

// checkParams ties spaces that slice the same parameter range, and fixes
// those whose parameters are read where the analysis did not follow.
func (a *ChannelAnalysis) checkParams() {
	type key struct {
		param               string
		axis, offset, inner int
	}
	first := map[key]int{}
	attachedBy := map[string]map[string]bool{}
	for _, at := range a.attach {
		k := key{at.param, at.axis, at.offset, at.inner}
		if s, ok := first[k]; ok {
			a.union(s, at.space, "a parameter shared by layers with different channels")
		} else {
			first[k] = at.space
		}
		if attachedBy[at.param] == nil {
			attachedBy[at.param] = map[string]bool{}
		}
		attachedBy[at.param][at.node] = true
	}
	readers := map[string][]string{}
	for _, n := range a.g.Nodes {
		for _, in := range n.Inputs {
			readers[in] = append(readers[in], n.Name)
		}
	}
	io := map[string]bool{}
	for _, v := range a.g.Inputs {
		io[v.Name] = true
	}
	for _, v := range a.g.Outputs {
		io[v.Name] = true
	}
	for _, at := range a.attach {
		if io[at.param] {
			a.fix(at.space, fmt.Sprintf("its parameter %q is a graph input or output", at.param))
			continue
		}
		for _, r := range readers[at.param] {
			if !attachedBy[at.param][r] {
				a.fix(at.space, fmt.Sprintf("its parameter %q is also read by node %q", at.param, r))
			}
		}
	}
}

func (a *ChannelAnalysis) buildGroups() {
	byRoot := map[int]*Group{}
	for _, at := range a.attach {
		if at.role != roleWeight {
			continue
		}
		r := a.find(at.space)
		gr, ok := byRoot[r]
		if !ok {
			gr = &Group{Size: a.spaces[r].size, Fixed: a.spaces[r].fixed, root: r}
			byRoot[r] = gr
			a.Groups = append(a.Groups, gr)
		}
		if !contains(gr.Producers, at.node) {
			gr.Producers = append(gr.Producers, at.node)
		}
		if !contains(gr.Params, at.param) {
			gr.Params = append(gr.Params, at.param)
		}
	}
	for i, gr := range a.Groups {
		gr.ID = i
		if gr.Fixed == "" && gr.Size < 2 {
			gr.Fixed = "it has a single channel"
		}
	}
}

func contains(s []string, v string) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

// members returns the attachments of group gr.
func (a *ChannelAnalysis) members(gr *Group) []attachment {
	var out []attachment
	for _, at := range a.attach {
		if a.find(at.space) == gr.root {
			out = append(out, at)
		}
	}
	return out
}

// axisRange calls f with every element index of t whose index along axis
// is in [lo, hi).
func axisRange(shape []int, axis, lo, hi int, f func(i int)) {
	outer, inner := 1, 1
	for _, d := range shape[:axis] {
		outer *= d
	}
	for _, d := range shape[axis+1:] {
		inner *= d
	}
	dim := shape[axis]
	for o := 0; o < outer; o++ {
		for j := lo; j < hi; j++ {
			base := (o*dim + j) * inner
			for k := 0; k < inner; k++ {
				f(base + k)
			}
		}
	}
}

// Scores returns a score per channel of gr: the sum over its producers of
// the L1 or L2 norm of the channel's weights, or with CriterionBN the sum
// of |gamma| over its BatchNormalization layers (L1 when there are none).
func (a *ChannelAnalysis) Scores(gr *Group, criterion string) []float64 {
	mem := a.members(gr)
	want := roleWeight
	if criterion == CriterionBN {
		for _, at := range mem {
			if at.role == roleBNScale {
				want = roleBNScale
				break
			}
		}
	}
	scores := make([]float64, gr.Size)
	for _, at := range mem {
		if at.role != want {
			continue
		}
		t := a.g.Params[at.param].T
		for c := 0; c < gr.Size; c++ {
			s := 0.0
			axisRange(t.Shape, at.axis, at.offset+c*at.inner, at.offset+(c+1)*at.inner, func(i int) {
				v := float64(t.F32[i])
				if criterion == CriterionL2 {
					s += v * v
				} else {
					s += math.Abs(v)
				}
			})
			if criterion == CriterionL2 {
				s = math.Sqrt(s)
			}
			scores[c] += s
		}
	}
	return scores
}

// Selection lists, per group ID, the channels to remove (sorted).
type Selection map[int][]int

// Select chooses the round(s*Size) channels of lowest score of every
// group given a sparsity (at most Size-1, ties broken by index).
func (a *ChannelAnalysis) Select(sparsity map[int]float64, criterion string) Selection {
	sel := Selection{}
	for _, gr := range a.Groups {
		s, ok := sparsity[gr.ID]
		if !ok || gr.Fixed != "" {
			continue
		}
		k := min(pruneCount(s, gr.Size), gr.Size-1)
		if k <= 0 {
			continue
		}
		scores := a.Scores(gr, criterion)
		idx := make([]int, gr.Size)
		for i := range idx {
			idx[i] = i
		}
		sort.SliceStable(idx, func(x, y int) bool { return scores[idx[x]] < scores[idx[y]] })
		rm := append([]int{}, idx[:k]...)
		sort.Ints(rm)
		sel[gr.ID] = rm
	}
	return sel
}

// Masks returns masks that zero the removed channels' producer weights,
// biases, and BatchNormalization scales and shifts: after Apply the
// channels are exactly zero wherever the graph is Conv/Gemm -> BN ->
// ReLU-like (and stay so through fine-tuning with the masks).
func (a *ChannelAnalysis) Masks(sel Selection) Masks {
	m := Masks{}
	for _, gr := range a.Groups {
		rm := sel[gr.ID]
		if len(rm) == 0 {
			continue
		}
		for _, at := range a.members(gr) {
			if at.role == roleSlice {
				continue
			}
			t := a.g.Params[at.param].T
			keep, ok := m[at.param]
			if !ok {
				keep = make([]bool, t.Len())
				for i := range keep {
					keep[i] = true
				}
				m[at.param] = keep
			}
			for _, c := range rm {
				axisRange(t.Shape, at.axis, at.offset+c*at.inner, at.offset+(c+1)*at.inner, func(i int) { keep[i] = false })
			}
		}
	}
	return m
}

// RemoveChannels physically removes the selected channels from the graph
// the analysis was made of: it slices every attached parameter, updates
// depthwise group counts and flatten-like Reshape shapes, and checks the
// result by running it on a random input. The graph is changed in place
// only when the check passes; the analysis (and masks made from it) no
// longer describe it afterwards.
func (a *ChannelAnalysis) RemoveChannels(sel Selection) error {
	g := a.g
	type axisKey struct {
		param string
		axis  int
	}
	removed := map[axisKey]map[int]bool{}
	for _, gr := range a.Groups {
		rm := sel[gr.ID]
		if len(rm) == 0 {
			continue
		}
		if gr.Fixed != "" {
			return fmt.Errorf("channel group %d (%s) cannot be pruned: %s", gr.ID, strings.Join(gr.Producers, ", "), gr.Fixed)
		}
		for _, at := range a.members(gr) {
			k := axisKey{at.param, at.axis}
			if removed[k] == nil {
				removed[k] = map[int]bool{}
			}
			for _, c := range rm {
				if c < 0 || c >= gr.Size {
					return fmt.Errorf("channel %d of group %d is out of range [0, %d)", c, gr.ID, gr.Size)
				}
				for j := at.offset + c*at.inner; j < at.offset+(c+1)*at.inner; j++ {
					removed[k][j] = true
				}
			}
		}
	}
	if len(removed) == 0 {
		return nil
	}
	// Work on a copy: the original stays intact if the check fails.
	ng := g.Clone()
	keys := make([]axisKey, 0, len(removed))
	for k := range removed {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		if keys[i].param != keys[j].param {
			return keys[i].param < keys[j].param
		}
		return keys[i].axis < keys[j].axis
	})
	for _, k := range keys {
		p := ng.Params[k.param]
		p.T = dropIndices(p.T, k.axis, removed[k])
	}
	nodes := map[string]*rt.Node{}
	for _, n := range ng.Nodes {
		nodes[n.Name] = n
	}
	for _, name := range a.depthwis {
		n := nodes[name]
		n.SetAttr("group", rt.Attr{Kind: rt.AttrInt, I: int64(ng.Params[n.Input(1)].T.Shape[0])})
	}
	for _, name := range a.reshapes {
		n := nodes[name]
		old := ng.Params[n.Input(1)].T
		first := old.I64[0]
		if first == -1 {
			first = 0 // copy the batch dimension; the -1 goes to the features
		}
		pname := uniqueParam(ng, n.Name+".shape")
		ng.AddParam(pname, rt.FromInt64([]int64{first, -1}, 2), false)
		n.Inputs[1] = pname
	}
	rt.RemoveDeadCode(ng)
	if err := checkRuns(g, ng); err != nil {
		return fmt.Errorf("the pruned model does not run: %w (this is a bug in channel pruning; please report it)", err)
	}
	*g = *ng
	return nil
}

func uniqueParam(g *rt.Graph, base string) string {
	name := base
	for i := 1; ; i++ {
		if _, used := g.Params[name]; !used {
			return name
		}
		name = fmt.Sprintf("%s_%d", base, i)
	}
}

// dropIndices returns t without the given indices along axis.
func dropIndices(t *rt.Tensor, axis int, drop map[int]bool) *rt.Tensor {
	dim := t.Shape[axis]
	var keep []int
	for i := 0; i < dim; i++ {
		if !drop[i] {
			keep = append(keep, i)
		}
	}
	shape := append([]int{}, t.Shape...)
	shape[axis] = len(keep)
	out := rt.New(t.DType, shape...)
	outer, inner := 1, 1
	for _, d := range t.Shape[:axis] {
		outer *= d
	}
	for _, d := range t.Shape[axis+1:] {
		inner *= d
	}
	for o := 0; o < outer; o++ {
		for j, src := range keep {
			copy(out.F32[(o*len(keep)+j)*inner:(o*len(keep)+j+1)*inner], t.F32[(o*dim+src)*inner:(o*dim+src+1)*inner])
		}
	}
	return out
}

// checkRuns runs both graphs on the same random input (batch 2 when the
// batch is dynamic) and checks that the outputs have the same shapes and
// are finite.
func checkRuns(before, after *rt.Graph) error {
	run := func(g *rt.Graph) (map[string]*rt.Tensor, error) {
		ex, err := rt.NewExecutor(g, rt.Options{Threads: 1})
		if err != nil {
			return nil, err
		}
		return ex.Run(context.Background(), eval.RandomInputs(g, ex.InputShapes(2), 1))
	}
	want, err := run(before)
	if err != nil {
		return fmt.Errorf("the original model: %w", err)
	}
	got, err := run(after)
	if err != nil {
		return err
	}
	for name, w := range want {
		o := got[name]
		if o == nil {
			return fmt.Errorf("output %q is missing", name)
		}
		if !rt.SameShape(o.Shape, w.Shape) {
			return fmt.Errorf("output %q has shape %v, the original %v", name, o.Shape, w.Shape)
		}
		for _, v := range o.F32 {
			if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
				return fmt.Errorf("output %q holds %v", name, v)
			}
		}
	}
	return nil
}
