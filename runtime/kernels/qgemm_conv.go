package kernels

import "fmt"

// Int8 convolution.
//
// A convolution of one NCHW image and one group runs as the weights-left
// product Y[outC x OH*OW] = W[outC x C*KH*KW] * cols[C*KH*KW x OH*OW]: the
// weights are packed once as the row operand (PackQA), and the columns are
// generated per call straight into the uint8 panel layout, four im2col rows
// (one k group) at a time, so the output rows are the NCHW planes of the
// output channels. vpmaddubsw multiplies unsigned by signed bytes, so here
// the vector operand is the activation panel and the broadcast operand the
// weights (vpdpbusd the same). Padding positions hold the activation zero
// point, which represents a real zero and contributes nothing after the
// zero-point correction.
//
// Three ways to build the columns, all giving the same result:
//
//   - 1x1, stride 1, no padding: the im2col rows are the input planes.
//   - Stride 1 (when it costs at most 25% more multiply-adds): the input is
//     copied once into planes padded with the zero point, of width
//     Wp = W+PadLeft+PadRight. The product then computes whole padded output
//     rows (OH x Wp columns); column y*Wp+x of im2col row (c, kh, kw) is
//     byte (y+kh*DilationH)*Wp + x+kw*DilationW of plane c, so every im2col
//     row is a contiguous slice of a padded plane, and the output stage
//     drops the Wp-OW extra columns of each row.
//   - Otherwise: each im2col row is built (qIm2ColRow) into a per-task
//     buffer first.

// qValidRange returns the output positions [lo, hi) of one axis whose input
// coordinate o*stride + off lies in [0, size).
func qValidRange(out, stride, off, size int) (lo, hi int) {
	if off < 0 {
		lo = (-off + stride - 1) / stride
	}
	if size-1-off >= 0 {
		hi = (size-1-off)/stride + 1
	}
	lo, hi = min(lo, out), min(hi, out)
	return lo, max(hi, lo)
}

// qFill sets every byte of d to v.
func qFill(d []byte, v byte) {
	if len(d) < 16 {
		for i := range d {
			d[i] = v
		}
		return
	}
	for i := range d[:8] {
		d[i] = v
	}
	for i := 8; i < len(d); i *= 2 {
		copy(d[i:], d[:i])
	}
}

// qIm2ColRow writes row k = (c*KH + kh)*KW + kw of the column matrix,
// output positions [j0, j1), into dst.
func qIm2ColRow(s *Conv2DShape, x []uint8, zx uint8, k, j0, j1 int, dst []byte) {
	c, kh, kw := k/(s.KH*s.KW), k/s.KW%s.KH, k%s.KW
	oh, ow := s.OutH(), s.OutW()
	plane := x[c*s.H*s.W : (c+1)*s.H*s.W]
	dy, dx := kh*s.DilationH-s.PadTop, kw*s.DilationW-s.PadLeft
	lo, hi := qValidRange(ow, s.StrideW, dx, s.W)
	d := dst[:j1-j0]
	if s.StrideH == 1 && s.StrideW == 1 && ow == s.W {
		// Output and input rows have the same length, so the valid rows
		// are one shifted copy of the plane; then the columns that fall
		// outside the input row are reset to the zero point.
		ylo, yhi := max(0, -dy), min(oh, s.H-dy)
		jv0, jv1 := min(max(j0, ylo*ow), j1), max(min(j1, yhi*ow), j0)
		if jv0 >= jv1 {
			qFill(d, zx)
			return
		}
		qFill(d[:jv0-j0], zx)
		qFill(d[jv1-j0:], zx)
		off := dy*s.W + dx
		a, b := max(jv0, -off), min(jv1, len(plane)-off)
		copy(d[a-j0:b-j0], plane[a+off:b+off])
		if lo == 0 && hi == ow {
			return
		}
		// Reset the columns [0, lo) and [hi, ow) of every row.
		for r0 := jv0 / ow * ow; r0 < jv1; r0 += ow {
			for t, e := max(r0, jv0), min(r0+lo, jv1); t < e; t++ {
				d[t-j0] = zx
			}
			for t, e := max(r0+hi, jv0), min(r0+ow, jv1); t < e; t++ {
				d[t-j0] = zx
			}
		}
		return
	}
	y, x0 := j0/ow, j0%ow
	ih := y*s.StrideH + dy
	for len(d) > 0 {
		seg := min(len(d), ow-x0)
		out := d[:seg]
		d = d[seg:]
		x1 := x0 + seg
		a, b := min(max(x0, lo), x1), max(min(x1, hi), x0)
		if ih < 0 || ih >= s.H || a >= b {
			qFill(out, zx)
		} else {
			qFill(out[:a-x0], zx)
			qFill(out[b-x0:], zx)
			src := plane[ih*s.W : (ih+1)*s.W]
			if s.StrideW == 1 {
				copy(out[a-x0:b-x0], src[a+dx:b+dx])
			} else {
				mid := out[a-x0 : b-x0]
				for t := range mid {
					mid[t] = src[(a+t)*s.StrideW+dx]
				}
			}
		}
		x0 = 0
		ih += s.StrideH
	}
}

func qCheckConv(op string, s *Conv2DShape, x []uint8, zx int32) error {
	if s == nil {
		return fmt.Errorf("kernels: %s: conv shape is nil", op)
	}
	if err := s.Validate(); err != nil {
		return fmt.Errorf("kernels: %s: %w", op, err)
	}
	if len(x) < s.C*s.H*s.W {
		return fmt.Errorf("kernels: %s: input has %d values, need C*H*W = %d*%d*%d = %d", op, len(x), s.C, s.H, s.W, s.C*s.H*s.W)
	}
	if zx < 0 || zx > 255 {
		return fmt.Errorf("kernels: %s: input zero point %d is outside [0, 255]", op, zx)
	}
	return nil
}

// padPlanes copies the C planes of x into sc.pad with PadTop/PadBottom rows
// and PadLeft/PadRight columns of zx around each, plus (KW-1)*DilationW
// bytes after the last plane (read only for discarded columns).
func (sc *QScratch) padPlanes(s *Conv2DShape, x []uint8, zx uint8) []byte {
	wp, hp := s.W+s.PadLeft+s.PadRight, s.H+s.PadTop+s.PadBottom
	plane := hp * wp
	sc.pad = qGrowBytes(sc.pad, s.C*plane+(s.KW-1)*s.DilationW)
	for c := 0; c < s.C; c++ {
		p := sc.pad[c*plane : (c+1)*plane]
		qFill(p[:s.PadTop*wp+s.PadLeft], zx)
		for ih := 0; ih < s.H; ih++ {
			row := p[(s.PadTop+ih)*wp:]
			copy(row[s.PadLeft:s.PadLeft+s.W], x[(c*s.H+ih)*s.W:(c*s.H+ih+1)*s.W])
			// right padding of this row and left padding of the next
			qFill(row[s.PadLeft+s.W:min(len(row), wp+s.PadLeft)], zx)
		}
		qFill(p[(s.PadTop+s.H)*wp:], zx)
	}
	qFill(sc.pad[s.C*plane:], zx)
	return sc.pad
}

// QIm2Col writes the uint8 column matrix of one NCHW image and group:
// C*KH*KW rows of OutH*OutW values (row (c*KH+kh)*KW+kw, column oh*OutW+ow
// holds x[c][oh*StrideH-PadTop+kh*DilationH][ow*StrideW-PadLeft+kw*DilationW]),
// with the zero point zx at padding positions. cols needs s.ColsSize()
// values. QGemmA of packed weights and these columns equals QConv2D.
func QIm2Col(s *Conv2DShape, x []uint8, zx uint8, cols []uint8) error {
	const op = "QIm2Col"
	if err := qCheckConv(op, s, x, int32(zx)); err != nil {
		return err
	}
	if len(cols) < s.ColsSize() {
		return fmt.Errorf("kernels: %s: cols has %d values, need %d", op, len(cols), s.ColsSize())
	}
	n := s.OutH() * s.OutW()
	for k := 0; k < s.C*s.KH*s.KW; k++ {
		qIm2ColRow(s, x, zx, k, 0, n, cols[k*n:(k+1)*n])
	}
	return nil
}

// QConv2D computes the int8 convolution of one NCHW image and one group:
// out = (W - zw) conv (x - zx) for the uint8 image x (C x H x W), its zero
// point zx and the weights pa = PackQA(outC, C*KH*KW, w, ...) with zero
// points zw (nil, per tensor, or one per output channel), then applies the
// output stage with one row per output channel: set out.LDC to OutH*OutW
// (or leave it 0) for NCHW planes. Channel parameters of out are indexed by
// output channel. It takes its scratch from an internal pool; use
// QScratch.QConv2D to supply it.
func QConv2D(s *Conv2DShape, x []uint8, zx int32, pa *QPackedA, zw []int32, out *QOutput, threads int) error {
	sc := qScratchPool.Get().(*QScratch)
	defer qScratchPool.Put(sc)
	return sc.QConv2D(s, x, zx, pa, zw, out, threads)
}

// QConv2D is the package-level QConv2D with the caller's scratch.
func (sc *QScratch) QConv2D(s *Conv2DShape, x []uint8, zx int32, pa *QPackedA, zw []int32, out *QOutput, threads int) error {
	return sc.qconv2D(qDefault, s, x, zx, pa, zw, out, threads)
}

func (sc *QScratch) qconv2D(kern *qKernels, s *Conv2DShape, x []uint8, zx int32, pa *QPackedA, zw []int32, out *QOutput, threads int) error {
	const op = "QConv2D"
	if err := qCheckConv(op, s, x, zx); err != nil {
		return err
	}
	n := s.OutH() * s.OutW()
	if err := qCheckA(op, pa, zw, n, zx); err != nil {
		return err
	}
	k := s.C * s.KH * s.KW
	if pa.K != k {
		return fmt.Errorf("kernels: %s: packed weights have K=%d, the convolution needs C*KH*KW = %d*%d*%d = %d",
			op, pa.K, s.C, s.KH, s.KW, k)
	}
	if err := out.resolve(op, pa.M, n, true, &sc.ep); err != nil {
		return err
	}
	defer sc.release()
	sc.kern = kern
	direct := s.KH == 1 && s.KW == 1 && s.StrideH == 1 && s.StrideW == 1 &&
		s.PadTop == 0 && s.PadLeft == 0 && s.PadBottom == 0 && s.PadRight == 0
	sc.src = qPanelSrc{conv: s, x: x, zx: uint8(zx), k: k, direct: direct}
	ow := s.OutW()
	wp := s.W + s.PadLeft + s.PadRight
	if !direct && s.StrideH == 1 && s.StrideW == 1 && 4*(wp-ow) <= ow {
		// Stride 1: copy the input into zero-point padded planes once; every
		// im2col row of a padded output row (wp columns, the last wp-ow of
		// them discarded by the output stage) is then a contiguous slice of
		// a plane, read directly by the packing.
		sc.src.pad = sc.padPlanes(s, x, uint8(zx))
		nw := s.OutH() * wp
		sc.packPanels(pa.kp, nw, threads)
		sc.runA(pa, zw, nw, zx, wp, ow, threads)
		return nil
	}
	sc.packPanels(pa.kp, n, threads)
	sc.runA(pa, zw, n, zx, 0, 0, threads)
	return nil
}

// QDepthwiseConv2D computes a depthwise (group == C, one output channel per
// input channel) int8 convolution of one NCHW image directly: output
// channel c is sum (x[c] - zx)(w[c] - zw[c]) over the KH x KW window, then
// the output stage with one row per channel (channel parameters of out
// indexed by channel). w holds C*KH*KW int8 weights; zw is nil, per tensor
// or one per channel. Any int8 weight is exact. It takes its scratch from
// an internal pool; use QScratch.QDepthwiseConv2D to supply it.
func QDepthwiseConv2D(s *Conv2DShape, x []uint8, zx int32, w []int8, zw []int32, out *QOutput, threads int) error {
	sc := qScratchPool.Get().(*QScratch)
	defer qScratchPool.Put(sc)
	return sc.QDepthwiseConv2D(s, x, zx, w, zw, out, threads)
}

// QDepthwiseConv2D is the package-level QDepthwiseConv2D with the caller's
// scratch.
func (sc *QScratch) QDepthwiseConv2D(s *Conv2DShape, x []uint8, zx int32, w []int8, zw []int32, out *QOutput, threads int) error {
	return sc.qdepthwise(qDefault, s, x, zx, w, zw, out, threads)
}

func (sc *QScratch) qdepthwise(kern *qKernels, s *Conv2DShape, x []uint8, zx int32, w []int8, zw []int32, out *QOutput, threads int) error {
	const op = "QDepthwiseConv2D"
	if err := qCheckConv(op, s, x, zx); err != nil {
		return err
	}
	taps := s.KH * s.KW
	if len(w) < s.C*taps {
		return fmt.Errorf("kernels: %s: weights have %d values, need C*KH*KW = %d", op, len(w), s.C*taps)
	}
	if len(zw) != 0 && len(zw) != 1 && len(zw) != s.C {
		return fmt.Errorf("kernels: %s: weight zero points must have 1 or C=%d values, got %d", op, s.C, len(zw))
	}
	for _, z := range zw {
		if z < -128 || z > 127 {
			return fmt.Errorf("kernels: %s: weight zero point %d is outside [-128, 127]", op, z)
		}
	}
	oh, ow := s.OutH(), s.OutW()
	n := oh * ow
	if err := out.resolve(op, s.C, n, true, &sc.ep); err != nil {
		return err
	}
	defer sc.release()
	sc.kern = kern
	sc.r = qGrowInt32(sc.r, s.C)
	for c := range sc.r {
		sc.r[c] = 0
		if sc.ep.biasI32 != nil {
			sc.r[c] = sc.ep.biasI32[c]
		}
	}
	sc.c = qGrowInt32(sc.c, n)
	clear(sc.c)
	sc.q = qProblem{m: s.C, n: n, r: sc.r, c: sc.c}
	sc.src = qPanelSrc{conv: s, x: x, zx: uint8(zx)}
	sc.dw, sc.dwZ = w, zw
	tasks := sc.taskCount(threads, int64(s.C)*int64(n)*int64(taps), 32<<10, s.C)
	sc.taskBuf(tasks, taps+s.H*qDepthwiseRowLen(s)*s.StrideW+ow)
	sc.parallelTasks(qTaskDepthwise, tasks)
	return nil
}

// qDepthwiseRowLen returns the length of one zero-padded input row of a
// depthwise convolution, split into StrideW phases of equal length.
func qDepthwiseRowLen(s *Conv2DShape) (phase int) {
	wp := max(s.PadLeft+s.W+s.PadRight, (s.OutW()-1)*s.StrideW+(s.KW-1)*s.DilationW+1)
	return qCeilDiv(wp, s.StrideW)
}

// depthwiseTask computes the channels of task t.
func (sc *QScratch) depthwiseTask(t int) {
	s, zx := sc.src.conv, int32(sc.src.zx)
	taps := s.KH * s.KW
	oh, ow := s.OutH(), s.OutW()
	rowLen := qDepthwiseRowLen(s) * s.StrideW
	buf := sc.task[t]
	wz := buf[:taps]
	xs := buf[taps : taps+s.H*rowLen]
	acc := buf[taps+len(xs):]
	rowsPerBand := max(1, len(acc)/rowLen)
	for c := t * s.C / sc.tasks; c < (t+1)*s.C/sc.tasks; c++ {
		z := int32(0)
		switch {
		case len(sc.dwZ) == 1:
			z = sc.dwZ[0]
		case len(sc.dwZ) > 1:
			z = sc.dwZ[c]
		}
		for i, v := range sc.dw[c*taps : (c+1)*taps] {
			wz[i] = int32(v) - z
		}
		plane := sc.src.x[c*s.H*s.W : (c+1)*s.H*s.W]
		qDepthwisePlane(sc.kern, s, plane, zx, xs)
		for y0 := 0; y0 < oh; y0 += rowsPerBand {
			y1 := min(oh, y0+rowsPerBand)
			a := acc[:(y1-y0)*ow]
			qDepthwiseBand(sc.kern, s, xs, wz, y0, y1, a)
			sc.stageBlock(c, c+1, y0*ow, y1*ow, a, len(a))
		}
	}
}

// qDepthwisePlane converts one input plane to int32 (x - zx) in xs: H rows
// of len(xs)/H values, each zero padded (PadLeft zeros first) and split into
// StrideW phases (phase p holds padded columns p, p+StrideW, ...), so that
// every tap of the window is one contiguous multiply-add.
func qDepthwisePlane(kern *qKernels, s *Conv2DShape, plane []uint8, zx int32, xs []int32) {
	sw := s.StrideW
	rowLen := len(xs) / s.H
	phase := rowLen / sw
	for ih := 0; ih < s.H; ih++ {
		src := plane[ih*s.W : (ih+1)*s.W]
		row := xs[ih*rowLen : (ih+1)*rowLen]
		if sw == 1 {
			clear(row[:s.PadLeft])
			kern.widenU8(src, zx, row[s.PadLeft:s.PadLeft+s.W])
			clear(row[s.PadLeft+s.W:])
			continue
		}
		clear(row)
		for i, v := range src {
			j := i + s.PadLeft
			row[(j%sw)*phase+j/sw] = int32(v) - zx
		}
	}
}

// qDepthwiseBand computes output rows [y0, y1) of one channel into acc
// (ow values per row) from the converted plane xs. With StrideH = 1 the
// band is accumulated with the row stride of xs, so that each tap is one
// multiply-add over the whole band, and then compacted.
func qDepthwiseBand(kern *qKernels, s *Conv2DShape, xs, wz []int32, y0, y1 int, acc []int32) {
	ow, sw := s.OutW(), s.StrideW
	rowLen := len(xs) / s.H
	phase := rowLen / sw
	if s.StrideH != 1 {
		clear(acc[:(y1-y0)*ow])
		for y := y0; y < y1; y++ {
			out := acc[(y-y0)*ow : (y-y0+1)*ow]
			for kh := 0; kh < s.KH; kh++ {
				ih := y*s.StrideH - s.PadTop + kh*s.DilationH
				if ih < 0 || ih >= s.H {
					continue
				}
				row := xs[ih*rowLen : (ih+1)*rowLen]
				for kw := 0; kw < s.KW; kw++ {
					if wv := wz[kh*s.KW+kw]; wv != 0 {
						o := kw * s.DilationW
						start := (o%sw)*phase + o/sw
						kern.axpyI32(wv, row[start:start+ow], out)
					}
				}
			}
		}
		return
	}
	band := acc[:(y1-y0)*rowLen]
	clear(band)
	for kh := 0; kh < s.KH; kh++ {
		dy := kh*s.DilationH - s.PadTop // ih = y + dy
		ya, yb := max(y0, -dy), min(y1, s.H-dy)
		if ya >= yb {
			continue
		}
		n := (yb-ya-1)*rowLen + ow
		out := band[(ya-y0)*rowLen : (ya-y0)*rowLen+n]
		for kw := 0; kw < s.KW; kw++ {
			if wv := wz[kh*s.KW+kw]; wv != 0 {
				o := kw * s.DilationW
				start := (ya+dy)*rowLen + (o%sw)*phase + o/sw
				kern.axpyI32(wv, xs[start:start+n], out)
			}
		}
	}
	for y := 1; y < y1-y0; y++ {
		copy(acc[y*ow:(y+1)*ow], band[y*rowLen:y*rowLen+ow])
	}
}

// qWidenU8Generic writes int32(x[i]) - zx to y[i] for i < len(y).
func qWidenU8Generic(x []uint8, zx int32, y []int32) {
	x = x[:len(y)]
	for i, v := range x {
		y[i] = int32(v) - zx
	}
}

// qAxpyI32Generic computes y[i] += w*x[i] (wrapping int32).
func qAxpyI32Generic(w int32, x, y []int32) {
	x = x[:len(y)]
	for i := range y {
		y[i] += w * x[i]
	}
}
