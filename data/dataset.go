package data

import (
	"fmt"

	rt "github.com/compressml/compress/runtime"
)

// Dataset is a finite, indexable collection of labelled examples of one
// fixed shape. Implementations must be safe for concurrent calls to Example.
type Dataset interface {
	// Len is the number of examples.
	Len() int
	// Shape is the shape of one example, without a batch dimension
	// (for example [1 28 28] for an MNIST image: channels, rows, columns).
	Shape() []int
	// NumClasses is the number of classes (labels are 0..NumClasses()-1).
	NumClasses() int
	// Example writes example i, as stored (no scaling), into x, which holds
	// exactly rt.NumElements(Shape()) values, and returns its class label.
	Example(i int, x []float32) (label int, err error)
}

// Namer is implemented by data sets that can describe themselves for
// messages and reports, e.g. "MNIST test (/path/to/dir)".
type Namer interface {
	Name() string
}

// Name returns ds's name when it implements Namer, or a description made of
// its size and shape otherwise.
func Name(ds Dataset) string {
	if n, ok := ds.(Namer); ok {
		return n.Name()
	}
	return fmt.Sprintf("data set of %d examples of shape %v", ds.Len(), ds.Shape())
}

// InMemory is a Dataset held in memory: one uint8 or float32 tensor of shape
// [N, ...] holding every example, and N labels. Formats that are small enough
// to load at once (idx, CSV, NPY) decode to it.
type InMemory struct {
	name    string
	shape   []int
	size    int // values per example
	u8      []uint8
	f32     []float32
	labels  []int
	classes int
}

// NewInMemory makes a data set from x (uint8 or float32, shape [N, ...]; its
// data is not copied) and one label per example. numClasses <= 0 means
// max(labels)+1. Labels must lie in [0, numClasses).
func NewInMemory(name string, x *rt.Tensor, labels []int, numClasses int) (*InMemory, error) {
	if x == nil {
		return nil, fmt.Errorf("data set %q: no example tensor", name)
	}
	if len(x.Shape) < 1 {
		return nil, fmt.Errorf("data set %q: example tensor is a scalar; want shape [N, ...]", name)
	}
	if err := rt.CheckShape(x.Shape); err != nil {
		return nil, fmt.Errorf("data set %q: %w", name, err)
	}
	n := x.Shape[0]
	d := &InMemory{name: name, shape: append([]int{}, x.Shape[1:]...), size: rt.NumElements(x.Shape[1:])}
	switch x.DType {
	case rt.Uint8:
		d.u8 = x.U8
		if len(x.U8) != x.Len() {
			return nil, fmt.Errorf("data set %q: shape %v needs %d values, tensor holds %d", name, x.Shape, x.Len(), len(x.U8))
		}
	case rt.Float32:
		d.f32 = x.F32
		if len(x.F32) != x.Len() {
			return nil, fmt.Errorf("data set %q: shape %v needs %d values, tensor holds %d", name, x.Shape, x.Len(), len(x.F32))
		}
	default:
		return nil, fmt.Errorf("data set %q: examples of type %v are not supported; convert them to uint8 or float32", name, x.DType)
	}
	if len(labels) != n {
		return nil, fmt.Errorf("data set %q: %d examples but %d labels", name, n, len(labels))
	}
	maxLabel := -1
	for i, l := range labels {
		if l < 0 {
			return nil, fmt.Errorf("data set %q: label of example %d is negative (%d)", name, i, l)
		}
		maxLabel = max(maxLabel, l)
	}
	if numClasses <= 0 {
		numClasses = maxLabel + 1
	} else if maxLabel >= numClasses {
		return nil, fmt.Errorf("data set %q: label %d is outside the %d classes", name, maxLabel, numClasses)
	}
	d.labels = labels
	d.classes = numClasses
	return d, nil
}

// Len is the number of examples.
func (d *InMemory) Len() int { return len(d.labels) }

// Shape is the shape of one example.
func (d *InMemory) Shape() []int { return append([]int{}, d.shape...) }

// NumClasses is the number of classes.
func (d *InMemory) NumClasses() int { return d.classes }

// Name describes the data set.
func (d *InMemory) Name() string { return d.name }

// Labels returns the labels of all examples (not a copy; do not modify).
func (d *InMemory) Labels() []int { return d.labels }

// Example copies example i into x and returns its label.
func (d *InMemory) Example(i int, x []float32) (int, error) {
	if i < 0 || i >= len(d.labels) {
		return 0, fmt.Errorf("%s: example %d out of range [0, %d)", d.name, i, len(d.labels))
	}
	if len(x) != d.size {
		return 0, fmt.Errorf("%s: buffer of %d values for an example of shape %v (%d values)", d.name, len(x), d.shape, d.size)
	}
	off := i * d.size
	if d.u8 != nil {
		for j, v := range d.u8[off : off+d.size] {
			x[j] = float32(v)
		}
	} else {
		copy(x, d.f32[off:off+d.size])
	}
	return d.labels[i], nil
}

// Subset is a view of a data set restricted to (and reordered by) a list of
// indices, e.g. a validation split or the first N examples.
type Subset struct {
	DS      Dataset
	Indices []int
}

// Len is the number of selected examples.
func (s *Subset) Len() int { return len(s.Indices) }

// Shape is the shape of one example.
func (s *Subset) Shape() []int { return s.DS.Shape() }

// NumClasses is the parent's number of classes.
func (s *Subset) NumClasses() int { return s.DS.NumClasses() }

// Example returns example s.Indices[i] of the parent.
func (s *Subset) Example(i int, x []float32) (int, error) {
	if i < 0 || i >= len(s.Indices) {
		return 0, fmt.Errorf("%s: example %d out of range [0, %d)", Name(s.DS), i, len(s.Indices))
	}
	return s.DS.Example(s.Indices[i], x)
}

// Name describes the subset.
func (s *Subset) Name() string {
	return fmt.Sprintf("%d examples of %s", len(s.Indices), Name(s.DS))
}
