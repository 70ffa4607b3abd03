package runtime

import (
	"fmt"
	"math"
)

// DType is the element type of a Tensor.
type DType uint8

// The element types the runtime supports. The numeric values are ours, not
// ONNX's; the importer maps between them.
const (
	Undefined DType = iota
	Float32
	Int8
	Uint8
	Int32
	Int64
	Bool
)

var dtypeNames = [...]string{"undefined", "float32", "int8", "uint8", "int32", "int64", "bool"}

func (d DType) String() string {
	if int(d) < len(dtypeNames) {
		return dtypeNames[d]
	}
	return fmt.Sprintf("dtype(%d)", d)
}

// Size is the number of bytes one element occupies.
func (d DType) Size() int {
	switch d {
	case Float32, Int32:
		return 4
	case Int64:
		return 8
	case Int8, Uint8, Bool:
		return 1
	}
	return 0
}

// MaxElements bounds the number of elements of any one tensor (4 Gi): a
// declared shape beyond it is refused before anything is allocated.
const MaxElements = 1 << 32

// Tensor is a dense, row-major n-dimensional array. Exactly one of the data
// slices is used, the one matching DType; its length equals NumElements.
// A rank-0 tensor (scalar) has an empty Shape and one element.
type Tensor struct {
	DType DType
	Shape []int

	F32 []float32
	I8  []int8
	U8  []uint8
	I32 []int32
	I64 []int64
	B   []bool
}

// NumElements is the product of the dimensions of shape (1 for a scalar).
func NumElements(shape []int) int {
	n := 1
	for _, d := range shape {
		n *= d
	}
	return n
}

// CheckShape reports an error for a negative dimension or a shape with more
// than MaxElements elements.
func CheckShape(shape []int) error {
	n := 1
	for i, d := range shape {
		if d < 0 {
			return fmt.Errorf("dimension %d is negative (%d) in shape %v", i, d, shape)
		}
		if d > 0 && n > MaxElements/d {
			return fmt.Errorf("shape %v has more than %d elements", shape, MaxElements)
		}
		n *= d
	}
	return nil
}

// New allocates a zeroed tensor. It panics on an invalid shape; callers that
// handle untrusted shapes check them with CheckShape first.
func New(dt DType, shape ...int) *Tensor {
	if err := CheckShape(shape); err != nil {
		panic(err)
	}
	t := &Tensor{DType: dt, Shape: append([]int{}, shape...)}
	n := NumElements(shape)
	switch dt {
	case Float32:
		t.F32 = make([]float32, n)
	case Int8:
		t.I8 = make([]int8, n)
	case Uint8:
		t.U8 = make([]uint8, n)
	case Int32:
		t.I32 = make([]int32, n)
	case Int64:
		t.I64 = make([]int64, n)
	case Bool:
		t.B = make([]bool, n)
	default:
		panic(fmt.Sprintf("runtime.New: unsupported dtype %v", dt))
	}
	return t
}

// FromFloat32 wraps data (not copied) as a float32 tensor of the given shape.
func FromFloat32(data []float32, shape ...int) *Tensor {
	if len(data) != NumElements(shape) {
		panic(fmt.Sprintf("runtime.FromFloat32: %d values for shape %v", len(data), shape))
	}
	return &Tensor{DType: Float32, Shape: append([]int{}, shape...), F32: data}
}

// FromInt64 wraps data (not copied) as an int64 tensor of the given shape.
func FromInt64(data []int64, shape ...int) *Tensor {
	if len(data) != NumElements(shape) {
		panic(fmt.Sprintf("runtime.FromInt64: %d values for shape %v", len(data), shape))
	}
	return &Tensor{DType: Int64, Shape: append([]int{}, shape...), I64: data}
}

// Len is the number of elements.
func (t *Tensor) Len() int { return NumElements(t.Shape) }

// Rank is the number of dimensions.
func (t *Tensor) Rank() int { return len(t.Shape) }

// Clone returns a deep copy.
func (t *Tensor) Clone() *Tensor {
	c := &Tensor{DType: t.DType, Shape: append([]int{}, t.Shape...)}
	c.F32 = cloneSlice(t.F32)
	c.I8 = cloneSlice(t.I8)
	c.U8 = cloneSlice(t.U8)
	c.I32 = cloneSlice(t.I32)
	c.I64 = cloneSlice(t.I64)
	c.B = cloneSlice(t.B)
	return c
}

func cloneSlice[T any](s []T) []T {
	if s == nil {
		return nil
	}
	return append(make([]T, 0, len(s)), s...)
}

// Reshaped returns a tensor sharing t's data with a new shape of the same
// number of elements.
func (t *Tensor) Reshaped(shape ...int) *Tensor {
	if NumElements(shape) != t.Len() {
		panic(fmt.Sprintf("runtime.Reshaped: %v to %v", t.Shape, shape))
	}
	c := *t
	c.Shape = append([]int{}, shape...)
	return &c
}

// Int64s returns the values of an integer tensor as int64 (a copy for
// types other than Int64). It is meant for small shape-like tensors.
func (t *Tensor) Int64s() ([]int64, error) {
	switch t.DType {
	case Int64:
		return t.I64, nil
	case Int32:
		out := make([]int64, len(t.I32))
		for i, v := range t.I32 {
			out[i] = int64(v)
		}
		return out, nil
	case Int8:
		out := make([]int64, len(t.I8))
		for i, v := range t.I8 {
			out[i] = int64(v)
		}
		return out, nil
	case Uint8:
		out := make([]int64, len(t.U8))
		for i, v := range t.U8 {
			out[i] = int64(v)
		}
		return out, nil
	}
	return nil, fmt.Errorf("expected an integer tensor, got %v", t.DType)
}

// Float64At returns element i converted to float64, whatever the dtype.
func (t *Tensor) Float64At(i int) float64 {
	switch t.DType {
	case Float32:
		return float64(t.F32[i])
	case Int8:
		return float64(t.I8[i])
	case Uint8:
		return float64(t.U8[i])
	case Int32:
		return float64(t.I32[i])
	case Int64:
		return float64(t.I64[i])
	case Bool:
		if t.B[i] {
			return 1
		}
		return 0
	}
	return math.NaN()
}

// SameShape reports whether two shapes are equal.
func SameShape(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// Strides returns the row-major element strides of shape.
func Strides(shape []int) []int {
	s := make([]int, len(shape))
	acc := 1
	for i := len(shape) - 1; i >= 0; i-- {
		s[i] = acc
		acc *= shape[i]
	}
	return s
}
