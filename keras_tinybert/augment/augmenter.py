"""The paper's data augmentation (§3.1, Algorithm 1), batched.

For each sentence: split it into words (BERT's basic tokenizer); for each eligible word
(alphabetic, not a stop word) collect candidates — the masked LM's top-K whole-word
predictions if the word is a single WordPiece, else its K nearest GloVe words; then draw
N_a samples, each replacing every eligible word with probability p_t by a candidate chosen
uniformly. The original comes first; duplicates are dropped. Candidates for all words of
all sentences in a call are computed together (`MaskedLMCandidates`, `GloVe.nearest`).

Sentence pairs are augmented field by field: the variants of field 1 are paired with the
original field 2, and vice versa — never with another field's variant (the paper's code
leaves the last variant of field 1 in the rows of field 2).
"""

import random

from keras_tinybert.augment.words import STOP_WORDS, basic_words_batch, is_eligible


class Augmenter:
    """Augment sentences or GLUE rows.

    Args:
        mlm: a `MaskedLMCandidates` (its tokenizer defines words and WordPieces).
        glove: a `GloVe` for multi-piece words (`None`: such words are left alone).
        n_samples: N_a, samples drawn per sentence (the paper: 20 for SST-2; see
            `GLUE_TASKS[task].augment_n` for its per-task settings).
        p: p_t, the probability of replacing each eligible word (0.4).
        k: K, candidates per word for GloVe (the masked LM uses `mlm.k`); 15.
        seed: the same seed gives the same output, row by row (resumable).
        stop_words: words never replaced.
    """

    def __init__(self, mlm, glove, n_samples=20, p=0.4, k=15, seed=0,
                 stop_words=STOP_WORDS):
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"p (the replacement probability) must be in [0, 1], got {p}.")
        self.mlm, self.glove = mlm, glove
        self.n_samples, self.p, self.k, self.seed = n_samples, p, k, seed
        self.stop_words = frozenset(stop_words)

    def word_candidates(self, texts):
        """For each text: `(words, {word_index: candidates})`, computed in one batch."""
        tokenizer = self.mlm.tokenizer
        words = basic_words_batch(texts, tokenizer)
        piece_map = dict(zip(*_unique_with(self.mlm.word_pieces, words)))
        mlm_requests, mlm_slots, glove_words, glove_slots = [], [], [], []
        for t, sentence in enumerate(words):
            pieces = [piece_map[w] for w in sentence]
            for i, word in enumerate(sentence):
                if not is_eligible(word, self.stop_words):
                    continue
                if len(pieces[i]) == 1 and getattr(self.mlm, "predicts", True):
                    mlm_requests.append((pieces, i))
                    mlm_slots.append((t, i))
                else:
                    glove_words.append(word)
                    glove_slots.append((t, i))
        tables = [{} for _ in texts]
        for (t, i), found in zip(mlm_slots, self.mlm.candidates(mlm_requests)):
            tables[t][i] = found
        neighbours = self.glove.nearest(glove_words, self.k) if self.glove else [[]] * len(glove_words)
        for (t, i), found in zip(glove_slots, neighbours):
            tables[t][i] = found
        for t, table in enumerate(tables):
            for i in table:
                table[i] = table[i] or [words[t][i]]  # no candidate: keep the word
            tables[t] = dict(sorted(table.items()))
        return list(zip(words, tables))

    def sample(self, text, words, candidates, rng):
        """The original `text`, then up to N_a distinct variants (Algorithm 1's loop)."""
        out, seen = [text], {text, " ".join(words)}
        for _ in range(self.n_samples):
            new = list(words)
            for i, choices in candidates.items():
                choice = choices[int(rng.random() * len(choices))]  # uniform
                if rng.random() < self.p:
                    new[i] = choice
            sentence = " ".join(new)
            if sentence not in seen:
                seen.add(sentence)
                out.append(sentence)
        return out

    def rng(self, row_id, field=0):
        """The random stream of one (row, field): independent of batching and resumes."""
        return random.Random(f"{self.seed}/{row_id}/{field}")

    def augment(self, texts, row_ids=None):
        """Each text's list of augmented sentences (the original first)."""
        row_ids = range(len(texts)) if row_ids is None else row_ids
        return [
            self.sample(text, words, cands, self.rng(row_id))
            for text, (words, cands), row_id in zip(texts, self.word_candidates(texts), row_ids)
        ]

    def augment_rows(self, rows, text_columns, row_ids):
        """Augmented GLUE rows for each input row, field by field, pairs kept paired.

        Args:
            rows: TSV rows (lists of strings).
            text_columns: the positions of the text fields (`GlueTable.text_columns`).
            row_ids: a stable id per row (its index in the file) for the random stream.

        Returns one list of rows per input row: the original row first, then for each
        text field its variants with every other column unchanged; no duplicate rows.
        """
        texts = [row[c] for c in text_columns for row in rows]
        found = self.word_candidates(texts)
        out = []
        for r, (row, row_id) in enumerate(zip(rows, row_ids)):
            new_rows, seen = [list(row)], {tuple(row)}
            for f, column in enumerate(text_columns):
                words, cands = found[f * len(rows) + r]
                variants = self.sample(row[column], words, cands, self.rng(row_id, f))
                for variant in variants[1:]:
                    new = list(row)
                    new[column] = variant
                    if tuple(new) not in seen:
                        seen.add(tuple(new))
                        new_rows.append(new)
            out.append(new_rows)
        return out


def _unique_with(function, nested):
    """Apply a list function once to the distinct items of a list of lists."""
    unique = sorted({item for items in nested for item in items})
    return unique, function(unique)
