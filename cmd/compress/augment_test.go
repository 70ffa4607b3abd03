package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestFinetuneAugment trains with augmentation from the CLI and checks the
// errors of bad augmentation flags (no output file written).
func TestFinetuneAugment(t *testing.T) {
	dir := t.TempDir()
	data := quadrantMNIST(t, dir)
	model := filepath.Join(dir, "init.onnx")
	if _, errs, code := compress(t, "models", "new", "--arch", "resnet", "--input", "1x8x8", "--classes", "4", "--width", "0.25", "-o", model); code != 0 {
		t.Fatalf("models new: %s", errs)
	}
	out := filepath.Join(dir, "out.onnx")
	base := []string{"finetune", "--model", model, "--data", data, "--out", out, "--epochs", "1", "--batch", "32", "--scale", "0.00392156862745098"}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--augment-crop", "2"}, "--augment-crop 2: give the smallest area fraction"},
		{[]string{"--augment-translate", "-1"}, "must not be negative"},
		{[]string{"--augment-rotate", "10", "--freeze-until", "layer1.0.conv1", "--cache-frozen"}, "drop --cache-frozen or the augmentation"},
	} {
		_, errs, code := compress(t, append(base, tc.args...)...)
		if code == 0 || !strings.Contains(errs, tc.want) {
			t.Errorf("finetune %s: exit %d, stderr %q; want an error containing %q", strings.Join(tc.args, " "), code, errs, tc.want)
		}
		if _, err := os.Stat(out); err == nil {
			t.Fatalf("finetune %s wrote %s despite the error", strings.Join(tc.args, " "), out)
		}
	}
	if _, errs, code := compress(t, append(base, "--augment-rotate", "10", "--augment-flip", "--augment-translate", "1", "--augment-crop", "0.6")...); code != 0 {
		t.Fatalf("finetune with augmentation: exit %d: %s", code, errs)
	}
	if _, err := os.Stat(out); err != nil {
		t.Fatal(err)
	}
}
