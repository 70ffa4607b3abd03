package data

import (
	"bufio"
	"fmt"
	"image"
	"image/color"
	_ "image/jpeg" // JPEG decoder
	_ "image/png"  // PNG decoder
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"golang.org/x/image/draw"
)

// isImageFile reports whether a file name has a PNG or JPEG extension.
func isImageFile(name string) bool {
	if strings.HasPrefix(name, ".") {
		return false
	}
	switch strings.ToLower(filepath.Ext(name)) {
	case ".png", ".jpg", ".jpeg":
		return true
	}
	return false
}

// subdirs lists the visible sub-folders of dir, sorted.
func subdirs(dir string) ([]string, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), ".") {
			continue
		}
		isDir := e.IsDir()
		if e.Type()&fs.ModeSymlink != 0 {
			if st, err := os.Stat(filepath.Join(dir, e.Name())); err == nil {
				isDir = st.IsDir()
			}
		}
		if isDir {
			out = append(out, e.Name())
		}
	}
	sort.Strings(out)
	return out, nil
}

// hasImages reports whether dir directly holds a PNG or JPEG file.
func hasImages(dir string) bool {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return false
	}
	for _, e := range entries {
		if !e.IsDir() && isImageFile(e.Name()) {
			return true
		}
	}
	return false
}

// isImageFolder reports whether dir looks like an image data set: train/ or
// test/ sub-folders with sub-folders of their own, or a sub-folder directly
// holding images.
func isImageFolder(dir string, entries map[string]os.DirEntry) bool {
	for _, s := range []string{"train", "test"} {
		if p := findEntry(dir, entries, true, s); p != "" {
			if subs, _ := subdirs(p); len(subs) > 0 {
				return true
			}
		}
	}
	subs, _ := subdirs(dir)
	for _, s := range subs {
		if hasImages(filepath.Join(dir, s)) {
			return true
		}
	}
	return false
}

// ImageFolder is a data set of image files, one sub-folder per class.
// Images are decoded when an example is read (so a large folder costs
// little memory), converted to grayscale or RGB and resized with bilinear
// interpolation to a fixed size. Example is safe for concurrent use.
type ImageFolder struct {
	name    string
	files   []string
	labels  []int
	classes []string
	c, h, w int
}

// LoadImageFolder lists a split of an image data set: dir holds one
// sub-folder per class (any depth of folders below it; PNG and JPEG files,
// hidden files ignored), or train/ and test/ folders that each hold the
// class sub-folders. Classes are numbered by their sorted folder names,
// taken from both train/ and test/ so that both splits agree. A folder
// without train/ and test/ is the train and all split; its test split is an
// error wrapping ErrNoSplit.
//
// Examples have shape [C H W] and hold pixel values 0-255 (alpha is
// composited over black). C, H and W come from opts (Channels, Height,
// Width) or else from the first image: its size, and 1 channel if it is
// grayscale, 3 otherwise. Colour converts to gray as ITU-R BT.601 luma
// (Go's color.GrayModel). A corrupt image is reported by Example, naming the
// file.
func LoadImageFolder(dir string, split Split, opts Options) (*ImageFolder, error) {
	if err := opts.validate(); err != nil {
		return nil, err
	}
	if opts.regression() {
		return nil, fmt.Errorf("%s is an image folder, whose labels are classes (its sub-folders); it cannot be read for regression", dir)
	}
	entries, err := dirEntries(dir)
	if err != nil {
		return nil, err
	}
	var trainDir, testDir string
	for _, s := range []string{"train", "test"} {
		if p := findEntry(dir, entries, true, s); p != "" {
			if subs, _ := subdirs(p); len(subs) > 0 {
				if s == "train" {
					trainDir = p
				} else {
					testDir = p
				}
			}
		}
	}
	var root string
	var classes []string
	if trainDir == "" && testDir == "" {
		if split == SplitTest {
			return nil, fmt.Errorf("image folder %s has no test/ sub-folder: %w", dir, ErrNoSplit)
		}
		root = dir
		if classes, err = subdirs(dir); err != nil {
			return nil, err
		}
		if len(classes) == 0 {
			what := "no sub-folders"
			if hasImages(dir) {
				what = "images but no class sub-folders"
			}
			return nil, fmt.Errorf("image folder %s holds %s: put each class's images in a sub-folder named after the class (optionally below train/ and test/)", dir, what)
		}
	} else {
		if root, err = pickPart(trainDir, testDir, split, "image folder "+dir); err != nil {
			return nil, err
		}
		a, _ := subdirs(trainDir)
		b, _ := subdirs(testDir)
		classes = unionSorted(a, b)
	}
	d := &ImageFolder{name: fmt.Sprintf("image folder %s", root), classes: classes}
	for ci, cl := range classes {
		cdir := filepath.Join(root, cl)
		if _, err := os.Stat(cdir); err != nil {
			continue // a class the other split has
		}
		err := filepath.WalkDir(cdir, func(p string, e fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if e.IsDir() && p != cdir && strings.HasPrefix(e.Name(), ".") {
				return filepath.SkipDir
			}
			if !e.IsDir() && isImageFile(e.Name()) {
				d.files = append(d.files, p)
				d.labels = append(d.labels, ci)
			}
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("listing %s: %w", cdir, err)
		}
	}
	if len(d.files) == 0 {
		return nil, fmt.Errorf("image folder %s: its class sub-folders (%s) hold no PNG or JPEG files", root, clipList(classes, 8))
	}
	d.c, d.h, d.w = opts.Channels, opts.Height, opts.Width
	if d.c == 0 || d.h == 0 {
		cfg, err := decodeConfig(d.files[0])
		if err != nil {
			return nil, err
		}
		if d.h == 0 {
			d.h, d.w = cfg.Height, cfg.Width
		}
		if d.c == 0 {
			d.c = 3
			if cfg.ColorModel == color.GrayModel || cfg.ColorModel == color.Gray16Model {
				d.c = 1
			}
		}
	}
	if d.h <= 0 || d.w <= 0 || d.h > 1<<15 || d.w > 1<<15 {
		return nil, fmt.Errorf("%s: image size %dx%d is not usable; give the size to resize to", d.files[0], d.w, d.h)
	}
	return d, nil
}

func decodeConfig(path string) (image.Config, error) {
	f, err := os.Open(path)
	if err != nil {
		return image.Config{}, err
	}
	defer f.Close()
	cfg, _, err := image.DecodeConfig(bufio.NewReader(f))
	if err != nil {
		return image.Config{}, fmt.Errorf("%s: cannot read the image header: %w (is the file a valid PNG or JPEG?)", path, err)
	}
	return cfg, nil
}

// Len is the number of images.
func (d *ImageFolder) Len() int { return len(d.files) }

// Shape is [Channels Height Width].
func (d *ImageFolder) Shape() []int { return []int{d.c, d.h, d.w} }

// NumClasses is the number of class folders.
func (d *ImageFolder) NumClasses() int { return len(d.classes) }

// ClassNames returns the class folder names, in class-index order.
func (d *ImageFolder) ClassNames() []string { return append([]string{}, d.classes...) }

// Name describes the data set.
func (d *ImageFolder) Name() string { return d.name }

// File returns the path of example i's image.
func (d *ImageFolder) File(i int) string { return d.files[i] }

// Example decodes image i into x ([C H W], values 0-255) and returns its
// class.
func (d *ImageFolder) Example(i int, x []float32) (int, error) {
	if i < 0 || i >= len(d.files) {
		return 0, fmt.Errorf("%s: example %d out of range [0, %d)", d.name, i, len(d.files))
	}
	if len(x) != d.c*d.h*d.w {
		return 0, fmt.Errorf("%s: buffer of %d values for an example of shape %v", d.name, len(x), d.Shape())
	}
	path := d.files[i]
	f, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	img, _, err := image.Decode(bufio.NewReader(f))
	f.Close()
	if err != nil {
		return 0, fmt.Errorf("%s: cannot decode the image: %w (is the file corrupt?)", path, err)
	}
	imageToCHW(img, d.c, d.h, d.w, x)
	return d.labels[i], nil
}

// imageToCHW resizes img to h×w (bilinear; unchanged when it has that
// size) and writes its c channels (1: gray, 3: RGB) to x as 0-255 values.
func imageToCHW(img image.Image, c, h, w int, x []float32) {
	b := img.Bounds()
	hw := h * w
	if g, ok := img.(*image.Gray); ok && c == 1 && b.Dx() == w && b.Dy() == h {
		for y := range h {
			row := g.Pix[(y)*g.Stride : y*g.Stride+w]
			for xx, v := range row {
				x[y*w+xx] = float32(v)
			}
		}
		return
	}
	dst := image.NewRGBA(image.Rect(0, 0, w, h))
	if b.Dx() == w && b.Dy() == h {
		draw.Draw(dst, dst.Bounds(), img, b.Min, draw.Src)
	} else {
		draw.BiLinear.Scale(dst, dst.Bounds(), img, b, draw.Src, nil)
	}
	for y := range h {
		row := dst.Pix[y*dst.Stride : y*dst.Stride+4*w]
		for xx := range w {
			r, g, bl := uint32(row[4*xx]), uint32(row[4*xx+1]), uint32(row[4*xx+2])
			p := y*w + xx
			if c == 1 {
				// color.GrayModel's weights on 8-bit values.
				x[p] = float32((19595*r + 38470*g + 7471*bl + 1<<15) >> 16)
			} else {
				x[p], x[hw+p], x[2*hw+p] = float32(r), float32(g), float32(bl)
			}
		}
	}
}
