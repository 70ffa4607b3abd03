// Package bench holds the whole-model benchmarks of compress against
// onnxruntime (files with the `ort` build tag, which need cgo and the
// onnxruntime library) and compress-only Go benchmarks for profiling.
//
// Run bench/run.sh to measure and record bench/RESULTS.md; see
// bench/README.md.
package bench
