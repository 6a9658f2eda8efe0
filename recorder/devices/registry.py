"""Chooses a device implementation by name, importing its SDK only when asked for."""

from __future__ import annotations

import importlib

from recorder.devices.base import EmgSource

# name -> "module:Class"; lazy so that the MindRove SDK is imported only when used.
DEVICES = {
    "simulated": "recorder.devices.simulated:SimulatedArmband",
    "mindrove": "recorder.devices.mindrove:MindRoveArmband",
    "replay": "recorder.devices.replay:ReplayDevice",
}


def open_device(name: str, **options) -> EmgSource:
    """Build the device called `name` with its keyword options (not yet prepared)."""
    if name not in DEVICES:
        known = ", ".join(sorted(DEVICES))
        raise ValueError(f"unknown device {name!r}; choose one of: {known}")
    module_name, class_name = DEVICES[name].split(":")
    device_class = getattr(importlib.import_module(module_name), class_name)
    return device_class(**options)
