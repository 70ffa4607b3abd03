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

// Targeter is implemented by data sets whose examples carry float targets
// (regression) instead of, or besides, class labels. A data set has targets
// when it implements Targeter and TargetSize() > 0 (see HasTargets): Subset
// and InMemory always implement the interface and report 0 when their data
// has none. A regression data set's NumClasses is 0 and Example returns
// label 0.
type Targeter interface {
	// TargetSize is the number of target values per example (0: none).
	TargetSize() int
	// Targets writes the targets of example i into y, which holds exactly
	// TargetSize() values.
	Targets(i int, y []float32) error
}

// HasTargets reports whether ds has float targets, and how many per example.
func HasTargets(ds Dataset) (int, bool) {
	if t, ok := ds.(Targeter); ok && t.TargetSize() > 0 {
		return t.TargetSize(), true
	}
	return 0, false
}

// ClassNamer is implemented by data sets that know their classes' names
// (the sub-folders of an image folder, the label strings of a CSV file).
type ClassNamer interface {
	// ClassNames returns one name per class, in class-index order (nil
	// when unknown).
	ClassNames() []string
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
	names   []string // class names, when known
	// nameLabels is set when the labels were given as names (CSV strings).
	nameLabels bool
	targets    []float32 // regression targets, [N, tsize]
	tsize      int
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

// NewRegression makes a data set of examples x (uint8 or float32, shape
// [N, ...]; not copied) with float targets y of shape [N] or [N, K]
// (converted to float32). Its NumClasses is 0 and every label is 0.
func NewRegression(name string, x, y *rt.Tensor) (*InMemory, error) {
	if y == nil {
		return nil, fmt.Errorf("data set %q: no target tensor", name)
	}
	if x == nil || len(x.Shape) < 1 {
		return nil, fmt.Errorf("data set %q: no example tensor of shape [N, ...]", name)
	}
	n := x.Shape[0]
	if len(y.Shape) < 1 || len(y.Shape) > 2 || y.Shape[0] != n {
		return nil, fmt.Errorf("data set %q: targets of shape %v for %d examples; want [%d] or [%d K]", name, y.Shape, n, n, n)
	}
	tsize := 1
	if len(y.Shape) == 2 {
		tsize = y.Shape[1]
	}
	if tsize < 1 {
		return nil, fmt.Errorf("data set %q: targets of shape %v hold no value per example", name, y.Shape)
	}
	t, err := toFloat32(y)
	if err != nil {
		return nil, fmt.Errorf("data set %q: targets: %w", name, err)
	}
	d, err := NewInMemory(name, x, make([]int, n), 1)
	if err != nil {
		return nil, err
	}
	d.classes = 0
	d.targets, d.tsize = t.F32, tsize
	return d, nil
}

// toFloat32 returns t as a Float32 tensor (t itself when it is one).
func toFloat32(t *rt.Tensor) (*rt.Tensor, error) {
	out := &rt.Tensor{DType: rt.Float32, Shape: append([]int{}, t.Shape...)}
	n := t.Len()
	switch t.DType {
	case rt.Float32:
		if len(t.F32) != n {
			return nil, fmt.Errorf("shape %v needs %d values, tensor holds %d", t.Shape, n, len(t.F32))
		}
		return t, nil
	case rt.Uint8:
		if len(t.U8) != n {
			return nil, fmt.Errorf("shape %v needs %d values, tensor holds %d", t.Shape, n, len(t.U8))
		}
		out.F32 = make([]float32, n)
		for i, v := range t.U8 {
			out.F32[i] = float32(v)
		}
	case rt.Int8:
		if len(t.I8) != n {
			return nil, fmt.Errorf("shape %v needs %d values, tensor holds %d", t.Shape, n, len(t.I8))
		}
		out.F32 = make([]float32, n)
		for i, v := range t.I8 {
			out.F32[i] = float32(v)
		}
	case rt.Int32:
		if len(t.I32) != n {
			return nil, fmt.Errorf("shape %v needs %d values, tensor holds %d", t.Shape, n, len(t.I32))
		}
		out.F32 = make([]float32, n)
		for i, v := range t.I32 {
			out.F32[i] = float32(v)
		}
	case rt.Int64:
		if len(t.I64) != n {
			return nil, fmt.Errorf("shape %v needs %d values, tensor holds %d", t.Shape, n, len(t.I64))
		}
		out.F32 = make([]float32, n)
		for i, v := range t.I64 {
			out.F32[i] = float32(v)
		}
	case rt.Bool:
		if len(t.B) != n {
			return nil, fmt.Errorf("shape %v needs %d values, tensor holds %d", t.Shape, n, len(t.B))
		}
		out.F32 = make([]float32, n)
		for i, v := range t.B {
			if v {
				out.F32[i] = 1
			}
		}
	default:
		return nil, fmt.Errorf("values of type %v are not supported", t.DType)
	}
	return out, nil
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

// ClassNames returns the classes' names when the format gave them (nil
// otherwise).
func (d *InMemory) ClassNames() []string { return d.names }

// TargetSize is the number of regression targets per example (0 for a
// classification data set).
func (d *InMemory) TargetSize() int { return d.tsize }

// Targets copies the regression targets of example i into y.
func (d *InMemory) Targets(i int, y []float32) error {
	if d.tsize == 0 {
		return fmt.Errorf("%s has class labels, not regression targets", d.name)
	}
	if i < 0 || i >= len(d.labels) {
		return fmt.Errorf("%s: example %d out of range [0, %d)", d.name, i, len(d.labels))
	}
	if len(y) != d.tsize {
		return fmt.Errorf("%s: buffer of %d values for %d targets", d.name, len(y), d.tsize)
	}
	copy(y, d.targets[i*d.tsize:(i+1)*d.tsize])
	return nil
}

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

// TargetSize is the parent's number of targets per example (0 when it has
// none).
func (s *Subset) TargetSize() int {
	n, _ := HasTargets(s.DS)
	return n
}

// Targets returns the targets of example s.Indices[i] of the parent.
func (s *Subset) Targets(i int, y []float32) error {
	t, ok := s.DS.(Targeter)
	if !ok || t.TargetSize() == 0 {
		return fmt.Errorf("%s has class labels, not regression targets", Name(s.DS))
	}
	if i < 0 || i >= len(s.Indices) {
		return fmt.Errorf("%s: example %d out of range [0, %d)", Name(s.DS), i, len(s.Indices))
	}
	return t.Targets(s.Indices[i], y)
}

// ClassNames returns the parent's class names, when it has them.
func (s *Subset) ClassNames() []string {
	if n, ok := s.DS.(ClassNamer); ok {
		return n.ClassNames()
	}
	return nil
}

// rootIndex follows Subsets down to the data set they select from and
// returns that data set's index of example i (used to seed augmentation by
// example rather than by visiting position).
func rootIndex(ds Dataset, i int) int {
	for {
		s, ok := ds.(*Subset)
		if !ok || i < 0 || i >= len(s.Indices) {
			return i
		}
		ds, i = s.DS, s.Indices[i]
	}
}

// Name describes the subset.
func (s *Subset) Name() string {
	return fmt.Sprintf("%d examples of %s", len(s.Indices), Name(s.DS))
}
