package runtime_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/compressml/compress/crosscheck"
	"github.com/compressml/compress/importer"
	"github.com/compressml/compress/runtime"
)

// perfCase is one whole-model executor benchmark.
type perfCase struct {
	name   string
	path   func() (string, error)
	batch  int
	lo, hi float32
}

var perfCases = []perfCase{
	{"mnist-8/batch=1", func() (string, error) {
		d, err := crosscheck.MNIST8Dir()
		return filepath.Join(d, "model.onnx"), err
	}, 1, 0, 255},
	{"resnet_op13/batch=32", func() (string, error) {
		d, err := crosscheck.FixturesDir()
		return filepath.Join(d, "resnet_op13", "model.onnx"), err
	}, 32, -2, 2},
}

// BenchmarkExecutorModels times Executor.Run on the models of bench/ (the
// same cases as bench.BenchmarkCompress), for profiling the executor and
// its kernels:
//
//	go test -run '^$' -bench 'ExecutorModels/resnet_op13/batch=32/threads=1' -cpuprofile cpu.out ./runtime/
//	go tool pprof -top runtime.test cpu.out
func BenchmarkExecutorModels(b *testing.B) {
	for _, c := range perfCases {
		path, err := c.path()
		if err == nil {
			_, err = os.Stat(path)
		}
		if err != nil {
			b.Logf("%s: model missing: %v", c.name, err)
			continue
		}
		g, err := importer.Load(path)
		if err != nil {
			b.Fatal(err)
		}
		feeds, err := crosscheck.RandomInputs(g, c.batch, 1, c.lo, c.hi)
		if err != nil {
			b.Fatal(err)
		}
		for _, threads := range []int{1, 2} {
			b.Run(fmt.Sprintf("%s/threads=%d", c.name, threads), func(b *testing.B) {
				ex, err := runtime.NewExecutor(g, runtime.Options{Threads: threads})
				if err != nil {
					b.Fatal(err)
				}
				ctx := context.Background()
				if _, err := ex.Run(ctx, feeds); err != nil {
					b.Fatal(err)
				}
				b.ReportAllocs()
				for b.Loop() {
					if _, err := ex.Run(ctx, feeds); err != nil {
						b.Fatal(err)
					}
				}
				b.ReportMetric(float64(c.batch*b.N)/b.Elapsed().Seconds(), "samples/s")
			})
		}
	}
}
