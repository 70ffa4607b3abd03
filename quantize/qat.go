package quantize

import (
	"context"
	"errors"
	"fmt"

	"github.com/compressml/compress/data"
	rt "github.com/compressml/compress/runtime"
)

// ModeQAT is the Report.Mode of a model written by QAT.Finalize.
const ModeQAT = "qat"

// QAT is a model prepared for quantisation-aware training: the float model
// with BatchNormalization folded into the layers before it, activation
// scales and zero points calibrated as Static does, and fake quantisation
// where Static would put QuantizeLinear/DequantizeLinear pairs. Train Graph
// (finetune.Train does; gradients pass the fake quantisation by the
// straight-through estimator), then call Finalize for the int8 QDQ model.
//
// Activation scales stay fixed during training. Weight scales follow the
// weights (amax/63 per output channel by default, as Static computes them),
// so the int8 weights Finalize writes are exactly the values the last
// training step used.
type QAT struct {
	// Graph is the training graph. Its nodes are the prepared float
	// model's, with com.compressml FakeQuantizeLinear nodes on the quantised
	// activations and FakeQuantizeWeight nodes on the quantised weights (see
	// the runtime package). The weights and biases of every Conv, Gemm and
	// MatMul are trainable; the scales and zero points are not.
	Graph *rt.Graph
	// PTQ is the static post-training quantisation of the input model with
	// the same calibration: what Finalize returns when nothing was trained.
	PTQ *rt.Graph
	// CalibExamples is the number of examples calibration used.
	CalibExamples int

	cfg    Config
	calib  data.Dataset
	fg     *rt.Graph // prepared float graph; Finalize copies the trained weights into it
	layers []*layer
	params map[string]qparams
	// trained lists the training graph's weight and bias parameters; fg
	// holds the float parameters they replace under the same names.
	trained []string
}

// PrepareQAT calibrates g on calib (cfg.CalibSize examples, in order, with
// cfg.Method) and builds the training graph. g is not modified. MaxDrop and
// Eval are not used: every layer Static would quantise is trained
// quantised (name layers to keep in float32 with Keep).
func PrepareQAT(ctx context.Context, g *rt.Graph, calib data.Dataset, cfg Config) (*QAT, error) {
	if err := cfg.fill(); err != nil {
		return nil, fmt.Errorf("quantize: %w", err)
	}
	if calib == nil || calib.Len() == 0 {
		return nil, errors.New("quantize: quantisation-aware training needs calibration data for the activation ranges; give a non-empty training set")
	}
	fg, layers, params, count, err := calibrateLayers(ctx, g, calib, &cfg)
	if err != nil {
		return nil, err
	}
	ptq, _, err := buildQDQ(fg, layers, params, map[*layer]bool{}, &cfg)
	if err != nil {
		return nil, err
	}
	q := &QAT{PTQ: ptq, CalibExamples: count, cfg: cfg, calib: calib, fg: fg, layers: layers, params: params}
	if q.Graph, err = q.trainingGraph(ptq.Clone()); err != nil {
		return nil, err
	}
	return q, nil
}

// trainingGraph turns a QDQ graph built by buildQDQ from q.fg into the
// training graph: every QuantizeLinear -> DequantizeLinear pair on an
// activation becomes one FakeQuantizeLinear, every int8 weight with its
// DequantizeLinear becomes the float weight of fg through a
// FakeQuantizeWeight, and every int32 bias becomes fg's float bias.
func (q *QAT) trainingGraph(g *rt.Graph) (*rt.Graph, error) {
	prod := g.Producers()
	cons := g.Consumers()
	replaced := map[*rt.Node]*rt.Node{}
	drop := map[*rt.Node]bool{}
	for _, n := range g.Nodes {
		if n.OpType != "QuantizeLinear" || n.Domain != "" {
			continue
		}
		if _, isParam := g.Params[n.Input(0)]; isParam {
			continue
		}
		c := cons[n.Outputs[0]]
		if len(c) != 1 || c[0].OpType != "DequantizeLinear" || c[0].Input(1) != n.Input(1) || c[0].Input(2) != n.Input(2) {
			return nil, fmt.Errorf("quantize: %v: expected its output to feed one DequantizeLinear with the same scale and zero point", n)
		}
		fq := &rt.Node{Name: n.Name + "_fake", OpType: "FakeQuantizeLinear", Domain: rt.FusedDomain,
			Inputs: append([]string{}, n.Inputs...), Outputs: []string{c[0].Outputs[0]}}
		if a, ok := n.Attrs["axis"]; ok {
			fq.SetAttr("axis", a)
		}
		replaced[n] = fq
		drop[c[0]] = true
	}
	byKey := map[string]*rt.Node{}
	for _, n := range g.Nodes {
		if len(n.Outputs) > 0 {
			byKey[n.Name+"\x00"+n.Outputs[0]] = n
		}
	}
	fprod := q.fg.Producers()
	for _, l := range q.layers {
		n := byKey[l.node.Name+"\x00"+l.node.Outputs[0]]
		if n == nil {
			return nil, fmt.Errorf("quantize: layer %v is missing from the quantised graph", l.node)
		}
		fn := fprod[l.node.Outputs[0]]
		if fn == nil {
			return nil, fmt.Errorf("quantize: layer %v is missing from the float graph", l.node)
		}
		if wdq := prod[n.Input(1)]; wdq != nil && wdq.OpType == "DequantizeLinear" {
			fw := &rt.Node{Name: wdq.Name + "_fake", OpType: "FakeQuantizeWeight", Domain: rt.FusedDomain,
				Inputs: []string{l.wName}, Outputs: []string{wdq.Outputs[0]}}
			fw.SetAttr("axis", rt.Attr{Kind: rt.AttrInt, I: int64(l.wAxis)})
			fw.SetAttr("qmax", rt.Attr{Kind: rt.AttrFloat, F: q.cfg.weightMax()})
			if q.cfg.PerTensor {
				fw.SetAttr("per_channel", rt.Attr{Kind: rt.AttrInt, I: 0})
			}
			replaced[wdq] = fw
		}
		for i := 1; i <= 2; i++ {
			name := fn.Input(i)
			p, ok := q.fg.Params[name]
			if !ok || p.T.DType != rt.Float32 {
				continue
			}
			if i == 2 {
				if bdq := prod[n.Input(2)]; bdq != nil && bdq.OpType == "DequantizeLinear" {
					drop[bdq] = true
				}
				n.Inputs[2] = name
			}
			g.AddParam(name, p.T.Clone(), true)
			q.trained = append(q.trained, name)
		}
	}
	nodes := g.Nodes[:0]
	for _, n := range g.Nodes {
		if r := replaced[n]; r != nil {
			nodes = append(nodes, r)
		} else if !drop[n] {
			nodes = append(nodes, n)
		}
	}
	g.Nodes = nodes
	rt.RemoveDeadCode(g)
	if err := g.TopoSort(); err != nil {
		return nil, fmt.Errorf("quantize: training graph: %w", err)
	}
	for _, n := range g.Nodes {
		if n.OpType == "QuantizeLinear" || n.OpType == "DequantizeLinear" {
			return nil, fmt.Errorf("quantize: training graph: %v was left in place (no gradient passes it); report this model", n)
		}
	}
	return g, nil
}

// Finalize quantises the trained model: the weights and biases of Graph,
// as they are now, quantised exactly as Static quantises weights, with the
// calibrated activation parameters, in QDQ format. The result runs on the
// runtime's int8 kernels and in onnxruntime. The report gives each layer's
// parameters and its SQNR against the trained float model (BatchNorm
// folded, no fake quantisation) on the calibration examples.
func (q *QAT) Finalize(ctx context.Context) (*rt.Graph, *Report, error) {
	for _, name := range q.trained {
		src, ok := q.Graph.Params[name]
		dst := q.fg.Params[name]
		if !ok || src.T.DType != rt.Float32 || !rt.SameShape(src.T.Shape, dst.T.Shape) {
			return nil, nil, fmt.Errorf("quantize: trained parameter %q is missing from the training graph or changed shape", name)
		}
		copy(dst.T.F32, src.T.F32)
	}
	qg, lreps, err := buildQDQ(q.fg, q.layers, q.params, map[*layer]bool{}, &q.cfg)
	if err != nil {
		return nil, nil, err
	}
	if err := measureSQNR(ctx, q.fg, qg, q.layers, lreps, q.calib, &q.cfg); err != nil {
		return nil, nil, err
	}
	return qg, &Report{Mode: ModeQAT, Method: q.cfg.Method, CalibExamples: q.CalibExamples, Layers: lreps}, nil
}
