// Package finetune trains models: transfer learning with frozen layers, a
// new classifier head, and training from scratch, on the runtime's
// autodiff (runtime.GradExecutor).
//
// # A fine-tune in Go
//
// Load an ONNX model, give it a new head, choose what trains, train, save:
//
//	g, err := importer.Load("mnist-8/model.onnx")
//	if err != nil { ... }
//	// Weights computed from initializers become parameters; a model exported
//	// for batch 1 takes any batch.
//	if err := runtime.FoldConstants(g); err != nil { ... }
//	runtime.RemoveDeadCode(g)
//	runtime.MakeBatchDynamic(g)
//
//	// A new 10-class classifier (Xavier-uniform weights, zero bias).
//	if _, err := finetune.ReplaceHead(g, finetune.HeadConfig{NumClasses: 10, Seed: 0}); err != nil { ... }
//
//	// Freeze everything up to the last pooling layer.
//	spec := finetune.FreezeSpec{FreezeUntil: "Pooling160"}
//	if _, err := spec.Apply(g); err != nil { ... }
//
//	train, err := data.LoadMNIST("/usr/share/datasets/fashion-mnist", data.SplitTrain)
//	if err != nil { ... }
//	res, err := finetune.Train(ctx, g, train, nil, finetune.Config{
//		Epochs: 3, BatchSize: 128, LR: 1e-3, Seed: 0,
//		Optimizer:   finetune.OptimizerConfig{Kind: "adam"},
//		CacheFrozen: true,
//		Checkpoint:  "fashion.ckpt",
//	})
//	if err != nil { ... }
//	fmt.Println(res.History[len(res.History)-1].TrainAccuracy)
//	err = importer.Save(g, "fashion.onnx")
//
// Train changes g's parameters in place, so the graph given to it is the
// trained model.
//
// # Choosing what trains
//
// Every parameter has a Trainable flag. FreezeSpec sets them from patterns
// (globs such as "layer1.*", or regular expressions between slashes such
// as "/^layer[12]\./") matched against parameter names and the names of the
// nodes reading them, from a node up to which everything is frozen
// (FreezeUntil), and from the patterns of the only parameters to train
// (TrainOnly). A pattern that matches nothing is an error, so a typo does
// not silently train everything. Integer and shape-like parameters and
// BatchNormalization running statistics never train; a BatchNormalization
// whose scale and bias are frozen stays in inference mode; Config.EvalMode
// names further BatchNormalization and Dropout nodes to keep in inference
// mode. Config.Augment randomly rotates, flips, crops and shifts training
// images, with draws that depend only on the seed, the epoch and the
// example, so augmented runs stay deterministic and resumable.
//
// FindHead and ReplaceHead locate and replace the final classifier: a Gemm
// (transB 0 or 1, with or without bias) or a MatMul with an optional bias
// Add, possibly followed by Softmax, LogSoftmax, Identity, Flatten, Reshape
// or Dropout.
//
// # The training recipe
//
// Config holds the recipe: losses (CrossEntropy with label smoothing and
// class weights as PyTorch computes them, MSE, BCEWithLogits); optimizers
// (SGD with momentum and Nesterov, Adam, AdamW, all matching PyTorch's
// update rules); L1/L2 penalties; learning-rate schedules (constant, step,
// cosine, linear warm-up) and per-group learning rates; gradient clipping
// by global norm or value; a validation split with early stopping that
// keeps the best epoch's weights. When the model ends in Softmax or
// LogSoftmax (cross-entropy) or Sigmoid (BCE), the loss takes the logits
// before it.
//
// # Exactness and restarts
//
// The same seed, data and recipe give bit-identical parameters for a given
// thread count: shuffling, Dropout masks and initialisation are all drawn
// from the seed and the step number. A checkpoint (Config.Checkpoint) is
// written after every epoch and when the context is cancelled (between
// steps, so it describes the state exactly); Config.Resume continues from
// it and ends with the same model as an uninterrupted run. A NaN or Inf in
// the data is reported with the example's index; in the loss or the
// gradients it stops the run with a *NaNError naming the epoch, the step
// and the last good checkpoint.
//
// # Caching the frozen prefix
//
// With Config.CacheFrozen, the part of the network that no trainable
// parameter reaches (SplitFrozen) runs once over the whole data set, and
// each epoch trains only the rest on the cached values: the same result
// (up to float rounding of the inference executor's fused kernels) at a
// fraction of the cost. A Dropout in that prefix makes it random, which
// is an error.
//
// PlotHistory draws the per-epoch loss and accuracy curves to a PNG.
package finetune
