"""Tokenising, packing and length-bucketing (keras_tinybert.data.inputs)."""

import keras_hub
import numpy as np
import pytest
import tensorflow as tf

from keras_tinybert import data
from keras_tinybert.testing import SPECIAL_TOKENS, tiny_preprocessor, tiny_vocabulary

TEXTS = ["good", "a good film", "the music was really good and the actors were great " * 2,
         "bad", "the plot was dull", "fun"]


def examples():
    return tf.data.Dataset.from_tensor_slices(((tf.constant(TEXTS),), tf.range(6, dtype=tf.int64)))


def distilbert_preprocessor(sequence_length=64):
    """A DistilBERT preprocessor (no segment ids) whose [PAD] is id 5, not 0."""
    words = [w for w in tiny_vocabulary() if w not in SPECIAL_TOKENS]
    vocabulary = ["[UNK]", "[CLS]", "[SEP]", "[MASK]", words[0], "[PAD]"] + words[1:]
    tokenizer = keras_hub.models.DistilBertTokenizer(vocabulary=vocabulary, lowercase=True)
    return keras_hub.models.DistilBertTextClassifierPreprocessor(
        tokenizer, sequence_length=sequence_length)


def by_label(batches):
    """{label: {key: row without padding}} over `(x, y)` batches."""
    rows = {}
    for x, y in batches:
        mask = x["padding_mask"].numpy()
        for i, label in enumerate(y.numpy()):
            rows[int(label)] = {k: v.numpy()[i][mask[i]] for k, v in x.items()}
    return rows


def test_dynamic_padding_pads_each_batch_to_its_longest():
    preprocessor = tiny_preprocessor(sequence_length=64)
    fixed = by_label(data.to_model_inputs(examples(), preprocessor, 2))
    widths = []
    for x, y in data.to_model_inputs(examples(), preprocessor, 2, bucket_boundaries=[8, 16]):
        mask = x["padding_mask"].numpy()
        assert mask.shape[1] == mask.sum(axis=1).max()  # padded to the batch's longest
        widths.append(mask.shape[1])
        for row, label in zip(x["token_ids"].numpy(), y.numpy()):
            np.testing.assert_array_equal(row[row != 0], fixed[label]["token_ids"])
    # Lengths with [CLS]/[SEP]: good 3, a good film 5, long 22, bad 3, the plot was dull 6,
    # fun 3. Bucket < 8 batches (good, a good film), (bad, plot), (fun); >= 16: (long).
    assert sorted(widths) == [3, 5, 6, 22]
    batches = list(data.to_model_inputs(examples(), preprocessor, 4, sequence_length=16,
                                        drop_remainder=True))
    assert len(batches) == 1 and batches[0][0]["token_ids"].shape == (4, 16)


def test_pairs_are_packed_as_two_segments():
    pairs = tf.data.Dataset.from_tensor_slices(
        ((tf.constant(["it was fun .", "he hated it ."]),
          tf.constant(["it was good .", "he loved it ."])), tf.constant([0, 1], tf.int64)))
    for mode in ({}, {"bucket_boundaries": [8]}):
        x, y = next(iter(data.to_model_inputs(pairs, tiny_preprocessor(), 2, **mode)))
        segments, mask = x["segment_ids"].numpy(), x["padding_mask"].numpy()
        assert y.numpy().tolist() == [0, 1]
        # "it was fun ." / "it was good .": [CLS] 4 [SEP] | 4 [SEP] -> 6 zeros, 5 ones.
        assert segments[0][mask[0]].tolist() == [0] * 6 + [1] * 5


def test_keys_and_padding_follow_the_preprocessor():
    bert, distilbert = tiny_preprocessor(), distilbert_preprocessor()
    assert data.packed_keys(bert) == ("token_ids", "padding_mask", "segment_ids")
    assert data.packed_keys(distilbert) == ("token_ids", "padding_mask")
    pad = distilbert.tokenizer.pad_token_id
    assert pad == 5
    fixed = by_label(data.to_model_inputs(examples(), distilbert, 2))
    for x, y in data.to_model_inputs(examples(), distilbert, 2, bucket_boundaries=[8]):
        assert sorted(x) == ["padding_mask", "token_ids"]
        ids, mask = x["token_ids"].numpy(), x["padding_mask"].numpy()
        assert (ids[~mask] == pad).all()  # padded with the tokenizer's pad id
        for row, row_mask, label in zip(ids, mask, y.numpy()):
            np.testing.assert_array_equal(row[row_mask], fixed[label]["token_ids"])


def test_one_bucket_rule():
    assert data.bucket_boundaries(128) == [16, 32, 64]
    assert data.bucket_boundaries(64) == [16, 32]
    assert data.bucket_boundaries(16) == []
    # No boundary below the length: one bucket, each batch still padded to its longest.
    widths = [x["token_ids"].shape[1] for x, _ in data.to_model_inputs(
        examples(), tiny_preprocessor(), 3, sequence_length=16, bucket_boundaries=[])]
    assert widths == [16, 6]  # (good, a good film, long cut to 16), (bad, plot, fun)
    with pytest.raises(ValueError, match="positive lengths"):
        data.to_model_inputs(examples(), tiny_preprocessor(), 2, bucket_boundaries=[0, 8])


def test_a_model_without_preprocessor_is_a_clear_error():
    with pytest.raises(ValueError, match="Need a keras-hub preprocessor"):
        data.to_model_inputs(examples(), object(), 2)


@pytest.mark.parametrize("family", ["f_net", "roformer_v2"])
def test_a_mask_is_derived_where_the_preprocessor_packs_none(family):
    """F-Net's and RoFormerV2's preprocessors pack no padding_mask; the batches
    carry one (token_ids != pad id), so buckets trim and the losses can mask."""
    from keras_tinybert.testing import tiny_family_model

    model = tiny_family_model(family, num_layers=1)
    pad_id = model.preprocessor.tokenizer.pad_token_id
    assert "padding_mask" not in model.preprocessor(x=tf.constant(["a good film"]))
    texts = tf.constant(["a good film", "bad", "the film was good good"])
    ds = tf.data.Dataset.from_tensor_slices(((texts,), tf.constant([1, 0, 1])))
    x, _ = next(iter(data.to_model_inputs(ds, model, 3, bucket_boundaries=[8])))
    ids, mask = x["token_ids"].numpy(), x["padding_mask"].numpy()
    np.testing.assert_array_equal(mask, ids != pad_id)
    assert ids.shape[1] == mask.sum(axis=1).max()  # padded to the longest only
