"""Ship a student: SavedModel for TF Serving, TFLite (float / float16 / dynamic / int8),
each checked for parity against the Keras model it came from.

    import keras_tinybert.export as kt_export        # or kt.export
    version_dir = kt_export.saved_model(student, "saved_models/sst2", preprocessor=pre)
    kt_export.tflite(student, "student_int8.tflite", quantization="int8",
                     representative_data=train_sentences[:500])
    print(kt_export.verify(version_dir, student, dev_sentences))

Every export gets a `metadata.json` beside it (see `artifacts.py`). A `.tflite` also
carries TFLite Model Metadata for on-device clients (`client_metadata.py`,
`tflite_metadata.py`); `device_clients.py` runs one through MediaPipe's
TextClassifier or the Task Library's BertNLClassifier from Python.
"""

from keras_tinybert.export.artifacts import (
    INPUT_NAMES,
    OUTPUT_NAMES,
    build_metadata,
    input_names,
    load_student,
    metadata_path,
    token_ids,
)
from keras_tinybert.export.litert import OUTPUTS, QUANTIZATIONS, ClientMetadataWarning, tflite
from keras_tinybert.export.parity import Parity, verify
from keras_tinybert.export.rest import serving_response
from keras_tinybert.export.savedmodel import saved_model

__all__ = [
    "ClientMetadataWarning",
    "OUTPUTS",
    "INPUT_NAMES",
    "OUTPUT_NAMES",
    "QUANTIZATIONS",
    "Parity",
    "build_metadata",
    "input_names",
    "load_student",
    "metadata_path",
    "saved_model",
    "serving_response",
    "tflite",
    "token_ids",
    "verify",
]
