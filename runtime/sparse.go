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

	// The columns are cut into blocks of csrBlock: split[r*(nb+1)+k] is
	// the first nonzero of row r in block k (or later), so that a product
	// streams one block of rows of the dense operand at a time, from the
	// L1 cache.
	nb    int
	split []int32
}

// csrBlock is the number of rows of the dense operand one pass of the
// product keeps in the L1 cache: 256 rows of a 32-column tile are 32 KiB.
const csrBlock = 256

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
	s.nb = max(1, (cols+csrBlock-1)/csrBlock)
	if s.nb > 1 {
		s.split = make([]int32, rows*(s.nb+1))
		for r := 0; r < rows; r++ {
			p := s.RowPtr[r]
			for k := 0; k < s.nb; k++ {
				for p < s.RowPtr[r+1] && int(s.ColIdx[p]) < k*csrBlock {
					p++
				}
				s.split[r*(s.nb+1)+k] = p
			}
			s.split[r*(s.nb+1)+s.nb] = s.RowPtr[r+1]
		}
	}
	return s, nil
}

// blockRange returns the nonzeros of row r in column block k of nb (1:
// the whole row, or s.nb).
func (s *CSR) blockRange(r, k, nb int) (int32, int32) {
	if nb == 1 {
		return s.RowPtr[r], s.RowPtr[r+1]
	}
	i := r*(s.nb+1) + k
	return s.split[i], s.split[i+1]
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
	w1, w2 := tileWidths(impl)
	// Columns go in blocks whose rows of B (about 256 KiB) stay in the L2
	// cache while every row of S streams over them.
	blk := n
	if s.Cols*n > 64<<10 {
		blk = min(n, max(32, (64<<10)/max(s.Cols, 1)/32*32))
	}
	// Column blocks of S pay for more row-kernel calls; they help wide
	// products only (a batch of 256 and more, or long convolution rows).
	nb := 1
	if n >= 256 {
		nb = s.nb
	}
	parallel.For(threads, s.Rows, grain, func(lo, hi int) {
		if n == 1 {
			for r := lo; r < hi; r++ {
				p0, p1 := s.RowPtr[r], s.RowPtr[r+1]
				v := dot(s.Vals[p0:p1], s.ColIdx[p0:p1], b, ldb)
				if bias != nil {
					v += bias[r]
				}
				if relu && v < 0 {
					v = 0
				}
				c[r*ldc] = v
			}
			return
		}
		for j0 := 0; j0 < n; j0 += blk {
			j1 := min(j0+blk, n)
			j := j0
			for ; w1 > 0 && j+w1 <= j1; j += w1 {
				s.tile(impl, w1, j, lo, hi, nb, b, ldb, c, ldc, bias, relu)
			}
			for ; w2 > 0 && j+w2 <= j1; j += w2 {
				s.tile(impl, w2, j, lo, hi, nb, b, ldb, c, ldc, bias, relu)
			}
			if j < j1 {
				for r := lo; r < hi; r++ {
					var bv float32
					if bias != nil {
						bv = bias[r]
					}
					p0, p1 := s.RowPtr[r], s.RowPtr[r+1]
					mulRowGeneric(s.Vals[p0:p1], s.ColIdx[p0:p1], b[j:], ldb, c[r*ldc+j:r*ldc+j1], bv, relu)
				}
			}
		}
	})
}

// Flags of the assembly row kernels (see sparseTile).
const (
	tileRelu       = 1 << 0
	tileAccumulate = 1 << 1
)

// tile computes columns [j, j+w) of rows [lo, hi) with the assembly row
// kernel of width w, one of nb column blocks of S at a time: each block's
// rows of B stay in the L1 cache while every row goes by, the partial sums
// add up in C, and the last block adds the bias and applies the ReLU.
func (s *CSR) tile(impl, w, j, lo, hi, nb int, b []float32, ldb int, c []float32, ldc int, bias []float32, relu bool) {
	for k := 0; k < nb; k++ {
		last := k == nb-1
		for r := lo; r < hi; r++ {
			p0, p1 := s.blockRange(r, k, nb)
			out := c[r*ldc+j : r*ldc+j+w]
			var bv float32
			flags := 0
			if k > 0 {
				flags |= tileAccumulate
			}
			if last {
				if bias != nil {
					bv = bias[r]
				}
				if relu {
					flags |= tileRelu
				}
			}
			if p0 < p1 {
				sparseTile(impl, w, s.Vals[p0:p1], s.ColIdx[p0:p1], b[j:], ldb, out, bv, flags)
				continue
			}
			// No nonzero of this row in this block.
			if k == 0 {
				clear(out)
			}
			if last {
				for t, v := range out {
					v += bv
					if relu && v < 0 {
						v = 0
					}
					out[t] = v
				}
			}
		}
	}
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

// mulRowGeneric computes one output row segment c in portable Go:
// c[j] = sum_i vals[i]*b[idx[i]*ldb+j] + bias, clamped at zero when relu.
func mulRowGeneric(vals []float32, idx []int32, b []float32, ldb int, c []float32, bias float32, relu bool) {
	n := len(c)
	clear(c)
	for i, v := range vals {
		src := b[int(idx[i])*ldb : int(idx[i])*ldb+n]
		for t := range c {
			c[t] += v * src[t]
		}
	}
	for t, v := range c {
		v += bias
		if relu && v < 0 {
			v = 0
		}
		c[t] = v
	}
}
