"""A key/value cache that appends in place, for fast batched decoding on CPU.

transformers' `DynamicCache` appends each new key/value with ``torch.cat``: every step allocates and
copies the whole cache of every layer, which for a batch of long pieces is more memory traffic than
the attention itself. `PreallocatedCache` keeps each layer's keys and values in a buffer with spare
room (doubled when full) and writes the new step into it; attention reads a view of the filled part.

Measured on this project's 2-core CPU, one thread, 46M-parameter decoder, 600 cached tokens: a float32
decoding step of a batch of 8 takes 36 ms instead of 47 ms (batch 1: the same 14.5 ms). In bfloat16
the views hurt instead: CPU matmuls on a strided bfloat16 view are several times slower than on a
contiguous tensor, so `G2MForCausalLM.generate` uses this cache for float32 models only.

Remote-code file: imports only torch and transformers.
"""

from __future__ import annotations

import torch
from transformers.cache_utils import Cache, DynamicCache, DynamicLayer

_MIN_CAPACITY = 256  # tokens; a buffer then doubles, so a 1200-token piece reallocates three times


class PreallocatedLayer(DynamicLayer):
    """A `DynamicLayer` whose ``keys`` / ``values`` are views ``[B, H, T, head_dim]`` of larger buffers.

    Everything `DynamicLayer` does by replacing ``keys`` / ``values`` (crop, batch selection, beam
    reordering) keeps working: a view that no longer starts the buffer, or no longer fits it, makes the
    next update copy it into a new buffer.
    """

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self._key_buffer: torch.Tensor | None = None
        self._value_buffer: torch.Tensor | None = None

    def _fits_buffer(self, keys: torch.Tensor, length: int, new_length: int) -> bool:
        buffer = self._key_buffer
        return (
            buffer is not None
            and buffer.shape[:2] == keys.shape[:2]
            and buffer.shape[3] == keys.shape[3]
            and buffer.dtype == keys.dtype
            and buffer.device == keys.device
            and buffer.shape[2] >= new_length
            and (length == 0 or self.keys.data_ptr() == buffer.data_ptr())  # still a view of this buffer
        )

    def update(
        self, key_states: torch.Tensor, value_states: torch.Tensor, *args, **kwargs
    ) -> tuple[torch.Tensor, torch.Tensor]:
        if not self.is_initialized:
            self.lazy_initialization(key_states, value_states)
        length = self.get_seq_length()
        new_length = length + key_states.shape[2]
        if not self._fits_buffer(key_states, length, new_length):
            shape = (*key_states.shape[:2], max(2 * new_length, _MIN_CAPACITY), key_states.shape[3])
            keys, values = key_states.new_empty(shape), value_states.new_empty(shape)  # [B, H, capacity, head_dim]
            if length:
                keys[:, :, :length] = self.keys
                values[:, :, :length] = self.values
            self._key_buffer, self._value_buffer = keys, values
        self._key_buffer[:, :, length:new_length] = key_states
        self._value_buffer[:, :, length:new_length] = value_states
        self.keys = self._key_buffer[:, :, :new_length]  # [B, H, new_length, head_dim] view
        self.values = self._value_buffer[:, :, :new_length]
        return self.keys, self.values

    def reset(self) -> None:
        super().reset()
        self._key_buffer = self._value_buffer = None


class PreallocatedCache(DynamicCache):
    """A `DynamicCache` made of `PreallocatedLayer`s (one per model layer, created on first use)."""

    def __init__(self) -> None:
        Cache.__init__(self, layer_class_to_replicate=PreallocatedLayer)


__all__ = ["PreallocatedCache", "PreallocatedLayer"]
