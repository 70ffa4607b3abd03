package runtime

import (
	"fmt"
	goruntime "runtime"

	"github.com/compressml/compress/runtime/kernels"
)

// This file holds the direct forward path of Conv (kernels.DirectConv:
// an implicit GEMM over a padded copy of each image, no im2col matrix) and
// FusedConv, the executor-only Conv + residual Add (+ activation) that
// FuseConvResidual creates.

// newDirectConv returns the direct path for the compiled convolution k, or
// nil when it does not apply: the CPU has no fast direct kernel, the
// weights are not constant, there are groups, or the convolution is not
// 1-D or 2-D.
func newDirectConv(k *convKernel) *kernels.DirectConv {
	g := &k.g
	if !kernels.DirectConvFast() || k.w == nil || k.group != 1 || k.depthwise || k.m == 0 || k.n == 0 ||
		g.in[0] != 1 || g.k[0] != 1 || g.out[0] != 1 || g.pb[0] != 0 || g.pe[0] != 0 {
		return nil
	}
	s := kernels.Conv2DShape{C: k.c, H: g.in[1], W: g.in[2], KH: g.k[1], KW: g.k[2],
		PadTop: g.pb[1], PadLeft: g.pb[2], PadBottom: g.pe[1], PadRight: g.pe[2],
		StrideH: g.s[1], StrideW: g.s[2], DilationH: g.d[1], DilationW: g.d[2]}
	if s.Validate() != nil || s.OutH() != g.out[1] || s.OutW() != g.out[2] {
		return nil
	}
	d, err := kernels.NewDirectConv(&s, k.m, k.w)
	if err != nil {
		return nil
	}
	return d
}

// directWorkspace is the scratch of the direct path: one prepared image
// per concurrently convolved image.
func (k *convKernel) directWorkspace() int {
	return min(max(k.n, 1), goruntime.NumCPU(), 8) * k.direct.ScratchSize()
}

// runDirect runs the direct path over the batch: y = act(conv(x) + bias +
// residual), residual optional (shaped like y).
func (k *convKernel) runDirect(x, y, bias, residual []float32, threads int, ws []float32) {
	relu, after := k.act.epilogue()
	k.direct.RunBatch(k.n, x, y, kernels.ConvEpilogue{Bias: bias, Residual: residual, Relu: relu}, ws, threads)
	if after {
		biasAct(y, k.n*k.m, k.m, k.outSize, nil, k.act, threads)
	}
}

// ---------------------------------------------------------------- FusedConv

func init() {
	Register(OpSpec{Type: "FusedConv", Domain: FusedDomain, MinInputs: 4, MaxInputs: 4, Outputs: 1, Compile: compileFusedConv})
}

// fusedConvKernel is Y = act(Conv(X, W, B) + Z), FusedConv's semantics
// (inputs X, W, B (may be absent), Z; Conv's attributes plus the fused
// activation attributes). With the direct path and Z shaped like the
// convolution's output, it is one pass: Z is added in the tile epilogue.
// Otherwise the convolution writes a buffer of the kernel and the Add
// kernel (with broadcasting) and the activation follow.
type fusedConvKernel struct {
	conv *convKernel
	act  fusedAct
	// Fallback: the convolution's output buffer and the compiled Add.
	tmp *Tensor
	add Kernel
}

func compileFusedConv(n *Node, in []ValueMeta) (Kernel, []ValueMeta, error) {
	if err := checkFloat("Z", in[3]); err != nil {
		return nil, nil, err
	}
	act, err := parseFusedAct(n)
	if err != nil {
		return nil, nil, err
	}
	// The convolution itself, without the activation (it comes after Z).
	cn := *n
	cn.Attrs = map[string]Attr{}
	for name, a := range n.Attrs {
		switch name {
		case "activation", "activation_alpha", "activation_beta", "activation_min", "activation_max":
		default:
			cn.Attrs[name] = a
		}
	}
	ck, cout, err := compileConv(&cn, in[:3])
	if err != nil {
		return nil, nil, err
	}
	conv := ck.(*convKernel)
	k := &fusedConvKernel{conv: conv, act: act}
	if conv.direct != nil && SameShape(in[3].Shape, cout[0].Shape) {
		conv.act = act
		return k, cout, nil
	}
	an := &Node{Name: n.Name + "/add", OpType: "Add", Inputs: []string{"conv", "z"}, Outputs: []string{"y"}}
	add, aout, err := CompileNode(an, []ValueMeta{cout[0], in[3]})
	if err != nil {
		return nil, nil, fmt.Errorf("adding Z of shape %v to the convolution output %v: %w", in[3].Shape, cout[0].Shape, err)
	}
	k.tmp = New(Float32, cout[0].Shape...)
	k.add = add
	return k, aout, nil
}

// WorkspaceSize is the convolution's (the Add needs none).
func (k *fusedConvKernel) WorkspaceSize() int { return k.conv.WorkspaceSize() }

// MACs counts the convolution.
func (k *fusedConvKernel) MACs() int64 { return k.conv.MACs() }

func (k *fusedConvKernel) Run(ctx *ExecContext, in, out []*Tensor) error {
	if k.add == nil {
		c := k.conv
		bias := c.bias
		if c.hasBias && !c.constBias {
			bias = in[2].F32
		}
		c.runDirect(in[0].F32, out[0].F32, bias, in[3].F32, max(ctx.Threads, 1), ctx.Workspace)
		return nil
	}
	if err := k.conv.Run(ctx, in[:3], []*Tensor{k.tmp}); err != nil {
		return err
	}
	if err := k.add.Run(ctx, []*Tensor{k.tmp, in[3]}, out); err != nil {
		return err
	}
	biasAct(out[0].F32, 1, 1, len(out[0].F32), nil, k.act, max(ctx.Threads, 1))
	return nil
}
