package importer

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"google.golang.org/protobuf/encoding/protowire"

	"github.com/compressml/compress/runtime"
)

// This file reads and writes single tensors in the two file formats that
// model inputs and outputs are exchanged in: ONNX TensorProto (.pb, the
// format of the ONNX test data sets) and NumPy (.npy), and lists a model
// file's header fields without decoding its graph.

// LoadTensor reads a tensor file, choosing the format by extension: .pb is a
// serialized ONNX TensorProto (see ReadTensorFile), .npy a NumPy array (see
// DecodeNPY). It returns the tensor's name (always "" for .npy, which has
// none) and its contents. Errors name the file.
func LoadTensor(path string) (string, *runtime.Tensor, error) {
	ext := strings.ToLower(filepath.Ext(path))
	if ext != ".pb" && ext != ".npy" {
		return "", nil, fmt.Errorf("%s: unknown tensor file extension %q; use .pb (ONNX TensorProto) or .npy (NumPy)", path, ext)
	}
	st, err := os.Stat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return "", nil, fmt.Errorf("tensor file %s does not exist", path)
	}
	if err != nil {
		return "", nil, err
	}
	if st.IsDir() {
		return "", nil, fmt.Errorf("%s is a directory, not a tensor file", path)
	}
	switch ext {
	case ".pb":
		return ReadTensorFile(path)
	default:
		data, err := os.ReadFile(path)
		if err != nil {
			return "", nil, err
		}
		t, err := DecodeNPY(data)
		if err != nil {
			return "", nil, fmt.Errorf("%s: %w", path, err)
		}
		return "", t, nil
	}
}

// SaveTensor writes t to path in the format its extension names (.pb or
// .npy; see LoadTensor). name is stored in a .pb file and ignored for .npy.
// The file is replaced atomically (temporary file and rename).
func SaveTensor(path, name string, t *runtime.Tensor) error {
	switch ext := strings.ToLower(filepath.Ext(path)); ext {
	case ".pb":
		return WriteTensorFile(path, name, t)
	case ".npy":
		data, err := EncodeNPY(t)
		if err != nil {
			return fmt.Errorf("saving %s: %w", path, err)
		}
		return writeFileAtomic(path, data)
	default:
		return fmt.Errorf("%s: unknown tensor file extension %q; use .pb (ONNX TensorProto) or .npy (NumPy)", path, ext)
	}
}

// npyMagic starts every .npy file.
const npyMagic = "\x93NUMPY"

// maxNPYHeader bounds the header of a .npy file (numpy itself writes a few
// hundred bytes).
const maxNPYHeader = 1 << 20

// npyType describes one NumPy element type: its size and how it decodes.
type npyType struct {
	kind byte // 'f', 'i', 'u', 'b'
	size int
	dt   runtime.DType
}

var npyTypes = map[string]npyType{
	"f2": {'f', 2, runtime.Float32}, "f4": {'f', 4, runtime.Float32}, "f8": {'f', 8, runtime.Float32},
	"i1": {'i', 1, runtime.Int8}, "i2": {'i', 2, runtime.Int32}, "i4": {'i', 4, runtime.Int32}, "i8": {'i', 8, runtime.Int64},
	"u1": {'u', 1, runtime.Uint8}, "u2": {'u', 2, runtime.Int32}, "u4": {'u', 4, runtime.Int64}, "u8": {'u', 8, runtime.Int64},
	"b1": {'b', 1, runtime.Bool},
}

// DecodeNPY parses a NumPy .npy file (format versions 1.0 to 3.0). Element
// types map as for ONNX tensors: float16/32/64 become Float32, int8 Int8,
// uint8 Uint8, int16/uint16/int32 Int32, uint32/int64/uint64 Int64, bool
// Bool; both byte orders and Fortran (column-major) order are read. The
// header is validated and the data must be exactly as long as the shape
// says.
func DecodeNPY(data []byte) (*runtime.Tensor, error) {
	if len(data) < 10 || string(data[:6]) != npyMagic {
		return nil, errors.New("not a NumPy .npy file (it does not start with \\x93NUMPY)")
	}
	major := data[6]
	var hlen, off int
	switch major {
	case 1:
		hlen, off = int(binary.LittleEndian.Uint16(data[8:])), 10
	case 2, 3:
		if len(data) < 12 {
			return nil, errors.New("npy header: truncated")
		}
		h := binary.LittleEndian.Uint32(data[8:])
		if h > maxNPYHeader {
			return nil, fmt.Errorf("npy header: declared length %d is absurd", h)
		}
		hlen, off = int(h), 12
	default:
		return nil, fmt.Errorf("npy header: format version %d.%d is not supported (1.0 to 3.0 are)", major, data[7])
	}
	if off+hlen > len(data) {
		return nil, fmt.Errorf("npy header: truncated: it declares %d bytes, the file holds %d after the preamble", hlen, len(data)-off)
	}
	descr, fortran, shape, err := parseNPYHeader(string(data[off : off+hlen]))
	if err != nil {
		return nil, fmt.Errorf("npy header: %w", err)
	}
	if len(descr) != 3 || !strings.ContainsRune("<>|=", rune(descr[0])) {
		return nil, fmt.Errorf("npy header: element type %q is not supported (want e.g. '<f4'; float16/32/64, int8-64, uint8-64 and bool are read)", descr)
	}
	typ, ok := npyTypes[descr[1:]]
	if !ok {
		return nil, fmt.Errorf("npy header: element type %q is not supported (float16/32/64, int8-64, uint8-64 and bool are read)", descr)
	}
	var order binary.ByteOrder = binary.LittleEndian
	if descr[0] == '>' {
		order = binary.BigEndian
	}
	if err := runtime.CheckShape(shape); err != nil {
		return nil, fmt.Errorf("npy header: %w", err)
	}
	n := runtime.NumElements(shape)
	raw := data[off+hlen:]
	if need := int64(n) * int64(typ.size); int64(len(raw)) != need {
		what := "truncated"
		if int64(len(raw)) > need {
			what = "longer than its shape says"
		}
		return nil, fmt.Errorf("npy data: file is %s: shape %v of %s needs %d bytes, %d follow the header", what, shape, descr, need, len(raw))
	}
	t, err := decodeNPYData(raw, typ, order, shape)
	if err != nil {
		return nil, fmt.Errorf("npy data: %w", err)
	}
	if fortran && len(shape) > 1 {
		t = npyFromFortran(t)
	}
	return t, nil
}

func decodeNPYData(raw []byte, typ npyType, order binary.ByteOrder, shape []int) (*runtime.Tensor, error) {
	t := runtime.New(typ.dt, shape...)
	n := t.Len()
	s := typ.size
	for i := range n {
		b := raw[i*s : (i+1)*s]
		switch typ.kind {
		case 'f':
			var v float32
			switch s {
			case 2:
				v = halfToFloat32(order.Uint16(b))
			case 4:
				v = math.Float32frombits(order.Uint32(b))
			case 8:
				v = float32(math.Float64frombits(order.Uint64(b)))
			}
			t.F32[i] = v
		case 'i':
			switch s {
			case 1:
				t.I8[i] = int8(b[0])
			case 2:
				t.I32[i] = int32(int16(order.Uint16(b)))
			case 4:
				t.I32[i] = int32(order.Uint32(b))
			case 8:
				t.I64[i] = int64(order.Uint64(b))
			}
		case 'u':
			switch s {
			case 1:
				t.U8[i] = b[0]
			case 2:
				t.I32[i] = int32(order.Uint16(b))
			case 4:
				t.I64[i] = int64(order.Uint32(b))
			case 8:
				v := order.Uint64(b)
				if v > math.MaxInt64 {
					return nil, fmt.Errorf("uint64 element %d (%d) does not fit in int64", i, v)
				}
				t.I64[i] = int64(v)
			}
		case 'b':
			t.B[i] = b[0] != 0
		}
	}
	return t, nil
}

// npyFromFortran reorders a tensor whose data is in column-major order into
// row-major order.
func npyFromFortran(t *runtime.Tensor) *runtime.Tensor {
	out := runtime.New(t.DType, t.Shape...)
	rank := len(t.Shape)
	// Column-major strides of the source.
	fs := make([]int, rank)
	acc := 1
	for i := range rank {
		fs[i] = acc
		acc *= t.Shape[i]
	}
	idx := make([]int, rank)
	n := t.Len()
	for dst := range n {
		src := 0
		for i, v := range idx {
			src += v * fs[i]
		}
		switch t.DType {
		case runtime.Float32:
			out.F32[dst] = t.F32[src]
		case runtime.Int8:
			out.I8[dst] = t.I8[src]
		case runtime.Uint8:
			out.U8[dst] = t.U8[src]
		case runtime.Int32:
			out.I32[dst] = t.I32[src]
		case runtime.Int64:
			out.I64[dst] = t.I64[src]
		case runtime.Bool:
			out.B[dst] = t.B[src]
		}
		for i := rank - 1; i >= 0; i-- { // next row-major index
			idx[i]++
			if idx[i] < t.Shape[i] {
				break
			}
			idx[i] = 0
		}
	}
	return out
}

// parseNPYHeader parses the Python dict literal of a .npy header, e.g.
// {'descr': '<f4', 'fortran_order': False, 'shape': (1, 28, 28), }.
func parseNPYHeader(h string) (descr string, fortran bool, shape []int, err error) {
	p := &pyLexer{s: strings.TrimRight(h, " \n\x00")}
	if !p.eat('{') {
		return "", false, nil, fmt.Errorf("expected a dict, found %q", npyClip(h))
	}
	seen := map[string]bool{}
	for {
		if p.eat('}') {
			break
		}
		key, ok := p.str()
		if !ok {
			return "", false, nil, fmt.Errorf("expected a quoted key at byte %d of %q", p.i, npyClip(h))
		}
		if !p.eat(':') {
			return "", false, nil, fmt.Errorf("expected ':' after key %q", key)
		}
		switch key {
		case "descr":
			if descr, ok = p.str(); !ok {
				return "", false, nil, errors.New("'descr' must be a string such as '<f4' (structured dtypes are not supported)")
			}
		case "fortran_order":
			switch {
			case p.word("True"):
				fortran = true
			case p.word("False"):
				fortran = false
			default:
				return "", false, nil, errors.New("'fortran_order' must be True or False")
			}
		case "shape":
			if shape, ok = p.tuple(); !ok {
				return "", false, nil, errors.New("'shape' must be a tuple of non-negative integers")
			}
		default:
			return "", false, nil, fmt.Errorf("unknown key %q", key)
		}
		seen[key] = true
		if !p.eat(',') {
			if !p.eat('}') {
				return "", false, nil, fmt.Errorf("expected ',' or '}' at byte %d of %q", p.i, npyClip(h))
			}
			break
		}
	}
	for _, k := range []string{"descr", "fortran_order", "shape"} {
		if !seen[k] {
			return "", false, nil, fmt.Errorf("key %q is missing", k)
		}
	}
	return descr, fortran, shape, nil
}

func npyClip(s string) string {
	if len(s) > 80 {
		return s[:80] + "..."
	}
	return s
}

// pyLexer reads the few Python literals a .npy header holds.
type pyLexer struct {
	s string
	i int
}

func (p *pyLexer) skip() {
	for p.i < len(p.s) && (p.s[p.i] == ' ' || p.s[p.i] == '\t' || p.s[p.i] == '\n') {
		p.i++
	}
}

func (p *pyLexer) eat(c byte) bool {
	p.skip()
	if p.i < len(p.s) && p.s[p.i] == c {
		p.i++
		return true
	}
	return false
}

func (p *pyLexer) word(w string) bool {
	p.skip()
	if strings.HasPrefix(p.s[p.i:], w) {
		p.i += len(w)
		return true
	}
	return false
}

func (p *pyLexer) str() (string, bool) {
	p.skip()
	if p.i >= len(p.s) || (p.s[p.i] != '\'' && p.s[p.i] != '"') {
		return "", false
	}
	q := p.s[p.i]
	end := strings.IndexByte(p.s[p.i+1:], q)
	if end < 0 {
		return "", false
	}
	v := p.s[p.i+1 : p.i+1+end]
	p.i += end + 2
	return v, true
}

func (p *pyLexer) tuple() ([]int, bool) {
	if !p.eat('(') {
		return nil, false
	}
	shape := []int{}
	for {
		if p.eat(')') {
			return shape, true
		}
		p.skip()
		j := p.i
		for j < len(p.s) && p.s[j] >= '0' && p.s[j] <= '9' {
			j++
		}
		if j < len(p.s) && p.s[j] == 'L' { // Python 2 long
			j++
		}
		v, err := strconv.ParseInt(strings.TrimSuffix(p.s[p.i:j], "L"), 10, 64)
		if err != nil || v > runtime.MaxElements {
			return nil, false
		}
		shape = append(shape, int(v))
		p.i = j
		if !p.eat(',') {
			if p.eat(')') {
				return shape, true
			}
			return nil, false
		}
	}
}

// EncodeNPY serializes t as a NumPy .npy file (format 1.0, little-endian,
// C order), readable with numpy.load.
func EncodeNPY(t *runtime.Tensor) ([]byte, error) {
	if t == nil {
		return nil, errors.New("no tensor")
	}
	if err := checkTensorData(t); err != nil {
		return nil, err
	}
	var descr string
	switch t.DType {
	case runtime.Float32:
		descr = "<f4"
	case runtime.Int8:
		descr = "|i1"
	case runtime.Uint8:
		descr = "|u1"
	case runtime.Int32:
		descr = "<i4"
	case runtime.Int64:
		descr = "<i8"
	case runtime.Bool:
		descr = "|b1"
	default:
		return nil, fmt.Errorf("element type %v cannot be written to .npy", t.DType)
	}
	dims := make([]string, len(t.Shape))
	for i, d := range t.Shape {
		dims[i] = strconv.Itoa(d)
	}
	shape := "(" + strings.Join(dims, ", ")
	if len(dims) == 1 {
		shape += ","
	}
	shape += ")"
	hdr := fmt.Sprintf("{'descr': '%s', 'fortran_order': False, 'shape': %s, }", descr, shape)
	// Pad with spaces so that the data starts at a multiple of 64 bytes,
	// ending the header with a newline, as numpy does.
	major, pre := byte(1), 10
	if len(hdr)+pre+64 > math.MaxUint16 {
		major, pre = 2, 12
	}
	total := (pre + len(hdr) + 1 + 63) / 64 * 64
	hdr += strings.Repeat(" ", total-pre-len(hdr)-1) + "\n"
	var b bytes.Buffer
	b.Grow(total + t.Len()*t.DType.Size())
	b.WriteString(npyMagic)
	b.WriteByte(major)
	b.WriteByte(0)
	if major == 1 {
		binary.Write(&b, binary.LittleEndian, uint16(len(hdr)))
	} else {
		binary.Write(&b, binary.LittleEndian, uint32(len(hdr)))
	}
	b.WriteString(hdr)
	le := binary.LittleEndian
	var buf [8]byte
	switch t.DType {
	case runtime.Float32:
		for _, v := range t.F32 {
			le.PutUint32(buf[:], math.Float32bits(v))
			b.Write(buf[:4])
		}
	case runtime.Int8:
		for _, v := range t.I8 {
			b.WriteByte(byte(v))
		}
	case runtime.Uint8:
		b.Write(t.U8)
	case runtime.Int32:
		for _, v := range t.I32 {
			le.PutUint32(buf[:], uint32(v))
			b.Write(buf[:4])
		}
	case runtime.Int64:
		for _, v := range t.I64 {
			le.PutUint64(buf[:], uint64(v))
			b.Write(buf[:8])
		}
	case runtime.Bool:
		for _, v := range t.B {
			if v {
				b.WriteByte(1)
			} else {
				b.WriteByte(0)
			}
		}
	}
	return b.Bytes(), nil
}

// ReadInputs reads the tensor files given for a model's inputs. Each spec is
// either "name=path" or a bare path; bare paths are matched to the inputs
// that no "name=" spec claims: by the name stored in a .pb file when it is
// one of the model's inputs, otherwise in the order of the model's inputs.
// Every input must be given exactly once, with the element type and the
// shape the model declares (dynamic dimensions match any size); errors name
// the file.
func ReadInputs(g *runtime.Graph, specs []string) (map[string]*runtime.Tensor, error) {
	var names []string
	isInput := map[string]bool{}
	decl := map[string]runtime.ValueInfo{}
	for _, in := range g.Inputs {
		if _, isParam := g.Params[in.Name]; !isParam {
			names = append(names, in.Name)
			isInput[in.Name] = true
			decl[in.Name] = in
		}
	}
	source := map[string]string{}
	list := strings.Join(names, ", ")
	out := map[string]*runtime.Tensor{}
	type bare struct {
		path, stored string
		t            *runtime.Tensor
	}
	var bares []bare
	for _, spec := range specs {
		name, path, named := strings.Cut(spec, "=")
		if named && isInput[name] {
			if _, dup := out[name]; dup {
				return nil, fmt.Errorf("input %q is given twice", name)
			}
			_, t, err := LoadTensor(path)
			if err != nil {
				return nil, err
			}
			out[name], source[name] = t, path
			continue
		}
		if named {
			if _, err := os.Stat(spec); err != nil { // not a file name containing '='
				return nil, fmt.Errorf("%q: the model has no input %q (its inputs: %s)", spec, name, list)
			}
		}
		stored, t, err := LoadTensor(spec)
		if err != nil {
			return nil, err
		}
		bares = append(bares, bare{spec, stored, t})
	}
	// Bare files whose stored name is an unclaimed input go there.
	var rest []bare
	for _, b := range bares {
		if isInput[b.stored] {
			if _, taken := out[b.stored]; !taken {
				out[b.stored], source[b.stored] = b.t, b.path
				continue
			}
		}
		rest = append(rest, b)
	}
	for _, b := range rest {
		placed := false
		for _, n := range names {
			if _, taken := out[n]; !taken {
				out[n], source[n] = b.t, b.path
				placed = true
				break
			}
		}
		if !placed {
			return nil, fmt.Errorf("%s: more tensor files than the model has inputs (%s)", b.path, list)
		}
	}
	var missing []string
	for _, n := range names {
		if _, ok := out[n]; !ok {
			missing = append(missing, n)
		}
	}
	if len(missing) > 0 {
		sort.Strings(missing)
		return nil, fmt.Errorf("no tensor file given for model input(s) %s; pass --input NAME=FILE for each", strings.Join(missing, ", "))
	}
	for _, n := range names {
		if err := checkInputTensor(decl[n], out[n]); err != nil {
			return nil, fmt.Errorf("%s: %w", source[n], err)
		}
	}
	return out, nil
}

// checkInputTensor checks a tensor against a graph input's declaration.
func checkInputTensor(vi runtime.ValueInfo, t *runtime.Tensor) error {
	want := vi.DType.String()
	if vi.Shape != nil {
		want += " " + declaredShape(vi)
	}
	bad := vi.DType != runtime.Undefined && vi.DType != t.DType
	if vi.Shape != nil {
		if len(vi.Shape) != len(t.Shape) {
			bad = true
		} else {
			for i, d := range vi.Shape {
				if d >= 0 && d != t.Shape[i] {
					bad = true
				}
			}
		}
	}
	if bad {
		return fmt.Errorf("model input %q takes %s, the file holds %v %v", vi.Name, want, t.DType, t.Shape)
	}
	return nil
}

// declaredShape writes a declared shape with dynamic dimensions by name.
func declaredShape(vi runtime.ValueInfo) string {
	parts := make([]string, len(vi.Shape))
	for i, d := range vi.Shape {
		switch {
		case d >= 0:
			parts[i] = strconv.Itoa(d)
		case i < len(vi.DimNames) && vi.DimNames[i] != "":
			parts[i] = vi.DimNames[i]
		default:
			parts[i] = "?"
		}
	}
	return "[" + strings.Join(parts, " ") + "]"
}

// ModelHeader holds the top-level fields of an ONNX model file.
type ModelHeader struct {
	IRVersion       int64            `json:"ir_version"`
	ProducerName    string           `json:"producer_name,omitempty"`
	ProducerVersion string           `json:"producer_version,omitempty"`
	Domain          string           `json:"domain,omitempty"`
	ModelVersion    int64            `json:"model_version,omitempty"`
	Opsets          map[string]int64 `json:"opset_import"` // domain ("" for ai.onnx) -> version
}

// ReadModelHeader returns the top-level fields of a serialized ONNX model
// (IR version, producer, opset imports) without decoding its graph.
func ReadModelHeader(data []byte) (*ModelHeader, error) {
	h := &ModelHeader{Opsets: map[string]int64{}}
	for len(data) > 0 {
		num, typ, n := protowire.ConsumeTag(data)
		if n < 0 {
			return nil, fmt.Errorf("not an ONNX model: %w", protowire.ParseError(n))
		}
		data = data[n:]
		switch {
		case num == 1 && typ == protowire.VarintType: // ir_version
			v, n := protowire.ConsumeVarint(data)
			if n < 0 {
				return nil, fmt.Errorf("not an ONNX model: %w", protowire.ParseError(n))
			}
			h.IRVersion, data = int64(v), data[n:]
			continue
		case num == 5 && typ == protowire.VarintType: // model_version
			v, n := protowire.ConsumeVarint(data)
			if n < 0 {
				return nil, fmt.Errorf("not an ONNX model: %w", protowire.ParseError(n))
			}
			h.ModelVersion, data = int64(v), data[n:]
			continue
		case (num == 2 || num == 3 || num == 4 || num == 8) && typ == protowire.BytesType:
			v, n := protowire.ConsumeBytes(data)
			if n < 0 {
				return nil, fmt.Errorf("not an ONNX model: %w", protowire.ParseError(n))
			}
			data = data[n:]
			switch num {
			case 2:
				h.ProducerName = string(v)
			case 3:
				h.ProducerVersion = string(v)
			case 4:
				h.Domain = string(v)
			case 8:
				dom, ver, err := headerOpsetID(v)
				if err != nil {
					return nil, err
				}
				if dom == "ai.onnx" {
					dom = ""
				}
				h.Opsets[dom] = ver
			}
			continue
		}
		n = protowire.ConsumeFieldValue(num, typ, data)
		if n < 0 {
			return nil, fmt.Errorf("not an ONNX model: %w", protowire.ParseError(n))
		}
		data = data[n:]
	}
	return h, nil
}

// headerOpsetID decodes an OperatorSetIdProto {1: domain, 2: version}.
func headerOpsetID(b []byte) (string, int64, error) {
	var dom string
	var ver int64
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return "", 0, fmt.Errorf("bad opset_import: %w", protowire.ParseError(n))
		}
		b = b[n:]
		switch {
		case num == 1 && typ == protowire.BytesType:
			v, n := protowire.ConsumeBytes(b)
			if n < 0 {
				return "", 0, fmt.Errorf("bad opset_import: %w", protowire.ParseError(n))
			}
			dom, b = string(v), b[n:]
		case num == 2 && typ == protowire.VarintType:
			v, n := protowire.ConsumeVarint(b)
			if n < 0 {
				return "", 0, fmt.Errorf("bad opset_import: %w", protowire.ParseError(n))
			}
			ver, b = int64(v), b[n:]
		default:
			n := protowire.ConsumeFieldValue(num, typ, b)
			if n < 0 {
				return "", 0, fmt.Errorf("bad opset_import: %w", protowire.ParseError(n))
			}
			b = b[n:]
		}
	}
	return dom, ver, nil
}
