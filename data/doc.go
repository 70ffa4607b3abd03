// Package data reads labelled data sets and turns them into batches a model
// can run on.
//
// # Data sets
//
// A Dataset is a finite, indexable collection of examples, each a fixed-shape
// array of float32 values (pixels as stored, 0-255 for MNIST and images) and
// an integer class label:
//
//	type Dataset interface {
//		Len() int
//		Shape() []int
//		NumClasses() int
//		Example(i int, x []float32) (label int, err error)
//	}
//
// Example writes into a caller-owned slice, so loading a batch allocates
// nothing for in-memory data. Implementations must allow concurrent calls to
// Example (a prefetching loader reads several examples at once). Richer
// behaviour comes through optional interfaces a data set may also
// implement: Namer (a description for messages), ClassNamer (class names)
// and Targeter (float regression targets; see HasTargets).
//
// # Formats
//
// Open (or OpenWith, with Options) recognises the format of a path and
// opens one split of it (train, test or all):
//
//   - a folder of MNIST-format idx files, plain or gzipped (LoadMNIST);
//   - CSV text, plain or gzipped (ParseCSV, LoadCSV): a label column
//     (Options.LabelColumn, the last by default) and float32 feature
//     columns, a detected header row, class indices or class names, or
//     float targets for regression (Options.Task). scikit-learn's bundled
//     files (digits.csv.gz, iris.csv, ...) are read as they are;
//   - NumPy arrays (LoadNPZ, LoadNPYDir, NewArrays): x_train, y_train,
//     x_test, y_test, or x and y, in an .npz archive or a folder of .npy
//     files;
//   - image folders (LoadImageFolder): one sub-folder of PNG/JPEG images
//     per class, optionally below train/ and test/, decoded lazily and
//     resized (bilinear) and converted to the Options' channels and size,
//     e.g. the model input's (Options.WithInputShape).
//
// A data set stored in one part (a single file, a folder of class folders)
// is its own train and "all" split; its test split is a companion file
// (NAME_test.csv next to NAME.csv, or mnist_test.csv next to
// mnist_train.csv) or else an error wrapping ErrNoSplit. See OpenWith.
//
//	ds, err := data.Open("/usr/share/datasets/fashion-mnist", data.SplitTest)
//	ds, err := data.OpenWith("houses.csv", data.SplitTrain, data.Options{Task: data.TaskRegression, LabelColumn: "price"})
//	ds, err := data.OpenWith("photos", data.SplitTrain, data.Options{}.WithInputShape([]int{3, 224, 224}))
//
// InMemory is the data set every in-memory format decodes to; ReadIDXFile
// decodes a single idx file of any element type and rank.
//
// # Batches
//
// A Loader cuts a data set into batches shaped for a model input: every
// example is reshaped to the model's per-example shape (same number of
// values), optionally augmented, and preprocessed:
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
// buffers; a seeded Shuffle gives the same order on every run. A batch of a
// data set with targets also carries them (Batch.Targets, [B K]).
//
// # Augmentation
//
// LoaderOptions.Augment randomly rotates, flips, crops (random resized crop)
// and translates image examples before preprocessing. The draws of an
// example depend only on (Seed, Epoch, the example's index in the
// underlying data set), never on batch order or scheduling, so a training
// run is reproducible bit for bit; Loader.WithEpoch gives the draws of
// another epoch.
package data
