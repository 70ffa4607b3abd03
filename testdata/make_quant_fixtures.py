#!/usr/bin/python3
"""Regenerate the quantized ONNX fixtures under testdata/models/quant_*/.

Run with Debian's Python (ONNX 1.12 and numpy; onnxruntime is not needed):

    /usr/bin/python3 testdata/make_quant_fixtures.py

The models are built by hand with onnx.helper the way onnxruntime's
quantizer (onnxruntime.quantization) writes them, so that compress is
tested on models "quantized by others":

  * activations uint8, asymmetric, parameters from the min/max of the
    tensor over the calibration input (range extended to include 0):
    scale = (max - min) / 255, zero_point = round(-min / scale);
  * weights int8, symmetric, per output channel (scale = max|w| / 127,
    zero point 0, range [-127, 127]);
  * biases int32 with scale x_scale * w_scale (per channel) and zero point 0;
  * tensor names "<name>_quantized", "<name>_scale", "<name>_zero_point".

Models (opset 13; com.microsoft opset 1 where used):

  quant_qoperator_cnn   QOperator format: QuantizeLinear at the input,
                        QLinearConv (3x3, depthwise, 1x1), MaxPool on
                        uint8, com.microsoft QLinearAdd, QLinearLeakyRelu,
                        QLinearSigmoid, QLinearMul, QLinearConcat,
                        QLinearAveragePool, QLinearGlobalAveragePool,
                        Flatten on uint8, com.microsoft QGemm, QLinearMatMul,
                        DequantizeLinear at the outputs.
  quant_qdq_cnn         QDQ format: QuantizeLinear/DequantizeLinear around
                        float Conv (+Relu), MaxPool, depthwise Conv, Add,
                        GlobalAveragePool, Flatten, Gemm, MatMul + Add.
  quant_dynamic         dynamic quantization (quantize_dynamic's QOperator
                        form): DynamicQuantizeLinear, ConvInteger and
                        MatMulInteger followed by Cast, Mul (scales) and Add
                        (bias).

Each directory holds model.onnx and test_data_set_0/ with input_0.pb and
output_K.pb (serialized TensorProtos) in the ONNX backend-test layout; the
batch axis is dynamic ("batch"), the stored input has batch 2.

Reference outputs are computed with numpy from the operator definitions.
Integer products are exact (int64). For QOperator and dynamic models every
float step is done in float32 in the order onnxruntime (MLAS) does it
(requantisation: float32(acc) * float32(scale_a*scale_w/scale_y), round half
to even, saturate; QLinearAdd: (s_a/s_c)*(a-z_a) + (s_b/s_c)*(b-z_b); ...),
so a correct runtime matches them exactly. For the QDQ model the reference
is the float graph (DequantizeLinear, float64 ops rounded to float32,
QuantizeLinear), which an integer runtime matches up to rounding ties.

Everything is seeded, so a second run writes byte-identical files.
"""

import os
import shutil

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "models")
BATCH = 2
F32 = np.float32

QRANGE = {np.uint8: (0, 255), np.int8: (-128, 127)}


# ---------------------------------------------------------------- numpy reference semantics


def quantize(x, scale, zp, dt=np.uint8):
    """QuantizeLinear: saturate(round_half_even(x / scale) + zp), float32 division."""
    lo, hi = QRANGE[dt]
    v = np.rint((F32(x) / F32(scale)).astype(F32))
    return np.clip(v + int(zp), lo, hi).astype(dt)


def dequantize(q, scale, zp, axis=None):
    """DequantizeLinear: float32(q - zp) * scale (per tensor, or per channel along axis)."""
    scale, zp = np.asarray(scale, F32), np.asarray(zp).astype(np.int64)
    if axis is not None and scale.size > 1:
        shape = [1] * q.ndim
        shape[axis] = scale.size
        scale, zp = scale.reshape(shape), zp.reshape(shape)
    return ((q.astype(np.int64) - zp).astype(F32) * scale).astype(F32)


def requantize(acc, mult, zp, dt=np.uint8):
    """MLAS requantisation of int accumulators with float32 multipliers."""
    lo, hi = QRANGE[dt]
    v = (acc.astype(np.int32).astype(F32) * mult).astype(F32)
    v = np.clip(v, F32(lo - int(zp)), F32(hi - int(zp)))
    return (np.rint(v) + int(zp)).astype(dt)


def act_params(x, dt=np.uint8):
    """onnxruntime's asymmetric uint8 parameters from the range of x."""
    lo, hi = QRANGE[dt]
    mn, mx = min(float(np.min(x)), 0.0), max(float(np.max(x)), 0.0)
    scale = F32((mx - mn) / (hi - lo)) if mx > mn else F32(1.0)
    zp = int(np.clip(np.rint(lo - mn / float(scale)), lo, hi))
    return scale, (np.uint8 if dt == np.uint8 else np.int8)(zp)


def weight_params(w, axis=0):
    """Symmetric int8 per-channel weights: scale = max|w| / 127 along axis."""
    red = tuple(i for i in range(w.ndim) if i != axis)
    amax = np.max(np.abs(w), axis=red)
    scale = (amax / F32(127)).astype(F32)
    shape = [1] * w.ndim
    shape[axis] = -1
    q = np.clip(np.rint(w / scale.reshape(shape)), -127, 127).astype(np.int8)
    return q, scale, np.zeros(scale.shape, np.int8)


def quant_bias(b, sx, sw):
    """int32 bias with scale sx*sw (float32), zero point 0."""
    bs = (F32(sx) * sw).astype(F32)
    return np.rint(b / bs).astype(np.int32), bs


def im2col(x, kh, kw, stride, pad, dil, fill):
    """Columns [N, C*kh*kw, OH*OW] of x [N,C,H,W] padded with fill."""
    n, c, h, w = x.shape
    xp = np.full((n, c, h + 2 * pad, w + 2 * pad), fill, dtype=x.dtype)
    xp[:, :, pad:pad + h, pad:pad + w] = x
    oh = (h + 2 * pad - dil * (kh - 1) - 1) // stride + 1
    ow = (w + 2 * pad - dil * (kw - 1) - 1) // stride + 1
    cols = np.empty((n, c, kh, kw, oh, ow), dtype=x.dtype)
    for i in range(kh):
        for j in range(kw):
            cols[:, :, i, j] = xp[:, :, i * dil:i * dil + stride * oh:stride, j * dil:j * dil + stride * ow:stride]
    return cols.reshape(n, c * kh * kw, oh * ow), oh, ow


def conv(x, w, stride=1, pad=0, group=1, fill=0):
    """Grouped NCHW convolution of x (int64 or float64) with w [M, C/g, kh, kw]."""
    n, c = x.shape[:2]
    m, cg, kh, kw = w.shape
    mg = m // group
    outs = []
    for g in range(group):
        cols, oh, ow = im2col(x[:, g * cg:(g + 1) * cg], kh, kw, stride, pad, 1, fill)
        wg = w[g * mg:(g + 1) * mg].reshape(mg, -1)
        outs.append(np.einsum("mk,nkp->nmp", wg, cols))
    return np.concatenate(outs, axis=1).reshape(n, m, oh, ow)


def qconv_acc(xq, zx, wq, stride=1, pad=0, group=1):
    """Exact integer accumulators of QLinearConv (weight zero points 0)."""
    xi = xq.astype(np.int64) - int(zx)
    return conv(xi, wq.astype(np.int64), stride, pad, group, fill=0)


def maxpool(x, k, s):
    n, c, h, w = x.shape
    oh, ow = (h - k) // s + 1, (w - k) // s + 1
    out = np.full((n, c, oh, ow), np.iinfo(x.dtype).min if x.dtype.kind in "ui" else -np.inf, dtype=x.dtype)
    for i in range(k):
        for j in range(k):
            out = np.maximum(out, x[:, :, i:i + s * oh:s, j:j + s * ow:s])
    return out


# ---------------------------------------------------------------- model writing


class Builder:
    """Collects nodes and initializers of one graph."""

    def __init__(self):
        self.nodes, self.inits = [], []

    def init(self, name, arr):
        self.inits.append(numpy_helper.from_array(np.asarray(arr), name))
        return name

    def scalar(self, name, v, dt=F32):
        return self.init(name, np.array(v, dtype=dt))

    def qparams(self, base, scale, zp):
        """Adds <base>_scale and <base>_zero_point initializers."""
        return self.scalar(base + "_scale", scale), self.scalar(base + "_zero_point", zp, type(zp))

    def node(self, op, ins, outs, name, domain=None, **attrs):
        self.nodes.append(helper.make_node(op, ins, outs, name=name, domain=domain, **attrs))
        return outs[0]


def save(name, b, inputs, outputs, opsets, x, refs):
    """Writes the model and its test data set."""
    graph = helper.make_graph(b.nodes, name, inputs, outputs, b.inits)
    model = helper.make_model(graph, producer_name="onnxruntime.quantization (compress fixture)",
                              opset_imports=[helper.make_opsetid(d, v) for d, v in opsets])
    model.ir_version = 8
    onnx.checker.check_model(model)
    d = os.path.join(ROOT, name)
    shutil.rmtree(d, ignore_errors=True)
    os.makedirs(os.path.join(d, "test_data_set_0"))
    with open(os.path.join(d, "model.onnx"), "wb") as f:
        f.write(model.SerializeToString())

    def tensor(path, arr, tname):
        with open(path, "wb") as f:
            f.write(numpy_helper.from_array(np.ascontiguousarray(arr), tname).SerializeToString())

    tensor(os.path.join(d, "test_data_set_0", "input_0.pb"), x, inputs[0].name)
    for i, (o, r) in enumerate(zip(outputs, refs)):
        tensor(os.path.join(d, "test_data_set_0", "output_%d.pb" % i), r, o.name)


def value(name, elem, shape):
    return helper.make_tensor_value_info(name, elem, shape)


# ---------------------------------------------------------------- QOperator CNN


def make_qoperator(rng):
    b = Builder()
    x = rng.standard_normal((BATCH, 3, 16, 16)).astype(F32)
    # Float weights, quantized per channel.
    w1, b1 = rng.standard_normal((8, 3, 3, 3)).astype(F32) * F32(0.3), rng.standard_normal(8).astype(F32) * F32(0.1)
    wd, bd = rng.standard_normal((8, 1, 3, 3)).astype(F32) * F32(0.4), rng.standard_normal(8).astype(F32) * F32(0.1)
    wp, bp = rng.standard_normal((16, 8, 1, 1)).astype(F32) * F32(0.3), rng.standard_normal(16).astype(F32) * F32(0.1)
    ws, bs = rng.standard_normal((16, 8, 1, 1)).astype(F32) * F32(0.3), rng.standard_normal(16).astype(F32) * F32(0.1)
    wf, bf = rng.standard_normal((10, 32)).astype(F32) * F32(0.3), rng.standard_normal(10).astype(F32) * F32(0.1)
    wm = rng.standard_normal((10, 5)).astype(F32) * F32(0.3)

    sx, zx = act_params(x)
    b.qparams("input", sx, zx)
    xq = quantize(x, sx, zx)
    b.node("QuantizeLinear", ["input", "input_scale", "input_zero_point"], ["input_quantized"], "input_QuantizeLinear")

    def qlinearconv(name, inq, s_in, z_in, w, bias, stride, pad, group, relu):
        wq, wsc, wzp = weight_params(w)
        bq, _ = quant_bias(bias, s_in, wsc)
        acc = qconv_acc(inq, z_in, wq, stride, pad, group) + bq.reshape(1, -1, 1, 1)
        real = acc.astype(np.float64) * (float(s_in) * wsc.astype(np.float64)).reshape(1, -1, 1, 1)
        if relu:
            real = np.maximum(real, 0)  # the Relu the quantizer removed: its range is the output range
        s_out, z_out = act_params(real)
        mult = ((wsc * F32(s_in)).astype(F32) / F32(s_out)).astype(F32).reshape(1, -1, 1, 1)
        out = requantize(acc, mult, z_out)
        b.init(name + "_W_quantized", wq)
        b.init(name + "_W_scale", wsc)
        b.init(name + "_W_zero_point", wzp)
        b.init(name + "_B_quantized", bq)
        b.qparams(name + "_output", s_out, z_out)
        return out, s_out, z_out, wq.shape

    names = {}

    def n_in(arr):
        return names[id(arr)]

    def reg(arr, name, scale_name, zp_name):
        names[id(arr)] = name
        names[(id(arr), "s")] = scale_name
        names[(id(arr), "z")] = zp_name
        return arr

    reg(xq, "input_quantized", "input_scale", "input_zero_point")

    def emit_conv(name, inq, s_in, z_in, w, bias, stride=1, pad=0, group=1, relu=False):
        out, s_out, z_out, wshape = qlinearconv(name, inq, s_in, z_in, w, bias, stride, pad, group, relu)
        o = name + "_output_quantized"
        b.node("QLinearConv", [n_in(inq), names[(id(inq), "s")], names[(id(inq), "z")],
                               name + "_W_quantized", name + "_W_scale", name + "_W_zero_point",
                               name + "_output_scale", name + "_output_zero_point", name + "_B_quantized"],
               [o], name + "_quant", kernel_shape=list(wshape[2:]), strides=[stride, stride],
               pads=[pad] * 4, dilations=[1, 1], group=group)
        return reg(out, o, name + "_output_scale", name + "_output_zero_point"), s_out, z_out

    c1, s1, z1 = emit_conv("conv1", xq, sx, zx, w1, b1, pad=1, relu=True)
    # MaxPool directly on uint8 (the quantizer's Direct8BitOp): same parameters.
    p1 = maxpool(c1, 2, 2)
    b.node("MaxPool", ["conv1_output_quantized"], ["pool1_output_quantized"], "pool1", kernel_shape=[2, 2], strides=[2, 2])
    reg(p1, "pool1_output_quantized", "conv1_output_scale", "conv1_output_zero_point")
    dw, sdw, zdw = emit_conv("dw", p1, s1, z1, wd, bd, pad=1, group=8, relu=True)
    pw, spw, zpw = emit_conv("pw", dw, sdw, zdw, wp, bp)
    sc, ssc, zsc = emit_conv("shortcut", p1, s1, z1, ws, bs)

    def binary(op, name, a, sa, za, c, sc_, zc_, real_fn):
        real = real_fn(dequantize(a, sa, za).astype(np.float64), dequantize(c, sc_, zc_).astype(np.float64))
        so, zo = act_params(real)
        ai, ci = a.astype(np.int32) - int(za), c.astype(np.int32) - int(zc_)
        lo, hi = 0, 255
        if op == "QLinearAdd":
            ra, rb = F32(F32(sa) / F32(so)), F32(F32(sc_) / F32(so))
            v = ((ra * ai.astype(F32)).astype(F32) + (rb * ci.astype(F32)).astype(F32)).astype(F32)
        else:
            mult = F32(F32(F32(sa) * F32(sc_)) / F32(so))
            v = ((ai * ci).astype(F32) * mult).astype(F32)
        v = np.clip(v, F32(lo - int(zo)), F32(hi - int(zo)))
        out = (np.rint(v) + int(zo)).astype(np.uint8)
        b.qparams(name + "_output", so, zo)
        o = name + "_output_quantized"
        b.node(op, [n_in(a), names[(id(a), "s")], names[(id(a), "z")], n_in(c), names[(id(c), "s")], names[(id(c), "z")],
                    name + "_output_scale", name + "_output_zero_point"], [o], name + "_quant", domain="com.microsoft")
        return reg(out, o, name + "_output_scale", name + "_output_zero_point"), so, zo

    add, sadd, zadd = binary("QLinearAdd", "add", pw, spw, zpw, sc, ssc, zsc, lambda u, v: u + v)

    def lut_op(op, name, a, sa, za, f, **attrs):
        real = f(dequantize(a, sa, za).astype(np.float64))
        so, zo = act_params(real)
        table = np.arange(256, dtype=np.int32)
        deq = ((table - int(za)).astype(F32) * F32(sa)).astype(F32)
        fv = f(deq.astype(np.float64)).astype(F32) if op == "QLinearSigmoid" else f(deq)
        tq = quantize(fv, so, zo)
        out = tq[a.astype(np.int64)]
        b.qparams(name + "_output", so, zo)
        o = name + "_output_quantized"
        b.node(op, [n_in(a), names[(id(a), "s")], names[(id(a), "z")], name + "_output_scale", name + "_output_zero_point"],
               [o], name + "_quant", domain="com.microsoft", **attrs)
        return reg(out, o, name + "_output_scale", name + "_output_zero_point"), so, zo

    def leaky(v):
        return np.where(v >= 0, v, (F32(0.1) * v).astype(v.dtype)).astype(v.dtype)

    lr, slr, zlr = lut_op("QLinearLeakyRelu", "lrelu", add, sadd, zadd, leaky, alpha=0.1)
    sg, ssg, zsg = lut_op("QLinearSigmoid", "sigmoid", add, sadd, zadd, lambda v: 1 / (1 + np.exp(-v)))
    mul, smul, zmul = binary("QLinearMul", "mul", lr, slr, zlr, sg, ssg, zsg, lambda u, v: u * v)

    # QLinearConcat of mul and the shortcut along channels, requantised to new parameters.
    parts = [(mul, smul, zmul), (sc, ssc, zsc)]
    real = np.concatenate([dequantize(a, s, z) for a, s, z in parts], axis=1)
    scat, zcat = act_params(real)
    cat = np.concatenate([quantize(dequantize(a, s, z), scat, zcat) for a, s, z in parts], axis=1)
    b.qparams("concat_output", scat, zcat)
    ins = ["concat_output_scale", "concat_output_zero_point"]
    for a, _, _ in parts:
        ins += [n_in(a), names[(id(a), "s")], names[(id(a), "z")]]
    b.node("QLinearConcat", ins, ["concat_output_quantized"], "concat_quant", domain="com.microsoft", axis=1)
    reg(cat, "concat_output_quantized", "concat_output_scale", "concat_output_zero_point")

    # QLinearAveragePool 2x2 stride 2, then QLinearGlobalAveragePool.
    def avg(a, sa, za, sums, count, so, zo):
        v = ((sums.astype(F32) * F32(sa)).astype(F32) / F32(count)).astype(F32)
        return quantize(v, so, zo)

    n_, c_, h_, w_ = cat.shape
    ci = cat.astype(np.int64) - int(zcat)
    sums = ci.reshape(n_, c_, h_ // 2, 2, w_ // 2, 2).sum(axis=(3, 5))
    sap, zap = act_params(dequantize(cat, scat, zcat).reshape(n_, c_, h_ // 2, 2, w_ // 2, 2).mean(axis=(3, 5)))
    ap = avg(cat, scat, zcat, sums, 4, sap, zap)
    b.qparams("avgpool_output", sap, zap)
    b.node("QLinearAveragePool", ["concat_output_quantized", "concat_output_scale", "concat_output_zero_point",
                                  "avgpool_output_scale", "avgpool_output_zero_point"], ["avgpool_output_quantized"],
           "avgpool_quant", domain="com.microsoft", kernel_shape=[2, 2], strides=[2, 2], pads=[0, 0, 0, 0],
           count_include_pad=0, ceil_mode=0, channels_last=0)
    gsum = (ap.astype(np.int64) - int(zap)).sum(axis=(2, 3), keepdims=True)
    sgp, zgp = act_params(dequantize(ap, sap, zap).mean(axis=(2, 3), keepdims=True))
    gp = avg(ap, sap, zap, gsum, ap.shape[2] * ap.shape[3], sgp, zgp)
    b.qparams("gap_output", sgp, zgp)
    b.node("QLinearGlobalAveragePool", ["avgpool_output_quantized", "avgpool_output_scale", "avgpool_output_zero_point",
                                        "gap_output_scale", "gap_output_zero_point"], ["gap_output_quantized"],
           "gap_quant", domain="com.microsoft", channels_last=0)
    flat = gp.reshape(BATCH, -1)
    b.node("Flatten", ["gap_output_quantized"], ["flatten_output_quantized"], "flatten", axis=1)

    # com.microsoft QGemm (transB=1, int32 bias), quantized output.
    wfq, wfs, wfz = weight_params(wf, axis=0)
    bfq, _ = quant_bias(bf, sgp, wfs)
    accf = (flat.astype(np.int64) - int(zgp)) @ wfq.astype(np.int64).T + bfq
    sfc, zfc = act_params(accf * (float(sgp) * wfs.astype(np.float64)))
    mult = ((F32(1) * F32(sgp) * wfs).astype(F32) / F32(sfc)).astype(F32)
    fc = requantize(accf, mult, zfc)
    b.init("fc_W_quantized", wfq)
    b.init("fc_W_scale", wfs)
    b.init("fc_W_zero_point", wfz)
    b.init("fc_B_quantized", bfq)
    b.qparams("fc_output", sfc, zfc)
    b.node("QGemm", ["flatten_output_quantized", "gap_output_scale", "gap_output_zero_point",
                     "fc_W_quantized", "fc_W_scale", "fc_W_zero_point", "fc_B_quantized",
                     "fc_output_scale", "fc_output_zero_point"], ["fc_output_quantized"], "fc_quant",
           domain="com.microsoft", alpha=1.0, transA=0, transB=1)

    # QLinearMatMul with per-column weights [10, 5].
    wmq, wms, wmz = weight_params(wm, axis=1)
    accm = (fc.astype(np.int64) - int(zfc)) @ wmq.astype(np.int64)
    smm, zmm = act_params(accm * (float(sfc) * wms.astype(np.float64)))
    mult = ((F32(1) * F32(sfc) * wms).astype(F32) / F32(smm)).astype(F32)
    mm = requantize(accm, mult, zmm)
    b.init("mm_W_quantized", wmq)
    b.init("mm_W_scale", wms)
    b.init("mm_W_zero_point", wmz)
    b.qparams("mm_output", smm, zmm)
    b.node("QLinearMatMul", ["fc_output_quantized", "fc_output_scale", "fc_output_zero_point",
                             "mm_W_quantized", "mm_W_scale", "mm_W_zero_point",
                             "mm_output_scale", "mm_output_zero_point"], ["mm_output_quantized"], "mm_quant")

    # Outputs: dequantized heads, and one uint8 tensor.
    b.node("DequantizeLinear", ["fc_output_quantized", "fc_output_scale", "fc_output_zero_point"], ["logits"], "logits_DequantizeLinear")
    b.node("DequantizeLinear", ["mm_output_quantized", "mm_output_scale", "mm_output_zero_point"], ["output"], "output_DequantizeLinear")
    refs = [dequantize(fc, sfc, zfc), dequantize(mm, smm, zmm), cat]
    save("quant_qoperator_cnn", b, [value("input", TensorProto.FLOAT, ["batch", 3, 16, 16])],
         [value("logits", TensorProto.FLOAT, ["batch", 10]), value("output", TensorProto.FLOAT, ["batch", 5]),
          value("concat_output_quantized", TensorProto.UINT8, ["batch", 32, 8, 8])],
         [("", 13), ("com.microsoft", 1)], x, refs)


# ---------------------------------------------------------------- QDQ CNN


def make_qdq(rng):
    b = Builder()
    x = rng.standard_normal((BATCH, 3, 12, 12)).astype(F32)
    w1, b1 = rng.standard_normal((8, 3, 3, 3)).astype(F32) * F32(0.3), rng.standard_normal(8).astype(F32) * F32(0.1)
    wd, bd = rng.standard_normal((8, 1, 3, 3)).astype(F32) * F32(0.4), rng.standard_normal(8).astype(F32) * F32(0.1)
    wf, bf = rng.standard_normal((6, 8)).astype(F32) * F32(0.3), rng.standard_normal(6).astype(F32) * F32(0.1)
    wm, bm = rng.standard_normal((8, 4)).astype(F32) * F32(0.3), rng.standard_normal(4).astype(F32) * F32(0.1)

    def qdq(name, real, tensor):
        """Q -> DQ of a float tensor with parameters from its range; returns the dequantized value."""
        s, z = act_params(real)
        b.qparams(name, s, z)
        b.node("QuantizeLinear", [tensor, name + "_scale", name + "_zero_point"], [name + "_quantized"], name + "_QuantizeLinear")
        b.node("DequantizeLinear", [name + "_quantized", name + "_scale", name + "_zero_point"], [name + "_dequantized"],
               name + "_DequantizeLinear")
        q = quantize(real, s, z)
        return dequantize(q, s, z), q, s, z

    def weight_dq(name, w, axis, sx, bias):
        wq, ws, wz = weight_params(w, axis)
        b.init(name + "_quantized", wq)
        b.init(name + "_scale", ws)
        b.init(name + "_zero_point", wz)
        b.node("DequantizeLinear", [name + "_quantized", name + "_scale", name + "_zero_point"], [name + "_dequantized"],
               name + "_DequantizeLinear", axis=axis)
        out = [dequantize(wq, ws, wz, axis)]
        if bias is not None:
            bq, bs = quant_bias(bias, sx, ws)
            b.init(name + "_bias_quantized", bq)
            b.init(name + "_bias_quantized_scale", bs)
            b.init(name + "_bias_quantized_zero_point", np.zeros(bs.shape, np.int32))
            b.node("DequantizeLinear", [name + "_bias_quantized", name + "_bias_quantized_scale", name + "_bias_quantized_zero_point"],
                   [name + "_bias_dequantized"], name + "_bias_DequantizeLinear", axis=0)
            out.append(dequantize(bq, bs, np.zeros(bs.shape, np.int32), 0))
        return out

    def fconv(xf, wf_, bf_, pad=0, group=1):
        y = conv(xf.astype(np.float64), wf_.astype(np.float64), 1, pad, group, fill=0.0)
        return (y + bf_.astype(np.float64).reshape(1, -1, 1, 1)).astype(F32)

    xd, _, sx, _ = qdq("input", x, "input")
    w1d, b1d = weight_dq("conv1_W", w1, 0, sx, b1)
    b.node("Conv", ["input_dequantized", "conv1_W_dequantized", "conv1_W_bias_dequantized"], ["conv1_output"], "conv1",
           pads=[1, 1, 1, 1], kernel_shape=[3, 3])
    b.node("Relu", ["conv1_output"], ["relu1_output"], "relu1")
    r1 = np.maximum(fconv(xd, w1d, b1d, pad=1), 0)
    r1d, r1q, s1, z1 = qdq("relu1_output", r1, "relu1_output")
    b.node("MaxPool", ["relu1_output_dequantized"], ["pool1_output"], "pool1", kernel_shape=[2, 2], strides=[2, 2])
    p1 = maxpool(r1d, 2, 2)
    # MaxPool keeps the parameters of its input (onnxruntime shares them).
    b.node("QuantizeLinear", ["pool1_output", "relu1_output_scale", "relu1_output_zero_point"], ["pool1_output_quantized"], "pool1_QuantizeLinear")
    b.node("DequantizeLinear", ["pool1_output_quantized", "relu1_output_scale", "relu1_output_zero_point"], ["pool1_output_dequantized"],
           "pool1_DequantizeLinear")
    p1d = dequantize(quantize(p1, s1, z1), s1, z1)
    wdd, bdd = weight_dq("dw_W", wd, 0, s1, bd)
    b.node("Conv", ["pool1_output_dequantized", "dw_W_dequantized", "dw_W_bias_dequantized"], ["dw_output"], "dw",
           pads=[1, 1, 1, 1], kernel_shape=[3, 3], group=8)
    dwo = fconv(p1d, wdd, bdd, pad=1, group=8)
    dwd, _, _, _ = qdq("dw_output", dwo, "dw_output")
    b.node("Add", ["dw_output_dequantized", "pool1_output_dequantized"], ["add_output"], "add")
    addo = (dwd + p1d).astype(F32)
    addd, addq, sadd, zadd = qdq("add_output", addo, "add_output")
    b.node("GlobalAveragePool", ["add_output_dequantized"], ["gap_output"], "gap")
    gap = addd.astype(np.float64).mean(axis=(2, 3), keepdims=True).astype(F32)
    gapd, _, sg, _ = qdq("gap_output", gap, "gap_output")
    b.node("Flatten", ["gap_output_dequantized"], ["flatten_output"], "flatten", axis=1)
    flat = gapd.reshape(BATCH, -1)
    # Gemm (transB=1) with a quantized bias, quantized output, then DQ.
    wfd, bfd = weight_dq("fc_W", wf, 0, sg, bf)
    # Flatten of a dequantized tensor is quantized again with the same parameters.
    b.node("QuantizeLinear", ["flatten_output", "gap_output_scale", "gap_output_zero_point"], ["flatten_output_quantized"], "flatten_QuantizeLinear")
    b.node("DequantizeLinear", ["flatten_output_quantized", "gap_output_scale", "gap_output_zero_point"], ["flatten_output_dequantized"],
           "flatten_DequantizeLinear")
    b.node("Gemm", ["flatten_output_dequantized", "fc_W_dequantized", "fc_W_bias_dequantized"], ["fc_output"], "fc", transB=1)
    fco = (flat.astype(np.float64) @ wfd.astype(np.float64).T + bfd.astype(np.float64)).astype(F32)
    fcd, fcq, sfc, zfc = qdq("fc_output", fco, "fc_output")
    b.node("Identity", ["fc_output_dequantized"], ["logits"], "logits_identity")
    # MatMul (per-column weights, axis 1) + Add of a float bias, float output.
    (wmd,) = weight_dq("mm_W", wm, 1, sg, None)
    b.init("mm_B", bm)
    b.node("MatMul", ["flatten_output_dequantized", "mm_W_dequantized"], ["mm_output"], "mm")
    b.node("Add", ["mm_output", "mm_B"], ["output"], "mm_add")
    mmo = (flat.astype(np.float64) @ wmd.astype(np.float64) + bm.astype(np.float64)).astype(F32)
    refs = [fcd, mmo, addq]
    # The add output's uint8 tensor is a graph output too.
    save("quant_qdq_cnn", b, [value("input", TensorProto.FLOAT, ["batch", 3, 12, 12])],
         [value("logits", TensorProto.FLOAT, ["batch", 6]), value("output", TensorProto.FLOAT, ["batch", 4]),
          value("add_output_quantized", TensorProto.UINT8, ["batch", 8, 6, 6])],
         [("", 13)], x, refs)


# ---------------------------------------------------------------- dynamic quantization


def dyn_quant(x):
    """DynamicQuantizeLinear as onnxruntime computes it (float32)."""
    mn, mx = min(F32(np.min(x)), F32(0)), max(F32(np.max(x)), F32(0))
    scale = F32(1) if mx == mn else F32(F32(mx - mn) / F32(255))
    zp = np.uint8(np.rint(np.clip(F32(F32(0) - F32(mn / scale)), 0, 255)))
    return quantize(x, scale, zp), scale, zp


def make_dynamic(rng):
    b = Builder()
    x = rng.standard_normal((BATCH, 2, 6, 6)).astype(F32)
    wc, bc = rng.standard_normal((4, 2, 3, 3)).astype(F32) * F32(0.4), rng.standard_normal(4).astype(F32) * F32(0.1)
    wm, bm = rng.standard_normal((144, 5)).astype(F32) * F32(0.1), rng.standard_normal(5).astype(F32) * F32(0.1)

    # ConvInteger: per-tensor int8 weights (quantize_dynamic's default), float scale product and bias.
    def per_tensor(w):
        s = F32(np.max(np.abs(w)) / F32(127))
        return np.clip(np.rint(w / s), -127, 127).astype(np.int8), s

    wcq, wcs = per_tensor(wc)
    b.init("conv_W_quantized", wcq)
    b.scalar("conv_W_scale", wcs)
    b.scalar("conv_W_zero_point", 0, np.int8)
    b.init("conv_B", bc.reshape(1, 4, 1, 1))
    b.node("DynamicQuantizeLinear", ["input"], ["input_quantized", "input_scale", "input_zero_point"], "input_QuantizeLinear")
    b.node("ConvInteger", ["input_quantized", "conv_W_quantized", "input_zero_point", "conv_W_zero_point"], ["conv_output_quantized"],
           "conv_quant", kernel_shape=[3, 3], pads=[1, 1, 1, 1])
    b.node("Cast", ["conv_output_quantized"], ["conv_output_quantized_cast_output"], "conv_output_quantized_cast", to=TensorProto.FLOAT)
    b.node("Mul", ["input_scale", "conv_W_scale"], ["conv_scales_mul"], "conv_scales_mul")
    b.node("Mul", ["conv_output_quantized_cast_output", "conv_scales_mul"], ["conv_output_unbiased"], "conv_output_scale_mul")
    b.node("Add", ["conv_output_unbiased", "conv_B"], ["conv_output"], "conv_bias_add")
    b.node("Relu", ["conv_output"], ["relu_output"], "relu")
    b.node("Flatten", ["relu_output"], ["flatten_output"], "flatten", axis=1)
    xq, xs, xz = dyn_quant(x)
    acc = conv(xq.astype(np.int64) - int(xz), wcq.astype(np.int64), 1, 1, 1, fill=0)
    y = ((acc.astype(np.int32).astype(F32) * F32(xs * wcs)).astype(F32) + bc.reshape(1, 4, 1, 1)).astype(F32)
    flat = np.maximum(y, 0).reshape(BATCH, -1)

    # MatMulInteger with a uint8 per-tensor weight (older quantize_dynamic default) and a zero point.
    s = F32((np.max(wm) - np.min(wm)) / F32(255))
    zw = np.uint8(np.rint(-np.min(wm) / s))
    wmq = quantize(wm, s, zw)
    b.init("mm_W_quantized", wmq)
    b.scalar("mm_W_scale", s)
    b.scalar("mm_W_zero_point", zw, np.uint8)
    b.init("mm_B", bm)
    b.node("DynamicQuantizeLinear", ["flatten_output"], ["flatten_output_quantized", "flatten_output_scale", "flatten_output_zero_point"],
           "flatten_output_QuantizeLinear")
    b.node("MatMulInteger", ["flatten_output_quantized", "mm_W_quantized", "flatten_output_zero_point", "mm_W_zero_point"],
           ["mm_output_quantized"], "mm_quant")
    b.node("Cast", ["mm_output_quantized"], ["mm_output_quantized_cast_output"], "mm_output_quantized_cast", to=TensorProto.FLOAT)
    b.node("Mul", ["flatten_output_scale", "mm_W_scale"], ["mm_scales_mul"], "mm_scales_mul")
    b.node("Mul", ["mm_output_quantized_cast_output", "mm_scales_mul"], ["mm_output_unbiased"], "mm_output_scale_mul")
    b.node("Add", ["mm_output_unbiased", "mm_B"], ["output"], "mm_bias_add")
    fq, fs, fz = dyn_quant(flat)
    accm = (fq.astype(np.int64) - int(fz)) @ (wmq.astype(np.int64) - int(zw))
    out = ((accm.astype(np.int32).astype(F32) * F32(fs * s)).astype(F32) + bm).astype(F32)
    save("quant_dynamic", b, [value("input", TensorProto.FLOAT, ["batch", 2, 6, 6])],
         [value("output", TensorProto.FLOAT, ["batch", 5])], [("", 13)], x, [out])


def main():
    make_qoperator(np.random.default_rng(1))
    make_qdq(np.random.default_rng(2))
    make_dynamic(np.random.default_rng(3))


if __name__ == "__main__":
    main()
