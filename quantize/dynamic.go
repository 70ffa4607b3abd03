package quantize

import (
	"errors"
	"fmt"

	rt "github.com/compressml/compress/runtime"
)

// Dynamic quantises the weights of g's Conv, Gemm and MatMul nodes to int8
// and quantises their input activations at run time (onnxruntime's
// convention): DynamicQuantizeLinear -> MatMulInteger or ConvInteger ->
// Cast to float -> Mul by x_scale*w_scale (-> Add bias). No calibration
// data is needed. g is not modified.
func Dynamic(g *rt.Graph, cfg Config) (*rt.Graph, *Report, error) {
	if err := cfg.fill(); err != nil {
		return nil, nil, fmt.Errorf("quantize: %w", err)
	}
	fg, err := prepare(g)
	if err != nil {
		return nil, nil, err
	}
	layers := findLayers(fg, cfg.Keep)
	if len(layers) == 0 {
		return nil, nil, errors.New("quantize: the model has no Conv, Gemm or MatMul node with constant float weights to quantise")
	}
	q := fg.Clone()
	byKey := map[string]*rt.Node{}
	for _, n := range q.Nodes {
		byKey[n.Name+"\x00"+n.Outputs[0]] = n
	}
	repl := map[*rt.Node][]*rt.Node{}
	rep := &Report{Mode: ModeDynamic}
	for _, l := range layers {
		n := byKey[l.node.Name+"\x00"+l.node.Outputs[0]]
		base := n.Name
		if base == "" {
			base = n.Outputs[0]
		}
		w := q.Params[n.Input(1)].T
		axis := l.wAxis
		if n.OpType == "Gemm" && n.AttrInt("transB", 0) != 0 {
			w = transpose2(w) // MatMulInteger takes B as [K, N]
			axis = 1
		}
		wq, ws := quantizeWeight(w, axis, !cfg.PerTensor, cfg.weightMax())
		lr := LayerReport{Name: n.Name, Op: n.OpType, WeightScaleMin: ws[0], WeightScaleMax: ws[0]}
		for _, s := range ws {
			lr.WeightScaleMin = min(lr.WeightScaleMin, s)
			lr.WeightScaleMax = max(lr.WeightScaleMax, s)
		}
		rep.Layers = append(rep.Layers, lr)
		wqName, wsName, wzName := base+"_weight_quantized", base+"_weight_scale", base+"_weight_zero_point"
		q.AddParam(wqName, wq, false)
		q.AddParam(wzName, rt.New(rt.Int8), false)
		sShape := []int(nil)
		if !cfg.PerTensor && n.OpType == "Conv" {
			sShape = make([]int, w.Rank()-1) // [C, 1, 1] broadcast over NCHW
			for i := range sShape {
				sShape[i] = 1
			}
			sShape[0] = len(ws)
		} else if !cfg.PerTensor {
			sShape = []int{len(ws)}
		}
		q.AddParam(wsName, rt.FromFloat32(ws, sShape...), false)
		xq, xs, xz := base+"_input_quantized", base+"_input_scale", base+"_input_zero_point"
		nodes := []*rt.Node{{Name: base + "_DynamicQuantizeLinear", OpType: "DynamicQuantizeLinear", Inputs: []string{n.Inputs[0]}, Outputs: []string{xq, xs, xz}}}
		acc := base + "_int32"
		switch n.OpType {
		case "Conv":
			cn := &rt.Node{Name: base + "_ConvInteger", OpType: "ConvInteger", Inputs: []string{xq, wqName, xz, wzName}, Outputs: []string{acc}, Attrs: map[string]rt.Attr{}}
			for k, v := range n.Attrs {
				cn.Attrs[k] = v
			}
			nodes = append(nodes, cn)
		default:
			nodes = append(nodes, &rt.Node{Name: base + "_MatMulInteger", OpType: "MatMulInteger", Inputs: []string{xq, wqName, xz, wzName}, Outputs: []string{acc}})
		}
		accF, scale := base+"_int32_float", base+"_scale"
		nodes = append(nodes,
			&rt.Node{Name: base + "_Cast", OpType: "Cast", Inputs: []string{acc}, Outputs: []string{accF}, Attrs: map[string]rt.Attr{"to": {Kind: rt.AttrInt, I: 1}}},
			&rt.Node{Name: base + "_scale_Mul", OpType: "Mul", Inputs: []string{xs, wsName}, Outputs: []string{scale}})
		bname := n.Input(2)
		out := n.Outputs[0]
		if bname == "" {
			nodes = append(nodes, &rt.Node{Name: base + "_output_Mul", OpType: "Mul", Inputs: []string{accF, scale}, Outputs: []string{out}})
		} else {
			b := q.Params[bname]
			if b == nil || b.T.DType != rt.Float32 || n.AttrFloat("beta", 1) != 1 {
				return nil, nil, fmt.Errorf("quantize: node %q (%s): only a constant float bias with beta 1 is supported in dynamic mode; keep the layer in float", n.Name, n.OpType)
			}
			if n.OpType == "Conv" {
				bt := b.T.Clone().Reshaped(sShapeFor(b.T.Len(), w.Rank()-1)...)
				bname = base + "_bias_reshaped"
				q.AddParam(bname, bt, false)
			}
			mul := base + "_scaled"
			nodes = append(nodes,
				&rt.Node{Name: base + "_output_Mul", OpType: "Mul", Inputs: []string{accF, scale}, Outputs: []string{mul}},
				&rt.Node{Name: base + "_bias_Add", OpType: "Add", Inputs: []string{mul, bname}, Outputs: []string{out}})
		}
		repl[n] = nodes
	}
	var nodes []*rt.Node
	for _, n := range q.Nodes {
		if r, ok := repl[n]; ok {
			nodes = append(nodes, r...)
		} else {
			nodes = append(nodes, n)
		}
	}
	q.Nodes = nodes
	rt.RemoveDeadCode(q)
	if err := q.TopoSort(); err != nil {
		return nil, nil, fmt.Errorf("quantize: %w", err)
	}
	return q, rep, nil
}

func sShapeFor(c, rank int) []int {
	s := make([]int, rank)
	for i := range s {
		s[i] = 1
	}
	s[0] = c
	return s
}

// transpose2 transposes a 2-D float tensor.
func transpose2(w *rt.Tensor) *rt.Tensor {
	r, c := w.Shape[0], w.Shape[1]
	t := rt.New(rt.Float32, c, r)
	for i := range r {
		for j := range c {
			t.F32[j*r+i] = w.F32[i*c+j]
		}
	}
	return t
}
