"""Data this repository does not ship: GLUE from TFDS, corpora by name, and the one
message that says what to do offline (keras_tinybert.data.downloads).

The downloads cannot run here (no network): the loaders are replaced by fakes that
give data or fail as they do offline.
"""

import pathlib
import sys

import pytest

from keras_tinybert import data
from keras_tinybert.data import downloads
from keras_tinybert.testing import tiny_preprocessor


def offline(*args, **kwargs):
    raise ConnectionError("Couldn't reach 'glue' (no network)")


def test_offline_glue_says_which_folder_to_create(monkeypatch, tmp_path):
    import tensorflow_datasets as tfds

    monkeypatch.setattr(tfds, "load", offline)
    with pytest.raises(FileNotFoundError) as error:
        data.load_glue("sst2", "train")
    message = str(error.value)
    assert message.startswith("GLUE task 'sst2' is not available from TFDS (glue/sst2): "
                              "ConnectionError: Couldn't reach 'glue' (no network).")
    for part in ("mkdir -p data/sst2", "put train.tsv and dev.tsv there",
                 "with a header row naming the columns sentence, label", "SST-2.zip",
                 "data_dir='data/sst2' in Python", "--data-dir data/sst2 on the command line"):
        assert part in message
    # Doing what it says works.
    folder = tmp_path / "data" / "sst2"
    folder.mkdir(parents=True)
    (folder / "train.tsv").write_text("sentence\tlabel\na good film\t1\n")
    assert [int(y) for _, y in data.load_glue("sst2", "train", data_dir=folder)] == [1]


def test_offline_glue_message_follows_the_task(monkeypatch):
    import tensorflow_datasets as tfds

    monkeypatch.setattr(tfds, "load", offline)
    with pytest.raises(FileNotFoundError, match="put train.tsv and dev_matched.tsv and "
                                                "dev_mismatched.tsv there"):
        data.load_glue("mnli", "dev")
    with pytest.raises(FileNotFoundError, match="no header row, the label in column 2 and "
                                                "the sentence in column 4"):
        data.load_glue("cola", "dev")


def test_glue_without_tfds_installed_gives_the_same_advice(monkeypatch):
    monkeypatch.setitem(sys.modules, "tensorflow_datasets", None)  # import fails
    with pytest.raises(FileNotFoundError, match=r"ModuleNotFoundError(.|\n)*mkdir -p data/rte"):
        data.load_glue("rte", "dev")


def fake_wikitext(calls):
    def lines(dataset, configuration):
        calls.append((dataset, configuration))
        yield from [" = Film = ", "", " The film was good . It was fun . ", ""]
    return lines


def test_named_corpus_is_downloaded_once_into_the_cache(monkeypatch, tmp_path):
    calls = []
    monkeypatch.setattr(downloads, "_hugging_face_lines", fake_wikitext(calls))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    files = data.corpus_files("wikitext-103")
    expected = tmp_path / "keras_tinybert" / "corpora" / "wikitext-103" / "train.txt"
    assert files == [str(expected)]
    assert expected.read_text() == " = Film = \n\n The film was good . It was fun . \n\n"
    assert calls == [("Salesforce/wikitext", "wikitext-103-raw-v1")]
    # Read like any text file (headings dropped), and never downloaded again.
    got = [s.decode() for s in data.sentences("wikitext-103").as_numpy_iterator()]
    assert got == ["The film was good .", "It was fun ."] and len(calls) == 1


def test_offline_corpus_says_which_folder_to_create(monkeypatch, tmp_path):
    def fails_midway(dataset, configuration):
        yield "a first line"
        offline()

    monkeypatch.setattr(downloads, "_hugging_face_lines", fails_midway)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    with pytest.raises(FileNotFoundError) as error:
        data.text_corpus("wikitext-2", tiny_preprocessor())
    message = str(error.value)
    assert message.startswith("Could not download the corpus 'wikitext-2' "
                              "(Salesforce/wikitext, wikitext-2-raw-v1): ConnectionError")
    for part in ("mkdir -p data/wikitext-2", "plain-text *.txt files",
                 "corpus=['data/wikitext-2'] in Python", "--corpus data/wikitext-2 on the command line"):
        assert part in message
    assert not list(pathlib.Path(tmp_path).rglob("*.txt*"))  # nothing half-written is left


def test_corpus_without_datasets_installed_names_the_extra(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "datasets", None)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    with pytest.raises(FileNotFoundError, match=r'pip install "keras-tinybert\[corpus\]"'):
        data.corpus_files("wikitext-2")


def test_unknown_corpus_names_the_known_ones(tmp_path):
    with pytest.raises(ValueError, match="Unknown corpus 'wikitext-3'; known corpora: wikitext-2, wikitext-103"):
        data.corpus_files("wikitext-3")
    with pytest.raises(FileNotFoundError, match="or a corpus name: wikitext-2, wikitext-103"):
        data.text_corpus(tmp_path / "wikitext-3", tiny_preprocessor())


def test_a_local_folder_wins_over_a_name(monkeypatch, tmp_path):
    monkeypatch.setattr(downloads, "_hugging_face_lines", offline)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "wikitext-2").mkdir()
    (tmp_path / "wikitext-2" / "valid.txt").write_text("One line .\n")
    assert [s.decode() for s in data.sentences("wikitext-2").as_numpy_iterator()] == ["One line ."]
