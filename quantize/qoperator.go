package quantize

import (
	rt "github.com/compressml/compress/runtime"
)

// FormatQOperator is the QOperator export format (QLinearConv,
// QLinearMatMul, com.microsoft QGemm).
const FormatQOperator = "qoperator"

// ToQOperator rewrites the QDQ layers of a graph made by Static into
// QOperator form: DQ(x), DQ(w), DQ(bias) -> Conv [-> Relu] -> Q becomes
// QLinearConv, MatMul becomes QLinearMatMul and Gemm com.microsoft QGemm,
// reading and writing 8-bit tensors. A Relu is absorbed when the output is
// uint8 with zero point 0 (the clamp to [0, 255] is the Relu). Layers
// without a QuantizeLinear after them (graph outputs, bias Adds) stay in
// QDQ form, which is valid ONNX too. It returns the new graph and the
// number of layers converted; g is not modified.
func ToQOperator(g *rt.Graph) (*rt.Graph, int) {
	q := g.Clone()
	prod := q.Producers()
	cons := q.Consumers()
	isOut := map[string]bool{}
	for _, o := range q.Outputs {
		isOut[o.Name] = true
	}
	single := func(name string) *rt.Node {
		if c := cons[name]; len(c) == 1 && !isOut[name] {
			return c[0]
		}
		return nil
	}
	dq := func(name string) *rt.Node {
		if p := prod[name]; p != nil && p.OpType == "DequantizeLinear" && p.Domain == "" && len(p.Inputs) == 3 {
			return p
		}
		return nil
	}
	removed := map[*rt.Node]bool{}
	replace := map[*rt.Node]*rt.Node{}
	converted := 0
	for _, n := range q.Nodes {
		if n.Domain != "" || (n.OpType != "Conv" && n.OpType != "MatMul" && n.OpType != "Gemm") {
			continue
		}
		dx, dw := dq(n.Input(0)), dq(n.Input(1))
		if dx == nil || dw == nil {
			continue
		}
		if _, ok := q.Params[dw.Inputs[0]]; !ok {
			continue
		}
		var db *rt.Node
		if b := n.Input(2); b != "" {
			if db = dq(b); db == nil {
				continue
			}
		}
		next := single(n.Outputs[0])
		var relu *rt.Node
		if next != nil && next.OpType == "Relu" && next.Domain == "" {
			relu = next
			next = single(relu.Outputs[0])
		}
		if next == nil || next.OpType != "QuantizeLinear" || next.Domain != "" || len(next.Inputs) != 3 {
			continue
		}
		if relu != nil {
			zp, ok := q.Params[next.Inputs[2]]
			if !ok || zp.T.DType != rt.Uint8 || zp.T.Len() != 1 || zp.T.U8[0] != 0 {
				continue
			}
		}
		var r *rt.Node
		x := dx.Inputs
		w := dw.Inputs
		y := next.Inputs[1:]
		switch n.OpType {
		case "Conv":
			r = &rt.Node{Name: n.Name, OpType: "QLinearConv", Inputs: []string{x[0], x[1], x[2], w[0], w[1], w[2], y[0], y[1]}, Attrs: copyAttrs(n.Attrs)}
			if db != nil {
				r.Inputs = append(r.Inputs, db.Inputs[0])
			}
		case "MatMul":
			r = &rt.Node{Name: n.Name, OpType: "QLinearMatMul", Inputs: []string{x[0], x[1], x[2], w[0], w[1], w[2], y[0], y[1]}}
		case "Gemm":
			bias := ""
			if db != nil {
				bias = db.Inputs[0]
			}
			r = &rt.Node{Name: n.Name, OpType: "QGemm", Domain: "com.microsoft", Inputs: []string{x[0], x[1], x[2], w[0], w[1], w[2], bias, y[0], y[1]}, Attrs: copyAttrs(n.Attrs)}
			delete(r.Attrs, "beta")
		}
		r.Outputs = []string{next.Outputs[0]}
		replace[n] = r
		removed[next] = true
		if relu != nil {
			removed[relu] = true
		}
		converted++
	}
	var nodes []*rt.Node
	for _, n := range q.Nodes {
		if removed[n] {
			continue
		}
		if r, ok := replace[n]; ok {
			n = r
		}
		nodes = append(nodes, n)
	}
	q.Nodes = nodes
	rt.RemoveDeadCode(q)
	return q, converted
}

func copyAttrs(a map[string]rt.Attr) map[string]rt.Attr {
	out := map[string]rt.Attr{}
	for k, v := range a {
		out[k] = v
	}
	return out
}
