package models

import (
	"fmt"

	"github.com/compressml/compress/runtime"
)

func init() {
	Register(Arch{
		Name: "mobilenet",
		Summary: "small MobileNet (v1 style): Conv3x3 stem, 5 depthwise-separable blocks " +
			"(64-128-128-256-256 channels x width, stride 2 at the 128 and 256 steps), GlobalAveragePool, Gemm",
		Build: buildMobileNet,
	})
}

// mobileNetBlocks are the output channels (before Width) and strides of the
// depthwise-separable blocks of "mobilenet".
var mobileNetBlocks = [...]struct{ Channels, Stride int }{
	{64, 1}, {128, 2}, {128, 1}, {256, 2}, {256, 1},
}

// MobileNetStem is the number of channels of the stem convolution of
// "mobilenet", before Width.
const MobileNetStem = 32

// buildMobileNet makes a reduced MobileNet v1 for small images (Relu
// instead of Relu6), named like the usual PyTorch CIFAR port:
//
//	conv1 3x3/1 -> bn1 -> relu
//	layers.I: conv1 (3x3 depthwise, group = channels, stride s) -> bn1 -> relu1
//	          -> conv2 (1x1 pointwise) -> bn2 -> relu2
//	avgpool (GlobalAveragePool) -> flatten -> fc -> logits
func buildMobileNet(cfg Config) (*runtime.Graph, error) {
	c, _, _, err := cfg.imageInput("mobilenet")
	if err != nil {
		return nil, err
	}
	in, err := cfg.scaled(MobileNetStem)
	if err != nil {
		return nil, err
	}
	b := newBuilder("mobilenet", cfg)
	x := b.conv("conv1", InputName, c, in, 3, 1, 1, 1, false)
	x = b.bn("bn1", x, in)
	x = b.relu("relu", x)
	for i, blk := range mobileNetBlocks {
		out, err := cfg.scaled(blk.Channels)
		if err != nil {
			return nil, err
		}
		p := fmt.Sprintf("layers.%d", i)
		x = b.conv(p+".conv1", x, in, in, 3, blk.Stride, 1, in, false)
		x = b.bn(p+".bn1", x, in)
		x = b.relu(p+".relu1", x)
		x = b.conv(p+".conv2", x, in, out, 1, 1, 0, 1, false)
		x = b.bn(p+".bn2", x, out)
		x = b.relu(p+".relu2", x)
		in = out
	}
	x = b.globalAvgPool("avgpool", x)
	x = b.flatten("flatten", x)
	b.gemm(ClassifierName, OutputName, x, in, cfg.Classes)
	return b.finish(OutputName, cfg.Classes)
}
