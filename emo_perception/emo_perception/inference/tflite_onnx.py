"""A TensorFlow Lite flatbuffer -> ONNX translator for the float models of MediaPipe's Face Landmarker.

tflite2onnx 0.4.1 (which converts BlazeFace) fails on both face_landmarks_detector.tflite (a layout
error on its PRELU slopes) and face_blendshapes.tflite (a scalar constant), so this module translates
them itself, one TFLite operator to one ONNX operator (or a fixed short sequence), with the semantics
of TFLite's reference kernels:

- Layout: CONV_2D, DEPTHWISE_CONV_2D and MAX_POOL_2D produce NCHW tensors (ONNX's layout); the
  element-wise operators (ADD, MUL, SUB, DIV, PRELU, LOGISTIC, ...) and PAD keep a 4-D input in NCHW
  (constant operands and pads are permuted to match); every other operator sees TFLite's NHWC, a
  Transpose being inserted where a tensor changes layout. (Wrapping each convolution in its own pair
  of transposes and leaving them to ONNX Runtime's optimizer ran the landmark model 9x slower.)
- SAME padding becomes explicit pads (TFLite puts the odd pixel at the end, like ONNX SAME_UPPER).
- Float16 weights (TFLite stores them as float16 constants followed by DEQUANTIZE) stay float16
  initializers followed by Cast(float): the file is as small as the source and the values are the
  ones TFLite computes with (it dequantizes them the same way).
- Only the operators reachable from the requested outputs are translated.

The supported operators are those the two models use (OPS); anything else is a ValueError naming it.
"""
from __future__ import annotations

import numpy as np

NHWC_TO_NCHW = [0, 3, 1, 2]
NCHW_TO_NHWC = [0, 2, 3, 1]
OPSET = 17   # ReduceMean takes axes as an attribute up to 17 (TensorRT 8.5 on JetPack 5/6 parses it)


class _Graph:
    """The flatbuffer's first subgraph with name lookups, and the ONNX nodes being built."""

    def __init__(self, buf: bytes):
        import tflite

        self.tfl = tflite
        self.model = tflite.Model.GetRootAsModel(buf, 0)
        if self.model.SubgraphsLength() != 1:
            raise ValueError(f"expected one subgraph, the model has {self.model.SubgraphsLength()}")
        self.g = self.model.Subgraphs(0)
        self.op_names = {v: k for k, v in vars(tflite.BuiltinOperator).items() if not k.startswith("_")}
        self.producer = {}
        for i in range(self.g.OperatorsLength()):
            for t in self.g.Operators(i).OutputsAsNumpy():
                self.producer[int(t)] = i
        self.nodes, self.initializers, self.consts = [], [], {}
        self.nchw = set()          # tensors stored in NCHW (the others in TFLite's layout)
        self._transposed = {}      # tensor -> its name in the other layout, once made
        self._uid = 0

    # -- tensors --------------------------------------------------------------------------------
    def tensor(self, t: int):
        return self.g.Tensors(t)

    def name(self, t: int) -> str:
        return f"t{t}"

    def shape(self, t: int) -> list:
        s = self.tensor(t).ShapeAsNumpy()
        return [] if isinstance(s, int) else [int(d) for d in s]

    def op_type(self, i: int) -> str:
        oc = self.model.OperatorCodes(self.g.Operators(i).OpcodeIndex())
        return self.op_names[max(oc.BuiltinCode(), oc.DeprecatedBuiltinCode())]

    def buffer_array(self, t: int):
        """The constant held in tensor t's buffer, or None."""
        tf = self.tfl
        tensor = self.tensor(t)
        data = self.model.Buffers(tensor.Buffer()).DataAsNumpy()
        if isinstance(data, int) or data.size == 0:
            return None
        dtype = {tf.TensorType.FLOAT32: np.float32, tf.TensorType.FLOAT16: np.float16,
                 tf.TensorType.INT32: np.int32, tf.TensorType.INT64: np.int64}.get(tensor.Type())
        if dtype is None:
            raise ValueError(f"constant tensor {tensor.Name().decode()} has TFLite type {tensor.Type()}")
        return np.frombuffer(data.tobytes(), dtype).reshape(self.shape(t))

    def constant(self, t: int):
        """Tensor t's value if it is a constant (a buffer, or DEQUANTIZE of one), else None."""
        value = self.buffer_array(t)
        if value is None and t in self.producer and self.op_type(self.producer[t]) == "DEQUANTIZE":
            value = self.buffer_array(int(self.g.Operators(self.producer[t]).InputsAsNumpy()[0]))
        return value

    # -- ONNX building --------------------------------------------------------------------------
    def fresh(self, hint: str) -> str:
        self._uid += 1
        return f"{hint}_{self._uid}"

    def node(self, op: str, inputs, outputs, **attrs):
        from onnx import helper

        self.nodes.append(helper.make_node(op, list(inputs), list(outputs), **attrs))

    def init(self, value: np.ndarray, hint: str = "c") -> str:
        """An initializer; float16 values stay float16 and are Cast to float32."""
        from onnx import TensorProto, numpy_helper

        name = self.fresh(hint)
        if value.dtype == np.float16:
            self.initializers.append(numpy_helper.from_array(np.ascontiguousarray(value), name + "_f16"))
            self.node("Cast", [name + "_f16"], [name], to=TensorProto.FLOAT)
        else:
            self.initializers.append(numpy_helper.from_array(np.ascontiguousarray(value), name))
        return name

    def operand(self, t: int) -> str:
        """ONNX name for tensor t in TFLite's layout as an operator input (constants become
        initializers on first use; an NCHW tensor is transposed back, once)."""
        if t in self.consts:
            return self.consts[t]
        value = self.constant(t)
        if value is not None:
            self.consts[t] = self.init(value, f"w{t}")
            return self.consts[t]
        if t not in self.nchw:
            return self.name(t)
        if t not in self._transposed:
            self._transposed[t] = self.fresh(f"t{t}_nhwc")
            self.node("Transpose", [self.name(t)], [self._transposed[t]], perm=NCHW_TO_NHWC)
        return self._transposed[t]

    def operand_nchw(self, t: int) -> str:
        """ONNX name for 4-D (or broadcastable constant) tensor t in NCHW."""
        value = self.constant(t)
        if value is not None:     # right-aligned broadcast: pad the shape to 4-D, then permute
            return self.init(value.reshape((1,) * (4 - value.ndim) + value.shape).transpose(NHWC_TO_NCHW), f"w{t}")
        if t in self.nchw:
            return self.name(t)
        if t not in self._transposed:
            self._transposed[t] = self.fresh(f"t{t}_nchw")
            self.node("Transpose", [self.name(t)], [self._transposed[t]], perm=NHWC_TO_NCHW)
        return self._transposed[t]

    def prefers_nchw(self, inputs, output: int) -> bool:
        """An element-wise operator runs in NCHW when its output is 4-D and a variable input already is NCHW."""
        variables = [t for t in inputs if self.constant(t) is None]
        return (len(self.shape(output)) == 4 and any(t in self.nchw for t in variables)
                and all(len(self.shape(t)) == 4 for t in variables)
                and all(self.constant(t).ndim <= 4 for t in inputs if t not in variables))


def _activation(gr: _Graph, code: int, x: str, out: str):
    """TFLite's fused activation on x, written to out."""
    act = gr.tfl.ActivationFunctionType
    if code == act.NONE:
        gr.node("Identity", [x], [out])
    elif code == act.RELU:
        gr.node("Relu", [x], [out])
    elif code == act.RELU6:
        gr.node("Clip", [x, gr.init(np.array(0, np.float32)), gr.init(np.array(6, np.float32))], [out])
    elif code == act.RELU_N1_TO_1:
        gr.node("Clip", [x, gr.init(np.array(-1, np.float32)), gr.init(np.array(1, np.float32))], [out])
    elif code == act.TANH:
        gr.node("Tanh", [x], [out])
    else:
        raise ValueError(f"fused activation {code} is not supported")


def _options(gr: _Graph, op, cls_name: str):
    cls = getattr(gr.tfl, cls_name)
    table = op.BuiltinOptions()
    opts = cls()
    if table is not None:
        opts.Init(table.Bytes, table.Pos)
    return opts


def _same_pads(in_hw, kernel_hw, stride_hw, dilation_hw):
    """TFLite SAME padding as ONNX pads [top, left, bottom, right] (the odd pixel at the end)."""
    begin, end = [], []
    for size, k, s, d in zip(in_hw, kernel_hw, stride_hw, dilation_hw):
        out = -(-size // s)
        total = max((out - 1) * s + (k - 1) * d + 1 - size, 0)
        begin.append(total // 2)
        end.append(total - total // 2)
    return begin + end


def _conv(gr: _Graph, op, ins, out, depthwise: bool):
    opts = _options(gr, op, "DepthwiseConv2DOptions" if depthwise else "Conv2DOptions")
    w = gr.constant(ins[1])
    if w is None:
        raise ValueError("convolution weights must be constant")
    in_shape = gr.shape(ins[0])
    if depthwise:   # TFLite (1, kh, kw, C*m) -> ONNX (C*m, 1, kh, kw), group C
        weight = w.transpose(3, 0, 1, 2)
        group = in_shape[3]
    else:           # TFLite (O, kh, kw, I) -> ONNX (O, I, kh, kw)
        weight = w.transpose(0, 3, 1, 2)
        group = 1
    kh, kw = weight.shape[2:]
    strides = [opts.StrideH(), opts.StrideW()]
    dilations = [opts.DilationHFactor() or 1, opts.DilationWFactor() or 1]
    pads = (_same_pads(in_shape[1:3], (kh, kw), strides, dilations)
            if opts.Padding() == gr.tfl.Padding.SAME else [0, 0, 0, 0])
    conv_in = [gr.init(weight, f"w{ins[1]}")]
    if len(ins) > 2 and ins[2] >= 0:
        conv_in.append(gr.operand(ins[2]))
    pre = gr.fresh("conv")
    gr.node("Conv", [gr.operand_nchw(ins[0]), *conv_in], [pre], kernel_shape=[kh, kw], strides=strides,
            dilations=dilations, pads=pads, group=group)
    _activation(gr, opts.FusedActivationFunction(), pre, gr.name(out))
    gr.nchw.add(out)


def _max_pool(gr: _Graph, op, ins, out):
    opts = _options(gr, op, "Pool2DOptions")
    k, strides = [opts.FilterHeight(), opts.FilterWidth()], [opts.StrideH(), opts.StrideW()]
    pads = (_same_pads(gr.shape(ins[0])[1:3], k, strides, (1, 1))
            if opts.Padding() == gr.tfl.Padding.SAME else [0, 0, 0, 0])
    pre = gr.fresh("pool")
    gr.node("MaxPool", [gr.operand_nchw(ins[0])], [pre], kernel_shape=k, strides=strides, pads=pads)
    _activation(gr, opts.FusedActivationFunction(), pre, gr.name(out))
    gr.nchw.add(out)


def _elementwise(gr: _Graph, ins, out: int, onnx_op: str, activation: int = 0):
    """An element-wise operator (and its fused activation) in NCHW where its inputs are, else NHWC."""
    nchw = gr.prefers_nchw(ins, out)
    args = [gr.operand_nchw(t) if nchw else gr.operand(t) for t in ins]
    if onnx_op == "SquaredDifference":
        diff = gr.fresh("diff")
        gr.node("Sub", args, [diff])
        args, onnx_op = [diff, diff], "Mul"
    elif onnx_op == "Rsqrt":
        root = gr.fresh("sqrt")
        gr.node("Sqrt", args, [root])
        args, onnx_op = [root], "Reciprocal"
    pre = gr.fresh(onnx_op.lower()) if activation else gr.name(out)
    gr.node(onnx_op, args, [pre])
    if activation:
        _activation(gr, activation, pre, gr.name(out))
    if nchw:
        gr.nchw.add(out)


def _prelu(gr: _Graph, ins, out: int):
    """PRELU(x, a) = x + (1 - a) * relu(-x), the two products as 1x1 depthwise convolutions (NCHW;
    x + (a - 1) * min(x, 0) in NHWC). ONNX Runtime's CPU PRelu with a per-channel slope ran the
    landmark model at 53 ms (69 PRelus, 1.4 ms each, and a layout reorder around each); the min form
    at 11.4 ms, the convolution form at 9.0 ms (LiteRT with XNNPACK: 8.0 ms; one interleaved run, 2
    threads). Equal to TFLite's within float rounding."""
    slope = gr.constant(ins[1])
    if slope is None:
        raise ValueError("PRELU slopes must be constant")
    nchw = gr.prefers_nchw([ins[0]], out)
    x = gr.operand_nchw(ins[0]) if nchw else gr.operand(ins[0])
    a1 = slope.astype(np.float32) - 1.0     # float32: a - 1 in float16 would round the slope
    if nchw:
        a1 = a1.reshape((1,) * (4 - a1.ndim) + a1.shape).transpose(NHWC_TO_NCHW)
    if nchw and PRELU_AS_CONV:
        # x + (1 - a) * relu(-x) with both products as 1x1 depthwise convolutions: ONNX Runtime's
        # blocked (NCHWc) kernels take Conv(+Relu) and Conv(+Add) without leaving their layout
        c = a1.size
        flip, neg = gr.fresh("neg_x"), gr.fresh("relu_neg_x")
        gr.node("Conv", [x, gr.init(np.full((c, 1, 1, 1), -1.0, np.float32))], [flip], group=c, kernel_shape=[1, 1])
        gr.node("Relu", [flip], [neg])
        scaled = gr.fresh("scaled")
        gr.node("Conv", [neg, gr.init((-a1).reshape(c, 1, 1, 1), f"w{ins[1]}")], [scaled], group=c,
                kernel_shape=[1, 1])
        gr.node("Add", [x, scaled], [gr.name(out)])
    else:
        neg, scaled = gr.fresh("neg_part"), gr.fresh("scaled")
        gr.node("Min", [x, gr.init(np.array(0, np.float32))], [neg])
        gr.node("Mul", [neg, gr.init(a1, f"w{ins[1]}")], [scaled])
        gr.node("Add", [x, scaled], [gr.name(out)])
    if nchw:
        gr.nchw.add(out)


def _binary(gr: _Graph, op, ins, out: int, onnx_op: str, options: str):
    _elementwise(gr, ins, out, onnx_op, _options(gr, op, options).FusedActivationFunction())


def _reduce(gr: _Graph, op, ins, out, onnx_op: str):
    axes = [int(a) for a in np.atleast_1d(gr.constant(ins[1]))]
    keep = int(_options(gr, op, "ReducerOptions").KeepDims())
    if onnx_op == "ReduceMean":     # opset 17: axes attribute
        gr.node(onnx_op, [gr.operand(ins[0])], [out], axes=axes, keepdims=keep)
    else:                           # ReduceSum: axes input since opset 13
        gr.node(onnx_op, [gr.operand(ins[0]), gr.init(np.array(axes, np.int64))], [out], keepdims=keep)


def _strided_slice(gr: _Graph, op, ins, out):
    opts = _options(gr, op, "StridedSliceOptions")
    if opts.EllipsisMask() or opts.NewAxisMask():
        raise ValueError("STRIDED_SLICE with ellipsis or new-axis masks is not supported")
    shape = gr.shape(ins[0])
    begin, end, step = (np.array(gr.constant(t), np.int64) for t in ins[1:4])
    shrink = [i for i in range(len(shape)) if opts.ShrinkAxisMask() >> i & 1]
    for i in range(len(shape)):
        if opts.BeginMask() >> i & 1:
            begin[i] = 0 if step[i] > 0 else shape[i] - 1
        if opts.EndMask() >> i & 1:
            end[i] = shape[i] if step[i] > 0 else -(shape[i] + 1)
        if i in shrink:       # one element, the axis then dropped
            end[i], step[i] = begin[i] + 1, 1
    sliced = gr.fresh("slice") if shrink else out
    gr.node("Slice", [gr.operand(ins[0]), gr.init(begin), gr.init(end), gr.init(np.arange(len(shape), dtype=np.int64)),
                      gr.init(step)], [sliced])
    if shrink:
        gr.node("Squeeze", [sliced, gr.init(np.array(shrink, np.int64))], [out])


PRELU_AS_CONV = True
UNARY = {"LOGISTIC": "Sigmoid", "NEG": "Neg", "SQRT": "Sqrt", "RSQRT": "Rsqrt"}


def _translate(gr: _Graph, i: int):
    op = gr.g.Operators(i)
    kind = gr.op_type(i)
    ins, t_out = [int(t) for t in op.InputsAsNumpy()], int(op.OutputsAsNumpy()[0])
    out = gr.name(t_out)
    if kind == "DEQUANTIZE":
        return      # constants are materialised where they are used (Graph.operand)
    if kind in ("CONV_2D", "DEPTHWISE_CONV_2D"):
        _conv(gr, op, ins, t_out, depthwise=kind == "DEPTHWISE_CONV_2D")
    elif kind == "MAX_POOL_2D":
        _max_pool(gr, op, ins, t_out)
    elif kind in ("ADD", "SUB", "MUL", "DIV"):
        name = kind.capitalize()
        _binary(gr, op, ins, t_out, name, f"{name}Options")
    elif kind == "PRELU":
        _prelu(gr, ins, t_out)
    elif kind in UNARY or kind == "SQUARED_DIFFERENCE":
        _elementwise(gr, ins, t_out, UNARY.get(kind, "SquaredDifference"))
    elif kind == "PAD":
        pads = np.array(gr.constant(ins[1]), np.int64)      # (rank, 2): before, after per axis
        if ins[0] in gr.nchw:
            pads, x = pads[NHWC_TO_NCHW], gr.operand_nchw(ins[0])
            gr.nchw.add(t_out)
        else:
            x = gr.operand(ins[0])
        gr.node("Pad", [x, gr.init(np.concatenate([pads[:, 0], pads[:, 1]]))], [out])
    elif kind == "RESHAPE":
        new_shape = gr.shape(int(op.OutputsAsNumpy()[0]))
        gr.node("Reshape", [gr.operand(ins[0]), gr.init(np.array(new_shape, np.int64))], [out])
    elif kind == "TRANSPOSE":
        gr.node("Transpose", [gr.operand(ins[0])], [out], perm=[int(p) for p in gr.constant(ins[1])])
    elif kind == "MEAN":
        _reduce(gr, op, ins, out, "ReduceMean")
    elif kind == "SUM":
        _reduce(gr, op, ins, out, "ReduceSum")
    elif kind == "CONCATENATION":
        opts = _options(gr, op, "ConcatenationOptions")
        pre = gr.fresh("concat")
        gr.node("Concat", [gr.operand(t) for t in ins], [pre], axis=opts.Axis())
        _activation(gr, opts.FusedActivationFunction(), pre, out)
    elif kind == "STRIDED_SLICE":
        _strided_slice(gr, op, ins, out)
    else:
        raise ValueError(f"TFLite operator {kind} is not supported by emo_perception.inference.tflite_onnx")


OPS = ("ADD", "CONCATENATION", "CONV_2D", "DEPTHWISE_CONV_2D", "DEQUANTIZE", "DIV", "LOGISTIC", "MAX_POOL_2D",
       "MEAN", "MUL", "NEG", "PAD", "PRELU", "RESHAPE", "RSQRT", "SQRT", "SQUARED_DIFFERENCE", "STRIDED_SLICE",
       "SUB", "SUM", "TRANSPOSE")


BATCH_FREE = {"ADD", "CONV_2D", "DEPTHWISE_CONV_2D", "DEQUANTIZE", "DIV", "LOGISTIC", "MAX_POOL_2D", "MUL", "NEG",
              "PAD", "PRELU", "RSQRT", "SQRT", "SUB"}   # operators that treat every sample of a batch alike


def convert(buf: bytes, input_name: str, outputs: dict, graph_name: str, dynamic_batch: bool = False):
    """The TFLite model in `buf` as an onnx.ModelProto (opset OPSET) with one float32 input named
    `input_name` and the outputs {tflite output tensor name: onnx name} (others are dropped, with
    the operators only they need). Shapes are TFLite's (batch 1); `dynamic_batch`: the first axis of
    the input and outputs becomes "batch", allowed where every operator translated is in BATCH_FREE
    (ValueError otherwise)."""
    import onnx
    from onnx import TensorProto, helper

    gr = _Graph(buf)
    g = gr.g
    by_name = {g.Tensors(int(t)).Name().decode(): int(t) for t in g.OutputsAsNumpy()}
    missing = [n for n in outputs if n not in by_name]
    if missing:
        raise ValueError(f"outputs {missing} are not among the model's {sorted(by_name)}")
    # operators the requested outputs depend on, in the flatbuffer's (topological) order
    needed, stack = set(), [by_name[n] for n in outputs]
    while stack:
        t = stack.pop()
        if t in gr.producer and gr.producer[t] not in needed:
            needed.add(gr.producer[t])
            stack.extend(int(x) for x in g.Operators(gr.producer[t]).InputsAsNumpy() if x >= 0)
    if dynamic_batch:
        bound = sorted({gr.op_type(i) for i in needed} - BATCH_FREE)
        if bound:
            raise ValueError(f"dynamic_batch: operators {bound} may depend on the batch size of 1")
    (inp,) = [int(t) for t in g.InputsAsNumpy()]
    gr.node("Identity", [input_name], [gr.name(inp)])
    for i in sorted(needed):
        _translate(gr, i)
    for tfl_name, onnx_name in outputs.items():
        gr.node("Identity", [gr.operand(by_name[tfl_name])], [onnx_name])
    graph = helper.make_graph(
        gr.nodes, graph_name,
        [helper.make_tensor_value_info(input_name, TensorProto.FLOAT, gr.shape(inp))],
        [helper.make_tensor_value_info(o, TensorProto.FLOAT, gr.shape(by_name[n])) for n, o in outputs.items()],
        # sorted by name: the shipped file must be reproducible byte for byte
        initializer=sorted(gr.initializers, key=lambda t: t.name))
    if dynamic_batch:
        for tensor in list(graph.input) + list(graph.output):
            tensor.type.tensor_type.shape.dim[0].dim_param = "batch"
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)],
                              producer_name="emo_perception.inference.tflite_onnx")
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model
