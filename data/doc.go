// Package data reads labelled data sets and turns them into batches a model
// can run on.
//
// # Data sets
//
// A Dataset is a finite, indexable collection of examples, each a fixed-shape
// array of float32 values (pixels as stored, 0-255 for MNIST) and an integer
// class label:
//
//	type Dataset interface {
//		Len() int
//		Shape() []int
//		NumClasses() int
//		Example(i int, x []float32) (label int, err error)
//	}
//
// Example writes into a caller-owned slice, so loading a batch allocates
// nothing. Implementations must allow concurrent calls to Example (a
// prefetching loader reads several examples at once). Richer behaviour comes
// through optional interfaces a data set may also implement, such as Namer.
//
// InMemory is the data set every in-memory format decodes to. LoadMNIST reads
// a folder of MNIST-format idx files (MNIST, Fashion-MNIST, plain or gzipped):
//
//	ds, err := data.LoadMNIST("/usr/share/datasets/fashion-mnist", data.SplitTest)
//
// ParseIDX decodes a single idx file of any element type and rank.
//
// # Batches
//
// A Loader cuts a data set into batches shaped for a model input: every
// example is reshaped to the model's per-example shape (same number of
// values) and preprocessed:
//
//	x = (x*Scale - Mean[c]) / Std[c]
//
// where c is the index along axis 1 of the batch tensor (the channel of an
// NCHW image, the feature of a [B, F] matrix) when Mean or Std hold several
// values, or the same for every value when they hold one. With no
// preprocessing, values are fed exactly as stored.
//
//	ld, err := data.NewLoader(ds, data.LoaderOptions{BatchSize: 64, Shape: []int{1, 28, 28}})
//	for i := range ld.NumBatches() {
//		b, err := ld.Batch(i, nil) // b.X has shape [64 1 28 28], b.Labels the classes
//		...
//	}
//
// Batch(i) is random access and safe for concurrent use on distinct batch
// buffers; a seeded Shuffle gives the same order on every run.
package data
