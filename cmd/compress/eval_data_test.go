package main

import (
	"archive/zip"
	"encoding/json"
	"image"
	"image/color"
	"image/png"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/compressml/compress/importer"
	rt "github.com/compressml/compress/runtime"
)

// gemmModel saves y = x·Wᵀ with W the first `outputs` rows of the 4×4
// identity, for inputs of the given shape (flattened to [N 4] first when
// it has more dimensions).
func gemmModel(t *testing.T, path string, inShape []int, outputs int) string {
	t.Helper()
	g := rt.NewGraph("gemm")
	w := rt.New(rt.Float32, outputs, 4)
	for c := range outputs {
		w.F32[c*4+c] = 1
	}
	g.AddParam("W", w, false)
	g.AddParam("b", rt.New(rt.Float32, outputs), false)
	g.Inputs = []rt.ValueInfo{{Name: "x", DType: rt.Float32, Shape: inShape}}
	g.Outputs = []rt.ValueInfo{{Name: "y", DType: rt.Float32, Shape: []int{-1, outputs}}}
	in := "x"
	if len(inShape) > 2 {
		f := &rt.Node{Name: "flat", OpType: "Flatten", Inputs: []string{"x"}, Outputs: []string{"xf"}}
		f.SetAttr("axis", rt.Attr{Kind: rt.AttrInt, I: 1})
		g.Nodes = append(g.Nodes, f)
		in = "xf"
	}
	n := &rt.Node{Name: "fc", OpType: "Gemm", Inputs: []string{in, "W", "b"}, Outputs: []string{"y"}}
	n.SetAttr("transB", rt.Attr{Kind: rt.AttrInt, I: 1})
	g.Nodes = append(g.Nodes, n)
	if err := importer.Save(g, path); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestEvalDataFormats(t *testing.T) {
	dir := t.TempDir()
	model := tinyClassifier(t, dir) // scores: the first 3 of 4 features
	// Predictions 0 1 2 2, labels 0 1 2 1: 3 of 4 right.
	rows := "9,1,1,0,0\n1,9,1,0,1\n1,1,9,0,2\n1,1,9,0,1\n"
	csvFile := filepath.Join(dir, "set.csv")
	must(t, os.WriteFile(csvFile, []byte("a,b,c,d,label\n"+rows), 0o644))

	npz := filepath.Join(dir, "set.npz")
	{
		f, err := os.Create(npz)
		must(t, err)
		zw := zip.NewWriter(f)
		for name, x := range map[string]*rt.Tensor{
			"x_test.npy": rt.FromFloat32([]float32{9, 1, 1, 0, 1, 9, 1, 0, 1, 1, 9, 0, 1, 1, 9, 0}, 4, 4),
			"y_test.npy": rt.FromInt64([]int64{0, 1, 2, 1}, 4),
		} {
			b, err := importer.EncodeNPY(x)
			must(t, err)
			w, _ := zw.Create(name)
			w.Write(b)
		}
		must(t, zw.Close())
		must(t, f.Close())
	}

	// Image folder: 4x4 RGB images; the model takes [N 1 2 2], so they are
	// converted to gray and resized to 2x2. Class a's images are bright at
	// the top left (score 0 wins), class b's at the top right.
	imgs := filepath.Join(dir, "images")
	imgModel := gemmModel(t, filepath.Join(dir, "img.onnx"), []int{-1, 1, 2, 2}, 2)
	for i, cl := range []string{"a", "b", "b"} {
		m := image.NewRGBA(image.Rect(0, 0, 4, 4))
		for y := range 4 {
			for x := range 4 {
				v := uint8(10)
				if y < 2 && (x < 2) == (cl == "a") {
					v = 250
				}
				if i == 2 { // misclassified: bright on the left
					v = map[bool]uint8{true: 250, false: 10}[x < 2 && y < 2]
				}
				m.SetRGBA(x, y, color.RGBA{v, v, v, 255})
			}
		}
		p := filepath.Join(imgs, "test", cl, string(rune('0'+i))+".png")
		must(t, os.MkdirAll(filepath.Dir(p), 0o755))
		f, _ := os.Create(p)
		must(t, png.Encode(f, m))
		f.Close()
	}

	for _, tc := range []struct {
		name  string
		args  []string
		acc   float64
		split string
		n     int
	}{
		{"csv, no test file: all of it", []string{"--model", model, "--data", csvFile}, 0.75, "all", 4},
		{"csv, explicit all", []string{"--model", model, "--data", csvFile, "--split", "all", "--limit", "2"}, 1, "all", 2},
		{"npz", []string{"--model", model, "--data", npz}, 0.75, "test", 4},
		{"image folder", []string{"--model", imgModel, "--data", imgs}, 2.0 / 3, "test", 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var r struct {
				Accuracy    float64  `json:"accuracy"`
				ROCAUC      *float64 `json:"roc_auc"`
				NumExamples int      `json:"num_examples"`
				Split       string   `json:"split"`
				Task        string   `json:"task"`
			}
			out := mustRun(t, append([]string{"eval", "--json", "--threads", "1"}, tc.args...)...)
			if err := json.Unmarshal([]byte(out), &r); err != nil {
				t.Fatalf("%v\n%s", err, out)
			}
			if math.Abs(r.Accuracy-tc.acc) > 1e-12 || r.NumExamples != tc.n || r.Split != tc.split || r.Task != "classification" || r.ROCAUC == nil {
				t.Errorf("eval JSON: %+v\n%s", r, out)
			}
		})
	}
	text := mustRun(t, "eval", "--model", imgModel, "--data", imgs)
	for _, want := range []string{"classes         a, b", "ROC-AUC", "image folder"} {
		if !strings.Contains(text, want) {
			t.Errorf("text lacks %q:\n%s", want, text)
		}
	}
}

func TestEvalRegression(t *testing.T) {
	dir := t.TempDir()
	model := gemmModel(t, filepath.Join(dir, "reg.onnx"), []int{-1, 4}, 1) // predicts feature 0
	data := filepath.Join(dir, "houses.csv")
	// Predictions 1 2 3 5 for targets 1 2 4 4: MSE 0.5, MAE 0.5,
	// R2 = 1 - 2/(2.25+0.25+1.75^2... computed below.
	must(t, os.WriteFile(data, []byte("price,a,b,c,d\n1,1,0,0,0\n2,2,0,0,0\n4,3,0,0,0\n4,5,0,0,0\n"), 0o644))
	var r struct {
		MSE  float64 `json:"mse"`
		MAE  float64 `json:"mae"`
		R2   float64 `json:"r2"`
		Task string  `json:"task"`
	}
	out := mustRun(t, "eval", "--model", model, "--data", data, "--task", "regression", "--label-column", "price", "--json")
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	// Targets 1 2 4 4 (mean 2.75): SS_tot = 3.0625+0.5625+1.5625+1.5625 = 6.75,
	// SS_res = 0+0+1+1 = 2.
	if r.MSE != 0.5 || r.MAE != 0.5 || math.Abs(r.R2-(1-2/6.75)) > 1e-12 || r.Task != "regression" {
		t.Errorf("regression JSON: %+v\n%s", r, out)
	}
	text := mustRun(t, "eval", "--model", model, "--data", data, "--task", "regression", "--label-column", "0")
	if !strings.Contains(text, "MSE             0.5") {
		t.Errorf("regression text:\n%s", text)
	}
}

func TestEvalDataErrors(t *testing.T) {
	dir := t.TempDir()
	model := tinyClassifier(t, dir)
	csvFile := filepath.Join(dir, "set.csv")
	must(t, os.WriteFile(csvFile, []byte("1,2,3,4,0\n1,2,3,x,1\n"), 0o644))
	good := filepath.Join(dir, "good.csv")
	must(t, os.WriteFile(good, []byte("1,2,3,4,0\n"), 0o644))
	for i, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"eval", "--model", model, "--data", good, "--task", "ranking"}, `--task: unknown task "ranking"`},
		{[]string{"eval", "--model", model, "--data", good, "--header", "maybe"}, `--header "maybe": use auto, yes or no`},
		{[]string{"eval", "--model", model, "--data", good, "--split", "test"}, "is a single file with no test file next to it"},
		{[]string{"eval", "--model", model, "--data", csvFile}, `set.csv: line 2, column 3: "x" is not a number`},
		{[]string{"eval", "--model", model, "--data", good, "--task", "regression"}, `must hold 1 float32 value(s) per example`},
	} {
		_, errs, code := compress(t, tc.args...)
		if code == 0 || !strings.Contains(errs, tc.want) {
			t.Errorf("%d: exit %d, stderr %q, want one containing %q", i, code, errs, tc.want)
		}
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
