"""`augment_tsv` and `keras-tinybert augment`: GLUE-layout output, resume, bad input."""

import numpy as np
import pytest

from keras_tinybert import cli, data
from keras_tinybert.augment import Augmenter, GloVe, MaskedLMCandidates, augment_tsv
from keras_tinybert.testing import tiny_masked_lm

ROWS = ["sentence\tlabel", "the film was charming and funny . \t1", "a boring , ugly plot \t0",
        "great music \t1", "it was fun \t1", "the worst actors ever \t0"]
GLOVE = "boring 1 0 0\ndull 0.9 0.1 0\nugly 0 1 0\nbad 0.1 0.9 0\nfilm 0 0 1\nmovie 0 0.1 1\n"


@pytest.fixture(scope="module")
def augmenter():
    rng = np.random.default_rng(0)
    words = ["charming", "funny", "boring", "ugly", "plot", "music", "worst", "actors"]
    return Augmenter(MaskedLMCandidates(tiny_masked_lm(seed=2)),
                     GloVe(words, rng.normal(size=(len(words), 4))), n_samples=6, seed=3)


def write_task(folder, rows=ROWS):
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "train.tsv").write_text("\n".join(rows) + "\n")
    (folder / "dev.tsv").write_text("\n".join(ROWS[:3]) + "\n")
    return folder


def test_output_is_a_glue_folder_the_loaders_read(tmp_path, augmenter):
    path = augment_tsv("sst2", write_task(tmp_path / "in"), tmp_path / "out", augmenter,
                       chunk_size=2, progress=False)
    table = data.read_glue_tsv(path, "sst2")
    assert table.header == ["sentence", "label"]
    originals = [row[0] for row in data.read_glue_tsv(tmp_path / "in" / "train.tsv", "sst2").rows]
    expected = augmenter.augment_rows([[s, l] for s, l in (r.split("\t") for r in ROWS[1:])],
                                      (0,), range(5))
    assert table.rows == [row for rows in expected for row in rows]
    assert [r[0] for r in table.rows if r[0] in originals] == originals  # originals kept
    assert 5 < len(table) <= 5 * 7
    assert len(list(data.load_glue("sst2", "dev", data_dir=tmp_path / "out"))) == 2
    assert not list((tmp_path / "out").glob("*.partial*"))


def test_interrupted_run_resumes_without_redoing_rows(tmp_path, augmenter, monkeypatch):
    source = write_task(tmp_path / "in")
    reference = augment_tsv("sst2", source, tmp_path / "ref", augmenter, chunk_size=2,
                            progress=False).read_text()
    calls = []
    original = augmenter.augment_rows

    def flaky(rows, columns, ids):
        calls.append(list(ids))
        if len(calls) == 2:
            raise KeyboardInterrupt  # stopped during the second chunk
        return original(rows, columns, ids)

    monkeypatch.setattr(augmenter, "augment_rows", flaky)
    with pytest.raises(KeyboardInterrupt):
        augment_tsv("sst2", source, tmp_path / "out", augmenter, chunk_size=2, progress=False)
    assert not (tmp_path / "out" / "train.tsv").exists()  # nothing looks complete
    assert (tmp_path / "out" / "train.tsv.partial").exists()
    augment_tsv("sst2", source, tmp_path / "out", augmenter, chunk_size=2, progress=False)
    assert calls == [[0, 1], [2, 3], [2, 3], [4]]  # rows 0-1 were not redone
    assert (tmp_path / "out" / "train.tsv").read_text() == reference


def test_bad_input_leaves_nothing_behind(tmp_path, augmenter):
    bad = write_task(tmp_path / "in", ROWS[:3] + ["no label column"])
    with pytest.raises(ValueError, match=r"train\.tsv:4: 1 tab-separated fields, expected 2"):
        augment_tsv("sst2", bad, tmp_path / "out", augmenter, progress=False)
    assert not (tmp_path / "out").exists() or not list((tmp_path / "out").iterdir())
    empty = write_task(tmp_path / "empty", [])
    with pytest.raises(ValueError, match="empty"):
        augment_tsv("sst2", empty, tmp_path / "out2", augmenter, progress=False)


def test_cli_augment(tmp_path, capsys):
    tiny_masked_lm(seed=2).save_to_preset(str(tmp_path / "mlm"))
    (tmp_path / "glove.txt").write_text(GLOVE)
    argv = ["augment", "--task", "sst2", "--data-dir", str(write_task(tmp_path / "in")),
            "--mlm", str(tmp_path / "mlm"), "--glove", str(tmp_path / "glove.txt"),
            "--output", str(tmp_path / "out"), "--n", "4", "--p", "0.5", "--seed", "1"]
    assert cli.main(argv) == 0
    table = data.read_glue_tsv(tmp_path / "out" / "train.tsv", "sst2")
    assert 5 < len(table) <= 25 and set(table.labels().tolist()) == {0, 1}
    (tmp_path / "bad.txt").write_text("boring 1 0 0\ndull 0.9\n")
    assert cli.main(argv[:8] + [str(tmp_path / "bad.txt")] + argv[9:]) == 2
    assert "bad.txt:2: 1 values, but line 1 has 3" in capsys.readouterr().err
