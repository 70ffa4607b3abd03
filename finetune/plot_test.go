package finetune

import (
	"image/png"
	"os"
	"path/filepath"
	"testing"
)

func TestPlotHistory(t *testing.T) {
	train := []EpochStats{
		{Epoch: 1, TrainLoss: 1.2, TrainAccuracy: 0.5},
		{Epoch: 2, TrainLoss: 0.7, TrainAccuracy: 0.8},
		{Epoch: 3, TrainLoss: 0.4, TrainAccuracy: 0.9},
	}
	withVal := []EpochStats{
		{Epoch: 1, TrainLoss: 1.2, TrainAccuracy: 0.5, Val: &Metrics{Loss: 1.0, Accuracy: 0.6, Examples: 10}},
		{Epoch: 2, TrainLoss: 0.7, TrainAccuracy: 0.8, Val: &Metrics{Loss: 0.8, Accuracy: 0.7, Examples: 10}},
	}
	tests := []struct {
		name    string
		history []EpochStats
		wantErr bool
	}{
		{"training only", train, false},
		{"with validation", withVal, false},
		{"one epoch", train[:1], false},
		{"empty", nil, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "curves.png")
			err := PlotHistory(tc.history, path)
			if tc.wantErr {
				if err == nil {
					t.Fatal("no error")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			f, err := os.Open(path)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			img, err := png.Decode(f)
			if err != nil {
				t.Fatalf("not a valid PNG: %v", err)
			}
			if b := img.Bounds(); b.Dx() < 100 || b.Dy() < 50 {
				t.Errorf("image is %v", b)
			}
			if entries, _ := os.ReadDir(dir); len(entries) != 1 {
				t.Errorf("%d files written, want 1 (no temporary file left)", len(entries))
			}
		})
	}
	if err := PlotHistory(train, filepath.Join(t.TempDir(), "missing", "dir", "x.png")); err == nil {
		t.Error("writing into a missing directory succeeded")
	}
}
