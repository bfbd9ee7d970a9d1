"""Block adapters, registered by block type.

An adapter runs one call of an encoder block with the block's own weights and
returns what TinyBERT matches: ``(output, scores)``, the block's output and its
pre-softmax attention scores [B, H, T, T] (``None`` for a block without
attention). It takes the block's call arguments as the model's graph passes them
(``padding_mask=``, ``rel_embeddings=``, ...) plus ``training`` and
``fused_norms``. Its output must equal the block's own forward pass: each
adapter's test checks it.

A new block type needs one small module that calls `register_adapter`; `Taps`
finds every call of a registered block in a model's graph.
"""

import dataclasses
from typing import Callable


@dataclasses.dataclass(frozen=True)
class Adapter:
    """How to tap one block type.

    Attributes:
        run: ``run(block, x, *, training, fused_norms, **call_kwargs)`` →
            ``(output, scores or None)``.
        num_heads: ``num_heads(block)`` → attention heads, or None when the block
            has no attention (its scores are None).
    """

    run: Callable
    num_heads: Callable


_ADAPTERS = {}


def register_adapter(block_type, run, num_heads):
    """Tap every call of a `block_type` layer (and its subclasses) with `run`."""
    _ADAPTERS[block_type] = Adapter(run=run, num_heads=num_heads)


def adapter_for(layer):
    """The adapter of `layer`'s type (nearest registered base class), or None."""
    for cls in type(layer).__mro__:
        if cls in _ADAPTERS:
            return _ADAPTERS[cls]
    return None


def registered_types():
    """The names of the block types that have an adapter."""
    return sorted(cls.__name__ for cls in _ADAPTERS)
