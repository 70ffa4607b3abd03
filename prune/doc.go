// Package prune removes weights from models: unstructured magnitude
// pruning (layer-wise or global), N:M semi-structured sparsity, and
// structured channel pruning that physically removes filters so that the
// result is a smaller dense ONNX model. It also drives gradual pruning with
// fine-tuning between steps, per-layer sensitivity analysis, and builds
// executors that run mostly-zero weights with the runtime's sparse kernels.
//
// # Layers and masks
//
// A prunable layer (Layer) is a Conv, Gemm or MatMul node whose weight is a
// float32 parameter of rank >= 2; Layers lists them in graph order. A layer
// is viewed as Out rows (output channels or units) of In values each along
// the reduction dimension: for Conv in_channels/group*kh*kw per output
// channel, for Gemm and MatMul K per output unit. Pruning produces Masks, a
// keep-mask per parameter; Masks.Apply zeroes the pruned values and, called
// after every optimizer step of fine-tuning (FineTune does this through
// finetune.Config.AfterStep), keeps them exactly zero.
//
// Options.Exclude patterns (globs or /regular expressions/ over node and
// parameter names) keep layers dense, and so are, by default, the first
// and the last prunable layer (Options.IncludeFirstLast prunes them too).
// A Plan (per-layer sparsities, as written by Sensitivity) overrides
// Options.Sparsity for the layers it names, and those layers are pruned
// even when they are the first or the last.
//
// # Methods
//
//   - Magnitude: the values of smallest |w| are pruned, exactly
//     round(s*n) of each layer (ScopeLayer), or of all selected layers
//     together (ScopeGlobal), ties broken by position.
//   - NM: in every run of M consecutive values along the reduction
//     dimension, only the N of largest |w| are kept (2:4, 4:8); the
//     reduction dimension must be a multiple of M.
//   - Channel: output channels are ranked by the L1 or L2 norm of their
//     filters, or by |gamma| of the BatchNormalization that follows, and
//     removed physically (see AnalyzeChannels and RemoveChannels).
//
// # Structured pruning and dependency groups
//
// Channels cannot be removed one layer at a time: a Conv's output channels
// are the input channels of its consumers, BatchNormalization parameters
// are per channel, a residual Add ties the channels of both branches, a
// depthwise convolution's channels follow its input, Concat shifts
// channels by the sizes of the inputs before, and a Flatten before a Gemm
// turns channel c into a block of H*W input features. AnalyzeChannels
// walks the graph and builds Groups of channel spaces that must be pruned
// together (scores are summed over the group's producers); channel spaces
// that reach a graph output or an operator it does not understand are
// fixed. Pruning a group first masks its producers (weights, biases, and
// BatchNormalization scale and shift) so that the channel is exactly zero,
// which makes fine-tuning with the mask and the final removal exact for
// Conv->BN->ReLU chains; RemoveChannels then slices every parameter
// involved and checks the result by running it.
//
// # Schedules
//
// CubicSparsity is the schedule of Zhu and Gupta (2017):
// s_t = s_f + (s_i - s_f)(1 - t/n)^3. Gradual pruning prunes to s_t at each
// of n steps and fine-tunes in between.
package prune
