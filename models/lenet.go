package models

import (
	"fmt"

	"github.com/compressml/compress/runtime"
)

func init() {
	Register(Arch{
		Name:    "lenet5",
		Summary: "LeNet-5: Conv5x5(6, pad 2)-Relu-MaxPool2, Conv5x5(16)-Relu-MaxPool2, Gemm 120-84-classes with Relu",
		Build:   buildLeNet5,
	})
}

// LeNetMinInput is the smallest height and width LeNet-5 accepts: conv1
// keeps the size, pool1 halves it, conv2 (5x5, no padding) removes 4 and
// pool2 halves again, which must leave at least 1.
const LeNetMinInput = 12

// buildLeNet5 makes LeNet-5 with Relu and max pooling (the modern variant):
//
//	conv1 5x5 C->6 pad 2, relu1, pool1 2x2/2,
//	conv2 5x5 6->16,      relu2, pool2 2x2/2,
//	flatten, fc1 ->120, relu3, fc2 ->84, relu4, fc ->classes.
//
// Width scales 6, 16, 120 and 84. For 1x28x28 and 10 classes, Width 1, it
// has 61,706 parameters; fc1 adapts to the input size (16*5*5 inputs for 28x28).
func buildLeNet5(cfg Config) (*runtime.Graph, error) {
	c, h, w, err := cfg.imageInput("lenet5")
	if err != nil {
		return nil, err
	}
	if h < LeNetMinInput || w < LeNetMinInput {
		return nil, fmt.Errorf("input %s is too small: lenet5 needs height and width of at least %d (28x28 is typical); use mlp or resnet for smaller inputs",
			FormatShape(cfg.Input), LeNetMinInput)
	}
	ch, err := cfg.scaledAll([]int{6, 16, 120, 84})
	if err != nil {
		return nil, err
	}
	// Spatial size after pool1 (floor), conv2 (valid 5x5) and pool2 (floor).
	oh, ow := (h/2-4)/2, (w/2-4)/2
	b := newBuilder("lenet5", cfg)
	x := b.conv("conv1", InputName, c, ch[0], 5, 1, 2, 1, true)
	x = b.relu("relu1", x)
	x = b.maxPool("pool1", x, 2, 2)
	x = b.conv("conv2", x, ch[0], ch[1], 5, 1, 0, 1, true)
	x = b.relu("relu2", x)
	x = b.maxPool("pool2", x, 2, 2)
	x = b.flatten("flatten", x)
	x = b.gemm("fc1", "", x, ch[1]*oh*ow, ch[2])
	x = b.relu("relu3", x)
	x = b.gemm("fc2", "", x, ch[2], ch[3])
	x = b.relu("relu4", x)
	b.gemm(ClassifierName, OutputName, x, ch[3], cfg.Classes)
	return b.finish(OutputName, cfg.Classes)
}
