package data

import (
	"archive/zip"
	"bytes"
	"strings"
	"testing"

	rt "github.com/compressml/compress/runtime"
)

// FuzzParseCSV checks that no input makes ParseCSV panic, and that what it
// accepts is a consistent data set.
//
//	go test ./data -run '^$' -fuzz FuzzParseCSV -fuzztime 20s
func FuzzParseCSV(f *testing.F) {
	for _, s := range []string{
		"1,2,0\n3,4,1\n",
		"a,b,label\n1,2,0\n",
		"150,4,setosa,versicolor,virginica\n5.1,3.5,1.4,0.2,0\n",
		"506,13,,\n\"A\",\"B\",\"C\"\n1,2,3\n",
		"1\t2\t1\n",
		"x;y\n1;cat\n2;dog\n",
		"\ufeff1,\"2\",3\r\n",
		"1,,0\n",
		"1,2\n3\n",
		"1,nan,inf\n",
	} {
		f.Add([]byte(s), uint8(0))
		f.Add(gz(f, []byte(s)), uint8(1))
	}
	f.Fuzz(func(t *testing.T, b []byte, mode uint8) {
		opts := Options{Header: HeaderMode(mode % 3)}
		switch mode / 3 % 4 {
		case 1:
			opts.Task = TaskRegression
		case 2:
			opts.LabelColumn = "0"
		case 3:
			opts.LabelColumn = "label"
		}
		ds, err := ParseCSV(bytes.NewReader(b), "fuzz.csv", opts)
		if err != nil {
			if !strings.Contains(err.Error(), "fuzz.csv") {
				t.Errorf("error does not name the file: %v", err)
			}
			return
		}
		x := make([]float32, rt.NumElements(ds.Shape()))
		for i := range ds.Len() {
			l, err := ds.Example(i, x)
			if err != nil || l < 0 || (ds.NumClasses() > 0 && l >= ds.NumClasses()) {
				t.Fatalf("example %d: label %d of %d classes, %v", i, l, ds.NumClasses(), err)
			}
		}
		if k, ok := HasTargets(ds); ok {
			y := make([]float32, k)
			for i := range ds.Len() {
				if err := ds.Targets(i, y); err != nil {
					t.Fatal(err)
				}
			}
		}
	})
}

// FuzzReadNPZ checks that no archive makes the .npz reader panic or
// allocate for sizes its headers merely claim.
//
//	go test ./data -run '^$' -fuzz FuzzReadNPZ -fuzztime 20s
func FuzzReadNPZ(f *testing.F) {
	f.Add(npzBytes(f, false, map[string]*rt.Tensor{"x": rt.FromFloat32([]float32{1, 2}, 2, 1), "y": rt.FromInt64([]int64{0, 1}, 2)}))
	f.Add(npzBytes(f, true, map[string]*rt.Tensor{"x_train": u8Images(2, 2, 2), "y_train": rt.FromInt64([]int64{1, 0}, 2)}))
	f.Add(npzBytes(f, true, map[string]*rt.Tensor{"a": rt.New(rt.Bool, 3)}))
	// Stored members without a CRC (archive/zip then skips the check), so
	// that mutations reach the .npy decoder.
	f.Add(rawNPZ(f, map[string][]byte{
		"x.npy": npyBytes(f, rt.FromFloat32([]float32{1, 2, 3, 4}, 2, 2)),
		"y.npy": npyBytes(f, rt.FromInt64([]int64{0, 1}, 2)),
	}))
	f.Add([]byte("PK\x05\x06\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00"))
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := ReadNPZ(bytes.NewReader(b), int64(len(b)))
		if err != nil {
			return
		}
		for k, v := range m {
			if err := rt.CheckShape(v.Shape); err != nil {
				t.Fatalf("array %s: %v", k, err)
			}
		}
		x, y := m["x"], m["y"]
		if x != nil && y != nil {
			// Building a data set from decoded arrays must not panic either.
			for _, task := range []Task{TaskClassification, TaskRegression} {
				if ds, err := NewArrays("fuzz", x, y, Options{Task: task}); err == nil {
					buf := make([]float32, rt.NumElements(ds.Shape()))
					for i := range ds.Len() {
						if _, err := ds.Example(i, buf); err != nil {
							t.Fatal(err)
						}
					}
				}
			}
		}
	})
}

// rawNPZ stores members uncompressed and without a CRC.
func rawNPZ(t testing.TB, members map[string][]byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for _, name := range []string{"x.npy", "y.npy"} {
		b := members[name]
		w, err := zw.CreateRaw(&zip.FileHeader{Name: name, Method: zip.Store, CompressedSize64: uint64(len(b)), UncompressedSize64: uint64(len(b))})
		if err != nil {
			t.Fatal(err)
		}
		w.Write(b)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}
