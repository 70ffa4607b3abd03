package runtime

// Reductions (ReduceSum, ReduceMean, ReduceMax, ReduceMin, ReduceProd,
// ReduceL1, ReduceL2, ReduceSumSquare, ReduceLogSum, ReduceLogSumExp) and
// ArgMax/ArgMin, in their opset-18 form: axes is the optional input 1 (a
// plan-time constant), keepdims defaults to 1, and noop_with_empty_axes=1
// turns an absent or empty axes into the identity.
//
// Numerics: float32 data is accumulated in float64 in a fixed order (row-
// major order of the reduced axes; when a single output reduces a strided
// run, four interleaved partial sums combined as (p0+p1)+(p2+p3)), then
// rounded once to float32. The order never depends on the thread count, so
// results are bit-identical for any number of threads, and in practice the
// only rounding error of Sum/Mean is the final one (onnxruntime's float32
// sums agree to well under 1e-5 relative). Integer data accumulates in
// int64 and wraps to the data type on output; integer ReduceMean truncates
// toward zero. A reduction over zero elements gives the identity of the op
// (0 for sums, 1 for Prod, -Inf/+Inf or the type's extreme for Max/Min,
// -Inf for LogSum/LogSumExp, NaN for a float Mean, 0 for an integer Mean).

import (
	"fmt"
	"math"

	"github.com/compressml/compress/internal/parallel"
)

// reduceKind selects the reduction.
type reduceKind uint8

const (
	redSum reduceKind = iota
	redMean
	redMax
	redMin
	redProd
	redL1
	redL2
	redSumSquare
	redLogSum
	redLogSumExp
	redSumExp // internal: sum of exp(x - shift), the second pass of LogSumExp
)

var reduceOps = []struct {
	name      string
	kind      reduceKind
	floatOnly bool
}{
	{"ReduceSum", redSum, false},
	{"ReduceMean", redMean, false},
	{"ReduceMax", redMax, false},
	{"ReduceMin", redMin, false},
	{"ReduceProd", redProd, false},
	{"ReduceL1", redL1, false},
	{"ReduceL2", redL2, true},
	{"ReduceSumSquare", redSumSquare, false},
	{"ReduceLogSum", redLogSum, true},
	{"ReduceLogSumExp", redLogSumExp, true},
}

func init() {
	for _, op := range reduceOps {
		kind, floatOnly := op.kind, op.floatOnly
		Register(OpSpec{Type: op.name, MinInputs: 1, MaxInputs: 2, StaticInputs: []int{1}, NonDiff: []int{1},
			Compile: func(n *Node, in []ValueMeta) (Kernel, []ValueMeta, error) {
				return compileReduce(n, in, kind, floatOnly)
			},
			Grad: func(n *Node, in, out []ValueMeta, needGrad []bool) (GradKernel, error) {
				return gradReduce(n, in, out, needGrad, kind, floatOnly)
			}})
	}
	Register(OpSpec{Type: "ArgMax", MinInputs: 1, MaxInputs: 1, NonDiff: []int{0}, Compile: func(n *Node, in []ValueMeta) (Kernel, []ValueMeta, error) {
		return compileArg(n, in, true)
	}})
	Register(OpSpec{Type: "ArgMin", MinInputs: 1, MaxInputs: 1, NonDiff: []int{0}, Compile: func(n *Node, in []ValueMeta) (Kernel, []ValueMeta, error) {
		return compileArg(n, in, false)
	}})
}

// reduceTile is how many neighbouring outputs one pass over the reduced
// elements accumulates at a time (a stack array of float64/int64).
const reduceTile = 256

// reduceKernel reduces a row-major input whose dimensions are classified,
// after dropping size-1 dimensions and merging neighbours of the same
// class, into: outer kept dimensions, reduced dimensions, and a contiguous
// innermost run of kept elements (inner, 1 when the last dimension is
// reduced). Output element o*inner+i reduces, in row-major order of the
// reduced dimensions, input elements at outerOffset(o) + reducedOffset + i.
type reduceKernel struct {
	kind                 reduceKind
	outerSizes, outerStr []int
	redSizes, redStr     []int
	inner                int
	count                int // reduced elements per output
	nOut                 int
}

func compileReduce(n *Node, in []ValueMeta, kind reduceKind, floatOnly bool) (Kernel, []ValueMeta, error) {
	if err := mvRequire(in, 0); err != nil {
		return nil, nil, err
	}
	dt := in[0].DType
	switch dt {
	case Float32:
	case Int8, Uint8, Int32, Int64:
		if floatOnly {
			return nil, nil, fmt.Errorf("needs float32 data, got %v", dt)
		}
	default:
		return nil, nil, fmt.Errorf("unsupported dtype %v (float32 or an integer type)", dt)
	}
	shape := in[0].Shape
	r := len(shape)
	axesIn, _, err := mvConstInts(in, 1, "axes")
	if err != nil {
		return nil, nil, err
	}
	keep := n.AttrInt("keepdims", 1) != 0
	reduced := make([]bool, r)
	if len(axesIn) == 0 {
		if n.AttrInt("noop_with_empty_axes", 0) != 0 {
			return viewKernel{}, []ValueMeta{{DType: dt, Shape: append([]int{}, shape...)}}, nil
		}
		for i := range reduced {
			reduced[i] = true
		}
	} else {
		axes, err := mvAxes(axesIn, r, "axes")
		if err != nil {
			return nil, nil, err
		}
		for _, a := range axes {
			reduced[a] = true
		}
	}
	outShape := []int{}
	for d, sz := range shape {
		switch {
		case !reduced[d]:
			outShape = append(outShape, sz)
		case keep:
			outShape = append(outShape, 1)
		}
	}
	k := &reduceKernel{kind: kind, inner: 1, count: 1, nOut: NumElements(outShape)}
	// Classify and merge dimensions; size-1 dimensions do not matter.
	type seg struct {
		size, stride int
		red          bool
	}
	var segs []seg
	st := Strides(shape)
	for d, sz := range shape {
		if sz == 1 {
			continue
		}
		if l := len(segs) - 1; l >= 0 && segs[l].red == reduced[d] {
			segs[l].size *= sz
			segs[l].stride = st[d]
			continue
		}
		segs = append(segs, seg{sz, st[d], reduced[d]})
	}
	if l := len(segs) - 1; l >= 0 && !segs[l].red {
		k.inner = segs[l].size
		segs = segs[:l]
	}
	for _, s := range segs {
		if s.red {
			k.redSizes = append(k.redSizes, s.size)
			k.redStr = append(k.redStr, s.stride)
			k.count *= s.size
		} else {
			k.outerSizes = append(k.outerSizes, s.size)
			k.outerStr = append(k.outerStr, s.stride)
		}
	}
	return k, []ValueMeta{{DType: dt, Shape: outShape}}, nil
}

// Run reduces input 0 into output 0.
func (k *reduceKernel) Run(ctx *ExecContext, in, out []*Tensor) error {
	switch in[0].DType {
	case Float32:
		reduceRunF32(k, ctx.Threads, out[0].F32, in[0].F32)
	case Int8:
		reduceRunInt(k, ctx.Threads, out[0].I8, in[0].I8, math.MinInt8, math.MaxInt8)
	case Uint8:
		reduceRunInt(k, ctx.Threads, out[0].U8, in[0].U8, 0, math.MaxUint8)
	case Int32:
		reduceRunInt(k, ctx.Threads, out[0].I32, in[0].I32, math.MinInt32, math.MaxInt32)
	case Int64:
		reduceRunInt(k, ctx.Threads, out[0].I64, in[0].I64, math.MinInt64, math.MaxInt64)
	default:
		return fmt.Errorf("unsupported dtype %v", in[0].DType)
	}
	return nil
}

// forItems splits the outputs into items of one outer index and one tile of
// at most reduceTile inner elements and calls fn for each, in parallel over
// disjoint items. base is the input offset of the outer index, i0 the first
// inner element and w the tile width.
func (k *reduceKernel) forItems(threads int, fn func(base, o, i0, w int)) {
	items, grain := k.itemCount()
	parallel.For(threads, items, grain, func(lo, hi int) {
		for it := lo; it < hi; it++ {
			fn(k.itemAt(it))
		}
	})
}

// itemCount returns the number of work items of forItems and the smallest
// number of them worth a goroutine.
func (k *reduceKernel) itemCount() (items, grain int) {
	if k.nOut == 0 {
		return 0, 1
	}
	nTiles := (k.inner + reduceTile - 1) / reduceTile
	work := max(1, k.count*min(k.inner, reduceTile))
	return k.nOut / k.inner * nTiles, max(1, mvGrain/work)
}

// itemAt returns the input offset of item it's outer index, the outer index,
// the first inner element and the tile width.
func (k *reduceKernel) itemAt(it int) (base, o, i0, w int) {
	nTiles := (k.inner + reduceTile - 1) / reduceTile
	o, t := it/nTiles, it%nTiles
	rem := o
	for d := len(k.outerSizes) - 1; d >= 0; d-- {
		base += rem % k.outerSizes[d] * k.outerStr[d]
		rem /= k.outerSizes[d]
	}
	i0 = t * reduceTile
	return base, o, i0, min(reduceTile, k.inner-i0)
}

// walk visits the reduced elements of one item in row-major order: for each
// position of all reduced dimensions but the last it calls row with the
// offset of that position (relative to base+i0), the size and the stride of
// the last reduced dimension.
func (k *reduceKernel) walk(row func(off, m, s int)) {
	if k.count == 0 {
		return
	}
	nr := len(k.redSizes)
	if nr == 0 {
		row(0, 1, 0)
		return
	}
	m, s := k.redSizes[nr-1], k.redStr[nr-1]
	lead := k.redSizes[:nr-1]
	if len(lead) == 0 {
		row(0, m, s)
		return
	}
	var idxBuf [8]int
	idx := idxBuf[:0]
	if len(lead) <= len(idxBuf) {
		idx = idxBuf[:len(lead)]
	} else {
		idx = make([]int, len(lead))
	}
	off := 0
	for {
		row(off, m, s)
		a := len(lead) - 1
		for ; a >= 0; a-- {
			idx[a]++
			off += k.redStr[a]
			if idx[a] < lead[a] {
				break
			}
			off -= idx[a] * k.redStr[a]
			idx[a] = 0
		}
		if a < 0 {
			return
		}
	}
}

func reduceInitF(kind reduceKind) float64 {
	switch kind {
	case redProd:
		return 1
	case redMax:
		return math.Inf(-1)
	case redMin:
		return math.Inf(1)
	}
	return 0
}

// reduceAccF adds the elements src[off + q*s + i], q < m, i < len(acc), into
// acc[i] with the operation of kind.
func reduceAccF(kind reduceKind, acc, shift []float64, src []float32, off, m, s int) {
	w := len(acc)
	if w == 1 && reduceAcc1F(kind, &acc[0], src, off, m, s) {
		return
	}
	for q := 0; q < m; q++ {
		row := src[off+q*s : off+q*s+w]
		acc := acc[:len(row)]
		switch kind {
		case redSum, redMean, redLogSum:
			for i, v := range row {
				acc[i] += float64(v)
			}
		case redL1:
			for i, v := range row {
				acc[i] += math.Abs(float64(v))
			}
		case redL2, redSumSquare:
			for i, v := range row {
				acc[i] += float64(v) * float64(v)
			}
		case redProd:
			for i, v := range row {
				acc[i] *= float64(v)
			}
		case redMax:
			for i, v := range row {
				if x := float64(v); x > acc[i] || x != x {
					acc[i] = x
				}
			}
		case redMin:
			for i, v := range row {
				if x := float64(v); x < acc[i] || x != x {
					acc[i] = x
				}
			}
		case redSumExp:
			for i, v := range row {
				acc[i] += math.Exp(float64(v) - shift[i])
			}
		}
	}
}

// reduceAcc1F is reduceAccF for a single output, walking the last reduced
// dimension with its stride; it reports false for the kinds it leaves to
// the general loop.
func reduceAcc1F(kind reduceKind, acc *float64, src []float32, off, m, s int) bool {
	a := *acc
	switch kind {
	case redSum, redMean, redLogSum, redL2, redSumSquare:
		// Four interleaved partial sums (element q goes to sum q%4),
		// combined in a fixed order: deterministic, and not bound by the
		// latency of one addition chain.
		sq := kind == redL2 || kind == redSumSquare
		var p0, p1, p2, p3 float64
		q := 0
		for ; q+4 <= m; q += 4 {
			x0, x1 := float64(src[off+q*s]), float64(src[off+(q+1)*s])
			x2, x3 := float64(src[off+(q+2)*s]), float64(src[off+(q+3)*s])
			if sq {
				x0, x1, x2, x3 = x0*x0, x1*x1, x2*x2, x3*x3
			}
			p0 += x0
			p1 += x1
			p2 += x2
			p3 += x3
		}
		for ; q < m; q++ {
			x := float64(src[off+q*s])
			if sq {
				x *= x
			}
			p0 += x
		}
		a += (p0 + p1) + (p2 + p3)
	case redMax:
		for q := 0; q < m; q++ {
			if x := float64(src[off+q*s]); x > a || x != x {
				a = x
			}
		}
	case redMin:
		for q := 0; q < m; q++ {
			if x := float64(src[off+q*s]); x < a || x != x {
				a = x
			}
		}
	default:
		return false
	}
	*acc = a
	return true
}

func reduceRunF32(k *reduceKernel, threads int, dst, src []float32) {
	count := float64(k.count)
	k.forItems(threads, func(base, o, i0, w int) {
		var accBuf, shiftBuf [reduceTile]float64
		acc, shift := accBuf[:w], shiftBuf[:w]
		pass := func(kind reduceKind) {
			init := reduceInitF(kind)
			for i := range acc {
				acc[i] = init
			}
			k.walk(func(off, m, s int) { reduceAccF(kind, acc, shift, src, base+i0+off, m, s) })
		}
		if k.kind == redLogSumExp {
			pass(redMax)
			for i, v := range acc {
				if math.IsInf(v, 0) || math.IsNaN(v) {
					v = 0
				}
				shift[i] = v
			}
			pass(redSumExp)
		} else {
			pass(k.kind)
		}
		d := dst[o*k.inner+i0 : o*k.inner+i0+w]
		for i, a := range acc {
			switch k.kind {
			case redMean:
				a /= count
			case redL2:
				a = math.Sqrt(a)
			case redLogSum:
				a = math.Log(a)
			case redLogSumExp:
				a = math.Log(a) + shift[i]
			}
			d[i] = float32(a)
		}
	})
}

type reduceInt interface{ int8 | uint8 | int32 | int64 }

func reduceRunInt[T reduceInt](k *reduceKernel, threads int, dst, src []T, lo, hi int64) {
	init := int64(0)
	switch k.kind {
	case redProd:
		init = 1
	case redMax:
		init = lo
	case redMin:
		init = hi
	}
	kind := k.kind
	k.forItems(threads, func(base, o, i0, w int) {
		var accBuf [reduceTile]int64
		acc := accBuf[:w]
		for i := range acc {
			acc[i] = init
		}
		k.walk(func(off, m, s int) {
			for q := 0; q < m; q++ {
				row := src[base+i0+off+q*s : base+i0+off+q*s+w]
				switch kind {
				case redSum, redMean:
					for i, v := range row {
						acc[i] += int64(v)
					}
				case redL1:
					for i, v := range row {
						if x := int64(v); x < 0 {
							acc[i] -= x
						} else {
							acc[i] += x
						}
					}
				case redSumSquare:
					for i, v := range row {
						acc[i] += int64(v) * int64(v)
					}
				case redProd:
					for i, v := range row {
						acc[i] *= int64(v)
					}
				case redMax:
					for i, v := range row {
						acc[i] = max(acc[i], int64(v))
					}
				case redMin:
					for i, v := range row {
						acc[i] = min(acc[i], int64(v))
					}
				}
			}
		})
		d := dst[o*k.inner+i0 : o*k.inner+i0+w]
		for i, a := range acc {
			if kind == redMean {
				if k.count > 0 {
					a /= int64(k.count)
				} else {
					a = 0
				}
			}
			d[i] = T(a)
		}
	})
}

// argKernel finds the index of the largest (or smallest) element along one
// axis, viewed as [outer, dim, inner].
type argKernel struct {
	isMax, last       bool
	outer, dim, inner int
}

func compileArg(n *Node, in []ValueMeta, isMax bool) (Kernel, []ValueMeta, error) {
	if err := mvRequire(in, 0); err != nil {
		return nil, nil, err
	}
	dt := in[0].DType
	switch dt {
	case Float32, Int8, Uint8, Int32, Int64:
	default:
		return nil, nil, fmt.Errorf("unsupported dtype %v (float32 or an integer type)", dt)
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
	if shape[axis] == 0 {
		return nil, nil, fmt.Errorf("axis %d of shape %v is empty: there is no element to pick", axis, shape)
	}
	k := &argKernel{isMax: isMax, last: n.AttrInt("select_last_index", 0) != 0,
		outer: NumElements(shape[:axis]), dim: shape[axis], inner: NumElements(shape[axis+1:])}
	outShape := append([]int{}, shape[:axis]...)
	if n.AttrInt("keepdims", 1) != 0 {
		outShape = append(outShape, 1)
	}
	outShape = append(outShape, shape[axis+1:]...)
	return k, []ValueMeta{{DType: Int64, Shape: outShape}}, nil
}

// Run writes the int64 indices.
func (k *argKernel) Run(ctx *ExecContext, in, out []*Tensor) error {
	switch in[0].DType {
	case Float32:
		argRun(k, ctx.Threads, out[0].I64, in[0].F32)
	case Int8:
		argRun(k, ctx.Threads, out[0].I64, in[0].I8)
	case Uint8:
		argRun(k, ctx.Threads, out[0].I64, in[0].U8)
	case Int32:
		argRun(k, ctx.Threads, out[0].I64, in[0].I32)
	case Int64:
		argRun(k, ctx.Threads, out[0].I64, in[0].I64)
	default:
		return fmt.Errorf("unsupported dtype %v", in[0].DType)
	}
	return nil
}

// argRun keeps, per output, the best value seen so far. NaN counts as
// larger and smaller than everything (the first NaN wins, as in numpy).
func argRun[T float32 | reduceInt](k *argKernel, threads int, dst []int64, src []T) {
	nTiles := (k.inner + reduceTile - 1) / reduceTile
	parallel.For(threads, k.outer*nTiles, max(1, mvGrain/max(1, k.dim*min(k.inner, reduceTile))), func(lo, hi int) {
		var bestBuf [reduceTile]T
		for it := lo; it < hi; it++ {
			o, t := it/nTiles, it%nTiles
			i0 := t * reduceTile
			w := min(reduceTile, k.inner-i0)
			best := bestBuf[:w]
			idx := dst[o*k.inner+i0 : o*k.inner+i0+w]
			base := o*k.dim*k.inner + i0
			copy(best, src[base:base+w])
			for i := range idx {
				idx[i] = 0
			}
			for q := 1; q < k.dim; q++ {
				row := src[base+q*k.inner : base+q*k.inner+w]
				for i, v := range row {
					b := best[i]
					if b != b { // NaN already chosen
						continue
					}
					var better bool
					switch {
					case v != v:
						better = true
					case k.isMax && k.last:
						better = v >= b
					case k.isMax:
						better = v > b
					case k.last:
						better = v <= b
					default:
						better = v < b
					}
					if better {
						best[i] = v
						idx[i] = int64(q)
					}
				}
			}
		}
	})
}

// ---------------------------------------------------------------- backward

// reduceGradKernel is the backward of a float32 reduction. It walks the
// input exactly like the forward (forItems, walk): every input element
// belongs to one output, and each work item owns the input elements of its
// outputs, so the gradient is written by one goroutine in a fixed order.
//
// Per element, with g the output gradient and y the output:
// Sum g; Mean g/count; SumSquare 2xg; L2 gx/y (0 where y is 0); L1 g*sign(x);
// LogSum g/exp(y); LogSumExp g*exp(x-y); Prod g times the product of the
// other elements (zeros handled exactly); Max and Min g to the first element
// in index order equal to y, the others 0.
type reduceGradKernel struct {
	k   *reduceKernel
	nIn int
}

func gradReduce(n *Node, in, out []ValueMeta, needGrad []bool, kind reduceKind, floatOnly bool) (GradKernel, error) {
	if !mvGradFloat(in, out) || !needGrad[0] {
		return mvNoGrad{}, nil
	}
	fk, _, err := compileReduce(n, in, kind, floatOnly)
	if err != nil {
		return nil, err
	}
	switch k := fk.(type) {
	case *reduceKernel:
		return &reduceGradKernel{k: k, nIn: NumElements(in[0].Shape)}, nil
	case viewKernel: // noop_with_empty_axes: the identity
		return mvIdentityGrad{n: NumElements(in[0].Shape)}, nil
	default:
		return nil, fmt.Errorf("backward: reduction compiled to %T", fk)
	}
}

// Backward adds the gradient of the reduction into gradIn[0].
func (g *reduceGradKernel) Backward(ctx *ExecContext, in, out, gradOut, gradIn []*Tensor) error {
	if gradIn[0] == nil || gradOut[0] == nil {
		return nil
	}
	k := g.k
	for _, c := range []struct {
		what string
		t    *Tensor
		n    int
	}{{"the input gradient", gradIn[0], g.nIn}, {"the input", in[0], g.nIn},
		{"the output gradient", gradOut[0], k.nOut}, {"the output", out[0], k.nOut}} {
		if err := mvGradLen(c.what, c.t, c.n); err != nil {
			return err
		}
	}
	gx, x, gy, y := gradIn[0].F32, in[0].F32, gradOut[0].F32, out[0].F32
	items, grain := k.itemCount()
	if mvSerial(ctx.Threads, items, grain) {
		g.items(gx, x, gy, y, 0, items)
		return nil
	}
	parallel.For(ctx.Threads, items, grain, func(lo, hi int) { g.items(gx, x, gy, y, lo, hi) })
	return nil
}

// items does work items [lo, hi) of the backward.
func (g *reduceGradKernel) items(gx, x, gy, y []float32, lo, hi int) {
	k := g.k
	for it := lo; it < hi; it++ {
		base, o, i0, w := k.itemAt(it)
		yo := o*k.inner + i0
		reduceGradItem(k, gx[base+i0:], x[base+i0:], gy[yo:yo+w], y[yo:yo+w])
	}
}

// reduceGradItem does one work item: gx and x start at the item's first
// input element, gy and y are the item's w outputs.
func reduceGradItem(k *reduceKernel, gx, x, gy, y []float32) {
	w := len(gy)
	var coefBuf [reduceTile]float32
	coef := coefBuf[:w]
	switch k.kind {
	case redSum, redMean, redSumSquare, redL2, redL1:
		// Gradients of the form coef * f(x).
		for i, v := range gy {
			switch k.kind {
			case redSum, redL1:
				coef[i] = v
			case redMean:
				coef[i] = float32(float64(v) / float64(k.count))
			case redSumSquare:
				coef[i] = 2 * v
			case redL2:
				if y[i] != 0 {
					coef[i] = v / y[i]
				} else {
					coef[i] = 0
				}
			}
		}
		kind := k.kind
		if w == 1 {
			reduceGradColumn(k, kind, coef[0], gx, x)
			return
		}
		k.walk(func(off, m, s int) {
			for q := 0; q < m; q++ {
				p := off + q*s
				d, xr := gx[p:p+w], x[p:p+w]
				switch kind {
				case redSum, redMean:
					for i, c := range coef {
						d[i] += c
					}
				case redSumSquare, redL2:
					for i, c := range coef {
						d[i] += c * xr[i]
					}
				case redL1:
					for i, c := range coef {
						switch {
						case xr[i] > 0:
							d[i] += c
						case xr[i] < 0:
							d[i] -= c
						}
					}
				}
			}
		})
	case redLogSum:
		for i, v := range gy {
			coef[i] = float32(float64(v) / math.Exp(float64(y[i])))
		}
		k.walk(func(off, m, s int) {
			for q := 0; q < m; q++ {
				d := gx[off+q*s : off+q*s+w]
				for i, c := range coef {
					d[i] += c
				}
			}
		})
	case redLogSumExp:
		k.walk(func(off, m, s int) {
			for q := 0; q < m; q++ {
				p := off + q*s
				d, xr := gx[p:p+w], x[p:p+w]
				for i, v := range gy {
					d[i] += float32(float64(v) * math.Exp(float64(xr[i])-float64(y[i])))
				}
			}
		})
	case redMax, redMin:
		var foundBuf [reduceTile]bool
		found := foundBuf[:w]
		k.walk(func(off, m, s int) {
			for q := 0; q < m; q++ {
				p := off + q*s
				d, xr := gx[p:p+w], x[p:p+w]
				for i, v := range xr {
					if !found[i] && (v == y[i] || (v != v && y[i] != y[i])) {
						d[i] += gy[i]
						found[i] = true
					}
				}
			}
		})
	case redProd:
		// Product of the non-zero elements and the number of zeros; the
		// gradient of an element is the product of the others.
		var prodBuf [reduceTile]float64
		var zerosBuf [reduceTile]int
		prod, zeros := prodBuf[:w], zerosBuf[:w]
		for i := range prod {
			prod[i] = 1
		}
		k.walk(func(off, m, s int) {
			for q := 0; q < m; q++ {
				for i, v := range x[off+q*s : off+q*s+w] {
					if v == 0 {
						zeros[i]++
					} else {
						prod[i] *= float64(v)
					}
				}
			}
		})
		k.walk(func(off, m, s int) {
			for q := 0; q < m; q++ {
				p := off + q*s
				d, xr := gx[p:p+w], x[p:p+w]
				for i, v := range xr {
					switch {
					case zeros[i] == 0:
						d[i] += float32(float64(gy[i]) * prod[i] / float64(v))
					case zeros[i] == 1 && v == 0:
						d[i] += float32(float64(gy[i]) * prod[i])
					}
				}
			}
		})
	}
}

// reduceGradColumn is reduceGradItem's coef * f(x) case for a single
// output (the last dimension reduced): the walk's runs are strided, so the
// elements are indexed directly.
func reduceGradColumn(k *reduceKernel, kind reduceKind, c float32, gx, x []float32) {
	k.walk(func(off, m, s int) {
		switch kind {
		case redSum, redMean:
			if s == 1 {
				d := gx[off : off+m]
				for i := range d {
					d[i] += c
				}
				return
			}
			for q := 0; q < m; q++ {
				gx[off+q*s] += c
			}
		case redSumSquare, redL2:
			for q := 0; q < m; q++ {
				gx[off+q*s] += c * x[off+q*s]
			}
		case redL1:
			for q := 0; q < m; q++ {
				switch v := x[off+q*s]; {
				case v > 0:
					gx[off+q*s] += c
				case v < 0:
					gx[off+q*s] -= c
				}
			}
		}
	})
}

// mvIdentityGrad adds the output gradient into the input gradient
// unchanged: the backward of a copy (a view op whose kernel runs, such as
// an inference Dropout with a mask output).
type mvIdentityGrad struct{ n int }

// Backward adds gradOut[0] into gradIn[0].
func (g mvIdentityGrad) Backward(ctx *ExecContext, in, out, gradOut, gradIn []*Tensor) error {
	if gradIn[0] == nil || gradOut[0] == nil {
		return nil
	}
	if err := mvGradLen("the input gradient", gradIn[0], g.n); err != nil {
		return err
	}
	if err := mvGradLen("the output gradient", gradOut[0], g.n); err != nil {
		return err
	}
	gx, gy := gradIn[0].F32, gradOut[0].F32
	if mvSerial(ctx.Threads, g.n, mvGrain) {
		mvAddTo(gx, gy)
		return nil
	}
	parallel.For(ctx.Threads, g.n, mvGrain, func(lo, hi int) { mvAddTo(gx[lo:hi], gy[lo:hi]) })
	return nil
}

// mvAddTo adds s into d (same length).
func mvAddTo(d, s []float32) {
	s = s[:len(d)]
	for i, v := range s {
		d[i] += v
	}
}
