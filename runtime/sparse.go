package runtime

import (
	"fmt"

	"github.com/compressml/compress/internal/parallel"
)

// This file holds the compressed sparse row (CSR) matrix and its product
// with a dense matrix, the kernel behind the sparse ops of ops_sparse.go.

// Implementations of the CSR row kernel.
const (
	sparseGeneric = iota // portable Go
	sparseAVX2           // AVX2 + FMA assembly, 16- and 8-column tiles
	sparseAVX512         // AVX-512F assembly, 32- and 16-column tiles
)

// sparseImpl is the row kernel in use, the fastest available. It is fixed
// at start-up; tests switch it to cover every implementation.
var sparseImpl = sparseImpls()[len(sparseImpls())-1]

// CSR is a sparse matrix in compressed sparse row form: the nonzeros of row
// r are Vals[RowPtr[r]:RowPtr[r+1]], in columns ColIdx[...] (increasing).
type CSR struct {
	Rows, Cols int
	RowPtr     []int32
	ColIdx     []int32
	Vals       []float32
}

// NewCSR builds the CSR form of a rows x cols matrix whose element (r, c)
// is at(r, c), keeping the values that are not zero.
func NewCSR(rows, cols int, at func(r, c int) float32) (*CSR, error) {
	if rows < 0 || cols < 0 || int64(rows)*int64(cols) > 1<<31-1 {
		return nil, fmt.Errorf("a sparse matrix of %d x %d is out of range", rows, cols)
	}
	s := &CSR{Rows: rows, Cols: cols, RowPtr: make([]int32, rows+1)}
	for r := 0; r < rows; r++ {
		for c := 0; c < cols; c++ {
			if v := at(r, c); v != 0 {
				s.ColIdx = append(s.ColIdx, int32(c))
				s.Vals = append(s.Vals, v)
			}
		}
		s.RowPtr[r+1] = int32(len(s.Vals))
	}
	return s, nil
}

// NNZ is the number of stored nonzeros.
func (s *CSR) NNZ() int { return len(s.Vals) }

// Density is the fraction of elements that are stored (0 for an empty
// matrix).
func (s *CSR) Density() float64 {
	if s.Rows == 0 || s.Cols == 0 {
		return 0
	}
	return float64(s.NNZ()) / (float64(s.Rows) * float64(s.Cols))
}

// MulDense computes C = S * B + bias (per row) for the rows of S, with B a
// dense Cols x n matrix (row stride ldb) and C a Rows x n matrix (row
// stride ldc), then clamps at zero when relu is set. bias is nil or holds
// Rows values. Rows are split over threads goroutines; every element is
// computed by the same operations whatever the split, so the result does
// not depend on threads.
func (s *CSR) MulDense(b []float32, ldb int, c []float32, ldc, n int, bias []float32, relu bool, threads int) {
	if n == 0 || s.Rows == 0 {
		return
	}
	if ldb < n || ldc < n || len(b) < (s.Cols-1)*ldb+n && s.Cols > 0 || len(c) < (s.Rows-1)*ldc+n || bias != nil && len(bias) < s.Rows {
		panic(fmt.Sprintf("runtime: CSR product %dx%d by %d columns: inconsistent operands (ldb %d, ldc %d, len(b) %d, len(c) %d)",
			s.Rows, s.Cols, n, ldb, ldc, len(b), len(c)))
	}
	// About 64K multiply-adds per goroutine repay its start.
	work := int64(s.NNZ())*int64(n) + int64(s.Rows)*int64(n)
	threads = max(1, min(threads, int(work>>16)))
	grain := max(1, s.Rows/(threads*4))
	impl := sparseImpl
	// Columns go in blocks whose rows of B (about 256 KiB) stay in the L2
	// cache while every row of S streams over them.
	blk := n
	if s.Cols*n > 64<<10 {
		blk = min(n, max(32, (64<<10)/max(s.Cols, 1)/32*32))
	}
	parallel.For(threads, s.Rows, grain, func(lo, hi int) {
		for j0 := 0; j0 < n; j0 += blk {
			j1 := min(j0+blk, n)
			for r := lo; r < hi; r++ {
				p0, p1 := s.RowPtr[r], s.RowPtr[r+1]
				row := c[r*ldc+j0 : r*ldc+j1]
				var bv float32
				if bias != nil {
					bv = bias[r]
				}
				if n == 1 {
					row[0] = dot(s.Vals[p0:p1], s.ColIdx[p0:p1], b, ldb) + bv
					if relu && row[0] < 0 {
						row[0] = 0
					}
					continue
				}
				mulRow(impl, s.Vals[p0:p1], s.ColIdx[p0:p1], b[j0:], ldb, row, bv, relu)
			}
		}
	})
}

// dot is one row of a product with a single column: sum_i vals[i]*b[idx[i]*ldb],
// in four interleaved partial sums.
func dot(vals []float32, idx []int32, b []float32, ldb int) float32 {
	var s0, s1, s2, s3 float32
	i := 0
	for ; i+4 <= len(vals); i += 4 {
		v, x := vals[i:i+4], idx[i:i+4]
		s0 += v[0] * b[int(x[0])*ldb]
		s1 += v[1] * b[int(x[1])*ldb]
		s2 += v[2] * b[int(x[2])*ldb]
		s3 += v[3] * b[int(x[3])*ldb]
	}
	for ; i < len(vals); i++ {
		s0 += vals[i] * b[int(idx[i])*ldb]
	}
	return (s0 + s1) + (s2 + s3)
}

// mulRow computes one output row segment c (len(c) columns):
// c[j] = sum_i vals[i]*b[idx[i]*ldb+j] + bias, clamped at zero when relu.
func mulRow(impl int, vals []float32, idx []int32, b []float32, ldb int, c []float32, bias float32, relu bool) {
	n := len(c)
	j := 0
	if len(vals) > 0 {
		j = sparseRowTiles(impl, vals, idx, b, ldb, c, n, bias, relu)
	}
	if j == n {
		return
	}
	// Remaining columns: one axpy per nonzero over the columns left.
	rest := c[j:n]
	clear(rest)
	for i, v := range vals {
		src := b[int(idx[i])*ldb+j : int(idx[i])*ldb+n]
		for t := range rest {
			rest[t] += v * src[t]
		}
	}
	for t, v := range rest {
		v += bias
		if relu && v < 0 {
			v = 0
		}
		rest[t] = v
	}
}
