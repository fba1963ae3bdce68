"""``QTensor``: quantized bytes in GGML's layout with their type and logical shape."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from gguf import GGMLQuantizationType

from .formats import QTypeLike, bits_per_weight, layout, qtype_of


class QTensor:
    """A quantized tensor.

    - ``qtype``: the ``GGMLQuantizationType``;
    - ``shape``: the logical shape ``(..., n)`` in elements;
    - ``data``: uint8 array of shape ``(..., n // block_size * type_size)``, the byte layout gguf-py uses
      (a host array; for a device tensor see :meth:`to`).
    """

    __slots__ = ("qtype", "shape", "_data", "_device")

    def __init__(self, data: np.ndarray, qtype: QTypeLike, shape: Sequence[int]):
        t = qtype_of(qtype)
        shape = tuple(int(s) for s in shape)
        lay = layout(t)
        want = shape[:-1] + (shape[-1] // lay.block_size * lay.type_size,)
        data = np.asarray(data)
        if data.dtype != np.uint8:
            raise ValueError(f"QTensor data must be uint8, got {data.dtype}")
        if shape[-1] % lay.block_size:
            raise ValueError(f"row length {shape[-1]} is not a multiple of {t.name}'s block size {lay.block_size}")
        if data.size != int(np.prod(want, dtype=np.int64)):
            raise ValueError(f"{t.name} data for shape {shape} must have {int(np.prod(want))} bytes, got {data.size}")
        self.qtype: GGMLQuantizationType = t
        self.shape: tuple[int, ...] = shape
        self._data = data.reshape(want)
        self._device = None  # a device buffer once moved with .to()

    @classmethod
    def _of_checked(cls, data: np.ndarray, qtype: GGMLQuantizationType, shape: tuple[int, ...]) -> QTensor:
        """A QTensor of bytes the package just produced for ``shape`` (uint8, the right size and shape): no
        checks, which cost more than quantizing a small tensor."""
        self = cls.__new__(cls)
        self.qtype, self.shape, self._data, self._device = qtype, shape, data, None
        return self

    @property
    def data(self) -> np.ndarray:
        if self._data is None:
            raise RuntimeError("this QTensor lives on a device; call .cpu() for host bytes")
        return self._data

    @property
    def nbytes(self) -> int:
        lay = layout(self.qtype)
        return int(np.prod(self.shape[:-1], dtype=np.int64)) * (self.shape[-1] // lay.block_size * lay.type_size)

    @property
    def bits_per_weight(self) -> float:
        return bits_per_weight(self.qtype)

    @property
    def ndim(self) -> int:
        return len(self.shape)

    def dequantize(self, dtype: object | None = None):
        """Float values of ``shape``: float32 by default, bit-identical to ggml's dequantizer.

        On a device tensor (see :meth:`to`) this runs on the GPU and returns a
        :class:`pyquant.device.DeviceArray` (float32, float16 or bfloat16; the narrow types are the float32
        result rounded to nearest-even) that torch and CuPy take without a copy.
        """
        if self._device is not None:
            from .device import tensor as _dt

            return _dt.dequantize(self, dtype)
        from .quant import dequantize

        out = dequantize(self.data, self.qtype, self.shape)
        if dtype is None or np.dtype(dtype) == np.float32:
            return out
        return out.astype(dtype)

    @property
    def device(self):
        """``"cpu"`` for host bytes, else the :class:`pyquant.device.Device` holding them."""
        return "cpu" if self._device is None else self._device.device

    def to(self, device) -> QTensor:
        """This tensor on ``device``: ``"cpu"``, ``"gpu"`` (whichever GPU is present), ``"cuda"``, ``"hip"``,
        ``"cuda:1"``, a device index or a :class:`pyquant.device.Device`. Returns ``self`` if already there.

        On a GPU each row is padded to a multiple of 512 elements with zero bytes (ggml's layout).
        """
        if isinstance(device, str) and device.strip().lower() == "cpu":
            return self.cpu()
        from .device import tensor as _dt

        if self._device is not None:
            return _dt.move(self, device)
        return _dt.to_device(self, device)

    def cpu(self) -> QTensor:
        """This tensor with host bytes (``self`` if it already has them)."""
        if self._device is None:
            return self
        from .device import tensor as _dt

        return _dt.cpu(self)

    def __repr__(self) -> str:
        where = "" if self._device is None else f", device={self._device.device}"
        return (f"QTensor({self.qtype.name}, shape={self.shape}, {self.nbytes} bytes, {self.bits_per_weight:.4g} bpw"
                f"{where})")
