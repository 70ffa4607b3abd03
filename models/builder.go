package models

import (
	"fmt"
	"math/rand/v2"

	"github.com/compressml/compress/runtime"
)

// builder appends nodes and freshly initialised parameters to a graph. The
// first error sticks (later calls do nothing) and is returned by finish, so
// architecture code reads as a straight list of layers. The value a node
// produces is named like the node itself, except where noted.
type builder struct {
	g        *runtime.Graph
	rng      *rand.Rand
	convInit Initializer
	fcInit   Initializer
	count    int // parameter values allocated so far
	err      error
}

func newBuilder(name string, cfg Config) *builder {
	b := &builder{
		g:        runtime.NewGraph(name),
		rng:      NewRNG(cfg.Seed),
		convInit: KaimingNormal,
		fcInit:   XavierUniform,
	}
	b.g.Opset = 18
	b.g.Producer = "compress"
	if cfg.Init != "" {
		f, err := InitByName(cfg.Init)
		if err != nil {
			b.err = err
		}
		b.convInit, b.fcInit = f, f
	}
	shape := append([]int{-1}, cfg.Input...)
	dims := make([]string, len(shape))
	dims[0] = "N"
	b.g.Inputs = []runtime.ValueInfo{{Name: InputName, DType: runtime.Float32, Shape: shape, DimNames: dims}}
	return b
}

// finish declares the graph output (out must be the [N, classes] logits
// value) and returns the graph or the first error.
func (b *builder) finish(out string, classes int) (*runtime.Graph, error) {
	if b.err != nil {
		return nil, b.err
	}
	b.g.Outputs = []runtime.ValueInfo{{Name: out, DType: runtime.Float32, Shape: []int{-1, classes}, DimNames: []string{"N", ""}}}
	return b.g, nil
}

func (b *builder) fail(format string, args ...any) {
	if b.err == nil {
		b.err = fmt.Errorf(format, args...)
	}
}

// param adds a float32 parameter of the given shape, initialised by init
// (with the shape's fans) or left zero when init is nil.
func (b *builder) param(name string, trainable bool, init Initializer, shape ...int) {
	if b.err != nil {
		return
	}
	if err := runtime.CheckShape(shape); err != nil {
		b.fail("parameter %s: %v", name, err)
		return
	}
	if _, dup := b.g.Params[name]; dup {
		b.fail("parameter %s is defined twice (a bug in the architecture)", name)
		return
	}
	n := runtime.NumElements(shape)
	if n > MaxParams-b.count {
		b.fail("parameter %s %v takes the model past %d parameters: reduce the input size, Width or Hidden",
			name, shape, MaxParams)
		return
	}
	b.count += n
	t := runtime.New(runtime.Float32, shape...)
	if init != nil {
		fanIn, fanOut, err := Fans(shape)
		if err == nil {
			err = init(t, fanIn, fanOut, b.rng)
		}
		if err != nil {
			b.fail("initialising %s: %v", name, err)
			return
		}
	}
	b.g.AddParam(name, t, trainable)
}

// fill adds a parameter with every value set to v.
func (b *builder) fill(name string, trainable bool, v float32, shape ...int) {
	b.param(name, trainable, nil, shape...)
	if b.err != nil {
		return
	}
	for i := range b.g.Params[name].T.F32 {
		b.g.Params[name].T.F32[i] = v
	}
}

// node appends a node named name writing the value out.
func (b *builder) node(op, name, out string, inputs []string, attrs map[string]runtime.Attr) string {
	if b.err != nil {
		return out
	}
	b.g.Nodes = append(b.g.Nodes, &runtime.Node{Name: name, OpType: op, Inputs: inputs, Outputs: []string{out}, Attrs: attrs})
	return out
}

func ints(v ...int) runtime.Attr {
	a := runtime.Attr{Kind: runtime.AttrInts, Ints: make([]int64, len(v))}
	for i, x := range v {
		a.Ints[i] = int64(x)
	}
	return a
}

func intAttr(v int) runtime.Attr { return runtime.Attr{Kind: runtime.AttrInt, I: int64(v)} }

func floatAttr(v float32) runtime.Attr { return runtime.Attr{Kind: runtime.AttrFloat, F: v} }

// conv adds a 2-D Conv with a square kernel k, stride and symmetric padding
// pad, groups groups, weight name.weight [cout, cin/groups, k, k] and, when
// bias, name.bias [cout].
func (b *builder) conv(name, x string, cin, cout, k, stride, pad, groups int, bias bool) string {
	if groups < 1 || cin%groups != 0 || cout%groups != 0 {
		b.fail("%s: %d input and %d output channels do not split into %d groups", name, cin, cout, groups)
		return name
	}
	b.param(name+".weight", true, b.convInit, cout, cin/groups, k, k)
	inputs := []string{x, name + ".weight"}
	if bias {
		b.param(name+".bias", true, nil, cout)
		inputs = append(inputs, name+".bias")
	}
	attrs := map[string]runtime.Attr{
		"kernel_shape": ints(k, k),
		"strides":      ints(stride, stride),
		"pads":         ints(pad, pad, pad, pad),
	}
	if groups != 1 {
		attrs["group"] = intAttr(groups)
	}
	return b.node("Conv", name, name, inputs, attrs)
}

// bn adds an inference-form BatchNormalization (opset 15+) over c channels
// with PyTorch's defaults: epsilon 1e-5 and momentum 0.9 in ONNX's
// convention (running = momentum*running + (1-momentum)*batch), which is
// PyTorch's momentum 0.1.
func (b *builder) bn(name, x string, c int) string {
	b.fill(name+".weight", true, 1, c)
	b.fill(name+".bias", true, 0, c)
	b.fill(name+".running_mean", false, 0, c)
	b.fill(name+".running_var", false, 1, c)
	return b.node("BatchNormalization", name, name,
		[]string{x, name + ".weight", name + ".bias", name + ".running_mean", name + ".running_var"},
		map[string]runtime.Attr{"epsilon": floatAttr(1e-5), "momentum": floatAttr(0.9)})
}

func (b *builder) relu(name, x string) string {
	return b.node("Relu", name, name, []string{x}, nil)
}

func (b *builder) add(name, x, y string) string {
	return b.node("Add", name, name, []string{x, y}, nil)
}

// maxPool adds a MaxPool with a square window k and stride s, no padding.
func (b *builder) maxPool(name, x string, k, s int) string {
	return b.node("MaxPool", name, name, []string{x}, map[string]runtime.Attr{
		"kernel_shape": ints(k, k),
		"strides":      ints(s, s),
		"pads":         ints(0, 0, 0, 0),
	})
}

func (b *builder) globalAvgPool(name, x string) string {
	return b.node("GlobalAveragePool", name, name, []string{x}, nil)
}

// flatten adds Flatten(axis=1): [N, d1, d2...] -> [N, d1*d2*...].
func (b *builder) flatten(name, x string) string {
	return b.node("Flatten", name, name, []string{x}, map[string]runtime.Attr{"axis": intAttr(1)})
}

// gemm adds a fully connected layer like PyTorch's Linear: Gemm(x, W, bias)
// with transB=1, W = name.weight [out, in], bias = name.bias [out], writing
// the value out (name when out is "").
func (b *builder) gemm(name, out, x string, in, units int) string {
	if out == "" {
		out = name
	}
	b.param(name+".weight", true, b.fcInit, units, in)
	b.param(name+".bias", true, nil, units)
	return b.node("Gemm", name, out, []string{x, name + ".weight", name + ".bias"},
		map[string]runtime.Attr{"transB": intAttr(1)})
}
