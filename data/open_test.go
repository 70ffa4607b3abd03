package data

import (
	"errors"
	"image/color"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	rt "github.com/compressml/compress/runtime"
)

func writeText(t *testing.T, path, text string) string {
	t.Helper()
	must(t, os.MkdirAll(filepath.Dir(path), 0o755))
	must(t, os.WriteFile(path, []byte(text), 0o644))
	return path
}

func TestOpenFormats(t *testing.T) {
	root := t.TempDir()
	mnist := filepath.Join(root, "mnist")
	must(t, os.MkdirAll(mnist, 0o755))
	writeMNIST(t, mnist, "train", 3, 2, 2, true, []byte{0, 4, 2})
	writeMNIST(t, mnist, "t10k", 2, 2, 2, false, []byte{1, 0})
	mnistTrainOnly := filepath.Join(root, "mnist-train")
	must(t, os.MkdirAll(mnistTrainOnly, 0o755))
	writeMNIST(t, mnistTrainOnly, "train", 3, 2, 2, false, []byte{0, 1, 2})

	single := writeText(t, filepath.Join(root, "single", "digits.csv"), "1,2,0\n3,4,1\n5,6,1\n")
	gzipped := filepath.Join(root, "gz", "digits.csv.gz")
	must(t, os.MkdirAll(filepath.Dir(gzipped), 0o755))
	must(t, os.WriteFile(gzipped, gz(t, []byte("1,2,0\n3,4,1\n")), 0o644))
	writeText(t, filepath.Join(root, "gz", "digits_test.csv.gz"), "9,9,1\n")
	pairTrain := writeText(t, filepath.Join(root, "pair", "mnist_train.csv"), "1,2,cat\n3,4,dog\n")
	pairTest := writeText(t, filepath.Join(root, "pair", "mnist_test.csv"), "5,6,ant\n7,8,dog\n")
	noExt := writeText(t, filepath.Join(root, "noext", "data"), "1,2,0\n")
	must(t, os.WriteFile(noExt+".gzdata", gz(t, []byte("1,2,0\n3,4,1\n")), 0o644))
	csvDir := filepath.Join(root, "csvdir")
	writeText(t, filepath.Join(csvDir, "train.csv"), "a,b,y\n1,2,0\n3,4,1\n5,6,2\n")
	writeText(t, filepath.Join(csvDir, "test.csv"), "a,b,y\n7,8,2\n")
	img := filepath.Join(root, "images")
	writeImage(t, filepath.Join(img, "train", "a", "1.png"), rgbImage(2, 2, color.RGBA{1, 2, 3, 255}))
	writeImage(t, filepath.Join(img, "test", "b", "1.png"), rgbImage(2, 2, color.RGBA{1, 2, 3, 255}))
	npyDir := filepath.Join(root, "npy")
	must(t, os.MkdirAll(npyDir, 0o755))
	must(t, os.WriteFile(filepath.Join(npyDir, "x_train.npy"), npyBytes(t, u8Images(2, 1, 1)), 0o644))
	must(t, os.WriteFile(filepath.Join(npyDir, "y_train.npy"), npyBytes(t, rt.FromInt64([]int64{1, 0}, 2)), 0o644))

	for _, tc := range []struct {
		name    string
		path    string
		split   Split
		n       int
		classes int
		label0  int
		names   []string
	}{
		{"mnist train", mnist, SplitTrain, 3, 5, 0, nil},
		{"mnist test", mnist, SplitTest, 2, 2, 1, nil},
		{"mnist all with one part", mnistTrainOnly, SplitAll, 3, 3, 0, nil},
		{"single csv train", single, SplitTrain, 3, 2, 0, nil},
		{"single csv all", single, SplitAll, 3, 2, 0, nil},
		{"gz csv train", gzipped, SplitTrain, 2, 2, 0, nil},
		{"gz csv companion test", gzipped, SplitTest, 1, 2, 1, nil},
		{"pair train (class names of both)", pairTrain, SplitTrain, 2, 3, 1, []string{"ant", "cat", "dog"}},
		{"pair test from the train file", pairTrain, SplitTest, 2, 3, 0, []string{"ant", "cat", "dog"}},
		{"pair test file is its own test split", pairTest, SplitTest, 2, 3, 0, []string{"ant", "cat", "dog"}},
		{"pair train from the test file", pairTest, SplitTrain, 2, 3, 1, []string{"ant", "cat", "dog"}},
		{"sniffed csv", noExt, SplitAll, 1, 1, 0, nil},
		{"sniffed gzip csv", noExt + ".gzdata", SplitAll, 2, 2, 0, nil},
		{"csv folder train", csvDir, SplitTrain, 3, 3, 0, nil},
		{"csv folder test", csvDir, SplitTest, 1, 3, 2, nil},
		{"image folder train", img, SplitTrain, 1, 2, 0, []string{"a", "b"}},
		{"image folder test", img, SplitTest, 1, 2, 1, []string{"a", "b"}},
		{"npy folder all", npyDir, SplitAll, 2, 2, 1, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ds, err := Open(tc.path, tc.split)
			if err != nil {
				t.Fatal(err)
			}
			x := make([]float32, rt.NumElements(ds.Shape()))
			l, err := ds.Example(0, x)
			if err != nil {
				t.Fatal(err)
			}
			if ds.Len() != tc.n || ds.NumClasses() != tc.classes && tc.classes != 0 || l != tc.label0 {
				t.Errorf("%d examples, %d classes, label 0 = %d; want %d, %d, %d", ds.Len(), ds.NumClasses(), l, tc.n, tc.classes, tc.label0)
			}
			var names []string
			if cn, ok := ds.(ClassNamer); ok {
				names = cn.ClassNames()
			}
			if !slices.Equal(names, tc.names) {
				t.Errorf("class names %q, want %q", names, tc.names)
			}
			if Name(ds) == "" {
				t.Errorf("no name")
			}
		})
	}
}

func TestOpenErrors(t *testing.T) {
	root := t.TempDir()
	single := writeText(t, filepath.Join(root, "d.csv"), "1,0\n")
	csvDir := filepath.Join(root, "csvdir")
	writeText(t, filepath.Join(csvDir, "train.csv"), "1,0\n")
	writeText(t, filepath.Join(csvDir, "test.csv"), "1,0\n")
	trainOnly := filepath.Join(root, "trainonly")
	writeText(t, filepath.Join(trainOnly, "train.csv"), "1,0\n")
	unknown := filepath.Join(root, "unknown")
	writeText(t, filepath.Join(unknown, "readme.md"), "hello")
	odd := writeText(t, filepath.Join(root, "weights.bin"), "\x00\x01")
	idxFile := writeText(t, filepath.Join(root, "t10k-images-idx3-ubyte"), "")
	mnist := filepath.Join(root, "mnist")
	must(t, os.MkdirAll(mnist, 0o755))
	writeMNIST(t, mnist, "t10k", 1, 2, 2, false, []byte{0})

	for i, tc := range []struct {
		path    string
		split   Split
		opts    Options
		want    string
		noSplit bool
	}{
		{filepath.Join(root, "nope"), SplitTest, Options{}, "data set " + filepath.Join(root, "nope") + " does not exist", false},
		{single, SplitTest, Options{}, "is a single file with no test file next to it (looked for d_test.csv, d-test.csv, d.test.csv)", true},
		{csvDir, SplitAll, Options{}, "has train and test parts; choose one", false},
		{trainOnly, SplitTest, Options{}, "CSV data set " + trainOnly + " has no test part", true},
		{unknown, SplitTest, Options{}, "no MNIST-format t10k images file in " + unknown, false},
		{unknown, SplitAll, Options{}, "compress also reads folders holding train.csv/test.csv", false},
		{odd, SplitTest, Options{}, "unknown data file type", false},
		{idxFile, SplitTest, Options{}, "is one MNIST-format idx file: give the folder", false},
		{mnist, SplitTest, Options{Task: TaskRegression}, "whose labels are classes", false},
		{single, Split("valid"), Options{}, `unknown split "valid"`, false},
		{single, SplitTrain, Options{Channels: 4}, "not 4", false},
	} {
		_, err := OpenWith(tc.path, tc.split, tc.opts)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%d: error %v, want one containing %q", i, err, tc.want)
		}
		if err != nil && errors.Is(err, ErrNoSplit) != tc.noSplit {
			t.Errorf("%d: errors.Is(ErrNoSplit) = %v, want %v", i, !tc.noSplit, tc.noSplit)
		}
	}
}

func TestOptionsHelpers(t *testing.T) {
	for i, tc := range []struct {
		in    Options
		shape []int
		want  Options
	}{
		{Options{}, []int{3, 224, 224}, Options{Channels: 3, Height: 224, Width: 224}},
		{Options{}, []int{1, 28, 28}, Options{Channels: 1, Height: 28, Width: 28}},
		{Options{Channels: 3}, []int{1, 28, 28}, Options{Channels: 3, Height: 28, Width: 28}},
		{Options{Height: 5, Width: 6}, []int{1, 28, 28}, Options{Channels: 1, Height: 5, Width: 6}},
		{Options{}, []int{784}, Options{}},
		{Options{}, []int{28, 28, 3}, Options{}},
		{Options{}, []int{1, -1, 28}, Options{}},
	} {
		if got := tc.in.WithInputShape(tc.shape); !slices.Equal([]int{got.Channels, got.Height, got.Width}, []int{tc.want.Channels, tc.want.Height, tc.want.Width}) {
			t.Errorf("%d: %+v.WithInputShape(%v) = %+v, want %+v", i, tc.in, tc.shape, got, tc.want)
		}
	}
	for _, s := range []string{"", "classification", "Regression"} {
		if _, err := ParseTask(s); err != nil {
			t.Errorf("ParseTask(%q): %v", s, err)
		}
	}
	if _, err := ParseTask("ranking"); err == nil {
		t.Errorf("ParseTask(ranking): no error")
	}
	if s, err := ParseSplit("all"); err != nil || s != SplitAll {
		t.Errorf("ParseSplit(all) = %v, %v", s, err)
	}
}
