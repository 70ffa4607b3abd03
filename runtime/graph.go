package runtime

import (
	"fmt"
	"sort"
)

// AttrKind says which field of an Attr holds its value.
type AttrKind uint8

// Attribute kinds (a subset of ONNX's that the runtime's ops use).
const (
	AttrFloat AttrKind = iota + 1
	AttrInt
	AttrString
	AttrTensor
	AttrFloats
	AttrInts
	AttrStrings
)

// Attr is one node attribute.
type Attr struct {
	Kind    AttrKind
	F       float32
	I       int64
	S       string
	T       *Tensor
	Floats  []float32
	Ints    []int64
	Strings []string
}

// Node is one operation of a Graph. Inputs and Outputs name values; an empty
// name is an absent optional input or output. Nodes hold canonical op forms:
// the importer rewrites every ONNX op version to the form of opset 18 (for
// example Unsqueeze, Squeeze, Reduce*, Split, Pad and Clip take axes, splits,
// pads and bounds as inputs, never as attributes).
type Node struct {
	Name    string
	OpType  string
	Domain  string // "" is the default ONNX domain
	Inputs  []string
	Outputs []string
	Attrs   map[string]Attr
}

// AttrInt returns the int attribute name, or def when absent.
func (n *Node) AttrInt(name string, def int64) int64 {
	if a, ok := n.Attrs[name]; ok && a.Kind == AttrInt {
		return a.I
	}
	return def
}

// AttrFloat returns the float attribute name, or def when absent.
func (n *Node) AttrFloat(name string, def float32) float32 {
	if a, ok := n.Attrs[name]; ok && a.Kind == AttrFloat {
		return a.F
	}
	return def
}

// AttrString returns the string attribute name, or def when absent.
func (n *Node) AttrString(name string, def string) string {
	if a, ok := n.Attrs[name]; ok && a.Kind == AttrString {
		return a.S
	}
	return def
}

// AttrInts returns the ints attribute name, or def when absent.
func (n *Node) AttrInts(name string, def []int64) []int64 {
	if a, ok := n.Attrs[name]; ok && a.Kind == AttrInts {
		return a.Ints
	}
	return def
}

// AttrFloats returns the floats attribute name, or def when absent.
func (n *Node) AttrFloats(name string, def []float32) []float32 {
	if a, ok := n.Attrs[name]; ok && a.Kind == AttrFloats {
		return a.Floats
	}
	return def
}

// SetAttr sets an attribute, creating the map when needed.
func (n *Node) SetAttr(name string, a Attr) {
	if n.Attrs == nil {
		n.Attrs = map[string]Attr{}
	}
	n.Attrs[name] = a
}

// Input returns input i's name, or "" when the node has fewer inputs.
func (n *Node) Input(i int) string {
	if i < len(n.Inputs) {
		return n.Inputs[i]
	}
	return ""
}

// String names the node for error messages: `Conv node "conv1"`.
func (n *Node) String() string {
	name := n.Name
	if name == "" && len(n.Outputs) > 0 {
		name = "producing " + n.Outputs[0]
	}
	return fmt.Sprintf("%s node %q", n.OpType, name)
}

// ValueInfo describes a graph input or output. A dimension of -1 is unknown
// (dynamic); DimNames keeps ONNX's symbolic names where there are any.
type ValueInfo struct {
	Name     string
	DType    DType
	Shape    []int
	DimNames []string
}

// Param is a named constant tensor of the graph (an ONNX initializer).
// Trainable marks the parameters an optimizer may change.
type Param struct {
	Name      string
	T         *Tensor
	Trainable bool
}

// Graph is the intermediate representation every step of compress reads and
// rewrites. Nodes are kept in topological order (see TopoSort).
type Graph struct {
	Name     string
	Nodes    []*Node
	Inputs   []ValueInfo
	Outputs  []ValueInfo
	Params   map[string]*Param
	Opset    int64             // the default-domain opset the model was imported from
	Producer string            // producer name and version, as recorded in the file
	Doc      string            // doc string of the model
	Meta     map[string]string // metadata_props
}

// NewGraph returns an empty graph.
func NewGraph(name string) *Graph {
	return &Graph{Name: name, Params: map[string]*Param{}, Opset: 18}
}

// AddParam adds (or replaces) a parameter.
func (g *Graph) AddParam(name string, t *Tensor, trainable bool) *Param {
	if g.Params == nil {
		g.Params = map[string]*Param{}
	}
	p := &Param{Name: name, T: t, Trainable: trainable}
	g.Params[name] = p
	return p
}

// ParamNames returns the parameter names in sorted order (for deterministic
// iteration).
func (g *Graph) ParamNames() []string {
	names := make([]string, 0, len(g.Params))
	for n := range g.Params {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// IsInput reports whether name is a graph input that is not also a parameter.
func (g *Graph) IsInput(name string) bool {
	for _, in := range g.Inputs {
		if in.Name == name {
			_, isParam := g.Params[name]
			return !isParam
		}
	}
	return false
}

// Producers maps every value name to the node producing it.
func (g *Graph) Producers() map[string]*Node {
	m := make(map[string]*Node, len(g.Nodes))
	for _, n := range g.Nodes {
		for _, o := range n.Outputs {
			if o != "" {
				m[o] = n
			}
		}
	}
	return m
}

// Consumers maps every value name to the nodes reading it, in graph order.
func (g *Graph) Consumers() map[string][]*Node {
	m := map[string][]*Node{}
	for _, n := range g.Nodes {
		for _, in := range n.Inputs {
			if in != "" {
				m[in] = append(m[in], n)
			}
		}
	}
	return m
}

// Clone returns a deep copy of the graph (parameters included).
func (g *Graph) Clone() *Graph { return g.clone(true) }

// clone copies the graph's structure and Param records; with deep unset the
// parameter tensors are shared, not copied.
func (g *Graph) clone(deep bool) *Graph {
	c := *g
	c.Nodes = make([]*Node, len(g.Nodes))
	for i, n := range g.Nodes {
		nn := *n
		nn.Inputs = append([]string{}, n.Inputs...)
		nn.Outputs = append([]string{}, n.Outputs...)
		if n.Attrs != nil {
			nn.Attrs = make(map[string]Attr, len(n.Attrs))
			for k, v := range n.Attrs {
				nn.Attrs[k] = v
			}
		}
		c.Nodes[i] = &nn
	}
	c.Inputs = append([]ValueInfo{}, g.Inputs...)
	c.Outputs = append([]ValueInfo{}, g.Outputs...)
	c.Params = make(map[string]*Param, len(g.Params))
	for k, p := range g.Params {
		t := p.T
		if deep {
			t = t.Clone()
		}
		c.Params[k] = &Param{Name: p.Name, T: t, Trainable: p.Trainable}
	}
	if g.Meta != nil {
		c.Meta = make(map[string]string, len(g.Meta))
		for k, v := range g.Meta {
			c.Meta[k] = v
		}
	}
	return &c
}

// TopoSort orders g.Nodes so that every node comes after the producers of
// its inputs, keeping the existing order where it already is valid. It
// reports a cycle, a value produced twice, or an input nobody produces.
func (g *Graph) TopoSort() error {
	avail := map[string]bool{"": true}
	for _, in := range g.Inputs {
		avail[in.Name] = true
	}
	for name := range g.Params {
		avail[name] = true
	}
	producer := map[string]int{}
	for i, n := range g.Nodes {
		for _, o := range n.Outputs {
			if o == "" {
				continue
			}
			if j, dup := producer[o]; dup {
				return fmt.Errorf("value %q is produced twice, by %v and %v", o, g.Nodes[j], n)
			}
			if avail[o] {
				return fmt.Errorf("%v writes %q, which is a graph input or initializer", n, o)
			}
			producer[o] = i
		}
	}
	for i, n := range g.Nodes {
		for _, in := range n.Inputs {
			if !avail[in] {
				if _, ok := producer[in]; !ok {
					return fmt.Errorf("%v (node %d) reads %q, which no node, input or initializer provides", n, i, in)
				}
			}
		}
	}
	done := make([]bool, len(g.Nodes))
	order := make([]*Node, 0, len(g.Nodes))
	for len(order) < len(g.Nodes) {
		progressed := false
		for i, n := range g.Nodes {
			if done[i] {
				continue
			}
			ready := true
			for _, in := range n.Inputs {
				if !avail[in] {
					ready = false
					break
				}
			}
			if !ready {
				continue
			}
			done[i] = true
			progressed = true
			order = append(order, n)
			for _, o := range n.Outputs {
				avail[o] = true
			}
		}
		if !progressed {
			for i, n := range g.Nodes {
				if !done[i] {
					return fmt.Errorf("the graph has a cycle through %v", n)
				}
			}
		}
	}
	g.Nodes = order
	return nil
}
