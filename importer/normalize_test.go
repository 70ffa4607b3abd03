package importer

import (
	"reflect"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/compressml/compress/importer/onnxpb"
	"github.com/compressml/compress/runtime"
)

// wantNode is the expected canonical form of one node.
type wantNode struct {
	name, op string
	in, out  []string // out nil: not checked
	attrs    map[string]runtime.Attr
}

type normalizeCase struct {
	name    string
	opset   int64
	nodes   []*onnxpb.NodeProto
	inits   []*onnxpb.TensorProto
	inputs  []*onnxpb.ValueInfoProto // default: x, float [2 3 4 5]
	outputs []string                 // default: y
	want    []wantNode
	params  map[string]*runtime.Tensor // parameters created by normalisation
	wantErr string
}

func (c normalizeCase) model() *onnxpb.ModelProto {
	inputs := c.inputs
	if inputs == nil {
		inputs = []*onnxpb.ValueInfoProto{vinfo("x", onnxFloat, 2, 3, 4, 5)}
	}
	outs := c.outputs
	if outs == nil {
		outs = []string{"y"}
	}
	var outputs []*onnxpb.ValueInfoProto
	for _, o := range outs {
		outputs = append(outputs, &onnxpb.ValueInfoProto{Name: proto.String(o)})
	}
	return pmodel(c.opset, c.nodes, c.inits, inputs, outputs)
}

func ai(v int64) runtime.Attr     { return runtime.Attr{Kind: runtime.AttrInt, I: v} }
func as(v string) runtime.Attr    { return runtime.Attr{Kind: runtime.AttrString, S: v} }
func af(v float32) runtime.Attr   { return runtime.Attr{Kind: runtime.AttrFloat, F: v} }
func ais(v ...int64) runtime.Attr { return runtime.Attr{Kind: runtime.AttrInts, Ints: v} }
func ti64(v ...int64) *runtime.Tensor {
	return runtime.FromInt64(v, len(v))
}
func tf32(v float32) *runtime.Tensor { return runtime.FromFloat32([]float32{v}) }

func normalizeCases() []normalizeCase {
	x, y := []string{"x"}, []string{"y"}
	return []normalizeCase{
		{
			name: "Unsqueeze-11 axes attribute", opset: 11,
			nodes:  []*onnxpb.NodeProto{pnode("Unsqueeze", "u", x, y, aInts("axes", 0, -1))},
			want:   []wantNode{{name: "u", op: "Unsqueeze", in: []string{"x", "u_axes"}}},
			params: map[string]*runtime.Tensor{"u_axes": ti64(0, -1)},
		},
		{
			name: "Unsqueeze-13 axes input unchanged", opset: 13,
			nodes: []*onnxpb.NodeProto{pnode("Unsqueeze", "u", []string{"x", "ax"}, y)},
			inits: []*onnxpb.TensorProto{int64Tensor("ax", []int64{1}, 0)},
			want:  []wantNode{{name: "u", op: "Unsqueeze", in: []string{"x", "ax"}}},
		},
		{
			name: "Squeeze-7 without axes", opset: 7,
			nodes: []*onnxpb.NodeProto{pnode("Squeeze", "s", x, y)},
			want:  []wantNode{{name: "s", op: "Squeeze", in: x}},
		},
		{
			name: "Squeeze-11 axes both attribute and input", opset: 11,
			nodes:   []*onnxpb.NodeProto{pnode("Squeeze", "s", []string{"x", "x"}, y, aInts("axes", 0))},
			wantErr: `Squeeze node "s" (opset 11): has "axes" both as attribute and as input 1`,
		},
		{
			name: "name collision of a created parameter", opset: 11,
			nodes: []*onnxpb.NodeProto{
				pnode("Unsqueeze", "u", x, []string{"u_axes"}, aInts("axes", 0)),
				pnode("Identity", "id", []string{"u_axes"}, y),
			},
			want: []wantNode{
				{name: "u", op: "Unsqueeze", in: []string{"x", "u_axes_1"}, out: []string{"u_axes"}},
				{name: "id", op: "Identity", in: []string{"u_axes"}},
			},
			params: map[string]*runtime.Tensor{"u_axes_1": ti64(0)},
		},
		{
			name: "ReduceSum-11 axes attribute", opset: 11,
			nodes:  []*onnxpb.NodeProto{pnode("ReduceSum", "r", x, y, aInts("axes", 1), aInt("keepdims", 0))},
			want:   []wantNode{{name: "r", op: "ReduceSum", in: []string{"x", "r_axes"}, attrs: map[string]runtime.Attr{"keepdims": ai(0)}}},
			params: map[string]*runtime.Tensor{"r_axes": ti64(1)},
		},
		{
			name: "ReduceSum-13 keeps input form", opset: 13,
			nodes: []*onnxpb.NodeProto{pnode("ReduceSum", "r", []string{"x", "ax"}, y)},
			inits: []*onnxpb.TensorProto{int64Tensor("ax", []int64{2}, 2, 3)},
			want:  []wantNode{{name: "r", op: "ReduceSum", in: []string{"x", "ax"}}},
		},
		{
			name: "ReduceMean-13 axes attribute", opset: 13,
			nodes:  []*onnxpb.NodeProto{pnode("ReduceMean", "m", x, y, aInts("axes", 2, 3))},
			want:   []wantNode{{name: "m", op: "ReduceMean", in: []string{"x", "m_axes"}}},
			params: map[string]*runtime.Tensor{"m_axes": ti64(2, 3)},
		},
		{
			name: "ReduceMax-17 without axes reduces all", opset: 17,
			nodes: []*onnxpb.NodeProto{pnode("ReduceMax", "m", x, y, aInt("keepdims", 1))},
			want:  []wantNode{{name: "m", op: "ReduceMax", in: x, attrs: map[string]runtime.Attr{"keepdims": ai(1)}}},
		},
		{
			name: "ReduceL2-9 empty axes list", opset: 9,
			nodes: []*onnxpb.NodeProto{pnode("ReduceL2", "m", x, y, aInts("axes"))},
			want:  []wantNode{{name: "m", op: "ReduceL2", in: x}},
		},
		{
			name: "ReduceProd-18 unchanged", opset: 18,
			nodes: []*onnxpb.NodeProto{pnode("ReduceProd", "m", []string{"x", "ax"}, y, aInt("noop_with_empty_axes", 1))},
			inits: []*onnxpb.TensorProto{int64Tensor("ax", []int64{1}, 0)},
			want:  []wantNode{{name: "m", op: "ReduceProd", in: []string{"x", "ax"}, attrs: map[string]runtime.Attr{"noop_with_empty_axes": ai(1)}}},
		},
		{
			name: "ReduceMean-11 axes of the wrong kind", opset: 11,
			nodes:   []*onnxpb.NodeProto{pnode("ReduceMean", "m", x, y, aInt("axes", 1))},
			wantErr: `attribute "axes" should be a list of ints`,
		},
		{
			name: "Split-11 split attribute", opset: 11,
			nodes:   []*onnxpb.NodeProto{pnode("Split", "s", x, []string{"y", "z"}, aInt("axis", 3), aInts("split", 2, 3))},
			outputs: []string{"y", "z"},
			want:    []wantNode{{name: "s", op: "Split", in: []string{"x", "s_split"}, out: []string{"y", "z"}, attrs: map[string]runtime.Attr{"axis": ai(3)}}},
			params:  map[string]*runtime.Tensor{"s_split": ti64(2, 3)},
		},
		{
			name: "Split-13 equal parts get num_outputs", opset: 13,
			nodes:   []*onnxpb.NodeProto{pnode("Split", "s", x, []string{"y", "z"}, aInt("axis", 0))},
			outputs: []string{"y", "z"},
			want:    []wantNode{{name: "s", op: "Split", in: x, attrs: map[string]runtime.Attr{"axis": ai(0), "num_outputs": ai(2)}}},
		},
		{
			name: "Split-18 unchanged", opset: 18,
			nodes:   []*onnxpb.NodeProto{pnode("Split", "s", x, []string{"y", "z"}, aInt("num_outputs", 2))},
			outputs: []string{"y", "z"},
			want:    []wantNode{{name: "s", op: "Split", in: x, attrs: map[string]runtime.Attr{"num_outputs": ai(2)}}},
		},
		{
			name: "Pad-7 pads and value", opset: 7,
			nodes:  []*onnxpb.NodeProto{pnode("Pad", "p", x, y, aInts("pads", 0, 0, 1, 1, 0, 0, 1, 1), aFloat("value", 2.5), aString("mode", "constant"))},
			want:   []wantNode{{name: "p", op: "Pad", in: []string{"x", "p_pads", "p_value"}, attrs: map[string]runtime.Attr{"mode": as("constant")}}},
			params: map[string]*runtime.Tensor{"p_pads": ti64(0, 0, 1, 1, 0, 0, 1, 1), "p_value": tf32(2.5)},
		},
		{
			name: "Pad-2 reflect without value", opset: 10,
			nodes:  []*onnxpb.NodeProto{pnode("Pad", "p", x, y, aInts("pads", 0, 0, 1, 1, 0, 0, 1, 1), aString("mode", "reflect"))},
			want:   []wantNode{{name: "p", op: "Pad", in: []string{"x", "p_pads"}, attrs: map[string]runtime.Attr{"mode": as("reflect")}}},
			params: map[string]*runtime.Tensor{"p_pads": ti64(0, 0, 1, 1, 0, 0, 1, 1)},
		},
		{
			name: "Pad-7 without pads", opset: 7,
			nodes:   []*onnxpb.NodeProto{pnode("Pad", "p", x, y)},
			wantErr: `attribute "pads" is missing`,
		},
		{
			name: "Clip-7 min and max", opset: 7,
			nodes:  []*onnxpb.NodeProto{pnode("Clip", "c", x, y, aFloat("min", 0), aFloat("max", 6))},
			want:   []wantNode{{name: "c", op: "Clip", in: []string{"x", "c_min", "c_max"}}},
			params: map[string]*runtime.Tensor{"c_min": tf32(0), "c_max": tf32(6)},
		},
		{
			name: "Clip-6 max only", opset: 8,
			nodes:  []*onnxpb.NodeProto{pnode("Clip", "c", x, y, aFloat("max", 6))},
			want:   []wantNode{{name: "c", op: "Clip", in: []string{"x", "", "c_max"}}},
			params: map[string]*runtime.Tensor{"c_max": tf32(6)},
		},
		{
			name: "Clip-11 unchanged", opset: 11,
			nodes: []*onnxpb.NodeProto{pnode("Clip", "c", []string{"x", "lo"}, y)},
			inits: []*onnxpb.TensorProto{floatTensor("lo", nil, 0)},
			want:  []wantNode{{name: "c", op: "Clip", in: []string{"x", "lo"}}},
		},
		{
			name: "Slice-9 attributes", opset: 9,
			nodes:  []*onnxpb.NodeProto{pnode("Slice", "s", x, y, aInts("starts", 1), aInts("ends", 3), aInts("axes", 2))},
			want:   []wantNode{{name: "s", op: "Slice", in: []string{"x", "s_starts", "s_ends", "s_axes"}}},
			params: map[string]*runtime.Tensor{"s_starts": ti64(1), "s_ends": ti64(3), "s_axes": ti64(2)},
		},
		{
			name: "Slice-9 without axes", opset: 9,
			nodes:  []*onnxpb.NodeProto{pnode("Slice", "s", x, y, aInts("starts", 0, 1), aInts("ends", 1, 2))},
			want:   []wantNode{{name: "s", op: "Slice", in: []string{"x", "s_starts", "s_ends"}}},
			params: map[string]*runtime.Tensor{"s_starts": ti64(0, 1), "s_ends": ti64(1, 2)},
		},
		{
			name: "Slice-9 without starts", opset: 9,
			nodes:   []*onnxpb.NodeProto{pnode("Slice", "s", x, y, aInts("ends", 3))},
			wantErr: `Slice node "s" (opset 9): attribute "starts" is missing`,
		},
		{
			name: "TopK-9 k attribute", opset: 9,
			nodes:   []*onnxpb.NodeProto{pnode("TopK", "k", x, []string{"y", "i"}, aInt("k", 3))},
			outputs: []string{"y", "i"},
			want:    []wantNode{{name: "k", op: "TopK", in: []string{"x", "k_k"}}},
			params:  map[string]*runtime.Tensor{"k_k": ti64(3)},
		},
		{
			name: "Dropout-10 ratio attribute", opset: 10,
			nodes:  []*onnxpb.NodeProto{pnode("Dropout", "d", x, y, aFloat("ratio", 0.25), aInt("is_test", 1))},
			want:   []wantNode{{name: "d", op: "Dropout", in: []string{"x", "d_ratio"}}},
			params: map[string]*runtime.Tensor{"d_ratio": tf32(0.25)},
		},
		{
			name: "Dropout-7 default ratio", opset: 7,
			nodes: []*onnxpb.NodeProto{pnode("Dropout", "d", x, y)},
			want:  []wantNode{{name: "d", op: "Dropout", in: x}},
		},
		{
			name: "BatchNormalization-7 legacy attributes and outputs", opset: 7,
			nodes: []*onnxpb.NodeProto{pnode("BatchNormalization", "bn", []string{"x", "s", "b", "m", "v"},
				[]string{"y", "rm", "rv", "sm", "sv"}, aInt("spatial", 1), aInt("is_test", 1), aFloat("epsilon", 1e-3),
				aFloat("momentum", 0.9), aInts("consumed_inputs", 0, 0, 0, 1, 1))},
			inits: []*onnxpb.TensorProto{floatTensor("s", []int64{3}, 1, 1, 1), floatTensor("b", []int64{3}, 0, 0, 0),
				floatTensor("m", []int64{3}, 0, 0, 0), floatTensor("v", []int64{3}, 1, 1, 1)},
			want: []wantNode{{name: "bn", op: "BatchNormalization", in: []string{"x", "s", "b", "m", "v"}, out: []string{"y"},
				attrs: map[string]runtime.Attr{"epsilon": af(1e-3), "momentum": af(0.9)}}},
		},
		{
			name: "BatchNormalization-7 spatial=0", opset: 7,
			nodes: []*onnxpb.NodeProto{pnode("BatchNormalization", "bn", []string{"x", "s", "b", "m", "v"}, y, aInt("spatial", 0))},
			inits: []*onnxpb.TensorProto{floatTensor("s", []int64{3}, 1, 1, 1), floatTensor("b", []int64{3}, 0, 0, 0),
				floatTensor("m", []int64{3}, 0, 0, 0), floatTensor("v", []int64{3}, 1, 1, 1)},
			wantErr: `BatchNormalization node "bn" has spatial=0`,
		},
		{
			name: "Softmax-11 on a 2-D Gemm output", opset: 11,
			nodes: []*onnxpb.NodeProto{
				pnode("Gemm", "fc", []string{"x", "w"}, []string{"h"}),
				pnode("Softmax", "sm", []string{"h"}, y, aInt("axis", 1)),
			},
			inits:  []*onnxpb.TensorProto{floatTensor("w", []int64{3, 2}, 1, 2, 3, 4, 5, 6)},
			inputs: []*onnxpb.ValueInfoProto{vinfo("x", onnxFloat, -1, 3)},
			want: []wantNode{
				{name: "fc", op: "Gemm", in: []string{"x", "w"}},
				{name: "sm", op: "Softmax", in: []string{"h"}, attrs: map[string]runtime.Attr{"axis": ai(-1)}},
			},
		},
		{
			name: "LogSoftmax-9 default axis on a 2-D input", opset: 9,
			nodes:  []*onnxpb.NodeProto{pnode("LogSoftmax", "", x, y)},
			inputs: []*onnxpb.ValueInfoProto{vinfo("x", onnxFloat, 4, 10)},
			want:   []wantNode{{name: "LogSoftmax_0", op: "LogSoftmax", in: x, attrs: map[string]runtime.Attr{"axis": ai(-1)}}},
		},
		{
			name: "Softmax-11 axis 1 on a 4-D input", opset: 11,
			nodes: []*onnxpb.NodeProto{pnode("Softmax", "sm", x, y, aInt("axis", 1))},
			want: []wantNode{
				{name: "sm_shape", op: "Shape", in: x, out: []string{"sm_shape"}},
				{name: "sm_flatten", op: "Flatten", in: x, out: []string{"sm_flat"}, attrs: map[string]runtime.Attr{"axis": ai(1)}},
				{name: "sm", op: "Softmax", in: []string{"sm_flat"}, out: []string{"sm_rows"}, attrs: map[string]runtime.Attr{"axis": ai(-1)}},
				{name: "sm_reshape", op: "Reshape", in: []string{"sm_rows", "sm_shape"}, out: y},
			},
		},
		{
			name: "Softmax-12 last axis of a 4-D input", opset: 12,
			nodes: []*onnxpb.NodeProto{pnode("Softmax", "sm", x, y, aInt("axis", 3))},
			want:  []wantNode{{name: "sm", op: "Softmax", in: x, attrs: map[string]runtime.Attr{"axis": ai(-1)}}},
		},
		{
			name: "Hardmax-11 on an input of unknown rank", opset: 11,
			nodes:  []*onnxpb.NodeProto{pnode("Hardmax", "hm", x, y, aInt("axis", -1))},
			inputs: []*onnxpb.ValueInfoProto{{Name: proto.String("x"), Type: &onnxpb.TypeProto{Value: &onnxpb.TypeProto_TensorType{TensorType: &onnxpb.TypeProto_Tensor{ElemType: proto.Int32(onnxFloat)}}}}},
			want:   []wantNode{{name: "hm", op: "Hardmax", in: x, attrs: map[string]runtime.Attr{"axis": ai(-1)}}},
		},
		{
			name: "Softmax-13 unchanged", opset: 13,
			nodes: []*onnxpb.NodeProto{pnode("Softmax", "sm", x, y, aInt("axis", 1))},
			want:  []wantNode{{name: "sm", op: "Softmax", in: x, attrs: map[string]runtime.Attr{"axis": ai(1)}}},
		},
		{
			name: "Resize-10 nearest", opset: 10,
			nodes: []*onnxpb.NodeProto{pnode("Resize", "rs", []string{"x", "sc"}, y, aString("mode", "nearest"))},
			inits: []*onnxpb.TensorProto{floatTensor("sc", []int64{4}, 1, 1, 2, 2)},
			want: []wantNode{{name: "rs", op: "Resize", in: []string{"x", "", "sc"}, attrs: map[string]runtime.Attr{
				"mode": as("nearest"), "coordinate_transformation_mode": as("asymmetric"), "nearest_mode": as("floor")}}},
		},
		{
			name: "Conv keeps auto_pad", opset: 8,
			nodes: []*onnxpb.NodeProto{pnode("Conv", "c", []string{"x", "w"}, y, aString("auto_pad", "SAME_UPPER"), aInts("kernel_shape", 1, 1))},
			inits: []*onnxpb.TensorProto{floatTensor("w", []int64{1, 3, 1, 1}, 1, 1, 1)},
			want: []wantNode{{name: "c", op: "Conv", in: []string{"x", "w"}, attrs: map[string]runtime.Attr{
				"auto_pad": as("SAME_UPPER"), "kernel_shape": ais(1, 1)}}},
		},
		{
			name: "Constant nodes become parameters", opset: 13,
			nodes: []*onnxpb.NodeProto{
				pnode("Constant", "c1", nil, []string{"k1"}, aTensor("value", floatTensor("", []int64{2}, 1, 2))),
				pnode("Constant", "c2", nil, []string{"k2"}, aFloat("value_float", 3)),
				pnode("Constant", "c3", nil, []string{"k3"}, aFloats("value_floats", 4, 5)),
				pnode("Constant", "c4", nil, []string{"k4"}, aInt("value_int", 6)),
				pnode("Constant", "c5", nil, []string{"k5"}, aInts("value_ints", 7, 8)),
				pnode("Sum", "sum", []string{"x", "k1", "k2", "k3"}, []string{"s"}),
				pnode("Reshape", "rs", []string{"s", "k5"}, []string{"r"}),
				pnode("Unsqueeze", "u", []string{"r", "k4"}, y),
			},
			inputs: []*onnxpb.ValueInfoProto{vinfo("x", onnxFloat, 2)},
			want: []wantNode{
				{name: "sum", op: "Sum", in: []string{"x", "k1", "k2", "k3"}},
				{name: "rs", op: "Reshape", in: []string{"s", "k5"}},
				{name: "u", op: "Unsqueeze", in: []string{"r", "k4"}},
			},
			params: map[string]*runtime.Tensor{
				"k1": runtime.FromFloat32([]float32{1, 2}, 2), "k2": tf32(3), "k3": runtime.FromFloat32([]float32{4, 5}, 2),
				"k4": runtime.FromInt64([]int64{6}), "k5": ti64(7, 8),
			},
		},
		{
			name: "Constant that is a graph output stays a node", opset: 13,
			nodes:   []*onnxpb.NodeProto{pnode("Constant", "c", nil, y, aFloat("value_float", 1))},
			inputs:  []*onnxpb.ValueInfoProto{},
			outputs: []string{"y"},
			want:    []wantNode{{name: "c", op: "Constant", in: []string{}, attrs: map[string]runtime.Attr{"value_float": af(1)}}},
		},
		{
			name: "Constant writing an initializer", opset: 13,
			nodes:   []*onnxpb.NodeProto{pnode("Constant", "c", nil, []string{"w"}, aFloat("value_float", 1)), pnode("Add", "a", []string{"x", "w"}, y)},
			inits:   []*onnxpb.TensorProto{floatTensor("w", nil, 2)},
			wantErr: `Constant node "c" writes "w", which is also an initializer`,
		},
		{
			name: "unnamed and duplicate node names", opset: 13,
			nodes: []*onnxpb.NodeProto{
				pnode("Relu", "", x, []string{"a"}),
				pnode("Relu", "Relu_0", []string{"a"}, []string{"b"}),
				pnode("Neg", "n", []string{"b"}, []string{"c"}),
				pnode("Neg", "n", []string{"c"}, y),
			},
			want: []wantNode{
				{name: "Relu_0_1", op: "Relu", in: x},
				{name: "Relu_0", op: "Relu", in: []string{"a"}},
				{name: "n", op: "Neg", in: []string{"b"}},
				{name: "n_1", op: "Neg", in: []string{"c"}},
			},
		},
		{
			name: "nodes out of order are sorted", opset: 13,
			nodes: []*onnxpb.NodeProto{
				pnode("Neg", "second", []string{"a"}, y),
				pnode("Relu", "first", x, []string{"a"}),
			},
			want: []wantNode{{name: "first", op: "Relu", in: x}, {name: "second", op: "Neg", in: []string{"a"}}},
		},
	}
}

func TestNormalize(t *testing.T) {
	for _, tc := range normalizeCases() {
		t.Run(tc.name, func(t *testing.T) {
			g, err := LoadBytes(marshal(t, tc.model()), "", allow)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("got error %v, want one containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(g.Nodes) != len(tc.want) {
				for _, n := range g.Nodes {
					t.Logf("  %s %s %v -> %v %v", n.Name, n.OpType, n.Inputs, n.Outputs, n.Attrs)
				}
				t.Fatalf("got %d nodes, want %d", len(g.Nodes), len(tc.want))
			}
			for i, w := range tc.want {
				n := g.Nodes[i]
				in := n.Inputs
				if in == nil {
					in = []string{}
				}
				wantIn := w.in
				if wantIn == nil {
					wantIn = []string{}
				}
				if n.Name != w.name || n.OpType != w.op || !reflect.DeepEqual(in, wantIn) ||
					(w.out != nil && !reflect.DeepEqual(n.Outputs, w.out)) || !attrsEqual(n.Attrs, w.attrs) {
					t.Errorf("node %d:\n got  %s %s %v -> %v %v\n want %s %s %v -> %v %v", i,
						n.Name, n.OpType, n.Inputs, n.Outputs, n.Attrs, w.name, w.op, w.in, w.out, w.attrs)
				}
			}
			for name, want := range tc.params {
				p := g.Params[name]
				if p == nil {
					t.Errorf("parameter %q missing; have %v", name, g.ParamNames())
					continue
				}
				if !reflect.DeepEqual(p.T, want) || p.Trainable {
					t.Errorf("parameter %q: got %+v (trainable %v), want %+v frozen", name, p.T, p.Trainable, want)
				}
			}
		})
	}
}
