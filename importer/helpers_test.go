package importer

import (
	"encoding/binary"
	"math"
	"os"
	"path/filepath"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/compressml/compress/importer/onnxpb"
)

// Builders for small ONNX models in tests.

// mnistDir is the shared mnist-8 model, relative to this package.
var mnistDir = filepath.Join("..", "..", "shared", "models", "mnist-8")

func mnistPath(t testing.TB) string {
	t.Helper()
	p := filepath.Join(mnistDir, "model.onnx")
	if _, err := os.Stat(p); err != nil {
		t.Skipf("mnist-8 not available (%v); it is expected at ../shared/models/mnist-8 next to the repository", err)
	}
	return p
}

func vinfo(name string, elem int32, dims ...int64) *onnxpb.ValueInfoProto {
	sp := &onnxpb.TensorShapeProto{}
	for _, d := range dims {
		dim := &onnxpb.TensorShapeProto_Dimension{}
		if d >= 0 {
			dim.Value = &onnxpb.TensorShapeProto_Dimension_DimValue{DimValue: d}
		} else {
			dim.Value = &onnxpb.TensorShapeProto_Dimension_DimParam{DimParam: "N"}
		}
		sp.Dim = append(sp.Dim, dim)
	}
	return &onnxpb.ValueInfoProto{
		Name: proto.String(name),
		Type: &onnxpb.TypeProto{Value: &onnxpb.TypeProto_TensorType{TensorType: &onnxpb.TypeProto_Tensor{
			ElemType: proto.Int32(elem), Shape: sp,
		}}},
	}
}

func pnode(op, name string, in, out []string, attrs ...*onnxpb.AttributeProto) *onnxpb.NodeProto {
	n := &onnxpb.NodeProto{OpType: proto.String(op), Input: in, Output: out, Attribute: attrs}
	if name != "" {
		n.Name = proto.String(name)
	}
	return n
}

func aInts(name string, v ...int64) *onnxpb.AttributeProto {
	return &onnxpb.AttributeProto{Name: proto.String(name), Type: onnxpb.AttributeProto_INTS.Enum(), Ints: v}
}

func aInt(name string, v int64) *onnxpb.AttributeProto {
	return &onnxpb.AttributeProto{Name: proto.String(name), Type: onnxpb.AttributeProto_INT.Enum(), I: proto.Int64(v)}
}

func aFloat(name string, v float32) *onnxpb.AttributeProto {
	return &onnxpb.AttributeProto{Name: proto.String(name), Type: onnxpb.AttributeProto_FLOAT.Enum(), F: proto.Float32(v)}
}

func aFloats(name string, v ...float32) *onnxpb.AttributeProto {
	return &onnxpb.AttributeProto{Name: proto.String(name), Type: onnxpb.AttributeProto_FLOATS.Enum(), Floats: v}
}

func aString(name, v string) *onnxpb.AttributeProto {
	return &onnxpb.AttributeProto{Name: proto.String(name), Type: onnxpb.AttributeProto_STRING.Enum(), S: []byte(v)}
}

func aTensor(name string, t *onnxpb.TensorProto) *onnxpb.AttributeProto {
	return &onnxpb.AttributeProto{Name: proto.String(name), Type: onnxpb.AttributeProto_TENSOR.Enum(), T: t}
}

func floatTensor(name string, dims []int64, vals ...float32) *onnxpb.TensorProto {
	return &onnxpb.TensorProto{Name: proto.String(name), Dims: dims, DataType: proto.Int32(onnxFloat), FloatData: vals}
}

func rawFloatTensor(name string, dims []int64, vals ...float32) *onnxpb.TensorProto {
	raw := make([]byte, 4*len(vals))
	for i, v := range vals {
		binary.LittleEndian.PutUint32(raw[4*i:], math.Float32bits(v))
	}
	return &onnxpb.TensorProto{Name: proto.String(name), Dims: dims, DataType: proto.Int32(onnxFloat), RawData: raw}
}

func int64Tensor(name string, dims []int64, vals ...int64) *onnxpb.TensorProto {
	return &onnxpb.TensorProto{Name: proto.String(name), Dims: dims, DataType: proto.Int32(onnxInt64), Int64Data: vals}
}

// pmodel assembles a model of the given default-domain opset.
func pmodel(opset int64, nodes []*onnxpb.NodeProto, inits []*onnxpb.TensorProto, inputs, outputs []*onnxpb.ValueInfoProto) *onnxpb.ModelProto {
	return &onnxpb.ModelProto{
		IrVersion:    proto.Int64(7),
		ProducerName: proto.String("test"),
		OpsetImport:  []*onnxpb.OperatorSetIdProto{{Domain: proto.String(""), Version: proto.Int64(opset)}},
		Graph: &onnxpb.GraphProto{
			Name: proto.String("g"), Node: nodes, Initializer: inits, Input: inputs, Output: outputs,
		},
	}
}

func marshal(t testing.TB, m *onnxpb.ModelProto) []byte {
	t.Helper()
	b, err := proto.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// mlpModel is a small valid model: Gemm -> Relu -> Gemm -> Softmax.
func mlpModel(opset int64) *onnxpb.ModelProto {
	return pmodel(opset,
		[]*onnxpb.NodeProto{
			pnode("Gemm", "fc1", []string{"x", "w1", "b1"}, []string{"h"}, aInt("transB", 1)),
			pnode("Relu", "", []string{"h"}, []string{"r"}),
			pnode("Gemm", "fc2", []string{"r", "w2", "b2"}, []string{"z"}, aInt("transB", 1), aFloat("alpha", 1)),
			pnode("Softmax", "sm", []string{"z"}, []string{"y"}, aInt("axis", 1)),
		},
		[]*onnxpb.TensorProto{
			rawFloatTensor("w1", []int64{3, 4}, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12),
			floatTensor("b1", []int64{3}, 0.5, -0.5, 0),
			rawFloatTensor("w2", []int64{2, 3}, 1, -1, 0.25, 2, 0, -3),
			floatTensor("b2", []int64{2}, 0.1, 0.2),
		},
		[]*onnxpb.ValueInfoProto{vinfo("x", onnxFloat, -1, 4)},
		[]*onnxpb.ValueInfoProto{vinfo("y", onnxFloat, -1, 2)},
	)
}
