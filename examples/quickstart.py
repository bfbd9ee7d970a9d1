"""Quickstart: TinyBERT task distillation in a couple of minutes on a laptop CPU.

A small BERT teacher is fine-tuned on SST-2 sentences, then distilled into a 2-layer
student with the paper's task recipe: intermediate layers first (embedding, attention
and hidden-state losses), then the prediction layer (soft cross-entropy on logits).

    python examples/quickstart.py            # reads $KT_DATA_DIR or ../shared/data

Everything here is the public API: `kt.models.student_like`, `kt.Distiller`, and
plain Keras `compile` / `fit` / `evaluate`.
"""

import csv
import os
import pathlib
import time

os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import keras  # noqa: E402
import keras_hub  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

import keras_tinybert as kt  # noqa: E402

DATA = pathlib.Path(
    os.environ.get("KT_DATA_DIR", pathlib.Path(__file__).resolve().parents[2] / "shared" / "data")
)
TRAIN_ROWS, SEQ_LEN, BATCH = 3000, 40, 32


def read_sst2(split, limit=None):
    """GLUE's SST-2 TSV (sentence<TAB>label, header row)."""
    with open(DATA / "sst2" / f"{split}.tsv", encoding="utf-8") as f:
        rows = list(csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE))[:limit]
    return [r["sentence"] for r in rows], np.array([int(r["label"]) for r in rows])


def main():
    start = time.time()
    keras.utils.set_random_seed(0)
    train_x, train_y = read_sst2("train", TRAIN_ROWS)
    dev_x, dev_y = read_sst2("dev")

    # 1. A teacher: a small BERT with a WordPiece vocabulary learned from the data.
    vocab = keras_hub.tokenizers.compute_word_piece_vocabulary(
        tf.data.Dataset.from_tensor_slices(train_x), vocabulary_size=3000, lowercase=True,
        reserved_tokens=["[PAD]", "[CLS]", "[SEP]", "[UNK]", "[MASK]"],
    )
    tokenizer = keras_hub.models.BertTokenizer(vocabulary=vocab, lowercase=True)
    preprocessor = keras_hub.models.BertTextClassifierPreprocessor(
        tokenizer, sequence_length=SEQ_LEN
    )
    backbone = keras_hub.models.BertBackbone(
        vocabulary_size=len(vocab), num_layers=4, num_heads=4, hidden_dim=128,
        intermediate_dim=256, max_sequence_length=SEQ_LEN,
    )
    teacher = keras_hub.models.BertTextClassifier(backbone, 2, preprocessor=preprocessor)
    teacher.compile(
        optimizer=keras.optimizers.AdamW(1e-3),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    print("== fine-tuning the teacher (4L-128H)")
    teacher.fit(train_x, train_y, batch_size=BATCH, epochs=2, verbose=2)

    # 2. Token-id datasets made once with the teacher's preprocessor.
    def dataset(x, y):
        ds = tf.data.Dataset.from_tensor_slices((x, y)).batch(BATCH)
        return ds.map(preprocessor, num_parallel_calls=tf.data.AUTOTUNE).cache()

    train_ds, dev_ds = dataset(train_x, train_y), dataset(dev_x, dev_y)

    # 3. A 2-layer, half-width student of the same family and vocabulary.
    student = kt.models.student_like(teacher, num_layers=2, hidden_dim=64,
                                     intermediate_dim=128)

    # 4. The paper's task distillation: intermediate layers, then predictions.
    histories = {}
    for stage, epochs, lr in (("intermediate", 3, 1e-3), ("prediction", 2, 5e-4)):
        print(f"== {stage}-layer distillation")
        distiller = kt.Distiller(teacher, student, stage=stage)
        distiller.compile(optimizer=kt.optimizers.AdamW(lr))
        histories[stage] = distiller.fit(
            train_ds.shuffle(200, seed=0), validation_data=dev_ds,
            epochs=epochs, verbose=2,
        ).history

    print("\n== history (per-loss metrics, as in History.history)")
    for stage, history in histories.items():
        for name, values in sorted(history.items()):
            print(f"{stage:>12} {name:<24} " + " ".join(f"{v:.4f}" for v in values))

    def accuracy(model):  # called on token ids: the data is tokenised already
        preds = [np.argmax(model(x, training=False), -1) for x, _ in dev_ds]
        return np.mean(np.concatenate(preds) == dev_y)

    teacher_acc, student_acc = accuracy(teacher), accuracy(student)
    t_params, s_params = teacher.count_params(), student.count_params()
    print(f"\nSST-2 dev accuracy: teacher {teacher_acc:.3f} ({t_params:,} params), "
          f"student {student_acc:.3f} ({s_params:,} params)")
    print(f"done in {time.time() - start:.0f} s")


if __name__ == "__main__":
    main()
