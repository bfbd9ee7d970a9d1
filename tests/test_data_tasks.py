"""The GLUE task table (keras_tinybert.data.tasks)."""

import pytest

from keras_tinybert import data
from keras_tinybert.data.tasks import tfds_split, tsv_split


def test_get_task_takes_tfds_names_glue_folders_and_specs():
    sst2 = data.get_task("sst2")
    assert data.get_task("SST-2") is sst2 and data.get_task("sst-2") is sst2
    assert data.get_task(sst2) is sst2
    assert data.get_task("STS-B").name == "stsb" and data.get_task("MNLI").name == "mnli"
    with pytest.raises(ValueError, match="Unknown GLUE task 'sst3'. Known tasks: cola, sst2"):
        data.get_task("sst3")


def test_task_shapes():
    shapes = {name: (spec.is_pair, spec.is_regression, spec.num_classes)
              for name, spec in data.GLUE_TASKS.items()}
    assert shapes == {"cola": (False, False, 2), "sst2": (False, False, 2),
                      "mrpc": (True, False, 2), "stsb": (True, True, 1),
                      "qqp": (True, False, 2), "mnli": (True, False, 3),
                      "qnli": (True, False, 2), "rte": (True, False, 2),
                      "wnli": (True, False, 2)}


def test_split_names_between_glue_files_and_tfds():
    sst2, mnli = data.get_task("sst2"), data.get_task("mnli")
    assert tsv_split(sst2, "validation") == "dev" and tfds_split(sst2, "dev") == "validation"
    assert tsv_split(mnli, "dev") == "dev_matched" and tsv_split(mnli, "test") == "test_matched"
    assert tfds_split(mnli, "dev_mismatched") == "validation_mismatched"
    assert tfds_split(mnli, "train") == "train"
    with pytest.raises(ValueError, match="no split 'dev_matched'; choose one of train, dev, test"):
        tsv_split(sst2, "dev_matched")
