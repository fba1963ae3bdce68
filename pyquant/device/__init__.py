"""GPU runtime: one small interface over HIP (hip-python, AMD) and CUDA (cuda-python, NVIDIA).

>>> dev = pyquant.device.get_device("gpu")   # HIP where an AMD GPU is present, else CUDA
>>> qt_gpu = qt.to(dev)                      # quantized bytes on the GPU (rows padded to 512 elements)
>>> y = qt_gpu.dequantize(dtype="float16")   # a DeviceArray: torch.from_dlpack(y) / cupy.asarray(y), no copy

Importing this package loads neither hip-python nor cuda-python; the first :func:`get_device` does.
"""

from __future__ import annotations

from .memory import DeviceArray, DeviceBuffer, DType, as_device_array, dtype_of
from .runtime import (
    CodeObjectError,
    Device,
    DeviceError,
    DeviceMemoryError,
    Event,
    NoDeviceError,
    Properties,
    Stream,
    available,
    get_device,
    select_code_object,
)

__all__ = [
    "CodeObjectError", "DType", "Device", "DeviceArray", "DeviceBuffer", "DeviceError", "DeviceMemoryError", "Event",
    "NoDeviceError", "Properties", "Stream", "as_device_array", "available", "dtype_of", "get_device",
    "is_available", "select_code_object",
]


def is_available() -> bool:
    """Whether some GPU (AMD through HIP, or NVIDIA through CUDA) is usable; never raises."""
    return any(count > 0 for count, _ in available().values())
