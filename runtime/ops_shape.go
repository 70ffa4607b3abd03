package runtime

// Shape and metadata operators: the views (Reshape, Flatten, Squeeze,
// Unsqueeze, Identity, Dropout), the ops whose output is known from input
// metadata alone (Shape, Size), and the generators (Constant,
// ConstantOfShape, Range). The data-movement ops that copy with a new layout
// live in ops_shape_move.go, reductions in ops_reduce.go.
//
// Dropout in training mode (training_mode, input 2, a plan-time true) is
// not a view: it draws a keep mask, see dropoutTrainKernel.
//
// All of them follow the opset-18 form of the ONNX operators (the importer
// rewrites older versions) and accept every runtime dtype unless noted.

import (
	"fmt"
	"hash/fnv"
	"math"

	"github.com/compressml/compress/internal/parallel"
)

func init() {
	Register(OpSpec{Type: "Reshape", MinInputs: 2, MaxInputs: 2, Compile: compileReshape, StaticInputs: []int{1}, NonDiff: []int{1}})
	Register(OpSpec{Type: "Flatten", MinInputs: 1, MaxInputs: 1, Compile: compileFlatten})
	Register(OpSpec{Type: "Squeeze", MinInputs: 1, MaxInputs: 2, Compile: compileSqueeze, StaticInputs: []int{1}, NonDiff: []int{1}})
	Register(OpSpec{Type: "Unsqueeze", MinInputs: 2, MaxInputs: 2, Compile: compileUnsqueeze, StaticInputs: []int{1}, NonDiff: []int{1}})
	Register(OpSpec{Type: "Identity", MinInputs: 1, MaxInputs: 1, Compile: compileIdentity})
	Register(OpSpec{Type: "Dropout", MinInputs: 1, MaxInputs: 3, Outputs: 2, Compile: compileDropout, Grad: gradDropout, StaticInputs: []int{2}, NonDiff: []int{1, 2}})
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
	training, err := dropoutTraining(in)
	if err != nil {
		return nil, nil, err
	}
	shape := append([]int{}, in[0].Shape...)
	outs := []ValueMeta{{DType: in[0].DType, Shape: shape}}
	if len(n.Outputs) > 1 {
		outs = append(outs, ValueMeta{DType: Bool, Shape: shape})
	}
	if training {
		if in[0].DType != Float32 {
			return nil, nil, fmt.Errorf("training-mode Dropout needs float32 data, got %v", in[0].DType)
		}
		k := &dropoutTrainKernel{hash: dropoutHash(n)}
		if len(in) > 1 && in[1].DType != Undefined {
			if in[1].DType != Float32 || NumElements(in[1].Shape) != 1 {
				return nil, nil, fmt.Errorf("ratio (input 1) must be a float32 scalar, got %v %v", in[1].DType, in[1].Shape)
			}
			if c := in[1].Const; c != nil {
				if err := dropoutCheckRatio(c.F32[0]); err != nil {
					return nil, nil, err
				}
				k.ratio, k.constRatio = c.F32[0], true
			}
		} else {
			k.ratio, k.constRatio = 0.5, true
		}
		return k, outs, nil
	}
	if len(n.Outputs) > 1 && n.Outputs[1] != "" {
		return dropoutMaskKernel{}, outs, nil
	}
	return viewKernel{}, outs, nil
}

// dropoutTraining reads Dropout's training_mode (input 2): absent means
// false; a value computed at run time is an error, since training and
// inference compile to different kernels.
func dropoutTraining(in []ValueMeta) (bool, error) {
	if len(in) <= 2 || in[2].DType == Undefined {
		return false, nil
	}
	c := in[2].Const
	if c == nil {
		return false, fmt.Errorf("training_mode (input 2) is computed at run time; it must be known at plan time (an initializer, a constant or a graph input), because training and inference compile to different kernels")
	}
	if c.Len() != 1 || c.DType != Bool {
		return false, fmt.Errorf("training_mode (input 2) must be a bool scalar, got %v %v", c.DType, c.Shape)
	}
	return c.B[0], nil
}

// dropoutCheckRatio accepts a drop probability in [0, 1).
func dropoutCheckRatio(r float32) error {
	if !(r >= 0 && r < 1) {
		return fmt.Errorf("ratio (input 1) is %v; it must be in [0, 1)", r)
	}
	return nil
}

// dropoutHash identifies a Dropout node in its random streams: FNV-1a of
// its name and first output, mixed with its seed attribute when it has one.
func dropoutHash(n *Node) uint64 {
	h := fnv.New64a()
	h.Write([]byte(n.Name))
	h.Write([]byte{0})
	if len(n.Outputs) > 0 {
		h.Write([]byte(n.Outputs[0]))
	}
	v := h.Sum64()
	if a, ok := n.Attrs["seed"]; ok && a.Kind == AttrInt {
		v = dropoutMix(v ^ dropoutMix(uint64(a.I)))
	}
	return v
}

// dropoutGolden is splitmix64's increment (2^64 / golden ratio).
const dropoutGolden = 0x9E3779B97F4A7C15

// dropoutMix hashes a key: one splitmix64 step from state z.
func dropoutMix(z uint64) uint64 { return dropoutFinal(z + dropoutGolden) }

// dropoutFinal is the splitmix64 output function.
func dropoutFinal(z uint64) uint64 {
	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9
	z = (z ^ (z >> 27)) * 0x94D049BB133111EB
	return z ^ (z >> 31)
}

// dropoutChunk is the number of elements drawn from one random stream.
// Streams are keyed by (ExecContext.Seed, node hash, chunk index), so a mask
// depends on neither the thread count nor the order chunks run in.
const dropoutChunk = 1 << 12

// dropoutTrainKernel is Dropout in training mode: it keeps each element
// with probability 1-ratio (a Bernoulli draw of 32 bits from a splitmix64
// stream per chunk), writes y = x*mask/(1-ratio) and the mask as output 1
// when present. Ratio 0 is the identity with an all-true mask.
type dropoutTrainKernel struct {
	hash       uint64
	ratio      float32 // when constRatio; otherwise read from input 1
	constRatio bool
}

// dropoutScale is the factor kept elements are multiplied by.
func dropoutScale(ratio float32) float32 { return float32(1 / (1 - float64(ratio))) }

// ratioOf returns the drop ratio of this run.
func (k *dropoutTrainKernel) ratioOf(in []*Tensor) (float32, error) {
	if k.constRatio {
		return k.ratio, nil
	}
	if len(in) < 2 || in[1] == nil || len(in[1].F32) != 1 {
		return 0, fmt.Errorf("ratio (input 1) must be a float32 scalar")
	}
	r := in[1].F32[0]
	return r, dropoutCheckRatio(r)
}

// Run draws the mask and writes the scaled output.
func (k *dropoutTrainKernel) Run(ctx *ExecContext, in, out []*Tensor) error {
	ratio, err := k.ratioOf(in)
	if err != nil {
		return err
	}
	x, y := in[0].F32, out[0].F32
	var mask []bool
	if len(out) > 1 && out[1] != nil {
		mask = out[1].B
	}
	if len(y) != len(x) || (mask != nil && len(mask) != len(x)) {
		return fmt.Errorf("outputs do not have the %d elements of the input", len(x))
	}
	if ratio == 0 {
		copy(y, x)
		for i := range mask {
			mask[i] = true
		}
		return nil
	}
	d := dropoutDraw{x: x, y: y, mask: mask, scale: dropoutScale(ratio),
		thr: uint64((1 - float64(ratio)) * (1 << 32)), seed: dropoutMix(ctx.Seed ^ dropoutMix(k.hash))}
	nChunks := (len(x) + dropoutChunk - 1) / dropoutChunk
	grain := max(1, mvGrain/dropoutChunk)
	if mvSerial(ctx.Threads, nChunks, grain) {
		d.chunks(0, nChunks)
		return nil
	}
	parallel.For(ctx.Threads, nChunks, grain, func(lo, hi int) { d.chunks(lo, hi) })
	return nil
}

// dropoutDraw is one training-mode Dropout run.
type dropoutDraw struct {
	x, y  []float32
	mask  []bool // nil when the node has no mask output
	scale float32
	thr   uint64 // keep when a uniform 32-bit draw is below thr = keep*2^32
	seed  uint64 // the run's seed mixed with the node's hash
}

// chunks draws chunks [lo, hi); chunk c uses its own splitmix64 stream
// starting from a hash of (seed, c).
func (d dropoutDraw) chunks(lo, hi int) {
	for c := lo; c < hi; c++ {
		// A splitmix64 stream per chunk, its start keyed by (seed, c).
		state := dropoutMix(d.seed ^ dropoutMix(uint64(c)))
		e0, e1 := c*dropoutChunk, min((c+1)*dropoutChunk, len(d.x))
		xs, ys := d.x[e0:e1], d.y[e0:e1]
		ys = ys[:len(xs)]
		var ms []bool
		if d.mask != nil {
			ms = d.mask[e0:e1]
		}
		// Branch-free: keep is 1 when the draw is below thr (the
		// subtraction then wraps and sets bit 63), and the kept value's bits
		// are masked with all ones or all zeros.
		var u uint64
		for i, v := range xs {
			if i&1 == 0 {
				state += dropoutGolden
				u = dropoutFinal(state)
			} else {
				u >>= 32
			}
			keep := ((u & 0xFFFFFFFF) - d.thr) >> 63
			ys[i] = math.Float32frombits(math.Float32bits(v*d.scale) & -uint32(keep))
			if ms != nil {
				ms[i] = keep != 0
			}
		}
	}
}

// dropoutGradKernel is the backward of training-mode Dropout:
// dx += dy*mask/(1-ratio), with the mask the forward wrote as output 1.
type dropoutGradKernel struct {
	fwd *dropoutTrainKernel
	n   int
}

func gradDropout(n *Node, in, out []ValueMeta, needGrad []bool) (GradKernel, error) {
	if !mvGradFloat(in, out) || !needGrad[0] {
		return mvNoGrad{}, nil
	}
	fk, _, err := compileDropout(n, in)
	if err != nil {
		return nil, err
	}
	tk, ok := fk.(*dropoutTrainKernel)
	if !ok {
		return mvIdentityGrad{n: NumElements(in[0].Shape)}, nil
	}
	if len(n.Outputs) < 2 || n.Outputs[1] == "" {
		return nil, fmt.Errorf("training-mode Dropout needs its mask output (output 1) for the backward pass")
	}
	return &dropoutGradKernel{fwd: tk, n: NumElements(in[0].Shape)}, nil
}

// Backward adds the masked, scaled output gradient into gradIn[0].
func (g *dropoutGradKernel) Backward(ctx *ExecContext, in, out, gradOut, gradIn []*Tensor) error {
	if gradIn[0] == nil || gradOut[0] == nil {
		return nil
	}
	ratio, err := g.fwd.ratioOf(in)
	if err != nil {
		return err
	}
	if err := mvGradLen("the input gradient", gradIn[0], g.n); err != nil {
		return err
	}
	if err := mvGradLen("the output gradient", gradOut[0], g.n); err != nil {
		return err
	}
	if len(out) < 2 || out[1] == nil || len(out[1].B) != g.n {
		return fmt.Errorf("backward: the mask (output 1) is missing or has the wrong size")
	}
	gx, gy, mask := gradIn[0].F32, gradOut[0].F32, out[1].B
	scale := dropoutScale(ratio)
	if mvSerial(ctx.Threads, g.n, mvGrain) {
		dropoutGradRange(gx, gy, mask, scale)
		return nil
	}
	parallel.For(ctx.Threads, g.n, mvGrain, func(lo, hi int) { dropoutGradRange(gx[lo:hi], gy[lo:hi], mask[lo:hi], scale) })
	return nil
}

// dropoutGradRange adds scale*gy into gx where mask is set.
func dropoutGradRange(gx, gy []float32, mask []bool, scale float32) {
	gy, mask = gy[:len(gx)], mask[:len(gx)]
	for i, v := range gy {
		if mask[i] {
			gx[i] += v * scale
		}
	}
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
