package kernels

// kernelGeneric is the portable micro-kernel. It computes the mr x nr tile
//
//	t = alpha * sum_p a[p*mr+i] * b[p*nr+j]
//	if beta != 0: t += beta * c[i*ldc+j]
//	t += biasRow[i] (if non-nil); t += biasCol[j] (if non-nil)
//	if relu: t = max(t, 0)
//
// and stores t into c. a holds k*mr packed values, b holds k*nr. It is the
// fallback on CPUs without AVX2/FMA and the twin the assembly kernel is
// tested against; it reads the same packed layout.
func kernelGeneric(k int, a, b, c []float32, ldc int, alpha, beta float32, biasRow, biasCol []float32, relu bool) {
	a = a[:k*mr]
	b = b[:k*nr]
	_ = c[(mr-1)*ldc+nr-1]
	for r := 0; r < mr; r++ {
		var c0, c1, c2, c3, c4, c5, c6, c7, c8, c9, c10, c11, c12, c13, c14, c15 float32
		ap := a[r:]
		for p := 0; p < k; p++ {
			av := ap[p*mr]
			bp := b[p*nr : p*nr+nr : p*nr+nr]
			c0 += av * bp[0]
			c1 += av * bp[1]
			c2 += av * bp[2]
			c3 += av * bp[3]
			c4 += av * bp[4]
			c5 += av * bp[5]
			c6 += av * bp[6]
			c7 += av * bp[7]
			c8 += av * bp[8]
			c9 += av * bp[9]
			c10 += av * bp[10]
			c11 += av * bp[11]
			c12 += av * bp[12]
			c13 += av * bp[13]
			c14 += av * bp[14]
			c15 += av * bp[15]
		}
		acc := [nr]float32{c0, c1, c2, c3, c4, c5, c6, c7, c8, c9, c10, c11, c12, c13, c14, c15}
		row := c[r*ldc : r*ldc+nr : r*ldc+nr]
		for j, v := range acc {
			v *= alpha
			if beta != 0 {
				v += beta * row[j]
			}
			if biasRow != nil {
				v += biasRow[r]
			}
			if biasCol != nil {
				v += biasCol[j]
			}
			if relu && v < 0 {
				v = 0
			}
			row[j] = v
		}
	}
}

// axpyGeneric computes y[i] += a*x[i] for i < len(y).
func axpyGeneric(a float32, x, y []float32) {
	x = x[:len(y)]
	for i := range y {
		y[i] += a * x[i]
	}
}
