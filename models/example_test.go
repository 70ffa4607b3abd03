package models_test

import (
	"context"
	"fmt"

	"github.com/compressml/compress/models"
	"github.com/compressml/compress/runtime"
)

func ExampleBuild() {
	g, err := models.Build("lenet5", models.Config{Input: []int{1, 28, 28}, Classes: 10, Seed: 1})
	if err != nil {
		fmt.Println(err)
		return
	}
	total, trainable := models.CountParams(g)
	fmt.Println(g.Inputs[0].Name, g.Inputs[0].Shape, "->", g.Outputs[0].Name, g.Outputs[0].Shape)
	fmt.Println(total, "parameters,", trainable, "trainable")
	fmt.Println(g.Params["fc.weight"].T.Shape)

	if len(runtime.UnsupportedOps(g)) == 0 { // run it once every op is available
		ex, err := runtime.NewExecutor(g, runtime.Options{Threads: 1})
		if err == nil {
			batch := runtime.New(runtime.Float32, 4, 1, 28, 28)
			out, err := ex.Run(context.Background(), map[string]*runtime.Tensor{"input": batch})
			if err == nil {
				_ = out["logits"] // shape [4 10]
			}
		}
	}
	// Output:
	// input [-1 1 28 28] -> logits [-1 10]
	// 61706 parameters, 61706 trainable
	// [10 84]
}
