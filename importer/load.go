package importer

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"google.golang.org/protobuf/proto"

	"github.com/compressml/compress/importer/onnxpb"
	"github.com/compressml/compress/runtime"
)

// The range of model versions the importer reads.
const (
	// MinIRVersion is the oldest ONNX IR version read (IR 3 introduced opset imports).
	MinIRVersion = 3
	// MaxIRVersion is the newest ONNX IR version read.
	MaxIRVersion = 11
	// MinOpset and MaxOpset bound the default-domain opset of a model.
	MinOpset = 7
	MaxOpset = 21
	// CanonicalOpset is the opset whose op forms every imported node is
	// rewritten to (see the package documentation).
	CanonicalOpset = 18
)

// maxProtoSize is the protobuf limit on one serialized message (2 GiB).
const maxProtoSize = 1<<31 - 1

// LoadOptions adjusts what Load and LoadBytes accept.
type LoadOptions struct {
	// AllowUnsupported keeps nodes whose op the runtime does not implement
	// (and attributes it cannot represent, such as subgraphs) instead of
	// refusing the model. The graph then cannot run; this is meant for tests
	// and for tools that only inspect or rewrite graphs.
	AllowUnsupported bool
}

func mergeOptions(opts []LoadOptions) LoadOptions {
	var o LoadOptions
	for _, x := range opts {
		o.AllowUnsupported = o.AllowUnsupported || x.AllowUnsupported
	}
	return o
}

// Load reads an ONNX model file, with any external data files it refers to
// (resolved relative to the model's directory), and returns it as a graph in
// canonical form. Errors name the file.
func Load(path string, opts ...LoadOptions) (*runtime.Graph, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if st.IsDir() {
		return nil, fmt.Errorf("%s is a directory; give the path of the .onnx file", path)
	}
	if st.Size() > maxProtoSize {
		return nil, fmt.Errorf("%s: %d bytes is beyond the 2 GiB protobuf limit; an ONNX model this large must keep its weights in external data files", path, st.Size())
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	g, err := LoadBytes(data, filepath.Dir(path), opts...)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return g, nil
}

// LoadBytes parses a serialized ONNX model. baseDir is the directory that
// external data locations are relative to; with "" a model using external
// data is refused.
func LoadBytes(data []byte, baseDir string, opts ...LoadOptions) (*runtime.Graph, error) {
	if len(data) == 0 {
		return nil, errors.New("the model is empty (0 bytes)")
	}
	var m onnxpb.ModelProto
	if err := proto.Unmarshal(data, &m); err != nil {
		return nil, fmt.Errorf("not an ONNX model (the protobuf does not decode, the file may be truncated or of another format): %w", err)
	}
	return FromModel(&m, baseDir, opts...)
}

// FromModel converts a decoded ONNX model to a graph in canonical form;
// baseDir is as for LoadBytes.
func FromModel(m *onnxpb.ModelProto, baseDir string, opts ...LoadOptions) (*runtime.Graph, error) {
	l := &loader{
		opts:   mergeOptions(opts),
		tr:     &tensorReader{baseDir: baseDir},
		opsets: map[string]int64{},
	}
	defer l.tr.close()
	return l.model(m)
}

// loader holds the state of one model conversion.
type loader struct {
	opts   LoadOptions
	tr     *tensorReader
	opsets map[string]int64 // domain ("" for ONNX's) -> version
	opset  int64            // default-domain opset
	g      *runtime.Graph

	used      map[string]bool // every value name in the graph
	nodeNames map[string]bool // every explicit node name of the model
	claimed   map[string]bool // node names given to converted nodes
	ranks     map[string]int  // known ranks of values (for Softmax normalisation)
	dropped   []string        // attributes left out (only allowed with AllowUnsupported)
}

func (l *loader) model(m *onnxpb.ModelProto) (*runtime.Graph, error) {
	ir := m.GetIrVersion()
	switch {
	case m.IrVersion == nil && m.Graph == nil:
		return nil, errors.New("not an ONNX model: it has neither an IR version nor a graph")
	case ir < MinIRVersion:
		return nil, fmt.Errorf("IR version %d is too old (compress reads IR %d to %d); convert the model with a newer ONNX exporter or onnx.version_converter",
			ir, MinIRVersion, MaxIRVersion)
	case ir > MaxIRVersion:
		return nil, fmt.Errorf("IR version %d is newer than compress reads (IR %d to %d); re-export the model with an older ONNX version", ir, MinIRVersion, MaxIRVersion)
	}
	if m.Graph == nil {
		return nil, errors.New("the model has no graph")
	}
	for _, imp := range m.GetOpsetImport() {
		d := imp.GetDomain()
		if d == "ai.onnx" {
			d = ""
		}
		if _, dup := l.opsets[d]; dup {
			return nil, fmt.Errorf("opset of domain %q is imported twice", displayDomain(d))
		}
		l.opsets[d] = imp.GetVersion()
	}
	v, ok := l.opsets[""]
	if !ok {
		for _, n := range m.Graph.GetNode() {
			if d := n.GetDomain(); d == "" || d == "ai.onnx" {
				return nil, fmt.Errorf("the model imports no opset of the default ONNX domain, but node %q uses op %s of it; "+
					"re-export it with an opset between %d and %d", n.GetName(), n.GetOpType(), MinOpset, MaxOpset)
			}
		}
		// Only other domains: their ops decide whether the model is supported.
		v = CanonicalOpset
	}
	if v < MinOpset || v > MaxOpset {
		what := "too old"
		if v > MaxOpset {
			what = "newer than compress supports"
		}
		return nil, fmt.Errorf("the model uses default-domain opset %d, which is %s (compress reads opsets %d to %d); "+
			"convert it with onnx.version_converter.convert_version(model, %d) or re-export it at an opset in that range",
			v, what, MinOpset, MaxOpset, CanonicalOpset)
	}
	l.opset = v

	g := runtime.NewGraph(m.Graph.GetName())
	g.Opset = v
	g.Producer = strings.TrimSpace(m.GetProducerName() + " " + m.GetProducerVersion())
	g.Doc = m.GetDocString()
	if props := m.GetMetadataProps(); len(props) > 0 {
		g.Meta = make(map[string]string, len(props))
		for _, p := range props {
			g.Meta[p.GetKey()] = p.GetValue()
		}
	}
	l.g = g
	if err := l.graph(m.Graph); err != nil {
		return nil, err
	}
	return g, nil
}

func (l *loader) graph(gp *onnxpb.GraphProto) error {
	g := l.g
	if len(gp.GetSparseInitializer()) > 0 {
		return fmt.Errorf("the graph has %d sparse initializers, which compress does not read; densify them (onnx.numpy_helper) and re-save the model",
			len(gp.GetSparseInitializer()))
	}
	// Collect every name first, so that generated names never collide.
	l.used = map[string]bool{}
	l.nodeNames = map[string]bool{}
	l.claimed = map[string]bool{}
	l.ranks = map[string]int{}
	for _, t := range gp.GetInitializer() {
		l.used[t.GetName()] = true
	}
	for _, vi := range gp.GetInput() {
		l.used[vi.GetName()] = true
	}
	for _, n := range gp.GetNode() {
		for _, s := range n.GetInput() {
			l.used[s] = true
		}
		for _, s := range n.GetOutput() {
			l.used[s] = true
		}
		if n.GetName() != "" {
			l.nodeNames[n.GetName()] = true
		}
	}

	// Initializers become frozen parameters.
	for i, tp := range gp.GetInitializer() {
		name := tp.GetName()
		if name == "" {
			return fmt.Errorf("initializer %d has no name", i)
		}
		if _, dup := g.Params[name]; dup {
			return fmt.Errorf("initializer %q appears twice", name)
		}
		t, err := l.tr.tensor(tp)
		if err != nil {
			return fmt.Errorf("initializer %q: %w", name, err)
		}
		g.AddParam(name, t, false)
		l.ranks[name] = len(t.Shape)
	}

	// Graph inputs (those with an initializer are parameters: IR < 4 listed
	// every initializer as an input too).
	seen := map[string]bool{}
	for i, vi := range gp.GetInput() {
		name := vi.GetName()
		if name == "" {
			return fmt.Errorf("graph input %d has no name", i)
		}
		if seen[name] {
			return fmt.Errorf("graph input %q is listed twice", name)
		}
		seen[name] = true
		if _, isParam := g.Params[name]; isParam {
			continue
		}
		info, err := valueInfo(vi, true)
		if err != nil {
			return fmt.Errorf("graph input %q: %w", name, err)
		}
		g.Inputs = append(g.Inputs, info)
		if info.Shape != nil {
			l.ranks[name] = len(info.Shape)
		}
	}
	seen = map[string]bool{}
	for i, vi := range gp.GetOutput() {
		name := vi.GetName()
		if name == "" {
			return fmt.Errorf("graph output %d has no name", i)
		}
		if seen[name] {
			return fmt.Errorf("graph output %q is listed twice", name)
		}
		seen[name] = true
		info, err := valueInfo(vi, false)
		if err != nil {
			return fmt.Errorf("graph output %q: %w", name, err)
		}
		g.Outputs = append(g.Outputs, info)
		if info.Shape != nil {
			l.ranks[name] = len(info.Shape)
		}
	}
	if len(g.Outputs) == 0 {
		return errors.New("the graph has no outputs")
	}
	for _, vi := range gp.GetValueInfo() {
		if tt := vi.GetType().GetTensorType(); tt != nil && tt.Shape != nil {
			l.ranks[vi.GetName()] = len(tt.GetShape().GetDim())
		}
	}

	// Nodes: convert, fold Constant nodes into parameters, normalise.
	graphOutput := map[string]bool{}
	for _, o := range g.Outputs {
		graphOutput[o.Name] = true
	}
	for i, np := range gp.GetNode() {
		n, err := l.node(np, i)
		if err != nil {
			return err
		}
		if n.OpType == "Constant" && n.Domain == "" && len(n.Outputs) == 1 && !graphOutput[n.Outputs[0]] {
			if err := l.constantToParam(n); err != nil {
				return err
			}
			continue
		}
		nodes, err := l.normalize(n)
		if err != nil {
			return err
		}
		for _, nn := range nodes {
			l.trackRank(nn)
		}
		g.Nodes = append(g.Nodes, nodes...)
	}
	l.dropUnusedExtraOutputs()

	// Structural checks.
	produced := map[string]bool{}
	for _, in := range g.Inputs {
		produced[in.Name] = true
	}
	for name := range g.Params {
		produced[name] = true
	}
	for _, n := range g.Nodes {
		for _, o := range n.Outputs {
			produced[o] = true
		}
	}
	for _, o := range g.Outputs {
		if !produced[o.Name] {
			return fmt.Errorf("graph output %q is not produced by any node, input or initializer", o.Name)
		}
	}
	if err := g.TopoSort(); err != nil {
		return fmt.Errorf("invalid graph: %w", err)
	}
	return l.checkSupported()
}

// checkSupported refuses a graph with ops the runtime lacks, listing all.
func (l *loader) checkSupported() error {
	if l.opts.AllowUnsupported {
		return nil
	}
	bad := runtime.UnsupportedOps(l.g)
	if len(bad) == 0 && len(l.dropped) == 0 {
		return nil
	}
	var b strings.Builder
	if len(bad) > 0 {
		types := map[string]bool{}
		for _, n := range bad {
			types[opName(n)] = true
		}
		fmt.Fprintf(&b, "the model uses %d op type(s) compress does not support (%s), in %d node(s):",
			len(types), strings.Join(sortedKeys(types), ", "), len(bad))
		for _, n := range bad {
			fmt.Fprintf(&b, "\n  %s node %q (domain %q, opset %d)", n.OpType, n.Name, displayDomain(n.Domain), l.opsets[n.Domain])
		}
	}
	if len(l.dropped) > 0 {
		if b.Len() > 0 {
			b.WriteString("\n")
		}
		fmt.Fprintf(&b, "the model has %d attribute(s) compress cannot represent:", len(l.dropped))
		for _, s := range l.dropped {
			b.WriteString("\n  " + s)
		}
	}
	return errors.New(b.String())
}

func opName(n *runtime.Node) string {
	if n.Domain == "" {
		return n.OpType
	}
	return n.Domain + "::" + n.OpType
}

func displayDomain(d string) string {
	if d == "" {
		return "ai.onnx"
	}
	return d
}

func sortedKeys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// valueInfo converts a graph input or output description. Symbolic and
// unknown dimensions become -1, with their names kept in DimNames.
func valueInfo(vi *onnxpb.ValueInfoProto, isInput bool) (runtime.ValueInfo, error) {
	info := runtime.ValueInfo{Name: vi.GetName()}
	tp := vi.GetType()
	if tp == nil || tp.Value == nil {
		if isInput {
			return info, errors.New("has no type; ONNX requires element types on graph inputs")
		}
		return info, nil // outputs' types can be inferred
	}
	tt := tp.GetTensorType()
	if tt == nil {
		return info, errors.New("is not a tensor (sequences, maps and optionals are not supported)")
	}
	if tt.GetElemType() != 0 || isInput {
		dt, err := valueDType(tt.GetElemType())
		if err != nil {
			return info, err
		}
		info.DType = dt
	}
	if tt.Shape == nil {
		return info, nil // unknown rank
	}
	dims := tt.GetShape().GetDim()
	info.Shape = make([]int, len(dims))
	check := make([]int, len(dims))
	hasNames := false
	names := make([]string, len(dims))
	for i, d := range dims {
		info.Shape[i], check[i] = -1, 1
		if _, ok := d.GetValue().(*onnxpb.TensorShapeProto_Dimension_DimValue); ok {
			v := d.GetDimValue()
			if v > runtime.MaxElements {
				return info, fmt.Errorf("dimension %d (%d) is absurdly large", i, v)
			}
			if v >= 0 { // some exporters write -1 for a dynamic dimension
				info.Shape[i], check[i] = int(v), int(v)
			}
		}
		if p := d.GetDimParam(); p != "" {
			names[i], hasNames = p, true
		}
	}
	if err := runtime.CheckShape(check); err != nil {
		return info, err
	}
	if hasNames {
		info.DimNames = names
	}
	return info, nil
}

// node converts one NodeProto (without normalising it).
func (l *loader) node(np *onnxpb.NodeProto, index int) (*runtime.Node, error) {
	op := np.GetOpType()
	if op == "" {
		return nil, fmt.Errorf("node %d (%q) has no op type", index, np.GetName())
	}
	domain := np.GetDomain()
	if domain == "ai.onnx" {
		domain = ""
	}
	name := np.GetName()
	if name == "" {
		name = l.uniqueNodeName(fmt.Sprintf("%s_%d", op, index))
	} else if l.claimed[name] {
		name = l.uniqueNodeName(name) // duplicate node names are made unique
	}
	l.claimed[name] = true
	n := &runtime.Node{
		Name:    name,
		OpType:  op,
		Domain:  domain,
		Inputs:  append([]string{}, np.GetInput()...),
		Outputs: append([]string{}, np.GetOutput()...),
	}
	if _, ok := l.opsets[domain]; !ok {
		return nil, fmt.Errorf("%v uses domain %q, which the model does not import (opset_import)", n, displayDomain(domain))
	}
	nOut := 0
	for _, o := range n.Outputs {
		if o != "" {
			nOut++
		}
	}
	if nOut == 0 {
		return nil, fmt.Errorf("%v has no outputs", n)
	}
	for _, ap := range np.GetAttribute() {
		aname := ap.GetName()
		if aname == "" {
			return nil, fmt.Errorf("%v has an attribute without a name", n)
		}
		if _, dup := n.Attrs[aname]; dup {
			return nil, fmt.Errorf("%v has attribute %q twice", n, aname)
		}
		a, ok, err := l.attr(ap)
		if err != nil {
			return nil, fmt.Errorf("%v: attribute %q: %w", n, aname, err)
		}
		if !ok {
			l.dropped = append(l.dropped, fmt.Sprintf("%v: attribute %q of type %v", n, aname, ap.GetType()))
			continue
		}
		n.SetAttr(aname, a)
	}
	return n, nil
}

// uniqueNodeName returns base, or base with a numeric suffix, such that it
// differs from every explicit node name of the model and every name given
// out so far.
func (l *loader) uniqueNodeName(base string) string {
	name := base
	for i := 1; l.nodeNames[name] || l.claimed[name]; i++ {
		name = fmt.Sprintf("%s_%d", base, i)
	}
	return name
}

// attr converts one attribute. ok is false for kinds the runtime cannot
// represent (subgraphs, lists of tensors, sparse tensors, type protos).
func (l *loader) attr(ap *onnxpb.AttributeProto) (a runtime.Attr, ok bool, err error) {
	if ap.GetRefAttrName() != "" {
		return a, false, errors.New("refers to a function attribute (ref_attr_name), which is only valid inside functions")
	}
	typ := ap.GetType()
	if typ == onnxpb.AttributeProto_UNDEFINED {
		// IR 1 files had no discriminator: use the field that is set.
		switch {
		case ap.T != nil:
			typ = onnxpb.AttributeProto_TENSOR
		case ap.G != nil:
			typ = onnxpb.AttributeProto_GRAPH
		case ap.I != nil:
			typ = onnxpb.AttributeProto_INT
		case ap.F != nil:
			typ = onnxpb.AttributeProto_FLOAT
		case ap.S != nil:
			typ = onnxpb.AttributeProto_STRING
		case len(ap.Ints) > 0:
			typ = onnxpb.AttributeProto_INTS
		case len(ap.Floats) > 0:
			typ = onnxpb.AttributeProto_FLOATS
		case len(ap.Strings) > 0:
			typ = onnxpb.AttributeProto_STRINGS
		default:
			return a, false, errors.New("has no type and no value")
		}
	}
	switch typ {
	case onnxpb.AttributeProto_FLOAT:
		return runtime.Attr{Kind: runtime.AttrFloat, F: ap.GetF()}, true, nil
	case onnxpb.AttributeProto_INT:
		return runtime.Attr{Kind: runtime.AttrInt, I: ap.GetI()}, true, nil
	case onnxpb.AttributeProto_STRING:
		return runtime.Attr{Kind: runtime.AttrString, S: string(ap.GetS())}, true, nil
	case onnxpb.AttributeProto_TENSOR:
		t, err := l.tr.tensor(ap.GetT())
		if err != nil {
			return a, false, err
		}
		return runtime.Attr{Kind: runtime.AttrTensor, T: t}, true, nil
	case onnxpb.AttributeProto_FLOATS:
		return runtime.Attr{Kind: runtime.AttrFloats, Floats: append([]float32{}, ap.GetFloats()...)}, true, nil
	case onnxpb.AttributeProto_INTS:
		return runtime.Attr{Kind: runtime.AttrInts, Ints: append([]int64{}, ap.GetInts()...)}, true, nil
	case onnxpb.AttributeProto_STRINGS:
		ss := make([]string, len(ap.GetStrings()))
		for i, s := range ap.GetStrings() {
			ss[i] = string(s)
		}
		return runtime.Attr{Kind: runtime.AttrStrings, Strings: ss}, true, nil
	}
	return a, false, nil
}

// constantToParam turns a Constant node into a frozen parameter named after
// its output.
func (l *loader) constantToParam(n *runtime.Node) error {
	out := n.Outputs[0]
	if _, dup := l.g.Params[out]; dup {
		return fmt.Errorf("%v writes %q, which is also an initializer", n, out)
	}
	if len(n.Inputs) > 0 {
		return fmt.Errorf("%v has inputs; Constant takes none", n)
	}
	if len(n.Attrs) != 1 {
		return fmt.Errorf("%v must have exactly one value attribute (value, value_float, value_floats, value_int or value_ints), has %d", n, len(n.Attrs))
	}
	var t *runtime.Tensor
	for name, a := range n.Attrs {
		switch {
		case name == "value" && a.Kind == runtime.AttrTensor:
			t = a.T
		case name == "value_float" && a.Kind == runtime.AttrFloat:
			t = runtime.FromFloat32([]float32{a.F})
		case name == "value_floats" && a.Kind == runtime.AttrFloats:
			t = runtime.FromFloat32(append([]float32{}, a.Floats...), len(a.Floats))
		case name == "value_int" && a.Kind == runtime.AttrInt:
			t = runtime.FromInt64([]int64{a.I})
		case name == "value_ints" && a.Kind == runtime.AttrInts:
			t = runtime.FromInt64(append([]int64{}, a.Ints...), len(a.Ints))
		default:
			return fmt.Errorf("%v: attribute %q (kind %d) is not a supported Constant value; compress reads value, value_float(s) and value_int(s) (no strings or sparse tensors)",
				n, name, a.Kind)
		}
	}
	l.g.AddParam(out, t, false)
	l.ranks[out] = len(t.Shape)
	return nil
}

// dropUnusedExtraOutputs removes BatchNormalization's training outputs
// (running mean and variance, and before opset 14 the saved mean and
// variance) when nothing reads them, leaving the inference form with one
// output. Outputs that are read are kept (the kernel decides whether it
// supports them).
func (l *loader) dropUnusedExtraOutputs() {
	var read map[string]bool
	for _, n := range l.g.Nodes {
		if n.OpType != "BatchNormalization" || n.Domain != "" || len(n.Outputs) <= 1 {
			continue
		}
		if read == nil {
			read = map[string]bool{}
			for _, m := range l.g.Nodes {
				for _, in := range m.Inputs {
					read[in] = true
				}
			}
			for _, o := range l.g.Outputs {
				read[o.Name] = true
			}
		}
		keep := len(n.Outputs)
		for keep > 1 && (n.Outputs[keep-1] == "" || !read[n.Outputs[keep-1]]) {
			keep--
		}
		n.Outputs = n.Outputs[:keep]
	}
}
