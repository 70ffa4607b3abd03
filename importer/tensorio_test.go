package importer

import (
	"bytes"
	"encoding/binary"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/compressml/compress/importer/onnxpb"
	"github.com/compressml/compress/runtime"
	"google.golang.org/protobuf/proto"
)

// numpyF4 is np.save of np.arange(6, dtype='<f4').reshape(2, 3), byte for byte.
const numpyF4 = "\x93NUMPY\x01\x00v\x00{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }" +
	"                                                          \n" +
	"\x00\x00\x00\x00\x00\x00\x80?\x00\x00\x00@\x00\x00@@\x00\x00\x80@\x00\x00\xa0@"

// npyFile builds a .npy file of the given version around a header dict,
// padded as numpy pads it.
func npyFile(major byte, dict string, payload []byte) []byte {
	pre := 10
	if major > 1 {
		pre = 12
	}
	total := (pre + len(dict) + 1 + 63) / 64 * 64
	hdr := dict + strings.Repeat(" ", total-pre-len(dict)-1) + "\n"
	var b bytes.Buffer
	b.WriteString(npyMagic)
	b.Write([]byte{major, 0})
	if major == 1 {
		binary.Write(&b, binary.LittleEndian, uint16(len(hdr)))
	} else {
		binary.Write(&b, binary.LittleEndian, uint32(len(hdr)))
	}
	b.WriteString(hdr)
	b.Write(payload)
	return b.Bytes()
}

func tioF64LE(vs ...float64) []byte {
	var b bytes.Buffer
	binary.Write(&b, binary.LittleEndian, vs)
	return b.Bytes()
}

func TestDecodeNPY(t *testing.T) {
	for i, tc := range []struct {
		name string
		in   []byte
		want *runtime.Tensor
	}{
		{"numpy f4", []byte(numpyF4), runtime.FromFloat32([]float32{0, 1, 2, 3, 4, 5}, 2, 3)},
		{"fortran f8", npyFile(1, "{'descr': '<f8', 'fortran_order': True, 'shape': (2, 3), }", tioF64LE(0, 3, 1, 4, 2, 5)),
			runtime.FromFloat32([]float32{0, 1, 2, 3, 4, 5}, 2, 3)},
		{"big-endian i2", npyFile(1, "{'descr': '>i2', 'fortran_order': False, 'shape': (2,), }", []byte{0xff, 0xfe, 0x01, 0x2c}),
			&runtime.Tensor{DType: runtime.Int32, Shape: []int{2}, I32: []int32{-2, 300}}},
		{"bool", npyFile(1, "{'descr': '|b1', 'fortran_order': False, 'shape': (3,), }", []byte{1, 0, 1}),
			&runtime.Tensor{DType: runtime.Bool, Shape: []int{3}, B: []bool{true, false, true}}},
		{"u1 scalar", npyFile(1, "{'descr': '|u1', 'fortran_order': False, 'shape': (), }", []byte{7}),
			&runtime.Tensor{DType: runtime.Uint8, Shape: []int{}, U8: []uint8{7}}},
		{"f2", npyFile(1, "{'descr': '<f2', 'fortran_order': False, 'shape': (2,), }", []byte{0x00, 0x3e, 0x00, 0xb4}),
			runtime.FromFloat32([]float32{1.5, -0.25}, 2)},
		{"v2 i8", npyFile(2, "{'descr': '<i8', 'fortran_order': False, 'shape': (2,), }", []byte{1, 0, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0}),
			runtime.FromInt64([]int64{1, 2}, 2)},
		{"key order, double quotes", npyFile(3, `{"shape": (1, 1), "fortran_order": False, "descr": "|i1"}`, []byte{0xfe}),
			&runtime.Tensor{DType: runtime.Int8, Shape: []int{1, 1}, I8: []int8{-2}}},
		{"empty", npyFile(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (0, 3), }", nil),
			runtime.FromFloat32([]float32{}, 0, 3)},
	} {
		got, err := DecodeNPY(tc.in)
		if err != nil {
			t.Errorf("%d (%s): %v", i, tc.name, err)
			continue
		}
		if !tioSameTensor(got, tc.want) {
			t.Errorf("%d (%s): got %+v, want %+v", i, tc.name, got, tc.want)
		}
	}
}

// tioSameTensor compares dtype, shape and values (nil and empty slices alike).
func tioSameTensor(a, b *runtime.Tensor) bool {
	if a.DType != b.DType || !runtime.SameShape(a.Shape, b.Shape) || a.Len() != b.Len() {
		return false
	}
	for i := range a.Len() {
		if a.Float64At(i) != b.Float64At(i) {
			return false
		}
	}
	return true
}

func TestDecodeNPYErrors(t *testing.T) {
	ok := "{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }"
	for i, tc := range []struct {
		name string
		in   []byte
		want string
	}{
		{"empty", nil, "not a NumPy .npy file"},
		{"pb", []byte("\x08\x01\x10\x01random bytes"), "not a NumPy .npy file"},
		{"version", append([]byte(npyMagic+"\x04\x00"), 0, 0), "format version 4.0"},
		{"header truncated", []byte(npyMagic + "\x01\x00\xff\x00{'descr'"), "npy header: truncated"},
		{"absurd v2 header", []byte(npyMagic + "\x02\x00\xff\xff\xff\xff"), "absurd"},
		{"not a dict", npyFile(1, "[1, 2]", nil), "expected a dict"},
		{"unknown key", npyFile(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (2,), 'x': 1}", nil), `unknown key "x"`},
		{"missing shape", npyFile(1, "{'descr': '<f4', 'fortran_order': False}", nil), `key "shape" is missing`},
		{"bad shape", npyFile(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (2, -1), }", nil), "'shape' must be a tuple"},
		{"absurd shape", npyFile(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (99999999999, 9999999), }", nil), "'shape' must be a tuple"},
		{"too many elements", npyFile(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (4000000000, 4000000000), }", nil), "more than"},
		{"object dtype", npyFile(1, "{'descr': '|O', 'fortran_order': False, 'shape': (2,), }", nil), `element type "|O" is not supported`},
		{"complex dtype", npyFile(1, "{'descr': '<c8', 'fortran_order': False, 'shape': (2,), }", nil), `element type "<c8" is not supported`},
		{"structured", npyFile(1, "{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (2,), }", nil), "structured dtypes"},
		{"fortran", npyFile(1, "{'descr': '<f4', 'fortran_order': maybe, 'shape': (2,), }", nil), "True or False"},
		{"truncated data", npyFile(1, ok, make([]byte, 7)), "file is truncated: shape [2] of <f4 needs 8 bytes, 7 follow"},
		{"trailing data", npyFile(1, ok, make([]byte, 9)), "longer than its shape says"},
		{"uint64 overflow", npyFile(1, "{'descr': '<u8', 'fortran_order': False, 'shape': (1,), }", bytes.Repeat([]byte{0xff}, 8)), "does not fit in int64"},
	} {
		_, err := DecodeNPY(tc.in)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%d (%s): error %v, want one containing %q", i, tc.name, err, tc.want)
		}
	}
}

func TestEncodeNPYMatchesNumPy(t *testing.T) {
	got, err := EncodeNPY(runtime.FromFloat32([]float32{0, 1, 2, 3, 4, 5}, 2, 3))
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != numpyF4 {
		t.Errorf("EncodeNPY differs from numpy's np.save:\n got %q\nwant %q", got, numpyF4)
	}
}

func TestTensorFileRoundTrip(t *testing.T) {
	dir := t.TempDir()
	tensors := []*runtime.Tensor{
		runtime.FromFloat32([]float32{1.5, -2, 3.25, 0}, 1, 2, 2),
		{DType: runtime.Int8, Shape: []int{3}, I8: []int8{-128, 0, 127}},
		{DType: runtime.Uint8, Shape: []int{2, 1}, U8: []uint8{0, 255}},
		{DType: runtime.Int32, Shape: []int{2}, I32: []int32{-1 << 31, 1<<31 - 1}},
		runtime.FromInt64([]int64{-1 << 63, 1<<63 - 1}, 2),
		{DType: runtime.Bool, Shape: []int{}, B: []bool{true}},
		runtime.FromFloat32([]float32{}, 0, 5),
	}
	for i, want := range tensors {
		for _, ext := range []string{".pb", ".NPY"} {
			path := filepath.Join(dir, "t"+ext)
			if err := SaveTensor(path, "x", want); err != nil {
				t.Fatalf("%d%s: %v", i, ext, err)
			}
			name, got, err := LoadTensor(path)
			if err != nil {
				t.Fatalf("%d%s: %v", i, ext, err)
			}
			if !tioSameTensor(got, want) {
				t.Errorf("%d%s: got %+v, want %+v", i, ext, got, want)
			}
			if wantName := map[string]string{".pb": "x", ".NPY": ""}[ext]; name != wantName {
				t.Errorf("%d%s: name %q, want %q", i, ext, name, wantName)
			}
		}
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 2 {
		t.Errorf("temporary files left behind: %v", entries)
	}
}

func TestTensorFileErrors(t *testing.T) {
	dir := t.TempDir()
	x := runtime.FromFloat32([]float32{1}, 1)
	subdir := filepath.Join(dir, "d.npy")
	if err := os.Mkdir(subdir, 0o755); err != nil {
		t.Fatal(err)
	}
	garbage := filepath.Join(dir, "garbage.npy")
	if err := os.WriteFile(garbage, []byte("hello"), 0o644); err != nil {
		t.Fatal(err)
	}
	for i, tc := range []struct {
		err  error
		want string
	}{
		{tioErr(LoadTensor(filepath.Join(dir, "missing.npy"))), "missing.npy does not exist"},
		{tioErr(LoadTensor(filepath.Join(dir, "missing.pb"))), "missing.pb does not exist"},
		{tioErr(LoadTensor(filepath.Join(dir, "x.txt"))), `unknown tensor file extension ".txt"`},
		{tioErr(LoadTensor(garbage)), "garbage.npy: not a NumPy .npy file"},
		{tioErr(LoadTensor(subdir)), "d.npy is a directory"},
		{SaveTensor(filepath.Join(dir, "x.csv"), "", x), `unknown tensor file extension ".csv"`},
		{SaveTensor(filepath.Join(dir, "nodir", "x.npy"), "", x), "nodir"},
		{SaveTensor(filepath.Join(dir, "bad.npy"), "", &runtime.Tensor{DType: runtime.Float32, Shape: []int{3}, F32: []float32{1}}), "holds 1 values"},
	} {
		if tc.err == nil || !strings.Contains(tc.err.Error(), tc.want) {
			t.Errorf("%d: error %v, want one containing %q", i, tc.err, tc.want)
		}
	}
}

func tioErr(_ string, _ *runtime.Tensor, err error) error { return err }

func TestReadInputs(t *testing.T) {
	dir := t.TempDir()
	g := runtime.NewGraph("g")
	g.Inputs = []runtime.ValueInfo{{Name: "a", DType: runtime.Float32, Shape: []int{-1}, DimNames: []string{"N"}}, {Name: "w"},
		{Name: "b", DType: runtime.Float32, Shape: []int{1}}}
	g.AddParam("w", runtime.FromFloat32([]float32{1}, 1), false)
	write := func(file, name string, v float32) string {
		p := filepath.Join(dir, file)
		if err := SaveTensor(p, name, runtime.FromFloat32([]float32{v}, 1)); err != nil {
			t.Fatal(err)
		}
		return p
	}
	pa := write("a.npy", "", 1)
	pb := write("b.pb", "b", 2)
	pOther := write("other.pb", "zzz", 3)
	eqDir := filepath.Join(dir, "k=v")
	os.Mkdir(eqDir, 0o755)
	pEq := filepath.Join(eqDir, "x.npy")
	SaveTensor(pEq, "", runtime.FromFloat32([]float32{4}, 1))
	pWide := filepath.Join(dir, "wide.npy")
	SaveTensor(pWide, "", runtime.FromFloat32([]float32{1, 2}, 2))
	pInt := filepath.Join(dir, "int.npy")
	SaveTensor(pInt, "", runtime.FromInt64([]int64{1}, 1))
	for i, tc := range []struct {
		specs []string
		want  map[string]float32
		err   string
	}{
		{[]string{"a=" + pWide, "b=" + pb}, map[string]float32{"a": 1, "b": 2}, ""}, // dynamic dimension
		{[]string{"a=" + pa, "b=" + pWide}, nil, `wide.npy: model input "b" takes float32 [1], the file holds float32 [2]`},
		{[]string{"a=" + pInt, "b=" + pb}, nil, `int.npy: model input "a" takes float32 [N], the file holds int64 [1]`},
		{[]string{"a=" + pa, "b=" + pb}, map[string]float32{"a": 1, "b": 2}, ""},
		{[]string{pb, pa}, map[string]float32{"a": 1, "b": 2}, ""},     // b by stored name, a by order
		{[]string{pa, pOther}, map[string]float32{"a": 1, "b": 3}, ""}, // by order
		{[]string{"b=" + pa, pOther}, map[string]float32{"a": 3, "b": 1}, ""},
		{[]string{pEq, pb}, map[string]float32{"a": 4, "b": 2}, ""}, // '=' in a path
		{[]string{pa}, nil, "no tensor file given for model input(s) b"},
		{[]string{pa, pb, pOther}, nil, "more tensor files than the model has inputs (a, b)"},
		{[]string{"c=" + pa, pb}, nil, `the model has no input "c" (its inputs: a, b)`},
		{[]string{"a=" + pa, "a=" + pa}, nil, `input "a" is given twice`},
		{[]string{"a=" + pa, "b=" + filepath.Join(dir, "none.pb")}, nil, "none.pb"},
	} {
		got, err := ReadInputs(g, tc.specs)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%d: error %v, want one containing %q", i, err, tc.err)
			}
			continue
		}
		if err != nil {
			t.Errorf("%d: %v", i, err)
			continue
		}
		vals := map[string]float32{}
		for k, v := range got {
			vals[k] = v.F32[0]
		}
		if !reflect.DeepEqual(vals, tc.want) {
			t.Errorf("%d: got %v, want %v", i, vals, tc.want)
		}
	}
}

func TestReadModelHeader(t *testing.T) {
	m := &onnxpb.ModelProto{
		IrVersion:       proto.Int64(7),
		ProducerName:    proto.String("CNTK"),
		ProducerVersion: proto.String("2.5.1"),
		ModelVersion:    proto.Int64(3),
		OpsetImport: []*onnxpb.OperatorSetIdProto{
			{Domain: proto.String(""), Version: proto.Int64(8)},
			{Domain: proto.String("ai.onnx.ml"), Version: proto.Int64(2)},
		},
		Graph: &onnxpb.GraphProto{Name: proto.String("g"), Node: []*onnxpb.NodeProto{{OpType: proto.String("Relu")}}},
	}
	b, err := proto.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	h, err := ReadModelHeader(b)
	if err != nil {
		t.Fatal(err)
	}
	want := &ModelHeader{IRVersion: 7, ProducerName: "CNTK", ProducerVersion: "2.5.1", ModelVersion: 3,
		Opsets: map[string]int64{"": 8, "ai.onnx.ml": 2}}
	if !reflect.DeepEqual(h, want) {
		t.Errorf("got %+v, want %+v", h, want)
	}
	if _, err := ReadModelHeader(b[:len(b)-3]); err == nil {
		t.Errorf("truncated model: no error")
	}
	if _, err := ReadModelHeader([]byte{0xff, 0xff, 0xff}); err == nil {
		t.Errorf("garbage: no error")
	}
}

// FuzzDecodeNPY checks that no input makes the .npy decoder panic, and that
// what it accepts re-encodes to an equal tensor.
func FuzzDecodeNPY(f *testing.F) {
	f.Add([]byte(numpyF4))
	f.Add(npyFile(1, "{'descr': '<f8', 'fortran_order': True, 'shape': (2, 3), }", tioF64LE(0, 3, 1, 4, 2, 5)))
	f.Add(npyFile(2, "{'descr': '>i2', 'fortran_order': False, 'shape': (1,), }", []byte{1, 2}))
	f.Add(npyFile(1, "{'descr': '|b1', 'fortran_order': False, 'shape': (), }", []byte{1}))
	f.Fuzz(func(t *testing.T, b []byte) {
		x, err := DecodeNPY(b)
		if err != nil {
			return
		}
		enc, err := EncodeNPY(x)
		if err != nil {
			t.Fatalf("accepted tensor does not encode: %v", err)
		}
		y, err := DecodeNPY(enc)
		if err != nil {
			t.Fatalf("re-encoded tensor does not decode: %v", err)
		}
		if x.DType != y.DType || !runtime.SameShape(x.Shape, y.Shape) {
			t.Fatalf("round trip changed %v %v to %v %v", x.DType, x.Shape, y.DType, y.Shape)
		}
	})
}
