// Package onnxpb holds the Go bindings of the ONNX protobuf schema
// (onnx.proto, generated with protoc-gen-go). The proto package is renamed
// to compress.onnxpb so that these types can be linked next to any other
// ONNX binding; the wire format is unchanged.
//
// onnx.pb.go is generated; do not edit it. To regenerate it, install protoc
// (Debian: protobuf-compiler) and protoc-gen-go at the version of
// google.golang.org/protobuf in go.mod:
//
//	go install google.golang.org/protobuf/cmd/protoc-gen-go@v1.36.12
//	go generate ./importer/onnxpb/
//
// Most code should use package importer, which converts between these
// messages and runtime.Graph.
package onnxpb

//go:generate protoc --go_out=. --go_opt=paths=source_relative onnx.proto
