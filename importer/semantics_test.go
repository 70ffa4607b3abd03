package importer

import (
	"context"
	"math"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/compressml/compress/importer/onnxpb"
	"github.com/compressml/compress/runtime"
)

// TestLegacySemantics runs legacy-opset models through the runtime (whose
// kernels implement only the opset-18 forms) and compares with outputs
// computed here from the legacy op definitions. Cases whose ops are not yet
// registered are skipped.
func TestLegacySemantics(t *testing.T) {
	shape := []int{2, 3, 4, 5}
	xv := make([]float32, runtime.NumElements(shape))
	for i := range xv {
		xv[i] = float32(math.Sin(float64(i)*0.7)) * 2
	}
	x := runtime.FromFloat32(xv, shape...)
	at := func(n, c, h, w int) float32 { return xv[((n*3+c)*4+h)*5+w] }

	// softmaxRows applies (log)softmax to rows of length cols.
	softmaxRows := func(cols int, log bool) []float32 {
		out := make([]float32, len(xv))
		for r := 0; r < len(xv)/cols; r++ {
			row := xv[r*cols : (r+1)*cols]
			m := math.Inf(-1)
			for _, v := range row {
				m = math.Max(m, float64(v))
			}
			var s float64
			for _, v := range row {
				s += math.Exp(float64(v) - m)
			}
			for i, v := range row {
				if log {
					out[r*cols+i] = float32(float64(v) - m - math.Log(s))
				} else {
					out[r*cols+i] = float32(math.Exp(float64(v)-m) / s)
				}
			}
		}
		return out
	}
	in := []string{"x"}
	y := []string{"y"}
	type result struct {
		shape []int
		data  []float32
	}
	cases := []struct {
		name  string
		opset int64
		nodes []*onnxpb.NodeProto
		inits []*onnxpb.TensorProto
		want  func() result
	}{
		{"Softmax-11 axis 1 of 4-D", 11, []*onnxpb.NodeProto{pnode("Softmax", "s", in, y, aInt("axis", 1))}, nil,
			func() result { return result{shape, softmaxRows(60, false)} }},
		{"Softmax-9 axis 2 of 4-D", 9, []*onnxpb.NodeProto{pnode("Softmax", "s", in, y, aInt("axis", 2))}, nil,
			func() result { return result{shape, softmaxRows(20, false)} }},
		{"Softmax-11 axis 0 of 4-D", 11, []*onnxpb.NodeProto{pnode("Softmax", "s", in, y, aInt("axis", 0))}, nil,
			func() result { return result{shape, softmaxRows(120, false)} }},
		{"LogSoftmax-11 axis -1", 11, []*onnxpb.NodeProto{pnode("LogSoftmax", "s", in, y, aInt("axis", -1))}, nil,
			func() result { return result{shape, softmaxRows(5, true)} }},
		{"LogSoftmax-11 default axis", 11, []*onnxpb.NodeProto{pnode("LogSoftmax", "s", in, y)}, nil,
			func() result { return result{shape, softmaxRows(60, true)} }},
		{"Clip-7", 7, []*onnxpb.NodeProto{pnode("Clip", "c", in, y, aFloat("min", -0.5), aFloat("max", 0.75))}, nil,
			func() result {
				out := make([]float32, len(xv))
				for i, v := range xv {
					out[i] = min(max(v, -0.5), 0.75)
				}
				return result{shape, out}
			}},
		{"Clip-6 max only", 8, []*onnxpb.NodeProto{pnode("Clip", "c", in, y, aFloat("max", 0.75))}, nil,
			func() result {
				out := make([]float32, len(xv))
				for i, v := range xv {
					out[i] = min(v, 0.75)
				}
				return result{shape, out}
			}},
		{"Pad-7 constant", 7, []*onnxpb.NodeProto{pnode("Pad", "p", in, y, aInts("pads", 0, 0, 1, 0, 0, 0, 0, 2), aFloat("value", 2.5))}, nil,
			func() result {
				var out []float32
				for n := 0; n < 2; n++ {
					for c := 0; c < 3; c++ {
						for h := -1; h < 4; h++ {
							for w := 0; w < 7; w++ {
								if h < 0 || w >= 5 {
									out = append(out, 2.5)
								} else {
									out = append(out, at(n, c, h, w))
								}
							}
						}
					}
				}
				return result{[]int{2, 3, 5, 7}, out}
			}},
		{"Slice-9", 9, []*onnxpb.NodeProto{pnode("Slice", "s", in, y, aInts("starts", 1, -3), aInts("ends", 3, 100), aInts("axes", 2, 3))}, nil,
			func() result {
				var out []float32
				for n := 0; n < 2; n++ {
					for c := 0; c < 3; c++ {
						for h := 1; h < 3; h++ {
							for w := 2; w < 5; w++ {
								out = append(out, at(n, c, h, w))
							}
						}
					}
				}
				return result{[]int{2, 3, 2, 3}, out}
			}},
		{"Unsqueeze-11 and Squeeze-11", 11, []*onnxpb.NodeProto{
			pnode("Unsqueeze", "u", in, []string{"u"}, aInts("axes", 0, 3)),
			pnode("Squeeze", "s", []string{"u"}, y, aInts("axes", 3)),
		}, nil, func() result { return result{[]int{1, 2, 3, 4, 5}, xv} }},
		{"Split-11 sizes", 11, []*onnxpb.NodeProto{
			pnode("Split", "sp", in, []string{"a", "y"}, aInt("axis", 3), aInts("split", 2, 3)),
		}, nil, func() result {
			var out []float32
			for i := 0; i < len(xv); i += 5 {
				out = append(out, xv[i+2:i+5]...)
			}
			return result{[]int{2, 3, 4, 3}, out}
		}},
		{"Split-11 equal", 11, []*onnxpb.NodeProto{
			pnode("Split", "sp", in, []string{"a", "y"}, aInt("axis", 0)),
		}, nil, func() result { return result{[]int{1, 3, 4, 5}, xv[60:]} }},
		{"ReduceSum-11", 11, []*onnxpb.NodeProto{pnode("ReduceSum", "r", in, y, aInts("axes", 1, 3), aInt("keepdims", 0))}, nil,
			func() result {
				out := make([]float32, 8)
				for n := 0; n < 2; n++ {
					for h := 0; h < 4; h++ {
						var s float32
						for c := 0; c < 3; c++ {
							for w := 0; w < 5; w++ {
								s += at(n, c, h, w)
							}
						}
						out[n*4+h] = s
					}
				}
				return result{[]int{2, 4}, out}
			}},
		{"ReduceMean-13 axes attribute", 13, []*onnxpb.NodeProto{pnode("ReduceMean", "r", in, y, aInts("axes", 2, 3))}, nil,
			func() result {
				out := make([]float32, 6)
				for i := range out {
					var s float32
					for _, v := range xv[i*20 : (i+1)*20] {
						s += v
					}
					out[i] = s / 20
				}
				return result{[]int{2, 3, 1, 1}, out}
			}},
		{"Dropout-10", 10, []*onnxpb.NodeProto{pnode("Dropout", "d", in, y, aFloat("ratio", 0.3))}, nil,
			func() result { return result{shape, xv} }},
		{"BatchNormalization-7", 7, []*onnxpb.NodeProto{pnode("BatchNormalization", "bn", []string{"x", "s", "b", "m", "v"},
			y, aInt("spatial", 1), aFloat("epsilon", 1e-3), aInt("is_test", 1))},
			[]*onnxpb.TensorProto{floatTensor("s", []int64{3}, 1, 2, 0.5), floatTensor("b", []int64{3}, 0, 1, -1),
				floatTensor("m", []int64{3}, 0.1, -0.2, 0.3), floatTensor("v", []int64{3}, 1, 4, 0.25)},
			func() result {
				s, b, m, v := []float64{1, 2, 0.5}, []float64{0, 1, -1}, []float64{0.1, -0.2, 0.3}, []float64{1, 4, 0.25}
				out := make([]float32, len(xv))
				for i, xx := range xv {
					c := (i / 20) % 3
					out[i] = float32((float64(xx)-m[c])/math.Sqrt(v[c]+1e-3)*s[c] + b[c])
				}
				return result{shape, out}
			}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			m := pmodel(tc.opset, tc.nodes, tc.inits,
				[]*onnxpb.ValueInfoProto{vinfo("x", onnxFloat, 2, 3, 4, 5)}, []*onnxpb.ValueInfoProto{{Name: proto.String("y")}})
			g, err := LoadBytes(marshal(t, m), "", allow)
			if err != nil {
				t.Fatal(err)
			}
			if bad := runtime.UnsupportedOps(g); len(bad) > 0 {
				t.Skipf("runtime lacks %v", bad[0])
			}
			for _, noOpt := range []bool{true, false} {
				ex, err := runtime.NewExecutor(g, runtime.Options{Threads: 1, NoOptimize: noOpt})
				if err != nil {
					t.Fatal(err)
				}
				outs, err := ex.Run(context.Background(), map[string]*runtime.Tensor{"x": x})
				if err != nil {
					t.Fatal(err)
				}
				got, want := outs["y"], tc.want()
				if got == nil || !runtime.SameShape(got.Shape, want.shape) || len(got.F32) != len(want.data) {
					t.Fatalf("got %+v, want shape %v", got, want.shape)
				}
				for i := range want.data {
					if d := math.Abs(float64(got.F32[i] - want.data[i])); d > 1e-5+1e-5*math.Abs(float64(want.data[i])) {
						t.Fatalf("optimize=%v: element %d: got %g, want %g", !noOpt, i, got.F32[i], want.data[i])
					}
				}
			}
		})
	}
}
