"""TFLite (LiteRT) export: float32, float16, dynamic-range and full-integer int8, that
on-device clients run on raw text.

The graph takes token ids, never raw text: TF Text's tokenizer ops are not in the LiteRT
runtime, so the model is converted without its preprocessor (`inference_model`). Its
int32 inputs are the model's own (`input_names`: BERT's `token_ids`, `segment_ids`,
`padding_mask`, in that order, as the TFLite Task Library reads them by position;
RoBERTa's without `segment_ids`...) and take any batch and length; an
input longer than the preprocessor's sequence length L is cut in the graph as Keras'
preprocessor cuts text ([CLS], the first L-2 pieces, the final [SEP]:
`truncate_like_keras`), so a client that feeds every word piece gets Keras' logits and
never runs past the position table. One output by default, `probabilities`; logits
through `outputs=`. TFLite Model Metadata (`client_metadata.py`: tensor roles,
tokenizer and vocabulary, labels) makes the file run on raw text in MediaPipe Tasks'
TextClassifier (Android, iOS, web) and the Task Library's BertNLClassifier; a student
those clients would tokenise differently (cased vocabulary, sentence pairs, byte-level
BPE) is written without it, with a warning saying why. Only TFLite builtin ops are
used, so the plain LiteRT runtime runs it (no Flex delegate): the layers whose
keras-hub code traces to ops the builtins lack (DeBERTaV3's relative positions, F-Net's
FFT, RoFormerV2's rotary slices) are converted in an exact builtin formulation
(`builtin_ops.py`); a model that still needs other TF ops falls back to Select TF ops
with a printed note.

The int8 graph gets two rewrites after conversion (`xnnpack_int8_rewrites`), adding only
int8 ops, so that LiteRT's default CPU delegate (XNNPACK) runs the attention and the
layer norms instead of LiteRT's own, much slower, int8 kernels; see
docs/DEPLOYMENT.md, "Latency and size", for the measurements behind them.
"""

import collections
import copy
import functools
import pathlib
import re
import tempfile
import warnings

import keras
import numpy as np
import tensorflow as tf

from keras_tinybert.export import builtin_ops, client_metadata, tflite_metadata
from keras_tinybert.export.artifacts import (
    build_metadata,
    complete_inputs,
    find_preprocessor,
    inference_model,
    input_names,
    is_token_ids,
    metadata_path,
    token_id_spec,
    token_ids,
    write_json,
)

QUANTIZATIONS = (None, "dynamic", "float16", "int8")
OUTPUTS = ("probabilities", "logits", "both")


class ClientMetadataWarning(UserWarning):
    """A `.tflite` was written without client metadata: on-device clients would not
    read text the way the Keras preprocessor does (the message says why)."""


def tflite(
    model,
    path,
    quantization=None,
    representative_data=None,
    preprocessor=None,
    metadata=None,
    outputs=None,
):
    """Convert `model` to a `.tflite` file at `path`; return the path.

    quantization:
      None       float32 weights and activations.
      "float16"  float16 weights, float32 compute: half the size, near-float accuracy.
      "dynamic"  int8 weights, activations quantised on the fly per op.
      "int8"     full-integer: int8 weights *and* activations, calibrated on
                 `representative_data` (real sentences, tokenised with `preprocessor` or
                 the model's own; or a dict of int32 token-id arrays). Inputs stay int32
                 token ids (they are indices); outputs are float32.
                 Rewritten for XNNPACK (`xnnpack_int8_rewrites`); the metadata counts
                 the rewrites under `int8_rewrites`.
    outputs: "probabilities" (default; the one float32 [batch, num_classes] output
      that MediaPipe and the Task Library read), "logits" (the default for a
      one-output, i.e. regression, model), or "both" (logits, then probabilities).
      The softmax runs in float32 after the graph, int8 included.
    metadata: the student's own metadata (label names, teacher, task...).

    The file carries TFLite Model Metadata for on-device clients unless
    `client_metadata.client_problems` finds a reason they would read text differently
    from Keras; then a `ClientMetadataWarning` names it and the plain file is written.
    `<name>.metadata.json` beside it records `client_metadata` (true/false) and
    `client_problems`.
    """
    quantization = normalize_quantization(quantization)
    path = pathlib.Path(path)
    _check_output(path)
    inference_model(model)  # a bare backbone: a clear error
    preprocessor = find_preprocessor(model, preprocessor)
    output_names = normalize_outputs(outputs, int(model.output_shape[-1]))
    max_length = input_length_limit(model, preprocessor)
    calibration = None
    if quantization == "int8":
        calibration = _calibration_inputs(model, representative_data, preprocessor)
    problems = client_metadata.client_problems(preprocessor, metadata)
    inputs = file_inputs(model, client_ready=not problems)
    content, flex_ops = convert_with_note(model, quantization, calibration, max_length=max_length,
                                          inputs=inputs)
    rewrites = None
    if quantization == "int8":
        content, rewrites = xnnpack_int8_rewrites(content)
    content = client_layout(content, output_names)
    export_metadata = build_metadata(
        model,
        preprocessor,
        source=metadata,
        format="tflite",
        quantization=quantization or "none",
        calibration_examples=None if calibration is None else len(calibration["token_ids"]),
        int8_rewrites=rewrites,
        inputs=list(inputs),
        model_inputs=list(input_names(model)),
        outputs=list(output_names),
        max_input_length=max_length,
        select_tf_ops=flex_ops,
    )
    if tuple(inputs) != client_metadata.INPUT_ORDER:
        problems.append(f"the model takes inputs {list(inputs)}, while the clients feed "
                        f"{list(client_metadata.INPUT_ORDER)}")
    if flex_ops:
        problems.append(f"it needs Select TF ops ({', '.join(flex_ops)}), which the clients' runtimes lack")
    if problems:
        warnings.warn(
            f"{path} is written without client metadata: MediaPipe's TextClassifier and the "
            "TFLite Task Library would not read text as the Keras preprocessor does, because "
            + "; and ".join(problems) + ". The file still runs on token ids.",
            ClientMetadataWarning,
            stacklevel=2,
        )
    else:
        content = _with_client_metadata(content, preprocessor, export_metadata, output_names, max_length)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)
    write_json(metadata_path(path), {**export_metadata, "client_metadata": not problems,
                                     "client_problems": problems})
    return path


def _with_client_metadata(content, preprocessor, export_metadata, output_names, max_length):
    description = (f"{export_metadata['num_classes']}-class text classifier distilled with keras-tinybert; "
                   f"quantization: {export_metadata['quantization']}.")
    metadata, files = client_metadata.model_metadata(
        client_metadata.client_tokenizer(preprocessor), export_metadata["label_names"],
        output_names, max_length, description,
    )
    return tflite_metadata.attach(content, metadata, files)


def normalize_outputs(outputs, num_classes):
    """The graph's outputs, in order: ("probabilities",), ("logits",) or both."""
    if outputs is None:
        outputs = "probabilities" if num_classes > 1 else "logits"
    if outputs not in OUTPUTS:
        raise ValueError(f"Unknown outputs {outputs!r}; use 'probabilities', 'logits' or 'both'.")
    if outputs == "both":
        return ("logits", "probabilities")
    if outputs == "probabilities" and num_classes == 1:
        raise ValueError("The model has one output (regression): its softmax is always 1. Use outputs='logits'.")
    return (outputs,)


def input_length_limit(model, preprocessor):
    """L, the longest input the graph keeps: the preprocessor's sequence length, else
    the backbone's position table; None if neither is known."""
    length = getattr(preprocessor, "sequence_length", None)
    if length is None:
        length = getattr(getattr(model, "backbone", None), "max_sequence_length", None)
    return int(length) if length else None


def truncate_like_keras(inputs, max_length):
    """Cut token-id inputs longer than `max_length` as keras-hub's packer cuts a single
    segment: keep [CLS] and the first L-2 pieces, then the row's last real token (its
    [SEP]). Shorter inputs pass unchanged. Branch-free (a GATHER per input), so the
    plain LiteRT runtime and int8 conversion take it; rows may be padded at the end.
    """
    length = tf.shape(inputs["token_ids"])[1]
    kept = tf.minimum(length, max_length)
    if "padding_mask" in inputs:
        real = tf.reduce_sum(tf.cast(inputs["padding_mask"], tf.int32), axis=1)
    else:  # F-Net takes no mask: its rows are read as unpadded
        real = tf.fill(tf.shape(inputs["token_ids"])[:1], length)
    last = tf.maximum(kept - 1, real - 1)  # the [SEP] of a row longer than L, else kept-1
    positions = tf.range(kept)[tf.newaxis, :]
    index = tf.where(positions == kept - 1, last[:, tf.newaxis], positions)
    return {name: tf.gather(value, index, batch_dims=1) for name, value in inputs.items()}


def pad_like_keras(inputs, max_length, pad_id=0):
    """Pad rows at the end to `max_length`, as keras-hub's packer pads them, for a model
    that reads no padding mask (F-Net, RoFormerV2): its output depends on the padded
    length (F-Net's Fourier transform mixes every position; keras-hub 0.32's RoFormerV2
    lets queries see padded keys), so an unpadded row from a client is padded here as
    Keras' preprocessor would pad it. Token ids get `pad_id`, other inputs 0."""
    extra = tf.maximum(max_length - tf.shape(inputs["token_ids"])[1], 0)
    return {name: tf.pad(value, [[0, 0], [0, extra]], constant_values=pad_id if name == "token_ids" else 0)
            for name, value in inputs.items()}


def normalize_quantization(quantization):
    """None / "none" -> None; otherwise one of `QUANTIZATIONS`, or a clear error."""
    if quantization in (None, "none", "float32"):
        return None
    if quantization not in QUANTIZATIONS:
        raise ValueError(
            f"Unknown quantization {quantization!r}; use one of None, 'dynamic', "
            "'float16' or 'int8'."
        )
    return quantization


class SelectTfOpsNote(UserWarning):
    """The `.tflite` needs TensorFlow ops (Flex) beyond TFLite's builtins; the message
    names them and what the app must link."""


def file_inputs(model, client_ready):
    """The `.tflite`'s int32 inputs: the clients' three (`client_metadata.INPUT_ORDER`)
    when the model reads a subset of them and the clients can read its text
    (`client_ready`), so that DistilBERT (no segment ids), RoFormerV2 and F-Net (no
    mask) run in MediaPipe and the Task Library, which feed all three; the graph
    ignores the ones the model does not read. Otherwise the model's own."""
    own = input_names(model)
    if client_ready and set(own) <= set(client_metadata.INPUT_ORDER):
        return client_metadata.INPUT_ORDER
    return own


def convert_with_note(model, quantization=None, calibration=None, max_length=None, inputs=None):
    """`(bytes, flex_ops)`: the builtin-only graph when it converts, else the graph with
    Select TF ops and the sorted names of the TF ops it needs (a `SelectTfOpsNote` is
    warned and printed): never a raw converter traceback."""
    try:
        return convert(model, quantization, calibration, max_length=max_length, inputs=inputs), []
    except Exception as error:  # the converter raises ConverterError, with the ops in its text
        flex_ops = sorted(set(re.findall(r"'(tf\.[A-Za-z0-9_]+)' op is neither a custom op nor a flex op",
                                         str(error))))
        if not flex_ops:
            raise
    note = (f"{type(model).__name__}: TFLite's builtin ops lack {', '.join(flex_ops)}; the file uses "
            "Select TF ops (Flex). The app must link the Flex delegate: Android "
            "'org.tensorflow:tensorflow-lite-select-tf-ops', iOS 'TensorFlowLiteSelectTfOps'; neither the "
            "ai-edge-litert Python package nor TensorFlow's pip build links it, so `verify` cannot run "
            "this file here (verify the SavedModel instead). MediaPipe and the Task Library cannot run it.")
    print(f"note: {note}")
    warnings.warn(note, SelectTfOpsNote, stacklevel=3)
    return convert(model, quantization, calibration, max_length=max_length, select_tf_ops=True,
                   inputs=inputs), flex_ops


def convert(model, quantization=None, calibration=None, max_length=None, select_tf_ops=False,
            inputs=None):
    """The TFLite flatbuffer bytes for `model`, as the converter writes them: one
    `serving_default` signature, token ids in (cut to `max_length` by
    `truncate_like_keras`), float32 `logits` out, traced with `builtin_ops`'
    formulations. `inputs` (default: the model's) may add inputs the model does not
    read (`file_inputs`). `tflite` then applies
    `xnnpack_int8_rewrites` (int8) and `client_layout`."""
    pad_id = getattr(getattr(getattr(model, "preprocessor", None), "tokenizer", None), "pad_token_id", 0)
    model = inference_model(model)  # no preprocessor: a tokenizer is not part of a TFLite graph
    reads = input_names(model)
    with tempfile.TemporaryDirectory() as tmp, builtin_ops.builtin_formulations(model):
        archive = keras.export.ExportArchive()
        archive.track(model)

        def serve(feed):
            if max_length:
                feed = truncate_like_keras(feed, max_length)
                if "padding_mask" not in reads:
                    feed = pad_like_keras(feed, max_length, pad_id or 0)
            return {"logits": tf.cast(model({k: feed[k] for k in reads}, training=False), tf.float32)}

        archive.add_endpoint("serving_default",
                             tf.function(serve, input_signature=[token_id_spec(inputs or reads)]))
        archive.write_out(tmp, verbose=False)
        converter = tf.lite.TFLiteConverter.from_saved_model(tmp, signature_keys=["serving_default"])
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
        if select_tf_ops:
            converter.target_spec.supported_ops.append(tf.lite.OpsSet.SELECT_TF_OPS)
        if quantization is not None:
            converter.optimizations = [tf.lite.Optimize.DEFAULT]
        if quantization == "float16":
            converter.target_spec.supported_types = [tf.float16]
        if quantization == "int8":
            converter.representative_dataset = _unpadded_examples(
                complete_inputs(calibration, inputs or reads))
            # Fail rather than silently keep float ops: every op must have an int8 kernel.
            converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8] + (
                [tf.lite.OpsSet.SELECT_TF_OPS] if select_tf_ops else [])
        return converter.convert()


def client_layout(content, outputs):
    """Give a converted graph the layout clients read: inputs in `INPUT_ORDER`, and
    `outputs` ("logits" and/or "probabilities", in that order) as its outputs and its
    signature's. Probabilities are a float32 SOFTMAX added after the logits (after
    int8's DEQUANTIZE too, so they are not rounded to int8's 1/256 steps)."""
    from tensorflow.lite.tools import flatbuffer_utils

    schema = _schema()
    model = flatbuffer_utils.read_model_from_bytearray(bytearray(content))
    (graph,), (signature,) = model.subgraphs, model.signatureDefs
    inputs = {_text(t.name): t.tensorIndex for t in signature.inputs}
    order = [name for name in client_metadata.INPUT_ORDER if name in inputs]
    order += sorted(name for name in inputs if name not in order)
    _renumber_tensors(model, [inputs[name] for name in order])
    graph.inputs = np.arange(len(order), dtype=np.int32)
    logits = {_text(t.name): t.tensorIndex for t in signature.outputs}["logits"]
    tensors = {"logits": logits}
    if "probabilities" in outputs:
        probabilities = copy.deepcopy(graph.tensors[logits])
        probabilities.name = b"probabilities"
        model.buffers.append(schema.BufferT())
        probabilities.buffer = len(model.buffers) - 1
        graph.tensors.append(probabilities)
        tensors["probabilities"] = len(graph.tensors) - 1
        softmax = schema.OperatorT()
        softmax.opcodeIndex = _opcode(model, "SOFTMAX", version=1)
        softmax.inputs, softmax.outputs = [logits], [tensors["probabilities"]]
        softmax.builtinOptionsType = schema.BuiltinOptions.SoftmaxOptions
        softmax.builtinOptions = schema.SoftmaxOptionsT()
        softmax.builtinOptions.beta = 1.0
        graph.operators.append(softmax)
    graph.outputs = np.array([tensors[name] for name in outputs], np.int32)
    signature.outputs = []
    for name in outputs:
        entry = schema.TensorMapT()
        entry.name, entry.tensorIndex = name.encode(), tensors[name]
        signature.outputs.append(entry)
    return bytes(flatbuffer_utils.convert_object_to_bytearray(model))


def _renumber_tensors(model, first):
    """Make tensors `first` the graph's tensors 0, 1, 2...: MediaPipe resizes a dynamic
    input by its position among the inputs as if it were its tensor index, so input i
    must be tensor i. Every reference (ops, graph inputs and outputs, signature) is
    renumbered."""
    (graph,) = model.subgraphs
    order = list(first) + [t for t in range(len(graph.tensors)) if t not in set(first)]
    new_index = np.empty(len(order), np.int64)
    new_index[order] = np.arange(len(order))

    def renumber(indices):
        return None if indices is None else [int(new_index[t]) if t >= 0 else t for t in indices]

    graph.tensors = [graph.tensors[t] for t in order]
    for op in graph.operators:
        op.inputs, op.outputs, op.intermediates = renumber(op.inputs), renumber(op.outputs), renumber(op.intermediates)
    graph.inputs, graph.outputs = renumber(graph.inputs), renumber(graph.outputs)
    for signature in model.signatureDefs:
        for entry in [*signature.inputs, *signature.outputs]:
            entry.tensorIndex = int(new_index[entry.tensorIndex])


def _opcode(model, name, version):
    """The index of the operator code (`name`, `version`), added if missing."""
    schema = _schema()
    number = getattr(schema.BuiltinOperator, name)
    for i, code in enumerate(model.operatorCodes):
        if max(code.builtinCode, code.deprecatedBuiltinCode) == number and code.version == version:
            return i
    code = schema.OperatorCodeT()
    code.builtinCode = code.deprecatedBuiltinCode = number
    code.version = version
    model.operatorCodes.append(code)
    return len(model.operatorCodes) - 1


def _text(value):
    return value.decode() if isinstance(value, bytes) else value


def _unpadded_examples(inputs):
    """A representative-dataset generator: one example at a time, cut to its real length.

    keras-hub's attention fills padded keys with about -2e38 before the softmax. Seen in
    calibration, that value would set the int8 range of the attention scores and crush
    every real score to zero. Without padding it is never seen; at inference a padded
    key saturates at the lowest int8 score instead, which the softmax all but ignores.
    """
    mask = inputs.get("padding_mask", np.ones_like(inputs["token_ids"]))
    lengths = np.asarray(mask).astype(bool).sum(axis=1)

    def generate():
        for i, length in enumerate(lengths):
            yield {name: array[i : i + 1, :length] for name, array in inputs.items()}

    return generate


def _calibration_inputs(model, representative_data, preprocessor):
    """Token ids to calibrate int8 activation ranges on."""
    if representative_data is None or len(representative_data) == 0:
        raise ValueError(
            "quantization='int8' needs representative_data: a few hundred real sentences "
            "from the task (e.g. training-set sentences) or a dict of int32 token ids, so "
            "activation ranges are calibrated on the data the model will see."
        )
    if is_token_ids(representative_data):
        return {name: np.asarray(array, dtype="int32") for name, array in representative_data.items()}
    return token_ids(find_preprocessor(model, preprocessor), representative_data, input_names(model))


def _check_output(path):
    if path.suffix != ".tflite":
        raise ValueError(f"TFLite output must end with `.tflite`; got {path}.")
    for existing in (path, metadata_path(path)):
        if existing.exists():
            raise FileExistsError(f"{existing} exists; not overwriting it. Choose another output path.")


# --- int8 rewrites for XNNPACK -----------------------------------------------------------

# int8 kernels that requantise whatever parameters their inputs have to those of their
# output (or, SHAPE, never read the values): a tensor between two of these may take new
# quantization parameters without changing what the other ops compute.
_REQUANTISING = {
    "ADD", "BATCH_MATMUL", "DEQUANTIZE", "FULLY_CONNECTED", "GELU", "LOGISTIC", "MEAN", "MUL",
    "QUANTIZE", "RSQRT", "SHAPE", "SOFTMAX", "SQUARED_DIFFERENCE", "SUB", "TANH",
}
# ...except these, whose int8 output parameters are fixed (1/256 for probabilities...).
_FIXED_OUTPUT = {"LOGISTIC", "SOFTMAX", "TANH"}
# Ops that move int8 values unchanged: their input 0 and output share parameters.
_SHAPE_ONLY = {"EXPAND_DIMS", "RESHAPE", "SQUEEZE", "TRANSPOSE"}
# XNNPACK's int8 SUB takes an input whose scale is at least this fraction of the output's.
_XNNPACK_MIN_SUB_SCALE_RATIO = 1 / 1024


def xnnpack_int8_rewrites(content):
    """Rewrite a full-integer `.tflite` so LiteRT's XNNPACK delegate runs the attention
    matmuls and the layer-norm variances; every op they touch or add is int8.

    Returns `(bytes, counts)`, counts as {"symmetric_matmul_operands": n,
    "squared_difference_split": m}.

    1. XNNPACK runs an int8 BATCH_MATMUL only if its second operand's zero point is 0;
       calibration gives K and V asymmetric ranges, so LiteRT ran most attention matmuls
       in its own int8 kernel (1.4 ms for one QK^T of TinyBERT4 at seq 128; all 8 take
       0.6 ms in XNNPACK). That operand, and the RESHAPE/TRANSPOSE chain back to the op that
       computes it (they share its parameters), get the symmetric range covering the
       calibrated one: scale max(|min|, |max|) / 127, zero point 0; the producing op
       requantises to it. Cost: at most one bit of resolution on a one-sided range.
    2. XNNPACK has no int8 SQUARED_DIFFERENCE (the variance in every layer norm), and
       LiteRT's int8 kernel broadcasts slowly (0.3 ms each). (x - m)^2 becomes SUB, then
       MUL of the difference by itself; the difference gets the symmetric range implied
       by the calibrated output range, |x - m| <= sqrt(max (x - m)^2). An operand whose
       scale is under 1/1024 of the difference's (XNNPACK's limit for SUB; a near-zero
       mean does that) has its range widened to that limit.
    """
    from tensorflow.lite.tools import flatbuffer_utils

    model = flatbuffer_utils.read_model_from_bytearray(bytearray(content))
    counts = {"symmetric_matmul_operands": 0, "squared_difference_split": 0}
    for graph in model.subgraphs:
        counts["symmetric_matmul_operands"] += _symmetric_matmul_operands(model, graph)
        counts["squared_difference_split"] += _split_squared_differences(model, graph)
    return bytes(flatbuffer_utils.convert_object_to_bytearray(model)), counts


def _schema():
    from tensorflow.lite.python import schema_py_generated

    return schema_py_generated


@functools.cache
def _builtin_names():
    return {v: k for k, v in vars(_schema().BuiltinOperator).items() if not k.startswith("_")}


def _op_name(model, op):
    code = model.operatorCodes[op.opcodeIndex]
    number = max(code.builtinCode, code.deprecatedBuiltinCode)  # deprecated caps at 127
    return _builtin_names().get(number, "CUSTOM")


def _edges(graph):
    producer = {t: op for op in graph.operators for t in op.outputs}
    consumers = collections.defaultdict(list)
    for op in graph.operators:
        for t in op.inputs:
            if t >= 0:
                consumers[t].append(op)
    return producer, consumers


def _int8_params(tensor):
    """(scale, zero point) of a per-tensor int8 tensor, else None."""
    q = tensor.quantization
    if tensor.type != _schema().TensorType.INT8 or q is None or q.scale is None or len(q.scale) != 1:
        return None
    return float(q.scale[0]), int(q.zeroPoint[0])


def _set_params(tensor, scale, zero_point):
    tensor.quantization.scale = np.array([scale], np.float32)
    tensor.quantization.zeroPoint = np.array([zero_point], np.int64)
    tensor.quantization.min = tensor.quantization.max = None  # calibration record, now stale


def _parameter_group(model, graph, tensor, edges):
    """The tensors that must share `tensor`'s quantization parameters (linked through
    shape-only ops), or None if one of them may not take new ones: a constant, a graph
    input or output, one read or written by an op that does not requantise, or the
    output of an op whose output parameters are fixed."""
    producer, consumers = edges
    params = _int8_params(graph.tensors[tensor])
    fixed = set(graph.inputs) | set(graph.outputs)
    group, todo = set(), [tensor]
    while todo:
        t = todo.pop()
        if t in group:
            continue
        buffer = model.buffers[graph.tensors[t].buffer]
        if t in fixed or t not in producer or (buffer.data is not None and len(buffer.data)):
            return None
        if _int8_params(graph.tensors[t]) != params:
            return None
        group.add(t)
        if _op_name(model, producer[t]) in _FIXED_OUTPUT:
            return None
        for op in [producer[t], *consumers[t]]:
            name = _op_name(model, op)
            if name in _SHAPE_ONLY:
                todo += [op.inputs[0], op.outputs[0]]
            elif name not in _REQUANTISING:
                return None
    return group


def _symmetric_matmul_operands(model, graph):
    """Rewrite 1 of `xnnpack_int8_rewrites`; returns how many matmuls it changed."""
    changed = 0
    edges = _edges(graph)
    for op in graph.operators:
        if _op_name(model, op) != "BATCH_MATMUL":
            continue
        params = _int8_params(graph.tensors[op.inputs[1]])
        if params is None or params[1] == 0:
            continue
        group = _parameter_group(model, graph, op.inputs[1], edges)
        if group is None:
            continue
        scale, zero_point = params
        bound = max(-128 - zero_point, 127 - zero_point, key=abs) * scale
        for t in group:
            _set_params(graph.tensors[t], abs(bound) / 127, 0)
        changed += 1
    return changed


def _split_squared_differences(model, graph):
    """Rewrite 2 of `xnnpack_int8_rewrites`; returns how many it split."""
    schema = _schema()
    edges = _edges(graph)
    operators, split = [], 0
    for op in graph.operators:
        output = graph.tensors[op.outputs[0]]
        params = _int8_params(output)
        if _op_name(model, op) != "SQUARED_DIFFERENCE" or params is None:
            operators.append(op)
            continue
        scale, zero_point = params
        difference_scale = float(np.sqrt((127 - zero_point) * scale)) / 127
        for operand in op.inputs:
            _widen_to(model, graph, operand, difference_scale * _XNNPACK_MIN_SUB_SCALE_RATIO * 1.01, edges)
        difference = copy.deepcopy(output)
        difference.name = output.name + b"/difference"
        model.buffers.append(schema.BufferT())
        difference.buffer = len(model.buffers) - 1
        _set_params(difference, difference_scale, 0)
        graph.tensors.append(difference)
        subtract = _operator(model, "SUB", list(op.inputs), [len(graph.tensors) - 1])
        square = _operator(model, "MUL", [len(graph.tensors) - 1] * 2, list(op.outputs))
        operators += [subtract, square]
        split += 1
    graph.operators = operators
    return split


def _widen_to(model, graph, tensor, min_scale, edges):
    """Give `tensor` (and its group) at least `min_scale`, still covering its range."""
    params = _int8_params(graph.tensors[tensor])
    if params is None or params[0] >= min_scale:
        return
    group = _parameter_group(model, graph, tensor, edges)
    if group is None:
        return
    scale, zero_point = params
    low = (-128 - zero_point) * scale  # <= 0: calibrated ranges always hold 0
    new_zero_point = int(np.clip(np.ceil(-128 - low / min_scale), -128, 127))
    for t in group:
        _set_params(graph.tensors[t], min_scale, new_zero_point)


def _operator(model, name, inputs, outputs):
    """A new int8 SUB or MUL operator (no fused activation)."""
    schema = _schema()
    number = getattr(schema.BuiltinOperator, name)
    index = next(
        (i for i, code in enumerate(model.operatorCodes)
         if max(code.builtinCode, code.deprecatedBuiltinCode) == number),
        None,
    )
    if index is None:
        code = schema.OperatorCodeT()
        code.builtinCode = code.deprecatedBuiltinCode = number
        code.version = 2  # the int8 kernel
        model.operatorCodes.append(code)
        index = len(model.operatorCodes) - 1
    op = schema.OperatorT()
    op.opcodeIndex, op.inputs, op.outputs = index, inputs, outputs
    op.builtinOptionsType = getattr(schema.BuiltinOptions, name.capitalize() + "Options")
    op.builtinOptions = getattr(schema, name.capitalize() + "OptionsT")()
    return op
