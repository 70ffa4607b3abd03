package data

import (
	"bufio"
	"compress/gzip"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"os"

	rt "github.com/compressml/compress/runtime"
)

// idx element type codes (the third byte of the magic number).
const (
	idxUint8   = 0x08
	idxInt8    = 0x09
	idxInt16   = 0x0B
	idxInt32   = 0x0C
	idxFloat32 = 0x0D
	idxFloat64 = 0x0E
)

// maxIDXRank bounds the number of dimensions an idx file may declare.
const maxIDXRank = 16

var idxTypes = map[byte]struct {
	name string
	size int
	dt   rt.DType
}{
	idxUint8:   {"unsigned byte", 1, rt.Uint8},
	idxInt8:    {"signed byte", 1, rt.Int8},
	idxInt16:   {"short", 2, rt.Int32},
	idxInt32:   {"int", 4, rt.Int32},
	idxFloat32: {"float", 4, rt.Float32},
	idxFloat64: {"double", 8, rt.Float32},
}

// ReadIDX decodes one idx file (the format of the MNIST files, see
// http://yann.lecun.com/exdb/mnist/) from r, which must not be compressed.
// Unsigned bytes decode to a Uint8 tensor, signed bytes to Int8, shorts and
// ints to Int32, floats and doubles to Float32. The header is validated
// (magic number, element type, rank, dimensions) and the data must be exactly
// as long as the dimensions say: a truncated file or trailing bytes are
// errors. Nothing larger than the data actually present is allocated.
func ReadIDX(r io.Reader) (*rt.Tensor, error) {
	var hdr [4]byte
	if n, err := io.ReadFull(r, hdr[:]); err != nil {
		return nil, fmt.Errorf("idx header: file is %d bytes long, too short for the 4-byte magic number", n)
	}
	magic := binary.BigEndian.Uint32(hdr[:])
	if hdr[0] == 0x1f && hdr[1] == 0x8b {
		return nil, errors.New("idx header: the data is gzip-compressed; decompress it first (ReadIDXFile does)")
	}
	if hdr[0] != 0 || hdr[1] != 0 {
		return nil, fmt.Errorf("idx header: bad magic number 0x%08X; an idx file starts with two zero bytes, a type code and the rank (e.g. 0x00000803 for MNIST images)", magic)
	}
	typ, ok := idxTypes[hdr[2]]
	if !ok {
		return nil, fmt.Errorf("idx header: unknown element type code 0x%02X in magic number 0x%08X (known: 0x08 ubyte, 0x09 byte, 0x0B short, 0x0C int, 0x0D float, 0x0E double)", hdr[2], magic)
	}
	rank := int(hdr[3])
	if rank < 1 || rank > maxIDXRank {
		return nil, fmt.Errorf("idx header: rank %d in magic number 0x%08X is outside 1..%d", rank, magic, maxIDXRank)
	}
	dimBytes := make([]byte, 4*rank)
	if n, err := io.ReadFull(r, dimBytes); err != nil {
		return nil, fmt.Errorf("idx header: truncated: %d dimensions declared but only %d of their %d bytes present", rank, n, len(dimBytes))
	}
	shape := make([]int, rank)
	for i := range shape {
		d := binary.BigEndian.Uint32(dimBytes[4*i:])
		if d > math.MaxInt32 {
			return nil, fmt.Errorf("idx header: dimension %d is %d, which is absurd", i, d)
		}
		shape[i] = int(d)
	}
	if err := rt.CheckShape(shape); err != nil {
		return nil, fmt.Errorf("idx header: %w", err)
	}
	count := rt.NumElements(shape)
	need := int64(count) * int64(typ.size)
	// ReadAll grows its buffer as data arrives, so a header that lies about
	// the size cannot make us allocate more than the file holds.
	raw, err := io.ReadAll(io.LimitReader(r, need+1))
	if err != nil {
		return nil, fmt.Errorf("idx data: reading after %d bytes: %w (is the file truncated?)", len(raw), err)
	}
	if int64(len(raw)) < need {
		return nil, fmt.Errorf("idx data: file is truncated: the header declares %v %ss (%d bytes) but only %d bytes follow it", shape, typ.name, need, len(raw))
	}
	if int64(len(raw)) > need {
		return nil, fmt.Errorf("idx data: unexpected bytes after the %d bytes of data the header (%v %ss) declares; the file is corrupt or not an idx file", need, shape, typ.name)
	}
	t := &rt.Tensor{DType: typ.dt, Shape: shape}
	switch hdr[2] {
	case idxUint8:
		t.U8 = raw
	case idxInt8:
		t.I8 = make([]int8, count)
		for i, b := range raw {
			t.I8[i] = int8(b)
		}
	case idxInt16:
		t.I32 = make([]int32, count)
		for i := range t.I32 {
			t.I32[i] = int32(int16(binary.BigEndian.Uint16(raw[2*i:])))
		}
	case idxInt32:
		t.I32 = make([]int32, count)
		for i := range t.I32 {
			t.I32[i] = int32(binary.BigEndian.Uint32(raw[4*i:]))
		}
	case idxFloat32:
		t.F32 = make([]float32, count)
		for i := range t.F32 {
			t.F32[i] = math.Float32frombits(binary.BigEndian.Uint32(raw[4*i:]))
		}
	case idxFloat64:
		t.F32 = make([]float32, count)
		for i := range t.F32 {
			t.F32[i] = float32(math.Float64frombits(binary.BigEndian.Uint64(raw[8*i:])))
		}
	}
	return t, nil
}

// ReadIDXFile reads an idx file, decompressing it when it is gzipped
// (recognised by its content, whatever its name). Errors name the file.
func ReadIDXFile(path string) (*rt.Tensor, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	br := bufio.NewReaderSize(f, 1<<16)
	var r io.Reader = br
	if magic, _ := br.Peek(2); len(magic) == 2 && magic[0] == 0x1f && magic[1] == 0x8b {
		zr, err := gzip.NewReader(br)
		if err != nil {
			return nil, fmt.Errorf("%s: bad gzip stream: %w", path, err)
		}
		defer zr.Close()
		r = zr
	}
	t, err := ReadIDX(r)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return t, nil
}
