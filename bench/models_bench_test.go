package bench

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

// modelCase is one whole-model measurement: a model, a batch size and a
// thread count, with the value range of its random inputs.
type modelCase struct {
	label   string // model label in tables and benchmark names
	path    string // model.onnx
	batch   int
	threads int
	lo, hi  float32
}

// name is the benchmark name of c.
func (c modelCase) name() string {
	return fmt.Sprintf("%s/batch=%d/threads=%d", c.label, c.batch, c.threads)
}

// modelCases returns the benchmarked cases: mnist-8 at batch 1 and the
// ResNet-style CNN fixture at batch 32, each on 1 and 2 threads. A model
// whose file is missing is reported in missing instead.
func modelCases() (cases []modelCase, missing []string, err error) {
	mnist, err := crosscheck.MNIST8Dir()
	if err != nil {
		return nil, nil, err
	}
	fx, err := crosscheck.FixturesDir()
	if err != nil {
		return nil, nil, err
	}
	models := []struct {
		label  string
		path   string
		batch  int
		lo, hi float32
	}{
		{"mnist-8", filepath.Join(mnist, "model.onnx"), 1, 0, 255},
		{"resnet_op13", filepath.Join(fx, "resnet_op13", "model.onnx"), 32, -2, 2},
	}
	for _, m := range models {
		if _, err := os.Stat(m.path); err != nil {
			missing = append(missing, fmt.Sprintf("%s (%v)", m.label, err))
			continue
		}
		for _, threads := range []int{1, 2} {
			cases = append(cases, modelCase{m.label, m.path, m.batch, threads, m.lo, m.hi})
		}
	}
	return cases, missing, nil
}

// compressModel is a model loaded into a compress executor with fixed
// random inputs.
type compressModel struct {
	g     *runtime.Graph
	feeds map[string]*runtime.Tensor
	first map[string]*runtime.Tensor // outputs of the first run
	run   func() error
	ex    *runtime.Executor
}

// loadCompress loads c's model into a compress executor, makes its inputs
// and runs it once (which compiles the plan).
func loadCompress(c modelCase) (*compressModel, error) {
	g, err := importer.Load(c.path)
	if err != nil {
		return nil, err
	}
	feeds, err := crosscheck.RandomInputs(g, c.batch, 1, c.lo, c.hi)
	if err != nil {
		return nil, err
	}
	ex, err := runtime.NewExecutor(g, runtime.Options{Threads: c.threads})
	if err != nil {
		return nil, err
	}
	ctx := context.Background()
	m := &compressModel{g: g, feeds: feeds, ex: ex}
	m.run = func() error {
		_, err := ex.Run(ctx, feeds)
		return err
	}
	m.first, err = ex.Run(ctx, feeds)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", c.name(), err)
	}
	return m, nil
}

// BenchmarkCompress times compress alone on every case; use it for
// profiling, e.g.
//
//	go test -run '^$' -bench 'Compress/resnet' -cpuprofile cpu.out ./bench/
//	go tool pprof -top bench.test cpu.out
func BenchmarkCompress(b *testing.B) {
	cases, missing, err := modelCases()
	if err != nil {
		b.Fatal(err)
	}
	for _, m := range missing {
		b.Logf("not benchmarked: %s", m)
	}
	for _, c := range cases {
		b.Run(c.name(), func(b *testing.B) {
			m, err := loadCompress(c)
			if err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			b.ResetTimer()
			n := 0
			for b.Loop() {
				if err := m.run(); err != nil {
					b.Fatal(err)
				}
				n++
			}
			b.ReportMetric(float64(c.batch*n)/b.Elapsed().Seconds(), "samples/s")
		})
	}
}
