"""A physiologically grounded armband + hand simulator (numpy, scipy.signal only)."""

from recorder.simulation.simulator import ArmbandSimulator, SimulatorConfig

__all__ = ["ArmbandSimulator", "SimulatorConfig"]
