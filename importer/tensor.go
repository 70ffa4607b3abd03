package importer

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"strconv"

	"google.golang.org/protobuf/proto"

	"github.com/compressml/compress/importer/onnxpb"
	"github.com/compressml/compress/runtime"
)

// ONNX element type numbers (TensorProto.DataType), as plain int32s since
// that is how TensorProto.data_type and TypeProto.Tensor.elem_type hold them.
const (
	onnxFloat    = int32(onnxpb.TensorProto_FLOAT)
	onnxUint8    = int32(onnxpb.TensorProto_UINT8)
	onnxInt8     = int32(onnxpb.TensorProto_INT8)
	onnxUint16   = int32(onnxpb.TensorProto_UINT16)
	onnxInt16    = int32(onnxpb.TensorProto_INT16)
	onnxInt32    = int32(onnxpb.TensorProto_INT32)
	onnxInt64    = int32(onnxpb.TensorProto_INT64)
	onnxBool     = int32(onnxpb.TensorProto_BOOL)
	onnxFloat16  = int32(onnxpb.TensorProto_FLOAT16)
	onnxDouble   = int32(onnxpb.TensorProto_DOUBLE)
	onnxUint32   = int32(onnxpb.TensorProto_UINT32)
	onnxBfloat16 = int32(onnxpb.TensorProto_BFLOAT16)
)

// supportedTensorTypes is the list given in errors about element types.
const supportedTensorTypes = "FLOAT, DOUBLE, FLOAT16, BFLOAT16 (the last three converted to float32), " +
	"INT8, UINT8, INT16, UINT16, INT32, UINT32, INT64 and BOOL"

// dataTypeName names an ONNX element type number for error messages.
func dataTypeName(dt int32) string {
	if s, ok := onnxpb.TensorProto_DataType_name[dt]; ok {
		return s
	}
	return fmt.Sprintf("unknown data type %d", dt)
}

// valueDType maps the element type of a graph input or output to the
// runtime's. Unlike parameters, values crossing the graph boundary are not
// converted, so only the runtime's own types are accepted.
func valueDType(dt int32) (runtime.DType, error) {
	switch dt {
	case onnxFloat:
		return runtime.Float32, nil
	case onnxInt8:
		return runtime.Int8, nil
	case onnxUint8:
		return runtime.Uint8, nil
	case onnxInt32:
		return runtime.Int32, nil
	case onnxInt64:
		return runtime.Int64, nil
	case onnxBool:
		return runtime.Bool, nil
	}
	return runtime.Undefined, fmt.Errorf("element type %s is not supported for graph inputs and outputs "+
		"(compress runs FLOAT, INT8, UINT8, INT32, INT64 and BOOL tensors); re-export the model with float32 inputs and outputs",
		dataTypeName(dt))
}

// onnxDType maps a runtime element type to ONNX's.
func onnxDType(dt runtime.DType) (int32, error) {
	switch dt {
	case runtime.Float32:
		return onnxFloat, nil
	case runtime.Int8:
		return onnxInt8, nil
	case runtime.Uint8:
		return onnxUint8, nil
	case runtime.Int32:
		return onnxInt32, nil
	case runtime.Int64:
		return onnxInt64, nil
	case runtime.Bool:
		return onnxBool, nil
	}
	return 0, fmt.Errorf("element type %v has no ONNX equivalent", dt)
}

// elemSize is the size in bytes of one element of an ONNX type in raw_data,
// or 0 for types that compress does not read.
func elemSize(dt int32) int {
	switch dt {
	case onnxUint8, onnxInt8, onnxBool:
		return 1
	case onnxUint16, onnxInt16, onnxFloat16, onnxBfloat16:
		return 2
	case onnxFloat, onnxInt32, onnxUint32:
		return 4
	case onnxInt64, onnxDouble:
		return 8
	}
	return 0
}

// checkDims converts ONNX dimensions to a shape, refusing negative and
// absurd dimensions before anything is allocated.
func checkDims(dims []int64) ([]int, error) {
	shape := make([]int, len(dims))
	for i, d := range dims {
		if d < 0 {
			return nil, fmt.Errorf("dimension %d is negative (%d) in shape %v", i, d, dims)
		}
		if d > runtime.MaxElements {
			return nil, fmt.Errorf("dimension %d (%d) is absurdly large in shape %v", i, d, dims)
		}
		shape[i] = int(d)
	}
	if err := runtime.CheckShape(shape); err != nil {
		return nil, err
	}
	return shape, nil
}

// tensorReader converts TensorProtos, resolving external data against a
// directory. It keeps the directory open (as an os.Root, which refuses any
// path that escapes it, symbolic links included) across tensors.
type tensorReader struct {
	baseDir string
	root    *os.Root
}

func (r *tensorReader) close() {
	if r.root != nil {
		r.root.Close()
		r.root = nil
	}
}

// TensorFromProto converts an ONNX tensor to a runtime tensor. Element types
// the runtime lacks are converted where that loses nothing that matters for
// inference: DOUBLE, FLOAT16 and BFLOAT16 become float32, INT16, UINT16 and
// UINT32 widen to int32 or int64. Other types are refused. External data is
// resolved relative to baseDir; with baseDir "" a tensor with external data
// is refused.
//
// The declared shape is checked against the data before anything is
// allocated, so a corrupt tensor gives an error rather than a huge
// allocation.
func TensorFromProto(tp *onnxpb.TensorProto, baseDir string) (*runtime.Tensor, error) {
	r := &tensorReader{baseDir: baseDir}
	defer r.close()
	return r.tensor(tp)
}

func (r *tensorReader) tensor(tp *onnxpb.TensorProto) (*runtime.Tensor, error) {
	if tp == nil {
		return nil, errors.New("tensor is missing")
	}
	dt := tp.GetDataType()
	size := elemSize(dt)
	if size == 0 {
		return nil, fmt.Errorf("element type %s is not supported (compress reads %s)", dataTypeName(dt), supportedTensorTypes)
	}
	if tp.Segment != nil {
		return nil, errors.New("segmented tensors (TensorProto.segment) are not supported; re-save the model with onnx.save")
	}
	shape, err := checkDims(tp.GetDims())
	if err != nil {
		return nil, err
	}
	n := runtime.NumElements(shape)

	raw := tp.GetRawData()
	hasRaw := tp.RawData != nil
	if tp.GetDataLocation() == onnxpb.TensorProto_EXTERNAL {
		if hasRaw {
			return nil, errors.New("tensor has both raw_data and external data")
		}
		raw, err = r.external(tp, n*size)
		if err != nil {
			return nil, err
		}
		hasRaw = true
	}
	t := &runtime.Tensor{Shape: shape}
	if hasRaw {
		if len(raw) != n*size {
			return nil, fmt.Errorf("shape %v of %s needs %d bytes of data, raw_data holds %d", shape, dataTypeName(dt), n*size, len(raw))
		}
		decodeRaw(t, dt, raw, n)
		return t, nil
	}
	if err := decodeTyped(t, tp, dt, n); err != nil {
		return nil, err
	}
	return t, nil
}

// external reads want bytes of a tensor stored in an external file.
func (r *tensorReader) external(tp *onnxpb.TensorProto, want int) ([]byte, error) {
	var location string
	offset, length := int64(0), int64(-1)
	for _, kv := range tp.GetExternalData() {
		var err error
		switch kv.GetKey() {
		case "location":
			location = kv.GetValue()
		case "offset":
			offset, err = strconv.ParseInt(kv.GetValue(), 10, 64)
		case "length":
			length, err = strconv.ParseInt(kv.GetValue(), 10, 64)
		}
		if err != nil || offset < 0 || length < -1 {
			return nil, fmt.Errorf("external data entry %s=%q is not a valid byte count", kv.GetKey(), kv.GetValue())
		}
	}
	if location == "" {
		return nil, errors.New("tensor has external data without a location")
	}
	if r.baseDir == "" {
		return nil, fmt.Errorf("tensor is stored in external file %q, but the model was loaded from bytes without "+
			"a base directory; use importer.Load on the model file, or pass its directory to LoadBytes", location)
	}
	rel := filepath.FromSlash(location)
	if !filepath.IsLocal(rel) {
		return nil, fmt.Errorf("external data location %q is not a relative path inside the model's directory %s; refusing to read it", location, r.baseDir)
	}
	if length >= 0 && length != int64(want) {
		return nil, fmt.Errorf("external data in %q has length %d bytes, the tensor's shape needs %d", location, length, want)
	}
	if r.root == nil {
		root, err := os.OpenRoot(r.baseDir)
		if err != nil {
			return nil, fmt.Errorf("opening the model's directory for external data: %w", err)
		}
		r.root = root
	}
	f, err := r.root.Open(rel)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("external data file %q is missing (looked in %s); copy it next to the model file", location, r.baseDir)
		}
		return nil, fmt.Errorf("external data file %q: %w", location, err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("external data file %q: %w", location, err)
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("external data location %q is not a regular file", location)
	}
	if offset > st.Size() || int64(want) > st.Size()-offset {
		return nil, fmt.Errorf("external data file %q holds %d bytes, the tensor needs %d bytes at offset %d; the file is truncated or belongs to another model",
			location, st.Size(), want, offset)
	}
	buf := make([]byte, want)
	if _, err := io.ReadFull(io.NewSectionReader(f, offset, int64(want)), buf); err != nil {
		return nil, fmt.Errorf("reading external data file %q: %w", location, err)
	}
	return buf, nil
}

// decodeRaw fills t from little-endian raw bytes holding n elements of dt
// (the length has been checked).
func decodeRaw(t *runtime.Tensor, dt int32, raw []byte, n int) {
	le := binary.LittleEndian
	switch dt {
	case onnxFloat:
		t.DType, t.F32 = runtime.Float32, make([]float32, n)
		for i := range t.F32 {
			t.F32[i] = math.Float32frombits(le.Uint32(raw[4*i:]))
		}
	case onnxDouble:
		t.DType, t.F32 = runtime.Float32, make([]float32, n)
		for i := range t.F32 {
			t.F32[i] = float32(math.Float64frombits(le.Uint64(raw[8*i:])))
		}
	case onnxFloat16:
		t.DType, t.F32 = runtime.Float32, make([]float32, n)
		for i := range t.F32 {
			t.F32[i] = halfToFloat32(le.Uint16(raw[2*i:]))
		}
	case onnxBfloat16:
		t.DType, t.F32 = runtime.Float32, make([]float32, n)
		for i := range t.F32 {
			t.F32[i] = math.Float32frombits(uint32(le.Uint16(raw[2*i:])) << 16)
		}
	case onnxInt8:
		t.DType, t.I8 = runtime.Int8, make([]int8, n)
		for i := range t.I8 {
			t.I8[i] = int8(raw[i])
		}
	case onnxUint8:
		t.DType, t.U8 = runtime.Uint8, append(make([]uint8, 0, n), raw[:n]...)
	case onnxBool:
		t.DType, t.B = runtime.Bool, make([]bool, n)
		for i := range t.B {
			t.B[i] = raw[i] != 0
		}
	case onnxInt16:
		t.DType, t.I32 = runtime.Int32, make([]int32, n)
		for i := range t.I32 {
			t.I32[i] = int32(int16(le.Uint16(raw[2*i:])))
		}
	case onnxUint16:
		t.DType, t.I32 = runtime.Int32, make([]int32, n)
		for i := range t.I32 {
			t.I32[i] = int32(le.Uint16(raw[2*i:]))
		}
	case onnxInt32:
		t.DType, t.I32 = runtime.Int32, make([]int32, n)
		for i := range t.I32 {
			t.I32[i] = int32(le.Uint32(raw[4*i:]))
		}
	case onnxUint32:
		t.DType, t.I64 = runtime.Int64, make([]int64, n)
		for i := range t.I64 {
			t.I64[i] = int64(le.Uint32(raw[4*i:]))
		}
	case onnxInt64:
		t.DType, t.I64 = runtime.Int64, make([]int64, n)
		for i := range t.I64 {
			t.I64[i] = int64(le.Uint64(raw[8*i:]))
		}
	}
}

// decodeTyped fills t from the typed repeated field ONNX uses for dt.
func decodeTyped(t *runtime.Tensor, tp *onnxpb.TensorProto, dt int32, n int) error {
	var have int
	var field string
	switch dt {
	case onnxFloat:
		have, field = len(tp.GetFloatData()), "float_data"
	case onnxDouble:
		have, field = len(tp.GetDoubleData()), "double_data"
	case onnxInt64:
		have, field = len(tp.GetInt64Data()), "int64_data"
	case onnxUint32:
		have, field = len(tp.GetUint64Data()), "uint64_data"
	default:
		have, field = len(tp.GetInt32Data()), "int32_data"
	}
	if have != n {
		if have == 0 && n > 0 {
			return fmt.Errorf("tensor of shape %v and type %s holds no data (neither raw_data nor %s)", t.Shape, dataTypeName(dt), field)
		}
		return fmt.Errorf("shape %v of %s needs %d values, %s holds %d", t.Shape, dataTypeName(dt), n, field, have)
	}
	// intIn checks that an int32_data value fits the declared type.
	intIn := func(i int, v int32, lo, hi int32) error {
		if v < lo || v > hi {
			return fmt.Errorf("int32_data[%d] = %d is out of range for %s", i, v, dataTypeName(dt))
		}
		return nil
	}
	switch dt {
	case onnxFloat:
		t.DType, t.F32 = runtime.Float32, append(make([]float32, 0, n), tp.GetFloatData()...)
	case onnxDouble:
		t.DType, t.F32 = runtime.Float32, make([]float32, n)
		for i, v := range tp.GetDoubleData() {
			t.F32[i] = float32(v)
		}
	case onnxFloat16:
		t.DType, t.F32 = runtime.Float32, make([]float32, n)
		for i, v := range tp.GetInt32Data() {
			t.F32[i] = halfToFloat32(uint16(v))
		}
	case onnxBfloat16:
		t.DType, t.F32 = runtime.Float32, make([]float32, n)
		for i, v := range tp.GetInt32Data() {
			t.F32[i] = math.Float32frombits(uint32(uint16(v)) << 16)
		}
	case onnxInt8:
		t.DType, t.I8 = runtime.Int8, make([]int8, n)
		for i, v := range tp.GetInt32Data() {
			if err := intIn(i, v, math.MinInt8, math.MaxInt8); err != nil {
				return err
			}
			t.I8[i] = int8(v)
		}
	case onnxUint8:
		t.DType, t.U8 = runtime.Uint8, make([]uint8, n)
		for i, v := range tp.GetInt32Data() {
			if err := intIn(i, v, 0, math.MaxUint8); err != nil {
				return err
			}
			t.U8[i] = uint8(v)
		}
	case onnxBool:
		t.DType, t.B = runtime.Bool, make([]bool, n)
		for i, v := range tp.GetInt32Data() {
			t.B[i] = v != 0
		}
	case onnxInt16:
		t.DType, t.I32 = runtime.Int32, make([]int32, n)
		for i, v := range tp.GetInt32Data() {
			if err := intIn(i, v, math.MinInt16, math.MaxInt16); err != nil {
				return err
			}
			t.I32[i] = v
		}
	case onnxUint16:
		t.DType, t.I32 = runtime.Int32, make([]int32, n)
		for i, v := range tp.GetInt32Data() {
			if err := intIn(i, v, 0, math.MaxUint16); err != nil {
				return err
			}
			t.I32[i] = v
		}
	case onnxInt32:
		t.DType, t.I32 = runtime.Int32, append(make([]int32, 0, n), tp.GetInt32Data()...)
	case onnxUint32:
		t.DType, t.I64 = runtime.Int64, make([]int64, n)
		for i, v := range tp.GetUint64Data() {
			if v > math.MaxUint32 {
				return fmt.Errorf("uint64_data[%d] = %d is out of range for UINT32", i, v)
			}
			t.I64[i] = int64(v)
		}
	case onnxInt64:
		t.DType, t.I64 = runtime.Int64, append(make([]int64, 0, n), tp.GetInt64Data()...)
	}
	return nil
}

// halfToFloat32 converts IEEE 754 half-precision bits to float32 exactly.
func halfToFloat32(h uint16) float32 {
	sign := uint32(h>>15) << 31
	exp := uint32(h>>10) & 0x1f
	mant := uint32(h) & 0x3ff
	switch {
	case exp == 0x1f: // Inf, NaN
		return math.Float32frombits(sign | 0x7f800000 | mant<<13)
	case exp == 0:
		if mant == 0 {
			return math.Float32frombits(sign)
		}
		// Subnormal half: value = mant * 2^-24, exact in float32.
		v := float32(mant) * (1.0 / (1 << 24))
		if sign != 0 {
			v = -v
		}
		return v
	}
	return math.Float32frombits(sign | (exp+112)<<23 | mant<<13)
}

// tensorBytes is the size of t's data in ONNX raw_data.
func tensorBytes(t *runtime.Tensor) int64 {
	return int64(t.Len()) * int64(t.DType.Size())
}

// checkTensorData reports a tensor whose data slice does not match its
// dtype and shape (which would otherwise make export panic).
func checkTensorData(t *runtime.Tensor) error {
	if t == nil {
		return errors.New("tensor is nil")
	}
	if err := runtime.CheckShape(t.Shape); err != nil {
		return err
	}
	n := t.Len()
	var have int
	switch t.DType {
	case runtime.Float32:
		have = len(t.F32)
	case runtime.Int8:
		have = len(t.I8)
	case runtime.Uint8:
		have = len(t.U8)
	case runtime.Int32:
		have = len(t.I32)
	case runtime.Int64:
		have = len(t.I64)
	case runtime.Bool:
		have = len(t.B)
	default:
		return fmt.Errorf("element type %v has no ONNX equivalent", t.DType)
	}
	if have != n {
		return fmt.Errorf("%v tensor of shape %v holds %d values, its shape needs %d", t.DType, t.Shape, have, n)
	}
	return nil
}

// TensorToProto converts a runtime tensor to an ONNX tensor with raw_data
// (little-endian), the layout onnxruntime reads fastest.
func TensorToProto(name string, t *runtime.Tensor) (*onnxpb.TensorProto, error) {
	if err := checkTensorData(t); err != nil {
		return nil, err
	}
	dt, err := onnxDType(t.DType)
	if err != nil {
		return nil, err
	}
	dims := make([]int64, len(t.Shape))
	for i, d := range t.Shape {
		dims[i] = int64(d)
	}
	n := t.Len()
	raw := make([]byte, n*t.DType.Size())
	le := binary.LittleEndian
	switch t.DType {
	case runtime.Float32:
		for i, v := range t.F32 {
			le.PutUint32(raw[4*i:], math.Float32bits(v))
		}
	case runtime.Int8:
		for i, v := range t.I8 {
			raw[i] = byte(v)
		}
	case runtime.Uint8:
		copy(raw, t.U8)
	case runtime.Int32:
		for i, v := range t.I32 {
			le.PutUint32(raw[4*i:], uint32(v))
		}
	case runtime.Int64:
		for i, v := range t.I64 {
			le.PutUint64(raw[8*i:], uint64(v))
		}
	case runtime.Bool:
		for i, v := range t.B {
			if v {
				raw[i] = 1
			}
		}
	}
	tp := &onnxpb.TensorProto{Dims: dims, DataType: proto.Int32(dt), RawData: raw}
	if name != "" {
		tp.Name = proto.String(name)
	}
	return tp, nil
}

// DecodeTensor parses a serialized ONNX TensorProto (the `.pb` files of the
// ONNX test data sets) and returns its name and contents. External data is
// not allowed here.
func DecodeTensor(data []byte) (string, *runtime.Tensor, error) {
	var tp onnxpb.TensorProto
	if err := proto.Unmarshal(data, &tp); err != nil {
		return "", nil, fmt.Errorf("not an ONNX TensorProto: %w", err)
	}
	t, err := TensorFromProto(&tp, "")
	if err != nil {
		return tp.GetName(), nil, fmt.Errorf("tensor %q: %w", tp.GetName(), err)
	}
	return tp.GetName(), t, nil
}

// ReadTensorFile reads a serialized ONNX TensorProto file (such as
// test_data_set_0/input_0.pb) and returns its name and contents.
func ReadTensorFile(path string) (string, *runtime.Tensor, error) {
	st, err := os.Stat(path)
	if err != nil {
		return "", nil, err
	}
	if st.Size() > maxProtoSize {
		return "", nil, fmt.Errorf("%s: %d bytes is beyond the 2 GiB protobuf limit; this is not a TensorProto file", path, st.Size())
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return "", nil, err
	}
	name, t, err := DecodeTensor(data)
	if err != nil {
		return "", nil, fmt.Errorf("%s: %w", path, err)
	}
	return name, t, nil
}

// EncodeTensor serializes t as an ONNX TensorProto named name.
func EncodeTensor(name string, t *runtime.Tensor) ([]byte, error) {
	if t != nil && tensorBytes(t) > maxProtoSize-1024 {
		return nil, fmt.Errorf("tensor %q holds %d bytes, beyond the 2 GiB protobuf limit", name, tensorBytes(t))
	}
	tp, err := TensorToProto(name, t)
	if err != nil {
		return nil, fmt.Errorf("tensor %q: %w", name, err)
	}
	return proto.MarshalOptions{Deterministic: true}.Marshal(tp)
}

// WriteTensorFile writes t to path as a serialized ONNX TensorProto named
// name, replacing the file atomically.
func WriteTensorFile(path, name string, t *runtime.Tensor) error {
	data, err := EncodeTensor(name, t)
	if err != nil {
		return err
	}
	return writeFileAtomic(path, data)
}
