package runtime

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/compressml/compress/internal/parallel"
)

// This file holds multidirectional (numpy-style) broadcasting: the shape
// rule and a strided iteration plan shared by the elementwise operators.

// BroadcastShapes returns the shape two operands broadcast to under the
// multidirectional (numpy) rule: shapes are aligned on their last dimension
// and each pair of dimensions must be equal or one of them 1. A dimension of
// 0 broadcasts with 1 to 0.
func BroadcastShapes(a, b []int) ([]int, error) {
	r := max(len(a), len(b))
	out := make([]int, r)
	for i := 1; i <= r; i++ {
		da, db := 1, 1
		if i <= len(a) {
			da = a[len(a)-i]
		}
		if i <= len(b) {
			db = b[len(b)-i]
		}
		switch {
		case da == db || db == 1:
			out[r-i] = da
		case da == 1:
			out[r-i] = db
		default:
			return nil, fmt.Errorf("cannot broadcast %s with %s: dimension %d is %d in one and %d in the other",
				ewShape(a), ewShape(b), r-i, da, db)
		}
	}
	return out, nil
}

// ewBroadcastAll folds BroadcastShapes over several shapes.
func ewBroadcastAll(shapes ...[]int) ([]int, error) {
	out := []int{}
	for _, s := range shapes {
		o, err := BroadcastShapes(out, s)
		if err != nil {
			return nil, err
		}
		out = o
	}
	return out, nil
}

// ewShape formats a shape as "[2,3,4]".
func ewShape(s []int) string {
	var b strings.Builder
	b.WriteByte('[')
	for i, d := range s {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(strconv.Itoa(d))
	}
	b.WriteByte(']')
	return b.String()
}

// BroadcastMaxOperands is the number of operands a BroadcastPlan supports.
const BroadcastMaxOperands = 3

// ewParallelMin is the element count from which elementwise loops are split
// across threads, and ewGrain the smallest chunk a thread gets.
const (
	ewParallelMin = 1 << 16
	ewGrain       = 1 << 14
)

// BroadcastPlan iterates over an output shape and up to three operands
// broadcast to it. Adjacent dimensions that every operand walks the same way
// are merged, so the common cases become a few long runs: same shapes are
// one run of stride 1, a scalar operand has stride 0, a per-channel [C,1,1]
// operand against [N,C,H,W] gives N*C runs of length H*W with that operand
// fixed, and a trailing row vector gives runs with both operands stride 1.
type BroadcastPlan struct {
	out     []int
	n       int
	dims    []int   // merged dimensions; the last is the inner run
	strides [][]int // per operand, element stride per merged dimension
	inner   [3]int  // per operand, stride of the inner run (0 or 1)
	lens    []int   // element count of each operand
}

// NewBroadcastPlan plans iterating over out with the given operand shapes,
// each of which must broadcast (unidirectionally) to out. It fails for more
// than BroadcastMaxOperands operands or an operand that does not broadcast.
func NewBroadcastPlan(out []int, operands ...[]int) (*BroadcastPlan, error) {
	if len(operands) > BroadcastMaxOperands {
		return nil, fmt.Errorf("broadcast plan: %d operands, at most %d supported", len(operands), BroadcastMaxOperands)
	}
	if err := CheckShape(out); err != nil {
		return nil, err
	}
	r := len(out)
	full := make([][]int, len(operands))
	for k, s := range operands {
		if len(s) > r {
			return nil, fmt.Errorf("cannot broadcast %s to %s: operand has more dimensions", ewShape(s), ewShape(out))
		}
		st := make([]int, r)
		acc := 1
		for i := 1; i <= len(s); i++ {
			d, o := s[len(s)-i], out[r-i]
			switch {
			case d == o:
				st[r-i] = acc
			case d == 1:
				st[r-i] = 0
			default:
				return nil, fmt.Errorf("cannot broadcast %s to %s: dimension %d is %d, want %d or 1",
					ewShape(s), ewShape(out), len(s)-i, d, o)
			}
			acc *= d
		}
		full[k] = st
	}
	p := &BroadcastPlan{out: append([]int{}, out...), n: NumElements(out), strides: make([][]int, len(operands))}
	for _, s := range operands {
		p.lens = append(p.lens, NumElements(s))
	}
	// Drop dimensions of size 1 and merge a dimension into the previous kept
	// one when every operand is contiguous across the pair.
	for i := 0; i < r; i++ {
		if out[i] == 1 {
			continue
		}
		if last := len(p.dims) - 1; last >= 0 {
			merge := true
			for k := range full {
				if p.strides[k][last] != full[k][i]*out[i] {
					merge = false
					break
				}
			}
			if merge {
				p.dims[last] *= out[i]
				for k := range full {
					p.strides[k][last] = full[k][i]
				}
				continue
			}
		}
		p.dims = append(p.dims, out[i])
		for k := range full {
			p.strides[k] = append(p.strides[k], full[k][i])
		}
	}
	if len(p.dims) == 0 { // every dimension is 1: one element
		p.dims = []int{1}
		for k := range full {
			p.strides[k] = []int{1}
		}
	}
	for k := range full {
		p.inner[k] = p.strides[k][len(p.dims)-1]
	}
	return p, nil
}

// Len is the number of output elements.
func (p *BroadcastPlan) Len() int { return p.n }

// Shape is the output shape (do not modify).
func (p *BroadcastPlan) Shape() []int { return p.out }

// Check verifies that a run's buffers have the sizes the plan was made
// for: out holds Len() elements and operand k lens[k]. Kernels call it
// before ForEach so that mismatched tensors give an error, not a panic.
func (p *BroadcastPlan) Check(out int, lens ...int) error {
	if out != p.n {
		return fmt.Errorf("output has %d elements, the plan expects %d (shape %s)", out, p.n, ewShape(p.out))
	}
	if len(lens) != len(p.lens) {
		return fmt.Errorf("%d operands given, the plan has %d", len(lens), len(p.lens))
	}
	for k, l := range lens {
		if l != p.lens[k] {
			return fmt.Errorf("operand %d has %d elements, the plan expects %d", k, l, p.lens[k])
		}
	}
	return nil
}

// InnerStride is operand k's stride within a run: 1 when it walks along with
// the output, 0 when it stays on one element.
func (p *BroadcastPlan) InnerStride(k int) int { return p.inner[k] }

// ForEach calls fn for consecutive runs covering the output in order, with
// the output offset o, each operand's offset a, b, c (0 for operands the plan
// does not have) and the run length n. Within a run output element o+i reads
// operand elements a+i*InnerStride(0) and so on. With threads > 1 and a
// large output, disjoint ranges of the output run concurrently (the ranges
// depend only on the size and thread count).
func (p *BroadcastPlan) ForEach(threads int, fn func(o, a, b, c, n int)) {
	if p.n == 0 {
		return
	}
	if p.n < ewParallelMin {
		threads = 1
	}
	parallel.For(threads, p.n, ewGrain, func(lo, hi int) { p.forRange(lo, hi, fn) })
}

// forRange runs fn over the output range [lo, hi).
func (p *BroadcastPlan) forRange(lo, hi int, fn func(o, a, b, c, n int)) {
	last := len(p.dims) - 1
	inner := p.dims[last]
	row, col := lo/inner, lo%inner
	var cbuf [8]int
	coords := cbuf[:0]
	if last > len(cbuf) {
		coords = make([]int, last)
	} else {
		coords = cbuf[:last]
	}
	var base [3]int // row-start offsets
	for d := last - 1; d >= 0; d-- {
		coords[d] = row % p.dims[d]
		row /= p.dims[d]
		for k := range p.strides {
			base[k] += coords[d] * p.strides[k][d]
		}
	}
	o := lo
	for {
		n := min(inner-col, hi-o)
		fn(o, base[0]+col*p.inner[0], base[1]+col*p.inner[1], base[2]+col*p.inner[2], n)
		o += n
		if o >= hi {
			return
		}
		col = 0
		for d := last - 1; d >= 0; d-- {
			coords[d]++
			for k := range p.strides {
				base[k] += p.strides[k][d]
			}
			if coords[d] < p.dims[d] {
				break
			}
			for k := range p.strides {
				base[k] -= p.strides[k][d] * p.dims[d]
			}
			coords[d] = 0
		}
	}
}

// ---------------------------------------------------------------- reduction

// reduceBlock is the number of output columns a row-accumulating reduction
// keeps in float64 registers-on-stack at once.
const reduceBlock = 256

// ReducePlan sums a float32 tensor of a broadcast output shape back down to
// the shape of an operand that was broadcast to it: the gradient of a
// broadcast operand. Every element of the result is summed in float64 in the
// same fixed order (row-major over the reduced coordinates) whatever the
// thread count, so results are bit-identical for any number of threads;
// threads only split the result into disjoint ranges.
//
// Dimensions are merged like in BroadcastPlan, which gives tight loops for
// the common cases: same shape (one copy-add), a per-channel [C,1,1] operand
// against [N,C,H,W] (contiguous runs of H*W summed per channel), a row
// vector [N] against [B,N] (B rows added column-wise), and a scalar.
type ReducePlan struct {
	n, m int // source (output-shaped) and destination element counts
	mode int // reduceCopy, reduceInner or reduceOuter
	last int // size of the last merged dimension
	// kDims/kStrides: kept dimensions (excluding the last in reduceOuter
	// mode) with their source strides; the destination is contiguous over
	// them. rDims/rStrides: reduced dimensions (excluding the last in
	// reduceInner mode) with their source strides.
	kDims, kStrides []int
	rDims, rStrides []int
	rCount          int // product of rDims
}

const (
	reduceCopy  = iota // no dimension is reduced
	reduceInner        // the last merged dimension is reduced: contiguous sums
	reduceOuter        // the last merged dimension is kept: rows added column-wise
)

// NewReducePlan plans summing a tensor of shape out down to shape in, which
// must broadcast (unidirectionally) to out.
func NewReducePlan(out, in []int) (*ReducePlan, error) {
	if err := CheckShape(out); err != nil {
		return nil, err
	}
	r := len(out)
	if len(in) > r {
		return nil, fmt.Errorf("cannot reduce %s to %s: the target has more dimensions", ewShape(out), ewShape(in))
	}
	type mdim struct {
		size int
		kept bool
	}
	var dims []mdim
	for i := 0; i < r; i++ {
		o := out[i]
		d := 1
		if j := i - (r - len(in)); j >= 0 {
			d = in[j]
		}
		if d != o && d != 1 {
			return nil, fmt.Errorf("cannot reduce %s to %s: dimension %d is %d, want %d or 1", ewShape(out), ewShape(in), i, o, d)
		}
		if o == 1 {
			continue
		}
		kept := d == o
		if l := len(dims) - 1; l >= 0 && dims[l].kept == kept {
			dims[l].size *= o
			continue
		}
		dims = append(dims, mdim{o, kept})
	}
	p := &ReducePlan{n: NumElements(out), m: NumElements(in), rCount: 1}
	if p.n == 0 || len(dims) == 0 || (len(dims) == 1 && dims[0].kept) {
		p.mode = reduceCopy
		return p, nil
	}
	strides := make([]int, len(dims))
	acc := 1
	for i := len(dims) - 1; i >= 0; i-- {
		strides[i] = acc
		acc *= dims[i].size
	}
	l := len(dims) - 1
	p.last = dims[l].size
	p.mode = reduceOuter
	if !dims[l].kept {
		p.mode = reduceInner
	}
	for i := 0; i < l; i++ {
		if dims[i].kept {
			p.kDims = append(p.kDims, dims[i].size)
			p.kStrides = append(p.kStrides, strides[i])
		} else {
			p.rDims = append(p.rDims, dims[i].size)
			p.rStrides = append(p.rStrides, strides[i])
			p.rCount *= dims[i].size
		}
	}
	return p, nil
}

// ReduceToShape sums grad, of shape out, down to shape in (which broadcasts
// to out) and writes the result into dst (accumulate false) or adds it to
// dst (accumulate true). It plans on every call; kernels that reduce at every
// step keep a ReducePlan instead.
func ReduceToShape(threads int, grad []float32, out, in []int, dst []float32, accumulate bool) error {
	p, err := NewReducePlan(out, in)
	if err != nil {
		return err
	}
	return p.Run(threads, dst, grad, 1, accumulate)
}

// SrcLen is the number of elements of the (output-shaped) source.
func (p *ReducePlan) SrcLen() int { return p.n }

// DstLen is the number of elements of the reduced destination.
func (p *ReducePlan) DstLen() int { return p.m }

// Identity reports whether the plan reduces nothing (the source and the
// destination have the same elements in the same order).
func (p *ReducePlan) Identity() bool { return p.mode == reduceCopy }

// Run reduces src into dst scaled by alpha: dst = alpha*sum (accumulate
// false) or dst += alpha*sum (accumulate true). It fails when the slices do
// not have the planned lengths. It does not allocate when the work runs on
// one goroutine (threads 1 or a small source).
func (p *ReducePlan) Run(threads int, dst, src []float32, alpha float32, accumulate bool) error {
	if len(src) != p.n || len(dst) != p.m {
		return fmt.Errorf("reduce: source has %d elements, destination %d; the plan expects %d and %d", len(src), len(dst), p.n, p.m)
	}
	if p.n == 0 {
		if !accumulate {
			clear(dst)
		}
		return nil
	}
	if p.n < ewParallelMin {
		threads = 1
	}
	units, grain := p.units()
	if threads <= 1 || units <= grain {
		p.runUnits(0, units, dst, src, alpha, accumulate)
		return nil
	}
	parallel.For(threads, units, grain, func(lo, hi int) { p.runUnits(lo, hi, dst, src, alpha, accumulate) })
	return nil
}

// units returns the number of independent work units (each writing its
// own destination elements) and the smallest number per goroutine.
func (p *ReducePlan) units() (units, grain int) {
	switch p.mode {
	case reduceCopy:
		return p.n, ewGrain
	case reduceInner:
		units = p.m
	default:
		units = p.m / p.last * ((p.last + reduceBlock - 1) / reduceBlock)
	}
	return units, max(1, ewGrain/max(1, p.n/units))
}

// runUnits does work units [lo, hi).
func (p *ReducePlan) runUnits(lo, hi int, dst, src []float32, alpha float32, accumulate bool) {
	switch p.mode {
	case reduceCopy:
		reduceAxpy(dst[lo:hi], src[lo:hi], alpha, accumulate)
	case reduceInner:
		p.runInner(lo, hi, dst, src, float64(alpha), accumulate)
	default:
		p.runOuter(lo, hi, dst, src, float64(alpha), accumulate)
	}
}

// reduceAxpy is d = a*s or d += a*s.
func reduceAxpy(d, s []float32, a float32, accumulate bool) {
	s = s[:len(d)]
	switch {
	case accumulate && a == 1:
		for i, v := range s {
			d[i] += v
		}
	case accumulate:
		for i, v := range s {
			d[i] += a * v
		}
	case a == 1:
		copy(d, s)
	default:
		for i, v := range s {
			d[i] = a * v
		}
	}
}

// offset maps a linear index over dims to a source offset.
func reduceOffset(idx int, dims, strides []int) int {
	off := 0
	for d := len(dims) - 1; d >= 0; d-- {
		n := dims[d]
		off += idx % n * strides[d]
		idx /= n
	}
	return off
}

// reduceStore writes or adds alpha*s to *d.
func reduceStore(d *float32, s, alpha float64, accumulate bool) {
	s *= alpha
	if accumulate {
		s += float64(*d)
	}
	*d = float32(s)
}

// sum64 is the float64 sum of s, in a fixed order.
func sum64(s []float32) float64 {
	var a0, a1, a2, a3 float64
	i := 0
	for ; i+4 <= len(s); i += 4 {
		a0 += float64(s[i])
		a1 += float64(s[i+1])
		a2 += float64(s[i+2])
		a3 += float64(s[i+3])
	}
	for ; i < len(s); i++ {
		a0 += float64(s[i])
	}
	return (a0 + a1) + (a2 + a3)
}

// runInner computes destination elements [lo, hi): each is the sum of
// rCount contiguous runs of length last.
func (p *ReducePlan) runInner(lo, hi int, dst, src []float32, alpha float64, accumulate bool) {
	run := p.last
	if len(p.rDims) == 0 && len(p.kDims) <= 1 {
		// [M, I] -> [M]: scalar (M = 1), or [B,1] against [B,N].
		for e := lo; e < hi; e++ {
			reduceStore(&dst[e], sum64(src[e*run:(e+1)*run]), alpha, accumulate)
		}
		return
	}
	for e := lo; e < hi; e++ {
		base := reduceOffset(e, p.kDims, p.kStrides)
		s := 0.0
		if len(p.rDims) == 1 {
			st := p.rStrides[0]
			for r := 0; r < p.rCount; r++ {
				o := base + r*st
				s += sum64(src[o : o+run])
			}
		} else {
			for r := 0; r < p.rCount; r++ {
				o := base + reduceOffset(r, p.rDims, p.rStrides)
				s += sum64(src[o : o+run])
			}
		}
		reduceStore(&dst[e], s, alpha, accumulate)
	}
}

// runOuter computes units [lo, hi): a unit is a block of at most
// reduceBlock consecutive destination elements along the last (kept)
// dimension, to which rCount source rows are added column-wise.
func (p *ReducePlan) runOuter(lo, hi int, dst, src []float32, alpha float64, accumulate bool) {
	n := p.last
	nb := (n + reduceBlock - 1) / reduceBlock
	var acc [reduceBlock]float64
	for u := lo; u < hi; u++ {
		g, j0 := u/nb, u%nb*reduceBlock
		w := min(reduceBlock, n-j0)
		a := acc[:w]
		clear(a)
		base := reduceOffset(g, p.kDims, p.kStrides) + j0
		for r := 0; r < p.rCount; r++ {
			var o int
			if len(p.rDims) == 1 {
				o = base + r*p.rStrides[0]
			} else {
				o = base + reduceOffset(r, p.rDims, p.rStrides)
			}
			row := src[o : o+w]
			for j, v := range row {
				a[j] += float64(v)
			}
		}
		d := dst[g*n+j0 : g*n+j0+w]
		for j, s := range a {
			reduceStore(&d[j], s, alpha, accumulate)
		}
	}
}
