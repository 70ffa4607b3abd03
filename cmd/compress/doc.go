// Command compress imports ONNX models, runs them natively in pure Go,
// fine-tunes, prunes, quantizes and evaluates them, and writes them back to
// ONNX.
//
// Usage:
//
//	compress COMMAND [flags] [arguments]
//
// The commands are:
//
//	inspect MODEL          list every node with its op, output shapes,
//	                       parameter count and MACs, with totals, the opset,
//	                       producer, IR version, inputs and outputs
//	run                    run a model on input tensors (ONNX TensorProto .pb
//	                       or NumPy .npy), print and save the outputs
//	eval                   accuracy, top-5 accuracy, per-class metrics and
//	                       the confusion matrix of a classifier on a data set
//	                       (idx folder, CSV, NPY/NPZ or image folder)
//	bench                  latency percentiles and throughput on random
//	                       inputs after warm-up
//	convert IN OUT         load a model and save it again (canonical form,
//	                       opset 18 or newer)
//	finetune               train a model on new data with layers frozen and
//	                       an optional new classifier head
//	models                 list or create built-in architectures
//	prune                  magnitude, N:M or channel pruning
//	sensitivity            per-layer pruning sensitivity and a plan
//	quantize               int8 post-training quantization
//	version                print the version
//
// Every command takes --help, which shows its flags and an example.
// Flags may come before or after the positional arguments. Commands that
// report measurements take --json and then print one JSON object with
// stable snake_case field names (for example "accuracy" for eval), so that
// scripts and CI can gate on them. Commands that run models take --threads
// (0, the default, uses every core); results are bit-identical from run to
// run for a given thread count.
//
// Examples:
//
//	compress inspect mnist-8/model.onnx
//	compress run --model mnist-8/model.onnx --input mnist-8/test_data_set_0/input_0.pb --output out.npy
//	compress eval --model mnist-8/model.onnx --data /usr/share/datasets/fashion-mnist --json
//	compress bench --model mnist-8/model.onnx --threads 2 --iters 1000
//	compress convert mnist-8/model.onnx mnist-8-opset18.onnx
//
// On error compress prints one message to standard error saying what went
// wrong, where, and what to do, and exits with status 1.
package main
