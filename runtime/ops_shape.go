package runtime

// Shape and metadata operators: the views (Reshape, Flatten, Squeeze,
// Unsqueeze, Identity, Dropout), the ops whose output is known from input
// metadata alone (Shape, Size), and the generators (Constant,
// ConstantOfShape, Range). The data-movement ops that copy with a new layout
// live in ops_shape_move.go, reductions in ops_reduce.go.
//
// All of them follow the opset-18 form of the ONNX operators (the importer
// rewrites older versions) and accept every runtime dtype unless noted.

import (
	"fmt"
	"math"
)

func init() {
	Register(OpSpec{Type: "Reshape", MinInputs: 2, MaxInputs: 2, Compile: compileReshape, StaticInputs: []int{1}, NonDiff: []int{1}})
	Register(OpSpec{Type: "Flatten", MinInputs: 1, MaxInputs: 1, Compile: compileFlatten})
	Register(OpSpec{Type: "Squeeze", MinInputs: 1, MaxInputs: 2, Compile: compileSqueeze, StaticInputs: []int{1}, NonDiff: []int{1}})
	Register(OpSpec{Type: "Unsqueeze", MinInputs: 2, MaxInputs: 2, Compile: compileUnsqueeze, StaticInputs: []int{1}, NonDiff: []int{1}})
	Register(OpSpec{Type: "Identity", MinInputs: 1, MaxInputs: 1, Compile: compileIdentity})
	Register(OpSpec{Type: "Dropout", MinInputs: 1, MaxInputs: 3, Outputs: 2, Compile: compileDropout, StaticInputs: []int{2}, NonDiff: []int{1, 2}})
	Register(OpSpec{Type: "Shape", MinInputs: 1, MaxInputs: 1, Compile: compileShape, NonDiff: []int{0}})
	Register(OpSpec{Type: "Size", MinInputs: 1, MaxInputs: 1, Compile: compileSize, NonDiff: []int{0}})
	Register(OpSpec{Type: "Constant", MinInputs: 0, MaxInputs: 0, Compile: compileConstant})
	Register(OpSpec{Type: "ConstantOfShape", MinInputs: 1, MaxInputs: 1, Compile: compileConstantOfShape, StaticInputs: []int{0}, NonDiff: []int{0}})
	Register(OpSpec{Type: "Range", MinInputs: 3, MaxInputs: 3, Compile: compileRange, StaticInputs: []int{0, 1, 2}, NonDiff: []int{0, 1, 2}})
}

// mvGrain is the number of elements below which a copy is not worth
// splitting across goroutines.
const mvGrain = 1 << 14

// mvElem is the set of element types of the runtime.
type mvElem interface {
	float32 | int8 | uint8 | int32 | int64 | bool
}

// mvData returns t's data slice as []T; nil when T does not match t.DType.
func mvData[T mvElem](t *Tensor) []T {
	var s any
	switch t.DType {
	case Float32:
		s = t.F32
	case Int8:
		s = t.I8
	case Uint8:
		s = t.U8
	case Int32:
		s = t.I32
	case Int64:
		s = t.I64
	case Bool:
		s = t.B
	}
	d, _ := s.([]T)
	return d
}

// mvCopyData copies src's elements into dst (same dtype and length); the
// data slices of the other dtypes are nil, so their copies do nothing.
func mvCopyData(dst, src *Tensor) {
	copy(dst.F32, src.F32)
	copy(dst.I8, src.I8)
	copy(dst.U8, src.U8)
	copy(dst.I32, src.I32)
	copy(dst.I64, src.I64)
	copy(dst.B, src.B)
}

// mvCheckDType rejects a dtype the runtime has no storage for.
func mvCheckDType(what string, dt DType) error {
	if dt.Size() == 0 {
		return fmt.Errorf("%s has unsupported dtype %v", what, dt)
	}
	return nil
}

// mvRequire reports the first of the listed inputs that is absent.
func mvRequire(in []ValueMeta, idx ...int) error {
	for _, i := range idx {
		if i >= len(in) || in[i].DType == Undefined {
			return fmt.Errorf("input %d is required but absent", i)
		}
	}
	return nil
}

// mvAxis normalises an axis in [-rank, rank-1] to [0, rank-1].
func mvAxis(axis int64, rank int, what string) (int, error) {
	if axis < -int64(rank) || axis >= int64(rank) {
		return 0, fmt.Errorf("%s %d is out of range for a rank-%d input (valid: %d..%d)", what, axis, rank, -rank, rank-1)
	}
	if axis < 0 {
		axis += int64(rank)
	}
	return int(axis), nil
}

// mvAxes normalises a list of axes against rank and rejects duplicates.
func mvAxes(axes []int64, rank int, what string) ([]int, error) {
	out := make([]int, len(axes))
	seen := make([]bool, rank)
	for i, a := range axes {
		ax, err := mvAxis(a, rank, what)
		if err != nil {
			return nil, err
		}
		if seen[ax] {
			return nil, fmt.Errorf("%s %v names axis %d twice", what, axes, ax)
		}
		seen[ax] = true
		out[i] = ax
	}
	return out, nil
}

// mvConstInts reads optional input i, an integer tensor whose values must be
// known at plan time. present is false when the input is absent.
func mvConstInts(in []ValueMeta, i int, what string) (vals []int64, present bool, err error) {
	if i >= len(in) || in[i].DType == Undefined {
		return nil, false, nil
	}
	if in[i].Const == nil {
		return nil, true, fmt.Errorf("%s (input %d) must be a constant known at plan time (an initializer or computed from one); this runtime plans static shapes", what, i)
	}
	if in[i].Const.DType != Int64 && in[i].Const.DType != Int32 {
		return nil, true, fmt.Errorf("%s (input %d) must be int64, got %v", what, i, in[i].Const.DType)
	}
	if len(in[i].Const.Shape) > 1 {
		return nil, true, fmt.Errorf("%s (input %d) must be a 1-D tensor, got shape %v", what, i, in[i].Const.Shape)
	}
	v, err := in[i].Const.Int64s()
	if err != nil {
		return nil, true, fmt.Errorf("%s (input %d): %w", what, i, err)
	}
	return v, true, nil
}

// viewKernel is the kernel of ops whose output 0 is input 0 with a new
// shape. The executor shares the buffer (AliasInput) and never calls Run;
// Run copies for callers that do not alias.
type viewKernel struct{}

// AliasInput reports that output 0 views input 0.
func (viewKernel) AliasInput() int { return 0 }

// Run copies input 0 to output 0.
func (viewKernel) Run(_ *ExecContext, in, out []*Tensor) error {
	mvCopyData(out[0], in[0])
	return nil
}

func viewOf(in ValueMeta, shape []int) (Kernel, []ValueMeta, error) {
	if err := mvCheckDType("input 0", in.DType); err != nil {
		return nil, nil, err
	}
	return viewKernel{}, []ValueMeta{{DType: in.DType, Shape: shape}}, nil
}

func compileReshape(n *Node, in []ValueMeta) (Kernel, []ValueMeta, error) {
	if err := mvRequire(in, 0, 1); err != nil {
		return nil, nil, err
	}
	if in[1].DType != Undefined && in[1].Const == nil {
		return nil, nil, fmt.Errorf("Reshape needs a shape known at plan time: input 1 (shape) is computed at run time; make it an initializer or fold the subgraph that computes it")
	}
	spec, _, err := mvConstInts(in, 1, "shape")
	if err != nil {
		return nil, nil, err
	}
	shape, err := reshapeDims(in[0].Shape, spec, n.AttrInt("allowzero", 0) != 0)
	if err != nil {
		return nil, nil, err
	}
	return viewOf(in[0], shape)
}

// reshapeDims resolves a Reshape shape spec (0 = copy the input dimension
// unless allowZero, -1 = inferred) against the input shape.
func reshapeDims(inShape []int, spec []int64, allowZero bool) ([]int, error) {
	out := make([]int, len(spec))
	infer := -1
	known := 1
	hasZero := false
	for i, d := range spec {
		switch {
		case d == -1:
			if infer >= 0 {
				return nil, fmt.Errorf("shape %v has more than one -1", spec)
			}
			infer = i
			continue
		case d < -1:
			return nil, fmt.Errorf("shape %v has an invalid dimension %d", spec, d)
		case d == 0 && !allowZero:
			if i >= len(inShape) {
				return nil, fmt.Errorf("shape %v copies dimension %d (0) but the input %v has rank %d", spec, i, inShape, len(inShape))
			}
			out[i] = inShape[i]
		case d > MaxElements:
			return nil, fmt.Errorf("shape %v has a dimension larger than %d", spec, MaxElements)
		default:
			out[i] = int(d)
			if d == 0 {
				hasZero = true
			}
		}
		if out[i] != 0 && known > MaxElements/out[i] {
			return nil, fmt.Errorf("shape %v has more than %d elements", spec, MaxElements)
		}
		known *= out[i]
	}
	total := NumElements(inShape)
	if infer >= 0 {
		if hasZero {
			return nil, fmt.Errorf("shape %v has both a 0 (allowzero=1) and a -1", spec)
		}
		if known == 0 {
			if total != 0 {
				return nil, fmt.Errorf("cannot infer the -1 of shape %v: the other dimensions have 0 elements, the input %v has %d", spec, inShape, total)
			}
			out[infer] = 0
		} else {
			if total%known != 0 {
				return nil, fmt.Errorf("cannot reshape %v (%d elements) to %v: %d is not a multiple of %d", inShape, total, spec, total, known)
			}
			out[infer] = total / known
		}
		known *= out[infer]
	}
	if known != total {
		return nil, fmt.Errorf("cannot reshape %v (%d elements) to %v (%d elements)", inShape, total, out, known)
	}
	return out, nil
}

func compileFlatten(n *Node, in []ValueMeta) (Kernel, []ValueMeta, error) {
	if err := mvRequire(in, 0); err != nil {
		return nil, nil, err
	}
	r := len(in[0].Shape)
	axis := n.AttrInt("axis", 1)
	if axis < -int64(r) || axis > int64(r) {
		return nil, nil, fmt.Errorf("axis %d is out of range for a rank-%d input (valid: %d..%d)", axis, r, -r, r)
	}
	if axis < 0 {
		axis += int64(r)
	}
	a := int(axis)
	return viewOf(in[0], []int{NumElements(in[0].Shape[:a]), NumElements(in[0].Shape[a:])})
}

func compileSqueeze(n *Node, in []ValueMeta) (Kernel, []ValueMeta, error) {
	if err := mvRequire(in, 0); err != nil {
		return nil, nil, err
	}
	axes, present, err := mvConstInts(in, 1, "axes")
	if err != nil {
		return nil, nil, err
	}
	shape := in[0].Shape
	drop := make([]bool, len(shape))
	if present && len(axes) > 0 {
		ax, err := mvAxes(axes, len(shape), "axes")
		if err != nil {
			return nil, nil, err
		}
		for _, a := range ax {
			if shape[a] != 1 {
				return nil, nil, fmt.Errorf("cannot squeeze axis %d of shape %v: its size is %d, not 1", a, shape, shape[a])
			}
			drop[a] = true
		}
	} else {
		for i, d := range shape {
			drop[i] = d == 1
		}
	}
	out := []int{}
	for i, d := range shape {
		if !drop[i] {
			out = append(out, d)
		}
	}
	return viewOf(in[0], out)
}

func compileUnsqueeze(n *Node, in []ValueMeta) (Kernel, []ValueMeta, error) {
	if err := mvRequire(in, 0, 1); err != nil {
		return nil, nil, err
	}
	axes, _, err := mvConstInts(in, 1, "axes")
	if err != nil {
		return nil, nil, err
	}
	r := len(in[0].Shape) + len(axes)
	ax, err := mvAxes(axes, r, "axes")
	if err != nil {
		return nil, nil, err
	}
	ins := make([]bool, r)
	for _, a := range ax {
		ins[a] = true
	}
	out := make([]int, r)
	j := 0
	for i := range out {
		if ins[i] {
			out[i] = 1
		} else {
			out[i] = in[0].Shape[j]
			j++
		}
	}
	return viewOf(in[0], out)
}

func compileIdentity(n *Node, in []ValueMeta) (Kernel, []ValueMeta, error) {
	if err := mvRequire(in, 0); err != nil {
		return nil, nil, err
	}
	return viewOf(in[0], append([]int{}, in[0].Shape...))
}

// dropoutMaskKernel copies the data and writes an all-true mask (inference).
type dropoutMaskKernel struct{}

// Run copies input 0 and sets every element of the mask.
func (dropoutMaskKernel) Run(_ *ExecContext, in, out []*Tensor) error {
	if out[0] != nil {
		mvCopyData(out[0], in[0])
	}
	if len(out) > 1 && out[1] != nil {
		for i := range out[1].B {
			out[1].B[i] = true
		}
	}
	return nil
}

func compileDropout(n *Node, in []ValueMeta) (Kernel, []ValueMeta, error) {
	if err := mvRequire(in, 0); err != nil {
		return nil, nil, err
	}
	if err := mvCheckDType("input 0", in[0].DType); err != nil {
		return nil, nil, err
	}
	if len(in) > 2 && in[2].DType != Undefined {
		// A training_mode computed at run time is taken as false: the
		// runtime only does inference through this op.
		if c := in[2].Const; c != nil {
			if c.Len() != 1 || c.DType != Bool {
				return nil, nil, fmt.Errorf("training_mode (input 2) must be a bool scalar, got %v %v", c.DType, c.Shape)
			}
			if c.B[0] {
				return nil, nil, fmt.Errorf("training mode not supported yet: training_mode (input 2) is true; export the model in eval mode")
			}
		}
	}
	shape := append([]int{}, in[0].Shape...)
	outs := []ValueMeta{{DType: in[0].DType, Shape: shape}}
	if len(n.Outputs) > 1 {
		outs = append(outs, ValueMeta{DType: Bool, Shape: shape})
		if n.Outputs[1] != "" {
			return dropoutMaskKernel{}, outs, nil
		}
	}
	return viewKernel{}, outs, nil
}

// constKernel writes a tensor computed at plan time.
type constKernel struct{ t *Tensor }

// Run copies the constant into output 0.
func (k constKernel) Run(_ *ExecContext, _, out []*Tensor) error {
	mvCopyData(out[0], k.t)
	return nil
}

// constResult returns t both as output metadata (Const set, so planners fold
// the node) and as a kernel writing it.
func constResult(t *Tensor) (Kernel, []ValueMeta, error) {
	return constKernel{t}, []ValueMeta{{DType: t.DType, Shape: t.Shape, Const: t}}, nil
}

func compileShape(n *Node, in []ValueMeta) (Kernel, []ValueMeta, error) {
	if err := mvRequire(in, 0); err != nil {
		return nil, nil, err
	}
	shape := in[0].Shape
	r := int64(len(shape))
	clampDim := func(v int64) int64 {
		if v < 0 {
			v += r
		}
		return min(max(v, 0), r)
	}
	start := clampDim(n.AttrInt("start", 0))
	end := r
	if a, ok := n.Attrs["end"]; ok && a.Kind == AttrInt {
		end = clampDim(a.I)
	}
	vals := []int64{}
	for i := start; i < end; i++ {
		vals = append(vals, int64(shape[i]))
	}
	return constResult(FromInt64(vals, len(vals)))
}

func compileSize(n *Node, in []ValueMeta) (Kernel, []ValueMeta, error) {
	if err := mvRequire(in, 0); err != nil {
		return nil, nil, err
	}
	return constResult(FromInt64([]int64{int64(NumElements(in[0].Shape))}))
}

func compileConstant(n *Node, in []ValueMeta) (Kernel, []ValueMeta, error) {
	var t *Tensor
	set := 0
	for name, a := range n.Attrs {
		switch name {
		case "value":
			if a.Kind != AttrTensor || a.T == nil {
				return nil, nil, fmt.Errorf("attribute value must be a tensor")
			}
			if err := mvCheckDType("attribute value", a.T.DType); err != nil {
				return nil, nil, err
			}
			if err := checkData(a.T); err != nil {
				return nil, nil, fmt.Errorf("attribute value: %w", err)
			}
			t = a.T
		case "value_float":
			t = &Tensor{DType: Float32, Shape: []int{}, F32: []float32{a.F}}
		case "value_floats":
			t = FromFloat32(append([]float32{}, a.Floats...), len(a.Floats))
		case "value_int":
			t = FromInt64([]int64{a.I})
		case "value_ints":
			t = FromInt64(append([]int64{}, a.Ints...), len(a.Ints))
		case "value_string", "value_strings", "sparse_value":
			return nil, nil, fmt.Errorf("attribute %s is not supported (the runtime has no string or sparse tensors)", name)
		default:
			continue
		}
		set++
	}
	if set != 1 {
		return nil, nil, fmt.Errorf("needs exactly one of the attributes value, value_float, value_floats, value_int, value_ints; has %d", set)
	}
	return constResult(t)
}

// fillKernel sets every element of output 0 to element 0 of v.
type fillKernel struct{ v *Tensor }

// Run fills output 0.
func (k fillKernel) Run(_ *ExecContext, _, out []*Tensor) error {
	switch k.v.DType {
	case Float32:
		mvFill(out[0].F32, k.v.F32[0])
	case Int8:
		mvFill(out[0].I8, k.v.I8[0])
	case Uint8:
		mvFill(out[0].U8, k.v.U8[0])
	case Int32:
		mvFill(out[0].I32, k.v.I32[0])
	case Int64:
		mvFill(out[0].I64, k.v.I64[0])
	case Bool:
		mvFill(out[0].B, k.v.B[0])
	}
	return nil
}

func mvFill[T mvElem](s []T, v T) {
	for i := range s {
		s[i] = v
	}
}

func compileConstantOfShape(n *Node, in []ValueMeta) (Kernel, []ValueMeta, error) {
	if err := mvRequire(in, 0); err != nil {
		return nil, nil, err
	}
	if in[0].Const == nil {
		return nil, nil, fmt.Errorf("ConstantOfShape needs its shape (input 0) known at plan time; make it an initializer or fold the subgraph that computes it")
	}
	dims, _, err := mvConstInts(in, 0, "shape")
	if err != nil {
		return nil, nil, err
	}
	shape := make([]int, len(dims))
	for i, d := range dims {
		if d < 0 || d > MaxElements {
			return nil, nil, fmt.Errorf("shape %v has an invalid dimension %d", dims, d)
		}
		shape[i] = int(d)
	}
	if err := CheckShape(shape); err != nil {
		return nil, nil, err
	}
	v := FromFloat32([]float32{0}, 1)
	if a, ok := n.Attrs["value"]; ok {
		if a.Kind != AttrTensor || a.T == nil {
			return nil, nil, fmt.Errorf("attribute value must be a one-element tensor")
		}
		if err := mvCheckDType("attribute value", a.T.DType); err != nil {
			return nil, nil, err
		}
		if err := checkData(a.T); err != nil || a.T.Len() != 1 {
			return nil, nil, fmt.Errorf("attribute value must be a one-element tensor, got shape %v", a.T.Shape)
		}
		v = a.T
	}
	return fillKernel{v}, []ValueMeta{{DType: v.DType, Shape: shape}}, nil
}

func compileRange(n *Node, in []ValueMeta) (Kernel, []ValueMeta, error) {
	if err := mvRequire(in, 0, 1, 2); err != nil {
		return nil, nil, err
	}
	names := [3]string{"start", "limit", "delta"}
	dt := in[0].DType
	for i, m := range in[:3] {
		if m.Const == nil {
			return nil, nil, fmt.Errorf("Range needs %s (input %d) known at plan time: the output length depends on it", names[i], i)
		}
		if m.DType != dt {
			return nil, nil, fmt.Errorf("%s is %v but start is %v: all inputs must have one dtype", names[i], m.DType, dt)
		}
		if m.Const.Len() != 1 {
			return nil, nil, fmt.Errorf("%s (input %d) must be a scalar, got shape %v", names[i], i, m.Const.Shape)
		}
	}
	var t *Tensor
	switch dt {
	case Float32:
		start, limit, delta := float64(in[0].Const.F32[0]), float64(in[1].Const.F32[0]), float64(in[2].Const.F32[0])
		if delta == 0 || math.IsNaN(delta) || math.IsInf(delta, 0) {
			return nil, nil, fmt.Errorf("delta must be finite and non-zero, got %v", delta)
		}
		cnt := math.Ceil((limit - start) / delta)
		if math.IsNaN(cnt) || cnt > MaxElements {
			return nil, nil, fmt.Errorf("range start=%v limit=%v delta=%v has too many elements", start, limit, delta)
		}
		k := max(int(cnt), 0)
		t = New(Float32, k)
		for i := range t.F32 {
			t.F32[i] = float32(start + float64(i)*delta)
		}
	case Int32, Int64:
		v, _ := in[0].Const.Int64s()
		l, _ := in[1].Const.Int64s()
		d, _ := in[2].Const.Int64s()
		start, limit, delta := v[0], l[0], d[0]
		if delta == 0 {
			return nil, nil, fmt.Errorf("delta must be non-zero")
		}
		cnt := rangeCount(start, limit, delta)
		if cnt > MaxElements {
			return nil, nil, fmt.Errorf("range start=%d limit=%d delta=%d has too many elements", start, limit, delta)
		}
		t = New(dt, int(cnt))
		for i := int64(0); i < cnt; i++ {
			if dt == Int32 {
				t.I32[i] = int32(start + i*delta)
			} else {
				t.I64[i] = start + i*delta
			}
		}
	default:
		return nil, nil, fmt.Errorf("unsupported dtype %v (float32, int32 or int64)", dt)
	}
	return constResult(t)
}

// rangeCount is max(ceil((limit-start)/delta), 0) in exact integer
// arithmetic (delta != 0), saturating instead of overflowing.
func rangeCount(start, limit, delta int64) int64 {
	if (delta > 0 && limit <= start) || (delta < 0 && limit >= start) {
		return 0
	}
	// The difference may overflow int64; compute it as uint64 magnitude.
	var diff, step uint64
	if delta > 0 {
		diff, step = uint64(limit)-uint64(start), uint64(delta)
	} else {
		diff, step = uint64(start)-uint64(limit), -uint64(delta)
	}
	c := (diff + step - 1) / step
	if diff > math.MaxUint64-step {
		c = diff / step // (diff+step-1) overflowed; the ceiling is then within 1
		if diff%step != 0 {
			c++
		}
	}
	if c > math.MaxInt64 {
		return math.MaxInt64
	}
	return int64(c)
}
