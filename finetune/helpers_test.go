package finetune

import (
	"math"
	"math/rand/v2"
	"slices"
	"strconv"
	"testing"

	"github.com/compressml/compress/data"
	"github.com/compressml/compress/models"
	rt "github.com/compressml/compress/runtime"
)

// blobs makes a separable classification data set: n examples of dim
// features around one well separated centre per class, with Gaussian noise
// of standard deviation std. The same arguments give the same data.
func blobs(t testing.TB, n, classes, dim int, std float64, seed uint64) *data.InMemory {
	t.Helper()
	r := rand.New(rand.NewPCG(seed, 42))
	centres := make([][]float64, classes)
	for c := range centres {
		centres[c] = make([]float64, dim)
		for j := range centres[c] {
			centres[c][j] = 3 * r.NormFloat64()
		}
		// Keep the classes apart whatever the draw: class c is offset along
		// feature c % dim.
		centres[c][c%dim] += 4 * float64(c+1)
	}
	x := rt.New(rt.Float32, n, dim)
	labels := make([]int, n)
	for i := range labels {
		c := i % classes
		labels[i] = c
		for j := 0; j < dim; j++ {
			x.F32[i*dim+j] = float32(centres[c][j] + std*r.NormFloat64())
		}
	}
	ds, err := data.NewInMemory("blobs", x, labels, classes)
	if err != nil {
		t.Fatal(err)
	}
	return ds
}

// mlp builds a small MLP (models "mlp": fc1 -> relu1 -> ... -> fc) for
// examples of dim features.
func mlp(t testing.TB, dim, classes int, hidden []int, seed uint64) *rt.Graph {
	t.Helper()
	g, err := models.Build("mlp", models.Config{Input: []int{dim}, Classes: classes, Hidden: hidden, Seed: seed})
	if err != nil {
		t.Fatal(err)
	}
	return g
}

// params copies every float32 parameter of g.
func params(g *rt.Graph) map[string][]float32 {
	out := map[string][]float32{}
	for name, p := range g.Params {
		if p.T.DType == rt.Float32 {
			out[name] = slices.Clone(p.T.F32)
		}
	}
	return out
}

// diffParams reports the first parameter value of a and b that differs by
// more than tol (0: bit-identical), as a description, or "".
func diffParams(a, b map[string][]float32, tol float64) string {
	names := make([]string, 0, len(a))
	for name := range a {
		names = append(names, name)
	}
	slices.Sort(names)
	if len(a) != len(b) {
		return "different parameter sets"
	}
	for _, name := range names {
		va, vb := a[name], b[name]
		if len(va) != len(vb) {
			return name + ": different sizes"
		}
		for i := range va {
			d := math.Abs(float64(va[i]) - float64(vb[i]))
			if (tol == 0 && math.Float32bits(va[i]) != math.Float32bits(vb[i])) || d > tol || math.IsNaN(d) {
				return name + ": values differ: " + ftoa(va[i]) + " vs " + ftoa(vb[i])
			}
		}
	}
	return ""
}

func ftoa(v float32) string { return strconv.FormatFloat(float64(v), 'g', -1, 32) }

// accuracy evaluates g (inference executor) on ds.
func accuracy(t testing.TB, g *rt.Graph, ds data.Dataset) float64 {
	t.Helper()
	ex, err := rt.NewExecutor(g, rt.Options{Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	l, err := data.NewLoader(ds, data.LoaderOptions{BatchSize: 256})
	if err != nil {
		t.Fatal(err)
	}
	right := 0
	var b *data.Batch
	for i := 0; i < l.NumBatches(); i++ {
		if b, err = l.Batch(i, b); err != nil {
			t.Fatal(err)
		}
		out, err := ex.Run(t.Context(), map[string]*rt.Tensor{g.Inputs[0].Name: b.X})
		if err != nil {
			t.Fatal(err)
		}
		right += correct(out[g.Outputs[0].Name], b.Labels)
	}
	return float64(right) / float64(ds.Len())
}

func approx(a, b, tol float64) bool {
	return math.Abs(a-b) <= tol*math.Max(1, math.Abs(b))
}
