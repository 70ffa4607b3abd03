package runtime

// Data-movement operators that copy elements into a new layout: Transpose,
// Slice and Tile (all three through one strided-copy engine), Concat, Split,
// Gather and Pad. Every one accepts all runtime dtypes and splits big copies
// into disjoint output ranges with parallel.For, so results do not depend on
// the thread count.

import (
	"fmt"

	"github.com/compressml/compress/internal/parallel"
)

func init() {
	Register(OpSpec{Type: "Transpose", MinInputs: 1, MaxInputs: 1, Compile: compileTranspose, Grad: gradTranspose})
	Register(OpSpec{Type: "Slice", MinInputs: 3, MaxInputs: 5, Compile: compileSlice, Grad: gradSlice, StaticInputs: []int{1, 2, 3, 4}, NonDiff: []int{1, 2, 3, 4}})
	Register(OpSpec{Type: "Tile", MinInputs: 2, MaxInputs: 2, Compile: compileTile, Grad: gradTile, StaticInputs: []int{1}, NonDiff: []int{1}})
	Register(OpSpec{Type: "Concat", MinInputs: 1, Compile: compileConcat, Grad: gradConcat})
	Register(OpSpec{Type: "Split", MinInputs: 1, MaxInputs: 2, Outputs: splitMaxOutputs, Compile: compileSplit, Grad: gradSplit, StaticInputs: []int{1}, NonDiff: []int{1}})
	Register(OpSpec{Type: "Gather", MinInputs: 2, MaxInputs: 2, Compile: compileGather, Grad: gradGather, NonDiff: []int{1}})
	Register(OpSpec{Type: "Pad", MinInputs: 2, MaxInputs: 4, Compile: compilePad, Grad: gradPad, StaticInputs: []int{1, 3}, NonDiff: []int{1, 2, 3}})
}

// splitMaxOutputs bounds the number of outputs of a Split node.
const splitMaxOutputs = 1024

// stridedBlock is the tile edge of the blocked 2-D transpose.
const stridedBlock = 64

// stridedKernel copies out[i] = in[base + sum_d idx_d(i)*istr[d]], where
// idx(i) is the row-major multi-index of output element i over sizes. Input
// strides may be negative (Slice with negative steps) or zero (Tile).
// Dimensions of size 1 are dropped and mergeable neighbours fused at compile
// time, so e.g. NCHW->NHWC becomes a batched 2-D transpose and a Slice of
// whole rows a series of contiguous copies.
//
// The same walk serves the backward passes (gradTranspose and the others at
// the end of this file): with a row function it adds instead of copying,
// either gathering (lin[i] += str[off(i)]) or scattering (str[off(i)] +=
// lin[i], for maps that never hit an element twice), where lin is the array
// indexed in row-major order of sizes and str the strided one.
type stridedKernel struct {
	base  int
	sizes []int // reduced output dimensions
	istr  []int // input stride of each reduced output dimension
	ostr  []int // output strides of the reduced shape
	n     int   // number of output elements
	tileJ int   // output dim with input stride 1 for the blocked 2-D path, or -1
}

func newStrided(base int, sizes, istr []int) *stridedKernel {
	k := &stridedKernel{base: base, n: NumElements(sizes), tileJ: -1}
	for d, sz := range sizes {
		if sz == 1 {
			continue
		}
		if last := len(k.sizes) - 1; last >= 0 && k.istr[last] == istr[d]*sz {
			k.sizes[last] *= sz
			k.istr[last] = istr[d]
			continue
		}
		k.sizes = append(k.sizes, sz)
		k.istr = append(k.istr, istr[d])
	}
	k.ostr = Strides(k.sizes)
	if r := len(k.sizes); r >= 2 && k.istr[r-1] != 1 && k.sizes[r-1] >= 4 {
		for j := 0; j < r-1; j++ {
			if k.istr[j] == 1 && k.sizes[j] >= 4 {
				k.tileJ = j
			}
		}
	}
	return k
}

// Run copies input 0 into output 0.
func (k *stridedKernel) Run(ctx *ExecContext, in, out []*Tensor) error {
	switch in[0].DType {
	case Float32:
		stridedRun(k, ctx.Threads, out[0].F32, in[0].F32, nil)
	case Int8:
		stridedRun(k, ctx.Threads, out[0].I8, in[0].I8, nil)
	case Uint8:
		stridedRun(k, ctx.Threads, out[0].U8, in[0].U8, nil)
	case Int32:
		stridedRun(k, ctx.Threads, out[0].I32, in[0].I32, nil)
	case Int64:
		stridedRun(k, ctx.Threads, out[0].I64, in[0].I64, nil)
	case Bool:
		stridedRun(k, ctx.Threads, out[0].B, in[0].B, nil)
	default:
		return fmt.Errorf("unsupported dtype %v", in[0].DType)
	}
	return nil
}

// stridedRowFn combines one row of the linear array (lin, walked
// contiguously) with the elements str[off + i*step] of the strided array.
// The backward passes use it to add instead of copy.
type stridedRowFn[T mvElem] func(lin, str []T, off, step int)

// mvSerial reports whether parallel.For(threads, n, grain, ...) would run
// on the calling goroutine; callers then skip building a closure, so a
// single-threaded run allocates nothing.
func mvSerial(threads, n, grain int) bool { return threads <= 1 || n <= grain }

// stridedRun walks the k.n elements of dst (the linear array) against src
// (the strided one). With row nil it copies (dst[i] = src[off(i)]);
// otherwise it calls row for every run of consecutive dst elements.
func stridedRun[T mvElem](k *stridedKernel, threads int, dst, src []T, row stridedRowFn[T]) {
	r := len(k.sizes)
	switch {
	case k.n == 0:
		return
	case r == 0:
		if row != nil {
			row(dst[:1], src, k.base, 0)
		} else {
			dst[0] = src[k.base]
		}
		return
	case k.tileJ >= 0:
		stridedTiled(k, threads, dst, src, row)
		return
	}
	// Row by row over the last dimension; the outer dimensions are walked
	// with an odometer within each chunk.
	rows := k.n / k.sizes[r-1]
	grain := max(1, mvGrain/k.sizes[r-1])
	if mvSerial(threads, rows, grain) {
		stridedRows(k, dst, src, row, 0, rows)
		return
	}
	parallel.For(threads, rows, grain, func(lo, hi int) { stridedRows(k, dst, src, row, lo, hi) })
}

// stridedRows does rows [lo, hi) of the last dimension for stridedRun.
func stridedRows[T mvElem](k *stridedKernel, dst, src []T, row stridedRowFn[T], lo, hi int) {
	r := len(k.sizes)
	inner, step := k.sizes[r-1], k.istr[r-1]
	outer, ostrIn := k.sizes[:r-1], k.istr[:r-1]
	var idxBuf [8]int
	idx := idxBuf[:0]
	if len(outer) <= len(idxBuf) {
		idx = idxBuf[:len(outer)]
	} else {
		idx = make([]int, len(outer))
	}
	off := k.base
	rem := lo
	for d := len(outer) - 1; d >= 0; d-- {
		idx[d] = rem % outer[d]
		rem /= outer[d]
		off += idx[d] * ostrIn[d]
	}
	for ri := lo; ri < hi; ri++ {
		d := dst[ri*inner : (ri+1)*inner]
		if row != nil {
			row(d, src, off, step)
		} else if step == 1 {
			copy(d, src[off:off+inner])
		} else {
			s := off
			for i := range d {
				d[i] = src[s]
				s += step
			}
		}
		for a := len(outer) - 1; a >= 0; a-- {
			idx[a]++
			off += ostrIn[a]
			if idx[a] < outer[a] {
				break
			}
			off -= idx[a] * ostrIn[a]
			idx[a] = 0
		}
	}
}

// stridedTiled is the blocked 2-D transpose: output dim tileJ reads input
// contiguously and the last output dim writes contiguously; both are walked
// in stridedBlock x stridedBlock tiles so reads and writes stay in cache.
func stridedTiled[T mvElem](k *stridedKernel, threads int, dst, src []T, row stridedRowFn[T]) {
	r := len(k.sizes)
	sizeJ, sizeL := k.sizes[k.tileJ], k.sizes[r-1]
	nJB := (sizeJ + stridedBlock - 1) / stridedBlock
	items := k.n / (sizeJ * sizeL) * nJB
	grain := max(1, mvGrain/(stridedBlock*sizeL))
	if mvSerial(threads, items, grain) {
		stridedTiles(k, dst, src, row, 0, items)
		return
	}
	parallel.For(threads, items, grain, func(lo, hi int) { stridedTiles(k, dst, src, row, lo, hi) })
}

// stridedTiles does tile items [lo, hi) for stridedTiled: an item is one
// position of the other dimensions and one block of dimension tileJ.
func stridedTiles[T mvElem](k *stridedKernel, dst, src []T, row stridedRowFn[T], lo, hi int) {
	r := len(k.sizes)
	J, L := k.tileJ, r-1
	sizeJ, sizeL, strL, ostrJ := k.sizes[J], k.sizes[L], k.istr[L], k.ostr[J]
	nJB := (sizeJ + stridedBlock - 1) / stridedBlock
	for it := lo; it < hi; it++ {
		o, jb := it/nJB, it%nJB
		ioff, ooff := k.base, 0
		for d := r - 2; d >= 0; d-- {
			if d == J {
				continue
			}
			i := o % k.sizes[d]
			o /= k.sizes[d]
			ioff += i * k.istr[d]
			ooff += i * k.ostr[d]
		}
		j0 := jb * stridedBlock
		j1 := min(j0+stridedBlock, sizeJ)
		for l0 := 0; l0 < sizeL; l0 += stridedBlock {
			l1 := min(l0+stridedBlock, sizeL)
			for j := j0; j < j1; j++ {
				s := ioff + j + l0*strL
				d := dst[ooff+j*ostrJ+l0 : ooff+j*ostrJ+l1]
				if row != nil {
					row(d, src, s, strL)
					continue
				}
				for l := range d {
					d[l] = src[s]
					s += strL
				}
			}
		}
	}
}

func compileTranspose(n *Node, in []ValueMeta) (Kernel, []ValueMeta, error) {
	if err := mvRequire(in, 0); err != nil {
		return nil, nil, err
	}
	if err := mvCheckDType("input 0", in[0].DType); err != nil {
		return nil, nil, err
	}
	shape := in[0].Shape
	r := len(shape)
	perm := n.AttrInts("perm", nil)
	if perm == nil {
		perm = make([]int64, r)
		for i := range perm {
			perm[i] = int64(r - 1 - i)
		}
	}
	if len(perm) != r {
		return nil, nil, fmt.Errorf("perm %v has %d entries, the input %v has rank %d", perm, len(perm), shape, r)
	}
	seen := make([]bool, r)
	for _, p := range perm {
		if p < 0 || p >= int64(r) {
			return nil, nil, fmt.Errorf("perm %v has entry %d, out of range 0..%d", perm, p, r-1)
		}
		if seen[p] {
			return nil, nil, fmt.Errorf("perm %v is not a permutation: %d appears twice", perm, p)
		}
		seen[p] = true
	}
	st := Strides(shape)
	outShape := make([]int, r)
	istr := make([]int, r)
	for i, p := range perm {
		outShape[i] = shape[p]
		istr[i] = st[p]
	}
	return newStrided(0, outShape, istr), []ValueMeta{{DType: in[0].DType, Shape: outShape}}, nil
}

func compileSlice(n *Node, in []ValueMeta) (Kernel, []ValueMeta, error) {
	if err := mvRequire(in, 0, 1, 2); err != nil {
		return nil, nil, err
	}
	if err := mvCheckDType("input 0", in[0].DType); err != nil {
		return nil, nil, err
	}
	shape := in[0].Shape
	r := len(shape)
	starts, _, err := mvConstInts(in, 1, "starts")
	if err != nil {
		return nil, nil, err
	}
	ends, _, err := mvConstInts(in, 2, "ends")
	if err != nil {
		return nil, nil, err
	}
	if len(starts) != len(ends) {
		return nil, nil, fmt.Errorf("starts has %d values, ends %d: they must match", len(starts), len(ends))
	}
	axesIn, hasAxes, err := mvConstInts(in, 3, "axes")
	if err != nil {
		return nil, nil, err
	}
	steps, hasSteps, err := mvConstInts(in, 4, "steps")
	if err != nil {
		return nil, nil, err
	}
	var axes []int
	if hasAxes {
		if len(axesIn) != len(starts) {
			return nil, nil, fmt.Errorf("axes has %d values, starts %d: they must match", len(axesIn), len(starts))
		}
		if axes, err = mvAxes(axesIn, r, "axes"); err != nil {
			return nil, nil, err
		}
	} else {
		if len(starts) > r {
			return nil, nil, fmt.Errorf("starts has %d values but the input %v has rank %d", len(starts), shape, r)
		}
		axes = make([]int, len(starts))
		for i := range axes {
			axes[i] = i
		}
	}
	if hasSteps && len(steps) != len(starts) {
		return nil, nil, fmt.Errorf("steps has %d values, starts %d: they must match", len(steps), len(starts))
	}
	begin := make([]int, r)
	stride := make([]int, r)
	outShape := append([]int{}, shape...)
	for i := range stride {
		stride[i] = 1
	}
	for i, a := range axes {
		step := int64(1)
		if hasSteps {
			step = steps[i]
		}
		if step == 0 {
			return nil, nil, fmt.Errorf("steps[%d] is 0", i)
		}
		b, st, cnt := sliceRange(starts[i], ends[i], step, int64(shape[a]))
		begin[a], stride[a], outShape[a] = int(b), int(st), int(cnt)
	}
	st := Strides(shape)
	base := 0
	istr := make([]int, r)
	for d := range shape {
		base += begin[d] * st[d]
		istr[d] = stride[d] * st[d]
	}
	return newStrided(base, outShape, istr), []ValueMeta{{DType: in[0].DType, Shape: outShape}}, nil
}

// sliceRange clamps start and end to a dimension of size dim as ONNX Slice
// does and returns the first index, the (bounded) step and the number of
// elements taken.
func sliceRange(start, end, step, dim int64) (first, stepOut, count int64) {
	// A step longer than the axis takes at most one element; bounding it
	// keeps the arithmetic below from overflowing.
	step = min(max(step, -dim-1), dim+1)
	if start < 0 {
		start += dim
	}
	if end < 0 {
		end += dim
	}
	if step > 0 {
		start = min(max(start, 0), dim)
		end = min(max(end, 0), dim)
		if end <= start {
			return 0, step, 0
		}
		return start, step, (end - start + step - 1) / step
	}
	start = min(max(start, 0), dim-1)
	end = min(max(end, -1), dim-1)
	if end >= start {
		return 0, step, 0
	}
	return start, step, (start - end - step - 1) / -step
}

func compileTile(n *Node, in []ValueMeta) (Kernel, []ValueMeta, error) {
	if err := mvRequire(in, 0, 1); err != nil {
		return nil, nil, err
	}
	if err := mvCheckDType("input 0", in[0].DType); err != nil {
		return nil, nil, err
	}
	shape := in[0].Shape
	reps, _, err := mvConstInts(in, 1, "repeats")
	if err != nil {
		return nil, nil, err
	}
	if len(reps) != len(shape) {
		return nil, nil, fmt.Errorf("repeats %v has %d values, the input %v has rank %d", reps, len(reps), shape, len(shape))
	}
	st := Strides(shape)
	outShape := make([]int, len(shape))
	// The output seen as [rep0, dim0, rep1, dim1, ...] reads the input with
	// stride 0 along every rep axis.
	sizes := make([]int, 0, 2*len(shape))
	istr := make([]int, 0, 2*len(shape))
	for d, rp := range reps {
		if rp < 0 || rp > MaxElements {
			return nil, nil, fmt.Errorf("repeats %v has an invalid value %d", reps, rp)
		}
		if shape[d] > 0 && int(rp) > MaxElements/shape[d] {
			return nil, nil, fmt.Errorf("repeats %v make the output too large", reps)
		}
		outShape[d] = shape[d] * int(rp)
		sizes = append(sizes, int(rp), shape[d])
		istr = append(istr, 0, st[d])
	}
	if err := CheckShape(outShape); err != nil {
		return nil, nil, err
	}
	return newStrided(0, sizes, istr), []ValueMeta{{DType: in[0].DType, Shape: outShape}}, nil
}

// concatKernel joins its inputs along an axis: the output is outer rows,
// each the concatenation of one chunk of every input.
type concatKernel struct {
	outer  int
	chunks []int // elements per row of each input
	rowLen int
}

func compileConcat(n *Node, in []ValueMeta) (Kernel, []ValueMeta, error) {
	for i, m := range in {
		if m.DType == Undefined {
			return nil, nil, fmt.Errorf("input %d is missing: Concat inputs are not optional", i)
		}
	}
	ref := in[0]
	if err := mvCheckDType("input 0", ref.DType); err != nil {
		return nil, nil, err
	}
	r := len(ref.Shape)
	if r == 0 {
		return nil, nil, fmt.Errorf("cannot concatenate scalars (rank 0)")
	}
	axisAttr, ok := n.Attrs["axis"]
	if !ok || axisAttr.Kind != AttrInt {
		return nil, nil, fmt.Errorf("the axis attribute is required")
	}
	axis, err := mvAxis(axisAttr.I, r, "axis")
	if err != nil {
		return nil, nil, err
	}
	inner := NumElements(ref.Shape[axis+1:])
	outShape := append([]int{}, ref.Shape...)
	outShape[axis] = 0
	k := &concatKernel{outer: NumElements(ref.Shape[:axis]), chunks: make([]int, len(in))}
	for i, m := range in {
		if m.DType != ref.DType {
			return nil, nil, fmt.Errorf("input %d is %v but input 0 is %v", i, m.DType, ref.DType)
		}
		if len(m.Shape) != r {
			return nil, nil, fmt.Errorf("input %d has shape %v, rank %d; input 0 %v has rank %d", i, m.Shape, len(m.Shape), ref.Shape, r)
		}
		for d := range m.Shape {
			if d != axis && m.Shape[d] != ref.Shape[d] {
				return nil, nil, fmt.Errorf("input %d has shape %v, input 0 %v: they differ in dimension %d, not only in the concat axis %d", i, m.Shape, ref.Shape, d, axis)
			}
		}
		outShape[axis] += m.Shape[axis]
		k.chunks[i] = m.Shape[axis] * inner
		k.rowLen += k.chunks[i]
	}
	if err := CheckShape(outShape); err != nil {
		return nil, nil, err
	}
	return k, []ValueMeta{{DType: ref.DType, Shape: outShape}}, nil
}

// Run copies each input's rows into place.
func (k *concatKernel) Run(ctx *ExecContext, in, out []*Tensor) error {
	switch out[0].DType {
	case Float32:
		concatRun(k, ctx.Threads, out[0].F32, in)
	case Int8:
		concatRun(k, ctx.Threads, out[0].I8, in)
	case Uint8:
		concatRun(k, ctx.Threads, out[0].U8, in)
	case Int32:
		concatRun(k, ctx.Threads, out[0].I32, in)
	case Int64:
		concatRun(k, ctx.Threads, out[0].I64, in)
	case Bool:
		concatRun(k, ctx.Threads, out[0].B, in)
	default:
		return fmt.Errorf("unsupported dtype %v", out[0].DType)
	}
	return nil
}

func concatRun[T mvElem](k *concatKernel, threads int, dst []T, in []*Tensor) {
	srcs := make([][]T, len(in))
	for i, t := range in {
		srcs[i] = mvData[T](t)
	}
	parallel.For(threads, k.outer, max(1, mvGrain/max(k.rowLen, 1)), func(lo, hi int) {
		for o := lo; o < hi; o++ {
			off := o * k.rowLen
			for i, s := range srcs {
				c := k.chunks[i]
				copy(dst[off:off+c], s[o*c:(o+1)*c])
				off += c
			}
		}
	})
}

// splitKernel is the inverse of concatKernel.
type splitKernel concatKernel

func compileSplit(n *Node, in []ValueMeta) (Kernel, []ValueMeta, error) {
	if err := mvRequire(in, 0); err != nil {
		return nil, nil, err
	}
	if err := mvCheckDType("input 0", in[0].DType); err != nil {
		return nil, nil, err
	}
	shape := in[0].Shape
	r := len(shape)
	if r == 0 {
		return nil, nil, fmt.Errorf("cannot split a scalar (rank 0)")
	}
	axis, err := mvAxis(n.AttrInt("axis", 0), r, "axis")
	if err != nil {
		return nil, nil, err
	}
	nOut := len(n.Outputs)
	if nOut == 0 {
		return nil, nil, fmt.Errorf("has no outputs")
	}
	dim := shape[axis]
	sizes, hasSplit, err := mvConstInts(in, 1, "split")
	if err != nil {
		return nil, nil, err
	}
	parts := make([]int, nOut)
	numOut, hasNum := n.Attrs["num_outputs"]
	switch {
	case hasSplit && hasNum:
		return nil, nil, fmt.Errorf("has both the split input and the num_outputs attribute; give only one")
	case hasSplit:
		if len(sizes) != nOut {
			return nil, nil, fmt.Errorf("split %v has %d values, the node has %d outputs", sizes, len(sizes), nOut)
		}
		sum := int64(0)
		for i, s := range sizes {
			if s < 0 || s > MaxElements {
				return nil, nil, fmt.Errorf("split %v has an invalid size %d", sizes, s)
			}
			parts[i] = int(s)
			sum += s
		}
		if sum != int64(dim) {
			return nil, nil, fmt.Errorf("split %v sums to %d, axis %d of shape %v has %d", sizes, sum, axis, shape, dim)
		}
	case hasNum:
		if numOut.Kind != AttrInt || numOut.I != int64(nOut) {
			return nil, nil, fmt.Errorf("num_outputs %d does not match the %d outputs of the node", numOut.I, nOut)
		}
		chunk := (dim + nOut - 1) / nOut
		left := dim
		for i := range parts {
			parts[i] = min(chunk, left)
			left -= parts[i]
		}
	default:
		if dim%nOut != 0 {
			return nil, nil, fmt.Errorf("axis %d of shape %v (size %d) cannot be split evenly into %d outputs; give split sizes", axis, shape, dim, nOut)
		}
		for i := range parts {
			parts[i] = dim / nOut
		}
	}
	inner := NumElements(shape[axis+1:])
	k := &splitKernel{outer: NumElements(shape[:axis]), chunks: make([]int, nOut), rowLen: dim * inner}
	outs := make([]ValueMeta, nOut)
	for i, p := range parts {
		s := append([]int{}, shape...)
		s[axis] = p
		outs[i] = ValueMeta{DType: in[0].DType, Shape: s}
		k.chunks[i] = p * inner
	}
	return k, outs, nil
}

// Run copies each output's rows out of the input.
func (k *splitKernel) Run(ctx *ExecContext, in, out []*Tensor) error {
	switch in[0].DType {
	case Float32:
		splitRun(k, ctx.Threads, in[0].F32, out)
	case Int8:
		splitRun(k, ctx.Threads, in[0].I8, out)
	case Uint8:
		splitRun(k, ctx.Threads, in[0].U8, out)
	case Int32:
		splitRun(k, ctx.Threads, in[0].I32, out)
	case Int64:
		splitRun(k, ctx.Threads, in[0].I64, out)
	case Bool:
		splitRun(k, ctx.Threads, in[0].B, out)
	default:
		return fmt.Errorf("unsupported dtype %v", in[0].DType)
	}
	return nil
}

func splitRun[T mvElem](k *splitKernel, threads int, src []T, out []*Tensor) {
	dsts := make([][]T, len(k.chunks))
	for i := range dsts {
		if i < len(out) && out[i] != nil { // absent outputs are skipped
			dsts[i] = mvData[T](out[i])
		}
	}
	parallel.For(threads, k.outer, max(1, mvGrain/max(k.rowLen, 1)), func(lo, hi int) {
		for o := lo; o < hi; o++ {
			off := o * k.rowLen
			for i, d := range dsts {
				c := k.chunks[i]
				if d != nil {
					copy(d[o*c:(o+1)*c], src[off:off+c])
				}
				off += c
			}
		}
	})
}

// gatherKernel picks slices of the data along axis by index.
type gatherKernel struct {
	axis                int
	outer, dim, inner   int
	nIdx                int
	validatedAtPlanTime bool
}

func compileGather(n *Node, in []ValueMeta) (Kernel, []ValueMeta, error) {
	if err := mvRequire(in, 0, 1); err != nil {
		return nil, nil, err
	}
	if err := mvCheckDType("data (input 0)", in[0].DType); err != nil {
		return nil, nil, err
	}
	if in[1].DType != Int32 && in[1].DType != Int64 {
		return nil, nil, fmt.Errorf("indices (input 1) must be int32 or int64, got %v", in[1].DType)
	}
	shape := in[0].Shape
	r := len(shape)
	if r == 0 {
		return nil, nil, fmt.Errorf("data must have rank >= 1, got a scalar")
	}
	axis, err := mvAxis(n.AttrInt("axis", 0), r, "axis")
	if err != nil {
		return nil, nil, err
	}
	k := &gatherKernel{axis: axis, outer: NumElements(shape[:axis]), dim: shape[axis],
		inner: NumElements(shape[axis+1:]), nIdx: NumElements(in[1].Shape)}
	if c := in[1].Const; c != nil {
		if err := k.checkIndices(c); err != nil {
			return nil, nil, err
		}
	}
	outShape := append(append(append([]int{}, shape[:axis]...), in[1].Shape...), shape[axis+1:]...)
	if err := CheckShape(outShape); err != nil {
		return nil, nil, err
	}
	return k, []ValueMeta{{DType: in[0].DType, Shape: outShape}}, nil
}

func (k *gatherKernel) checkIndices(t *Tensor) error {
	if t.DType == Int32 {
		return gatherCheck(k, t.I32)
	}
	return gatherCheck(k, t.I64)
}

func gatherCheck[I int32 | int64](k *gatherKernel, idx []I) error {
	for p, v := range idx {
		if int64(v) < -int64(k.dim) || int64(v) >= int64(k.dim) {
			return fmt.Errorf("index %d at position %d of indices is out of range for axis %d of size %d (valid: %d..%d)", v, p, k.axis, k.dim, -k.dim, k.dim-1)
		}
	}
	return nil
}

// Run validates the indices and copies the selected slices.
func (k *gatherKernel) Run(ctx *ExecContext, in, out []*Tensor) error {
	if err := k.checkIndices(in[1]); err != nil {
		return err
	}
	if in[1].DType == Int32 {
		return gatherDispatch(k, ctx.Threads, in[0], out[0], in[1].I32)
	}
	return gatherDispatch(k, ctx.Threads, in[0], out[0], in[1].I64)
}

func gatherDispatch[I int32 | int64](k *gatherKernel, threads int, src, dst *Tensor, idx []I) error {
	switch src.DType {
	case Float32:
		gatherRun(k, threads, dst.F32, src.F32, idx)
	case Int8:
		gatherRun(k, threads, dst.I8, src.I8, idx)
	case Uint8:
		gatherRun(k, threads, dst.U8, src.U8, idx)
	case Int32:
		gatherRun(k, threads, dst.I32, src.I32, idx)
	case Int64:
		gatherRun(k, threads, dst.I64, src.I64, idx)
	case Bool:
		gatherRun(k, threads, dst.B, src.B, idx)
	default:
		return fmt.Errorf("unsupported dtype %v", src.DType)
	}
	return nil
}

func gatherRun[T mvElem, I int32 | int64](k *gatherKernel, threads int, dst, src []T, idx []I) {
	inner := k.inner
	parallel.For(threads, k.outer*k.nIdx, max(1, mvGrain/max(inner, 1)), func(lo, hi int) {
		for it := lo; it < hi; it++ {
			o, j := it/k.nIdx, it%k.nIdx
			v := int(idx[j])
			if v < 0 {
				v += k.dim
			}
			s := (o*k.dim + v) * inner
			copy(dst[it*inner:(it+1)*inner], src[s:s+inner])
		}
	})
}

// padKernel maps every output coordinate of each dimension to an input
// coordinate (-1: the constant value). Rows of the last dimension are
// filled from the per-dimension maps.
type padKernel struct {
	maps  [][]int // per dimension, output index -> input index or -1
	istr  []int
	osize []int
	n     int
}

func compilePad(n *Node, in []ValueMeta) (Kernel, []ValueMeta, error) {
	if err := mvRequire(in, 0, 1); err != nil {
		return nil, nil, err
	}
	if err := mvCheckDType("data (input 0)", in[0].DType); err != nil {
		return nil, nil, err
	}
	shape := in[0].Shape
	r := len(shape)
	mode := n.AttrString("mode", "constant")
	switch mode {
	case "constant", "reflect", "edge", "wrap":
	default:
		return nil, nil, fmt.Errorf("mode %q is not supported (constant, reflect, edge or wrap)", mode)
	}
	if in[1].DType != Undefined && in[1].Const == nil {
		return nil, nil, fmt.Errorf("Pad needs pads (input 1) known at plan time; make it an initializer or fold the subgraph that computes it")
	}
	pads, _, err := mvConstInts(in, 1, "pads")
	if err != nil {
		return nil, nil, err
	}
	if len(in) > 2 && in[2].DType != Undefined {
		if in[2].DType != in[0].DType {
			return nil, nil, fmt.Errorf("constant_value (input 2) is %v, data is %v: they must match", in[2].DType, in[0].DType)
		}
		if NumElements(in[2].Shape) > 1 {
			return nil, nil, fmt.Errorf("constant_value (input 2) must be a scalar, got shape %v", in[2].Shape)
		}
	}
	axesIn, hasAxes, err := mvConstInts(in, 3, "axes")
	if err != nil {
		return nil, nil, err
	}
	axes := make([]int, r)
	for i := range axes {
		axes[i] = i
	}
	if hasAxes {
		if axes, err = mvAxes(axesIn, r, "axes"); err != nil {
			return nil, nil, err
		}
	}
	if len(pads) != 2*len(axes) {
		return nil, nil, fmt.Errorf("pads %v has %d values, need 2 per padded axis (%d)", pads, len(pads), 2*len(axes))
	}
	begin := make([]int64, r)
	end := make([]int64, r)
	for i, a := range axes {
		begin[a], end[a] = pads[i], pads[i+len(axes)]
	}
	k := &padKernel{maps: make([][]int, r), istr: Strides(shape), osize: make([]int, r)}
	for d := range shape {
		dim := int64(shape[d])
		if begin[d] < -dim || end[d] < -dim || begin[d] > MaxElements || end[d] > MaxElements {
			return nil, nil, fmt.Errorf("pads %v are out of range for axis %d of shape %v", pads, d, shape)
		}
		od := dim + begin[d] + end[d]
		if od < 0 {
			return nil, nil, fmt.Errorf("pads %v remove more than the %d elements of axis %d of shape %v", pads, dim, d, shape)
		}
		if od > dim && dim == 0 && mode != "constant" {
			return nil, nil, fmt.Errorf("cannot pad the empty axis %d of shape %v in %s mode", d, shape, mode)
		}
		k.osize[d] = int(od)
	}
	if err := CheckShape(k.osize); err != nil {
		return nil, nil, err
	}
	for d, od := range k.osize {
		m := make([]int, od)
		for o := range m {
			m[o] = padIndex(int64(o)-begin[d], int64(shape[d]), mode)
		}
		k.maps[d] = m
	}
	k.n = NumElements(k.osize)
	return k, []ValueMeta{{DType: in[0].DType, Shape: k.osize}}, nil
}

// padIndex maps a coordinate i of a padded axis of size dim (> 0 unless the
// mode is constant) to the input coordinate it reads, or -1 for the
// constant value.
func padIndex(i, dim int64, mode string) int {
	if i >= 0 && i < dim {
		return int(i)
	}
	switch mode {
	case "edge":
		return int(min(max(i, 0), dim-1))
	case "wrap":
		return int(((i % dim) + dim) % dim)
	case "reflect":
		if dim == 1 {
			return 0
		}
		p := 2 * (dim - 1)
		i = ((i % p) + p) % p
		if i >= dim {
			i = p - i
		}
		return int(i)
	}
	return -1
}

// Run fills the output.
func (k *padKernel) Run(ctx *ExecContext, in, out []*Tensor) error {
	var cv *Tensor
	if len(in) > 2 && in[2] != nil && in[2].Len() > 0 {
		cv = in[2]
	}
	switch in[0].DType {
	case Float32:
		padRun(k, ctx.Threads, out[0].F32, in[0].F32, cv)
	case Int8:
		padRun(k, ctx.Threads, out[0].I8, in[0].I8, cv)
	case Uint8:
		padRun(k, ctx.Threads, out[0].U8, in[0].U8, cv)
	case Int32:
		padRun(k, ctx.Threads, out[0].I32, in[0].I32, cv)
	case Int64:
		padRun(k, ctx.Threads, out[0].I64, in[0].I64, cv)
	case Bool:
		padRun(k, ctx.Threads, out[0].B, in[0].B, cv)
	default:
		return fmt.Errorf("unsupported dtype %v", in[0].DType)
	}
	return nil
}

func padRun[T mvElem](k *padKernel, threads int, dst, src []T, cv *Tensor) {
	var c T
	if cv != nil {
		c = mvData[T](cv)[0]
	}
	r := len(k.osize)
	if k.n == 0 {
		return
	}
	if r == 0 {
		dst[0] = src[0]
		return
	}
	inner := k.osize[r-1]
	last := k.maps[r-1]
	rows := k.n / inner
	parallel.For(threads, rows, max(1, mvGrain/inner), func(lo, hi int) {
		for row := lo; row < hi; row++ {
			d := dst[row*inner : (row+1)*inner]
			off, rem, fill := 0, row, false
			for a := r - 2; a >= 0; a-- {
				m := k.maps[a][rem%k.osize[a]]
				rem /= k.osize[a]
				if m < 0 {
					fill = true
					break
				}
				off += m * k.istr[a]
			}
			if fill {
				for i := range d {
					d[i] = c
				}
				continue
			}
			s := src[off:]
			for i, m := range last {
				if m < 0 {
					d[i] = c
				} else {
					d[i] = s[m]
				}
			}
		}
	})
}

// ---------------------------------------------------------------- backward
//
// The backward kernels below ADD into their input gradients and treat a nil
// output gradient as zero. Only float32 carries gradients. Transpose,
// Slice, Concat and Split reuse the strided walk above with an adding row
// function; the maps of Slice and Split never hit an input element twice,
// so their scatters write disjoint elements whatever the thread split. Tile,
// Gather and the non-constant Pad modes sum several output elements into
// one input element; they do so in a fixed order, each input element owned
// by one goroutine, so gradients are bit-identical for any thread count.

// mvNoGrad is the backward of a node through which no gradient flows (a
// non-float32 data input).
type mvNoGrad struct{}

// Backward does nothing.
func (mvNoGrad) Backward(*ExecContext, []*Tensor, []*Tensor, []*Tensor, []*Tensor) error { return nil }

// mvGradFloat reports whether input 0 and output 0 are float32, that is,
// whether a gradient can flow from the output to the data.
func mvGradFloat(in, out []ValueMeta) bool {
	return len(in) > 0 && in[0].DType == Float32 && len(out) > 0 && out[0].DType == Float32
}

// mvGradLen checks that a gradient or forward tensor has the number of
// elements the backward was compiled for, so a mismatch is an error rather
// than a panic.
func mvGradLen(what string, t *Tensor, want int) error {
	if t == nil || len(t.F32) != want {
		got := -1
		if t != nil {
			got = len(t.F32)
		}
		return fmt.Errorf("backward: %s has %d float32 elements, want %d", what, got, want)
	}
	return nil
}

// stridedAddRow adds str[off + i*step] into lin[i].
func stridedAddRow(lin, str []float32, off, step int) {
	if step == 1 {
		s := str[off : off+len(lin)]
		lin = lin[:len(s)]
		for i, v := range s {
			lin[i] += v
		}
		return
	}
	for i := range lin {
		lin[i] += str[off]
		off += step
	}
}

// stridedScatterAddRow adds lin[i] into str[off + i*step].
func stridedScatterAddRow(lin, str []float32, off, step int) {
	if step == 1 {
		s := str[off : off+len(lin)]
		for i, v := range lin {
			s[i] += v
		}
		return
	}
	for _, v := range lin {
		str[off] += v
		off += step
	}
}

// stridedGradPart is one strided accumulation of a backward: gather adds
// the strided gradient (gradOut[src]) into the linear one (gradIn[dst]);
// otherwise the linear gradOut[src] is scattered into the strided
// gradIn[dst].
type stridedGradPart struct {
	k        *stridedKernel
	gather   bool
	dst, src int // input-gradient and output-gradient indices
	strLen   int // elements of the strided tensor
}

// stridedGradKernel runs a list of stridedGradParts: the backward of
// Transpose (one gather), Slice (one scatter), Concat (a gather per input)
// and Split (a scatter per output).
type stridedGradKernel struct{ parts []stridedGradPart }

// Backward adds every part's output gradient into its input gradient.
func (g *stridedGradKernel) Backward(ctx *ExecContext, in, out, gradOut, gradIn []*Tensor) error {
	for _, p := range g.parts {
		if p.dst >= len(gradIn) || p.src >= len(gradOut) {
			continue
		}
		gi, gy := gradIn[p.dst], gradOut[p.src]
		if gi == nil || gy == nil {
			continue
		}
		lin, str := gi, gy
		row := stridedAddRow
		if !p.gather {
			lin, str = gy, gi
			row = stridedScatterAddRow
		}
		if err := mvGradLen("the linear gradient", lin, p.k.n); err != nil {
			return err
		}
		if err := mvGradLen("the strided gradient", str, p.strLen); err != nil {
			return err
		}
		stridedRun(p.k, ctx.Threads, lin.F32, str.F32, row)
	}
	return nil
}

// gradTranspose gathers the output gradient back through the inverse
// permutation: input element i reads the output gradient at the transposed
// position.
func gradTranspose(n *Node, in, out []ValueMeta, needGrad []bool) (GradKernel, error) {
	if !mvGradFloat(in, out) || !needGrad[0] {
		return mvNoGrad{}, nil
	}
	if _, _, err := compileTranspose(n, in); err != nil {
		return nil, err
	}
	// perm[i] is the input dimension of output dimension i (validated by the
	// compile above).
	shape := in[0].Shape
	r := len(shape)
	perm := n.AttrInts("perm", nil)
	if perm == nil {
		perm = make([]int64, r)
		for i := range perm {
			perm[i] = int64(r - 1 - i)
		}
	}
	ostr := Strides(out[0].Shape)
	istr := make([]int, r)
	for i, p := range perm {
		istr[p] = ostr[i]
	}
	k := newStrided(0, shape, istr)
	return &stridedGradKernel{parts: []stridedGradPart{{k: k, gather: true, strLen: NumElements(out[0].Shape)}}}, nil
}

// gradSlice scatters the output gradient into the sliced positions of the
// input gradient, with the forward's own strided map.
func gradSlice(n *Node, in, out []ValueMeta, needGrad []bool) (GradKernel, error) {
	if !mvGradFloat(in, out) || !needGrad[0] {
		return mvNoGrad{}, nil
	}
	fk, _, err := compileSlice(n, in)
	if err != nil {
		return nil, err
	}
	k, ok := fk.(*stridedKernel)
	if !ok {
		return nil, fmt.Errorf("backward: Slice compiled to %T, not a strided copy", fk)
	}
	return &stridedGradKernel{parts: []stridedGradPart{{k: k, strLen: NumElements(in[0].Shape)}}}, nil
}

// gradConcat gathers each input's rows back out of the output gradient.
func gradConcat(n *Node, in, out []ValueMeta, needGrad []bool) (GradKernel, error) {
	if !mvGradFloat(in, out) {
		return mvNoGrad{}, nil
	}
	fk, _, err := compileConcat(n, in)
	if err != nil {
		return nil, err
	}
	ck := fk.(*concatKernel)
	g := &stridedGradKernel{}
	off := 0
	for i, c := range ck.chunks {
		if i < len(needGrad) && needGrad[i] {
			k := newStrided(off, []int{ck.outer, c}, []int{ck.rowLen, 1})
			g.parts = append(g.parts, stridedGradPart{k: k, gather: true, dst: i, strLen: NumElements(out[0].Shape)})
		}
		off += c
	}
	return g, nil
}

// gradSplit scatters each output's gradient into its rows of the input
// gradient.
func gradSplit(n *Node, in, out []ValueMeta, needGrad []bool) (GradKernel, error) {
	if !mvGradFloat(in, out) || !needGrad[0] {
		return mvNoGrad{}, nil
	}
	fk, _, err := compileSplit(n, in)
	if err != nil {
		return nil, err
	}
	sk := fk.(*splitKernel)
	g := &stridedGradKernel{}
	off := 0
	for i, c := range sk.chunks {
		k := newStrided(off, []int{sk.outer, c}, []int{sk.rowLen, 1})
		g.parts = append(g.parts, stridedGradPart{k: k, src: i, strLen: NumElements(in[0].Shape)})
		off += c
	}
	return g, nil
}

// reducePlanGradKernel adds the output gradient, summed by a ReducePlan,
// into the input gradient: the backward of Tile (and of any op whose output
// is its input repeated).
type reducePlanGradKernel struct{ red *ReducePlan }

// Backward adds the reduced output gradient into gradIn[0].
func (g reducePlanGradKernel) Backward(ctx *ExecContext, in, out, gradOut, gradIn []*Tensor) error {
	if gradIn[0] == nil || gradOut[0] == nil {
		return nil
	}
	return g.red.Run(ctx.Threads, gradIn[0].F32, gradOut[0].F32, 1, true)
}

// gradTile sums the output gradient over the repeats: the output seen as
// [rep0, dim0, rep1, dim1, ...] is reduced over the rep axes.
func gradTile(n *Node, in, out []ValueMeta, needGrad []bool) (GradKernel, error) {
	if !mvGradFloat(in, out) || !needGrad[0] {
		return mvNoGrad{}, nil
	}
	if _, _, err := compileTile(n, in); err != nil {
		return nil, err
	}
	reps, _, err := mvConstInts(in, 1, "repeats")
	if err != nil {
		return nil, err
	}
	shape := in[0].Shape
	src := make([]int, 0, 2*len(shape))
	dst := make([]int, 0, 2*len(shape))
	for d, rp := range reps {
		src = append(src, int(rp), shape[d])
		dst = append(dst, 1, shape[d])
	}
	red, err := NewReducePlan(src, dst)
	if err != nil {
		return nil, err
	}
	return reducePlanGradKernel{red}, nil
}

// gatherGradKernel scatter-adds the output gradient into the rows of the
// data gradient the indices picked. Work is split over outer indices and
// column blocks of the inner run; within one, the indices are visited in
// order, so repeated indices accumulate in a fixed order.
type gatherGradKernel struct {
	k          *gatherKernel
	nIn, nOut  int
	colBlock   int
	nColBlocks int
}

// gatherColBlock is the width of the column blocks the gather backward
// splits the inner run into.
const gatherColBlock = 1024

func gradGather(n *Node, in, out []ValueMeta, needGrad []bool) (GradKernel, error) {
	if !mvGradFloat(in, out) || !needGrad[0] {
		return mvNoGrad{}, nil
	}
	fk, _, err := compileGather(n, in)
	if err != nil {
		return nil, err
	}
	k := fk.(*gatherKernel)
	cb := min(max(k.inner, 1), gatherColBlock)
	return &gatherGradKernel{k: k, nIn: NumElements(in[0].Shape), nOut: NumElements(out[0].Shape),
		colBlock: cb, nColBlocks: (k.inner + cb - 1) / cb}, nil
}

// Backward adds the output gradient into the gathered rows of gradIn[0].
func (g *gatherGradKernel) Backward(ctx *ExecContext, in, out, gradOut, gradIn []*Tensor) error {
	if gradIn[0] == nil || gradOut[0] == nil {
		return nil
	}
	if err := mvGradLen("the data gradient", gradIn[0], g.nIn); err != nil {
		return err
	}
	if err := mvGradLen("the output gradient", gradOut[0], g.nOut); err != nil {
		return err
	}
	if in[1] == nil || in[1].Len() != g.k.nIdx {
		return fmt.Errorf("backward: indices do not have the %d elements the node was compiled for", g.k.nIdx)
	}
	if err := g.k.checkIndices(in[1]); err != nil {
		return err
	}
	if in[1].DType == Int32 {
		gatherGradRun(g, ctx.Threads, gradIn[0].F32, gradOut[0].F32, in[1].I32)
	} else {
		gatherGradRun(g, ctx.Threads, gradIn[0].F32, gradOut[0].F32, in[1].I64)
	}
	return nil
}

func gatherGradRun[I int32 | int64](g *gatherGradKernel, threads int, gx, gy []float32, idx []I) {
	k := g.k
	if k.inner == 0 || k.nIdx == 0 {
		return
	}
	items := k.outer * g.nColBlocks
	grain := max(1, mvGrain/max(1, k.nIdx*g.colBlock))
	if mvSerial(threads, items, grain) {
		gatherGradItems(g, gx, gy, idx, 0, items)
		return
	}
	parallel.For(threads, items, grain, func(lo, hi int) { gatherGradItems(g, gx, gy, idx, lo, hi) })
}

// gatherGradItems does items [lo, hi) of gatherGradRun: one outer index
// and one column block each.
func gatherGradItems[I int32 | int64](g *gatherGradKernel, gx, gy []float32, idx []I, lo, hi int) {
	k := g.k
	for it := lo; it < hi; it++ {
		o, b := it/g.nColBlocks, it%g.nColBlocks
		c0 := b * g.colBlock
		c1 := min(c0+g.colBlock, k.inner)
		for j, v := range idx {
			p := int(v)
			if p < 0 {
				p += k.dim
			}
			d := gx[(o*k.dim+p)*k.inner+c0 : (o*k.dim+p)*k.inner+c1]
			s := gy[(o*k.nIdx+j)*k.inner+c0:]
			s = s[:len(d)]
			for i, x := range s {
				d[i] += x
			}
		}
	}
}

// padGradKernel sums the output gradient back onto the input elements the
// output read. The per-dimension maps of the forward are inverted into
// lists of output coordinates per input coordinate (at most one in constant
// mode; several at the borders in edge, reflect and wrap mode). Work is
// split over rows of the input gradient; each row adds, in row-major order
// of the output coordinates, the output rows that read it.
type padGradKernel struct {
	inShape []int
	osize   []int
	ostr    []int
	ptr     [][]int // per dimension, start of input coordinate j's list (len dim+1)
	list    [][]int // per dimension, the output coordinates, grouped by input coordinate
	// shift: every input coordinate of the last dimension has at most one
	// output coordinate, j+shift, for j in [j0, j1) (constant mode).
	shift, j0, j1 int
	isShift       bool
	nIn, nOut     int
}

func gradPad(n *Node, in, out []ValueMeta, needGrad []bool) (GradKernel, error) {
	if !mvGradFloat(in, out) || !needGrad[0] {
		return mvNoGrad{}, nil
	}
	fk, _, err := compilePad(n, in)
	if err != nil {
		return nil, err
	}
	pk := fk.(*padKernel)
	shape := in[0].Shape
	r := len(shape)
	g := &padGradKernel{inShape: shape, osize: pk.osize, ostr: Strides(pk.osize),
		ptr: make([][]int, r), list: make([][]int, r), nIn: NumElements(shape), nOut: pk.n}
	for d := range shape {
		cnt := make([]int, shape[d]+1)
		for _, m := range pk.maps[d] {
			if m >= 0 {
				cnt[m+1]++
			}
		}
		for j := 1; j < len(cnt); j++ {
			cnt[j] += cnt[j-1]
		}
		g.ptr[d] = append([]int{}, cnt...)
		g.list[d] = make([]int, cnt[len(cnt)-1])
		for o, m := range pk.maps[d] {
			if m >= 0 {
				g.list[d][cnt[m]] = o
				cnt[m]++
			}
		}
	}
	if r > 0 {
		// Is the last dimension a plain shift (each input coordinate read
		// at most once, by consecutive output coordinates)?
		ptr, list := g.ptr[r-1], g.list[r-1]
		g.isShift, g.j0, g.j1 = true, -1, -1
		for j := 0; j < shape[r-1]; j++ {
			c := ptr[j+1] - ptr[j]
			switch {
			case c > 1:
				g.isShift = false
			case c == 1 && g.j0 < 0:
				g.j0, g.j1, g.shift = j, j+1, list[ptr[j]]-j
			case c == 1:
				if g.j1 != j || list[ptr[j]]-j != g.shift {
					g.isShift = false
				}
				g.j1 = j + 1
			}
		}
		if g.j0 < 0 {
			g.j0, g.j1 = 0, 0
		}
	}
	return g, nil
}

// Backward adds the output gradient into gradIn[0].
func (g *padGradKernel) Backward(ctx *ExecContext, in, out, gradOut, gradIn []*Tensor) error {
	if gradIn[0] == nil || gradOut[0] == nil {
		return nil
	}
	if err := mvGradLen("the data gradient", gradIn[0], g.nIn); err != nil {
		return err
	}
	if err := mvGradLen("the output gradient", gradOut[0], g.nOut); err != nil {
		return err
	}
	gx, gy := gradIn[0].F32, gradOut[0].F32
	r := len(g.inShape)
	if g.nIn == 0 || g.nOut == 0 {
		return nil
	}
	if r == 0 {
		gx[0] += gy[0]
		return nil
	}
	inner := g.inShape[r-1]
	rows := g.nIn / inner
	grain := max(1, mvGrain/inner)
	if mvSerial(ctx.Threads, rows, grain) {
		g.rows(gx, gy, 0, rows)
		return nil
	}
	parallel.For(ctx.Threads, rows, grain, func(lo, hi int) { g.rows(gx, gy, lo, hi) })
	return nil
}

// rows does input-gradient rows [lo, hi) of the last dimension.
func (g *padGradKernel) rows(gx, gy []float32, lo, hi int) {
	r := len(g.inShape)
	inner := g.inShape[r-1]
	var cBuf, pBuf [8]int
	coord, pos := cBuf[:0], pBuf[:0]
	if r-1 <= len(cBuf) {
		coord, pos = cBuf[:r-1], pBuf[:r-1]
	} else {
		coord, pos = make([]int, r-1), make([]int, r-1)
	}
	for row := lo; row < hi; row++ {
		d := gx[row*inner : (row+1)*inner]
		rem, empty := row, false
		for a := r - 2; a >= 0; a-- {
			coord[a] = rem % g.inShape[a]
			rem /= g.inShape[a]
			pos[a] = g.ptr[a][coord[a]]
			if pos[a] == g.ptr[a][coord[a]+1] {
				empty = true
			}
		}
		if empty {
			continue
		}
		// Odometer over the product of the outer dimensions' lists.
		for {
			off := 0
			for a := 0; a < r-1; a++ {
				off += g.list[a][pos[a]] * g.ostr[a]
			}
			g.addRow(d, gy[off:off+g.osize[r-1]])
			a := r - 2
			for ; a >= 0; a-- {
				pos[a]++
				if pos[a] < g.ptr[a][coord[a]+1] {
					break
				}
				pos[a] = g.ptr[a][coord[a]]
			}
			if a < 0 {
				break
			}
		}
	}
}

// addRow adds one output-gradient row of the last dimension into an input
// gradient row.
func (g *padGradKernel) addRow(d, s []float32) {
	r := len(g.inShape)
	if g.isShift {
		s = s[g.j0+g.shift : g.j1+g.shift]
		d = d[g.j0:g.j1]
		for i, v := range s {
			d[i] += v
		}
		return
	}
	ptr, list := g.ptr[r-1], g.list[r-1]
	for j := range d {
		for _, o := range list[ptr[j]:ptr[j+1]] {
			d[j] += s[o]
		}
	}
}
