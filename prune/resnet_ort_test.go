//go:build ort

package prune

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/compressml/compress/crosscheck"
	"github.com/compressml/compress/importer"
	rt "github.com/compressml/compress/runtime"
)

// TestPrunedFilesRunInORT checks that onnxruntime runs pruned model files
// written by `compress prune` (PRUNED_ONNX: a list of paths separated by
// colons; bench/prune/run.sh sets it to its channel-pruned, 80% sparse and
// 2:4 ResNet-8) with the outputs of our executors: the default one (which
// picks the sparse kernels by itself where they are faster), one with the
// sparse kernels disabled and one forced onto them for every layer with at
// least half zeros:
//
//	PRUNED_ONNX=a.onnx:b.onnx go test -tags ort -run TestPrunedFilesRunInORT -v ./prune
func TestPrunedFilesRunInORT(t *testing.T) {
	list := os.Getenv("PRUNED_ONNX")
	if list == "" {
		t.Skip("PRUNED_ONNX is not set: give the pruned .onnx files to check, separated by colons (bench/prune/run.sh does)")
	}
	if _, err := crosscheck.InitORT(); err != nil {
		if errors.Is(err, crosscheck.ErrNoORT) {
			t.Skip(err)
		}
		t.Fatal(err)
	}
	executors := []struct {
		name string
		make func(g *rt.Graph) (*rt.Executor, error)
	}{
		{"default", func(g *rt.Graph) (*rt.Executor, error) { return rt.NewExecutor(g, rt.Options{Threads: 1}) }},
		{"dense", func(g *rt.Graph) (*rt.Executor, error) {
			return rt.NewExecutor(g, rt.Options{Threads: 1, NoSparse: true})
		}},
		{"sparse", func(g *rt.Graph) (*rt.Executor, error) { return NewExecutor(g, 1, 0.5) }},
	}
	for _, path := range strings.Split(list, ":") {
		t.Run(filepath.Base(path), func(t *testing.T) {
			g, err := importer.Load(path)
			if err != nil {
				t.Fatalf("PRUNED_ONNX: %v", err)
			}
			feeds, err := crosscheck.RandomInputs(g, 8, 1, 0, 1)
			mustNot(t, err, "RandomInputs")
			ins, outs := crosscheck.GraphNames(g)
			s, err := crosscheck.NewORTSession(path, ins, outs, 1)
			mustNot(t, err, "NewORTSession")
			defer s.Close()
			theirs, err := s.Run(feeds)
			mustNot(t, err, "onnxruntime")
			for _, e := range executors {
				ex, err := e.make(g)
				mustNot(t, err, e.name+" executor")
				ours, err := ex.Run(context.Background(), feeds)
				mustNot(t, err, e.name+" run")
				for name, want := range theirs {
					abs, _ := crosscheck.MaxDiff(ours[name], want)
					t.Logf("%s: %s executor vs onnxruntime, output %s: max abs diff %.3g", filepath.Base(path), e.name, name, abs)
					if err := crosscheck.Compare(ours[name], want, 1e-4, 1e-4); err != nil {
						t.Errorf("%s executor, output %s: %v", e.name, name, err)
					}
				}
			}
		})
	}
}
