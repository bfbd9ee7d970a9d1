"""MediaPipe Tasks' TextClassifier runs the exported students on raw text, as an app
does: the current `mediapipe` wheel from PyPI (the C++ core of its Android, iOS and web
libraries) in its own virtual environment, which this module makes on first use
(`device_clients.ensure_python`; about a minute, then reused from `.client-venvs/`).

The TFLite Task Library's `BertNLClassifier` (`tflite-support` 0.4.4, its last
release, in a venv of its own) runs the float, float16 and int8 files too; its runtime predates
TF 2.21's dynamic-range FULLY_CONNECTED (version 12) and refuses that file.

Skipped, with the reason printed, only where a package cannot be had (the Task Library
needs libusb-1.0, Debian's `libusb-1.0-0`).

Float files agree with Keras on every text; float16, dynamic-range and int8 files
agree with Keras on at least 95% of them and with LiteRT's own interpreter (fed the ids MediaPipe feeds) on
every one. Texts: short, accented, whitespace-heavy, over-long (past the 64-position
table), empty, CJK, emoji, upper-case, and sentences of a small synthetic task the
student is trained on so that quantisation has margins to keep.
"""

import sys

import keras
import numpy as np
import pytest

from keras_tinybert import export as kt_export
from keras_tinybert import testing
from keras_tinybert.export.device_clients import ClientUnavailable, TextClassifierClient
from keras_tinybert.export.parity import client_token_ids, tflite_predictor

pytestmark = [pytest.mark.integration, pytest.mark.slow]

POSITIVE = "good great funny charming love fun best brilliant nice smart".split()
NEGATIVE = "bad boring dull hate worst awful terrible stupid ugly slow".split()
NEUTRAL = "the a film movie story plot actors music one it".split()
LABELS = ["negative", "positive"]

SPECIAL_TEXTS = [
    "a good film",
    "café crème, très bon: déjà vu",
    "Ça va? Élan vital, naïve façade",
    "   the \t film \n\n was   very   dull  ",
    " ".join(["the story was good but the plot was slow and the actors were dull"] * 12),
    "",
    "你好 film 好看",
    "good 😀 movie 👍",
    "THE FILM WAS BRILLIANT",
]


def _task(count, seed):
    """Sentences of neutral words with 1-3 sentiment words; label: which kind wins."""
    rng = np.random.default_rng(seed)
    sentences, labels = [], []
    for _ in range(count):
        label = int(rng.integers(2))
        words = list(rng.choice(NEUTRAL, size=rng.integers(2, 8)))
        words += list(rng.choice(POSITIVE if label else NEGATIVE, size=rng.integers(1, 4)))
        rng.shuffle(words)
        sentences.append(" ".join(words))
        labels.append(label)
    return sentences, np.array(labels)


def _client_or_skip(name):
    try:
        return TextClassifierClient(name)
    except ClientUnavailable as error:
        reason = f"{name} cannot be had here: {error}"
        print(reason, file=sys.__stderr__)
        pytest.skip(reason)


@pytest.fixture(scope="module")
def client():
    mediapipe = _client_or_skip("mediapipe")
    yield mediapipe
    mediapipe.close()


@pytest.fixture(scope="module")
def task_library():
    library = _client_or_skip("task_library")
    yield library
    library.close()


@pytest.fixture(scope="module")
def trained():
    """A tiny student trained on the synthetic task (3 epochs, a few seconds)."""
    sentences, labels = _task(600, seed=0)
    model = testing.tiny_classifier()
    model.compile(optimizer=keras.optimizers.Adam(3e-3),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"])
    model.fit(sentences, labels, batch_size=32, epochs=3, verbose=0)
    return model, sentences


@pytest.fixture(scope="module")
def texts():
    return SPECIAL_TEXTS + _task(40, seed=1)[0]


@pytest.fixture(scope="module")
def exports(trained, tmp_path_factory):
    model, sentences = trained
    folder = tmp_path_factory.mktemp("mediapipe")
    return {q: kt_export.tflite(model, folder / f"student_{q}.tflite", quantization=q,
                                representative_data=sentences[:200], metadata={"label_names": LABELS})
            for q in ("none", "float16", "dynamic", "int8")}


def _keras_probabilities(model, texts):
    """Keras' own text path: the attached preprocessor, then the model (eagerly:
    `predict` on an ALBERT fails in keras-hub 0.32 with a lost SentencePiece resource)."""
    logits = model(kt_export.token_ids(model.preprocessor, texts), training=False)
    return keras.ops.convert_to_numpy(keras.ops.softmax(logits))


def test_float_file_gives_keras_probabilities_on_raw_text(client, trained, exports, texts):
    model, _ = trained
    scores, labels = client.classify(client.load(exports["none"]), texts)
    assert labels == LABELS
    expected = _keras_probabilities(model, texts)
    assert 0.2 < expected.argmax(-1).mean() < 0.8  # both classes occur
    worst = np.abs(scores - expected).max(axis=1)
    assert worst.max() < 1e-5, {t[:40]: float(w) for t, w in zip(texts, worst) if w >= 1e-5}
    assert (scores.argmax(-1) == expected.argmax(-1)).all()


@pytest.mark.parametrize("quantization", ["float16", "dynamic", "int8"])
def test_quantized_files_agree_with_keras_and_litert(client, trained, exports, texts, quantization):
    model, _ = trained
    scores, _ = client.classify(client.load(exports[quantization]), texts)
    keras_class = _keras_probabilities(model, texts).argmax(-1)
    agreement = np.mean(scores.argmax(-1) == keras_class)
    predict = tflite_predictor(exports[quantization], trim_padding=False)
    litert = np.concatenate([np.exp(predict(feed)) for feed in client_token_ids(model.preprocessor, texts)])
    print(f"\n{quantization}: MediaPipe agrees with Keras on {agreement:.2%} of {len(texts)} texts; "
          f"max |Δp| against LiteRT {np.abs(scores - litert).max():.2e}")
    assert agreement >= 0.95
    assert (scores.argmax(-1) == litert.argmax(-1)).all()
    assert np.abs(scores - litert).max() < 1e-3


def test_sentencepiece_student_runs_on_raw_text(client, tmp_path):
    sentences, _ = _task(200, seed=2)
    model = testing.vary_weights(testing.tiny_sentencepiece_classifier(sentences), sentences)
    path = kt_export.tflite(model, tmp_path / "albert.tflite", metadata={"label_names": LABELS})
    texts = sentences[:20] + ["The Film Was GOOD", "", " ".join(sentences[:40])]
    scores, _ = client.classify(client.load(path), texts)
    expected = _keras_probabilities(model, texts)
    assert 0.1 < expected.argmax(-1).mean() < 0.9
    assert np.abs(scores - expected).max() < 1e-5


def test_task_library_runs_float_float16_and_int8_files(task_library, trained, exports, texts):
    model, _ = trained
    expected = _keras_probabilities(model, texts)
    scores, labels = task_library.classify(task_library.load(exports["none"]), texts)
    assert labels == LABELS and np.abs(scores - expected).max() < 1e-5
    for quantization in ("float16", "int8"):
        scores, _ = task_library.classify(task_library.load(exports[quantization]), texts)
        predict = tflite_predictor(exports[quantization], trim_padding=False)
        litert = np.concatenate([predict(feed) for feed in client_token_ids(model.preprocessor, texts)])
        assert (scores.argmax(-1) == litert.argmax(-1)).all()
    with pytest.raises(RuntimeError, match="FULLY_CONNECTED' version '12'"):
        task_library.load(exports["dynamic"])


@pytest.mark.parametrize("family", ["distil_bert", "roformer_v2"])
def test_families_without_all_three_inputs_run_on_raw_text(client, task_library, family, tmp_path):
    """DistilBERT reads no segment ids, RoFormerV2 no mask: their files take the clients'
    three inputs anyway (the graph ignores the unread one), carry client metadata, and
    MediaPipe and the Task Library give Keras' probabilities on raw text."""
    model = testing.spread_weights(testing.tiny_family_model(family, num_layers=2, sequence_length=64))
    path = kt_export.tflite(model, tmp_path / f"{family}.tflite", metadata={"label_names": LABELS})
    texts = SPECIAL_TEXTS + _task(30, seed=3)[0]
    expected = _keras_probabilities(model, texts)
    assert np.ptp(expected[:, 0]) > 0.1 and expected.max() < 0.99  # varied, not saturated
    for runner in (client, task_library):
        scores, labels = runner.classify(runner.load(path), texts)
        assert labels == LABELS
        assert np.abs(scores - expected).max() < 1e-5, runner
