package data

import (
	"archive/zip"
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/compressml/compress/importer"
	rt "github.com/compressml/compress/runtime"
)

func npyBytes(t testing.TB, x *rt.Tensor) []byte {
	t.Helper()
	b, err := importer.EncodeNPY(x)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// npzBytes builds an .npz archive of the named arrays (deflated when
// compressed, as np.savez_compressed does).
func npzBytes(t testing.TB, compressed bool, arrays map[string]*rt.Tensor) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	keys := make([]string, 0, len(arrays))
	for k := range arrays {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		m := zip.Store
		if compressed {
			m = zip.Deflate
		}
		w, err := zw.CreateHeader(&zip.FileHeader{Name: k + ".npy", Method: m})
		if err != nil {
			t.Fatal(err)
		}
		w.Write(npyBytes(t, arrays[k]))
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func u8Images(n, h, w int) *rt.Tensor {
	x := rt.New(rt.Uint8, n, h, w)
	for i := range x.U8 {
		x.U8[i] = uint8(i)
	}
	return x
}

func TestNumPyFormats(t *testing.T) {
	xTrain, yTrain := u8Images(3, 2, 2), rt.FromInt64([]int64{0, 2, 1}, 3)
	xTest, yTest := rt.FromFloat32([]float32{0.5, 1, 1.5, 2}, 1, 2, 2), rt.FromInt64([]int64{1}, 1)
	split := map[string]*rt.Tensor{"x_train": xTrain, "y_train": yTrain, "x_test": xTest, "y_test": yTest}
	oneHot := map[string]*rt.Tensor{"x": rt.FromFloat32([]float32{1, 2, 3}, 3), "y": rt.FromFloat32([]float32{0, 1, 1, 0, 0, 1}, 3, 2)}
	reg := map[string]*rt.Tensor{"x": rt.FromFloat32([]float32{1, 2, 3, 4}, 2, 2), "y": rt.FromFloat32([]float32{0.5, -1, 2, 3}, 2, 2)}
	i32 := rt.New(rt.Int32, 2, 1)
	i32.I32[0], i32.I32[1] = 3, 0
	ints := map[string]*rt.Tensor{"X": i32, "Y": &rt.Tensor{DType: rt.Bool, Shape: []int{2}, B: []bool{true, false}}}

	root := t.TempDir()
	layouts := map[string]func(arrays map[string]*rt.Tensor) string{
		"folder": func(arrays map[string]*rt.Tensor) string {
			d, _ := os.MkdirTemp(root, "npy")
			for k, v := range arrays {
				must(t, os.WriteFile(filepath.Join(d, k+".npy"), npyBytes(t, v), 0o644))
			}
			return d
		},
		"npz": func(arrays map[string]*rt.Tensor) string {
			f, _ := os.CreateTemp(root, "*.npz")
			f.Write(npzBytes(t, false, arrays))
			f.Close()
			return f.Name()
		},
		"npz compressed": func(arrays map[string]*rt.Tensor) string {
			f, _ := os.CreateTemp(root, "*.npz")
			f.Write(npzBytes(t, true, arrays))
			f.Close()
			return f.Name()
		},
	}
	for lname, mk := range layouts {
		for _, tc := range []struct {
			name    string
			arrays  map[string]*rt.Tensor
			split   Split
			opts    Options
			shape   []int
			x       [][]float32
			labels  []int
			classes int
			targets []float32
		}{
			{"train", split, SplitTrain, Options{}, []int{2, 2}, [][]float32{{0, 1, 2, 3}, {4, 5, 6, 7}, {8, 9, 10, 11}}, []int{0, 2, 1}, 3, nil},
			{"test", split, SplitTest, Options{}, []int{2, 2}, [][]float32{{0.5, 1, 1.5, 2}}, []int{1}, 2, nil},
			{"one-hot, unsplit", oneHot, SplitAll, Options{}, []int{1}, [][]float32{{1}, {2}, {3}}, []int{1, 0, 1}, 2, nil},
			{"unsplit is the train split", oneHot, SplitTrain, Options{}, []int{1}, [][]float32{{1}, {2}, {3}}, []int{1, 0, 1}, 2, nil},
			{"regression", reg, SplitAll, Options{Task: TaskRegression}, []int{2}, [][]float32{{1, 2}, {3, 4}}, []int{0, 0}, 0, []float32{0.5, -1, 2, 3}},
			{"int x, bool y, upper-case names", ints, SplitAll, Options{NumClasses: 4}, []int{1}, [][]float32{{3}, {0}}, []int{1, 0}, 4, nil},
		} {
			t.Run(lname+"/"+tc.name, func(t *testing.T) {
				p := mk(tc.arrays)
				ds, err := OpenWith(p, tc.split, tc.opts)
				if err != nil {
					t.Fatal(err)
				}
				if !slices.Equal(ds.Shape(), tc.shape) || ds.NumClasses() != tc.classes {
					t.Errorf("shape %v classes %d, want %v %d", ds.Shape(), ds.NumClasses(), tc.shape, tc.classes)
				}
				x, l := examples(t, ds)
				if len(x) != len(tc.x) || !slices.Equal(l, tc.labels) {
					t.Fatalf("%d examples labels %v, want %d %v", len(x), l, len(tc.x), tc.labels)
				}
				for i := range x {
					if !slices.Equal(x[i], tc.x[i]) {
						t.Errorf("example %d = %v, want %v", i, x[i], tc.x[i])
					}
				}
				if tc.targets != nil {
					k, ok := HasTargets(ds)
					if !ok || k != len(tc.targets)/len(tc.x) {
						t.Fatalf("targets: %d %v", k, ok)
					}
					for i := range x {
						y := make([]float32, k)
						if err := ds.(Targeter).Targets(i, y); err != nil || !slices.Equal(y, tc.targets[i*k:(i+1)*k]) {
							t.Errorf("targets %d = %v (%v)", i, y, err)
						}
					}
				}
			})
		}
	}
}

func TestNumPyErrors(t *testing.T) {
	root := t.TempDir()
	npz := func(name string, arrays map[string]*rt.Tensor) string {
		p := filepath.Join(root, name+".npz")
		must(t, os.WriteFile(p, npzBytes(t, true, arrays), 0o644))
		return p
	}
	x := u8Images(2, 2, 2)
	noTest := npz("notest", map[string]*rt.Tensor{"x_train": x, "y_train": rt.FromInt64([]int64{0, 1}, 2)})
	noY := npz("noy", map[string]*rt.Tensor{"x_train": x})
	count := npz("count", map[string]*rt.Tensor{"x": x, "y": rt.FromInt64([]int64{0, 1, 1}, 3)})
	frac := npz("frac", map[string]*rt.Tensor{"x": x, "y": rt.FromFloat32([]float32{0, 1.5}, 2)})
	neg := npz("neg", map[string]*rt.Tensor{"x": x, "y": rt.FromInt64([]int64{0, -3}, 2)})
	hot := npz("hot", map[string]*rt.Tensor{"x": x, "y": rt.FromFloat32([]float32{1, 0, 1, 1}, 2, 2)})
	both := npz("both", map[string]*rt.Tensor{"x_train": x, "y_train": rt.FromInt64([]int64{0, 1}, 2), "x_test": x, "y_test": rt.FromInt64([]int64{0, 1}, 2)})
	corrupt := filepath.Join(root, "corrupt.npz")
	must(t, os.WriteFile(corrupt, []byte("PK\x03\x04 definitely not a zip"), 0o644))
	badMember := filepath.Join(root, "badmember.npz")
	{
		var buf bytes.Buffer
		zw := zip.NewWriter(&buf)
		w, _ := zw.Create("x.npy")
		w.Write([]byte("\x93NUMPY\x01\x00garbage"))
		w, _ = zw.Create("y.npy")
		w.Write(npyBytes(t, rt.FromInt64([]int64{0}, 1)))
		zw.Close()
		must(t, os.WriteFile(badMember, buf.Bytes(), 0o644))
	}
	single := filepath.Join(root, "x.npy")
	must(t, os.WriteFile(single, npyBytes(t, x), 0o644))

	for i, tc := range []struct {
		path  string
		split Split
		opts  Options
		want  string
	}{
		{noTest, SplitTest, Options{}, "has no x_test array"},
		{noY, SplitTrain, Options{}, "has x_train but no y_train array"},
		{count, SplitAll, Options{}, "x holds 2 examples (shape [2 2 2]) but y has shape [3]"},
		{frac, SplitAll, Options{}, "label 1.5 of example 1 is not a class index"},
		{neg, SplitAll, Options{}, "label -3 of example 1 is not a class index"},
		{count, SplitTrain, Options{NumClasses: 1}, "y has shape [3]"},
		{npz("range", map[string]*rt.Tensor{"x": x, "y": rt.FromInt64([]int64{0, 4}, 2)}), SplitAll, Options{NumClasses: 3}, "label 4 of example 1 is outside the 3 classes (0..2)"},
		{hot, SplitAll, Options{}, "row 1 is not one-hot"},
		{both, SplitAll, Options{}, "has train and test parts; choose one"},
		{corrupt, SplitAll, Options{}, "not a readable .npz (zip) archive"},
		{badMember, SplitAll, Options{}, "badmember.npz: array x.npy: npy header"},
		{single, SplitTrain, Options{}, "is a single NumPy array, without labels"},
	} {
		_, err := OpenWith(tc.path, tc.split, tc.opts)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%d: error %v, want one containing %q", i, err, tc.want)
		}
	}
	if _, err := OpenWith(noTest, SplitTest, Options{}); !errors.Is(err, ErrNoSplit) {
		t.Errorf("missing test split: %v, want ErrNoSplit", err)
	}
}

func TestReadNPZ(t *testing.T) {
	b := npzBytes(t, true, map[string]*rt.Tensor{"a": rt.FromFloat32([]float32{1, 2}, 2), "b": rt.FromInt64([]int64{7}, 1)})
	m, err := ReadNPZ(bytes.NewReader(b), int64(len(b)))
	if err != nil {
		t.Fatal(err)
	}
	if len(m) != 2 || !slices.Equal(m["a"].F32, []float32{1, 2}) || m["b"].I64[0] != 7 {
		t.Errorf("ReadNPZ = %v", m)
	}
}
