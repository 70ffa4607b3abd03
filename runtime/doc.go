// Package runtime is the native execution engine of compress: tensors, the
// graph intermediate representation, the operator registry, graph passes and
// the executor.
//
// # Tensors and graphs
//
// A Tensor is a dense row-major array of one of six element types (float32,
// int8, uint8, int32, int64, bool). A Graph holds Nodes in topological
// order, the graph's inputs and outputs, and its parameters (ONNX
// initializers), each marked trainable or frozen. Nodes are kept in one
// canonical form per op, that of ONNX opset 18: the importer rewrites older
// op versions (Unsqueeze axes as attribute, Clip bounds as attributes,
// legacy BatchNormalization, ...) so that kernels implement a single
// semantics.
//
// # Operators
//
// Every op registers once, in an init function, with Register: its type,
// domain, input and output counts and a CompileFunc. Compiling a node for
// concrete input shapes validates it, infers its outputs' types and shapes
// (and their values when they are known at plan time, as for Shape) and
// returns a Kernel. Kernels may report their cost (MACCounter), ask for
// shared scratch memory (WorkspaceUser) or declare that their output is a
// view of an input (Aliaser).
//
// # Executor
//
//	ex, err := runtime.NewExecutor(g, runtime.Options{Threads: 2})
//	out, err := ex.Run(ctx, map[string]*runtime.Tensor{"input": x})
//
// NewExecutor optimises a private copy of the graph (Optimize: constant
// folding, BatchNorm folding, bias and activation fusion, QDQ fusion onto
// the int8 kernels, dead-code removal, and sparse CSR kernels for Conv, Gemm
// and MatMul layers whose weights are mostly zeros where those are faster;
// Options.NoSparse turns that off). Each distinct set of input shapes is compiled once into a Plan:
// constants are folded, kernels are compiled with weights prepacked, and
// every intermediate value gets a buffer, reused as soon as the value is
// dead (best fit by size), so that a run allocates only its returned
// outputs. Kernels split work over Threads goroutines in fixed contiguous
// ranges, so results are bit-identical from run to run for a given thread
// count.
package runtime
