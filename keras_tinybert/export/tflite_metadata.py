"""TFLite Model Metadata: write it into a `.tflite` file, and read it back.

On-device clients (MediaPipe Tasks, the TFLite Task Library) learn from the metadata
what a model's tensors are and how to turn raw input into them: for a BERT text
classifier, which input holds the token ids, the mask and the segment ids, which
tokenizer to run (with its vocabulary file), and the label of each output score.

The format is TFLite Support's public schema `metadata_schema.fbs` (file identifier
"M001"). Only the tables a text model needs are declared below, field by field in the
schema's order: a flatbuffer field's slot is its position in its table, and a union
field takes two slots (its type, then its value). `build` writes a metadata
flatbuffer from nested dicts with the `flatbuffers` Python builder; `parse` reads one
back into the same dicts. `attach` stores it in the model as the spec does: a model
buffer named "TFLITE_METADATA", and the associated files (vocabulary, labels) in an
uncompressed zip archive appended to the flatbuffer.

A union value is a `(member name, dict)` pair, e.g.
`{"options": ("BertTokenizerOptions", {"vocab_file": [{"name": "vocab.txt", "type": 5}]})}`.
"""

import io
import zipfile

import flatbuffers
import numpy as np
from flatbuffers import number_types

FILE_IDENTIFIER = b"M001"
METADATA_BUFFER_NAME = "TFLITE_METADATA"
# Every field written here exists since schema 1.1.0 (BertTokenizerOptions,
# SentencePieceTokenizerOptions and input_process_units were added in 1.1.0).
MIN_PARSER_VERSION = "1.1.0"

# AssociatedFileType values.
DESCRIPTIONS = 1
TENSOR_AXIS_LABELS = 2
VOCABULARY = 5

STRING, BYTE, INT, FLOAT = "string", "byte", "int", "float"

# table -> [(field, kind)], in the schema's order. kind: a scalar kind, a table name,
# [kind] for a vector, or ("union", union name).
SCHEMA = {
    "ModelMetadata": [
        ("name", STRING), ("description", STRING), ("version", STRING),
        ("subgraph_metadata", ["SubGraphMetadata"]), ("author", STRING), ("license", STRING),
        ("associated_files", ["AssociatedFile"]), ("min_parser_version", STRING),
    ],
    "SubGraphMetadata": [
        ("name", STRING), ("description", STRING),
        ("input_tensor_metadata", ["TensorMetadata"]), ("output_tensor_metadata", ["TensorMetadata"]),
        ("associated_files", ["AssociatedFile"]),
        ("input_process_units", ["ProcessUnit"]), ("output_process_units", ["ProcessUnit"]),
    ],
    "TensorMetadata": [
        ("name", STRING), ("description", STRING), ("dimension_names", [STRING]),
        ("content", "Content"), ("process_units", ["ProcessUnit"]), ("stats", "Stats"),
        ("associated_files", ["AssociatedFile"]),
    ],
    "Content": [("content_properties", ("union", "ContentProperties")), ("range", "ValueRange")],
    "FeatureProperties": [],
    "ValueRange": [("min", INT), ("max", INT)],
    "Stats": [("max", [FLOAT]), ("min", [FLOAT])],
    "ProcessUnit": [("options", ("union", "ProcessUnitOptions"))],
    "BertTokenizerOptions": [("vocab_file", ["AssociatedFile"])],
    "SentencePieceTokenizerOptions": [
        ("sentencePiece_model", ["AssociatedFile"]), ("vocab_file", ["AssociatedFile"]),
    ],
    "AssociatedFile": [
        ("name", STRING), ("description", STRING), ("type", BYTE), ("locale", STRING),
    ],
}

# union -> its members in the schema's order; the type value of member i is i + 1.
UNIONS = {
    "ContentProperties": ["FeatureProperties", "ImageProperties", "BoundingBoxProperties", "AudioProperties"],
    "ProcessUnitOptions": [
        "NormalizationOptions", "ScoreCalibrationOptions", "ScoreThresholdingOptions",
        "BertTokenizerOptions", "SentencePieceTokenizerOptions", "RegexTokenizerOptions",
    ],
}


def _slots(table):
    """[(field, kind, slot)]: a union takes two slots, its type then its value."""
    slots, slot = [], 0
    for name, kind in SCHEMA[table]:
        if isinstance(kind, tuple):
            slot += 1  # the `<name>_type` byte sits in the slot before the value
        slots.append((name, kind, slot))
        slot += 1
    return slots


def _slot_count(table):
    slots = _slots(table)
    return slots[-1][2] + 1 if slots else 0


# --- writing -------------------------------------------------------------------------


def build(model_metadata):
    """The metadata flatbuffer (bytes, identifier "M001") of a `ModelMetadata` dict."""
    builder = flatbuffers.Builder(1024)
    root = _write_table(builder, "ModelMetadata", model_metadata)
    builder.Finish(root, file_identifier=FILE_IDENTIFIER)
    return bytes(builder.Output())


def _write_table(builder, table, value):
    unknown = set(value) - {name for name, _ in SCHEMA[table]}
    if unknown:
        raise ValueError(f"{table} has no field(s) {sorted(unknown)}; it has {[n for n, _ in SCHEMA[table]]}.")
    # Children first: a flatbuffer table can only point at what is already written.
    offsets = {}
    for name, kind, _ in _slots(table):
        if value.get(name) is not None and kind not in (BYTE, INT):
            offsets[name] = _write_value(builder, kind, value[name])
    builder.StartObject(_slot_count(table))
    for name, kind, slot in _slots(table):
        if value.get(name) is None:
            continue
        if kind == BYTE:
            builder.PrependInt8Slot(slot, value[name], 0)
        elif kind == INT:
            builder.PrependInt32Slot(slot, value[name], 0)
        elif isinstance(kind, tuple):
            member = value[name][0]
            builder.PrependUint8Slot(slot - 1, UNIONS[kind[1]].index(member) + 1, 0)
            builder.PrependUOffsetTRelativeSlot(slot, offsets[name], 0)
        else:
            builder.PrependUOffsetTRelativeSlot(slot, offsets[name], 0)
    return builder.EndObject()


def _write_value(builder, kind, value):
    if kind == STRING:
        return builder.CreateString(value)
    if isinstance(kind, tuple):
        member, fields = value
        return _write_table(builder, member, fields)
    if isinstance(kind, list):
        (item,) = kind
        if item == FLOAT:
            return builder.CreateNumpyVector(np.asarray(value, dtype="<f4"))
        offsets = [_write_value(builder, item, v) for v in value]
        builder.StartVector(4, len(offsets), 4)
        for offset in reversed(offsets):
            builder.PrependUOffsetTRelative(offset)
        return builder.EndVector()
    return _write_table(builder, kind, value)


# --- reading -------------------------------------------------------------------------


def parse(buffer):
    """A metadata flatbuffer (bytes) back into the nested dicts `build` takes; fields
    that are absent are left out."""
    buffer = bytes(buffer)
    if buffer[4:8] != FILE_IDENTIFIER:
        raise ValueError(f"Not TFLite metadata: file identifier {buffer[4:8]!r}, expected {FILE_IDENTIFIER!r}.")
    root = flatbuffers.encode.Get(flatbuffers.packer.uoffset, buffer, 0)
    return _read_table(flatbuffers.table.Table(buffer, root), "ModelMetadata")


def _read_table(tab, table):
    out = {}
    for name, kind, slot in _slots(table):
        offset = tab.Offset(4 + 2 * slot)
        if not offset:
            continue
        if isinstance(kind, tuple):
            member = UNIONS[kind[1]][tab.Get(number_types.Uint8Flags, tab.Offset(4 + 2 * (slot - 1)) + tab.Pos) - 1]
            union = flatbuffers.table.Table(tab.Bytes, 0)
            tab.Union(union, offset)
            out[name] = (member, _read_table(union, member) if member in SCHEMA else {})
        else:
            out[name] = _read_value(tab, kind, offset)
    return out


def _read_value(tab, kind, offset):
    if kind == STRING:
        return tab.String(offset + tab.Pos).decode("utf-8")
    if kind == BYTE:
        return tab.Get(number_types.Int8Flags, offset + tab.Pos)
    if kind == INT:
        return tab.Get(number_types.Int32Flags, offset + tab.Pos)
    if isinstance(kind, list):
        (item,) = kind
        start, count = tab.Vector(offset), tab.VectorLen(offset)
        if item == FLOAT:
            return [tab.Get(number_types.Float32Flags, start + 4 * i) for i in range(count)]
        if item == STRING:
            return [tab.String(start + 4 * i).decode("utf-8") for i in range(count)]
        return [_read_table(flatbuffers.table.Table(tab.Bytes, tab.Indirect(start + 4 * i)), item) for i in range(count)]
    return _read_table(flatbuffers.table.Table(tab.Bytes, tab.Indirect(offset + tab.Pos)), kind)


# --- in a .tflite file ---------------------------------------------------------------


def attach(tflite_bytes, model_metadata, files):
    """`tflite_bytes` with `model_metadata` (a dict, see `build`) in a buffer named
    "TFLITE_METADATA" (an existing one is replaced) and `files` ({name: bytes}, the
    associated files the metadata names) in an uncompressed zip appended to the
    flatbuffer, where clients look for them."""
    from tensorflow.lite.python import schema_py_generated as schema
    from tensorflow.lite.tools import flatbuffer_utils

    _check_files_named(model_metadata, files)
    model = flatbuffer_utils.read_model_from_bytearray(bytearray(_flatbuffer_part(tflite_bytes)))
    buffer = schema.BufferT()
    buffer.data = np.frombuffer(build(model_metadata), dtype=np.uint8)
    model.metadata = [m for m in (model.metadata or []) if _name(m.name) != METADATA_BUFFER_NAME]
    model.buffers.append(buffer)
    entry = schema.MetadataT()
    entry.name, entry.buffer = METADATA_BUFFER_NAME, len(model.buffers) - 1
    model.metadata.append(entry)
    out = io.BytesIO(bytes(flatbuffer_utils.convert_object_to_bytearray(model)))
    out.seek(0, io.SEEK_END)
    with zipfile.ZipFile(out, "a", compression=zipfile.ZIP_STORED) as archive:
        for name, content in files.items():
            # A fixed date: the same model gives the same bytes.
            archive.writestr(zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0)), content)
    return out.getvalue()


def read(tflite_bytes):
    """`(metadata dict or None, {associated file name: bytes})` of a `.tflite` file."""
    from tensorflow.lite.tools import flatbuffer_utils

    model = flatbuffer_utils.read_model_from_bytearray(bytearray(_flatbuffer_part(tflite_bytes)))
    metadata = None
    for entry in model.metadata or []:
        if _name(entry.name) == METADATA_BUFFER_NAME:
            metadata = parse(np.asarray(model.buffers[entry.buffer].data, dtype=np.uint8).tobytes())
    return metadata, _zipped_files(tflite_bytes)


def _zipped_files(content):
    try:
        with zipfile.ZipFile(io.BytesIO(content)) as archive:
            return {info.filename: archive.read(info) for info in archive.infolist()}
    except zipfile.BadZipFile:
        return {}


def _flatbuffer_part(content):
    """The model flatbuffer without an appended zip (rewriting it would drop the zip)."""
    try:
        with zipfile.ZipFile(io.BytesIO(content)) as archive:
            infos = archive.infolist()
            if infos:
                return content[: min(info.header_offset for info in infos)]
    except zipfile.BadZipFile:
        pass
    return content


def _check_files_named(model_metadata, files):
    named = set(associated_file_names(model_metadata))
    if named != set(files):
        raise ValueError(f"The metadata names files {sorted(named)} but {sorted(files)} were given.")


def associated_file_names(value):
    """Every `AssociatedFile` name anywhere in a metadata dict."""
    if isinstance(value, dict):
        names = []
        for key, item in value.items():
            if key in ("associated_files", "vocab_file", "sentencePiece_model"):
                names += [f["name"] for f in item]
            else:
                names += associated_file_names(item)
        return names
    if isinstance(value, (list, tuple)):
        return [name for item in value for name in associated_file_names(item)]
    return []


def _name(value):
    return value.decode() if isinstance(value, bytes) else value
