"""Reading GLUE's TSV files (keras_tinybert.data.glue_tsv)."""

import pytest

from keras_tinybert import data

SST2_ROWS = ["sentence\tlabel", "a good film \t1", "bad plot \t0",
             "the music was really very very good and the actors were great \t1"]
RTE_ROWS = ["index\tsentence1\tsentence2\tlabel", "0\tit was fun .\tit was good .\tentailment",
            "1\the hated it .\the loved it .\tnot_entailment"]


def write(path, lines):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return path


def test_read_glue_tsv_single_pair_and_headerless(tmp_path):
    table = data.read_glue_tsv(write(tmp_path / "s" / "train.tsv", SST2_ROWS), "sst2")
    assert len(table) == 3 and table.text_columns == (0,)
    assert table.labels().tolist() == [1, 0, 1]
    rte = data.read_glue_tsv(write(tmp_path / "r" / "dev.tsv", RTE_ROWS), "RTE")
    assert rte.texts() == [["it was fun .", "he hated it ."], ["it was good .", "he loved it ."]]
    assert rte.labels().tolist() == [0, 1]  # entailment, not_entailment (TFDS order)
    cola = write(tmp_path / "c" / "train.tsv", ["gj04\t1\t\tgood film .", "gj04\t0\t*\tfilm good the ."])
    table = data.read_glue_tsv(cola, "cola")
    assert table.texts() == [["good film .", "film good the ."]] and table.labels().tolist() == [1, 0]
    cola_test = write(tmp_path / "c" / "test.tsv", ["index\tsentence", "0\tgood film .", "1\tfilm the ."])
    table = data.read_glue_tsv(cola_test, "cola")
    assert table.texts() == [["good film .", "film the ."]] and table.label_column is None
    with pytest.raises(ValueError, match="no label column"):
        table.labels()


def test_malformed_row_names_file_line_and_both_fixes(tmp_path):
    path = write(tmp_path / "train.tsv", SST2_ROWS[:2] + ["a tab\tin the\ttext"])
    with pytest.raises(ValueError, match=r"train\.tsv:3: 3 tab-separated fields, expected 2") as error:
        data.read_glue_tsv(path, "sst2")
    assert "skip_malformed=True in Python, --skip-malformed on the command line" in str(error.value)
    assert len(data.read_glue_tsv(path, "sst2", skip_malformed=True)) == 1


def test_stream_reads_rows_lazily_with_their_line_numbers(tmp_path):
    path = write(tmp_path / "train.tsv", SST2_ROWS[:2] + ["a tab\tin the\ttext"] + SST2_ROWS[2:])
    table, rows = data.stream_glue_tsv(path, "sst2", skip_malformed=True)
    assert table.rows == [] and table.header == ["sentence", "label"]
    assert [number for number, _ in rows] == [2, 4, 5]


def test_empty_file_is_a_clear_error(tmp_path):
    with pytest.raises(ValueError, match="empty"):
        data.read_glue_tsv(write(tmp_path / "a" / "train.tsv", []), "sst2")
    with pytest.raises(ValueError, match="empty"):
        data.read_glue_tsv(write(tmp_path / "b" / "train.tsv", ["sentence\tlabel"]), "sst2")
    with pytest.raises(ValueError, match=r"column 'sentence' not in the header"):
        data.read_glue_tsv(write(tmp_path / "c" / "train.tsv", ["text\tlabel", "x\t1"]), "sst2")


def test_find_glue_file_in_the_task_folder_or_a_glue_root(tmp_path):
    task_file = write(tmp_path / "SST-2" / "dev.tsv", SST2_ROWS)
    assert data.find_glue_file(tmp_path, "sst2", "dev") == task_file
    assert data.find_glue_file(tmp_path / "SST-2", "sst2", "validation") == task_file
    with pytest.raises(FileNotFoundError) as error:
        data.find_glue_file(tmp_path, "sst2", "train")
    message = str(error.value)
    assert "No train.tsv for task 'sst2'" in message
    assert "data_dir= (Python) or --data-dir (command line)" in message
