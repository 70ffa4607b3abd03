package finetune_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/compressml/compress/data"
	"github.com/compressml/compress/finetune"
	"github.com/compressml/compress/importer"
	"github.com/compressml/compress/models"
	rt "github.com/compressml/compress/runtime"
)

// Example fine-tunes a small MLP: a new 2-class head, the first layer
// frozen, three epochs of Adam, then the model is saved as ONNX.
func Example() {
	// Two classes of 4-feature examples: x0 > 0 is class 1.
	x := rt.New(rt.Float32, 64, 4)
	labels := make([]int, 64)
	for i := range labels {
		labels[i] = i % 2
		for j := 0; j < 4; j++ {
			x.F32[i*4+j] = float32((i*7+j*3)%5) / 5
		}
		x.F32[i*4] = float32(2*labels[i]-1) * (1 + float32(i%3))
	}
	train, err := data.NewInMemory("toy", x, labels, 2)
	if err != nil {
		fmt.Println(err)
		return
	}

	g, err := models.Build("mlp", models.Config{Input: []int{4}, Classes: 10, Hidden: []int{8}, Seed: 1})
	if err != nil {
		fmt.Println(err)
		return
	}
	head, err := finetune.ReplaceHead(g, finetune.HeadConfig{NumClasses: 2, Seed: 1})
	if err != nil {
		fmt.Println(err)
		return
	}
	trainable, err := finetune.FreezeSpec{Freeze: []string{"fc1"}}.Apply(g)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("new head:", head.Node, g.Params[head.Weight].T.Shape)
	fmt.Println("trainable:", trainable)

	res, err := finetune.Train(context.Background(), g, train, nil, finetune.Config{
		Epochs: 3, BatchSize: 16, LR: 0.05, Seed: 1, Threads: 1,
		Optimizer:   finetune.OptimizerConfig{Kind: "adam"},
		CacheFrozen: true,
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("epochs:", len(res.History), "cached prefix:", res.CachedFrozen)

	dir, err := os.MkdirTemp("", "finetune-example")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer os.RemoveAll(dir)
	if err := importer.Save(g, filepath.Join(dir, "toy.onnx")); err != nil {
		fmt.Println(err)
	}
	// Output:
	// new head: fc [2 8]
	// trainable: [fc.bias fc.weight]
	// epochs: 3 cached prefix: true
}
