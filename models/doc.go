// Package models builds compress's built-in architectures as fresh,
// randomly initialised runtime.Graph values: the starting point for training
// from scratch (`compress models new`, then `compress finetune`), the
// students of distillation, and small models for tests.
//
// # Architectures
//
// Build(arch, cfg) looks arch up in a registry filled at init (see Archs):
//
//   - "mlp": Flatten, one Gemm+Relu per hidden layer (Config.Hidden, default
//     [128]), then the Gemm classifier. Any input shape; [features] for
//     tabular data.
//   - "lenet5": LeNet-5 with Relu and max pooling: Conv5x5(6, pad 2),
//     Conv5x5(16), Gemm 120 and 84, then the classifier. Needs [C H W] with
//     H, W >= 12; the first Gemm adapts to the input size.
//   - "resnet": the CIFAR-style ResNet (stem Conv3x3+BN+Relu, three stages
//     of Config.Depth BasicBlocks with 16, 32 and 64 channels, stride-2
//     downsampling with 1x1 Conv+BN shortcuts, GlobalAveragePool, Gemm).
//     Depth 1, 2, 3 give ResNet-8, -14, -20.
//   - "mobilenet": a reduced MobileNet v1 (depthwise-separable blocks).
//
// Config.Width multiplies every channel count and hidden size, so
// Width 0.5 halves a model and Width 2 doubles it.
//
// # Graph conventions
//
// Every graph has one float32 input "input" of shape [N, Input...] whose
// batch dimension is dynamic (-1, named "N"), and one output "logits" of
// shape [N, Classes] (no softmax). Nodes are in opset-18 form (Graph.Opset
// is 18) and named after what they are ("conv1", "layer1.0.add", "fc").
// Parameters are named like a PyTorch state_dict, so weights move between
// the two by name:
//
//	conv1.weight                 [16 1 3 3]   trainable
//	bn1.weight, bn1.bias         [16]         trainable (BN scale and bias)
//	bn1.running_mean/_var        [16]         not trainable
//	layer2.0.downsample.0.weight [32 16 1 1]  trainable
//	fc.weight, fc.bias           [10 64], [10] trainable
//
// Fully connected layers are Gemm with transB=1 and a weight [out, in], like
// PyTorch's Linear. The final classifier is always the Gemm node "fc"
// (ClassifierName), the one `--num-classes` replaces. Convolutions followed
// by a BatchNormalization have no bias.
//
// # Initialisation and determinism
//
// Conv weights default to Kaiming normal and Gemm weights to Xavier uniform
// (Config.Init picks one initialiser for both); biases start at 0 and
// BatchNormalization at scale 1, bias 0, mean 0, variance 1. All random
// numbers come from NewRNG(Config.Seed), a PCG generator, drawn in graph
// order: the same Config always gives bit-identical weights, and a different
// seed different ones. The initialisers (XavierUniform, XavierNormal,
// KaimingUniform, KaimingNormal, with Fans to compute fan-in and fan-out)
// are exported for the trainer, which needs them for new heads.
//
// # Example
//
//	g, err := models.Build("lenet5", models.Config{
//		Input:   []int{1, 28, 28},
//		Classes: 10,
//		Seed:    1,
//	})
//	if err != nil {
//		return err
//	}
//	total, trainable := models.CountParams(g) // 61706, 61706
//	ex, err := runtime.NewExecutor(g, runtime.Options{})
//	...
//	out, err := ex.Run(ctx, map[string]*runtime.Tensor{"input": batch}) // out["logits"]: [N 10]
//
// New architectures register themselves with Register from an init
// function.
package models
