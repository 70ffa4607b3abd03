package data

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strconv"
	"strings"

	rt "github.com/compressml/compress/runtime"
)

// DefaultBatchSize is the batch size a Loader uses when none is given.
const DefaultBatchSize = 64

// Preprocess maps stored values to model inputs: x*Scale, then (x-Mean)/Std.
// The zero value feeds values unchanged.
type Preprocess struct {
	// Scale multiplies every value first; 0 means 1 (e.g. 1/255 maps bytes to [0,1]).
	Scale float32
	// Mean and Std hold either one value for every element or one value per
	// index along axis 1 of the batch tensor (the channel of [B C H W], the
	// feature of [B F]). Empty means 0 and 1.
	Mean, Std []float32
}

// IsIdentity reports whether p leaves values unchanged.
func (p Preprocess) IsIdentity() bool {
	if p.Scale != 0 && p.Scale != 1 {
		return false
	}
	for _, m := range p.Mean {
		if m != 0 {
			return false
		}
	}
	for _, s := range p.Std {
		if s != 1 {
			return false
		}
	}
	return true
}

// Validate checks that the values are finite and no Std is zero.
func (p Preprocess) Validate() error {
	if math.IsNaN(float64(p.Scale)) || math.IsInf(float64(p.Scale), 0) {
		return fmt.Errorf("scale %v is not a finite number", p.Scale)
	}
	for i, m := range p.Mean {
		if math.IsNaN(float64(m)) || math.IsInf(float64(m), 0) {
			return fmt.Errorf("mean value %d (%v) is not a finite number", i, m)
		}
	}
	for i, s := range p.Std {
		if s == 0 || math.IsNaN(float64(s)) || math.IsInf(float64(s), 0) {
			return fmt.Errorf("std value %d (%v) must be a finite non-zero number", i, s)
		}
	}
	return nil
}

// channels checks p against a batch shape and returns the number of
// channels (values of Mean/Std) and the inner size (elements per channel
// per example).
func (p Preprocess) channels(shape []int) (int, int, error) {
	if err := p.Validate(); err != nil {
		return 0, 0, err
	}
	c := max(len(p.Mean), len(p.Std))
	if c <= 1 {
		return 1, 0, nil
	}
	if (len(p.Mean) > 1 && len(p.Mean) != c) || (len(p.Std) > 1 && len(p.Std) != c) {
		return 0, 0, fmt.Errorf("mean has %d values and std %d; give one value or the same number of values for both", len(p.Mean), len(p.Std))
	}
	if len(shape) < 2 || shape[1] != c {
		return 0, 0, fmt.Errorf("%d per-channel mean/std values do not match the model input shape %v: axis 1 (channels) must have %d entries", c, shape, c)
	}
	return c, rt.NumElements(shape[2:]), nil
}

// Apply preprocesses x, laid out with the given batch shape [B, C, ...], in
// place.
func (p Preprocess) Apply(x []float32, shape []int) error {
	c, inner, err := p.channels(shape)
	if err != nil {
		return err
	}
	if p.IsIdentity() {
		return nil
	}
	scale := p.Scale
	if scale == 0 {
		scale = 1
	}
	at := func(v []float32, i int, def float32) float32 {
		switch len(v) {
		case 0:
			return def
		case 1:
			return v[0]
		}
		return v[i]
	}
	if c == 1 {
		m, s := at(p.Mean, 0, 0), at(p.Std, 0, 1)
		for i, v := range x {
			x[i] = (v*scale - m) / s
		}
		return nil
	}
	for off, ch := 0, 0; off < len(x); off, ch = off+inner, (ch+1)%c {
		m, s := at(p.Mean, ch, 0), at(p.Std, ch, 1)
		seg := x[off : off+inner]
		for i, v := range seg {
			seg[i] = (v*scale - m) / s
		}
	}
	return nil
}

// ParseFloats parses a comma-separated list of numbers such as
// "0.485,0.456,0.406" (an empty string gives nil).
func ParseFloats(s string) ([]float32, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return nil, nil
	}
	parts := strings.Split(s, ",")
	out := make([]float32, len(parts))
	for i, p := range parts {
		v, err := strconv.ParseFloat(strings.TrimSpace(p), 32)
		if err != nil {
			return nil, fmt.Errorf("%q is not a number (in %q)", strings.TrimSpace(p), s)
		}
		out[i] = float32(v)
	}
	return out, nil
}

// LoaderOptions configure a Loader.
type LoaderOptions struct {
	// BatchSize is the number of examples per batch (DefaultBatchSize if 0).
	BatchSize int
	// Shape is the per-example shape the model takes, without the batch
	// dimension; it must hold as many values as the data set's examples.
	// Nil means the data set's own shape.
	Shape []int
	// Preprocess is applied to every batch.
	Preprocess Preprocess
	// Limit uses only the first Limit examples (after shuffling); 0 means all.
	Limit int
	// Shuffle visits the examples in a random order drawn from Seed (the same
	// seed always gives the same order).
	Shuffle bool
	Seed    uint64
	// DropLast drops a last, incomplete batch.
	DropLast bool
	// Augment, when set and enabled, randomly transforms every example
	// (before preprocessing) as it is loaded; the examples must be images
	// (Shape of rank 2 or more: [... H W]). See Augment for how the draws
	// are seeded, and Loader.WithEpoch to vary them per epoch.
	Augment *Augment
}

// Loader cuts a Dataset into preprocessed batches shaped for a model.
type Loader struct {
	ds    Dataset
	opts  LoaderOptions
	shape []int // per-example shape
	size  int   // values per example
	order []int // data-set indices, in visiting order
}

// Batch is one batch of examples.
type Batch struct {
	// X holds the preprocessed examples, shape [B, Shape...].
	X *rt.Tensor
	// Labels holds the class of each example.
	Labels []int
	// Indices holds each example's index in the data set.
	Indices []int
	// Targets holds the regression targets, shape [B, K], when the data set
	// has them (see Targeter); nil otherwise.
	Targets *rt.Tensor

	scratch []float32 // augmentation buffer
}

// NewLoader prepares batches of ds.
func NewLoader(ds Dataset, opts LoaderOptions) (*Loader, error) {
	if ds == nil {
		return nil, fmt.Errorf("no data set")
	}
	if opts.BatchSize == 0 {
		opts.BatchSize = DefaultBatchSize
	}
	if opts.BatchSize < 0 {
		return nil, fmt.Errorf("batch size %d: must be positive", opts.BatchSize)
	}
	if opts.Limit < 0 {
		return nil, fmt.Errorf("limit %d: must not be negative", opts.Limit)
	}
	if err := opts.Preprocess.Validate(); err != nil {
		return nil, err
	}
	if err := opts.Augment.Validate(); err != nil {
		return nil, err
	}
	dsShape := ds.Shape()
	shape := dsShape
	if opts.Shape != nil {
		shape = append([]int{}, opts.Shape...)
		if err := rt.CheckShape(shape); err != nil {
			return nil, fmt.Errorf("example shape: %w", err)
		}
		if rt.NumElements(shape) != rt.NumElements(dsShape) {
			return nil, fmt.Errorf("%s has examples of shape %v (%d values) but the model takes %v (%d values) per example; use data of the model's input size",
				Name(ds), dsShape, rt.NumElements(dsShape), shape, rt.NumElements(shape))
		}
	}
	if _, _, err := opts.Preprocess.channels(append([]int{1}, shape...)); err != nil {
		return nil, err
	}
	if opts.Augment.Enabled() {
		if _, _, _, err := augShape(shape); err != nil {
			return nil, err
		}
		a := *opts.Augment
		opts.Augment = &a
	}
	n := ds.Len()
	order := make([]int, n)
	for i := range order {
		order[i] = i
	}
	if opts.Shuffle {
		r := rand.New(rand.NewPCG(opts.Seed, 0x636f6d7072657373)) // "compress"
		r.Shuffle(n, func(i, j int) { order[i], order[j] = order[j], order[i] })
	}
	if opts.Limit > 0 && opts.Limit < n {
		order = order[:opts.Limit]
	}
	return &Loader{ds: ds, opts: opts, shape: shape, size: rt.NumElements(shape), order: order}, nil
}

// Len is the number of examples the loader visits.
func (l *Loader) Len() int {
	if l.opts.DropLast {
		return len(l.order) / l.opts.BatchSize * l.opts.BatchSize
	}
	return len(l.order)
}

// NumBatches is the number of batches.
func (l *Loader) NumBatches() int {
	bs := l.opts.BatchSize
	if l.opts.DropLast {
		return len(l.order) / bs
	}
	return (len(l.order) + bs - 1) / bs
}

// WithEpoch returns a loader over the same examples, in the same order,
// whose augmentation draws are those of epoch e (l itself when it does not
// augment). It is cheap: the visiting order is shared.
func (l *Loader) WithEpoch(e int) *Loader {
	if !l.opts.Augment.Enabled() {
		return l
	}
	c := *l
	a := *l.opts.Augment
	a.Epoch = e
	c.opts.Augment = &a
	return &c
}

// BatchSize is the number of examples of a full batch.
func (l *Loader) BatchSize() int { return l.opts.BatchSize }

// Shape is the per-example shape of the batches.
func (l *Loader) Shape() []int { return append([]int{}, l.shape...) }

// Batch fills batch i (0 <= i < NumBatches()). It reuses dst's buffers when
// dst is not nil (the returned batch is then dst) and allocates otherwise.
// Concurrent calls are safe when they use distinct dst.
func (l *Loader) Batch(i int, dst *Batch) (*Batch, error) {
	if i < 0 || i >= l.NumBatches() {
		return nil, fmt.Errorf("batch %d out of range [0, %d)", i, l.NumBatches())
	}
	bs := l.opts.BatchSize
	lo, hi := i*bs, min((i+1)*bs, len(l.order))
	b := hi - lo
	if dst == nil {
		dst = &Batch{}
	}
	shape := append([]int{b}, l.shape...)
	need := b * l.size
	if dst.X == nil || cap(dst.X.F32) < need {
		dst.X = &rt.Tensor{DType: rt.Float32, F32: make([]float32, need)}
	}
	dst.X.DType = rt.Float32
	dst.X.Shape = shape
	dst.X.F32 = dst.X.F32[:need]
	dst.Labels = append(dst.Labels[:0], make([]int, b)...)
	dst.Indices = append(dst.Indices[:0], l.order[lo:hi]...)
	aug := l.opts.Augment
	for j, idx := range dst.Indices {
		xj := dst.X.F32[j*l.size : (j+1)*l.size]
		label, err := l.ds.Example(idx, xj)
		if err != nil {
			return nil, err
		}
		dst.Labels[j] = label
		if aug.Enabled() {
			if dst.scratch, err = aug.apply(xj, l.shape, rootIndex(l.ds, idx), dst.scratch); err != nil {
				return nil, err
			}
		}
	}
	if k, ok := HasTargets(l.ds); !ok {
		dst.Targets = nil
	} else {
		tg := l.ds.(Targeter)
		if dst.Targets == nil || cap(dst.Targets.F32) < b*k {
			dst.Targets = &rt.Tensor{DType: rt.Float32, F32: make([]float32, b*k)}
		}
		dst.Targets.Shape = []int{b, k}
		dst.Targets.F32 = dst.Targets.F32[:b*k]
		for j, idx := range dst.Indices {
			if err := tg.Targets(idx, dst.Targets.F32[j*k:(j+1)*k]); err != nil {
				return nil, err
			}
		}
	}
	if err := l.opts.Preprocess.Apply(dst.X.F32, shape); err != nil {
		return nil, err
	}
	return dst, nil
}
