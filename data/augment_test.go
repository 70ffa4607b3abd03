package data

import (
	"math"
	"slices"
	"strings"
	"sync"
	"testing"

	rt "github.com/compressml/compress/runtime"
)

// ramp is a c×h×w image with value ch*1000 + y*w + x.
func ramp(c, h, w int) []float32 {
	x := make([]float32, c*h*w)
	for ch := range c {
		for i := range h * w {
			x[ch*h*w+i] = float32(ch*1000 + i)
		}
	}
	return x
}

func TestWarpGeometry(t *testing.T) {
	const h, w = 3, 4
	src := ramp(2, h, w)
	full := xform{cw: w, ch: h}
	for _, tc := range []struct {
		name string
		t    xform
		h, w int
		want func(ch, y, x int) float32 // expected output pixel
	}{
		{"identity", full, h, w, func(ch, y, x int) float32 { return src[ch*h*w+y*w+x] }},
		{"flip", xform{cw: w, ch: h, flip: true}, h, w, func(ch, y, x int) float32 { return src[ch*h*w+y*w+(w-1-x)] }},
		{"translate right 1, up 1", xform{cw: w, ch: h, tx: 1, ty: -1}, h, w, func(ch, y, x int) float32 {
			sx, sy := x-1, y+1
			if sx < 0 || sy >= h {
				return -5
			}
			return src[ch*h*w+sy*w+sx]
		}},
		{"crop 2x2 at (1,1), upscaled by pixel centres", xform{x0: 1, y0: 1, cw: 2, ch: 1.5, flip: false}, h, w, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			x := make([]float32, len(src))
			warp(x, src, 2, h, w, tc.t, -5)
			if tc.want == nil {
				return
			}
			for ch := range 2 {
				for y := range h {
					for xx := range w {
						if got, want := x[ch*h*w+y*w+xx], tc.want(ch, y, xx); got != want {
							t.Fatalf("pixel (%d,%d,%d) = %v, want %v", ch, y, xx, got, want)
						}
					}
				}
			}
		})
	}
}

func TestWarpRotate90(t *testing.T) {
	const n = 5
	src := ramp(1, n, n)
	x := make([]float32, n*n)
	// 90 degrees counter-clockwise: output (x, y) shows source (n-1-y, x).
	warp(x, src, 1, n, n, xform{cw: n, ch: n, angle: math.Pi / 2}, -1)
	for y := range n {
		for xx := range n {
			want := src[xx*n+(n-1-y)]
			if d := math.Abs(float64(x[y*n+xx] - want)); d > 1e-4 {
				t.Fatalf("rot90 pixel (%d,%d) = %v, want %v\n%v", xx, y, x[y*n+xx], want, x)
			}
		}
	}
	// Four quarter turns give the image back.
	y := slices.Clone(src)
	for range 4 {
		tmp := slices.Clone(y)
		warp(y, tmp, 1, n, n, xform{cw: n, ch: n, angle: math.Pi / 2}, -1)
	}
	for i := range y {
		if math.Abs(float64(y[i]-src[i])) > 1e-3 {
			t.Fatalf("four quarter turns: %v, want %v", y, src)
		}
	}
	// A small rotation keeps the centre pixel of an odd image.
	warp(x, src, 1, n, n, xform{cw: n, ch: n, angle: 0.3}, -1)
	if c := n/2*n + n/2; x[c] != src[c] {
		t.Errorf("centre moved: %v, want %v", x[c], src[c])
	}
}

func TestCropBoxes(t *testing.T) {
	for _, tc := range []struct {
		h, w         int
		scale, ratio [2]float64
	}{
		{28, 28, [2]float64{0.08, 1}, [2]float64{}},
		{32, 48, [2]float64{0.5, 0.9}, [2]float64{0.5, 2}},
		{10, 10, [2]float64{1, 1}, [2]float64{1, 1}},
		{4, 40, [2]float64{0.9, 1}, [2]float64{1, 1}}, // never fits: centre crop fallback
	} {
		a := &Augment{CropScale: tc.scale, CropRatio: tc.ratio, Seed: 3}
		ratio := tc.ratio
		if ratio == [2]float64{} {
			ratio = [2]float64{3.0 / 4, 4.0 / 3}
		}
		fallback := 0
		for i := range 300 {
			tr := a.draw(i, tc.h, tc.w)
			if tr.x0 < 0 || tr.y0 < 0 || tr.x0+tr.cw > float64(tc.w) || tr.y0+tr.ch > float64(tc.h) || tr.cw < 1 || tr.ch < 1 {
				t.Fatalf("%dx%d: crop %+v outside the image", tc.w, tc.h, tr)
			}
			if tr.cw != math.Trunc(tr.cw) || tr.ch != math.Trunc(tr.ch) {
				t.Fatalf("crop %+v is not whole pixels", tr)
			}
			area := tr.cw * tr.ch / float64(tc.h*tc.w)
			r := tr.cw / tr.ch
			// Rounding to whole pixels moves the area and ratio a little.
			slack := 0.5/(tr.cw-0.5) + 0.5/(tr.ch-0.5)
			if area < tc.scale[0]*(1-slack) || area > tc.scale[1]*(1+slack) || r < ratio[0]*(1-slack) || r > ratio[1]*(1+slack) {
				fallback++
				// The fallback is a centre crop.
				if tr.x0 != math.Floor((float64(tc.w)-tr.cw)/2) || tr.y0 != math.Floor((float64(tc.h)-tr.ch)/2) {
					t.Fatalf("%dx%d: crop %+v (area %.3f, ratio %.3f) outside the ranges and not a centre crop", tc.w, tc.h, tr, area, r)
				}
			}
		}
		if tc.h == 4 && fallback != 300 {
			t.Errorf("4x40: %d of 300 crops fell back, want all", fallback)
		}
		if tc.h != 4 && fallback > 0 {
			t.Errorf("%dx%d: %d crops fell back to the centre", tc.w, tc.h, fallback)
		}
	}
}

// augSet is 6 examples of shape [1 5 5] whose pixels are distinct.
func augSet(t *testing.T) *InMemory {
	t.Helper()
	x := rt.New(rt.Float32, 6, 1, 5, 5)
	for i := range x.F32 {
		x.F32[i] = float32(i%25) + float32(i/25)*100
	}
	ds, err := NewInMemory("aug", x, []int{0, 1, 0, 1, 0, 1}, 0)
	if err != nil {
		t.Fatal(err)
	}
	return ds
}

func TestAugmentDeterministic(t *testing.T) {
	ds := augSet(t)
	aug := &Augment{RotateDegrees: 20, FlipHorizontal: true, CropScale: [2]float64{0.5, 1}, TranslatePixels: 1, Seed: 11}
	load := func(a *Augment, epoch int, threads int, shuffle bool) map[int][]float32 {
		ld, err := NewLoader(ds, LoaderOptions{BatchSize: 2, Augment: a, Shuffle: shuffle, Seed: 5})
		if err != nil {
			t.Fatal(err)
		}
		ld = ld.WithEpoch(epoch)
		out := map[int][]float32{}
		var mu sync.Mutex
		var wg sync.WaitGroup
		for w := range threads {
			wg.Add(1)
			go func() {
				defer wg.Done()
				var b *Batch
				for i := w; i < ld.NumBatches(); i += threads {
					var err error
					if b, err = ld.Batch(i, b); err != nil {
						t.Error(err)
						return
					}
					mu.Lock()
					for j, idx := range b.Indices {
						out[idx] = slices.Clone(b.X.F32[j*25 : (j+1)*25])
					}
					mu.Unlock()
				}
			}()
		}
		wg.Wait()
		return out
	}
	base := load(aug, 0, 1, false)
	same := func(a, b map[int][]float32) bool {
		for k := range a {
			if !slices.Equal(a[k], b[k]) {
				return false
			}
		}
		return len(a) == len(b)
	}
	if !same(base, load(aug, 0, 3, false)) {
		t.Errorf("concurrent loading changed the augmentation")
	}
	if !same(base, load(aug, 0, 2, true)) {
		t.Errorf("the visiting order changed the augmentation")
	}
	// Through a Subset (a validation split, a per-epoch permutation) the
	// draws follow the example, not its position.
	sub := &Subset{DS: ds, Indices: []int{4, 2}}
	ld, _ := NewLoader(sub, LoaderOptions{BatchSize: 2, Augment: aug})
	b, err := ld.Batch(0, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(b.X.F32[:25], base[4]) || !slices.Equal(b.X.F32[25:], base[2]) {
		t.Errorf("augmentation through a Subset differs from the data set's")
	}
	if same(base, load(aug, 1, 1, false)) {
		t.Errorf("epoch 1 gave the same augmentation as epoch 0")
	}
	other := *aug
	other.Seed = 12
	if same(base, load(&other, 0, 1, false)) {
		t.Errorf("another seed gave the same augmentation")
	}
	changed := 0
	plain := load(nil, 0, 1, false)
	for k := range plain {
		if !slices.Equal(plain[k], base[k]) {
			changed++
		}
	}
	if changed < 4 {
		t.Errorf("only %d of 6 examples changed by augmentation", changed)
	}
	// The loader's options are copied: changing the caller's Augment later
	// does not change the loader.
	a2 := *aug
	ld, _ = NewLoader(ds, LoaderOptions{BatchSize: 6, Augment: &a2})
	a2.Seed = 99
	b, _ = ld.Batch(0, nil)
	if !slices.Equal(b.X.F32[:25], base[0]) {
		t.Errorf("the loader follows later changes of its Augment")
	}
}

func TestAugmentFlipOnly(t *testing.T) {
	ds := augSet(t)
	ld, err := NewLoader(ds, LoaderOptions{BatchSize: 6, Augment: &Augment{FlipHorizontal: true, Seed: 1}})
	if err != nil {
		t.Fatal(err)
	}
	b, err := ld.Batch(0, nil)
	if err != nil {
		t.Fatal(err)
	}
	x := make([]float32, 25)
	flipped := 0
	for i := range 6 {
		ds.Example(i, x)
		got := b.X.F32[i*25 : (i+1)*25]
		if slices.Equal(got, x) {
			continue
		}
		for y := range 5 {
			for xx := range 5 {
				if got[y*5+xx] != x[y*5+4-xx] {
					t.Fatalf("example %d is neither the image nor its mirror: %v", i, got)
				}
			}
		}
		flipped++
	}
	if flipped == 0 || flipped == 6 {
		t.Errorf("%d of 6 examples flipped; want some but not all", flipped)
	}
}

func TestAugmentErrors(t *testing.T) {
	ds := tinySet(t, 3) // examples [2 1 2]
	for i, tc := range []struct {
		opts LoaderOptions
		want string
	}{
		{LoaderOptions{Shape: []int{4}, Augment: &Augment{FlipHorizontal: true}}, "augmentation needs image examples"},
		{LoaderOptions{Augment: &Augment{RotateDegrees: -1}}, "rotation of -1 degrees"},
		{LoaderOptions{Augment: &Augment{CropScale: [2]float64{0.5, 2}}}, "crop scale 0.5..2"},
		{LoaderOptions{Augment: &Augment{CropScale: [2]float64{0.5, 0}}}, "crop scale 0.5..0"},
		{LoaderOptions{Augment: &Augment{CropScale: [2]float64{0.5, 1}, CropRatio: [2]float64{2, 1}}}, "aspect ratio 2..1"},
		{LoaderOptions{Augment: &Augment{TranslatePixels: -2}}, "translation of -2 pixels"},
		{LoaderOptions{Augment: &Augment{Fill: float32(math.NaN())}}, "fill value NaN"},
	} {
		_, err := NewLoader(ds, tc.opts)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%d: error %v, want one containing %q", i, err, tc.want)
		}
	}
	// Disabled augmentation accepts any shape.
	if _, err := NewLoader(ds, LoaderOptions{Shape: []int{4}, Augment: &Augment{}}); err != nil {
		t.Errorf("disabled augmentation: %v", err)
	}
}

func TestLoaderTargets(t *testing.T) {
	x := rt.FromFloat32([]float32{1, 2, 3, 4, 5, 6}, 3, 2)
	ds, err := NewRegression("reg", x, rt.FromFloat32([]float32{10, 11, 20, 21, 30, 31}, 3, 2))
	if err != nil {
		t.Fatal(err)
	}
	sub := &Subset{DS: ds, Indices: []int{2, 0, 1}}
	ld, err := NewLoader(sub, LoaderOptions{BatchSize: 2})
	if err != nil {
		t.Fatal(err)
	}
	b, err := ld.Batch(0, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(b.Targets.Shape, []int{2, 2}) || !slices.Equal(b.Targets.F32, []float32{30, 31, 10, 11}) {
		t.Errorf("targets %v %v", b.Targets.Shape, b.Targets.F32)
	}
	if b, err = ld.Batch(1, b); err != nil || !slices.Equal(b.Targets.F32, []float32{20, 21}) {
		t.Errorf("last batch targets %v (%v)", b.Targets, err)
	}
	cls := tinySet(t, 2)
	ld, _ = NewLoader(cls, LoaderOptions{})
	if b, _ := ld.Batch(0, nil); b.Targets != nil {
		t.Errorf("classification batch has targets")
	}
	if _, ok := HasTargets(&Subset{DS: cls}); ok {
		t.Errorf("a Subset of a classification set has targets")
	}
	if err := (&Subset{DS: cls, Indices: []int{0}}).Targets(0, make([]float32, 1)); err == nil {
		t.Errorf("Targets of a classification subset: no error")
	}
	if _, err := NewRegression("r", x, rt.FromFloat32([]float32{1}, 1)); err == nil || !strings.Contains(err.Error(), "targets of shape [1] for 3 examples") {
		t.Errorf("NewRegression: %v", err)
	}
}
