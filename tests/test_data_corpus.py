"""The general-distillation corpus reader (keras_tinybert.data.text_corpus)."""

import numpy as np
import pytest

from keras_tinybert import data
from keras_tinybert.testing import tiny_preprocessor

TEXT = """
 = Film = 

 The film was good . The music was great ! It was fun ?
 = = Plot = = 
 The plot was very very very very very very very very very very very very dull .

 One actor .
"""


def packed(path, max_seq_len, **kwargs):
    tokenizer = tiny_preprocessor().tokenizer
    rows = np.concatenate([x["token_ids"].numpy() for x in data.text_corpus(
        path, tokenizer, max_seq_len, batch_size=2, **kwargs)])
    return tokenizer, rows


def content(tokenizer, rows):
    """Token ids without [CLS]/[SEP]/[PAD], in order."""
    special = {tokenizer.cls_token_id, tokenizer.sep_token_id, tokenizer.pad_token_id}
    return [int(t) for row in rows for t in row if int(t) not in special]


def test_sentences_drop_headings_and_blank_lines(tmp_path):
    (tmp_path / "a.txt").write_text(TEXT)
    got = [s.decode() for s in data.sentences(tmp_path / "a.txt").as_numpy_iterator()]
    assert got[:3] == ["The film was good .", "The music was great !", "It was fun ?"]
    assert len(got) == 5 and not any("=" in s for s in got)


def test_packing_keeps_every_token_in_order_and_sentences_whole(tmp_path):
    (tmp_path / "a.txt").write_text(TEXT)
    tokenizer, rows = packed(tmp_path / "a.txt", 12, shuffle_buffer=0)
    sentences = [np.asarray(tokenizer(s)).tolist() for s in
                 ["The film was good .", "The music was great !", "It was fun ?",
                  "The plot was" + " very" * 12 + " dull .", "One actor ."]]
    assert content(tokenizer, rows) == [t for s in sentences for t in s]
    assert rows.shape[1] == 12 and all(row[0] == tokenizer.cls_token_id for row in rows)
    # Greedy packing into 10 content tokens: [film(5) music(5)] [fun(4)], the 17-token
    # sentence cut 10 + 7, and "one actor ." (3) joins the remainder (7).
    lengths = [(row != tokenizer.pad_token_id).sum() for row in rows]
    assert lengths == [12, 6, 12, 12]
    assert all(row[n - 1] == tokenizer.sep_token_id for row, n in zip(rows, lengths))


def test_many_files_shuffled_is_a_permutation(tmp_path):
    for i in range(3):
        (tmp_path / f"{i}.txt").write_text(TEXT)
    tokenizer, plain = packed(tmp_path, 12, shuffle_buffer=0)
    _, shuffled = packed(tmp_path, 12, shuffle_buffer=100, seed=1)
    assert len(plain) == 12  # the files' sentences are packed as one stream
    assert sorted(map(tuple, plain)) == sorted(map(tuple, shuffled))
    assert [tuple(r) for r in plain] != [tuple(r) for r in shuffled]
    with pytest.raises(FileNotFoundError):
        data.text_corpus(tmp_path / "missing.txt", tokenizer)


@pytest.mark.integration
def test_wikitext2_is_streamed_into_full_sequences(shared_data):
    path = shared_data / "wikitext-2" / "valid.txt"
    tokenizer = tiny_preprocessor().tokenizer
    batches = data.text_corpus(path, tokenizer, max_seq_len=128, batch_size=64, seed=0)
    rows = np.concatenate([x["token_ids"].numpy() for x in batches.take(20)])
    assert rows.shape == (1280, 128)
    fill = (rows != tokenizer.pad_token_id).mean()
    # Whole sentences (~25 tokens on average) packed greedily: ~85% real tokens.
    assert fill > 0.8
    assert (rows[:, 0] == tokenizer.cls_token_id).all()


def tiny_roberta_preprocessor(sequence_length=16):
    """A RoBERTa preprocessor over a few whole-word BPE tokens: `<s>` 0, `<pad>` 1,
    `</s>` 2, and no `segment_ids` in its output."""
    import keras_hub

    vocabulary = {"<s>": 0, "<pad>": 1, "</s>": 2, "<unk>": 3, "<mask>": 4, "Ġ": 5}
    merges = []
    for word in "the film was good music great . !".split():
        for i in range(len(word)):  # the word letter by letter, then the word after a space
            vocabulary.setdefault(word[i], len(vocabulary))
            if i:
                merges.append(f"{word[:i]} {word[i]}")
                vocabulary.setdefault(word[: i + 1], len(vocabulary))
        merges.append(f"Ġ {word}")
        vocabulary.setdefault("Ġ" + word, len(vocabulary))
    tokenizer = keras_hub.models.RobertaTokenizer(vocabulary=vocabulary,
                                                  merges=list(dict.fromkeys(merges)))
    return keras_hub.models.RobertaTextClassifierPreprocessor(
        tokenizer, sequence_length=sequence_length)


def test_packing_follows_the_preprocessors_tokens_and_keys(tmp_path):
    (tmp_path / "a.txt").write_text("the film was good . the music was great !\n")
    preprocessor = tiny_roberta_preprocessor()
    tokenizer = preprocessor.tokenizer
    (batch,) = data.text_corpus(tmp_path / "a.txt", preprocessor, 16, shuffle_buffer=0)
    assert sorted(batch) == ["padding_mask", "token_ids"]  # RoBERTa: no segment_ids
    (row,) = batch["token_ids"].numpy()
    content = [np.asarray(tokenizer(s)).tolist() for s in
               ["the film was good .", "the music was great !"]]
    assert [len(c) for c in content] == [5, 5]  # one token a word
    assert row.tolist() == [0, *content[0], *content[1], 2] + [1] * (14 - len(content[0] + content[1]))
    np.testing.assert_array_equal(batch["padding_mask"].numpy()[0], row != 1)
    bert = data.text_corpus(tmp_path / "a.txt", tiny_preprocessor().tokenizer, 16)
    assert sorted(bert.element_spec) == ["padding_mask", "segment_ids", "token_ids"]
