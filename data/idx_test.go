package data

import (
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	rt "github.com/compressml/compress/runtime"
)

// idxBytes builds an idx file: magic, dims, then payload.
func idxBytes(typ byte, dims []uint32, payload []byte) []byte {
	var b bytes.Buffer
	b.Write([]byte{0, 0, typ, byte(len(dims))})
	for _, d := range dims {
		binary.Write(&b, binary.BigEndian, d)
	}
	b.Write(payload)
	return b.Bytes()
}

func gz(t testing.TB, b []byte) []byte {
	t.Helper()
	var out bytes.Buffer
	w := gzip.NewWriter(&out)
	if _, err := w.Write(b); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return out.Bytes()
}

func TestReadIDX(t *testing.T) {
	f32 := make([]byte, 8)
	binary.BigEndian.PutUint32(f32, math.Float32bits(1.5))
	binary.BigEndian.PutUint32(f32[4:], math.Float32bits(-2))
	f64 := make([]byte, 8)
	binary.BigEndian.PutUint64(f64, math.Float64bits(0.25))
	for i, tc := range []struct {
		name  string
		in    []byte
		dt    rt.DType
		shape []int
		want  []float64
	}{
		{"ubyte", idxBytes(0x08, []uint32{2, 3}, []byte{0, 1, 2, 253, 254, 255}), rt.Uint8, []int{2, 3}, []float64{0, 1, 2, 253, 254, 255}},
		{"sbyte", idxBytes(0x09, []uint32{2}, []byte{0xff, 5}), rt.Int8, []int{2}, []float64{-1, 5}},
		{"short", idxBytes(0x0B, []uint32{2}, []byte{0xff, 0xfe, 0x01, 0x00}), rt.Int32, []int{2}, []float64{-2, 256}},
		{"int", idxBytes(0x0C, []uint32{1}, []byte{0x00, 0x01, 0x00, 0x00}), rt.Int32, []int{1}, []float64{65536}},
		{"float", idxBytes(0x0D, []uint32{2}, f32), rt.Float32, []int{2}, []float64{1.5, -2}},
		{"double", idxBytes(0x0E, []uint32{1}, f64), rt.Float32, []int{1}, []float64{0.25}},
		{"empty", idxBytes(0x08, []uint32{0, 28, 28}, nil), rt.Uint8, []int{0, 28, 28}, nil},
	} {
		got, err := ReadIDX(bytes.NewReader(tc.in))
		if err != nil {
			t.Errorf("%d (%s): %v", i, tc.name, err)
			continue
		}
		if got.DType != tc.dt || !rt.SameShape(got.Shape, tc.shape) {
			t.Errorf("%d (%s): got %v %v, want %v %v", i, tc.name, got.DType, got.Shape, tc.dt, tc.shape)
			continue
		}
		for j, w := range tc.want {
			if v := got.Float64At(j); v != w {
				t.Errorf("%d (%s): element %d = %v, want %v", i, tc.name, j, v, w)
			}
		}
	}
}

func TestReadIDXErrors(t *testing.T) {
	for i, tc := range []struct {
		name string
		in   []byte
		want string
	}{
		{"empty file", nil, "too short"},
		{"short magic", []byte{0, 0}, "too short"},
		{"bad magic", []byte{1, 2, 8, 1, 0, 0, 0, 0}, "bad magic number 0x01020801"},
		{"gzip", gzipMagicOnly(), "gzip-compressed"},
		{"unknown type", []byte{0, 0, 0x07, 1, 0, 0, 0, 0}, "unknown element type code 0x07"},
		{"rank 0", []byte{0, 0, 0x08, 0}, "rank 0"},
		{"rank 200", []byte{0, 0, 0x08, 200}, "rank 200"},
		{"truncated dims", []byte{0, 0, 0x08, 3, 0, 0, 0, 1, 0, 0}, "truncated: 3 dimensions"},
		{"absurd dim", idxBytes(0x08, []uint32{0xffffffff}, nil), "absurd"},
		{"too many elements", idxBytes(0x08, []uint32{1 << 20, 1 << 20, 1 << 10}, nil), "more than"},
		{"truncated data", idxBytes(0x08, []uint32{10, 28, 28}, make([]byte, 100)), "truncated: the header declares [10 28 28] unsigned bytes (7840 bytes) but only 100 bytes"},
		{"trailing data", idxBytes(0x08, []uint32{2}, []byte{1, 2, 3}), "unexpected bytes after the 2 bytes"},
		{"truncated floats", idxBytes(0x0D, []uint32{2}, make([]byte, 7)), "(8 bytes) but only 7"},
	} {
		_, err := ReadIDX(bytes.NewReader(tc.in))
		if err == nil {
			t.Errorf("%d (%s): no error", i, tc.name)
			continue
		}
		if !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%d (%s): error %q does not contain %q", i, tc.name, err, tc.want)
		}
	}
}

func gzipMagicOnly() []byte { return []byte{0x1f, 0x8b, 8, 0, 0, 0} }

func TestReadIDXFile(t *testing.T) {
	dir := t.TempDir()
	raw := idxBytes(0x08, []uint32{2, 2}, []byte{1, 2, 3, 4})
	plain := filepath.Join(dir, "a-idx2-ubyte")
	zipped := filepath.Join(dir, "a-idx2-ubyte.gz")
	noExt := filepath.Join(dir, "gzipped-without-extension")
	truncGz := filepath.Join(dir, "trunc.gz")
	must(t, os.WriteFile(plain, raw, 0o644))
	must(t, os.WriteFile(zipped, gz(t, raw), 0o644))
	must(t, os.WriteFile(noExt, gz(t, raw), 0o644))
	full := gz(t, idxBytes(0x08, []uint32{1000}, make([]byte, 1000)))
	must(t, os.WriteFile(truncGz, full[:len(full)/2], 0o644))
	for _, p := range []string{plain, zipped, noExt} {
		x, err := ReadIDXFile(p)
		if err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		if !rt.SameShape(x.Shape, []int{2, 2}) || !bytes.Equal(x.U8, []byte{1, 2, 3, 4}) {
			t.Errorf("%s: got %v %v", p, x.Shape, x.U8)
		}
	}
	if _, err := ReadIDXFile(truncGz); err == nil || !strings.Contains(err.Error(), truncGz) {
		t.Errorf("truncated gzip: error %v should name the file", err)
	}
	if _, err := ReadIDXFile(filepath.Join(dir, "missing")); err == nil {
		t.Errorf("missing file: no error")
	}
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// FuzzReadIDX checks that no input makes the idx parser panic or allocate
// beyond what it reads, and that what it accepts is consistent.
func FuzzReadIDX(f *testing.F) {
	f.Add(idxBytes(0x08, []uint32{2, 3}, []byte{0, 1, 2, 3, 4, 5}))
	f.Add(idxBytes(0x0D, []uint32{1}, []byte{0, 0, 0x80, 0x3f}))
	f.Add(idxBytes(0x0E, []uint32{1, 1}, make([]byte, 8)))
	f.Add(idxBytes(0x0B, []uint32{2}, make([]byte, 3)))
	f.Add(idxBytes(0x08, []uint32{0xffffff, 0xffffff}, nil))
	f.Add([]byte{0, 0, 8})
	f.Fuzz(func(t *testing.T, b []byte) {
		x, err := ReadIDX(bytes.NewReader(b))
		if err != nil {
			return
		}
		if err := rt.CheckShape(x.Shape); err != nil {
			t.Fatalf("accepted invalid shape: %v", err)
		}
		n := x.Len()
		if size := idxTypes[b[2]].size; 4+4*len(x.Shape)+n*size != len(b) {
			t.Fatalf("accepted %d bytes for shape %v of %d-byte elements", len(b), x.Shape, size)
		}
		have := len(x.U8) + len(x.I8) + len(x.I32) + len(x.F32)
		if have != n {
			t.Fatalf("tensor holds %d values for shape %v", have, x.Shape)
		}
	})
}
