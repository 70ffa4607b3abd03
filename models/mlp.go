package models

import (
	"strconv"

	"github.com/compressml/compress/runtime"
)

func init() {
	Register(Arch{
		Name:    "mlp",
		Summary: "multilayer perceptron: Flatten, then Gemm+Relu per hidden layer (default 128), then the Gemm classifier",
		Build:   buildMLP,
	})
}

// buildMLP makes Flatten -> [fcI (Gemm) -> reluI]... -> fc (Gemm) -> logits.
// Hidden layers are fc1, fc2, ...; the classifier is fc. Flatten is left
// out when the input already is [N, features].
func buildMLP(cfg Config) (*runtime.Graph, error) {
	hidden, err := cfg.scaledAll(cfg.Hidden)
	if err != nil {
		return nil, err
	}
	b := newBuilder("mlp", cfg)
	x := InputName
	if len(cfg.Input) > 1 {
		x = b.flatten("flatten", x)
	}
	in := runtime.NumElements(cfg.Input)
	for i, h := range hidden {
		id := strconv.Itoa(i + 1)
		x = b.gemm("fc"+id, "", x, in, h)
		x = b.relu("relu"+id, x)
		in = h
	}
	b.gemm(ClassifierName, OutputName, x, in, cfg.Classes)
	return b.finish(OutputName, cfg.Classes)
}
