"""The one data entry point (keras_tinybert.data.datasets): a run's batches from its
config, checked against the steps it is documented to chain."""

import numpy as np
import pytest

import keras_tinybert as kt
from keras_tinybert import data
from keras_tinybert.testing import tiny_classifier, vary_weights

WORDS = "good bad film plot music fun dull great boring story actors scene".split()
SENTENCES = [" ".join(WORDS[(i * 7 + j * 5) % len(WORDS)] for j in range(1 + i % 9))
             for i in range(40)]
LABELS = [i % 2 for i in range(40)]


@pytest.fixture
def folder(tmp_path):
    rows = [f"{s}\t{y}" for s, y in zip(SENTENCES, LABELS)]
    (tmp_path / "train.tsv").write_text("sentence\tlabel\n" + "\n".join(rows) + "\n")
    (tmp_path / "dev.tsv").write_text("sentence\tlabel\n" + "\n".join(rows[:10]) + "\n")
    return tmp_path


def config(folder, **options):
    return kt.Config(**{"stage": "intermediate", "task": "sst2", "data_dir": str(folder),
                        "seq_len": 32, "batch_size": 4, "seed": 3, **options})


def arrays(batches):
    return [({k: v.numpy() for k, v in x.items()}, y.numpy()) for x, y in batches]


def assert_same_batches(got, expected):
    assert len(got) == len(expected)
    for (x, y), (ex, ey) in zip(got, expected):
        assert sorted(x) == sorted(ex)
        for key in x:
            np.testing.assert_array_equal(x[key], ex[key])
        np.testing.assert_array_equal(y, ey)


def test_task_batches_are_the_documented_steps(folder):
    model = tiny_classifier()
    train, dev = data.task_datasets("sst2", model, config(folder), log=None)
    raw = data.load_glue("sst2", "train", folder)
    expected = data.to_model_inputs(raw, model, 4, sequence_length=32,
                                    bucket_boundaries=[16], shuffle_buffer=10_000, seed=3)
    epochs = [arrays(train), arrays(train)]
    for epoch in epochs:
        assert_same_batches(epoch, arrays(expected))  # same batches, same order, per epoch
    # Not cached after the shuffle: the second epoch sees another order.
    assert [y.tolist() for _, y in epochs[0]] != [y.tolist() for _, y in epochs[1]]
    expected_dev = data.to_model_inputs(data.load_glue("sst2", "dev", folder), model, 4,
                                        sequence_length=32, bucket_boundaries=[16])
    assert_same_batches(arrays(dev), arrays(expected_dev))
    assert sum(len(y) for _, y in epochs[0]) == 40 and sum(len(y) for _, y in arrays(dev)) == 10


def test_fine_tuning_shuffles_as_it_always_did(folder):
    """A 20,000-example buffer, as `finetune-teacher` used (distillation: 10,000)."""
    model = tiny_classifier()
    rows = [f"{s}\t{y}" for s, y in zip(SENTENCES * 300, LABELS * 300)]  # 12,000 rows
    (folder / "train.tsv").write_text("sentence\tlabel\n" + "\n".join(rows) + "\n")
    labels = {}
    for stage, buffer in (("finetune", 20_000), ("intermediate", 10_000)):
        train, _ = data.task_datasets("sst2", model, config(folder, stage=stage))
        expected = data.to_model_inputs(data.load_glue("sst2", "train", folder), model, 4,
                                        sequence_length=32, bucket_boundaries=[16],
                                        shuffle_buffer=buffer, seed=3)
        labels[stage] = [y.numpy().tolist() for _, y in train.take(50)]
        assert labels[stage] == [y.numpy().tolist() for _, y in expected.take(50)]
    assert labels["finetune"] != labels["intermediate"]


def test_prediction_stage_carries_the_teachers_logits(folder):
    teacher = vary_weights(tiny_classifier(), SENTENCES)
    logs = []
    train, _ = data.task_datasets("sst2", teacher, config(folder, stage="prediction"),
                                  log=logs.append)
    assert len(logs) == 1 and "--no-cache-teacher" in logs[0]
    for x, _ in train:
        cached = x.pop(kt.layout.TEACHER_LOGITS)
        np.testing.assert_allclose(cached, teacher(x, training=False), atol=1e-5)
    plain, _ = data.task_datasets("sst2", teacher, config(folder, stage="prediction",
                                                          cache_teacher=False))
    assert kt.layout.TEACHER_LOGITS not in plain.element_spec[0]


def test_train_file_max_examples_and_malformed_rows(folder, tmp_path):
    augmented = tmp_path / "augmented.tsv"
    augmented.write_text("sentence\tlabel\na good film\t1\na stray\ttab\t0\nbad plot\t0\n"
                         "fun\t1\n")
    with pytest.raises(ValueError, match="--skip-malformed"):
        data.task_datasets("sst2", tiny_classifier(), config(folder, train_file=str(augmented)))
    train, _ = data.task_datasets("sst2", tiny_classifier(), config(
        folder, train_file=str(augmented), skip_malformed=True, max_examples=2), log=None)
    assert sorted(int(y) for _, ys in train for y in ys) == [0, 1]  # 2 of the 3 good rows


def test_labels_are_checked_against_the_model(folder):
    model = data.set_label_names(tiny_classifier(), ["positive", "negative"])
    with pytest.raises(ValueError, match="Label order mismatch"):
        data.task_datasets("sst2", model, config(folder))


def test_corpus_batches_from_files(tmp_path):
    (tmp_path / "a.txt").write_text("The film was good . The music was great !\n" * 30)
    model = tiny_classifier()
    options = dict(stage="general", seq_len=16, batch_size=4, seed=0)
    batches = list(data.corpus_dataset(str(tmp_path), model, kt.Config(**options)))
    assert sorted(batches[0]) == ["padding_mask", "segment_ids", "token_ids"]
    assert batches[0]["token_ids"].shape == (4, 16)
    limited = data.corpus_dataset([str(tmp_path / "a.txt")], model,
                                  kt.Config(max_examples=9, **options))
    assert len(list(limited)) == 2  # 9 examples: 2 batches of 4
