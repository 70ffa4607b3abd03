package importer

import (
	"errors"
	"fmt"
	"sort"
	"strings"

	"google.golang.org/protobuf/proto"

	"github.com/compressml/compress/importer/onnxpb"
	"github.com/compressml/compress/internal/atomicfile"
	"github.com/compressml/compress/runtime"
)

// ProducerName is written as producer_name of every exported model.
const ProducerName = "compress"

// SourceProducerKey is the metadata_props key under which export keeps the
// producer of the model compress imported (for example "pytorch 1.13.1").
const SourceProducerKey = "compress.source_producer"

// ExportOpset returns the default-domain opset a graph is exported at: the
// canonical opset 18, or the graph's own opset when newer (up to 21). Node
// forms are those of opset 18, which opsets 19 to 21 still accept.
func ExportOpset(g *runtime.Graph) int64 {
	return min(max(CanonicalOpset, g.Opset), MaxOpset)
}

// irVersionFor is the IR version released with an opset (onnx 1.13: opset 18
// and IR 8; 1.14 and 1.15: opsets 19 and 20 with IR 9; 1.16: opset 21 and
// IR 10).
func irVersionFor(opset int64) int64 {
	switch {
	case opset <= 18:
		return 8
	case opset <= 20:
		return 9
	}
	return 10
}

// ToModel converts a graph to an ONNX model: parameters become initializers
// with raw_data, graph inputs and outputs keep their element types, shapes
// and dimension names. Nodes are written as they are (the runtime holds
// opset-18 forms). It fails on graphs that cannot be written, such as
// tensors inconsistent with their shape or models beyond the 2 GiB protobuf
// limit (saving weights as external data is not supported).
func ToModel(g *runtime.Graph) (*onnxpb.ModelProto, error) {
	var total int64
	for _, name := range g.ParamNames() {
		p := g.Params[name]
		if p == nil || p.T == nil {
			return nil, fmt.Errorf("parameter %q has no tensor", name)
		}
		total += tensorBytes(p.T)
	}
	for _, n := range g.Nodes {
		for _, a := range n.Attrs {
			if a.Kind == runtime.AttrTensor && a.T != nil {
				total += tensorBytes(a.T)
			}
		}
	}
	if total > maxProtoSize-(64<<20) {
		return nil, fmt.Errorf("the model holds %d bytes of tensors, beyond the 2 GiB limit of an ONNX file without external data; "+
			"saving weights as external data is not supported yet", total)
	}

	opset := ExportOpset(g)
	m := &onnxpb.ModelProto{
		IrVersion:    proto.Int64(irVersionFor(opset)),
		ProducerName: proto.String(ProducerName),
		OpsetImport:  []*onnxpb.OperatorSetIdProto{{Domain: proto.String(""), Version: proto.Int64(opset)}},
	}
	if g.Doc != "" {
		m.DocString = proto.String(g.Doc)
	}
	meta := map[string]string{}
	for k, v := range g.Meta {
		meta[k] = v
	}
	if _, ok := meta[SourceProducerKey]; !ok && g.Producer != "" && !strings.HasPrefix(g.Producer, ProducerName) {
		meta[SourceProducerKey] = g.Producer
	}
	for _, k := range sortedStrings(meta) {
		m.MetadataProps = append(m.MetadataProps, &onnxpb.StringStringEntryProto{Key: proto.String(k), Value: proto.String(meta[k])})
	}

	gp := &onnxpb.GraphProto{Name: proto.String(g.Name)}
	if g.Name == "" {
		gp.Name = proto.String("graph")
	}
	domains := map[string]bool{}
	for i, n := range g.Nodes {
		if n == nil {
			return nil, fmt.Errorf("node %d is nil", i)
		}
		np, err := nodeToProto(n)
		if err != nil {
			return nil, err
		}
		if n.Domain != "" && n.Domain != "ai.onnx" {
			domains[n.Domain] = true
		}
		gp.Node = append(gp.Node, np)
	}
	for _, d := range sortedKeys(domains) {
		// The graph does not record versions of other domains; 1 is the
		// first (and for most custom domains the only) version.
		m.OpsetImport = append(m.OpsetImport, &onnxpb.OperatorSetIdProto{Domain: proto.String(d), Version: proto.Int64(1)})
	}
	for _, name := range g.ParamNames() {
		tp, err := TensorToProto(name, g.Params[name].T)
		if err != nil {
			return nil, fmt.Errorf("parameter %q: %w", name, err)
		}
		gp.Initializer = append(gp.Initializer, tp)
	}
	for _, in := range g.Inputs {
		if _, isParam := g.Params[in.Name]; isParam {
			continue
		}
		vi, err := valueInfoToProto(in)
		if err != nil {
			return nil, fmt.Errorf("graph input %q: %w", in.Name, err)
		}
		gp.Input = append(gp.Input, vi)
	}
	for _, out := range g.Outputs {
		vi, err := valueInfoToProto(out)
		if err != nil {
			return nil, fmt.Errorf("graph output %q: %w", out.Name, err)
		}
		gp.Output = append(gp.Output, vi)
	}
	m.Graph = gp
	return m, nil
}

func sortedStrings(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func nodeToProto(n *runtime.Node) (*onnxpb.NodeProto, error) {
	if n.OpType == "" {
		return nil, fmt.Errorf("node %q has no op type", n.Name)
	}
	np := &onnxpb.NodeProto{
		Input:  append([]string{}, n.Inputs...),
		Output: append([]string{}, n.Outputs...),
		OpType: proto.String(n.OpType),
	}
	if n.Name != "" {
		np.Name = proto.String(n.Name)
	}
	if n.Domain != "" && n.Domain != "ai.onnx" {
		np.Domain = proto.String(n.Domain)
	}
	names := make([]string, 0, len(n.Attrs))
	for k := range n.Attrs {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		ap, err := attrToProto(k, n.Attrs[k])
		if err != nil {
			return nil, fmt.Errorf("%v: attribute %q: %w", n, k, err)
		}
		np.Attribute = append(np.Attribute, ap)
	}
	return np, nil
}

func attrToProto(name string, a runtime.Attr) (*onnxpb.AttributeProto, error) {
	ap := &onnxpb.AttributeProto{Name: proto.String(name)}
	var typ onnxpb.AttributeProto_AttributeType
	switch a.Kind {
	case runtime.AttrFloat:
		typ, ap.F = onnxpb.AttributeProto_FLOAT, proto.Float32(a.F)
	case runtime.AttrInt:
		typ, ap.I = onnxpb.AttributeProto_INT, proto.Int64(a.I)
	case runtime.AttrString:
		typ, ap.S = onnxpb.AttributeProto_STRING, []byte(a.S)
	case runtime.AttrTensor:
		tp, err := TensorToProto("", a.T)
		if err != nil {
			return nil, err
		}
		typ, ap.T = onnxpb.AttributeProto_TENSOR, tp
	case runtime.AttrFloats:
		typ, ap.Floats = onnxpb.AttributeProto_FLOATS, append([]float32{}, a.Floats...)
	case runtime.AttrInts:
		typ, ap.Ints = onnxpb.AttributeProto_INTS, append([]int64{}, a.Ints...)
	case runtime.AttrStrings:
		typ = onnxpb.AttributeProto_STRINGS
		for _, s := range a.Strings {
			ap.Strings = append(ap.Strings, []byte(s))
		}
	default:
		return nil, fmt.Errorf("unknown attribute kind %d", a.Kind)
	}
	ap.Type = typ.Enum()
	return ap, nil
}

func valueInfoToProto(vi runtime.ValueInfo) (*onnxpb.ValueInfoProto, error) {
	if vi.Name == "" {
		return nil, errors.New("has no name")
	}
	out := &onnxpb.ValueInfoProto{Name: proto.String(vi.Name)}
	if vi.DType == runtime.Undefined && vi.Shape == nil {
		return out, nil
	}
	tt := &onnxpb.TypeProto_Tensor{}
	if vi.DType != runtime.Undefined {
		dt, err := onnxDType(vi.DType)
		if err != nil {
			return nil, err
		}
		tt.ElemType = proto.Int32(dt)
	}
	if vi.Shape != nil {
		if vi.DimNames != nil && len(vi.DimNames) != len(vi.Shape) {
			return nil, fmt.Errorf("has %d dimension names for %d dimensions", len(vi.DimNames), len(vi.Shape))
		}
		sp := &onnxpb.TensorShapeProto{Dim: []*onnxpb.TensorShapeProto_Dimension{}}
		for i, d := range vi.Shape {
			dim := &onnxpb.TensorShapeProto_Dimension{}
			switch {
			case vi.DimNames != nil && vi.DimNames[i] != "":
				dim.Value = &onnxpb.TensorShapeProto_Dimension_DimParam{DimParam: vi.DimNames[i]}
			case d >= 0:
				dim.Value = &onnxpb.TensorShapeProto_Dimension_DimValue{DimValue: int64(d)}
			}
			sp.Dim = append(sp.Dim, dim)
		}
		tt.Shape = sp
	}
	out.Type = &onnxpb.TypeProto{Value: &onnxpb.TypeProto_TensorType{TensorType: tt}}
	return out, nil
}

// Marshal serializes a graph as an ONNX model (see ToModel). The output is
// deterministic: the same graph gives the same bytes.
func Marshal(g *runtime.Graph) ([]byte, error) {
	m, err := ToModel(g)
	if err != nil {
		return nil, err
	}
	if size := proto.Size(m); size > maxProtoSize {
		return nil, fmt.Errorf("the serialized model would be %d bytes, beyond the 2 GiB protobuf limit", size)
	}
	return proto.MarshalOptions{Deterministic: true}.Marshal(m)
}

// Save writes a graph to path as an ONNX model. It writes a temporary file
// in the same directory and renames it over path, so a failed save never
// leaves a partial model behind.
func Save(g *runtime.Graph, path string) error {
	data, err := Marshal(g)
	if err != nil {
		return fmt.Errorf("saving %s: %w", path, err)
	}
	return writeFileAtomic(path, data)
}

// writeFileAtomic writes data to path through a temporary file and rename.
func writeFileAtomic(path string, data []byte) error { return atomicfile.WriteBytes(path, data) }
