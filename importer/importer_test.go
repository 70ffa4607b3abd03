package importer

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	goruntime "runtime"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/compressml/compress/importer/onnxpb"
	"github.com/compressml/compress/runtime"
)

var allow = LoadOptions{AllowUnsupported: true}

func TestLoadMNIST(t *testing.T) {
	path := mnistPath(t)
	g, err := Load(path, allow)
	if err != nil {
		t.Fatal(err)
	}
	if len(g.Nodes) != 12 {
		t.Errorf("nodes: got %d, want 12", len(g.Nodes))
	}
	if len(g.Params) != 8 {
		t.Errorf("params: got %d, want 8", len(g.Params))
	}
	if g.Opset != 8 || g.Producer != "CNTK 2.5.1" || g.Name != "CNTKGraph" {
		t.Errorf("got opset %d, producer %q, name %q; want 8, \"CNTK 2.5.1\", \"CNTKGraph\"", g.Opset, g.Producer, g.Name)
	}
	wantIn := []runtime.ValueInfo{{Name: "Input3", DType: runtime.Float32, Shape: []int{1, 1, 28, 28}}}
	if !reflect.DeepEqual(g.Inputs, wantIn) {
		t.Errorf("inputs: got %+v, want %+v (initializers listed as inputs must become parameters)", g.Inputs, wantIn)
	}
	wantOut := []runtime.ValueInfo{{Name: "Plus214_Output_0", DType: runtime.Float32, Shape: []int{1, 10}}}
	if !reflect.DeepEqual(g.Outputs, wantOut) {
		t.Errorf("outputs: got %+v, want %+v", g.Outputs, wantOut)
	}
	for _, tc := range []struct {
		name  string
		dtype runtime.DType
		shape []int
	}{
		{"Parameter5", runtime.Float32, []int{8, 1, 5, 5}},
		{"Parameter193", runtime.Float32, []int{16, 4, 4, 10}},
		{"Parameter194", runtime.Float32, []int{1, 10}},
		{"Pooling160_Output_0_reshape0_shape", runtime.Int64, []int{2}},
	} {
		p := g.Params[tc.name]
		if p == nil {
			t.Errorf("param %s missing", tc.name)
			continue
		}
		if p.T.DType != tc.dtype || !runtime.SameShape(p.T.Shape, tc.shape) || p.Trainable {
			t.Errorf("param %s: got %v %v trainable=%v, want %v %v frozen", tc.name, p.T.DType, p.T.Shape, p.Trainable, tc.dtype, tc.shape)
		}
	}
	if got := g.Params["Pooling160_Output_0_reshape0_shape"].T.I64; !reflect.DeepEqual(got, []int64{1, 256}) {
		t.Errorf("reshape shape: got %v, want [1 256]", got)
	}
	ops := map[string]int{}
	for _, n := range g.Nodes {
		ops[n.OpType]++
	}
	wantOps := map[string]int{"Conv": 2, "Add": 3, "Relu": 2, "MaxPool": 2, "Reshape": 2, "MatMul": 1}
	if !reflect.DeepEqual(ops, wantOps) {
		t.Errorf("op counts: got %v, want %v", ops, wantOps)
	}
	conv := g.Nodes[indexOfNode(g, "Convolution28")]
	if got := conv.AttrString("auto_pad", ""); got != "SAME_UPPER" {
		t.Errorf("Convolution28 auto_pad: got %q, want SAME_UPPER", got)
	}
	if got := conv.AttrInts("kernel_shape", nil); !reflect.DeepEqual(got, []int64{5, 5}) {
		t.Errorf("Convolution28 kernel_shape: got %v", got)
	}

	// Without AllowUnsupported the model loads once every op is registered;
	// while the registry is incomplete the error must list every missing op.
	if _, err := Load(path); err != nil {
		for _, n := range runtime.UnsupportedOps(g) {
			if !strings.Contains(err.Error(), fmt.Sprintf("%q", n.Name)) {
				t.Errorf("strict load error does not name unsupported node %s: %v", n.Name, err)
			}
		}
		t.Logf("strict load (registry incomplete): %v", err)
	}
}

func indexOfNode(g *runtime.Graph, name string) int {
	for i, n := range g.Nodes {
		if n.Name == name {
			return i
		}
	}
	return -1
}

// compareGraphs reports differences in everything a round trip keeps
// (producer, opset and metadata change by design).
func compareGraphs(t *testing.T, got, want *runtime.Graph) {
	t.Helper()
	if got.Name != want.Name || got.Doc != want.Doc {
		t.Errorf("name/doc: got %q/%q, want %q/%q", got.Name, got.Doc, want.Name, want.Doc)
	}
	if len(got.Nodes) != len(want.Nodes) {
		t.Fatalf("got %d nodes, want %d", len(got.Nodes), len(want.Nodes))
	}
	for i := range want.Nodes {
		a, b := got.Nodes[i], want.Nodes[i]
		if a.Name != b.Name || a.OpType != b.OpType || a.Domain != b.Domain ||
			!reflect.DeepEqual(a.Inputs, b.Inputs) || !reflect.DeepEqual(a.Outputs, b.Outputs) || !attrsEqual(a.Attrs, b.Attrs) {
			t.Errorf("node %d: got %+v, want %+v", i, *a, *b)
		}
	}
	if !reflect.DeepEqual(got.Inputs, want.Inputs) || !reflect.DeepEqual(got.Outputs, want.Outputs) {
		t.Errorf("inputs/outputs: got %+v %+v, want %+v %+v", got.Inputs, got.Outputs, want.Inputs, want.Outputs)
	}
	if len(got.Params) != len(want.Params) {
		t.Errorf("got %d params, want %d", len(got.Params), len(want.Params))
	}
	for name, p := range want.Params {
		q := got.Params[name]
		if q == nil || q.Trainable != p.Trainable || !reflect.DeepEqual(q.T, p.T) {
			t.Errorf("param %q differs: got %+v, want %+v", name, q, p)
		}
	}
}

func attrsEqual(a, b map[string]runtime.Attr) bool {
	if len(a) == 0 && len(b) == 0 {
		return true
	}
	return reflect.DeepEqual(a, b)
}

func TestRoundTrip(t *testing.T) {
	type tc struct {
		name string
		data func(t *testing.T) []byte
	}
	cases := []tc{
		{"mnist-8", func(t *testing.T) []byte {
			b, err := os.ReadFile(mnistPath(t))
			if err != nil {
				t.Fatal(err)
			}
			return b
		}},
	}
	for _, opset := range []int64{7, 11, 13, 17, 18, 21} {
		cases = append(cases, tc{fmt.Sprintf("mlp-opset%d", opset), func(t *testing.T) []byte { return marshal(t, mlpModel(opset)) }})
	}
	for _, nc := range normalizeCases() {
		if nc.wantErr == "" {
			cases = append(cases, tc{"normalized-" + nc.name, func(t *testing.T) []byte { return marshal(t, nc.model()) }})
		}
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			g, err := LoadBytes(c.data(t), "", allow)
			if err != nil {
				t.Fatal(err)
			}
			b1, err := Marshal(g)
			if err != nil {
				t.Fatal(err)
			}
			g2, err := LoadBytes(b1, "", allow)
			if err != nil {
				t.Fatalf("re-loading the exported model: %v", err)
			}
			compareGraphs(t, g2, g)
			if g2.Opset != ExportOpset(g) || g2.Producer != ProducerName {
				t.Errorf("exported opset %d producer %q, want %d %q", g2.Opset, g2.Producer, ExportOpset(g), ProducerName)
			}
			if g.Producer != "" && g2.Meta[SourceProducerKey] != g.Producer {
				t.Errorf("source producer: got %q, want %q", g2.Meta[SourceProducerKey], g.Producer)
			}
			b2, err := Marshal(g2)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(b1, b2) {
				t.Error("exporting the re-loaded graph gives different bytes")
			}
		})
	}
}

func TestSaveLoad(t *testing.T) {
	dir := t.TempDir()
	g, err := LoadBytes(marshal(t, mlpModel(13)), "", allow)
	if err != nil {
		t.Fatal(err)
	}
	g.Meta = map[string]string{"k": "v"}
	g.Doc = "doc"
	path := filepath.Join(dir, "out.onnx")
	if err := Save(g, path); err != nil {
		t.Fatal(err)
	}
	g2, err := Load(path, allow)
	if err != nil {
		t.Fatal(err)
	}
	compareGraphs(t, g2, g)
	if g2.Meta["k"] != "v" || g2.Meta[SourceProducerKey] != "test" {
		t.Errorf("metadata: got %v", g2.Meta)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Errorf("Save left %d files in the directory, want 1", len(entries))
	}
	if err := Save(g, filepath.Join(dir, "missing", "out.onnx")); err == nil {
		t.Error("Save into a missing directory: no error")
	}
	bad := g.Clone()
	bad.Params["w1"].T.F32 = bad.Params["w1"].T.F32[:3]
	if err := Save(bad, filepath.Join(dir, "bad.onnx")); err == nil || !strings.Contains(err.Error(), "w1") {
		t.Errorf("Save of a tensor shorter than its shape: got %v, want an error naming w1", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "bad.onnx")); err == nil {
		t.Error("a failed Save left a file behind")
	}
}

func TestExportRefuses(t *testing.T) {
	huge := runtime.NewGraph("huge")
	huge.AddParam("w", &runtime.Tensor{DType: runtime.Float32, Shape: []int{1 << 30}}, false) // 4 GiB, never allocated
	noOp := runtime.NewGraph("noop")
	noOp.Nodes = []*runtime.Node{{Name: "n", Inputs: []string{"x"}, Outputs: []string{"y"}}}
	short := runtime.NewGraph("short")
	short.AddParam("w", &runtime.Tensor{DType: runtime.Float32, Shape: []int{2, 2}, F32: []float32{1}}, false)
	badKind := runtime.NewGraph("attr")
	badKind.Nodes = []*runtime.Node{{Name: "n", OpType: "Relu", Outputs: []string{"y"}, Attrs: map[string]runtime.Attr{"a": {}}}}
	undefined := runtime.NewGraph("undefined")
	undefined.AddParam("w", &runtime.Tensor{Shape: []int{}}, false)
	for _, tc := range []struct {
		name string
		g    *runtime.Graph
		want string
	}{
		{"beyond 2 GiB", huge, "beyond the 2 GiB limit"},
		{"node without op type", noOp, `node "n" has no op type`},
		{"tensor shorter than shape", short, `parameter "w": float32 tensor of shape [2 2] holds 1 values, its shape needs 4`},
		{"attribute without kind", badKind, `Relu node "n": attribute "a": unknown attribute kind 0`},
		{"tensor without dtype", undefined, `parameter "w": element type undefined has no ONNX equivalent`},
	} {
		if _, err := Marshal(tc.g); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: got error %v, want one containing %q", tc.name, err, tc.want)
		}
	}
}

func TestLoadPathErrors(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct{ path, want string }{
		{filepath.Join(dir, "missing.onnx"), "no such file"},
		{dir, "is a directory"},
	} {
		if _, err := Load(tc.path); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Load(%s): got error %v, want one containing %q", tc.path, err, tc.want)
		}
	}
}

func TestExportIRVersion(t *testing.T) {
	for _, tc := range []struct{ opset, wantOpset, wantIR int64 }{
		{8, 18, 8}, {13, 18, 8}, {18, 18, 8}, {19, 19, 9}, {20, 20, 9}, {21, 21, 10},
	} {
		g := runtime.NewGraph("g")
		g.Opset = tc.opset
		m, err := ToModel(g)
		if err != nil {
			t.Fatal(err)
		}
		if m.GetOpsetImport()[0].GetVersion() != tc.wantOpset || m.GetIrVersion() != tc.wantIR {
			t.Errorf("opset %d: exported opset %d IR %d, want %d and %d", tc.opset, m.GetOpsetImport()[0].GetVersion(), m.GetIrVersion(), tc.wantOpset, tc.wantIR)
		}
	}
}

// TestBadInput checks that each malformed model gives a clear error, never a
// panic or a large allocation.
func TestBadInput(t *testing.T) {
	valid := marshal(t, mlpModel(13))
	rng := rand.New(rand.NewPCG(1, 2))
	random := make([]byte, 4096)
	for i := range random {
		random[i] = byte(rng.Uint32())
	}
	// modify returns a broken variant of the valid MLP.
	modify := func(f func(m *onnxpb.ModelProto)) func() *onnxpb.ModelProto {
		return func() *onnxpb.ModelProto {
			m := mlpModel(13)
			f(m)
			return m
		}
	}
	relu := func(name, in, out string) *onnxpb.NodeProto { return pnode("Relu", name, []string{in}, []string{out}) }
	x := []*onnxpb.ValueInfoProto{vinfo("x", onnxFloat, 2)}
	cases := []struct {
		name  string
		data  []byte
		model func() *onnxpb.ModelProto
		want  string
	}{
		{name: "empty", data: []byte{}, want: "empty"},
		{name: "truncated", data: valid[:len(valid)/2], want: "not an ONNX model"},
		{name: "truncated by one byte", data: valid[:len(valid)-1], want: "not an ONNX model"},
		{name: "random bytes", data: random, want: ""},
		{name: "text", data: []byte("this is not a model at all\n"), want: ""},
		{name: "IR version 2", model: modify(func(m *onnxpb.ModelProto) { m.IrVersion = proto.Int64(2) }), want: "IR version 2 is too old"},
		{name: "IR version 99", model: modify(func(m *onnxpb.ModelProto) { m.IrVersion = proto.Int64(99) }), want: "IR version 99 is newer"},
		{name: "no graph", model: modify(func(m *onnxpb.ModelProto) { m.Graph = nil }), want: "no graph"},
		{name: "opset 6", model: func() *onnxpb.ModelProto { return mlpModel(6) }, want: "opset 6, which is too old"},
		{name: "opset 22", model: func() *onnxpb.ModelProto { return mlpModel(22) }, want: "opset 22, which is newer"},
		{name: "no default opset", model: modify(func(m *onnxpb.ModelProto) {
			m.OpsetImport[0].Domain = proto.String("ai.onnx.ml")
		}), want: `the model imports no opset of the default ONNX domain, but node "fc1" uses op Gemm of it`},
		{name: "only another domain", model: func() *onnxpb.ModelProto {
			m := pmodel(13, []*onnxpb.NodeProto{{OpType: proto.String("Adam"), Domain: proto.String("ai.onnx.preview.training"),
				Input: []string{"x"}, Output: []string{"y"}}}, nil, x, []*onnxpb.ValueInfoProto{vinfo("y", onnxFloat)})
			m.OpsetImport[0].Domain = proto.String("ai.onnx.preview.training")
			m.OpsetImport[0].Version = proto.Int64(1)
			return m
		}, want: `Adam node "Adam_0" (domain "ai.onnx.preview.training", opset 1)`},
		{name: "raw data shorter than dims", model: modify(func(m *onnxpb.ModelProto) {
			m.Graph.Initializer[0].Dims = []int64{3, 5}
		}), want: `initializer "w1": shape [3 5] of FLOAT needs 60 bytes of data, raw_data holds 48`},
		{name: "float_data shorter than dims", model: modify(func(m *onnxpb.ModelProto) {
			m.Graph.Initializer[1].Dims = []int64{1000000}
		}), want: `initializer "b1": shape [1000000] of FLOAT needs 1000000 values, float_data holds 3`},
		{name: "tensor without data", model: modify(func(m *onnxpb.ModelProto) {
			m.Graph.Initializer[1].FloatData = nil
		}), want: "holds no data"},
		{name: "negative dim", model: modify(func(m *onnxpb.ModelProto) {
			m.Graph.Initializer[0].Dims = []int64{-3, 4}
		}), want: "negative"},
		{name: "absurd dim", model: modify(func(m *onnxpb.ModelProto) {
			m.Graph.Initializer[0].Dims = []int64{1 << 62}
		}), want: "absurdly large"},
		{name: "absurd element count", model: modify(func(m *onnxpb.ModelProto) {
			m.Graph.Initializer[0].Dims = []int64{1 << 20, 1 << 20, 1 << 20}
		}), want: "more than"},
		{name: "overflowing element count", model: modify(func(m *onnxpb.ModelProto) {
			m.Graph.Initializer[0].Dims = []int64{1 << 31, 1 << 31, 1 << 31, 1 << 31}
		}), want: "more than"},
		{name: "absurd input dim", model: modify(func(m *onnxpb.ModelProto) {
			m.Graph.Input[0] = vinfo("x", onnxFloat, 1<<40, 4)
		}), want: `graph input "x": dimension 0 (1099511627776) is absurdly large`},
		{name: "string initializer", model: modify(func(m *onnxpb.ModelProto) {
			m.Graph.Initializer[1].DataType = proto.Int32(int32(onnxpb.TensorProto_STRING))
		}), want: `initializer "b1": element type STRING is not supported`},
		{name: "float8 initializer", model: modify(func(m *onnxpb.ModelProto) {
			m.Graph.Initializer[1].DataType = proto.Int32(int32(onnxpb.TensorProto_FLOAT8E4M3FN))
		}), want: "FLOAT8E4M3FN is not supported"},
		{name: "double input", model: modify(func(m *onnxpb.ModelProto) {
			m.Graph.Input[0] = vinfo("x", onnxDouble, 1, 4)
		}), want: `graph input "x": element type DOUBLE is not supported`},
		{name: "input without type", model: modify(func(m *onnxpb.ModelProto) {
			m.Graph.Input[0].Type = nil
		}), want: `graph input "x": has no type`},
		{name: "duplicate initializer", model: modify(func(m *onnxpb.ModelProto) {
			m.Graph.Initializer = append(m.Graph.Initializer, m.Graph.Initializer[0])
		}), want: `initializer "w1" appears twice`},
		{name: "sparse initializer", model: modify(func(m *onnxpb.ModelProto) {
			m.Graph.SparseInitializer = []*onnxpb.SparseTensorProto{{}}
		}), want: "sparse initializers"},
		{name: "cycle", model: func() *onnxpb.ModelProto {
			return pmodel(13, []*onnxpb.NodeProto{
				pnode("Add", "a", []string{"x", "c"}, []string{"b"}),
				relu("r", "b", "c"),
			}, nil, x, []*onnxpb.ValueInfoProto{vinfo("c", onnxFloat, 2)})
		}, want: "cycle"},
		{name: "self loop", model: func() *onnxpb.ModelProto {
			return pmodel(13, []*onnxpb.NodeProto{pnode("Add", "a", []string{"x", "y"}, []string{"y"})},
				nil, x, []*onnxpb.ValueInfoProto{vinfo("y", onnxFloat, 2)})
		}, want: "cycle"},
		{name: "duplicate output", model: func() *onnxpb.ModelProto {
			return pmodel(13, []*onnxpb.NodeProto{relu("r1", "x", "y"), relu("r2", "x", "y")},
				nil, x, []*onnxpb.ValueInfoProto{vinfo("y", onnxFloat, 2)})
		}, want: `value "y" is produced twice`},
		{name: "node overwrites an input", model: func() *onnxpb.ModelProto {
			return pmodel(13, []*onnxpb.NodeProto{relu("r1", "x", "x")},
				nil, x, []*onnxpb.ValueInfoProto{vinfo("x", onnxFloat, 2)})
		}, want: "graph input or initializer"},
		{name: "missing input", model: func() *onnxpb.ModelProto {
			return pmodel(13, []*onnxpb.NodeProto{pnode("Add", "a", []string{"x", "nowhere"}, []string{"y"})},
				nil, x, []*onnxpb.ValueInfoProto{vinfo("y", onnxFloat, 2)})
		}, want: `reads "nowhere", which no node, input or initializer provides`},
		{name: "output not produced", model: modify(func(m *onnxpb.ModelProto) {
			m.Graph.Output[0].Name = proto.String("nothing")
		}), want: `graph output "nothing" is not produced`},
		{name: "no outputs", model: modify(func(m *onnxpb.ModelProto) { m.Graph.Output = nil }), want: "no outputs"},
		{name: "node without op type", model: modify(func(m *onnxpb.ModelProto) {
			m.Graph.Node[1].OpType = nil
		}), want: "has no op type"},
		{name: "node without outputs", model: modify(func(m *onnxpb.ModelProto) {
			m.Graph.Node = append(m.Graph.Node, pnode("Relu", "lonely", []string{"x"}, nil))
		}), want: `Relu node "lonely" has no outputs`},
		{name: "domain not imported", model: modify(func(m *onnxpb.ModelProto) {
			m.Graph.Node[1].Domain = proto.String("com.example")
		}), want: `uses domain "com.example", which the model does not import`},
		{name: "duplicate attribute", model: modify(func(m *onnxpb.ModelProto) {
			m.Graph.Node[0].Attribute = append(m.Graph.Node[0].Attribute, aInt("transB", 0))
		}), want: `has attribute "transB" twice`},
		{name: "bad tensor attribute", model: func() *onnxpb.ModelProto {
			return pmodel(13, []*onnxpb.NodeProto{
				pnode("ConstantOfShape", "c", []string{"x"}, []string{"y"}, aTensor("value", floatTensor("", []int64{5}, 1))),
			}, nil, []*onnxpb.ValueInfoProto{vinfo("x", onnxInt64, 1)}, []*onnxpb.ValueInfoProto{vinfo("y", onnxFloat)})
		}, want: `ConstantOfShape node "c": attribute "value": shape [5] of FLOAT needs 5 values, float_data holds 1`},
		{name: "string constant", model: func() *onnxpb.ModelProto {
			return pmodel(13, []*onnxpb.NodeProto{
				pnode("Constant", "k", nil, []string{"c"}, &onnxpb.AttributeProto{Name: proto.String("value_string"), Type: onnxpb.AttributeProto_STRING.Enum(), S: []byte("hi")}),
				pnode("Identity", "id", []string{"c"}, []string{"y"}),
			}, nil, nil, []*onnxpb.ValueInfoProto{vinfo("y", onnxFloat)})
		}, want: `attribute "value_string"`},
		{name: "int8 out of range", model: modify(func(m *onnxpb.ModelProto) {
			m.Graph.Initializer = append(m.Graph.Initializer, &onnxpb.TensorProto{
				Name: proto.String("q"), DataType: proto.Int32(onnxInt8), Dims: []int64{2}, Int32Data: []int32{1, 300}})
		}), want: "int32_data[1] = 300 is out of range for INT8"},
		{name: "external data without base dir", model: modify(func(m *onnxpb.ModelProto) {
			m.Graph.Initializer[0].RawData = nil
			m.Graph.Initializer[0].DataLocation = onnxpb.TensorProto_EXTERNAL.Enum()
			m.Graph.Initializer[0].ExternalData = []*onnxpb.StringStringEntryProto{{Key: proto.String("location"), Value: proto.String("w.bin")}}
		}), want: "without a base directory"},
		{name: "unsupported ops", model: func() *onnxpb.ModelProto {
			m := pmodel(13, []*onnxpb.NodeProto{
				pnode("Frobnicate", "f1", []string{"x"}, []string{"a"}),
				pnode("Frobnicate", "f2", []string{"a"}, []string{"b"}),
				pnode("Defrobnicate", "", []string{"b"}, []string{"c"}),
				{OpType: proto.String("LinearClassifier"), Domain: proto.String("ai.onnx.ml"), Name: proto.String("cls"), Input: []string{"c"}, Output: []string{"y"}},
			}, nil, x, []*onnxpb.ValueInfoProto{vinfo("y", onnxFloat)})
			m.OpsetImport = append(m.OpsetImport, &onnxpb.OperatorSetIdProto{Domain: proto.String("ai.onnx.ml"), Version: proto.Int64(3)})
			return m
		}, want: "the model uses 3 op type(s) compress does not support (Defrobnicate, Frobnicate, ai.onnx.ml::LinearClassifier), in 4 node(s):\n" +
			`  Frobnicate node "f1" (domain "ai.onnx", opset 13)` + "\n" +
			`  Frobnicate node "f2" (domain "ai.onnx", opset 13)` + "\n" +
			`  Defrobnicate node "Defrobnicate_2" (domain "ai.onnx", opset 13)` + "\n" +
			`  LinearClassifier node "cls" (domain "ai.onnx.ml", opset 3)`},
		{name: "subgraph attribute", model: func() *onnxpb.ModelProto {
			return pmodel(13, []*onnxpb.NodeProto{
				pnode("Identity", "id", []string{"x"}, []string{"y"},
					&onnxpb.AttributeProto{Name: proto.String("body"), Type: onnxpb.AttributeProto_GRAPH.Enum(), G: &onnxpb.GraphProto{}}),
			}, nil, x, []*onnxpb.ValueInfoProto{vinfo("y", onnxFloat)})
		}, want: `attribute "body" of type GRAPH`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			data := tc.data
			if tc.model != nil {
				data = marshal(t, tc.model())
			}
			var before, after goruntime.MemStats
			goruntime.ReadMemStats(&before)
			g, err := LoadBytes(data, "")
			goruntime.ReadMemStats(&after)
			if err == nil {
				t.Fatalf("no error (graph with %d nodes)", len(g.Nodes))
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q does not contain %q", err, tc.want)
			}
			if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 64<<20 {
				t.Errorf("allocated %d MiB for a %d-byte model", alloc>>20, len(data))
			}
		})
	}
}

func TestExternalData(t *testing.T) {
	dir := t.TempDir()
	// w.bin holds 4 bytes of padding, then w1 (3x4 float32).
	vals := []float32{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12}
	raw := make([]byte, 4+4*len(vals))
	for i, v := range vals {
		binary.LittleEndian.PutUint32(raw[4+4*i:], math.Float32bits(v))
	}
	if err := os.WriteFile(filepath.Join(dir, "w.bin"), raw, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(dir, "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "sub", "w.bin"), raw, 0o644); err != nil {
		t.Fatal(err)
	}
	outside := t.TempDir()
	if err := os.WriteFile(filepath.Join(outside, "secret.bin"), raw, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(outside, "secret.bin"), filepath.Join(dir, "link.bin")); err != nil {
		t.Fatal(err)
	}
	ext := func(kv ...string) func(m *onnxpb.ModelProto) {
		return func(m *onnxpb.ModelProto) {
			w := m.Graph.Initializer[0]
			w.RawData = nil
			w.DataLocation = onnxpb.TensorProto_EXTERNAL.Enum()
			w.ExternalData = nil
			for i := 0; i < len(kv); i += 2 {
				w.ExternalData = append(w.ExternalData, &onnxpb.StringStringEntryProto{Key: proto.String(kv[i]), Value: proto.String(kv[i+1])})
			}
		}
	}
	cases := []struct {
		name    string
		edit    func(m *onnxpb.ModelProto)
		wantErr string
	}{
		{"offset and length", ext("location", "w.bin", "offset", "4", "length", "48"), ""},
		{"subdirectory", ext("location", "sub/w.bin", "offset", "4"), ""},
		{"missing file", ext("location", "gone.bin"), `external data file "gone.bin" is missing`},
		{"parent directory", ext("location", "../w.bin"), "not a relative path inside the model's directory"},
		{"absolute path", ext("location", filepath.Join(outside, "secret.bin"), "offset", "4"), "not a relative path inside"},
		{"symlink escaping", ext("location", "link.bin", "offset", "4"), `external data file "link.bin"`},
		{"file too short", ext("location", "w.bin", "offset", "8"), "the file is truncated"},
		{"wrong length", ext("location", "w.bin", "length", "40"), "has length 40 bytes, the tensor's shape needs 48"},
		{"bad offset", ext("location", "w.bin", "offset", "-4"), `offset="-4" is not a valid byte count`},
		{"no location", ext("offset", "4"), "without a location"},
		{"directory", ext("location", "sub"), "not a regular file"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			m := mlpModel(13)
			tc.edit(m)
			path := filepath.Join(dir, "model.onnx")
			if err := os.WriteFile(path, marshal(t, m), 0o644); err != nil {
				t.Fatal(err)
			}
			g, err := Load(path, allow)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("got error %v, want one containing %q", err, tc.wantErr)
				}
				if !strings.Contains(err.Error(), `initializer "w1"`) || !strings.Contains(err.Error(), path) {
					t.Errorf("error %q does not name the file and the initializer", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := g.Params["w1"].T.F32; !reflect.DeepEqual(got, vals) {
				t.Errorf("w1: got %v, want %v", got, vals)
			}
		})
	}
}

func TestTensorTypes(t *testing.T) {
	le := binary.LittleEndian
	u16 := func(v ...uint16) []byte {
		b := make([]byte, 2*len(v))
		for i, x := range v {
			le.PutUint16(b[2*i:], x)
		}
		return b
	}
	f64 := func(v ...float64) []byte {
		b := make([]byte, 8*len(v))
		for i, x := range v {
			le.PutUint64(b[8*i:], math.Float64bits(x))
		}
		return b
	}
	tp := func(dt int32, dims []int64, f func(*onnxpb.TensorProto)) *onnxpb.TensorProto {
		p := &onnxpb.TensorProto{DataType: proto.Int32(dt), Dims: dims}
		f(p)
		return p
	}
	f32 := func(v ...float32) *runtime.Tensor {
		return &runtime.Tensor{DType: runtime.Float32, Shape: []int{len(v)}, F32: v}
	}
	i32 := func(v ...int32) *runtime.Tensor {
		return &runtime.Tensor{DType: runtime.Int32, Shape: []int{len(v)}, I32: v}
	}
	i64 := func(v ...int64) *runtime.Tensor {
		return &runtime.Tensor{DType: runtime.Int64, Shape: []int{len(v)}, I64: v}
	}
	halfBits := []uint16{0x3c00, 0xc000, 0x7bff, 0x0001, 0x8000, 0x3555}
	halfVals := []float32{1, -2, 65504, 1.0 / (1 << 24), float32(math.Copysign(0, -1)), 0.333251953125}
	cases := []struct {
		name string
		in   *onnxpb.TensorProto
		want *runtime.Tensor
	}{
		{"float raw scalar", tp(onnxFloat, nil, func(p *onnxpb.TensorProto) { p.RawData = []byte{0, 0, 0x80, 0x3f} }),
			&runtime.Tensor{DType: runtime.Float32, Shape: []int{}, F32: []float32{1}}},
		{"float empty", tp(onnxFloat, []int64{0, 3}, func(p *onnxpb.TensorProto) {}),
			&runtime.Tensor{DType: runtime.Float32, Shape: []int{0, 3}, F32: []float32{}}},
		{"double typed", tp(onnxDouble, []int64{2}, func(p *onnxpb.TensorProto) { p.DoubleData = []float64{0.5, -1e300} }),
			f32(0.5, float32(math.Inf(-1)))},
		{"double raw", tp(onnxDouble, []int64{2}, func(p *onnxpb.TensorProto) { p.RawData = f64(0.25, 3) }), f32(0.25, 3)},
		{"float16 raw", tp(onnxFloat16, []int64{6}, func(p *onnxpb.TensorProto) { p.RawData = u16(halfBits...) }), f32(halfVals...)},
		{"float16 typed", tp(onnxFloat16, []int64{2}, func(p *onnxpb.TensorProto) { p.Int32Data = []int32{0x3c00, 0x7c00} }),
			f32(1, float32(math.Inf(1)))},
		{"bfloat16 raw", tp(onnxBfloat16, []int64{2}, func(p *onnxpb.TensorProto) { p.RawData = u16(0x3f80, 0xc040) }), f32(1, -3)},
		{"int8 raw", tp(onnxInt8, []int64{3}, func(p *onnxpb.TensorProto) { p.RawData = []byte{0xff, 0x7f, 0x80} }),
			&runtime.Tensor{DType: runtime.Int8, Shape: []int{3}, I8: []int8{-1, 127, -128}}},
		{"int8 typed", tp(onnxInt8, []int64{2}, func(p *onnxpb.TensorProto) { p.Int32Data = []int32{-5, 7} }),
			&runtime.Tensor{DType: runtime.Int8, Shape: []int{2}, I8: []int8{-5, 7}}},
		{"uint8 typed", tp(onnxUint8, []int64{2}, func(p *onnxpb.TensorProto) { p.Int32Data = []int32{0, 255} }),
			&runtime.Tensor{DType: runtime.Uint8, Shape: []int{2}, U8: []uint8{0, 255}}},
		{"bool raw", tp(onnxBool, []int64{3}, func(p *onnxpb.TensorProto) { p.RawData = []byte{0, 1, 2} }),
			&runtime.Tensor{DType: runtime.Bool, Shape: []int{3}, B: []bool{false, true, true}}},
		{"bool typed", tp(onnxBool, []int64{2}, func(p *onnxpb.TensorProto) { p.Int32Data = []int32{1, 0} }),
			&runtime.Tensor{DType: runtime.Bool, Shape: []int{2}, B: []bool{true, false}}},
		{"int16 raw", tp(onnxInt16, []int64{2}, func(p *onnxpb.TensorProto) { p.RawData = u16(0xfffb, 300) }), i32(-5, 300)},
		{"uint16 typed", tp(onnxUint16, []int64{1}, func(p *onnxpb.TensorProto) { p.Int32Data = []int32{65535} }), i32(65535)},
		{"int32 typed", tp(onnxInt32, []int64{2}, func(p *onnxpb.TensorProto) { p.Int32Data = []int32{-7, 1 << 30} }), i32(-7, 1<<30)},
		{"uint32 raw", tp(onnxUint32, []int64{1}, func(p *onnxpb.TensorProto) { p.RawData = []byte{0xff, 0xff, 0xff, 0xff} }), i64(1<<32 - 1)},
		{"uint32 typed", tp(onnxUint32, []int64{1}, func(p *onnxpb.TensorProto) { p.Uint64Data = []uint64{4e9} }), i64(4e9)},
		{"int64 raw", tp(onnxInt64, []int64{1}, func(p *onnxpb.TensorProto) { p.RawData = []byte{0xfe, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff} }), i64(-2)},
		{"int64 typed", tp(onnxInt64, []int64{2, 1}, func(p *onnxpb.TensorProto) { p.Int64Data = []int64{-1, 1 << 40} }),
			&runtime.Tensor{DType: runtime.Int64, Shape: []int{2, 1}, I64: []int64{-1, 1 << 40}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := TensorFromProto(tc.in, "")
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("got %+v, want %+v", got, tc.want)
			}
			// Every runtime tensor survives Encode/Decode unchanged.
			b, err := EncodeTensor("t", got)
			if err != nil {
				t.Fatal(err)
			}
			name, back, err := DecodeTensor(b)
			if err != nil || name != "t" || !reflect.DeepEqual(back, got) {
				t.Errorf("encode/decode: got %q %+v %v, want %+v", name, back, err, got)
			}
		})
	}
	for _, bad := range []struct {
		name string
		in   *onnxpb.TensorProto
		want string
	}{
		{"uint64", tp(int32(onnxpb.TensorProto_UINT64), []int64{1}, func(p *onnxpb.TensorProto) { p.Uint64Data = []uint64{1} }), "UINT64 is not supported"},
		{"complex", tp(int32(onnxpb.TensorProto_COMPLEX64), []int64{1}, func(p *onnxpb.TensorProto) {}), "COMPLEX64 is not supported"},
		{"int4", tp(int32(onnxpb.TensorProto_INT4), []int64{1}, func(p *onnxpb.TensorProto) {}), "INT4 is not supported"},
		{"unknown", tp(99, []int64{1}, func(p *onnxpb.TensorProto) {}), "unknown data type 99"},
		{"undefined", tp(0, []int64{1}, func(p *onnxpb.TensorProto) {}), "UNDEFINED is not supported"},
		{"raw too long", tp(onnxFloat, []int64{1}, func(p *onnxpb.TensorProto) { p.RawData = make([]byte, 8) }), "needs 4 bytes of data, raw_data holds 8"},
		{"uint8 out of range", tp(onnxUint8, []int64{1}, func(p *onnxpb.TensorProto) { p.Int32Data = []int32{-1} }), "out of range for UINT8"},
		{"segment", tp(onnxFloat, []int64{1}, func(p *onnxpb.TensorProto) { p.Segment = &onnxpb.TensorProto_Segment{} }), "segmented"},
		{"nil", nil, "missing"},
	} {
		if _, err := TensorFromProto(bad.in, ""); err == nil || !strings.Contains(err.Error(), bad.want) {
			t.Errorf("%s: got error %v, want one containing %q", bad.name, err, bad.want)
		}
	}
}

func TestTensorFiles(t *testing.T) {
	path := filepath.Join(mnistDir, "test_data_set_0", "input_0.pb")
	if _, err := os.Stat(path); err != nil {
		t.Skipf("mnist-8 test data not available (%v)", err)
	}
	_, in, err := ReadTensorFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if in.DType != runtime.Float32 || !runtime.SameShape(in.Shape, []int{1, 1, 28, 28}) {
		t.Errorf("input_0.pb: got %v %v, want float32 [1 1 28 28]", in.DType, in.Shape)
	}
	out := filepath.Join(t.TempDir(), "t.pb")
	if err := WriteTensorFile(out, "x", in); err != nil {
		t.Fatal(err)
	}
	name, back, err := ReadTensorFile(out)
	if err != nil || name != "x" || !reflect.DeepEqual(back, in) {
		t.Errorf("write/read: got %q %v", name, err)
	}
	if _, _, err := DecodeTensor([]byte{0xff, 0xff, 0xff}); err == nil {
		t.Error("decoding garbage: no error")
	}
}

// FuzzLoadBytes checks that no input makes the loader panic, and that
// whatever it accepts can be exported and loaded again.
func FuzzLoadBytes(f *testing.F) {
	if b, err := os.ReadFile(filepath.Join(mnistDir, "model.onnx")); err == nil {
		f.Add(b)
	}
	for _, opset := range []int64{7, 11, 13, 18} {
		f.Add(marshal(f, mlpModel(opset)))
	}
	for _, nc := range normalizeCases() {
		f.Add(marshal(f, nc.model()))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		if _, err := LoadBytes(data, ""); err != nil && err.Error() == "" {
			t.Fatal("empty error message")
		}
		g, err := LoadBytes(data, "", allow)
		if err != nil {
			return
		}
		b, err := Marshal(g)
		if err != nil {
			t.Fatalf("an accepted model does not export: %v", err)
		}
		if _, err := LoadBytes(b, "", allow); err != nil {
			t.Fatalf("an exported model does not load: %v", err)
		}
	})
}
