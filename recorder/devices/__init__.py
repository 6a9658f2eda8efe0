from recorder.devices.base import DeviceError, DeviceInfo, EmgChunk, EmgSource
from recorder.devices.registry import DEVICES, open_device

__all__ = [
    "DEVICES",
    "DeviceError",
    "DeviceInfo",
    "EmgChunk",
    "EmgSource",
    "open_device",
]
