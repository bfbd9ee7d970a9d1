"""TF Serving's REST predict contract, offline.

`serving_response(loaded, body)` does what `POST /v1/models/<name>:predict` does with a
JSON body: pick the signature, map the body's tensors onto its inputs, run it and shape
the response. Formats (TF Serving REST API docs):

  row:      {"signature_name": s, "instances": [...]}  ->  {"predictions": [...]}
  columnar: {"signature_name": s, "inputs": {...}}     ->  {"outputs": {...}}

Row format: each instance is one example; a dict of named inputs, or the bare value when
the signature has one input. Predictions are one dict per example (a bare value when
the signature has one output). Binary strings may be sent as {"b64": "..."}.
"""

import base64

import numpy as np
import tensorflow as tf

DEFAULT_SIGNATURE = "serving_default"


def serving_response(loaded, body):
    """The response body TF Serving would return for `body` on the SavedModel `loaded`.

    `loaded` is the result of `tf.saved_model.load`. Raises ValueError (TF Serving
    answers HTTP 400 with {"error": ...}) on a malformed body.
    """
    if not isinstance(body, dict) or ("instances" in body) == ("inputs" in body):
        raise ValueError('The request body must be a JSON object with exactly one of "instances" or "inputs".')
    name = body.get("signature_name", DEFAULT_SIGNATURE)
    if name not in loaded.signatures:
        raise ValueError(f"Unknown signature_name {name!r}; the model serves {sorted(loaded.signatures)}.")
    function = loaded.signatures[name]
    specs = function.structured_input_signature[1]
    if "instances" in body:
        outputs = _call(function, specs, _rows_to_columns(body["instances"], specs))
        return {"predictions": _columns_to_rows(outputs)}
    columns = body["inputs"]
    if not isinstance(columns, dict):
        columns = {_single_input(specs): columns}
    outputs = _call(function, specs, columns)
    values = {key: value.tolist() for key, value in outputs.items()}
    return {"outputs": values if len(values) > 1 else next(iter(values.values()))}


def _single_input(specs):
    if len(specs) != 1:
        raise ValueError(f"This signature has several inputs {sorted(specs)}: send them by name.")
    return next(iter(specs))


def _rows_to_columns(instances, specs):
    if not isinstance(instances, list) or not instances:
        raise ValueError('"instances" must be a non-empty list, one entry per example.')
    if not all(isinstance(row, dict) for row in instances):
        name = _single_input(specs)
        instances = [{name: row} for row in instances]
    return {name: [row.get(name) for row in instances] for name in specs}


def _call(function, specs, columns):
    unknown = sorted(set(columns) - set(specs))
    missing = sorted(name for name in specs if name not in columns or _has_none(columns[name]))
    if unknown or missing:
        raise ValueError(f"Inputs must be exactly {sorted(specs)}; missing {missing}, unknown {unknown}.")
    tensors = {name: _to_tensor(columns[name], specs[name], name) for name in specs}
    return {key: value.numpy() for key, value in function(**tensors).items()}


def _has_none(column):
    return isinstance(column, list) and any(value is None for value in column)


def _to_tensor(value, spec, name):
    if spec.dtype == tf.string:
        value = _decode_b64(value)
    try:
        array = np.asarray(value, dtype=object if spec.dtype == tf.string else spec.dtype.as_numpy_dtype)
    except (TypeError, ValueError) as error:
        raise ValueError(
            f"Input {name!r} is not a rectangular {spec.dtype.name} array ({error}); pad every "
            "example to the same length."
        ) from None
    if not spec.shape.is_compatible_with(array.shape):
        raise ValueError(f"Input {name!r} has shape {list(array.shape)}; the signature expects {spec.shape}.")
    return tf.constant(array, dtype=spec.dtype)


def _decode_b64(value):
    if isinstance(value, dict) and set(value) == {"b64"}:
        return base64.b64decode(value["b64"])
    if isinstance(value, list):
        return [_decode_b64(item) for item in value]
    return value


def _columns_to_rows(outputs):
    count = len(next(iter(outputs.values())))
    if len(outputs) == 1:
        (values,) = outputs.values()
        return [values[i].tolist() for i in range(count)]
    return [{key: value[i].tolist() for key, value in outputs.items()} for i in range(count)]
