package data

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	rt "github.com/compressml/compress/runtime"
)

// Split names a part of a data set.
type Split string

// The splits of data sets stored in two parts (see also SplitAll).
const (
	SplitTrain Split = "train"
	SplitTest  Split = "test"
)

// ParseSplit accepts "train", "test" (and MNIST's file prefix "t10k" for
// test) or "all" (see OpenWith).
func ParseSplit(s string) (Split, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "train", "training":
		return SplitTrain, nil
	case "test", "t10k":
		return SplitTest, nil
	case "all":
		return SplitAll, nil
	}
	return "", fmt.Errorf("unknown split %q: use train, test or all", s)
}

// mnistPrefix maps a split to MNIST's file-name prefix.
func mnistPrefix(s Split) (string, error) {
	switch s {
	case SplitTrain:
		return "train", nil
	case SplitTest:
		return "t10k", nil
	}
	return "", fmt.Errorf("unknown split %q: use train or test", s)
}

// findMNISTFile looks in dir for prefix-kind-idxN-ubyte, also with a dot
// before idx (a common re-distribution's spelling) and with .gz.
func findMNISTFile(dir, prefix, kind string, rank int) (string, error) {
	var tried []string
	for _, sep := range []string{"-", "."} {
		base := fmt.Sprintf("%s-%s%sidx%d-ubyte", prefix, kind, sep, rank)
		for _, ext := range []string{"", ".gz"} {
			p := filepath.Join(dir, base+ext)
			tried = append(tried, base+ext)
			if st, err := os.Stat(p); err == nil && st.Mode().IsRegular() {
				return p, nil
			}
		}
	}
	return "", fmt.Errorf("no MNIST-format %s %s file in %s: expected one of %s%s",
		prefix, kind, dir, strings.Join(tried[:2], ", "), listing(dir))
}

// listing describes the files of dir for an error message.
func listing(dir string) string {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return ""
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	sort.Strings(names)
	if len(names) == 0 {
		return " (the folder is empty)"
	}
	if len(names) > 8 {
		names = append(names[:8], "...")
	}
	return " (the folder holds: " + strings.Join(names, ", ") + ")"
}

// LoadMNIST reads one split of an MNIST-format data set (MNIST,
// Fashion-MNIST, ...) from dir, which holds the idx files named as MNIST's
// are: train-images-idx3-ubyte, train-labels-idx1-ubyte,
// t10k-images-idx3-ubyte and t10k-labels-idx1-ubyte, each optionally
// gzipped (.gz). Images must be unsigned bytes of shape [N, rows, cols] and
// labels unsigned bytes of shape [N]. Examples have shape [1 rows cols]
// (one channel) and hold the pixel values as stored (0-255).
func LoadMNIST(dir string, split Split) (*InMemory, error) {
	prefix, err := mnistPrefix(split)
	if err != nil {
		return nil, err
	}
	st, err := os.Stat(dir)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("data folder %s does not exist", dir)
		}
		return nil, err
	}
	if !st.IsDir() {
		return nil, fmt.Errorf("%s is not a folder; give the folder holding the MNIST-format idx files", dir)
	}
	imgPath, err := findMNISTFile(dir, prefix, "images", 3)
	if err != nil {
		return nil, err
	}
	lblPath, err := findMNISTFile(dir, prefix, "labels", 1)
	if err != nil {
		return nil, err
	}
	images, err := ReadIDXFile(imgPath)
	if err != nil {
		return nil, err
	}
	if images.DType != rt.Uint8 || images.Rank() != 3 {
		return nil, fmt.Errorf("%s: expected unsigned-byte images of shape [N rows cols], got %v of shape %v", imgPath, images.DType, images.Shape)
	}
	labels, err := ReadIDXFile(lblPath)
	if err != nil {
		return nil, err
	}
	if labels.DType != rt.Uint8 || labels.Rank() != 1 {
		return nil, fmt.Errorf("%s: expected unsigned-byte labels of shape [N], got %v of shape %v", lblPath, labels.DType, labels.Shape)
	}
	if images.Shape[0] != labels.Shape[0] {
		return nil, fmt.Errorf("%s holds %d images but %s holds %d labels; the files do not belong together",
			imgPath, images.Shape[0], lblPath, labels.Shape[0])
	}
	lbl := make([]int, len(labels.U8))
	for i, v := range labels.U8 {
		lbl[i] = int(v)
	}
	x := images.Reshaped(images.Shape[0], 1, images.Shape[1], images.Shape[2])
	name := fmt.Sprintf("MNIST-format %s split of %s", split, dir)
	return NewInMemory(name, x, lbl, 0)
}
