package data

import (
	"slices"
	"strings"
	"sync"
	"testing"

	rt "github.com/compressml/compress/runtime"
)

// tinySet has n examples of shape [2 1 2] (values i*4+j) and labels i%3.
func tinySet(t *testing.T, n int) *InMemory {
	t.Helper()
	x := rt.New(rt.Uint8, n, 2, 1, 2)
	for i := range x.U8 {
		x.U8[i] = uint8(i)
	}
	labels := make([]int, n)
	for i := range labels {
		labels[i] = i % 3
	}
	ds, err := NewInMemory("tiny", x, labels, 0)
	if err != nil {
		t.Fatal(err)
	}
	return ds
}

func TestLoaderBatches(t *testing.T) {
	ds := tinySet(t, 5)
	for i, tc := range []struct {
		opts    LoaderOptions
		batches int
		shape0  []int // shape of batch 0
		last    []int // shape of the last batch
		x0      []float32
		labels  [][]int
	}{
		{LoaderOptions{BatchSize: 2}, 3, []int{2, 2, 1, 2}, []int{1, 2, 1, 2}, []float32{0, 1, 2, 3, 4, 5, 6, 7}, [][]int{{0, 1}, {2, 0}, {1}}},
		{LoaderOptions{BatchSize: 2, DropLast: true}, 2, []int{2, 2, 1, 2}, []int{2, 2, 1, 2}, nil, [][]int{{0, 1}, {2, 0}}},
		{LoaderOptions{BatchSize: 4, Shape: []int{4}, Limit: 3}, 1, []int{3, 4}, []int{3, 4}, nil, [][]int{{0, 1, 2}}},
		{LoaderOptions{BatchSize: 1, Preprocess: Preprocess{Scale: 0.5, Mean: []float32{1}, Std: []float32{2}}}, 5, []int{1, 2, 1, 2}, []int{1, 2, 1, 2},
			[]float32{-0.5, -0.25, 0, 0.25}, nil},
		{LoaderOptions{BatchSize: 1, Preprocess: Preprocess{Mean: []float32{0, 10}, Std: []float32{1, 2}}}, 5, []int{1, 2, 1, 2}, []int{1, 2, 1, 2},
			[]float32{0, 1, -4, -3.5}, nil},
		{LoaderOptions{}, 1, []int{5, 2, 1, 2}, []int{5, 2, 1, 2}, nil, nil},
	} {
		ld, err := NewLoader(ds, tc.opts)
		if err != nil {
			t.Fatalf("%d: %v", i, err)
		}
		if ld.NumBatches() != tc.batches {
			t.Errorf("%d: %d batches, want %d", i, ld.NumBatches(), tc.batches)
		}
		var b *Batch
		for j := range ld.NumBatches() {
			b, err = ld.Batch(j, b)
			if err != nil {
				t.Fatalf("%d: batch %d: %v", i, j, err)
			}
			if j == 0 && !slices.Equal(b.X.Shape, tc.shape0) {
				t.Errorf("%d: batch 0 shape %v, want %v", i, b.X.Shape, tc.shape0)
			}
			if j == 0 && tc.x0 != nil && !slices.Equal(b.X.F32, tc.x0) {
				t.Errorf("%d: batch 0 = %v, want %v", i, b.X.F32, tc.x0)
			}
			if tc.labels != nil && !slices.Equal(b.Labels, tc.labels[j]) {
				t.Errorf("%d: batch %d labels %v, want %v", i, j, b.Labels, tc.labels[j])
			}
			if len(b.X.F32) != rt.NumElements(b.X.Shape) {
				t.Errorf("%d: batch %d holds %d values for shape %v", i, j, len(b.X.F32), b.X.Shape)
			}
		}
		if !slices.Equal(b.X.Shape, tc.last) {
			t.Errorf("%d: last batch shape %v, want %v", i, b.X.Shape, tc.last)
		}
	}
}

func TestLoaderShuffleDeterministic(t *testing.T) {
	ds := tinySet(t, 50)
	order := func(seed uint64) []int {
		ld, err := NewLoader(ds, LoaderOptions{BatchSize: 50, Shuffle: true, Seed: seed})
		if err != nil {
			t.Fatal(err)
		}
		b, err := ld.Batch(0, nil)
		if err != nil {
			t.Fatal(err)
		}
		return b.Indices
	}
	a, b, c := order(1), order(1), order(2)
	if !slices.Equal(a, b) {
		t.Errorf("same seed, different orders: %v %v", a, b)
	}
	if slices.Equal(a, c) {
		t.Errorf("different seeds, same order")
	}
	sorted := slices.Clone(a)
	slices.Sort(sorted)
	for i, v := range sorted {
		if v != i {
			t.Fatalf("shuffle is not a permutation: %v", a)
		}
	}
}

func TestLoaderConcurrent(t *testing.T) {
	ds := tinySet(t, 100)
	ld, err := NewLoader(ds, LoaderOptions{BatchSize: 7, Preprocess: Preprocess{Scale: 1.0 / 255}})
	if err != nil {
		t.Fatal(err)
	}
	want := make([][]float32, ld.NumBatches())
	for i := range want {
		b, err := ld.Batch(i, nil)
		if err != nil {
			t.Fatal(err)
		}
		want[i] = b.X.F32
	}
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var b *Batch
			for i := w; i < ld.NumBatches(); i += 4 {
				var err error
				if b, err = ld.Batch(i, b); err != nil {
					t.Error(err)
					return
				}
				if !slices.Equal(b.X.F32, want[i]) {
					t.Errorf("batch %d differs when loaded concurrently", i)
				}
			}
		}()
	}
	wg.Wait()
}

func TestLoaderErrors(t *testing.T) {
	ds := tinySet(t, 3)
	for i, tc := range []struct {
		opts LoaderOptions
		want string
	}{
		{LoaderOptions{BatchSize: -1}, "batch size -1"},
		{LoaderOptions{Limit: -2}, "limit -2"},
		{LoaderOptions{Shape: []int{3, 3}}, "examples of shape [2 1 2] (4 values) but the model takes [3 3] (9 values)"},
		{LoaderOptions{Shape: []int{-1, 4}}, "negative"},
		{LoaderOptions{Preprocess: Preprocess{Std: []float32{0}}}, "std value 0"},
		{LoaderOptions{Preprocess: Preprocess{Mean: []float32{1, 2, 3}}}, "3 per-channel mean/std values do not match the model input shape [1 2 1 2]"},
		{LoaderOptions{Preprocess: Preprocess{Mean: []float32{1, 2}, Std: []float32{1, 2, 3}}}, "mean has 2 values and std 3"},
	} {
		_, err := NewLoader(ds, tc.opts)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%d: error %v, want one containing %q", i, err, tc.want)
		}
	}
	ld, _ := NewLoader(ds, LoaderOptions{})
	if _, err := ld.Batch(1, nil); err == nil {
		t.Errorf("batch out of range: no error")
	}
}

func TestParseFloats(t *testing.T) {
	for i, tc := range []struct {
		in   string
		want []float32
		err  bool
	}{
		{"", nil, false},
		{"0.5", []float32{0.5}, false},
		{" 0.485, 0.456 ,0.406", []float32{0.485, 0.456, 0.406}, false},
		{"1,,2", nil, true},
		{"x", nil, true},
	} {
		got, err := ParseFloats(tc.in)
		if (err != nil) != tc.err || !slices.Equal(got, tc.want) {
			t.Errorf("%d: ParseFloats(%q) = %v, %v", i, tc.in, got, err)
		}
	}
}

func TestNewInMemoryErrors(t *testing.T) {
	x := rt.New(rt.Uint8, 2, 3)
	for i, tc := range []struct {
		x       *rt.Tensor
		labels  []int
		classes int
		want    string
	}{
		{nil, nil, 0, "no example tensor"},
		{x, []int{1}, 0, "2 examples but 1 labels"},
		{x, []int{1, -1}, 0, "negative"},
		{x, []int{1, 5}, 3, "label 5 is outside the 3 classes"},
		{rt.New(rt.Int64, 2), []int{0, 0}, 0, "not supported"},
		{&rt.Tensor{DType: rt.Float32, Shape: []int{2, 2}, F32: make([]float32, 3)}, []int{0, 0}, 0, "needs 4 values"},
	} {
		_, err := NewInMemory("t", tc.x, tc.labels, tc.classes)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%d: error %v, want one containing %q", i, err, tc.want)
		}
	}
}

func TestSubset(t *testing.T) {
	ds := tinySet(t, 5)
	s := &Subset{DS: ds, Indices: []int{4, 0}}
	x := make([]float32, 4)
	l, err := s.Example(0, x)
	if err != nil || l != 1 || x[0] != 16 {
		t.Errorf("subset example 0 = %v label %d err %v", x, l, err)
	}
	if s.Len() != 2 || s.NumClasses() != 3 || !strings.Contains(Name(s), "2 examples of tiny") {
		t.Errorf("subset len %d classes %d name %q", s.Len(), s.NumClasses(), Name(s))
	}
}
