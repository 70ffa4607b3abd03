package models

import (
	"fmt"

	"github.com/compressml/compress/runtime"
)

func init() {
	Register(Arch{
		Name: "resnet",
		Summary: "small ResNet (CIFAR style): Conv3x3 stem, 3 stages of BasicBlocks (16-32-64 channels x width, " +
			"depth blocks each, stride-2 downsampling), GlobalAveragePool, Gemm",
		Build: buildResNet,
	})
}

// resnetChannels are the channels of the stem and the three stages of
// "resnet" before Width.
var resnetChannels = [3]int{16, 32, 64}

// buildResNet makes the CIFAR-style ResNet of He et al. (ResNet-8/14/20 for
// Depth 1/2/3) with projection shortcuts, named like torchvision:
//
//	conv1 3x3/1 -> bn1 -> relu
//	layerS.B (S = 1..3, B = 0..Depth-1), a BasicBlock:
//	  conv1 3x3/s -> bn1 -> relu1 -> conv2 3x3/1 -> bn2 -> add -> relu2
//	  with the shortcut downsample.0 (1x1/s Conv) -> downsample.1 (BN) when
//	  the block changes the size (s = 2 in the first block of stages 2 and 3)
//	avgpool (GlobalAveragePool) -> flatten -> fc -> logits
//
// Convolutions before a BatchNormalization have no bias, as in PyTorch.
func buildResNet(cfg Config) (*runtime.Graph, error) {
	c, _, _, err := cfg.imageInput("resnet")
	if err != nil {
		return nil, err
	}
	ch, err := cfg.scaledAll(resnetChannels[:])
	if err != nil {
		return nil, err
	}
	b := newBuilder(fmt.Sprintf("resnet%d", 6*cfg.Depth+2), cfg)
	x := b.conv("conv1", InputName, c, ch[0], 3, 1, 1, 1, false)
	x = b.bn("bn1", x, ch[0])
	x = b.relu("relu", x)
	in := ch[0]
	for s, out := range ch {
		for blk := 0; blk < cfg.Depth; blk++ {
			stride := 1
			if s > 0 && blk == 0 {
				stride = 2
			}
			x = b.basicBlock(fmt.Sprintf("layer%d.%d", s+1, blk), x, in, out, stride)
			in = out
		}
	}
	x = b.globalAvgPool("avgpool", x)
	x = b.flatten("flatten", x)
	b.gemm(ClassifierName, OutputName, x, in, cfg.Classes)
	return b.finish(OutputName, cfg.Classes)
}

// basicBlock adds one residual BasicBlock named p (e.g. "layer2.0").
func (b *builder) basicBlock(p, x string, in, out, stride int) string {
	y := b.conv(p+".conv1", x, in, out, 3, stride, 1, 1, false)
	y = b.bn(p+".bn1", y, out)
	y = b.relu(p+".relu1", y)
	y = b.conv(p+".conv2", y, out, out, 3, 1, 1, 1, false)
	y = b.bn(p+".bn2", y, out)
	short := x
	if stride != 1 || in != out {
		short = b.conv(p+".downsample.0", x, in, out, 1, stride, 0, 1, false)
		short = b.bn(p+".downsample.1", short, out)
	}
	y = b.add(p+".add", y, short)
	return b.relu(p+".relu2", y)
}
