// Package importer reads ONNX models into runtime.Graph and writes graphs
// back to ONNX. It owns everything that knows about the ONNX file format;
// the runtime never sees a protobuf.
//
// # Loading
//
//	g, err := importer.Load("model.onnx")
//
// Load reads the file and any external data files it refers to (paths
// relative to the model's directory; a location that escapes the directory,
// symbolic links included, is refused). LoadBytes parses a model held in
// memory, and FromModel converts an already decoded onnxpb.ModelProto.
//
// Accepted are ONNX IR versions 3 to 11 with default-domain opsets 7 to 21.
// Initializers and Constant nodes become frozen parameters (Param.Trainable
// is false; the trainer decides what to unfreeze). Element types the runtime
// lacks are converted where nothing is lost for inference: DOUBLE, FLOAT16
// and BFLOAT16 become float32; INT16, UINT16 and UINT32 widen to int32 or
// int64. Strings, complex numbers, float8 and 4-bit types are refused.
//
// Every declared shape is checked against the data before anything is
// allocated, so truncated files, random bytes, negative or absurd
// dimensions, tensors shorter than their shape, cycles, values produced
// twice and inputs nobody produces all give an error naming the place,
// never a panic or a huge allocation.
//
// A model using ops the runtime does not implement is refused with one
// error that lists every such node with its op, name, domain and opset.
// LoadOptions.AllowUnsupported keeps such models for tools that only
// inspect or rewrite graphs.
//
// # Canonical form
//
// ONNX moved many op arguments from attributes to inputs over its opsets.
// The importer rewrites every node to the form of opset 18 (CanonicalOpset),
// so each kernel implements one version:
//
//   - Unsqueeze, Squeeze, ReduceSum (before opset 13) and ReduceMean,
//     ReduceMax, ReduceMin, ReduceProd, ReduceL1, ReduceL2, ReduceLogSum,
//     ReduceLogSumExp, ReduceSumSquare (before 18): axes attribute -> input 1.
//   - Split: split attribute -> input 1 (before 13); without split sizes,
//     num_outputs is set to the number of outputs (before 18).
//   - Pad (before 11): pads -> input 1, value -> input 2.
//   - Clip (before 11): min, max -> inputs 1 and 2.
//   - Slice (before 10): starts, ends, axes -> inputs 1 to 3.
//   - TopK (before 10): k -> input 1.
//   - Dropout: ratio -> input 1 (before 12); is_test dropped.
//   - BatchNormalization: spatial, is_test, consumed_inputs dropped
//     (spatial=0 is refused); training outputs (running and saved mean and
//     variance) are dropped when nothing reads them.
//   - Resize-10: an empty roi input is inserted and the Resize-10 coordinate
//     mapping (asymmetric, nearest_mode floor) made explicit.
//   - Softmax, LogSoftmax, Hardmax (before 13) normalised rows of the input
//     flattened to 2-D at axis. When the input's rank is known and axis is
//     its last dimension this equals the opset-13 form with axis -1;
//     otherwise the node becomes Flatten(axis) -> op(axis=-1) ->
//     Reshape(Shape(input)).
//
// Values moved from attributes to inputs become frozen parameters named
// "<node>_<attribute>" (made unique if needed). Nodes without a name are
// named "<OpType>_<index>", duplicate node names get a numeric suffix.
// Conv, Gemm and all other ops keep their attributes (Conv's auto_pad
// included: the kernel handles it).
//
// # Saving
//
//	err := importer.Save(g, "out.onnx")
//
// Save writes through a temporary file and a rename, so a failed save leaves
// no partial file. Marshal returns the bytes and ToModel the ModelProto.
// Graphs are written at opset ExportOpset(g) (18, or the imported opset when
// newer, at most 21) with the matching IR version, parameters as
// initializers with raw_data, and the producer recorded as "compress" (the
// original producer is kept in metadata_props under SourceProducerKey).
// Models beyond the 2 GiB protobuf limit are refused (external data export
// is not supported yet).
//
// # Tensors
//
// TensorFromProto and TensorToProto convert single tensors;
// ReadTensorFile, DecodeTensor, EncodeTensor and WriteTensorFile handle the
// serialized TensorProto `.pb` files of ONNX test data sets.
//
// The generated protobuf bindings live in the subpackage onnxpb.
package importer
