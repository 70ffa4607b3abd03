package finetune

import (
	"fmt"

	"github.com/compressml/compress/models"
	rt "github.com/compressml/compress/runtime"
)

// HeadConfig describes a new classifier head.
type HeadConfig struct {
	NumClasses int
	Init       string // initialiser of the weight (models.InitByName); default xavier_uniform
	Seed       uint64
}

// Head names the parameters of a graph's final classifier.
type Head struct {
	Node   string // the Gemm or MatMul node
	Weight string
	Bias   string // "" when the classifier has none
}

// FindHead locates the final classifier feeding the graph's first output: a
// Gemm, or a MatMul with a constant weight optionally followed by an Add of
// a bias, possibly followed by Softmax, LogSoftmax, Identity, Flatten or
// Reshape. It expects constants to be folded (rt.FoldConstants), so that a
// weight computed from initializers is one parameter.
func FindHead(g *rt.Graph) (Head, error) {
	h, _, err := findHead(g)
	return h, err
}

// findHead is FindHead that also returns the classifier node.
func findHead(g *rt.Graph) (Head, *rt.Node, error) {
	if len(g.Outputs) == 0 {
		return Head{}, nil, fmt.Errorf("the graph has no output")
	}
	prod := g.Producers()
	name := g.Outputs[0].Name
	var add *rt.Node
	for {
		n := prod[name]
		if n == nil {
			return Head{}, nil, fmt.Errorf("no classifier (Gemm or MatMul) found before output %q", g.Outputs[0].Name)
		}
		switch n.OpType {
		case "Softmax", "LogSoftmax", "Identity", "Flatten", "Reshape", "Dropout":
			name = n.Input(0)
			continue
		case "Add":
			if add != nil {
				return Head{}, nil, fmt.Errorf("%v: expected a classifier (Gemm or MatMul+Add) before the output", n)
			}
			a, b := n.Input(0), n.Input(1)
			if _, ok := g.Params[b]; ok {
				add, name = n, a
				continue
			}
			if _, ok := g.Params[a]; ok {
				add, name = n, b
				continue
			}
			return Head{}, nil, fmt.Errorf("%v: an Add of two computed values is not a classifier bias", n)
		case "Gemm":
			if add != nil {
				return Head{}, nil, fmt.Errorf("%v: a Gemm followed by a bias Add is not supported as a head", n)
			}
			if _, ok := g.Params[n.Input(1)]; !ok || n.AttrInt("transA", 0) != 0 {
				return Head{}, nil, fmt.Errorf("%v: the classifier's weight must be an initializer and transA 0", n)
			}
			h := Head{Node: n.Name, Weight: n.Input(1), Bias: n.Input(2)}
			if _, ok := g.Params[h.Bias]; h.Bias != "" && !ok {
				return Head{}, nil, fmt.Errorf("%v: the classifier's bias %q is computed, not an initializer", n, h.Bias)
			}
			return h, n, nil
		case "MatMul":
			if _, ok := g.Params[n.Input(1)]; !ok || g.Params[n.Input(1)].T.Rank() != 2 {
				return Head{}, nil, fmt.Errorf("%v: the classifier's weight must be a 2-D initializer", n)
			}
			h := Head{Node: n.Name, Weight: n.Input(1)}
			if add != nil {
				h.Bias = add.Input(1)
				if _, ok := g.Params[h.Bias]; !ok {
					h.Bias = add.Input(0)
				}
			}
			return h, n, nil
		default:
			return Head{}, nil, fmt.Errorf("%v: expected a classifier (Gemm, or MatMul with an optional bias Add) before output %q", n, g.Outputs[0].Name)
		}
	}
}

// ReplaceHead gives g a new, freshly initialised classifier with
// cfg.NumClasses outputs in place of its final Gemm or MatMul(+Add) (see
// FindHead), and a zero bias (added if the classifier had none). The new
// parameters are trainable. The first graph output's last dimension becomes
// NumClasses.
func ReplaceHead(g *rt.Graph, cfg HeadConfig) (Head, error) {
	if cfg.NumClasses < 1 {
		return Head{}, fmt.Errorf("--num-classes %d: must be at least 1", cfg.NumClasses)
	}
	h, node, err := findHead(g)
	if err != nil {
		return Head{}, err
	}
	w := g.Params[h.Weight].T
	if w.DType != rt.Float32 || w.Rank() != 2 {
		return Head{}, fmt.Errorf("%v: classifier weight %q is %v %v, want a float32 matrix", node, h.Weight, w.DType, w.Shape)
	}
	init := cfg.Init
	if init == "" {
		init = models.InitXavierUniform
	}
	initFn, err := models.InitByName(init)
	if err != nil {
		return Head{}, err
	}
	// outFirst: the weight is [classes, features] (Gemm with transB=1).
	outFirst := node.OpType == "Gemm" && node.AttrInt("transB", 0) != 0
	var nw *rt.Tensor
	var features int
	if outFirst {
		features = w.Shape[1]
		nw = rt.New(rt.Float32, cfg.NumClasses, features)
	} else {
		features = w.Shape[0]
		nw = rt.New(rt.Float32, features, cfg.NumClasses)
	}
	if err := initFn(nw, features, cfg.NumClasses, models.NewRNG(cfg.Seed)); err != nil {
		return Head{}, err
	}
	g.AddParam(h.Weight, nw, true)
	bias := rt.New(rt.Float32, cfg.NumClasses)
	if h.Bias != "" {
		if old := g.Params[h.Bias].T; old.Rank() == 2 {
			bias = rt.New(rt.Float32, 1, cfg.NumClasses)
		}
		g.AddParam(h.Bias, bias, true)
	} else if node.OpType == "Gemm" {
		h.Bias = unusedName(g, node.Name+".bias")
		for len(node.Inputs) < 3 {
			node.Inputs = append(node.Inputs, "")
		}
		node.Inputs[2] = h.Bias
		g.AddParam(h.Bias, bias, true)
	} else {
		// MatMul without bias: add one.
		h.Bias = unusedName(g, node.Name+".bias")
		out := node.Outputs[0]
		mid := unusedName(g, out+"_nobias")
		node.Outputs[0] = mid
		g.AddParam(h.Bias, bias, true)
		addNode := &rt.Node{Name: unusedNodeName(g, node.Name+"_bias_add"), OpType: "Add", Inputs: []string{mid, h.Bias}, Outputs: []string{out}}
		for i, n := range g.Nodes {
			if n == node {
				g.Nodes = append(g.Nodes[:i+1], append([]*rt.Node{addNode}, g.Nodes[i+1:]...)...)
				break
			}
		}
	}
	if s := g.Outputs[0].Shape; len(s) > 0 {
		s = append([]int{}, s...)
		s[len(s)-1] = cfg.NumClasses
		g.Outputs[0].Shape = s
	}
	return h, nil
}

// unusedName returns base, or base with a numeric suffix, that names no
// parameter, graph input or node output of g.
func unusedName(g *rt.Graph, base string) string {
	used := map[string]bool{}
	for name := range g.Params {
		used[name] = true
	}
	for _, in := range g.Inputs {
		used[in.Name] = true
	}
	for _, n := range g.Nodes {
		for _, o := range n.Outputs {
			used[o] = true
		}
	}
	name := base
	for i := 1; used[name]; i++ {
		name = fmt.Sprintf("%s_%d", base, i)
	}
	return name
}

// unusedNodeName returns base, or base with a numeric suffix, that names no
// node of g.
func unusedNodeName(g *rt.Graph, base string) string {
	used := map[string]bool{}
	for _, n := range g.Nodes {
		used[n.Name] = true
	}
	name := base
	for i := 1; used[name]; i++ {
		name = fmt.Sprintf("%s_%d", base, i)
	}
	return name
}
