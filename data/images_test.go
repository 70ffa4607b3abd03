package data

import (
	"errors"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
)

// writeImage saves img as PNG or JPEG (by extension) at dir/name, creating
// folders.
func writeImage(t *testing.T, path string, img image.Image) {
	t.Helper()
	must(t, os.MkdirAll(filepath.Dir(path), 0o755))
	f, err := os.Create(path)
	must(t, err)
	defer f.Close()
	if strings.HasSuffix(path, ".png") {
		must(t, png.Encode(f, img))
	} else {
		must(t, jpeg.Encode(f, img, &jpeg.Options{Quality: 100}))
	}
}

// grayImage is a w×h gray image with pixel (x, y) = base + y*w + x.
func grayImage(w, h, base int) *image.Gray {
	g := image.NewGray(image.Rect(0, 0, w, h))
	for y := range h {
		for x := range w {
			g.SetGray(x, y, color.Gray{uint8(base + y*w + x)})
		}
	}
	return g
}

// rgbImage is a w×h image of one colour.
func rgbImage(w, h int, c color.RGBA) *image.RGBA {
	m := image.NewRGBA(image.Rect(0, 0, w, h))
	for y := range h {
		for x := range w {
			m.SetRGBA(x, y, c)
		}
	}
	return m
}

func TestImageFolder(t *testing.T) {
	flat := t.TempDir()
	writeImage(t, filepath.Join(flat, "cat", "a.png"), grayImage(3, 2, 0))
	writeImage(t, filepath.Join(flat, "cat", "b.png"), grayImage(3, 2, 100))
	writeImage(t, filepath.Join(flat, "dog", "nested", "c.png"), grayImage(3, 2, 200))
	writeImage(t, filepath.Join(flat, "ant", "d.PNG"), grayImage(3, 2, 50))
	must(t, os.WriteFile(filepath.Join(flat, "dog", "notes.txt"), []byte("ignored"), 0o644))
	must(t, os.WriteFile(filepath.Join(flat, "dog", ".hidden.png"), []byte("ignored"), 0o644))

	split := t.TempDir()
	writeImage(t, filepath.Join(split, "train", "red", "1.png"), rgbImage(4, 4, color.RGBA{255, 0, 0, 255}))
	writeImage(t, filepath.Join(split, "train", "blue", "2.png"), rgbImage(4, 4, color.RGBA{0, 0, 255, 255}))
	writeImage(t, filepath.Join(split, "test", "red", "3.png"), rgbImage(8, 8, color.RGBA{255, 0, 0, 255}))
	writeImage(t, filepath.Join(split, "test", "green", "4.jpg"), rgbImage(4, 4, color.RGBA{0, 255, 0, 255}))

	gray := func(base int) []float32 {
		v := make([]float32, 6)
		for i := range v {
			v[i] = float32(base + i)
		}
		return v
	}
	planes := func(n int, r, g, b float32) []float32 {
		v := make([]float32, 3*n)
		for i := range n {
			v[i], v[n+i], v[2*n+i] = r, g, b
		}
		return v
	}
	for _, tc := range []struct {
		name    string
		dir     string
		split   Split
		opts    Options
		shape   []int
		classes []string
		labels  []int
		x       [][]float32 // nil: not checked; entries compared within tol
		tol     float32
	}{
		{"flat train", flat, SplitTrain, Options{}, []int{1, 2, 3}, []string{"ant", "cat", "dog"}, []int{0, 1, 1, 2},
			[][]float32{gray(50), gray(0), gray(100), gray(200)}, 0},
		{"flat all, as RGB", flat, SplitAll, Options{Channels: 3}, []int{3, 2, 3}, nil, []int{0, 1, 1, 2},
			[][]float32{append(append(gray(50), gray(50)...), gray(50)...)}, 0},
		{"resized", flat, SplitTrain, Options{Height: 4, Width: 6}, []int{1, 4, 6}, nil, []int{0, 1, 1, 2}, nil, 0},
		{"split train", split, SplitTrain, Options{}, []int{3, 4, 4}, []string{"blue", "green", "red"}, []int{0, 2},
			[][]float32{planes(16, 0, 0, 255), planes(16, 255, 0, 0)}, 0},
		{"split test resized to 4x4", split, SplitTest, Options{Channels: 3, Height: 4, Width: 4}, []int{3, 4, 4}, []string{"blue", "green", "red"}, []int{1, 2},
			[][]float32{planes(16, 0, 255, 0), planes(16, 255, 0, 0)}, 3}, // JPEG is lossy
		{"split test as gray", split, SplitTest, Options{Channels: 1, Height: 2, Width: 2}, []int{1, 2, 2}, nil, []int{1, 2},
			[][]float32{{150, 150, 150, 150}, {76, 76, 76, 76}}, 2}, // BT.601 luma of green, red
		{"WithInputShape", split, SplitTrain, Options{}.WithInputShape([]int{1, 2, 2}), []int{1, 2, 2}, nil, []int{0, 2},
			[][]float32{{29, 29, 29, 29}, {76, 76, 76, 76}}, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ds, err := OpenWith(tc.dir, tc.split, tc.opts)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(ds.Shape(), tc.shape) {
				t.Errorf("shape %v, want %v", ds.Shape(), tc.shape)
			}
			if tc.classes != nil && !slices.Equal(ds.(ClassNamer).ClassNames(), tc.classes) {
				t.Errorf("classes %v, want %v", ds.(ClassNamer).ClassNames(), tc.classes)
			}
			x, l := examples(t, ds)
			if !slices.Equal(l, tc.labels) {
				t.Errorf("labels %v, want %v", l, tc.labels)
			}
			for i, want := range tc.x {
				for j := range want {
					if d := x[i][j] - want[j]; d > tc.tol || d < -tc.tol {
						t.Fatalf("example %d value %d = %v, want %v (all: %v)", i, j, x[i][j], want[j], x[i])
					}
				}
			}
		})
	}
}

func TestImageFolderConcurrent(t *testing.T) {
	dir := t.TempDir()
	for i := range 12 {
		writeImage(t, filepath.Join(dir, []string{"a", "b", "c"}[i%3], string(rune('a'+i))+".png"), grayImage(5, 5, i*7))
	}
	ds, err := OpenWith(dir, SplitTrain, Options{Height: 3, Width: 4, Channels: 3})
	if err != nil {
		t.Fatal(err)
	}
	want, _ := examples(t, ds)
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			x := make([]float32, 36)
			for r := range 5 {
				for i := (w + r) % 4; i < ds.Len(); i += 4 {
					if _, err := ds.Example(i, x); err != nil {
						t.Error(err)
						return
					}
					if !slices.Equal(x, want[i]) {
						t.Errorf("example %d differs when decoded concurrently", i)
					}
				}
			}
		}()
	}
	wg.Wait()
}

func TestImageFolderErrors(t *testing.T) {
	root := t.TempDir()
	noClasses := filepath.Join(root, "noclasses")
	writeImage(t, filepath.Join(noClasses, "loose.png"), grayImage(2, 2, 0))
	emptyClasses := filepath.Join(root, "emptyclasses")
	must(t, os.MkdirAll(filepath.Join(emptyClasses, "train", "a"), 0o755))
	flat := filepath.Join(root, "flat")
	writeImage(t, filepath.Join(flat, "a", "1.png"), grayImage(2, 2, 0))
	corrupt := filepath.Join(root, "corrupt")
	writeImage(t, filepath.Join(corrupt, "a", "1.png"), grayImage(2, 2, 0))
	bad := filepath.Join(corrupt, "b", "2.png")
	must(t, os.MkdirAll(filepath.Dir(bad), 0o755))
	must(t, os.WriteFile(bad, []byte("\x89PNG\r\n\x1a\n truncated"), 0o644))
	badFirst := filepath.Join(root, "badfirst")
	must(t, os.MkdirAll(filepath.Join(badFirst, "a"), 0o755))
	must(t, os.WriteFile(filepath.Join(badFirst, "a", "1.jpg"), []byte("not a jpeg"), 0o644))

	for i, tc := range []struct {
		dir   string
		split Split
		opts  Options
		want  string
	}{
		{noClasses, SplitTrain, Options{}, "holds images but no class sub-folders"},
		{emptyClasses, SplitTrain, Options{}, "its class sub-folders (a) hold no PNG or JPEG files"},
		{flat, SplitTest, Options{}, "has no test/ sub-folder"},
		{flat, SplitTrain, Options{Task: TaskRegression}, "cannot be read for regression"},
		{flat, SplitTrain, Options{Channels: 2}, "1 (grayscale) or 3 (RGB) channels, not 2"},
		{flat, SplitTrain, Options{Height: 3}, "give both height and width"},
		{badFirst, SplitTrain, Options{}, filepath.Join(badFirst, "a", "1.jpg") + ": cannot read the image header"},
	} {
		_, err := LoadImageFolder(tc.dir, tc.split, tc.opts)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%d: error %v, want one containing %q", i, err, tc.want)
		}
	}
	if _, err := LoadImageFolder(flat, SplitTest, Options{}); !errors.Is(err, ErrNoSplit) {
		t.Errorf("flat test split: %v, want ErrNoSplit", err)
	}
	// A corrupt image is reported when read, naming the file.
	ds, err := LoadImageFolder(corrupt, SplitTrain, Options{})
	if err != nil {
		t.Fatal(err)
	}
	x := make([]float32, 4)
	if _, err := ds.Example(0, x); err != nil {
		t.Errorf("good image: %v", err)
	}
	if _, err := ds.Example(1, x); err == nil || !strings.Contains(err.Error(), bad+": cannot decode the image") {
		t.Errorf("corrupt image: %v", err)
	}
	ld, _ := NewLoader(ds, LoaderOptions{BatchSize: 2})
	if _, err := ld.Batch(0, nil); err == nil || !strings.Contains(err.Error(), bad) {
		t.Errorf("loader over a corrupt image: %v", err)
	}
}
