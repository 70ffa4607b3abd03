package importer

import (
	"fmt"

	"github.com/compressml/compress/runtime"
)

// Rewriting every op version to its opset-18 form. Each case names the
// version where the op took the canonical form; below it the legacy form is
// rewritten. Values moved from attributes to inputs become frozen
// parameters named "<node>_<attribute>".

// reduceOps moved axes from attribute to input at opset 18 (ReduceSum at 13).
var reduceOps = map[string]bool{
	"ReduceMean": true, "ReduceMax": true, "ReduceMin": true, "ReduceProd": true,
	"ReduceL1": true, "ReduceL2": true, "ReduceLogSum": true, "ReduceLogSumExp": true,
	"ReduceSumSquare": true,
}

// normalize rewrites n (a default-domain node of a model of opset l.opset)
// to canonical form. It returns the nodes replacing n (usually n itself).
func (l *loader) normalize(n *runtime.Node) ([]*runtime.Node, error) {
	if n.Domain != "" {
		return []*runtime.Node{n}, nil
	}
	v := l.opset
	var err error
	switch op := n.OpType; {
	case op == "Unsqueeze" || op == "Squeeze":
		if v < 13 {
			err = l.intsToInput(n, "axes", 1, false, false)
		}
	case op == "ReduceSum":
		if v < 13 {
			err = l.intsToInput(n, "axes", 1, false, true)
		}
	case reduceOps[op]:
		if v < 18 {
			err = l.intsToInput(n, "axes", 1, false, true)
		}
	case op == "Split":
		if v < 13 {
			err = l.intsToInput(n, "split", 1, false, false)
		}
		if err == nil && v < 18 && n.Input(1) == "" {
			if _, ok := n.Attrs["num_outputs"]; !ok {
				n.SetAttr("num_outputs", runtime.Attr{Kind: runtime.AttrInt, I: int64(len(n.Outputs))})
			}
		}
	case op == "Pad":
		if v < 11 {
			if err = l.intsToInput(n, "pads", 1, true, false); err == nil {
				err = l.floatToInput(n, "value", 2)
			}
		}
	case op == "Clip":
		if v < 11 {
			if err = l.floatToInput(n, "min", 1); err == nil {
				err = l.floatToInput(n, "max", 2)
			}
		}
	case op == "Slice":
		if v < 10 {
			for i, attr := range []string{"starts", "ends", "axes"} {
				if err = l.intsToInput(n, attr, i+1, i < 2, false); err != nil {
					break
				}
			}
		}
	case op == "TopK":
		if v < 10 {
			err = l.intToInput(n, "k", 1)
		}
	case op == "Dropout":
		delete(n.Attrs, "is_test")
		if v < 12 {
			err = l.floatToInput(n, "ratio", 1)
		}
	case op == "BatchNormalization":
		if a, ok := n.Attrs["spatial"]; ok && a.Kind == runtime.AttrInt && a.I == 0 {
			return nil, fmt.Errorf("%v has spatial=0 (per-activation statistics, opset %d), which compress does not support; "+
				"re-export the model at opset 9 or later", n, v)
		}
		delete(n.Attrs, "spatial")
		delete(n.Attrs, "is_test")
		delete(n.Attrs, "consumed_inputs")
	case op == "Resize":
		if v == 10 {
			l.resize10(n)
		}
	case op == "Softmax" || op == "LogSoftmax" || op == "Hardmax":
		if v < 13 {
			return l.legacySoftmax(n)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("%v (opset %d): %w", n, v, err)
	}
	trimInputs(n)
	return []*runtime.Node{n}, nil
}

// setInput sets input i of n, padding with absent inputs.
func setInput(n *runtime.Node, i int, name string) {
	for len(n.Inputs) <= i {
		n.Inputs = append(n.Inputs, "")
	}
	n.Inputs[i] = name
}

// trimInputs removes trailing absent inputs.
func trimInputs(n *runtime.Node) {
	for len(n.Inputs) > 0 && n.Inputs[len(n.Inputs)-1] == "" {
		n.Inputs = n.Inputs[:len(n.Inputs)-1]
	}
}

// uniqueValue returns an unused value name based on base and reserves it.
func (l *loader) uniqueValue(base string) string {
	name := base
	for i := 1; l.used[name]; i++ {
		name = fmt.Sprintf("%s_%d", base, i)
	}
	l.used[name] = true
	return name
}

// newParam adds a frozen parameter for node n and returns its name.
func (l *loader) newParam(n *runtime.Node, suffix string, t *runtime.Tensor) string {
	name := l.uniqueValue(n.Name + "_" + suffix)
	l.g.AddParam(name, t, false)
	l.ranks[name] = len(t.Shape)
	return name
}

// takeAttr removes attribute name from n, checking that input idx is not
// also given.
func takeAttr(n *runtime.Node, name string, idx int) (runtime.Attr, bool, error) {
	a, ok := n.Attrs[name]
	if !ok {
		return a, false, nil
	}
	if n.Input(idx) != "" {
		return a, false, fmt.Errorf("has %q both as attribute and as input %d", name, idx)
	}
	delete(n.Attrs, name)
	return a, true, nil
}

// intsToInput moves an ints attribute to input idx as a 1-D int64 tensor.
// required reports a missing attribute; skipEmpty leaves an empty list as
// an absent input (for Reduce*, where both mean "all axes").
func (l *loader) intsToInput(n *runtime.Node, attr string, idx int, required, skipEmpty bool) error {
	a, ok, err := takeAttr(n, attr, idx)
	if err != nil {
		return err
	}
	if !ok {
		if required && n.Input(idx) == "" {
			return fmt.Errorf("attribute %q is missing", attr)
		}
		return nil
	}
	if a.Kind != runtime.AttrInts {
		return fmt.Errorf("attribute %q should be a list of ints", attr)
	}
	if skipEmpty && len(a.Ints) == 0 {
		return nil
	}
	vals := append([]int64{}, a.Ints...)
	setInput(n, idx, l.newParam(n, attr, runtime.FromInt64(vals, len(vals))))
	return nil
}

// intToInput moves an int attribute to input idx as a 1-element int64
// tensor of shape [1] (TopK's k).
func (l *loader) intToInput(n *runtime.Node, attr string, idx int) error {
	a, ok, err := takeAttr(n, attr, idx)
	if err != nil {
		return err
	}
	if !ok {
		if n.Input(idx) == "" {
			return fmt.Errorf("attribute %q is missing", attr)
		}
		return nil
	}
	if a.Kind != runtime.AttrInt {
		return fmt.Errorf("attribute %q should be an int", attr)
	}
	setInput(n, idx, l.newParam(n, attr, runtime.FromInt64([]int64{a.I}, 1)))
	return nil
}

// floatToInput moves an optional float attribute to input idx as a float32
// scalar.
func (l *loader) floatToInput(n *runtime.Node, attr string, idx int) error {
	a, ok, err := takeAttr(n, attr, idx)
	if err != nil || !ok {
		return err
	}
	if a.Kind != runtime.AttrFloat {
		return fmt.Errorf("attribute %q should be a float", attr)
	}
	setInput(n, idx, l.newParam(n, attr, runtime.FromFloat32([]float32{a.F})))
	return nil
}

// resize10 rewrites Resize-10 (X, scales) to the opset-11+ form
// (X, roi, scales) with the coordinate mapping Resize-10 used.
func (l *loader) resize10(n *runtime.Node) {
	if len(n.Inputs) == 2 {
		n.Inputs = []string{n.Inputs[0], "", n.Inputs[1]}
	}
	if _, ok := n.Attrs["coordinate_transformation_mode"]; !ok {
		n.SetAttr("coordinate_transformation_mode", runtime.Attr{Kind: runtime.AttrString, S: "asymmetric"})
	}
	if n.AttrString("mode", "nearest") == "nearest" {
		if _, ok := n.Attrs["nearest_mode"]; !ok {
			n.SetAttr("nearest_mode", runtime.Attr{Kind: runtime.AttrString, S: "floor"})
		}
	}
}

// legacySoftmax rewrites Softmax, LogSoftmax or Hardmax before opset 13,
// which flatten the input to 2-D at axis (default 1) and normalise each row,
// to the opset-13 form, which normalises along one axis. Where the input's
// rank is known and axis is its last dimension the two agree and only the
// axis is made explicit; otherwise the node becomes
// Flatten(axis) -> op(axis=-1) -> Reshape(to Shape(input)).
func (l *loader) legacySoftmax(n *runtime.Node) ([]*runtime.Node, error) {
	axis := n.AttrInt("axis", 1)
	x := n.Input(0)
	if x == "" || len(n.Outputs) != 1 {
		return []*runtime.Node{n}, nil // the kernel reports the malformed node
	}
	r, known := l.ranks[x]
	if axis == -1 || (known && axis == int64(r-1)) {
		n.SetAttr("axis", runtime.Attr{Kind: runtime.AttrInt, I: -1})
		return []*runtime.Node{n}, nil
	}
	out := n.Outputs[0]
	flat := l.uniqueValue(n.Name + "_flat")
	shape := l.uniqueValue(n.Name + "_shape")
	rows := l.uniqueValue(n.Name + "_rows")
	newNode := func(suffix, op string, in []string, outName string) *runtime.Node {
		name := l.uniqueNodeName(n.Name + "_" + suffix)
		l.claimed[name] = true
		return &runtime.Node{Name: name, OpType: op, Inputs: in, Outputs: []string{outName}}
	}
	shapeNode := newNode("shape", "Shape", []string{x}, shape)
	flatten := newNode("flatten", "Flatten", []string{x}, flat)
	flatten.SetAttr("axis", runtime.Attr{Kind: runtime.AttrInt, I: axis})
	n.Inputs = []string{flat}
	n.Outputs = []string{rows}
	n.SetAttr("axis", runtime.Attr{Kind: runtime.AttrInt, I: -1})
	reshape := newNode("reshape", "Reshape", []string{rows, shape}, out)
	return []*runtime.Node{shapeNode, flatten, n, reshape}, nil
}

// Rank tracking: just enough to see that the common legacy Softmax (on the
// 2-D output of Gemm or Flatten, or on a graph input of known rank) needs
// no rewriting.

var sameRankOps = map[string]bool{
	"Relu": true, "LeakyRelu": true, "Elu": true, "Selu": true, "Sigmoid": true, "Tanh": true,
	"HardSigmoid": true, "HardSwish": true, "Softplus": true, "Softsign": true, "Clip": true,
	"Softmax": true, "LogSoftmax": true, "Hardmax": true, "Exp": true, "Log": true, "Neg": true,
	"Abs": true, "Sqrt": true, "Reciprocal": true, "Erf": true, "Floor": true, "Ceil": true,
	"Round": true, "Sign": true, "Not": true, "Identity": true, "Dropout": true, "Cast": true,
	"BatchNormalization": true, "InstanceNormalization": true, "LRN": true, "Conv": true,
	"ConvTranspose": true, "MaxPool": true, "AveragePool": true, "GlobalAveragePool": true,
	"GlobalMaxPool": true, "Transpose": true, "Concat": true, "Pad": true, "Slice": true,
	"Split": true, "Resize": true, "PRelu": true, "Gelu": true, "Mish": true,
	"LpNormalization": true, "CumSum": true, "LayerNormalization": true,
}

var broadcastOps = map[string]bool{
	"Add": true, "Sub": true, "Mul": true, "Div": true, "Pow": true, "Where": true,
	"Equal": true, "Greater": true, "Less": true, "GreaterOrEqual": true, "LessOrEqual": true,
	"And": true, "Or": true, "Xor": true, "Max": true, "Min": true, "Sum": true, "Mean": true, "Mod": true,
}

// trackRank records the rank of n's outputs when it follows from the ranks
// of its inputs.
func (l *loader) trackRank(n *runtime.Node) {
	if n.Domain != "" || len(n.Outputs) == 0 {
		return
	}
	rank := func(name string) (int, bool) {
		r, ok := l.ranks[name]
		return r, ok
	}
	set := func(r int) {
		for _, o := range n.Outputs {
			if _, known := l.ranks[o]; !known && o != "" {
				l.ranks[o] = r
			}
		}
	}
	switch op := n.OpType; {
	case sameRankOps[op]:
		if r, ok := rank(n.Input(0)); ok {
			if op == "BatchNormalization" || op == "Dropout" {
				l.ranks[n.Outputs[0]] = r
				return
			}
			set(r)
		}
	case broadcastOps[op]:
		maxR := 0
		for _, in := range n.Inputs {
			r, ok := rank(in)
			if !ok {
				return
			}
			maxR = max(maxR, r)
		}
		set(maxR)
	case op == "Gemm" || op == "Flatten":
		set(2)
	case op == "Shape":
		set(1)
	case op == "MatMul":
		a, okA := rank(n.Input(0))
		b, okB := rank(n.Input(1))
		if okA && okB && a >= 2 && b >= 2 {
			set(max(a, b))
		}
	case op == "Reshape":
		if p, ok := l.g.Params[n.Input(1)]; ok && len(p.T.Shape) == 1 {
			set(p.T.Shape[0])
		}
	case op == "Unsqueeze" || op == "Squeeze":
		r, ok := rank(n.Input(0))
		p, okP := l.g.Params[n.Input(1)]
		if !ok || !okP || len(p.T.Shape) != 1 {
			return
		}
		if op == "Unsqueeze" {
			set(r + p.T.Shape[0])
		} else if r >= p.T.Shape[0] {
			set(r - p.T.Shape[0])
		}
	}
}
