// Package quantize converts float ONNX graphs to int8: static
// post-training quantisation with calibration on data (MinMax, Percentile,
// Entropy/KL, MSE) exported in QDQ format (QuantizeLinear/DequantizeLinear
// pairs around Conv, Gemm and MatMul, which the runtime fuses into its int8
// kernels and onnxruntime runs as they are) or, through ToQOperator, in QOperator
// format (QLinearConv, QLinearMatMul, com.microsoft QGemm), dynamic quantisation
// (DynamicQuantizeLinear + MatMulInteger/ConvInteger, onnxruntime's
// convention), per-layer error (SQNR) and a mixed-precision fallback that
// keeps the layers hurting accuracy most in float32.
package quantize
