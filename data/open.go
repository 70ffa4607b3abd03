package data

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"unicode/utf8"
)

// SplitAll names every example of a data set that is not stored as
// separate train and test parts (a single CSV or .npz file, a flat image
// folder). See Open.
const SplitAll Split = "all"

// ErrNoSplit is wrapped by the errors of Open when a data set exists but
// has no part for the requested split (e.g. the test split of a single CSV
// file with no test file next to it). Callers may then fall back to
// SplitAll, as `compress eval` does when --split is not given.
var ErrNoSplit = errors.New("the data set has no such split")

// Task says what a data set's labels are.
type Task string

// The tasks.
const (
	// TaskClassification: integer class labels (or class names).
	TaskClassification Task = "classification"
	// TaskRegression: float targets, read through the Targeter interface.
	TaskRegression Task = "regression"
)

// ParseTask accepts "classification" or "regression" ("" means
// classification).
func ParseTask(s string) (Task, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "", "classification", "classify", "class":
		return TaskClassification, nil
	case "regression", "regress":
		return TaskRegression, nil
	}
	return "", fmt.Errorf("unknown task %q: use classification or regression", s)
}

// HeaderMode says whether a CSV file starts with a header row.
type HeaderMode int

// The header modes.
const (
	// HeaderAuto detects a header: the first row is one when a cell outside
	// the label column is not a number (or its label cell is a name while the
	// second row's is a number).
	HeaderAuto HeaderMode = iota
	// HeaderPresent: the first row is a header.
	HeaderPresent
	// HeaderAbsent: every row is data.
	HeaderAbsent
)

// Options configure OpenWith. The zero value is what Open uses.
type Options struct {
	// Task is classification (the default when empty) or regression.
	// Regression reads float targets: the label column of a CSV file, the
	// y array of NumPy data (shape [N] or [N K]).
	Task Task
	// LabelColumn picks a CSV file's label (or target) column: "" is the
	// last column; an integer is a 0-based index (negative counts from the
	// end, -1 being the last); anything else is a column name from the
	// header row.
	LabelColumn string
	// Header says whether a CSV file has a header row (detected by default).
	Header HeaderMode
	// Comma is a CSV file's field separator; 0 detects ',' (or a tab or ';'
	// when the first line holds no comma but one of those).
	Comma rune
	// NumClasses, when positive, is the number of classes: a label outside
	// 0..NumClasses-1 is an error. Otherwise it is max(label)+1, or the
	// number of class names.
	NumClasses int
	// ClassNames, when set, fixes the classes of labels given as names (a
	// CSV label column of strings): class i is ClassNames[i]. Open sets it
	// from both splits so that train and test agree.
	ClassNames []string
	// Channels (1: grayscale, 3: RGB), Height and Width are the size image
	// files are converted and resized to (bilinear); 0 takes them from the
	// first image of the split (grayscale images give 1 channel, others 3).
	// Image examples have shape [Channels Height Width].
	Channels, Height, Width int
}

// WithInputShape returns o with the image size set from a model's
// per-example input shape [C H W] (C = 1 or 3, NCHW layout), for the fields
// that are still 0. Other shapes leave o unchanged.
func (o Options) WithInputShape(shape []int) Options {
	if len(shape) != 3 || (shape[0] != 1 && shape[0] != 3) || shape[1] <= 0 || shape[2] <= 0 {
		return o
	}
	if o.Channels == 0 {
		o.Channels = shape[0]
	}
	if o.Height == 0 && o.Width == 0 {
		o.Height, o.Width = shape[1], shape[2]
	}
	return o
}

func (o Options) validate() error {
	if _, err := ParseTask(string(o.Task)); err != nil {
		return err
	}
	if o.Header < HeaderAuto || o.Header > HeaderAbsent {
		return fmt.Errorf("unknown CSV header mode %d", o.Header)
	}
	if o.NumClasses < 0 {
		return fmt.Errorf("number of classes %d: must not be negative", o.NumClasses)
	}
	if o.Channels != 0 && o.Channels != 1 && o.Channels != 3 {
		return fmt.Errorf("images can have 1 (grayscale) or 3 (RGB) channels, not %d", o.Channels)
	}
	if o.Height < 0 || o.Width < 0 || (o.Height == 0) != (o.Width == 0) {
		return fmt.Errorf("image size %dx%d: give both height and width (positive), or neither", o.Height, o.Width)
	}
	return nil
}

func (o Options) regression() bool {
	t, _ := ParseTask(string(o.Task))
	return t == TaskRegression
}

// Open opens the split of the data set at path with default options (see
// OpenWith).
func Open(path string, split Split) (Dataset, error) {
	return OpenWith(path, split, Options{})
}

// OpenWith opens the split (train, test or all) of the data set at path,
// recognising its format:
//
//   - a folder of MNIST-format idx files (see LoadMNIST);
//   - a CSV file (.csv, .tsv or .txt, optionally gzipped: see ParseCSV), or a
//     folder holding train.csv and/or test.csv;
//   - NumPy arrays: an .npz archive, or a folder of .npy files, holding
//     x_train, y_train, x_test, y_test (or x, y for an unsplit set);
//   - an image folder: one sub-folder of PNG/JPEG images per class,
//     optionally below train/ and test/ folders (see LoadImageFolder).
//
// Splits: a data set stored in train and test parts (idx files, train.csv
// and test.csv, x_train and x_test, train/ and test/ folders) gives the part
// asked for. A single file, or an image folder without train/ and test/, is
// the train split and the "all" split; its test split is a companion file
// when one lies next to it (for a file whose name holds "train", the same
// name with "test"; otherwise NAME_test.csv, NAME-test.csv or
// NAME.test.csv), and otherwise an error wrapping ErrNoSplit. A file whose
// name holds "test" is also its own test split. "all" on a data set stored
// in two parts gives the only part present, or an error when both are.
func OpenWith(path string, split Split, opts Options) (Dataset, error) {
	if split != SplitTrain && split != SplitTest && split != SplitAll {
		return nil, fmt.Errorf("unknown split %q: use train, test or all", split)
	}
	if err := opts.validate(); err != nil {
		return nil, err
	}
	st, err := os.Stat(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("data set %s does not exist", path)
		}
		return nil, err
	}
	if st.IsDir() {
		return openDir(path, split, opts)
	}
	return openFile(path, split, opts)
}

// fileKind classifies a data file by its name (ignoring a .gz suffix).
func fileKind(path string) string {
	base := strings.ToLower(filepath.Base(path))
	base = strings.TrimSuffix(base, ".gz")
	switch {
	case strings.HasSuffix(base, ".csv"), strings.HasSuffix(base, ".tsv"), strings.HasSuffix(base, ".txt"):
		return "csv"
	case strings.HasSuffix(base, ".npz"):
		return "npz"
	case strings.HasSuffix(base, ".npy"):
		return "npy"
	case strings.Contains(base, "idx") && strings.Contains(base, "ubyte"):
		return "idx"
	case strings.HasSuffix(base, ".png"), strings.HasSuffix(base, ".jpg"), strings.HasSuffix(base, ".jpeg"):
		return "image"
	}
	return ""
}

func openFile(path string, split Split, opts Options) (Dataset, error) {
	kind := fileKind(path)
	if kind == "" {
		kind = sniffKind(path)
	}
	switch kind {
	case "csv":
		return openCSVFile(path, split, opts)
	case "npz":
		return LoadNPZ(path, split, opts)
	case "npy":
		return nil, fmt.Errorf("%s is a single NumPy array, without labels: give the folder holding x_train.npy, y_train.npy, x_test.npy and y_test.npy (or x.npy and y.npy), or an .npz archive with those arrays", path)
	case "idx":
		return nil, fmt.Errorf("%s is one MNIST-format idx file: give the folder holding the images and labels files (train-images-idx3-ubyte, train-labels-idx1-ubyte, ...)", path)
	case "image":
		return nil, fmt.Errorf("%s is a single image: give the image folder (one sub-folder of images per class)", path)
	}
	return nil, fmt.Errorf("%s: unknown data file type; compress reads CSV files (.csv, .tsv, .txt, optionally .gz), NumPy .npz archives, and folders of MNIST-format idx files, .npy arrays or images", path)
}

// sniffKind recognises a file by its first bytes: a zip archive is an .npz,
// gzip-compressed or plain text (no NUL byte, valid UTF-8) a CSV file.
func sniffKind(path string) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	var b [512]byte
	n, _ := io.ReadFull(f, b[:])
	head := b[:n]
	switch {
	case n >= 4 && string(head[:4]) == "PK\x03\x04":
		return "npz"
	case n >= 2 && head[0] == 0x1f && head[1] == 0x8b:
		return "csv"
	case n > 0 && bytes.IndexByte(head, 0) < 0 && utf8.Valid(trimPartialRune(head)):
		return "csv"
	}
	return ""
}

// trimPartialRune drops an incomplete UTF-8 sequence cut at the end of b.
func trimPartialRune(b []byte) []byte {
	for i := 1; i <= utf8.UTFMax && i <= len(b); i++ {
		if utf8.RuneStart(b[len(b)-i]) {
			if !utf8.FullRune(b[len(b)-i:]) {
				return b[:len(b)-i]
			}
			break
		}
	}
	return b
}

// csvStem splits a CSV file name into stem and extension (".csv.gz").
func csvStem(base string) (stem, ext string) {
	lower := strings.ToLower(base)
	for _, e := range []string{".csv.gz", ".tsv.gz", ".txt.gz", ".csv", ".tsv", ".txt"} {
		if strings.HasSuffix(lower, e) {
			return base[:len(base)-len(e)], base[len(base)-len(e):]
		}
	}
	ext = filepath.Ext(base)
	return strings.TrimSuffix(base, ext), ext
}

// replaceLast replaces the last case-insensitive occurrence of old in s.
func replaceLast(s, old, repl string) (string, bool) {
	i := strings.LastIndex(strings.ToLower(s), old)
	if i < 0 {
		return s, false
	}
	return s[:i] + repl + s[i+len(old):], true
}

func isFile(p string) bool {
	st, err := os.Stat(p)
	return err == nil && st.Mode().IsRegular()
}

// csvParts finds the train and test files of a data set given as one CSV
// file (see OpenWith): each is "" when absent. tried lists the test file
// names looked for.
func csvParts(path string) (train, test string, tried []string) {
	dir, base := filepath.Split(path)
	stem, ext := csvStem(base)
	if s, ok := replaceLast(stem, "test", "train"); ok {
		if p := filepath.Join(dir, s+ext); isFile(p) {
			train = p
		}
		return train, path, nil
	}
	train = path
	if s, ok := replaceLast(stem, "train", "test"); ok {
		p := filepath.Join(dir, s+ext)
		tried = append(tried, s+ext)
		if isFile(p) {
			return train, p, tried
		}
	}
	for _, sep := range []string{"_", "-", "."} {
		name := stem + sep + "test" + ext
		tried = append(tried, name)
		if p := filepath.Join(dir, name); isFile(p) {
			return train, p, tried
		}
	}
	return train, "", tried
}

func openCSVFile(path string, split Split, opts Options) (Dataset, error) {
	train, test, tried := csvParts(path)
	var file, other string
	switch split {
	case SplitTest:
		if test == "" {
			return nil, fmt.Errorf("%s is a single file with no test file next to it (looked for %s): %w; split \"all\" (--split all) uses the whole file",
				path, strings.Join(tried, ", "), ErrNoSplit)
		}
		file, other = test, train
	case SplitTrain:
		if train == "" { // a test file given alone
			train = path
		}
		file, other = train, test
	default:
		file = path
	}
	return loadCSVPair(file, other, opts)
}

// loadCSVPair loads file, taking the class names of labels given as names
// from both file and other (the other split's file, "" if none) so that
// both splits number the classes alike.
func loadCSVPair(file, other string, opts Options) (Dataset, error) {
	ds, err := LoadCSV(file, opts)
	if err != nil || other == "" || other == file || opts.ClassNames != nil || opts.regression() {
		return ds, err
	}
	names := ds.ClassNames()
	if names == nil || !ds.nameLabels {
		return ds, nil
	}
	o, err := LoadCSV(other, opts)
	if err != nil {
		return nil, fmt.Errorf("reading the class names of the other split: %w", err)
	}
	union := unionSorted(names, o.ClassNames())
	if len(union) == len(names) {
		return ds, nil
	}
	opts.ClassNames = union
	return LoadCSV(file, opts)
}

func unionSorted(a, b []string) []string {
	seen := map[string]bool{}
	var out []string
	for _, s := range append(append([]string{}, a...), b...) {
		if !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	sort.Strings(out)
	return out
}

// dirEntries maps the lower-case names of dir's entries to their names.
func dirEntries(dir string) (map[string]os.DirEntry, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	m := make(map[string]os.DirEntry, len(entries))
	for _, e := range entries {
		m[strings.ToLower(e.Name())] = e
	}
	return m, nil
}

// findEntry returns the path of the first of names (lower case) present in
// entries as a regular file (or a directory when dir is set), or "".
func findEntry(root string, entries map[string]os.DirEntry, dir bool, names ...string) string {
	for _, n := range names {
		e, ok := entries[n]
		if !ok {
			continue
		}
		isDir := e.IsDir()
		if e.Type()&fs.ModeSymlink != 0 {
			st, err := os.Stat(filepath.Join(root, e.Name()))
			if err != nil {
				continue
			}
			isDir = st.IsDir()
		}
		if isDir == dir {
			return filepath.Join(root, e.Name())
		}
	}
	return ""
}

// pickPart chooses between the train and test parts of a data set stored in
// two parts ("" = absent). what describes the data set for errors.
func pickPart(train, test string, split Split, what string) (string, error) {
	switch split {
	case SplitTrain:
		if train == "" {
			return "", fmt.Errorf("%s has no train part: %w", what, ErrNoSplit)
		}
		return train, nil
	case SplitTest:
		if test == "" {
			return "", fmt.Errorf("%s has no test part: %w", what, ErrNoSplit)
		}
		return test, nil
	}
	switch {
	case train != "" && test != "":
		return "", fmt.Errorf("%s has train and test parts; choose one (split train or test) rather than all", what)
	case train != "":
		return train, nil
	}
	return test, nil
}

func openDir(dir string, split Split, opts Options) (Dataset, error) {
	entries, err := dirEntries(dir)
	if err != nil {
		return nil, err
	}
	// MNIST-format idx files.
	for name := range entries {
		if strings.Contains(name, "-images") && strings.Contains(name, "idx3-ubyte") {
			if opts.regression() {
				return nil, fmt.Errorf("%s holds MNIST-format idx files, whose labels are classes; it cannot be read for regression", dir)
			}
			if split == SplitAll {
				tr, te := "", ""
				if _, err := findMNISTFile(dir, "train", "images", 3); err == nil {
					tr = "train"
				}
				if _, err := findMNISTFile(dir, "t10k", "images", 3); err == nil {
					te = "test"
				}
				s, err := pickPart(tr, te, split, "MNIST-format data set "+dir)
				if err != nil {
					return nil, err
				}
				split = Split(s)
			}
			return LoadMNIST(dir, split)
		}
	}
	// NumPy arrays.
	if findEntry(dir, entries, false, "x_train.npy", "x_test.npy", "x.npy") != "" {
		return LoadNPYDir(dir, split, opts)
	}
	// CSV files.
	csvNames := func(s string) []string {
		return []string{s + ".csv", s + ".csv.gz", s + ".tsv", s + ".tsv.gz"}
	}
	trainCSV, testCSV := findEntry(dir, entries, false, csvNames("train")...), findEntry(dir, entries, false, csvNames("test")...)
	if trainCSV != "" || testCSV != "" {
		file, err := pickPart(trainCSV, testCSV, split, "CSV data set "+dir)
		if err != nil {
			return nil, err
		}
		other := testCSV
		if file == testCSV {
			other = trainCSV
		}
		return loadCSVPair(file, other, opts)
	}
	// Image folders.
	if isImageFolder(dir, entries) {
		return LoadImageFolder(dir, split, opts)
	}
	if split == SplitAll {
		split = SplitTest
	}
	_, err = LoadMNIST(dir, split)
	if err == nil {
		err = fmt.Errorf("%s: unrecognised data folder", dir)
	}
	return nil, fmt.Errorf("%w; compress also reads folders holding train.csv/test.csv, NumPy arrays x_train.npy/y_train.npy/x_test.npy/y_test.npy, or images (one sub-folder of PNG/JPEG files per class, optionally below train/ and test/)", err)
}
