package quantize

import (
	"context"
	"errors"
	"fmt"
	"math"

	"github.com/compressml/compress/data"
	"github.com/compressml/compress/eval"
	rt "github.com/compressml/compress/runtime"
)

// Modes and formats.
const (
	ModeStatic  = "static"
	ModeDynamic = "dynamic"
	FormatQDQ   = "qdq"
)

// Config configures quantisation. Start from DefaultConfig.
type Config struct {
	// Method is the calibration method (MinMax, Percentile, Entropy, MSE).
	Method string
	// Percentile is the coverage of the Percentile method (99.99).
	Percentile float64
	// PerTensor quantises weights with one scale per tensor instead of one
	// per output channel.
	PerTensor bool
	// FullRange quantises weights to [-127, 127] instead of the 7-bit
	// [-63, 63] that keeps the int8 kernels free of int16 saturation.
	FullRange bool
	// SymmetricActivations quantises activations to int8 with zero point 0
	// instead of uint8 asymmetric.
	SymmetricActivations bool
	// CalibSize is the number of calibration examples (512 if 0).
	CalibSize int
	// BatchSize of calibration and evaluation runs (32 if 0).
	BatchSize int
	// Preprocess maps stored data values to model inputs.
	Preprocess data.Preprocess
	// Input names the model input fed with data ("" = the only one).
	Input string
	// Threads used by the executors (0: one per CPU).
	Threads int
	// Keep names Conv/Gemm/MatMul nodes left in float32.
	Keep []string
	// MaxDrop, when positive with Eval set, is the largest accepted accuracy
	// drop (a fraction, 0.003 = 0.3 points): layers with the worst SQNR are
	// kept in float32 until the drop holds.
	MaxDrop float64
	// Eval is the labelled data the accuracy is measured on for MaxDrop.
	Eval data.Dataset
	// EvalLimit evaluates only the first EvalLimit examples (0: all).
	EvalLimit int
}

// DefaultConfig returns the defaults: MinMax calibration, per-channel
// 7-bit weights, uint8 asymmetric activations, 512 calibration examples.
func DefaultConfig() Config {
	return Config{Method: MinMax, Percentile: 99.99, CalibSize: 512, BatchSize: 32}
}

func (c *Config) fill() error {
	if c.Method == "" {
		c.Method = MinMax
	}
	if err := ValidMethod(c.Method); err != nil {
		return err
	}
	if c.Percentile == 0 {
		c.Percentile = 99.99
	}
	if c.Percentile <= 50 || c.Percentile > 100 {
		return fmt.Errorf("percentile %v: give a coverage in (50, 100], e.g. 99.99", c.Percentile)
	}
	if c.CalibSize == 0 {
		c.CalibSize = 512
	}
	if c.BatchSize == 0 {
		c.BatchSize = 32
	}
	if c.CalibSize < 0 || c.BatchSize < 0 || c.EvalLimit < 0 {
		return fmt.Errorf("calibration size %d, batch size %d and evaluation limit %d must not be negative", c.CalibSize, c.BatchSize, c.EvalLimit)
	}
	if c.MaxDrop < 0 {
		return fmt.Errorf("max drop %v must not be negative", c.MaxDrop)
	}
	return c.Preprocess.Validate()
}

func (c *Config) weightMax() float32 {
	if c.FullRange {
		return 127
	}
	return 63
}

// LayerReport describes one quantisable layer.
type LayerReport struct {
	Name string `json:"layer"`
	Op   string `json:"op"`
	// InputScale and InputZeroPoint quantise the layer's input activation.
	InputScale     float32 `json:"input_scale"`
	InputZeroPoint int     `json:"input_zero_point"`
	// WeightScaleMin/Max span the weight scales (equal when per tensor).
	WeightScaleMin float32 `json:"weight_scale_min"`
	WeightScaleMax float32 `json:"weight_scale_max"`
	// SQNR in dB of the layer's output in the quantised model against
	// float32, on up to 256 calibration examples (errors of earlier layers
	// included; +Inf is reported as 999). For a layer kept in float32 it
	// is the error its inputs carry.
	SQNR float64 `json:"sqnr_db"`
	// Float is set when the layer was kept in float32.
	Float bool `json:"float"`
}

// Report describes a quantisation.
type Report struct {
	Mode          string        `json:"mode"`
	Method        string        `json:"method,omitempty"`
	CalibExamples int           `json:"calib_examples,omitempty"`
	Layers        []LayerReport `json:"layers"`
	// AccuracyFloat and AccuracyQuant are measured when MaxDrop is used.
	AccuracyFloat *float64 `json:"accuracy_float,omitempty"`
	AccuracyQuant *float64 `json:"accuracy_quant,omitempty"`
}

// layer is a quantisable node of the prepared graph.
type layer struct {
	node   *rt.Node
	in     string // activation input
	out    string // tensor quantised after the layer (its Relu's output when fused)
	wAxis  int    // output-channel axis of the weight
	wName  string
	hasAct bool
	noOutQ bool // the output stays float32
}

// prepare clones g and applies the export-safe passes.
func prepare(g *rt.Graph) (*rt.Graph, error) {
	if g == nil {
		return nil, errors.New("quantize: no graph")
	}
	q := g.Clone()
	if err := q.TopoSort(); err != nil {
		return nil, fmt.Errorf("quantize: %w", err)
	}
	if err := rt.FoldConstants(q); err != nil {
		return nil, fmt.Errorf("quantize: %w", err)
	}
	rt.FoldBatchNorm(q)
	foldConvAdd(q)
	rt.RemoveDeadCode(q)
	return q, nil
}

// foldConvAdd folds Conv -> Add(constant per-channel vector) into the
// Conv's bias (models exported with a separate bias Add), so that the
// output quantisation happens after a following Relu.
func foldConvAdd(g *rt.Graph) {
	cons := g.Consumers()
	isOut := map[string]bool{}
	for _, o := range g.Outputs {
		isOut[o.Name] = true
	}
	removed := map[*rt.Node]bool{}
	for _, n := range g.Nodes {
		if n.OpType != "Conv" || n.Domain != "" || len(n.Outputs) != 1 || isOut[n.Outputs[0]] {
			continue
		}
		c := cons[n.Outputs[0]]
		if len(c) != 1 || c[0].OpType != "Add" || c[0].Domain != "" || len(c[0].Inputs) != 2 {
			continue
		}
		add := c[0]
		other := add.Inputs[1]
		if other == n.Outputs[0] {
			other = add.Inputs[0]
		}
		w, okw := g.Params[n.Input(1)]
		b, okb := g.Params[other]
		if !okw || !okb || b.T.DType != rt.Float32 || w.T.DType != rt.Float32 {
			continue
		}
		outC := w.T.Shape[0]
		if b.T.Len() != outC || !channelShape(b.T.Shape, outC) {
			continue
		}
		bias := rt.New(rt.Float32, outC)
		copy(bias.F32, b.T.F32)
		if old := n.Input(2); old != "" {
			op, ok := g.Params[old]
			if !ok || op.T.Len() != outC || op.T.DType != rt.Float32 {
				continue
			}
			for i := range bias.F32 {
				bias.F32[i] += op.T.F32[i]
			}
		}
		name := n.Name + "_folded_bias"
		if n.Name == "" {
			name = n.Outputs[0] + "_folded_bias"
		}
		g.AddParam(name, bias, false)
		n.Inputs = append(n.Inputs[:min(len(n.Inputs), 2)], name)
		n.Outputs[0] = add.Outputs[0]
		removed[add] = true
	}
	kept := g.Nodes[:0]
	for _, n := range g.Nodes {
		if !removed[n] {
			kept = append(kept, n)
		}
	}
	g.Nodes = kept
}

// channelShape reports whether shape broadcasts as one value per channel of
// an NCHW output ([C,1,1], [1,C,1,1], ...).
func channelShape(shape []int, c int) bool {
	if len(shape) < 3 || len(shape) > 4 {
		return false
	}
	lead := len(shape) - 3
	for i, d := range shape {
		if i == lead && d != c || i != lead && d != 1 {
			return false
		}
	}
	return true
}

// findLayers lists Conv, Gemm and MatMul nodes with constant float weights.
func findLayers(g *rt.Graph, keep []string) []*layer {
	cons := g.Consumers()
	kept := map[string]bool{}
	for _, k := range keep {
		kept[k] = true
	}
	isOut := map[string]bool{}
	for _, o := range g.Outputs {
		isOut[o.Name] = true
	}
	var out []*layer
	for _, n := range g.Nodes {
		if n.Domain != "" && n.Domain != "ai.onnx" || len(n.Outputs) != 1 || kept[n.Name] {
			continue
		}
		wp, ok := g.Params[n.Input(1)]
		if !ok || wp.T.DType != rt.Float32 || n.Input(0) == "" {
			continue
		}
		if _, isParam := g.Params[n.Input(0)]; isParam {
			continue
		}
		l := &layer{node: n, in: n.Input(0), out: n.Outputs[0], wName: n.Input(1)}
		switch n.OpType {
		case "Conv":
			if wp.T.Rank() < 3 {
				continue
			}
		case "Gemm":
			if wp.T.Rank() != 2 || n.AttrInt("transA", 0) != 0 || n.AttrFloat("alpha", 1) != 1 {
				continue
			}
			if n.AttrInt("transB", 0) == 0 {
				l.wAxis = 1
			}
		case "MatMul":
			if wp.T.Rank() != 2 {
				continue
			}
			l.wAxis = 1
		default:
			continue
		}
		if c := cons[l.out]; len(c) == 1 && !isOut[l.out] && c[0].OpType == "Relu" && c[0].Domain == "" {
			l.out = c[0].Outputs[0]
			l.hasAct = true
		} else if len(c) == 1 && c[0].OpType == "Add" && c[0].Domain == "" && len(c[0].Inputs) == 2 {
			// A bias Add (MatMul + constant): keep the output in float so
			// that the runtime fuses the Add as the bias.
			other := c[0].Inputs[0]
			if other == l.out {
				other = c[0].Inputs[1]
			}
			if _, ok := g.Params[other]; ok {
				l.noOutQ = true
			}
		}
		out = append(out, l)
	}
	return out
}

// calibrate runs the float graph over the calibration data and observes
// the named tensors.
func calibrate(ctx context.Context, g *rt.Graph, ds data.Dataset, cfg *Config, names []string) (map[string]*Observer, int, error) {
	obs := map[string]*Observer{}
	og := g.Clone()
	have := map[string]bool{}
	for _, o := range og.Outputs {
		have[o.Name] = true
	}
	for _, n := range names {
		obs[n] = &Observer{}
		if !have[n] {
			og.Outputs = append(og.Outputs, rt.ValueInfo{Name: n, DType: rt.Float32})
			have[n] = true
		}
	}
	ex, err := rt.NewExecutor(og, rt.Options{Threads: cfg.Threads})
	if err != nil {
		return nil, 0, fmt.Errorf("quantize: calibration graph: %w", err)
	}
	passes := []bool{false}
	if cfg.Method != MinMax {
		passes = append(passes, true)
	}
	count := 0
	for _, hist := range passes {
		count = 0
		err := forBatches(ctx, ex, ds, cfg, cfg.CalibSize, func(inputs map[string]*rt.Tensor, outs map[string]*rt.Tensor, n int) error {
			count += n
			for _, name := range names {
				t := outs[name]
				if t == nil || t.DType != rt.Float32 {
					return fmt.Errorf("quantize: tensor %q was not computed as float32 during calibration", name)
				}
				obs[name].Observe(rows(t, n), hist)
			}
			return nil
		})
		if err != nil {
			return nil, 0, err
		}
	}
	return obs, count, nil
}

// rows returns the first n examples of a batch tensor's float data.
func rows(t *rt.Tensor, n int) []float32 {
	if len(t.Shape) == 0 || t.Shape[0] == 0 {
		return t.F32
	}
	per := len(t.F32) / t.Shape[0]
	return t.F32[:min(n*per, len(t.F32))]
}

// forBatches feeds up to limit examples of ds to ex, in batches, in order,
// and calls fn with the inputs, the outputs and the real example count.
func forBatches(ctx context.Context, ex *rt.Executor, ds data.Dataset, cfg *Config, limit int, fn func(in, out map[string]*rt.Tensor, n int) error) error {
	if ctx == nil {
		ctx = context.Background()
	}
	mi, err := eval.FeedInput(ex.Graph(), cfg.Input, ds.Shape())
	if err != nil {
		return fmt.Errorf("quantize: %w", err)
	}
	bs := cfg.BatchSize
	if mi.FixedBatch > 0 {
		bs = mi.FixedBatch
	}
	ld, err := data.NewLoader(ds, data.LoaderOptions{BatchSize: bs, Shape: mi.Shape, Preprocess: cfg.Preprocess, Limit: limit})
	if err != nil {
		return fmt.Errorf("quantize: %w", err)
	}
	var b *data.Batch
	for i := range ld.NumBatches() {
		if err := ctx.Err(); err != nil {
			return err
		}
		if b, err = ld.Batch(i, b); err != nil {
			return fmt.Errorf("quantize: batch %d: %w", i, err)
		}
		x := b.X
		n := len(b.Labels)
		if mi.FixedBatch > 0 && n < mi.FixedBatch {
			p := rt.New(rt.Float32, append([]int{mi.FixedBatch}, mi.Shape...)...)
			copy(p.F32, x.F32)
			x = p
		}
		in := map[string]*rt.Tensor{mi.Name: x}
		out, err := ex.Run(ctx, in)
		if err != nil {
			return fmt.Errorf("quantize: running the model on batch %d: %w", i, err)
		}
		if err := fn(in, out, n); err != nil {
			return err
		}
	}
	return nil
}

// qparams holds an activation's quantisation parameters.
type qparams struct {
	scale float32
	zp    int
}

// calibrateLayers prepares a float copy of g (BatchNorm folded, activations
// fused), finds the layers to quantise, observes their input and output
// activations on calib and returns each activation's quantisation
// parameters, with the number of calibration examples used.
func calibrateLayers(ctx context.Context, g *rt.Graph, calib data.Dataset, cfg *Config) (*rt.Graph, []*layer, map[string]qparams, int, error) {
	fg, err := prepare(g)
	if err != nil {
		return nil, nil, nil, 0, err
	}
	layers := findLayers(fg, cfg.Keep)
	if len(layers) == 0 {
		return nil, nil, nil, 0, errors.New("quantize: the model has no Conv, Gemm or MatMul node with constant float weights to quantise")
	}
	var names []string
	seen := map[string]bool{}
	for _, l := range layers {
		for _, t := range []string{l.in, l.out} {
			if !seen[t] {
				seen[t] = true
				names = append(names, t)
			}
		}
	}
	obs, count, err := calibrate(ctx, fg, calib, cfg, names)
	if err != nil {
		return nil, nil, nil, 0, err
	}
	params := map[string]qparams{}
	for _, name := range names {
		lo, hi := obs[name].Range(cfg.Method, cfg.Percentile, 256)
		s, zp := ActParams(lo, hi, cfg.SymmetricActivations)
		params[name] = qparams{s, zp}
	}
	propagateMoves(fg, layers, params)
	return fg, layers, params, count, nil
}

// Static quantises g after calibration on calib (static post-training
// quantisation in QDQ format). It returns the quantised graph and a report
// with each layer's parameters and SQNR. g is not modified.
func Static(ctx context.Context, g *rt.Graph, calib data.Dataset, cfg Config) (*rt.Graph, *Report, error) {
	if err := cfg.fill(); err != nil {
		return nil, nil, fmt.Errorf("quantize: %w", err)
	}
	if calib == nil || calib.Len() == 0 {
		return nil, nil, errors.New("quantize: static quantisation needs calibration data (100 to 1000 representative inputs); give some, or use dynamic mode")
	}
	fg, layers, params, count, err := calibrateLayers(ctx, g, calib, &cfg)
	if err != nil {
		return nil, nil, err
	}
	rep := &Report{Mode: ModeStatic, Method: cfg.Method, CalibExamples: count}
	floatSet := map[*layer]bool{}
	qg, lreps, err := buildQDQ(fg, layers, params, floatSet, &cfg)
	if err != nil {
		return nil, nil, err
	}
	if err := measureSQNR(ctx, fg, qg, layers, lreps, calib, &cfg); err != nil {
		return nil, nil, err
	}
	rep.Layers = lreps
	if cfg.MaxDrop > 0 && cfg.Eval != nil {
		fAcc, err := accuracy(ctx, fg, &cfg)
		if err != nil {
			return nil, nil, err
		}
		rep.AccuracyFloat = &fAcc
		for {
			qAcc, err := accuracy(ctx, qg, &cfg)
			if err != nil {
				return nil, nil, err
			}
			rep.AccuracyQuant = &qAcc
			if fAcc-qAcc <= cfg.MaxDrop {
				break
			}
			worst := -1
			for i, lr := range lreps {
				if !floatSet[layers[i]] && (worst < 0 || lr.SQNR < lreps[worst].SQNR) {
					worst = i
				}
			}
			if worst < 0 {
				break
			}
			floatSet[layers[worst]] = true
			if qg, lreps, err = buildQDQ(fg, layers, params, floatSet, &cfg); err != nil {
				return nil, nil, err
			}
			// Re-measure: the errors of the remaining layers change
			// once an earlier one is exact.
			if err := measureSQNR(ctx, fg, qg, layers, lreps, calib, &cfg); err != nil {
				return nil, nil, err
			}
			rep.Layers = lreps
		}
	}
	return qg, rep, nil
}

// moveOps leave values unchanged (they select, reorder or reshape them):
// their output takes the quantisation parameters of their input, so the
// runtime can run them on the 8-bit values directly.
var moveOps = map[string]bool{"MaxPool": true, "Reshape": true, "Flatten": true, "Transpose": true, "Squeeze": true, "Unsqueeze": true, "Identity": true}

// moveChain walks back from t through move ops with one data input and
// returns the tensors passed (t first) and the tensor the chain starts
// from.
func moveChain(prod map[string]*rt.Node, t string) (chain []string, src string) {
	for {
		chain = append(chain, t)
		p := prod[t]
		if p == nil || !moveOps[p.OpType] || p.Domain != "" || p.Input(0) == "" || len(p.Outputs) != 1 {
			return chain, t
		}
		t = p.Input(0)
		if len(chain) > 64 {
			return chain, t
		}
	}
}

// propagateMoves gives a layer input reached from another quantised tensor
// through move ops (MaxPool, Flatten, Reshape...) the parameters of that
// tensor, and the same to every tensor on the way, so that the runtime
// runs the move ops on the 8-bit values directly.
func propagateMoves(g *rt.Graph, layers []*layer, params map[string]qparams) {
	prod := g.Producers()
	for _, l := range layers {
		chain, src := moveChain(prod, l.in)
		p, ok := params[src]
		if !ok || len(chain) < 2 {
			continue
		}
		for _, t := range chain[:len(chain)-1] {
			params[t] = p
		}
	}
}

// accuracy evaluates a graph on cfg.Eval.
func accuracy(ctx context.Context, g *rt.Graph, cfg *Config) (float64, error) {
	ex, err := rt.NewExecutor(g, rt.Options{Threads: cfg.Threads})
	if err != nil {
		return 0, fmt.Errorf("quantize: %w", err)
	}
	r, err := eval.Classify(ctx, ex, cfg.Eval, eval.Options{Input: cfg.Input, BatchSize: cfg.BatchSize, Limit: cfg.EvalLimit, Preprocess: cfg.Preprocess})
	if err != nil {
		return 0, fmt.Errorf("quantize: evaluating accuracy: %w", err)
	}
	return r.Accuracy, nil
}

// sqnrExamples bounds the examples SQNR is measured on.
const sqnrExamples = 256

// measureSQNR runs both graphs on the first calibration examples and fills
// each layer's SQNR (its quantised output, after the fused Relu and the
// output Q/DQ when present, against float).
func measureSQNR(ctx context.Context, fg, qg *rt.Graph, layers []*layer, lreps []LayerReport, calib data.Dataset, cfg *Config) error {
	fo := fg.Clone()
	qo := qg.Clone()
	qnames := make([]string, len(layers))
	qprod := qo.Producers()
	qcons := qo.Consumers()
	for i, l := range layers {
		fo.Outputs = append(fo.Outputs, rt.ValueInfo{Name: l.out, DType: rt.Float32})
		qnames[i] = l.out
		for _, c := range qcons[l.out] {
			if c.OpType == "QuantizeLinear" && len(qcons[c.Outputs[0]]) == 1 && qcons[c.Outputs[0]][0].OpType == "DequantizeLinear" {
				qnames[i] = qcons[c.Outputs[0]][0].Outputs[0]
			}
		}
		_ = qprod
		qo.Outputs = append(qo.Outputs, rt.ValueInfo{Name: qnames[i], DType: rt.Float32})
	}
	var fouts []map[string]*rt.Tensor
	fex, err := rt.NewExecutor(fo, rt.Options{Threads: cfg.Threads, NoOptimize: true})
	if err != nil {
		return fmt.Errorf("quantize: %w", err)
	}
	limit := min(sqnrExamples, max(cfg.CalibSize, 1))
	err = forBatches(ctx, fex, calib, cfg, limit, func(_, out map[string]*rt.Tensor, _ int) error {
		fouts = append(fouts, out)
		return nil
	})
	if err != nil {
		return err
	}
	qex, err := rt.NewExecutor(qo, rt.Options{Threads: cfg.Threads, NoOptimize: true})
	if err != nil {
		return fmt.Errorf("quantize: %w", err)
	}
	sig := make([]float64, len(layers))
	noise := make([]float64, len(layers))
	bi := 0
	err = forBatches(ctx, qex, calib, cfg, limit, func(_, out map[string]*rt.Tensor, n int) error {
		for i, l := range layers {
			x, y := rows(fouts[bi][l.out], n), rows(out[qnames[i]], n)
			if len(x) != len(y) {
				return fmt.Errorf("quantize: layer %q: float and quantised outputs differ in size (%d, %d)", l.node.Name, len(x), len(y))
			}
			for j := range x {
				sig[i] += float64(x[j]) * float64(x[j])
				d := float64(x[j]) - float64(y[j])
				noise[i] += d * d
			}
		}
		bi++
		return nil
	})
	if err != nil {
		return err
	}
	for i := range layers {
		s := sqnrOf(sig[i], noise[i])
		if math.IsInf(s, 1) || s > 999 {
			s = 999
		}
		lreps[i].SQNR = s
	}
	return nil
}

// buildQDQ inserts QuantizeLinear/DequantizeLinear pairs around the layers
// not in floatSet and quantises their weights and biases.
func buildQDQ(fg *rt.Graph, layers []*layer, params map[string]qparams, floatSet map[*layer]bool, cfg *Config) (*rt.Graph, []LayerReport, error) {
	g := fg.Clone()
	byName := map[string]*rt.Node{}
	for _, n := range g.Nodes {
		byName[n.Name+"\x00"+n.Outputs[0]] = n
	}
	isOut := map[string]bool{}
	for _, o := range g.Outputs {
		isOut[o.Name] = true
	}
	// Activations to quantise: inputs and outputs of quantised layers.
	acts := map[string]bool{}
	var order []string
	add := func(t string) {
		if !acts[t] && !isOut[t] {
			acts[t] = true
			order = append(order, t)
		}
	}
	lreps := make([]LayerReport, len(layers))
	for i, l := range layers {
		lreps[i] = LayerReport{Name: l.node.Name, Op: l.node.OpType, Float: floatSet[l]}
		if floatSet[l] {
			continue
		}
		add(l.in)
		if chain, src := moveChain(g.Producers(), l.in); len(chain) > 1 {
			if _, ok := params[src]; ok {
				for _, t := range chain[1 : len(chain)-1] {
					add(t)
				}
			}
		}
		if !l.noOutQ {
			add(l.out)
		}
	}
	prod := g.Producers()
	cons := g.Consumers()
	var pre []*rt.Node // nodes to add before the graph's nodes (inputs)
	after := map[*rt.Node][]*rt.Node{}
	for _, t := range order {
		p := params[t]
		sName, zName := t+"_scale", t+"_zero_point"
		g.AddParam(sName, rt.FromFloat32([]float32{p.scale}), false)
		g.AddParam(zName, zpTensor(p.zp, cfg.SymmetricActivations), false)
		qn := &rt.Node{Name: t + "_QuantizeLinear", OpType: "QuantizeLinear", Inputs: []string{t, sName, zName}, Outputs: []string{t + "_quantized"}}
		dn := &rt.Node{Name: t + "_DequantizeLinear", OpType: "DequantizeLinear", Inputs: []string{t + "_quantized", sName, zName}, Outputs: []string{t + "_dequantized"}}
		for _, c := range cons[t] {
			for j, in := range c.Inputs {
				if in == t {
					c.Inputs[j] = dn.Outputs[0]
				}
			}
		}
		if pn := prod[t]; pn != nil {
			after[pn] = append(after[pn], qn, dn)
		} else {
			pre = append(pre, qn, dn)
		}
	}
	// Weights and biases.
	for i, l := range layers {
		if floatSet[l] {
			continue
		}
		n := byName[l.node.Name+"\x00"+l.node.Outputs[0]]
		w := g.Params[n.Inputs[1]].T
		wq, ws := quantizeWeight(w, l.wAxis, !cfg.PerTensor, cfg.weightMax())
		base := n.Name
		if base == "" {
			base = n.Outputs[0]
		}
		wqName, wsName, wzName := base+"_weight_quantized", base+"_weight_scale", base+"_weight_zero_point"
		g.AddParam(wqName, wq, false)
		g.AddParam(wsName, rt.FromFloat32(ws, shapeOf(ws, !cfg.PerTensor)...), false)
		zp := rt.New(rt.Int8, shapeOf(ws, !cfg.PerTensor)...)
		g.AddParam(wzName, zp, false)
		wdq := &rt.Node{Name: base + "_weight_DequantizeLinear", OpType: "DequantizeLinear", Inputs: []string{wqName, wsName, wzName}, Outputs: []string{base + "_weight_dequantized"}}
		if !cfg.PerTensor {
			wdq.SetAttr("axis", rt.Attr{Kind: rt.AttrInt, I: int64(l.wAxis)})
		}
		nodes := []*rt.Node{wdq}
		n.Inputs[1] = wdq.Outputs[0]
		sa := params[l.in].scale
		lreps[i].InputScale, lreps[i].InputZeroPoint = sa, params[l.in].zp
		lreps[i].WeightScaleMin, lreps[i].WeightScaleMax = ws[0], ws[0]
		for _, s := range ws {
			lreps[i].WeightScaleMin = min(lreps[i].WeightScaleMin, s)
			lreps[i].WeightScaleMax = max(lreps[i].WeightScaleMax, s)
		}
		// Bias: int32 with scale sa*sw.
		if bname := n.Input(2); bname != "" && n.OpType != "MatMul" {
			bp, ok := g.Params[bname]
			outC := w.Shape[l.wAxis]
			if ok && bp.T.DType == rt.Float32 && bp.T.Rank() == 1 && bp.T.Shape[0] == outC && n.AttrFloat("beta", 1) == 1 {
				bq := rt.New(rt.Int32, outC)
				bs := make([]float32, len(ws))
				for c := range outC {
					s := sa * ws[min(c, len(ws)-1)]
					if c < len(ws) {
						bs[c] = s
					}
					v := 0.0
					if s > 0 {
						v = math.Round(float64(bp.T.F32[c]) / float64(s))
					}
					bq.I32[c] = int32(min(max(v, math.MinInt32), math.MaxInt32))
				}
				bqName, bsName, bzName := base+"_bias_quantized", base+"_bias_scale", base+"_bias_zero_point"
				g.AddParam(bqName, bq, false)
				g.AddParam(bsName, rt.FromFloat32(bs, shapeOf(bs, !cfg.PerTensor)...), false)
				g.AddParam(bzName, rt.New(rt.Int32, shapeOf(bs, !cfg.PerTensor)...), false)
				bdq := &rt.Node{Name: base + "_bias_DequantizeLinear", OpType: "DequantizeLinear", Inputs: []string{bqName, bsName, bzName}, Outputs: []string{base + "_bias_dequantized"}}
				if !cfg.PerTensor {
					bdq.SetAttr("axis", rt.Attr{Kind: rt.AttrInt, I: 0})
				}
				nodes = append(nodes, bdq)
				n.Inputs[2] = bdq.Outputs[0]
			}
		}
		after[nil] = append(after[nil], nodes...)
	}
	out := append([]*rt.Node{}, after[nil]...)
	out = append(out, pre...)
	for _, n := range g.Nodes {
		out = append(out, n)
		out = append(out, after[n]...)
	}
	g.Nodes = out
	rt.RemoveDeadCode(g)
	if err := g.TopoSort(); err != nil {
		return nil, nil, fmt.Errorf("quantize: %w", err)
	}
	if g.Opset < 13 {
		g.Opset = 13
	}
	return g, lreps, nil
}

func zpTensor(zp int, symmetric bool) *rt.Tensor {
	if symmetric {
		t := rt.New(rt.Int8)
		t.I8[0] = int8(zp)
		return t
	}
	t := rt.New(rt.Uint8)
	t.U8[0] = uint8(zp)
	return t
}

func shapeOf(v []float32, perChannel bool) []int {
	if perChannel {
		return []int{len(v)}
	}
	return nil
}

// quantizeWeight quantises w symmetrically to int8 in [-qmax, qmax], per
// slice along axis (perChannel) or as a whole; it returns the int8 tensor
// and the scales.
func quantizeWeight(w *rt.Tensor, axis int, perChannel bool, qmax float32) (*rt.Tensor, []float32) {
	q := rt.New(rt.Int8, w.Shape...)
	outer := 1
	for _, d := range w.Shape[:axis] {
		outer *= d
	}
	c := w.Shape[axis]
	inner := w.Len() / outer / c
	nch := 1
	if perChannel {
		nch = c
	}
	amax := make([]float32, nch)
	ch := func(i int) int {
		if !perChannel {
			return 0
		}
		return i / inner % c
	}
	for i, v := range w.F32 {
		k := ch(i)
		amax[k] = max(amax[k], float32(math.Abs(float64(v))))
	}
	scales := make([]float32, nch)
	for k, a := range amax {
		scales[k] = a / qmax
		if a == 0 {
			scales[k] = 1
		}
	}
	for i, v := range w.F32 {
		s := scales[ch(i)]
		r := math.Round(float64(v / s))
		q.I8[i] = int8(min(max(r, -float64(qmax)), float64(qmax)))
	}
	return q, scales
}
