// Package conformance runs the official ONNX backend node tests (Debian's
// libonnx-testdata package) through the importer and the runtime.
//
// Every test whose ops the runtime supports must pass, within the ONNX
// backend runner's tolerances (rtol 1e-3, atol 1e-7), unless it is listed in
// the exclusion table of node_test.go with the reason beside it. Tests that
// use ops compress does not implement are counted and reported, not run.
package conformance
