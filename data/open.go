package data

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
)

// Open opens the split of the data set at path, recognising its format.
// Recognised so far: a folder of MNIST-format idx files (see LoadMNIST).
func Open(path string, split Split) (Dataset, error) {
	st, err := os.Stat(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("data set %s does not exist", path)
		}
		return nil, err
	}
	if !st.IsDir() {
		return nil, fmt.Errorf("%s is a file; compress reads data sets from a folder of MNIST-format idx files (train-images-idx3-ubyte[.gz], t10k-labels-idx1-ubyte[.gz], ...)", path)
	}
	return LoadMNIST(path, split)
}
