package runtime

import (
	"context"
	"fmt"
)

// EvalNode compiles and runs a single node on concrete inputs (all of them
// treated as known at plan time), returning freshly allocated outputs. A nil
// input is an absent optional input. It serves constant folding and tests.
func EvalNode(ctx context.Context, n *Node, inputs []*Tensor, threads int) ([]*Tensor, error) {
	metas := make([]ValueMeta, len(inputs))
	for i, t := range inputs {
		if t != nil {
			metas[i] = ValueMeta{DType: t.DType, Shape: t.Shape, Const: t}
		}
	}
	k, outMeta, err := CompileNode(n, metas)
	if err != nil {
		return nil, err
	}
	outs := make([]*Tensor, len(n.Outputs))
	for i := range outs {
		outs[i] = New(outMeta[i].DType, outMeta[i].Shape...)
	}
	if a, ok := k.(Aliaser); ok {
		src := inputs[a.AliasInput()]
		if src.DType != outMeta[0].DType || src.Len() != NumElements(outMeta[0].Shape) {
			return nil, fmt.Errorf("%v: alias output does not match its input", n)
		}
		outs[0] = src.Reshaped(outMeta[0].Shape...)
		return outs, nil
	}
	if threads < 1 {
		threads = 1
	}
	if ctx == nil {
		ctx = context.Background()
	}
	ec := &ExecContext{Ctx: ctx, Threads: threads}
	if w, ok := k.(WorkspaceUser); ok {
		ec.Workspace = make([]float32, w.WorkspaceSize())
	}
	if err := k.Run(ec, inputs, outs); err != nil {
		return nil, fmt.Errorf("%v: %w", n, err)
	}
	return outs, nil
}
