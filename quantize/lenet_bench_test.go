package quantize

import (
	"context"
	"os"
	"testing"

	"github.com/compressml/compress/importer"
	rt "github.com/compressml/compress/runtime"
)

// benchLeNetModel benchmarks one ONNX model named by the environment
// variable env (e.g. the demo's LeNet-5 in fp32 or int8) at the given batch
// and thread count. It skips when the variable is unset, so `go test` never
// depends on files outside the repository.
func benchLeNetModel(b *testing.B, env string, batch, threads int) {
	path := os.Getenv(env)
	if path == "" {
		b.Skipf("set %s to an ONNX model (e.g. runs/demo/lenet5-fashion-int8.onnx from scripts/demo) to run this benchmark", env)
	}
	g, err := importer.Load(path)
	if err != nil {
		b.Fatalf("loading %s: %v", path, err)
	}
	ex, err := rt.NewExecutor(g, rt.Options{Threads: threads})
	if err != nil {
		b.Fatalf("executor for %s: %v", path, err)
	}
	if len(g.Inputs) != 1 {
		b.Fatalf("%s: want one input, got %d", path, len(g.Inputs))
	}
	in := rt.New(rt.Float32, batch, 1, 28, 28)
	x := in.F32
	for i := range x {
		x[i] = float32(i%251) / 251
	}
	inputs := map[string]*rt.Tensor{g.Inputs[0].Name: in}
	ctx := context.Background()
	if _, err := ex.Run(ctx, inputs); err != nil {
		b.Fatalf("running %s: %v", path, err)
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := ex.Run(ctx, inputs); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkLeNetFP32B32T1(b *testing.B) { benchLeNetModel(b, "LENET_FP32", 32, 1) }
func BenchmarkLeNetInt8B32T1(b *testing.B) { benchLeNetModel(b, "LENET_INT8", 32, 1) }
func BenchmarkLeNetFP32B32T2(b *testing.B) { benchLeNetModel(b, "LENET_FP32", 32, 2) }
func BenchmarkLeNetInt8B32T2(b *testing.B) { benchLeNetModel(b, "LENET_INT8", 32, 2) }
func BenchmarkLeNetFP32B1T1(b *testing.B)  { benchLeNetModel(b, "LENET_FP32", 1, 1) }
func BenchmarkLeNetInt8B1T1(b *testing.B)  { benchLeNetModel(b, "LENET_INT8", 1, 1) }
func BenchmarkLeNetFP32B1T2(b *testing.B)  { benchLeNetModel(b, "LENET_FP32", 1, 2) }
func BenchmarkLeNetInt8B1T2(b *testing.B)  { benchLeNetModel(b, "LENET_INT8", 1, 2) }
