"""Check that an export is the same model: run it and the Keras model on the same inputs."""

import dataclasses
import pathlib

import numpy as np
import tensorflow as tf

from keras_tinybert.export.artifacts import (
    artifact_size_mb,
    complete_inputs,
    find_preprocessor,
    input_names,
    is_token_ids,
    require_tensorflow,
    text_columns,
    token_ids,
)
from keras_tinybert.export.client_metadata import wrapping_ids
from keras_tinybert.quiet import LITERT_NOISE, filtered_stderr


@dataclasses.dataclass
class Parity:
    """Export vs Keras on the same inputs: worst difference and argmax agreement.

    `compared` is "logits", or "log_probabilities" for a `.tflite` whose only output
    is probabilities (then `max_abs_diff` is the worst |log p - Keras' log-softmax| and
    `export_logits` are log p shifted into Keras' logit frame). The `client_*` fields
    hold the on-device feed check of a `.tflite` (`client_parity`), else None.
    """

    artifact: str
    signature: str
    num_examples: int
    max_abs_diff: float
    agreement: float
    size_mb: float
    export_logits: np.ndarray = dataclasses.field(repr=False)
    keras_logits: np.ndarray = dataclasses.field(repr=False)
    compared: str = "logits"
    client_max_abs_diff: float = None
    client_agreement: float = None
    client_num_examples: int = None
    client_longest_input: int = None

    def __str__(self):
        what = "logit" if self.compared == "logits" else "log p"
        text = (
            f"{self.artifact} [{self.signature}]: {self.size_mb:.2f} MB, max |Δ{what}| "
            f"{self.max_abs_diff:.2e}, argmax agreement {self.agreement:.2%} "
            f"over {self.num_examples} examples"
        )
        if self.client_agreement is not None:
            text += (
                f"; as a client feeds it (batch 1, untruncated, up to {self.client_longest_input} ids): "
                f"max |Δ{what}| {self.client_max_abs_diff:.2e}, agreement {self.client_agreement:.2%} "
                f"over {self.client_num_examples} texts"
            )
        return text


def verify(artifact, model, inputs, preprocessor=None, signature=None, batch_size=32, trim_padding=True,
           client_check=True):
    """Run `artifact` (a `.tflite` file or a SavedModel) and `model` on `inputs`.

    `inputs` are raw sentences, a dict of sentence columns (pairs, named as the
    SavedModel's text inputs), or a dict of int32 token-id arrays. Text goes as text
    to a SavedModel's raw-string `serving_default` (so the in-graph tokenizer is checked
    too) and are tokenised with `preprocessor` (default: the model's) for everything
    else. `signature` forces a SavedModel signature. `trim_padding`: see
    `tflite_predictor`. A `.tflite` with only probabilities is compared in log space
    (log p against Keras' log-softmax). With `client_check`, sentences are also fed to
    a `.tflite` the way an on-device client feeds them (`client_parity`: batch 1,
    untruncated, plus one over-long text). Returns a `Parity`.
    """
    require_tensorflow()
    artifact = pathlib.Path(artifact)
    if not artifact.exists():
        raise FileNotFoundError(f"No export at {artifact}.")
    is_text = not is_token_ids(inputs)
    names = input_names(model)
    ids = token_ids(find_preprocessor(model, preprocessor), inputs, names) if is_text else _as_int32(inputs, names)
    output = "logits"
    client = {}
    if artifact.suffix == ".tflite":
        predict = tflite_predictor(artifact, trim_padding=trim_padding)
        signature, feed, output = "serving_default", ids, predict.output
        if client_check and is_text and not isinstance(inputs, dict):
            difference, agreement, count, longest = client_parity(artifact, model, inputs, preprocessor)
            client = dict(client_max_abs_diff=difference, client_agreement=agreement,
                          client_num_examples=count, client_longest_input=longest)
    else:
        artifact = latest_version(artifact)
        signature, predict = saved_model_predictor(artifact, signature, text=is_text)
        feed = ids
        if signature_takes_text(predict):
            if not is_text:
                raise ValueError(f"Signature {signature!r} takes raw text: pass sentences, or signature='serve_token_ids'.")
            feed = _text_feed(inputs, predict.input_names)
    exported = _batched(predict, feed, batch_size)
    reference = _batched(lambda batch: model(batch, training=False), ids, batch_size)
    difference, agreement = _compare(exported, reference, output)
    if output == "log_probabilities":  # in Keras' logit frame: log p + logsumexp(logits)
        exported = exported + tf.reduce_logsumexp(reference, axis=-1, keepdims=True).numpy()
    return Parity(
        artifact=str(artifact),
        signature=signature,
        num_examples=len(reference),
        max_abs_diff=difference,
        agreement=agreement,
        size_mb=artifact_size_mb(artifact),
        export_logits=exported,
        keras_logits=reference,
        compared=output,
        **client,
    )


def tflite_predictor(path, num_threads=None, trim_padding=True):
    """A function: dict of int32 arrays -> float32 scores, through the LiteRT interpreter.

    The scores are the file's `logits` output; for a file with `probabilities` only,
    their logarithm (floored at log of the smallest normal float32): logits up to a
    constant per row, which is all argmax and `verify` need. `predict.output` says
    which ("logits" or "log_probabilities").

    With `trim_padding`, each batch runs at its longest real length (keras-hub pads at
    the end; the TFLite graph takes any length), as an app would run it: less compute,
    and fewer padded keys for an int8 model to approximate.
    """
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError as error:
        raise ImportError(
            "Running a .tflite export needs the LiteRT interpreter: "
            "pip install 'keras-tinybert[tflite]' (the ai-edge-litert package)."
        ) from error

    runner = _signature_runner(Interpreter, path, num_threads)
    output = "logits" if "logits" in runner.get_output_details() else "probabilities"
    names = tuple(runner.get_input_details())

    def predict(batch):
        length = batch["token_ids"].shape[1]
        if trim_padding and "padding_mask" in batch:
            length = max(1, int(np.asarray(batch["padding_mask"]).astype(bool).sum(axis=1).max()))
        feed = complete_inputs({name: np.asarray(v)[:, :length] for name, v in batch.items()}, names)
        scores = runner(**feed)[output]
        return scores if output == "logits" else log_floored(scores)

    predict.input_names = names
    predict.output = "logits" if output == "logits" else "log_probabilities"
    return predict


def _signature_runner(Interpreter, path, num_threads):
    """The `serving_default` runner of a `.tflite`: LiteRT's interpreter, or, for a file
    with Select TF ops (which that runtime lacks), TensorFlow's, which links the Flex
    delegate. One warm-up run, with fd 2 filtered: it creates the XNNPACK delegate,
    which prints a line, and shows whether the Flex ops really run."""
    flex = uses_select_tf_ops(path)
    make = tf.lite.Interpreter if flex else Interpreter
    with filtered_stderr(LITERT_NOISE):
        runner = make(model_path=str(path), num_threads=num_threads).get_signature_runner("serving_default")
        try:
            runner(**{name: np.ones([1, 4], "int32") for name in runner.get_input_details()})
        except RuntimeError as error:
            if not flex:
                raise
            raise SelectTfOpsUnavailable(
                f"{path} uses Select TF ops (Flex), and no interpreter here links the Flex delegate "
                "(LiteRT's Python package has none; TensorFlow's pip build neither). Run it in an app "
                "that links the Flex delegate, or verify the SavedModel export of the same model.") from error
    return runner


class SelectTfOpsUnavailable(RuntimeError):
    """A `.tflite` with Select TF ops cannot run here: no Flex delegate is linked."""


def uses_select_tf_ops(path):
    """Whether a `.tflite` holds Select TF ops (custom ops named `Flex...`)."""
    from tensorflow.lite.tools import flatbuffer_utils

    model = flatbuffer_utils.read_model(str(path))
    return any((code.customCode or b"").startswith(b"Flex") for code in model.operatorCodes)


def log_floored(probabilities):
    """log p, with p floored at the smallest normal float32 (a softmax underflows there)."""
    return np.log(np.maximum(np.asarray(probabilities, "float32"), np.finfo("float32").tiny))


def client_parity(path, model, sentences, preprocessor=None):
    """Run a `.tflite` as an on-device client feeds it, and compare with Keras.

    Each sentence is tokenised with the Keras tokenizer but not cut or padded:
    `[CLS] every piece [SEP]`, batch 1 (what MediaPipe's TextClassifier and the Task
    Library's BertNLClassifier send), plus one synthetic text longer than both the
    preprocessor's sequence length and the position table (the sentences' words,
    repeated). Keras runs the same text through its own preprocessor, which cuts
    it. Returns `(max |Δ|, argmax agreement, count, longest input in ids)`.
    """
    preprocessor = find_preprocessor(model, preprocessor)
    texts = list(sentences) + [_overlong_text(model, preprocessor, sentences)]
    feeds = client_token_ids(preprocessor, texts)
    predict = tflite_predictor(path, trim_padding=False)
    exported = np.concatenate([predict(feed) for feed in feeds])
    reference = _batched(lambda batch: model(batch, training=False),
                         token_ids(preprocessor, texts, input_names(model)), 32)
    difference, agreement = _compare(exported, reference, predict.output)
    return difference, agreement, len(texts), max(len(feed["token_ids"][0]) for feed in feeds)


def client_token_ids(preprocessor, texts):
    """[{input: int32 [1, n]}]: each text as `[CLS] pieces [SEP]`, untruncated."""
    pieces = preprocessor.tokenizer([str(t) for t in texts])
    pieces = pieces.to_list() if hasattr(pieces, "to_list") else [list(np.asarray(p)) for p in pieces]
    start, end = wrapping_ids(preprocessor)
    feeds = []
    for row in pieces:
        ids = np.array([start, *row, end], dtype="int32")[np.newaxis]
        feeds.append({"token_ids": ids, "segment_ids": np.zeros_like(ids), "padding_mask": np.ones_like(ids)})
    return feeds


def _overlong_text(model, preprocessor, sentences):
    """Words of the sentences, repeated, more of them than the preprocessor's sequence
    length and the backbone's position table (every word is at least one piece)."""
    limit = max(getattr(preprocessor, "sequence_length", 0) or 0,
                getattr(getattr(model, "backbone", None), "max_sequence_length", 0) or 0)
    words = " ".join(str(s) for s in sentences).split() or ["a"]
    return " ".join(words[i % len(words)] for i in range(limit + 2))


def _compare(exported, reference, output):
    """(max |Δ|, argmax agreement) of exported scores against Keras logits; for
    log-probabilities, against Keras' log-softmax, floored the same way."""
    if output == "log_probabilities":
        reference = log_floored(tf.nn.softmax(reference, axis=-1).numpy())
    return (float(np.max(np.abs(exported - reference))),
            float(np.mean(exported.argmax(-1) == reference.argmax(-1))))


def xnnpack_coverage(path, inputs, num_threads=1):
    """{op name: (ops XNNPACK runs, ops in the graph)} for a `.tflite` run on `inputs`.

    LiteRT hands what its default XNNPACK delegate supports to XNNPACK when the model
    first runs; every other op runs in LiteRT's own kernel (for int8 often a slow
    reference one).
    """
    ops, delegated = xnnpack_delegated_ops(path, inputs, num_threads)
    coverage = {}
    for op in ops:
        taken, total = coverage.get(op["op_name"], (0, 0))
        coverage[op["op_name"]] = (taken + (op["index"] in delegated), total + 1)
    return coverage


def xnnpack_delegated_ops(path, inputs, num_threads=1):
    """(the graph's ops, as the interpreter lists them; the indices of those XNNPACK runs).

    The delegate's nodes are appended to the graph on the first run; an original op is
    delegated if it lies between a delegate node's inputs and its outputs.
    """
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=str(path), num_threads=num_threads)
    count = len(interpreter._get_ops_details())
    runner = interpreter.get_signature_runner("serving_default")
    runner(**{name: inputs[name] for name in runner.get_input_details()})
    details = interpreter._get_ops_details()
    original, delegates = details[:count], details[count:]
    producer = {t: op["index"] for op in original for t in op["outputs"]}
    delegated = set()
    for node in delegates:
        inputs_of_node, todo = set(node["inputs"].tolist()), node["outputs"].tolist()
        while todo:
            tensor = todo.pop()
            if tensor in inputs_of_node or tensor not in producer or producer[tensor] in delegated:
                continue
            delegated.add(producer[tensor])
            todo += original[producer[tensor]]["inputs"].tolist()
    return original, delegated


def saved_model_predictor(path, signature=None, text=False):
    """`(signature_name, function)` for a SavedModel; the function returns logits.

    Default signature: `serving_default` when it takes raw text and `text` is set,
    else `serve_token_ids`.
    """
    loaded = tf.saved_model.load(str(path))
    if signature is None:
        default = loaded.signatures["serving_default"]
        signature = "serving_default" if text and _takes_text(default) else "serve_token_ids"
    if signature not in loaded.signatures:
        raise ValueError(f"{path} has no signature {signature!r}; it has {sorted(loaded.signatures)}.")
    function = loaded.signatures[signature]

    def predict(batch):
        return function(**{name: tf.constant(value) for name, value in batch.items()})["logits"]

    predict.input_names = tuple(_input_names(function))
    predict.takes_text = _takes_text(function)
    predict.loaded = loaded  # keep the resources (vocabulary tables) alive
    return signature, predict


def signature_takes_text(predict):
    return getattr(predict, "takes_text", False)


def latest_version(path):
    """`path` if it is a SavedModel, else its highest numeric version sub-directory."""
    path = pathlib.Path(path)
    if (path / "saved_model.pb").exists():
        return path
    versions = sorted((p for p in path.iterdir() if p.name.isdigit()), key=lambda p: int(p.name))
    if not versions:
        raise ValueError(f"{path} is neither a SavedModel nor a directory of numbered versions.")
    return versions[-1]


def _text_feed(inputs, input_names):
    """Text columns keyed by the signature's input names."""
    columns = text_columns(inputs)
    if len(columns) == 1 and len(input_names) == 1:
        columns = {input_names[0]: next(iter(columns.values()))}
    if sorted(columns) != sorted(input_names):
        raise ValueError(f"The signature takes text inputs {list(input_names)}; got columns {sorted(columns)}.")
    return {name: np.asarray(column, dtype=object) for name, column in columns.items()}


def _takes_text(function):
    return all(spec.dtype == tf.string for spec in function.structured_input_signature[1].values())


def _input_names(function):
    return sorted(function.structured_input_signature[1])


def _as_int32(inputs, names):
    missing = [name for name in names if name not in inputs]
    if missing:
        raise ValueError(f"Token-id inputs lack {missing}; the model takes {list(names)}.")
    return {name: np.asarray(inputs[name], dtype="int32") for name in names}


def _batched(predict, inputs, batch_size):
    """Concatenated float32 outputs of `predict` over batches of `inputs`."""
    count = len(next(iter(inputs.values())))
    outputs = [
        np.asarray(predict({k: v[start : start + batch_size] for k, v in inputs.items()}), dtype="float32")
        for start in range(0, count, batch_size)
    ]
    return np.concatenate(outputs)


def random_token_ids(model, count, length=None):
    """Random non-special token ids, fully unpadded, for each input the model takes: a
    fallback when no text is given."""
    from keras_tinybert.taps import vocabulary_size

    preprocessor = getattr(model, "preprocessor", None)
    length = length or getattr(preprocessor, "sequence_length", None) or 128
    ids = np.random.default_rng(0).integers(5, vocabulary_size(model), size=(count, length), dtype="int32")
    return complete_inputs({"token_ids": ids}, input_names(model))
