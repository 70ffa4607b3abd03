package kernels

import (
	"math/rand/v2"
	"testing"
)

// benchMaxPool2x2U8 pools planes planes of rows x ow outputs (LeNet-5's
// pool1 at batch 32: 192 planes of 28x28 -> 14x14).
func benchMaxPool2x2U8(b *testing.B, planes, rows, ow int, f func(y, x []uint8, rows, ow, iw int)) {
	iw := 2 * ow
	r := rand.New(rand.NewPCG(1, 2))
	x := make([]uint8, planes*2*rows*iw)
	for i := range x {
		x[i] = uint8(r.IntN(256))
	}
	y := make([]uint8, planes*rows*ow)
	b.SetBytes(int64(len(x)))
	for b.Loop() {
		for p := 0; p < planes; p++ {
			f(y[p*rows*ow:(p+1)*rows*ow], x[p*2*rows*iw:(p+1)*2*rows*iw], rows, ow, iw)
		}
	}
}

func branchy(y, x []uint8, rows, ow, iw int) {
	for r := 0; r < rows; r++ {
		a, b := x[2*r*iw:][:2*ow], x[(2*r+1)*iw:][:2*ow]
		yr := y[r*ow : (r+1)*ow]
		for i := range yr {
			yr[i] = max(a[2*i], a[2*i+1], b[2*i], b[2*i+1])
		}
	}
}

func BenchmarkMaxPool2x2U8Pool1(b *testing.B) {
	benchMaxPool2x2U8(b, 192, 14, 14, MaxPool2x2Int[uint8])
}
func BenchmarkMaxPool2x2U8Pool2(b *testing.B)        { benchMaxPool2x2U8(b, 512, 5, 5, MaxPool2x2Int[uint8]) }
func BenchmarkMaxPool2x2U8Pool1Branchy(b *testing.B) { benchMaxPool2x2U8(b, 192, 14, 14, branchy) }
func BenchmarkMaxPool2x2U8Pool2Branchy(b *testing.B) { benchMaxPool2x2U8(b, 512, 5, 5, branchy) }
