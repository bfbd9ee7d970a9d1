"""Which teacher layer each student layer learns from: n = g(m) (TinyBERT §3.1).

Layers are numbered as in the paper: 0 is the embedding layer, 1..M (student) and
1..N (teacher) are the Transformer blocks, M+1 and N+1 the prediction layers. A map
always has g(0) = 0 and g(M+1) = N+1; what varies is g(1..M):

- ``uniform`` (the paper's default): g(m) = m·N/M, every N/M-th teacher block;
- ``top``: the last M teacher blocks, g(m) = N − M + m;
- ``bottom``: the first M teacher blocks, g(m) = m;
- explicit: a strictly increasing list [g(1), …, g(M)] of 1-based teacher blocks.
"""

STRATEGIES = ("uniform", "top", "bottom")


class LayerMap:
    """The mapping n = g(m) from M student blocks to N teacher blocks.

    Args:
        strategy: ``"uniform"``, ``"top"``, ``"bottom"`` or a list of M 1-based
            teacher block indices (strictly increasing).
        student_layers: M, the number of student Transformer blocks.
        teacher_layers: N, the number of teacher Transformer blocks.

    Example:
        >>> LayerMap("uniform", 4, 12).blocks
        [3, 6, 9, 12]
        >>> LayerMap("uniform", 4, 12)(0), LayerMap("uniform", 4, 12)(5)
        (0, 13)
    """

    def __init__(self, strategy, student_layers, teacher_layers):
        M, N = int(student_layers), int(teacher_layers)
        if M < 1 or N < 1:
            raise ValueError(
                f"Both models need at least one Transformer block; got a student "
                f"with {M} and a teacher with {N}."
            )
        if M > N:
            raise ValueError(
                f"The student has {M} Transformer blocks but the teacher only {N}: "
                f"TinyBERT maps each student block to a distinct teacher block, so "
                f"the student must not be deeper than the teacher. Use a student "
                f"with at most {N} layers."
            )
        self.strategy = strategy if isinstance(strategy, str) else "explicit"
        self.student_layers = M
        self.teacher_layers = N
        self.blocks = self._blocks(strategy, M, N)

    @staticmethod
    def _blocks(strategy, M, N):
        if isinstance(strategy, str):
            if strategy == "uniform":
                if N % M:
                    raise ValueError(
                        f"A uniform layer map needs the student depth to divide the "
                        f"teacher's: {N} teacher blocks / {M} student blocks is not "
                        f"an integer. Choose M in "
                        f"{[d for d in range(1, N + 1) if N % d == 0]}, or pass "
                        f"'top', 'bottom' or an explicit list of {M} teacher blocks."
                    )
                return [m * N // M for m in range(1, M + 1)]
            if strategy == "top":
                return [N - M + m for m in range(1, M + 1)]
            if strategy == "bottom":
                return list(range(1, M + 1))
            raise ValueError(
                f"Unknown layer map {strategy!r}: use one of {STRATEGIES} or an "
                f"explicit list of {M} teacher blocks (1-based, increasing)."
            )
        return LayerMap._explicit(list(strategy), M, N)

    @staticmethod
    def _explicit(blocks, M, N):
        if len(blocks) != M:
            raise ValueError(
                f"An explicit layer map needs one teacher block per student block: "
                f"got {len(blocks)} entries {blocks} for a {M}-layer student."
            )
        if any(not isinstance(n, int) or isinstance(n, bool) for n in blocks):
            raise ValueError(f"Layer map entries must be integers, got {blocks}.")
        bad = [n for n in blocks if not 1 <= n <= N]
        if bad:
            raise ValueError(
                f"Layer map entries {bad} are out of range: teacher blocks are "
                f"numbered 1..{N} (0 is the embedding layer, which is always mapped "
                f"to the student's embedding layer)."
            )
        if any(b <= a for a, b in zip(blocks, blocks[1:])):
            raise ValueError(
                f"An explicit layer map must be strictly increasing (a deeper student "
                f"block learns from a deeper teacher block); got {blocks}."
            )
        return blocks

    def __call__(self, m):
        """g(m) for m in 0..M+1 (0 = embeddings, M+1 = prediction layer)."""
        if m == 0:
            return 0
        if m == self.student_layers + 1:
            return self.teacher_layers + 1
        if 1 <= m <= self.student_layers:
            return self.blocks[m - 1]
        raise ValueError(f"Student layer {m} is outside 0..{self.student_layers + 1}.")

    def pairs(self):
        """[(m, g(m))] for the Transformer blocks m = 1..M."""
        return list(zip(range(1, self.student_layers + 1), self.blocks))

    def get_config(self):
        strategy = self.strategy if self.strategy != "explicit" else list(self.blocks)
        return {
            "strategy": strategy,
            "student_layers": self.student_layers,
            "teacher_layers": self.teacher_layers,
        }

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    def __repr__(self):
        return (
            f"LayerMap({self.strategy!r}, M={self.student_layers}, "
            f"N={self.teacher_layers}, g(1..M)={self.blocks})"
        )

    def __eq__(self, other):
        return isinstance(other, LayerMap) and self.get_config() == other.get_config()


def layer_map(spec, student_layers, teacher_layers):
    """A `LayerMap` from a strategy name, an explicit list, or a `LayerMap`."""
    if isinstance(spec, LayerMap):
        if (spec.student_layers, spec.teacher_layers) != (
            student_layers,
            teacher_layers,
        ):
            raise ValueError(
                f"{spec} was built for M={spec.student_layers}, "
                f"N={spec.teacher_layers}, but the student has {student_layers} "
                f"blocks and the teacher {teacher_layers}."
            )
        return spec
    return LayerMap(spec, student_layers, teacher_layers)
