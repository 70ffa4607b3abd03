package data

import (
	"archive/zip"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"

	"github.com/compressml/compress/importer"
	rt "github.com/compressml/compress/runtime"
)

// maxNPZMember bounds the declared uncompressed size of one array of an
// .npz archive (64 GiB); memory is only allocated as data actually arrives.
const maxNPZMember = 1 << 36

// npyKeys returns the names of the x and y arrays of a split.
func npyKeys(split Split) (x, y string) {
	switch split {
	case SplitTrain:
		return "x_train", "y_train"
	case SplitTest:
		return "x_test", "y_test"
	}
	return "x", "y"
}

// chooseNPYKeys picks the x and y array names of split among the (lower
// case) keys present, following OpenWith's split rules: x_train/x_test for
// a data set in two parts, x/y for an unsplit one (its train and all
// split).
func chooseNPYKeys(has func(string) bool, split Split, what string) (x, y string, err error) {
	hasTrain, hasTest, hasAll := has("x_train"), has("x_test"), has("x")
	switch {
	case split == SplitAll && !hasAll:
		tr, te := "", ""
		if hasTrain {
			tr = "train"
		}
		if hasTest {
			te = "test"
		}
		p, err := pickPart(tr, te, split, what)
		if err != nil {
			return "", "", err
		}
		split = Split(p)
	case split == SplitTrain && !hasTrain && hasAll:
		split = SplitAll
	case split == SplitTest && !hasTest:
		return "", "", fmt.Errorf("%s has no x_test array: %w", what, ErrNoSplit)
	}
	x, y = npyKeys(split)
	if !has(x) {
		return "", "", fmt.Errorf("%s has no %s array (NumPy data sets hold x_train, y_train, x_test, y_test, or x and y)", what, x)
	}
	if !has(y) {
		return "", "", fmt.Errorf("%s has %s but no %s array with its labels", what, x, y)
	}
	return x, y, nil
}

// LoadNPYDir reads a split of a data set stored as NumPy .npy files in dir:
// x_train.npy and y_train.npy, x_test.npy and y_test.npy, or x.npy and
// y.npy for an unsplit set (names are matched ignoring case). See
// NewArrays for what the arrays may hold.
func LoadNPYDir(dir string, split Split, opts Options) (*InMemory, error) {
	entries, err := dirEntries(dir)
	if err != nil {
		return nil, err
	}
	has := func(k string) bool { return findEntry(dir, entries, false, k+".npy") != "" }
	xk, yk, err := chooseNPYKeys(has, split, "NumPy data folder "+dir)
	if err != nil {
		return nil, err
	}
	load := func(k string) (*rt.Tensor, error) {
		p := findEntry(dir, entries, false, k+".npy")
		_, t, err := importer.LoadTensor(p)
		return t, err
	}
	x, err := load(xk)
	if err != nil {
		return nil, err
	}
	y, err := load(yk)
	if err != nil {
		return nil, err
	}
	name := fmt.Sprintf("NumPy %s.npy/%s.npy in %s", xk, yk, dir)
	return NewArrays(name, x, y, opts)
}

// LoadNPZ reads a split of a data set stored in a NumPy .npz archive
// (np.savez or np.savez_compressed) holding the arrays x_train, y_train,
// x_test and y_test (as Keras's mnist.npz does), or x and y for an unsplit
// set. Only the arrays of the split are decompressed.
func LoadNPZ(path string, split Split, opts Options) (*InMemory, error) {
	f, err := os.Open(path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("NumPy archive %s does not exist", path)
		}
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	zr, err := zip.NewReader(f, st.Size())
	if err != nil {
		return nil, fmt.Errorf("%s: not a readable .npz (zip) archive: %w", path, err)
	}
	keys := npzKeys(zr)
	has := func(k string) bool { _, ok := keys[k]; return ok }
	xk, yk, err := chooseNPYKeys(has, split, "NumPy archive "+path)
	if err != nil {
		return nil, err
	}
	x, err := readNPZMember(keys[xk])
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	y, err := readNPZMember(keys[yk])
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	name := fmt.Sprintf("NumPy archive %s (%s, %s)", path, xk, yk)
	return NewArrays(name, x, y, opts)
}

// npzKeys maps the lower-case array names of an archive (member names
// without .npy) to their members.
func npzKeys(zr *zip.Reader) map[string]*zip.File {
	keys := map[string]*zip.File{}
	for _, f := range zr.File {
		lower := strings.ToLower(f.Name)
		if !strings.HasSuffix(lower, ".npy") || f.FileInfo().IsDir() {
			continue
		}
		keys[strings.TrimSuffix(lower, ".npy")] = f
	}
	return keys
}

// readNPZMember decodes one .npy member of an archive.
func readNPZMember(f *zip.File) (*rt.Tensor, error) {
	if f.UncompressedSize64 > maxNPZMember {
		return nil, fmt.Errorf("array %s declares %d bytes, more than the %d bytes compress reads", f.Name, f.UncompressedSize64, int64(maxNPZMember))
	}
	rc, err := f.Open()
	if err != nil {
		return nil, fmt.Errorf("array %s: %w", f.Name, err)
	}
	defer rc.Close()
	// ReadAll grows as data arrives, so a lying header costs nothing.
	raw, err := io.ReadAll(io.LimitReader(rc, int64(f.UncompressedSize64)+1))
	if err != nil {
		return nil, fmt.Errorf("array %s: %w", f.Name, err)
	}
	t, err := importer.DecodeNPY(raw)
	if err != nil {
		return nil, fmt.Errorf("array %s: %w", f.Name, err)
	}
	return t, nil
}

// ReadNPZ decodes every .npy array of an .npz archive read from r (size
// bytes long), keyed by member name without .npy. It never panics on a
// corrupt or hostile archive, and allocates only as data is decompressed.
func ReadNPZ(r io.ReaderAt, size int64) (map[string]*rt.Tensor, error) {
	zr, err := zip.NewReader(r, size)
	if err != nil {
		return nil, fmt.Errorf("not a readable .npz (zip) archive: %w", err)
	}
	out := map[string]*rt.Tensor{}
	names := make([]string, 0, len(zr.File))
	byName := map[string]*zip.File{}
	for _, f := range zr.File {
		if strings.HasSuffix(strings.ToLower(f.Name), ".npy") && !f.FileInfo().IsDir() {
			k := f.Name[:len(f.Name)-4]
			if _, dup := byName[k]; !dup {
				names = append(names, k)
			}
			byName[k] = f
		}
	}
	sort.Strings(names)
	for _, k := range names {
		t, err := readNPZMember(byName[k])
		if err != nil {
			return nil, err
		}
		out[k] = t
	}
	return out, nil
}

// NewArrays makes a data set from NumPy-style arrays: x of shape [N, ...]
// (uint8 and float32 are kept, other types converted to float32; shape [N]
// gives examples of shape [1]) and y with one entry per example. For
// classification y holds class indices (any integer type, bool, or
// integral floats) of shape [N] or [N 1], or one-hot rows of shape [N K];
// for regression (opts.Task) float targets of shape [N] or [N K].
func NewArrays(name string, x, y *rt.Tensor, opts Options) (*InMemory, error) {
	if err := opts.validate(); err != nil {
		return nil, err
	}
	if len(x.Shape) == 0 {
		return nil, fmt.Errorf("%s: x is a scalar; want an array of shape [N, ...] holding one example per row", name)
	}
	if len(x.Shape) == 1 {
		x = x.Reshaped(x.Shape[0], 1)
	}
	if x.DType != rt.Uint8 && x.DType != rt.Float32 {
		var err error
		if x, err = toFloat32(x); err != nil {
			return nil, fmt.Errorf("%s: x: %w", name, err)
		}
	}
	n := x.Shape[0]
	if len(y.Shape) == 0 || y.Shape[0] != n {
		return nil, fmt.Errorf("%s: x holds %d examples (shape %v) but y has shape %v; y needs one entry per example", name, n, x.Shape, y.Shape)
	}
	if opts.regression() {
		if len(y.Shape) > 2 {
			return nil, fmt.Errorf("%s: regression targets y of shape %v; want [N] or [N K]", name, y.Shape)
		}
		return NewRegression(name, x, y)
	}
	yf, err := toFloat32(y)
	if err != nil {
		return nil, fmt.Errorf("%s: y: %w", name, err)
	}
	labels := make([]int, n)
	classes := opts.NumClasses
	switch {
	case len(y.Shape) == 1 || (len(y.Shape) == 2 && y.Shape[1] == 1):
		for i, v := range yf.F32 {
			if !(v >= 0 && v <= maxClassIndex) || v != float32(int(v)) {
				return nil, fmt.Errorf("%s: label %v of example %d is not a class index (an integer in 0..%d); for float targets use the regression task", name, v, i, maxClassIndex)
			}
			labels[i] = int(v)
		}
	case len(y.Shape) == 2:
		k := y.Shape[1]
		for i := range n {
			row := yf.F32[i*k : (i+1)*k]
			hot := -1
			for j, v := range row {
				switch {
				case v == 1 && hot < 0:
					hot = j
				case v != 0:
					hot = -2
				}
			}
			if hot < 0 {
				return nil, fmt.Errorf("%s: y has shape %v but row %d is not one-hot (%v); classification labels are class indices of shape [N] or one-hot rows", name, y.Shape, i, clipFloats(row))
			}
			labels[i] = hot
		}
		if classes == 0 {
			classes = k
		}
	default:
		return nil, fmt.Errorf("%s: labels y of shape %v; want class indices [N] or one-hot rows [N K]", name, y.Shape)
	}
	if classes > 0 {
		for i, l := range labels {
			if l >= classes {
				return nil, fmt.Errorf("%s: label %d of example %d is outside the %d classes (0..%d)", name, l, i, classes, classes-1)
			}
		}
	}
	return NewInMemory(name, x, labels, classes)
}

func clipFloats(v []float32) string {
	if len(v) > 10 {
		return fmt.Sprint(v[:10]) + "..."
	}
	return fmt.Sprint(v)
}
