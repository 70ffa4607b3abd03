package prune

import (
	"bytes"
	"compress/gzip"

	"github.com/compressml/compress/eval"
	"github.com/compressml/compress/importer"
	rt "github.com/compressml/compress/runtime"
)

// LayerStats describe one prunable layer's weight.
type LayerStats struct {
	Layer    string  `json:"layer"`
	Op       string  `json:"op"`
	Param    string  `json:"param"`
	Shape    []int   `json:"shape"`
	Params   int     `json:"params"`
	NonZeros int     `json:"nonzeros"`
	Sparsity float64 `json:"sparsity"` // fraction of zeros
	MACs     int64   `json:"macs"`     // dense multiply-adds per example
}

// ModelStats are the totals of a model.
type ModelStats struct {
	// Params counts the values of every weight (float32 and integer
	// parameters except int64/bool ones, see eval.IsWeight), NonZeros
	// those that are not zero.
	Params   int64 `json:"params"`
	NonZeros int64 `json:"nonzeros"`
	// FileBytes is the size of the model as ONNX, GzipBytes that file
	// compressed with gzip at its default level (zeros compress: it shows
	// what sparsity saves on disk and on the wire).
	FileBytes int64 `json:"file_bytes"`
	GzipBytes int64 `json:"gzip_bytes"`
	// MACs are the multiply-adds of one example run densely; SparseMACs
	// count only those with nonzero weights in prunable layers.
	MACs       int64 `json:"macs"`
	SparseMACs int64 `json:"sparse_macs"`
}

// Stats measures g: per-layer weight statistics and model totals. MACs are
// counted at batch 1 on the graph as imported (no folding).
func Stats(g *rt.Graph) ([]LayerStats, *ModelStats, error) {
	ms := &ModelStats{}
	for _, name := range g.ParamNames() {
		t := g.Params[name].T
		if !eval.IsWeight(t) {
			continue
		}
		ms.Params += int64(t.Len())
		ms.NonZeros += int64(nonZeros(t))
	}
	b, err := importer.Marshal(g)
	if err != nil {
		return nil, nil, err
	}
	ms.FileBytes = int64(len(b))
	var z bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&z, gzip.DefaultCompression)
	if _, err := zw.Write(b); err != nil {
		return nil, nil, err
	}
	if err := zw.Close(); err != nil {
		return nil, nil, err
	}
	ms.GzipBytes = int64(z.Len())
	sum := eval.Summarize(g, eval.SummaryOptions{Batch: 1})
	ms.MACs = sum.MACs
	ms.SparseMACs = sum.MACs
	macs := map[string]int64{}
	for _, n := range sum.Nodes {
		macs[n.Name] = n.MACs
	}
	var out []LayerStats
	for _, l := range Layers(g) {
		t := g.Params[l.Param].T
		nz := nonZeros(t)
		ls := LayerStats{Layer: l.Node, Op: l.Op, Param: l.Param, Shape: l.Shape, Params: t.Len(), NonZeros: nz,
			Sparsity: 1 - float64(nz)/float64(t.Len()), MACs: macs[l.Node]}
		ms.SparseMACs -= int64(float64(ls.MACs) * ls.Sparsity)
		out = append(out, ls)
	}
	return out, ms, nil
}

func nonZeros(t *rt.Tensor) int {
	n := 0
	switch t.DType {
	case rt.Float32:
		for _, v := range t.F32 {
			if v != 0 {
				n++
			}
		}
	case rt.Int8:
		for _, v := range t.I8 {
			if v != 0 {
				n++
			}
		}
	case rt.Uint8:
		for _, v := range t.U8 {
			if v != 0 {
				n++
			}
		}
	case rt.Int32:
		for _, v := range t.I32 {
			if v != 0 {
				n++
			}
		}
	default:
		n = t.Len()
	}
	return n
}
