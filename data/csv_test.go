package data

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// examples reads every example of ds: features and labels.
func examples(t *testing.T, ds Dataset) ([][]float32, []int) {
	t.Helper()
	var xs [][]float32
	var ls []int
	size := 1
	for _, d := range ds.Shape() {
		size *= d
	}
	for i := range ds.Len() {
		x := make([]float32, size)
		l, err := ds.Example(i, x)
		if err != nil {
			t.Fatalf("example %d: %v", i, err)
		}
		xs = append(xs, x)
		ls = append(ls, l)
	}
	return xs, ls
}

func TestParseCSV(t *testing.T) {
	for _, tc := range []struct {
		name    string
		text    string
		opts    Options
		x       [][]float32
		labels  []int
		classes int
		names   []string
		targets []float32 // regression
	}{
		{name: "plain", text: "1,2,0\n3,4,1\n5,6,1\n",
			x: [][]float32{{1, 2}, {3, 4}, {5, 6}}, labels: []int{0, 1, 1}, classes: 2},
		{name: "header", text: "a,b,label\n1,2,0\n3,4,2\n",
			x: [][]float32{{1, 2}, {3, 4}}, labels: []int{0, 2}, classes: 3},
		{name: "BOM, CRLF, spaces, blank lines", text: "\ufeffa, b ,y\r\n 1.5 , -2e1 ,1\r\n\r\n3,4,0\r\n",
			x: [][]float32{{1.5, -20}, {3, 4}}, labels: []int{1, 0}, classes: 2},
		{name: "first column label", text: "7,1,2\n3,3,4\n", opts: Options{LabelColumn: "0"},
			x: [][]float32{{1, 2}, {3, 4}}, labels: []int{7, 3}, classes: 8},
		{name: "negative index", text: "1,0,2\n3,1,4\n", opts: Options{LabelColumn: "-2"},
			x: [][]float32{{1, 2}, {3, 4}}, labels: []int{0, 1}, classes: 2},
		{name: "column by name", text: "f1,class,f2\n1,1,2\n3,0,4\n", opts: Options{LabelColumn: "CLASS"},
			x: [][]float32{{1, 2}, {3, 4}}, labels: []int{1, 0}, classes: 2},
		{name: "class names", text: "5.1,3.5,setosa\n6.2,2.9,virginica\n5.9,3,versicolor\n4.9,3,setosa\n",
			x: [][]float32{{5.1, 3.5}, {6.2, 2.9}, {5.9, 3}, {4.9, 3}}, labels: []int{0, 2, 1, 0}, classes: 3,
			names: []string{"setosa", "versicolor", "virginica"}},
		{name: "class names with header", text: "x,y,species\n1,2,dog\n3,4,cat\n",
			x: [][]float32{{1, 2}, {3, 4}}, labels: []int{1, 0}, classes: 2, names: []string{"cat", "dog"}},
		{name: "fixed class names", text: "1,b\n2,a\n", opts: Options{ClassNames: []string{"z", "b", "a"}},
			x: [][]float32{{1}, {2}}, labels: []int{1, 2}, classes: 3, names: []string{"z", "b", "a"}},
		{name: "scikit-learn header", text: "3,2,setosa,versicolor,virginica\n1,2,0\n3,4,2\n5,6,1\n",
			x: [][]float32{{1, 2}, {3, 4}, {5, 6}}, labels: []int{0, 2, 1}, classes: 3,
			names: []string{"setosa", "versicolor", "virginica"}},
		{name: "scikit-learn header, wider rows", text: "2,3,a,b\n1,2,3,0\n4,5,6,1\n",
			x: [][]float32{{1, 2, 3}, {4, 5, 6}}, labels: []int{0, 1}, classes: 2, names: []string{"a", "b"}},
		{name: "numeric header forced", text: "1,2,3\n4,5,1\n", opts: Options{Header: HeaderPresent},
			x: [][]float32{{4, 5}}, labels: []int{1}, classes: 2},
		{name: "header absent forced", text: "2,3,1\n4,5,0\n", opts: Options{Header: HeaderAbsent},
			x: [][]float32{{2, 3}, {4, 5}}, labels: []int{1, 0}, classes: 2},
		{name: "tabs", text: "1\t2\t1\n3\t4\t0\n",
			x: [][]float32{{1, 2}, {3, 4}}, labels: []int{1, 0}, classes: 2},
		{name: "semicolons", text: "a;b;c\n1;2;1\n",
			x: [][]float32{{1, 2}}, labels: []int{1}, classes: 2},
		{name: "integral float labels", text: "1,1.0\n2,0.0\n",
			x: [][]float32{{1}, {2}}, labels: []int{1, 0}, classes: 2},
		{name: "num classes", text: "1,1\n", opts: Options{NumClasses: 10},
			x: [][]float32{{1}}, labels: []int{1}, classes: 10},
		{name: "regression", text: "x1,x2,price\n1,2,3.5\n4,5,-1.25\n", opts: Options{Task: TaskRegression},
			x: [][]float32{{1, 2}, {4, 5}}, labels: []int{0, 0}, classes: 0, targets: []float32{3.5, -1.25}},
		{name: "regression, first column", text: "10.5,1,2\n", opts: Options{Task: TaskRegression, LabelColumn: "0"},
			x: [][]float32{{1, 2}}, labels: []int{0}, classes: 0, targets: []float32{10.5}},
		{name: "scikit-learn regression header", text: "2,2,,\n\"A\",\"B\",\"MEDV\"\n1,2,3.5\n4,5,6\n", opts: Options{Task: TaskRegression},
			x: [][]float32{{1, 2}, {4, 5}}, labels: []int{0, 0}, classes: 0, targets: []float32{3.5, 6}},
		{name: "quoted", text: "\"a\",\"b\"\n\"1\",\"1\"\n",
			x: [][]float32{{1}}, labels: []int{1}, classes: 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, gzipped := range []bool{false, true} {
				in := []byte(tc.text)
				if gzipped {
					in = gz(t, in)
				}
				ds, err := ParseCSV(strings.NewReader(string(in)), "t.csv", tc.opts)
				if err != nil {
					t.Fatalf("gzip %v: %v", gzipped, err)
				}
				x, l := examples(t, ds)
				if len(x) != len(tc.x) {
					t.Fatalf("gzip %v: %d examples, want %d", gzipped, len(x), len(tc.x))
				}
				for i := range x {
					if !slices.Equal(x[i], tc.x[i]) {
						t.Errorf("example %d = %v, want %v", i, x[i], tc.x[i])
					}
				}
				if !slices.Equal(l, tc.labels) || ds.NumClasses() != tc.classes {
					t.Errorf("labels %v (%d classes), want %v (%d)", l, ds.NumClasses(), tc.labels, tc.classes)
				}
				if !slices.Equal(ds.ClassNames(), tc.names) {
					t.Errorf("class names %q, want %q", ds.ClassNames(), tc.names)
				}
				k, ok := HasTargets(ds)
				if ok != (tc.targets != nil) {
					t.Fatalf("has targets %v (%d)", ok, k)
				}
				for i, want := range tc.targets {
					y := make([]float32, 1)
					if err := ds.Targets(i, y); err != nil || y[0] != want {
						t.Errorf("target %d = %v (%v), want %v", i, y, err, want)
					}
				}
			}
		})
	}
}

func TestParseCSVErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		text string
		opts Options
		want string
	}{
		{"empty", "", Options{}, "t.csv is empty"},
		{"only blank lines", "\n\n", Options{}, "t.csv is empty"},
		{"header only", "a,b,c\n", Options{}, "holds a header row but no data"},
		{"ragged short", "1,2,0\n3,4\n", Options{}, "t.csv: line 2 has 2 fields but the rows before it have 3"},
		{"ragged long", "1,2,0\n3,4,5,6\n", Options{}, "line 2 has 4 fields"},
		{"ragged header", "a,b\n1,2,3\n", Options{}, "the header row (line 1) has 2 columns but the first data row (line 2) has 3"},
		{"non-numeric cell", "1,2,0\n3,x7,1\n", Options{}, `t.csv: line 2, column 1: "x7" is not a number`},
		{"non-numeric named", "a,b,y\n1,2,0\n3,oops,1\n", Options{}, `line 3, column 1 (b): "oops" is not a number`},
		{"empty cell", "1,2,0\n1,,0\n", Options{}, "line 2, column 1: the cell is empty"},
		{"empty label", "1,2,\n", Options{Header: HeaderAbsent}, "the label is empty"},
		{"negative label", "1,2\n3,-1\n", Options{}, `label "-1" of example 1 is not a class index`},
		{"fractional label", "1,2\n3,0.5\n", Options{}, `label "0.5" of example 1 is not a class index`},
		{"huge label", "1,1e9\n", Options{}, "is not a class index (an integer in 0..65535)"},
		{"label out of range", "1,2\n3,7\n", Options{NumClasses: 5}, "label 7 of example 1 is outside the 5 classes (0..4)"},
		{"label out of sklearn names", "2,1,a,b\n1,0\n2,2\n", Options{}, "label 2 of example 1 is outside the 2 classes"},
		{"sklearn count", "3,1,a,b\n1,0\n2,1\n", Options{}, "its header announces 3 examples but it holds 2 rows"},
		{"mixed labels", "1,cat\n2,1\n3,dog\n", Options{Header: HeaderAbsent}, "the label column (1) mixes numbers and names (example 0 has \"cat\")"},
		{"unknown class name", "1,b\n2,q\n", Options{ClassNames: []string{"a", "b"}}, `label "q" of example 1 is not one of the 2 classes (a, b)`},
		{"label column out of range", "1,2\n", Options{LabelColumn: "5"}, "label column 5 is outside the 2 columns"},
		{"label column name without header", "1,2\n", Options{LabelColumn: "y"}, `has no header row, so the label column cannot be found by the name "y"`},
		{"unknown column name", "a,b\n1,2\n", Options{LabelColumn: "y"}, `has no column named "y" (its columns: a, b)`},
		{"one column", "1\n2\n", Options{}, "rows have 1 column"},
		{"regression non-numeric", "1,abc\n", Options{Task: TaskRegression, Header: HeaderAbsent}, `target "abc" is not a number`},
		{"bad quote", "1,\"2\n", Options{}, "t.csv: parse error on line 1"},
		{"bad task", "1,2\n", Options{Task: "clustering"}, `unknown task "clustering"`},
		{"bad gzip", "\x1f\x8bxx", Options{}, "bad gzip stream"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseCSV(strings.NewReader(tc.text), "t.csv", tc.opts)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want one containing %q", err, tc.want)
			}
		})
	}
}

func TestLoadCSVTSVFile(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "d.tsv")
	must(t, os.WriteFile(p, []byte("0\t1\na,b\t1\n"), 0o644)) // a comma inside a tab-separated cell
	if _, err := LoadCSV(p, Options{}); err == nil || !strings.Contains(err.Error(), `"a,b" is not a number`) {
		t.Errorf("tsv: %v", err)
	}
	if _, err := LoadCSV(filepath.Join(dir, "none.csv"), Options{}); err == nil || !strings.Contains(err.Error(), "does not exist") {
		t.Errorf("missing: %v", err)
	}
}

// TestSklearnBundled reads scikit-learn's bundled CSV files when
// python3-sklearn is installed.
func TestSklearnBundled(t *testing.T) {
	dir := "/usr/lib/python3/dist-packages/sklearn/datasets/data"
	for _, tc := range []struct {
		file     string
		n, f, k  int
		names    int
		firstCls int
	}{
		{"digits.csv.gz", 1797, 64, 10, 0, 0},
		{"iris.csv", 150, 4, 3, 3, 0},
		{"wine_data.csv", 178, 13, 3, 3, 0},
		{"breast_cancer.csv", 569, 30, 2, 2, 0},
	} {
		p := filepath.Join(dir, tc.file)
		if _, err := os.Stat(p); err != nil {
			t.Logf("skipping %s: %v", tc.file, err)
			continue
		}
		ds, err := OpenWith(p, SplitAll, Options{})
		if err != nil {
			t.Errorf("%s: %v", tc.file, err)
			continue
		}
		names := 0
		if cn, ok := ds.(ClassNamer); ok {
			names = len(cn.ClassNames())
		}
		if ds.Len() != tc.n || !slices.Equal(ds.Shape(), []int{tc.f}) || ds.NumClasses() != tc.k || names != tc.names {
			t.Errorf("%s: %d examples of shape %v, %d classes, %d names", tc.file, ds.Len(), ds.Shape(), ds.NumClasses(), names)
		}
		if _, err := OpenWith(p, SplitTest, Options{}); !errors.Is(err, ErrNoSplit) {
			t.Errorf("%s: test split: %v, want ErrNoSplit", tc.file, err)
		}
	}
	p := filepath.Join(dir, "boston_house_prices.csv")
	if _, err := os.Stat(p); err != nil {
		return
	}
	ds, err := OpenWith(p, SplitAll, Options{Task: TaskRegression, LabelColumn: "medv"})
	if err != nil {
		t.Fatal(err)
	}
	y := make([]float32, 1)
	if err := ds.(Targeter).Targets(0, y); err != nil || ds.Len() != 506 || !slices.Equal(ds.Shape(), []int{13}) || y[0] != 24 {
		t.Errorf("boston: %d examples of shape %v, target 0 = %v (%v)", ds.Len(), ds.Shape(), y, err)
	}
}
