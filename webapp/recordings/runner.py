"""What the recording page's protocol runner needs: the session's protocol with a
target hand for each gesture, and what the signal check can say about the device."""

from __future__ import annotations

from recorder.guided.poses import FREE_MOVEMENT_TOUR, target_joints_mm
from webapp.protocols.catalog import find_protocol
from webapp.recordings.models import RecordingSession

# The MindRove SDK (5.3.0) has an impedance mode (MindroveConfigMode.IMP_MODE, with
# resistance rows for electrode pairs 6-Ref ... 1-Drl): the page's "Check electrode
# contact" button has the agent measure it (recorder/devices/mindrove.py).
IMPEDANCE_NOTE = {
    "mindrove": "Electrode impedance: the MindRove SDK has an impedance mode; check "
    "electrode contact measures it (the EMG pauses for about 5 s). Contact is also "
    "judged from the signal below (mains hum, flat or noisy channels).",
    "simulated": "Electrode impedance: a simulated armband has no electrodes to "
    "measure; contact is judged from the signal below.",
}
DEFAULT_IMPEDANCE_NOTE = (
    "Electrode impedance: not available for this device; contact is judged from "
    "the signal below."
)


def runner_context(session: RecordingSession) -> dict:
    """Template context: `runner` (JSON-ready, or None for a free recording),
    `impedance_note` and `device_kind`."""
    # the session learns its device with the first chunk; the agent said it at hello
    device = session.device_info or (session.agent.device_info if session.agent else {})
    kind = (device or {}).get("kind", "")
    context = {
        "runner": None,
        "impedance_note": IMPEDANCE_NOTE.get(kind, DEFAULT_IMPEDANCE_NOTE),
        # only the armband has an impedance mode: the contact check is offered for it
        "device_kind": kind,
    }
    protocol = find_protocol(session.owner, session.protocol_name)
    if protocol is None:
        return context
    context["runner"] = {
        "protocol": protocol.as_dict(),
        "duration_s": protocol.duration_s,
        "targets_mm": target_joints_mm(protocol.gestures + FREE_MOVEMENT_TOUR),
        "free_movement_tour": FREE_MOVEMENT_TOUR,
        # the hand model is a right hand: mirror it for a band on the left arm
        "mirror": session.band_placement.lower().startswith("left"),
    }
    return context
