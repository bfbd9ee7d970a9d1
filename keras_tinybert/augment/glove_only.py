"""GloVe-only augmentation: for when no pre-trained masked LM is at hand.

The paper (§3.1) asks a masked LM for single-piece words and GloVe for multi-piece
words. Without a pre-trained masked LM (this project's offline machine has none; a
randomly initialised head would propose noise), `GloVeOnly` stands in for
`MaskedLMCandidates`: it splits words into the teacher's WordPieces like the real one
but predicts nothing, so the `Augmenter` sends *every* eligible word to GloVe. This is
a departure from the paper, named as such in every result that uses it
(`keras-tinybert augment --mlm none --tokenizer TEACHER`).
"""


class GloVeOnly:
    """A masked-LM stand-in that tokenises but makes no prediction."""

    predicts = False
    k = 0  # no masked-LM candidates (recorded in the output's settings)

    def __init__(self, tokenizer):
        self.tokenizer = tokenizer
        self._pieces = {}

    def word_pieces(self, words):
        """WordPiece ids of each word, tokenised once per distinct word."""
        new = sorted({w for w in words if w not in self._pieces})
        if new:
            tokens = self.tokenizer(new)
            tokens = tokens.to_list() if hasattr(tokens, "to_list") else tokens
            for word, ids in zip(new, tokens):
                self._pieces[word] = [int(i) for i in ids] or [0]
        return [self._pieces[w] for w in words]

    def candidates(self, requests):
        return [[] for _ in requests]
