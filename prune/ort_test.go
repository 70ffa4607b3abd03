//go:build ort

package prune

import (
	"context"
	"errors"
	"path/filepath"
	"testing"

	"github.com/compressml/compress/crosscheck"
	"github.com/compressml/compress/importer"
	"github.com/compressml/compress/models"
)

// TestPrunedModelsRunInORT saves pruned models (channel-pruned ResNet and
// MobileNet, 2:4 and 90% unstructured LeNet) and checks that onnxruntime
// runs them with our outputs (ours on the sparse kernels where they apply):
//
//	go test -tags ort -run ORT ./prune
func TestPrunedModelsRunInORT(t *testing.T) {
	if _, err := crosscheck.InitORT(); err != nil {
		if errors.Is(err, crosscheck.ErrNoORT) {
			t.Skip(err)
		}
		t.Fatal(err)
	}
	tests := []struct {
		arch string
		opts Options
	}{
		{"resnet", Options{Method: Channel, Sparsity: 0.5}},
		{"mobilenet", Options{Method: Channel, Sparsity: 0.5, Criterion: CriterionBN}},
		{"lenet5", Options{Method: NM, N: 2, M: 4, Exclude: []string{"conv*"}, IncludeFirstLast: true}},
		{"lenet5", Options{Method: Magnitude, Sparsity: 0.9, IncludeFirstLast: true, Scope: ScopeGlobal}},
	}
	for _, tc := range tests {
		t.Run(tc.arch+"/"+tc.opts.Method, func(t *testing.T) {
			g, err := models.Build(tc.arch, models.Config{Input: []int{1, 28, 28}, Classes: 10, Seed: 4})
			mustNot(t, err, "Build")
			_, err = Prune(context.Background(), g, tc.opts, Schedule{})
			mustNot(t, err, "Prune")
			path := filepath.Join(t.TempDir(), "pruned.onnx")
			mustNot(t, importer.Save(g, path), "Save")
			back, err := importer.Load(path)
			mustNot(t, err, "Load")
			feeds, err := crosscheck.RandomInputs(back, 4, 1, -1, 1)
			mustNot(t, err, "RandomInputs")
			ex, err := NewExecutor(back, 1, 0.5)
			mustNot(t, err, "NewExecutor")
			ours, err := ex.Run(context.Background(), feeds)
			mustNot(t, err, "run")
			ins, outs := crosscheck.GraphNames(back)
			s, err := crosscheck.NewORTSession(path, ins, outs, 1)
			mustNot(t, err, "NewORTSession")
			defer s.Close()
			theirs, err := s.Run(feeds)
			mustNot(t, err, "onnxruntime")
			for name, want := range theirs {
				if err := crosscheck.Compare(ours[name], want, 1e-4, 1e-4); err != nil {
					t.Errorf("output %s: %v", name, err)
				}
			}
		})
	}
}
