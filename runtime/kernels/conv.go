package kernels

import (
	"fmt"

	"github.com/compressml/compress/internal/parallel"
)

// Conv2DShape is the geometry of a 2-D convolution over one NCHW image and
// one group: C input channels of H x W, a KH x KW window, explicit pads
// (already resolved from ONNX auto_pad), strides and dilations.
type Conv2DShape struct {
	C, H, W                              int
	KH, KW                               int
	PadTop, PadLeft, PadBottom, PadRight int
	StrideH, StrideW                     int
	DilationH, DilationW                 int
}

// OutH returns the output height.
func (s *Conv2DShape) OutH() int {
	return (s.H+s.PadTop+s.PadBottom-s.DilationH*(s.KH-1)-1)/s.StrideH + 1
}

// OutW returns the output width.
func (s *Conv2DShape) OutW() int {
	return (s.W+s.PadLeft+s.PadRight-s.DilationW*(s.KW-1)-1)/s.StrideW + 1
}

// Validate reports whether the geometry is usable: positive sizes, strides
// and dilations, non-negative pads, and a window that fits the padded
// input.
func (s *Conv2DShape) Validate() error {
	switch {
	case s.C <= 0 || s.H <= 0 || s.W <= 0:
		return fmt.Errorf("conv input must be non-empty, got C=%d H=%d W=%d", s.C, s.H, s.W)
	case s.KH <= 0 || s.KW <= 0:
		return fmt.Errorf("conv kernel must be non-empty, got %dx%d", s.KH, s.KW)
	case s.StrideH <= 0 || s.StrideW <= 0:
		return fmt.Errorf("conv strides must be positive, got %d,%d", s.StrideH, s.StrideW)
	case s.DilationH <= 0 || s.DilationW <= 0:
		return fmt.Errorf("conv dilations must be positive, got %d,%d", s.DilationH, s.DilationW)
	case s.PadTop < 0 || s.PadLeft < 0 || s.PadBottom < 0 || s.PadRight < 0:
		return fmt.Errorf("conv pads must be non-negative, got %d,%d,%d,%d", s.PadTop, s.PadLeft, s.PadBottom, s.PadRight)
	case s.H+s.PadTop+s.PadBottom < s.DilationH*(s.KH-1)+1 || s.W+s.PadLeft+s.PadRight < s.DilationW*(s.KW-1)+1:
		return fmt.Errorf("conv window %dx%d (dilations %d,%d) is larger than the padded input %dx%d",
			s.KH, s.KW, s.DilationH, s.DilationW, s.H+s.PadTop+s.PadBottom, s.W+s.PadLeft+s.PadRight)
	}
	return nil
}

// ColsSize returns the number of values Im2Col writes:
// C*KH*KW rows of OutH*OutW.
func (s *Conv2DShape) ColsSize() int {
	return s.C * s.KH * s.KW * s.OutH() * s.OutW()
}

func (s *Conv2DShape) mustValidate(op string) {
	if err := s.Validate(); err != nil {
		panic("kernels: " + op + ": " + err.Error())
	}
}

// validRange returns the output positions [lo, hi) of one axis whose input
// coordinate o*stride + off lies in [0, size).
func validRange(out, stride, off, size int) (lo, hi int) {
	// smallest o with o*stride+off >= 0
	if off < 0 {
		lo = (-off + stride - 1) / stride
	}
	// largest o with o*stride+off <= size-1, plus one
	if size-1-off < 0 {
		hi = 0
	} else {
		hi = (size-1-off)/stride + 1
	}
	lo, hi = min(lo, out), min(hi, out)
	if hi < lo {
		hi = lo
	}
	return lo, hi
}

// Im2Col unfolds x, one image of s.C x s.H x s.W values, into cols, a
// (C*KH*KW) x (OutH*OutW) row-major matrix: row (c*KH+kh)*KW+kw holds the
// input value under kernel tap (kh, kw) of channel c for every output
// position (zero in the padding). With the convolution weights viewed as an
// outC x (C*KH*KW) matrix W, the convolution output is W x cols. cols must
// hold at least s.ColsSize() values; nothing is allocated. It panics on an
// invalid geometry or short buffers.
func Im2Col(s *Conv2DShape, x, cols []float32) {
	s.mustValidate("Im2Col")
	oh, ow := s.OutH(), s.OutW()
	if len(x) < s.C*s.H*s.W || len(cols) < s.ColsSize() {
		panic(fmt.Sprintf("kernels: Im2Col: have %d input and %d column values, want %d and %d",
			len(x), len(cols), s.C*s.H*s.W, s.ColsSize()))
	}
	hw := oh * ow
	row := 0
	for c := 0; c < s.C; c++ {
		plane := x[c*s.H*s.W : (c+1)*s.H*s.W]
		for kh := 0; kh < s.KH; kh++ {
			offH := kh*s.DilationH - s.PadTop
			yLo, yHi := validRange(oh, s.StrideH, offH, s.H)
			for kw := 0; kw < s.KW; kw++ {
				offW := kw*s.DilationW - s.PadLeft
				xLo, xHi := validRange(ow, s.StrideW, offW, s.W)
				dst := cols[row*hw : (row+1)*hw]
				row++
				clear(dst[:yLo*ow])
				clear(dst[yHi*ow:])
				for y := yLo; y < yHi; y++ {
					d := dst[y*ow : (y+1)*ow]
					clear(d[:xLo])
					clear(d[xHi:])
					if xLo >= xHi {
						continue
					}
					src := plane[(y*s.StrideH+offH)*s.W:]
					start := xLo*s.StrideW + offW
					if s.StrideW == 1 {
						copy(d[xLo:xHi], src[start:start+xHi-xLo])
						continue
					}
					d = d[xLo:xHi]
					src = src[start : start+(len(d)-1)*s.StrideW+1]
					for i := range d {
						d[i] = src[i*s.StrideW]
					}
				}
			}
		}
	}
}

// DepthwiseConv2D computes a depthwise convolution (group = C, one output
// channel per input channel) directly, without im2col: for each channel c,
// y[c] = conv(x[c], w[c]) + bias[c], then ReLU if relu. x is C x H x W, w is
// C x KH x KW, bias is nil or holds C values, y is C x OutH x OutW and is
// fully overwritten. Channels are split across threads goroutines; the
// result does not depend on threads. It allocates nothing and panics on an
// invalid geometry or short buffers.
func DepthwiseConv2D(s *Conv2DShape, x, w, bias []float32, relu bool, y []float32, threads int) {
	s.mustValidate("DepthwiseConv2D")
	oh, ow := s.OutH(), s.OutW()
	kk := s.KH * s.KW
	if len(x) < s.C*s.H*s.W || len(w) < s.C*kk || len(y) < s.C*oh*ow || (bias != nil && len(bias) < s.C) {
		panic(fmt.Sprintf("kernels: DepthwiseConv2D: buffers too short for C=%d H=%d W=%d kernel %dx%d output %dx%d",
			s.C, s.H, s.W, s.KH, s.KW, oh, ow))
	}
	grain := max(1, (1<<15)/max(1, oh*ow*kk))
	parallel.For(threads, s.C, grain, func(lo, hi int) {
		for c := lo; c < hi; c++ {
			var b float32
			if bias != nil {
				b = bias[c]
			}
			depthwisePlane(s, x[c*s.H*s.W:(c+1)*s.H*s.W], w[c*kk:(c+1)*kk], b, relu, y[c*oh*ow:(c+1)*oh*ow])
		}
	})
}

// depthwisePlane convolves one channel plane.
func depthwisePlane(s *Conv2DShape, x, w []float32, bias float32, relu bool, y []float32) {
	oh, ow := s.OutH(), s.OutW()
	for i := range y {
		y[i] = bias
	}
	for kh := 0; kh < s.KH; kh++ {
		offH := kh*s.DilationH - s.PadTop
		yLo, yHi := validRange(oh, s.StrideH, offH, s.H)
		for kw := 0; kw < s.KW; kw++ {
			wv := w[kh*s.KW+kw]
			offW := kw*s.DilationW - s.PadLeft
			xLo, xHi := validRange(ow, s.StrideW, offW, s.W)
			n := xHi - xLo
			if n <= 0 {
				continue
			}
			for oy := yLo; oy < yHi; oy++ {
				d := y[oy*ow+xLo : oy*ow+xHi]
				src := x[(oy*s.StrideH+offH)*s.W+xLo*s.StrideW+offW:]
				if s.StrideW == 1 {
					axpy(wv, src[:n], d)
					continue
				}
				src = src[:(n-1)*s.StrideW+1]
				for i := range d {
					d[i] += wv * src[i*s.StrideW]
				}
			}
		}
	}
	if relu {
		for i, v := range y {
			y[i] = max(v, 0) // branch-free; NaN stays NaN
		}
	}
}

// Im2ColPacked writes the matrix of Im2Col, (C*KH*KW) x (OutH*OutW),
// directly in the packed right-operand layout of PackB, so that a
// convolution is one Gemm with PA = the packed weights and PB = the result,
// with no separate packing pass over the columns. dst must hold
// PackedBSize(C*KH*KW, OutH*OutW) values; the result refers to dst.
// Channels are split across threads goroutines. It allocates nothing and
// panics on an invalid geometry or short buffers.
func Im2ColPacked(s *Conv2DShape, x, dst []float32, threads int) PackedB {
	s.mustValidate("Im2ColPacked")
	kdim, hw := s.C*s.KH*s.KW, s.OutH()*s.OutW()
	if len(x) < s.C*s.H*s.W {
		panic(fmt.Sprintf("kernels: Im2ColPacked: have %d input values, want %d", len(x), s.C*s.H*s.W))
	}
	pb := newPackedB(dst, kdim, hw, "Im2ColPacked")
	grain := max(1, (1<<16)/max(1, s.KH*s.KW*hw))
	parallel.For(threads, s.C, grain, func(lo, hi int) {
		for c := lo; c < hi; c++ {
			im2colPackedChannel(s, x[c*s.H*s.W:(c+1)*s.H*s.W], c, &pb)
		}
	})
	return pb
}

// im2colPackedChannel writes the KH*KW rows of channel c into pb.
func im2colPackedChannel(s *Conv2DShape, plane []float32, c int, pb *PackedB) {
	oh, ow := s.OutH(), s.OutW()
	for kh := 0; kh < s.KH; kh++ {
		offH := kh*s.DilationH - s.PadTop
		yLo, yHi := validRange(oh, s.StrideH, offH, s.H)
		for kw := 0; kw < s.KW; kw++ {
			offW := kw*s.DilationW - s.PadLeft
			xLo, xHi := validRange(ow, s.StrideW, offW, s.W)
			p := (c*s.KH+kh)*s.KW + kw
			ks := kStep(pb.k)
			pc := p / ks * ks
			kcb := min(ks, pb.k-pc)
			w := packedRow{data: pb.data, base: pc*pb.nPad + (p-pc)*nr, stride: nr * kcb}
			w.zero(0, yLo*ow)
			for y := yLo; y < yHi; y++ {
				j := y * ow
				w.zero(j, xLo)
				if xLo < xHi {
					src := plane[(y*s.StrideH+offH)*s.W+xLo*s.StrideW+offW:]
					if s.StrideW == 1 {
						w.copy(j+xLo, src[:xHi-xLo])
					} else {
						for x := xLo; x < xHi; x++ {
							w.set(j+x, src[(x-xLo)*s.StrideW])
						}
					}
				}
				w.zero(j+xHi, ow-xHi)
			}
			w.zero(yHi*ow, pb.nPad-yHi*ow)
		}
	}
}

// packedRow addresses one k row of a packed B block: column j lives at
// base + (j/nr)*stride + j%nr.
type packedRow struct {
	data         []float32
	base, stride int
}

func (w *packedRow) set(j int, v float32) {
	w.data[w.base+j/nr*w.stride+j%nr] = v
}

// copy writes src to columns [j, j+len(src)).
func (w *packedRow) copy(j int, src []float32) {
	for len(src) > 0 {
		n := min(nr-j%nr, len(src))
		off := w.base + j/nr*w.stride + j%nr
		if n == nr {
			copy16(w.data[off:], src)
		} else {
			d := w.data[off : off+n]
			for i := range d {
				d[i] = src[i]
			}
		}
		src = src[n:]
		j += n
	}
}

// zero clears columns [j, j+n).
func (w *packedRow) zero(j, n int) {
	for n > 0 {
		m := min(nr-j%nr, n)
		off := w.base + j/nr*w.stride + j%nr
		clear(w.data[off : off+m])
		n -= m
		j += m
	}
}

// ConvInput is the right operand im2col(X) of a convolution computed as
// W x im2col(X) (see Im2Col), given to Gemm.BConv. Gemm generates the
// columns block by block while packing, so the (C*KH*KW) x (OutH*OutW)
// column matrix never exists in memory: the convolution is a single pass
// with the same cache behaviour as a plain matrix product.
type ConvInput struct {
	Shape *Conv2DShape
	X     []float32 // one image and one group, C x H x W
}

func (ci *ConvInput) check(k, n int) {
	s := ci.Shape
	s.mustValidate("Gemm.BConv")
	if kd, hw := s.C*s.KH*s.KW, s.OutH()*s.OutW(); k != kd || n != hw {
		panic(fmt.Sprintf("kernels: Gemm: BConv is %dx%d (C*KH*KW x OutH*OutW), want K=%d N=%d", kd, hw, k, n))
	}
	if len(ci.X) < s.C*s.H*s.W {
		panic(fmt.Sprintf("kernels: Gemm: BConv has %d input values, want %d", len(ci.X), s.C*s.H*s.W))
	}
}

// packB writes rows [p0, p0+kcb) and columns [j0, j0+ncb) of im2col(X) into
// dst in the packed B layout (panels of nr columns, zero padded). Each row
// is first assembled contiguously in a stack buffer (plain copies of input
// rows), then spread over the panels in whole nr-wide chunks.
func (ci *ConvInput) packB(dst []float32, p0, kcb, j0, ncb int) {
	var tmp [nc]float32
	s := ci.Shape
	oh, ow := s.OutH(), s.OutW()
	kk := s.KH * s.KW
	jEnd := j0 + ncb
	nPad := roundUp(ncb, nr)
	row := tmp[:nPad]
	clear(row[ncb:])
	for p := p0; p < p0+kcb; p++ {
		c, kh, kw := p/kk, p%kk/s.KW, p%s.KW
		plane := ci.X[c*s.H*s.W : (c+1)*s.H*s.W]
		offH := kh*s.DilationH - s.PadTop
		yLo, yHi := validRange(oh, s.StrideH, offH, s.H)
		offW := kw*s.DilationW - s.PadLeft
		xLo, xHi := validRange(ow, s.StrideW, offW, s.W)
		for oy := j0 / ow; oy*ow < jEnd; oy++ {
			base := oy*ow - j0 // row index of output column x == 0
			x0, x1 := max(0, -base), min(ow, jEnd-oy*ow)
			if oy < yLo || oy >= yHi {
				clear(row[base+x0 : base+x1])
				continue
			}
			lo, hi := min(max(xLo, x0), x1), min(max(xHi, x0), x1)
			clear(row[base+x0 : base+lo])
			if lo < hi {
				src := plane[(oy*s.StrideH+offH)*s.W+lo*s.StrideW+offW:]
				d := row[base+lo : base+hi]
				if s.StrideW == 1 {
					copy(d, src)
				} else {
					src = src[:(len(d)-1)*s.StrideW+1]
					for i := range d {
						d[i] = src[i*s.StrideW]
					}
				}
			}
			clear(row[base+hi : base+x1])
		}
		out := dst[(p-p0)*nr:]
		stride := nr * kcb
		for j := 0; j < nPad; j += nr {
			copy16(out[j/nr*stride:], row[j:])
		}
	}
}
