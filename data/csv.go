package data

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"sort"
	"strconv"
	"strings"

	rt "github.com/compressml/compress/runtime"
)

// maxClassIndex bounds a numeric class label (the evaluator handles up to
// 65536 classes).
const maxClassIndex = 1<<16 - 1

// LoadCSV reads a CSV file (gzipped or not, recognised by content) with
// ParseCSV. A .tsv file is tab-separated unless opts.Comma says otherwise.
// Errors name the file.
func LoadCSV(path string, opts Options) (*InMemory, error) {
	f, err := os.Open(path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("CSV file %s does not exist", path)
		}
		return nil, err
	}
	defer f.Close()
	if opts.Comma == 0 && strings.HasSuffix(strings.TrimSuffix(strings.ToLower(path), ".gz"), ".tsv") {
		opts.Comma = '\t'
	}
	return ParseCSV(f, path, opts)
}

// csvRecord is a record read ahead, with its line number.
type csvRecord struct {
	fields []string
	line   int
}

// isNumber reports whether s (trimmed) parses as a float.
func isNumber(s string) bool {
	_, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
	return err == nil
}

// parseCount parses a non-negative integer cell.
func parseCount(s string) (int, bool) {
	v, err := strconv.Atoi(strings.TrimSpace(s))
	return v, err == nil && v >= 0
}

// sniffComma guesses the separator from the first line: ',' unless the
// line has none but has a tab or a semicolon.
func sniffComma(br *bufio.Reader) rune {
	b, _ := br.Peek(4096)
	if i := bytes.IndexByte(b, '\n'); i >= 0 {
		b = b[:i]
	}
	switch {
	case bytes.IndexByte(b, ',') >= 0:
		return ','
	case bytes.IndexByte(b, '\t') >= 0:
		return '\t'
	case bytes.IndexByte(b, ';') >= 0:
		return ';'
	}
	return ','
}

// ParseCSV reads a data set from CSV text (gzip-compressed or not,
// recognised by content): one example per row, every row with the same
// number of cells. name is used in errors and the data set's name.
//
// The label column is opts.LabelColumn (the last by default); every other
// column is a feature, read as a float32 number, so that examples have
// shape [features]. For classification, labels are class indices (integers
// from 0) or, when no label cell is a number, class names: class i is then
// the i-th name in sorted order (or in opts.ClassNames). For regression
// (opts.Task) the label column holds float targets, read through the
// Targeter interface.
//
// A header row is detected (see HeaderAuto) or set by opts.Header. The
// header scikit-learn's bundled CSV files start with (number of examples,
// number of features, then the class names, e.g. "150,4,setosa,versicolor,
// virginica") is recognised: its class names become the data set's
// ClassNames and the number of rows is checked; so is the first line of its
// regression files ("506,13" before a header row). Empty lines are skipped.
//
// Errors say which line and column is wrong: rows of another length, cells
// that are not numbers, labels that are not class indices or lie outside
// opts.NumClasses.
func ParseCSV(r io.Reader, name string, opts Options) (*InMemory, error) {
	if err := opts.validate(); err != nil {
		return nil, err
	}
	br := bufio.NewReaderSize(r, 1<<16)
	var in io.Reader = br
	if magic, _ := br.Peek(2); len(magic) == 2 && magic[0] == 0x1f && magic[1] == 0x8b {
		zr, err := gzip.NewReader(br)
		if err != nil {
			return nil, fmt.Errorf("%s: bad gzip stream: %w", name, err)
		}
		defer zr.Close()
		br = bufio.NewReaderSize(zr, 1<<16)
		in = br
	}
	comma := opts.Comma
	if comma == 0 {
		comma = sniffComma(br)
	}
	cr := csv.NewReader(in)
	cr.Comma = comma
	cr.FieldsPerRecord = -1
	cr.TrimLeadingSpace = comma != '\t'
	cr.ReuseRecord = true
	if !validDelim(comma) {
		return nil, fmt.Errorf("%s: %q cannot separate CSV fields", name, comma)
	}
	read := func() (*csvRecord, error) {
		rec, err := cr.Read()
		if err == io.EOF {
			return nil, nil
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		line, _ := cr.FieldPos(0)
		return &csvRecord{fields: append([]string{}, rec...), line: line}, nil
	}
	r1, err := read()
	if err != nil {
		return nil, err
	}
	if r1 == nil {
		return nil, fmt.Errorf("%s is empty: a CSV data set needs one row per example", name)
	}
	r1.fields[0] = strings.TrimPrefix(r1.fields[0], "\ufeff") // a byte-order mark
	r2, err := read()
	if err != nil {
		return nil, err
	}

	p := &csvParser{name: name, opts: opts, regression: opts.regression(), sklearnN: -1}
	if opts.Header != HeaderAbsent && p.countLine(r1, r2) {
		// scikit-learn's regression files: a line of counts, then the
		// column names.
		r1 = r2
		if r2, err = read(); err != nil {
			return nil, err
		}
	}
	pending := []*csvRecord{r1, r2}
	if r2 == nil {
		pending = pending[:1]
	}
	// The header: scikit-learn's, a generic one, or none.
	switch {
	case opts.Header != HeaderAbsent && p.sklearnHeader(r1, r2):
		pending = pending[1:]
	case p.genericHeader(r1, r2):
		p.header = r1.fields
		pending = pending[1:]
	}
	if len(pending) == 0 {
		return nil, fmt.Errorf("%s holds a header row but no data", name)
	}
	p.width = len(pending[0].fields)
	if p.label, err = p.labelIndex(p.width); err != nil {
		return nil, err
	}
	if p.width < 2 {
		return nil, fmt.Errorf("%s: rows have %d column; a data set needs a label column and at least one feature column", name, p.width)
	}
	if p.header != nil && len(p.header) != p.width {
		return nil, fmt.Errorf("%s: the header row (line %d) has %d columns but the first data row (line %d) has %d", name, r1.line, len(p.header), pending[0].line, p.width)
	}
	for _, rec := range pending {
		if err := p.row(rec.fields, rec.line); err != nil {
			return nil, err
		}
	}
	for {
		rec, err := cr.Read()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		line, _ := cr.FieldPos(0)
		if err := p.row(rec, line); err != nil {
			return nil, err
		}
	}
	return p.dataset()
}

func validDelim(r rune) bool {
	return r != 0 && r != '"' && r != '\r' && r != '\n' && r != 0xFFFD
}

// csvParser accumulates the rows of a CSV file.
type csvParser struct {
	name       string
	opts       Options
	regression bool
	header     []string
	sklearnN   int      // examples announced by a scikit-learn header, -1 if none
	sklearn    []string // class names of a scikit-learn header
	width      int
	label      int
	rows       int
	feat       []float32
	labelCells []string  // classification: the label cell of each row
	targets    []float32 // regression
}

// sklearnHeader recognises scikit-learn's header "N,F,name0,name1,...":
// two counts, the second one less than the width of the next row, which
// ends in an integer label, and either class names (none a number) or a
// width other than the rows'.
func (p *csvParser) sklearnHeader(r1, r2 *csvRecord) bool {
	if r2 == nil || len(r1.fields) < 2 {
		return false
	}
	n, ok1 := parseCount(r1.fields[0])
	f, ok2 := parseCount(r1.fields[1])
	if !ok1 || !ok2 || n < 1 || f < 1 || len(r2.fields) != f+1 {
		return false
	}
	if _, ok := parseCount(r2.fields[f]); !ok {
		return false
	}
	names := len(r1.fields) > 2
	for _, c := range r1.fields[2:] {
		if isNumber(c) {
			names = false
		}
	}
	if !names && len(r1.fields) == len(r2.fields) {
		return false
	}
	p.sklearnN = n
	for _, c := range r1.fields[2:] {
		p.sklearn = append(p.sklearn, strings.TrimSpace(c))
	}
	return true
}

// countLine recognises the first line of scikit-learn's regression files,
// "N,F" followed by empty cells only, when the next line has F+1 cells of
// which one is not a number (the column names).
func (p *csvParser) countLine(r1, r2 *csvRecord) bool {
	if r2 == nil || len(r1.fields) < 2 {
		return false
	}
	n, ok1 := parseCount(r1.fields[0])
	f, ok2 := parseCount(r1.fields[1])
	if !ok1 || !ok2 || n < 1 || len(r2.fields) != f+1 {
		return false
	}
	for _, c := range r1.fields[2:] {
		if strings.TrimSpace(c) != "" {
			return false
		}
	}
	for _, c := range r2.fields {
		if !isNumber(c) {
			p.sklearnN = n
			return true
		}
	}
	return false
}

// genericHeader decides whether r1 is a header row.
func (p *csvParser) genericHeader(r1, r2 *csvRecord) bool {
	switch p.opts.Header {
	case HeaderPresent:
		return true
	case HeaderAbsent:
		return false
	}
	width := len(r1.fields)
	label, err := p.labelIndex(width)
	if err != nil {
		// A label column named in the header: the first row is the header
		// when it holds that name.
		// Otherwise it is one when any cell is not a number.
		want := strings.TrimSpace(p.opts.LabelColumn)
		for _, c := range r1.fields {
			if strings.EqualFold(strings.TrimSpace(c), want) || !isNumber(c) {
				return true
			}
		}
		return false
	}
	for j, c := range r1.fields {
		if j != label && !isNumber(c) {
			return true
		}
	}
	return !isNumber(r1.fields[label]) && r2 != nil && label < len(r2.fields) && isNumber(r2.fields[label])
}

// labelIndex resolves opts.LabelColumn for rows of the given width.
func (p *csvParser) labelIndex(width int) (int, error) {
	lc := strings.TrimSpace(p.opts.LabelColumn)
	if lc == "" {
		return width - 1, nil
	}
	if v, err := strconv.Atoi(lc); err == nil {
		i := v
		if v < 0 {
			i = width + v
		}
		if i < 0 || i >= width {
			return 0, fmt.Errorf("%s: label column %d is outside the %d columns of its rows (0..%d, or -1..-%d from the end)", p.name, v, width, width-1, width)
		}
		return i, nil
	}
	if p.header == nil {
		return 0, fmt.Errorf("%s has no header row, so the label column cannot be found by the name %q; give its index (0-based, -1 for the last)", p.name, lc)
	}
	for i, h := range p.header {
		if strings.EqualFold(strings.TrimSpace(h), lc) {
			return i, nil
		}
	}
	return 0, fmt.Errorf("%s has no column named %q (its columns: %s)", p.name, lc, clipList(p.header, 12))
}

// clipList joins at most n strings.
func clipList(s []string, n int) string {
	if len(s) > n {
		return strings.Join(s[:n], ", ") + ", ..."
	}
	return strings.Join(s, ", ")
}

// cellError describes a bad cell.
func (p *csvParser) cellError(line, col int, what string) error {
	colName := fmt.Sprintf("column %d", col)
	if p.header != nil && col < len(p.header) {
		colName = fmt.Sprintf("column %d (%s)", col, strings.TrimSpace(p.header[col]))
	}
	return fmt.Errorf("%s: line %d, %s: %s", p.name, line, colName, what)
}

// row adds one data row.
func (p *csvParser) row(rec []string, line int) error {
	if len(rec) != p.width {
		return fmt.Errorf("%s: line %d has %d fields but the rows before it have %d; every row needs the same columns", p.name, line, len(rec), p.width)
	}
	for j, c := range rec {
		if j == p.label {
			continue
		}
		s := strings.TrimSpace(c)
		if s == "" {
			return p.cellError(line, j, "the cell is empty; fill in missing values before training")
		}
		v, err := strconv.ParseFloat(s, 32)
		if err != nil && !errors.Is(err, strconv.ErrRange) {
			return p.cellError(line, j, fmt.Sprintf("%q is not a number", clip(s)))
		}
		p.feat = append(p.feat, float32(v))
	}
	s := strings.TrimSpace(rec[p.label])
	if p.regression {
		v, err := strconv.ParseFloat(s, 32)
		if err != nil && !errors.Is(err, strconv.ErrRange) {
			return p.cellError(line, p.label, fmt.Sprintf("target %q is not a number", clip(s)))
		}
		p.targets = append(p.targets, float32(v))
	} else {
		if s == "" {
			return p.cellError(line, p.label, "the label is empty")
		}
		p.labelCells = append(p.labelCells, strings.Clone(s))
	}
	p.rows++
	return nil
}

// clip shortens a cell for an error message.
func clip(s string) string {
	if len(s) > 40 {
		return s[:40] + "..."
	}
	return s
}

// dataset builds the data set from the rows read.
func (p *csvParser) dataset() (*InMemory, error) {
	if p.sklearnN >= 0 && p.sklearnN != p.rows {
		return nil, fmt.Errorf("%s: its header announces %d examples but it holds %d rows; the file is truncated or corrupt", p.name, p.sklearnN, p.rows)
	}
	x := &rt.Tensor{DType: rt.Float32, Shape: []int{p.rows, p.width - 1}, F32: p.feat}
	desc := "CSV file " + p.name
	if p.regression {
		return NewRegression(desc, x, rt.FromFloat32(p.targets, p.rows))
	}
	labels := make([]int, p.rows)
	numeric := 0
	for _, c := range p.labelCells {
		if isNumber(c) {
			numeric++
		}
	}
	names := p.opts.ClassNames
	nameLabels := false
	switch {
	case numeric == p.rows:
		for i, c := range p.labelCells {
			v, _ := strconv.ParseFloat(c, 64)
			if v != math.Trunc(v) || v < 0 || v > maxClassIndex {
				return nil, fmt.Errorf("%s: label %q of example %d is not a class index (an integer in 0..%d)", p.name, clip(c), i, maxClassIndex)
			}
			labels[i] = int(v)
		}
		if names == nil {
			names = p.sklearn
		}
	case numeric == 0:
		nameLabels = true
		if names == nil {
			seen := map[string]bool{}
			for _, c := range p.labelCells {
				if !seen[c] {
					seen[c] = true
					names = append(names, c)
				}
			}
			sort.Strings(names)
		}
		index := make(map[string]int, len(names))
		for i, n := range names {
			index[n] = i
		}
		for i, c := range p.labelCells {
			l, ok := index[c]
			if !ok {
				return nil, fmt.Errorf("%s: label %q of example %d is not one of the %d classes (%s)", p.name, clip(c), i, len(names), clipList(names, 12))
			}
			labels[i] = l
		}
	default:
		first := -1
		for i, c := range p.labelCells {
			if !isNumber(c) {
				first = i
				break
			}
		}
		return nil, fmt.Errorf("%s: the label column (%d) mixes numbers and names (example %d has %q); labels must be all class indices or all class names",
			p.name, p.label, first, clip(p.labelCells[first]))
	}
	classes := p.opts.NumClasses
	if classes == 0 && names != nil {
		classes = len(names)
	}
	if classes > 0 {
		for i, l := range labels {
			if l >= classes {
				return nil, fmt.Errorf("%s: label %d of example %d is outside the %d classes (0..%d)", p.name, l, i, classes, classes-1)
			}
		}
	}
	ds, err := NewInMemory(desc, x, labels, classes)
	if err != nil {
		return nil, err
	}
	ds.names, ds.nameLabels = names, nameLabels
	return ds, nil
}
