// Package crosscheck checks compress's native runtime against references:
// the outputs PyTorch computed for the fixtures in testdata/models (made by
// testdata/make_fixtures.py), and, behind the `ort` build tag, onnxruntime
// itself, loaded through cgo from the onnxruntime-node package.
//
// The default build is pure Go. Its test (fixtures_test.go) runs every
// fixture through compress and compares with the stored PyTorch outputs:
//
//	go test ./crosscheck/
//
// The onnxruntime cross-check needs cgo and the onnxruntime shared library
// (npm install --ignore-scripts onnxruntime-node@1.30.0 in the repository
// root, or ONNXRUNTIME_LIB=/path/to/libonnxruntime.so.1):
//
//	go test -tags ort ./crosscheck/
//
// It compares compress with onnxruntime on the fixtures and on
// ../shared/models/mnist-8 (when present), with the stored and with seeded
// random inputs at several batch sizes, and checks that a model saved by
// compress (importer.Load then importer.Save, as `compress convert` does)
// loads in onnxruntime and gives the same outputs. Without the library the
// tests skip, unless COMPRESS_REQUIRE_ORT=1 (for CI) makes them fail.
package crosscheck
