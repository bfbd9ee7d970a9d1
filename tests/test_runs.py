"""Run directories: one layout for every run, read back by one reader; older runs load."""

import json

import numpy as np
import pytest

import keras_tinybert as kt
from keras_tinybert import runs, testing

LAYOUT = ["config.json", "history.json", "metadata.json", "model.keras",
          "projections.npz", "summary.json"]


@pytest.fixture(scope="module")
def model():
    return kt.data.set_label_names(testing.tiny_classifier(num_layers=1),
                                   ["negative", "positive"])


def test_new_run_dirs_never_collide(tmp_path):
    a, b = runs.new_run_dir(tmp_path, "x"), runs.new_run_dir(tmp_path, "x")
    assert a != b and a.is_dir() and b.is_dir()
    assert a.name.startswith("x-") and b.name == a.name + "-2"


def test_teacher_and_student_runs_share_one_layout(tmp_path, model):
    projections = {"hidden_projection": [np.arange(6.0).reshape(2, 3), np.ones(3)]}
    history = {"loss": [np.float32(0.5), np.float32(0.25)]}
    configs = {"teacher": kt.Config(stage="finetune", teacher="bert_tiny", task="mnli"),
               "student": kt.Config(stage="prediction", teacher="runs/teacher",
                                    student="runs/intermediate", task="sst2",
                                    layer_map="2,4")}
    for name, config in configs.items():
        (tmp_path / name).mkdir()
        runs.save_run(tmp_path / name, model, config, history, {"seconds": 1.0},
                      projections=projections)
        assert sorted(p.name for p in (tmp_path / name).iterdir()) == LAYOUT
        saved = json.loads((tmp_path / name / "config.json").read_text())
        assert kt.Config.from_dict(saved) == config
        assert json.loads((tmp_path / name / "history.json").read_text()) == {
            "loss": [0.5, 0.25]}
    assert runs.read_metadata(tmp_path / "teacher") == {
        "label_names": ["negative", "positive"], "task": "mnli",
        "text_fields": ["premise", "hypothesis"], "source": "bert_tiny",
        "teacher": None, "distillation": None}
    assert runs.read_metadata(tmp_path / "student") == {
        "label_names": ["negative", "positive"], "task": "sst2",
        "text_fields": ["sentence"], "source": "runs/intermediate",
        "teacher": "runs/teacher",
        "distillation": {"stage": "prediction", "layer_map": [2, 4],
                         "temperature": 1.0}}
    loaded = runs.load_projections(tmp_path / "student")
    np.testing.assert_array_equal(loaded["hidden_projection"][0],
                                  projections["hidden_projection"][0])
    assert runs.load_model(tmp_path / "student").label_names == ["negative", "positive"]


def test_older_runs_still_load(tmp_path, model):
    """student.keras (distill) and model.keras (finetune-teacher), metadata without
    "task": the task comes from the old config.json, the text fields from the task."""
    student = tmp_path / "distill-prediction-old"
    student.mkdir()
    model.save(student / "student.keras")
    (student / "metadata.json").write_text(json.dumps(
        {"label_names": ["neg", "pos"], "teacher": "t", "distillation": {}}))
    (student / "config.json").write_text(json.dumps(
        {"stage": "prediction", "task": "sst2", "config": None}))
    assert runs.find_model_file(student) == student / "student.keras"
    assert runs.load_model(student).label_names == ["neg", "pos"]
    metadata = runs.read_metadata(student)
    assert (metadata["task"], metadata["text_fields"]) == ("sst2", ["sentence"])
    assert kt.data.label_names_of(student / "student.keras") == ["neg", "pos"]

    teacher = tmp_path / "teacher-qnli-old"
    teacher.mkdir()
    model.save(teacher / "model.keras")
    (teacher / "metadata.json").write_text(json.dumps(
        {"label_names": ["entailment", "not_entailment"], "source": "s",
         "task": "qnli"}))
    assert runs.read_metadata(teacher / "metadata.json")["text_fields"] == [
        "question", "sentence"]
    assert runs.load_model(teacher / "model.keras").label_names == [
        "entailment", "not_entailment"]


def test_read_metadata_is_the_same_from_every_path(tmp_path):
    (tmp_path / "metadata.json").write_text('{"label_names": ["a", "b"]}')
    expected = {"label_names": ["a", "b"], "task": None}
    for path in (tmp_path, tmp_path / "model.keras", tmp_path / "metadata.json"):
        assert runs.read_metadata(path) == expected
    assert runs.read_metadata(tmp_path / "elsewhere" / "model.keras") == {}


def test_model_file_lookup_and_errors(tmp_path):
    assert runs.find_model_file(tmp_path) is None
    with pytest.raises(FileNotFoundError, match="neither a `.keras` model"):
        runs.load_model(tmp_path)
    with pytest.raises(FileNotFoundError, match="No model file at"):
        runs.load_model(tmp_path / "missing.keras")
    (tmp_path / "config.json").write_text(json.dumps(kt.Config().to_dict()))
    with pytest.raises(FileNotFoundError, match="run without a model file: is it finished"):
        runs.load_model(tmp_path)
    for name in ("b.keras", "a.keras"):
        (tmp_path / name).write_text("")
    with pytest.raises(ValueError, match=r"holds 2 `.keras` files \(\['a.keras', 'b.keras'\]\)"):
        runs.find_model_file(tmp_path)
    (tmp_path / "student.keras").write_text("")
    assert runs.find_model_file(tmp_path) == tmp_path / "student.keras"
    (tmp_path / "model.keras").write_text("")
    assert runs.find_model_file(tmp_path) == tmp_path / "model.keras"
