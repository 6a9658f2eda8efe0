"""The rest flag: a quiet arm (low band-passed EMG) is reported as rest."""

import numpy as np

from inference import LivePredictor
from recorder.simulation import ArmbandSimulator, SimulatorConfig
from tests.inference.streams import START_TIME_S, realtime_chunks, sample_of, stream

PROTOCOL = (("rest", 3.0), ("fist", 3.0))


def test_rest_and_a_held_fist_are_told_apart(tcn_checkpoint):
    simulator = ArmbandSimulator(
        SimulatorConfig(protocol=PROTOCOL, bad_channel_probability=0.0)
    )
    emg, sample_index, _ = simulator.next_emg(3000)  # 6 s: rest, then fist
    gestures = simulator.hand_state(sample_index / 500.0)["gesture"]
    predictor = LivePredictor.from_checkpoint(tcn_checkpoint)
    frames = stream(predictor, emg, realtime_chunks(3000))
    during = {"rest": [], "fist": []}
    for frame in frames:
        gesture = gestures[sample_of(frame)]
        if gesture in during:
            during[gesture].append(frame.status == "rest")
    # away from the transitions (the hand takes a while to close)
    settled = {name: flags[len(flags) // 3 :] for name, flags in during.items()}
    assert np.mean(settled["rest"]) > 0.9
    assert np.mean(settled["fist"]) < 0.1
    assert START_TIME_S < frames[0].time_s
