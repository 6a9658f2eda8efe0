"""python -m recorder: the local agent and session-file tools.

Examples:
  python -m recorder agent --server ws://127.0.0.1:8000 --token emgagent_...
  python -m recorder agent --server wss://lab.example.org --token-file ~/.emg-token \\
      --device mindrove --ip 192.168.4.1 --camera webcam --save-video ~/emg-videos
  python -m recorder agent ... --camera video --video hand.mp4   # a file as camera
  python -m recorder info var/media/sessions/user-1/session-3.h5
  python -m recorder export-emg2pose session-3.h5 session-3.emg2pose.h5
  python -m recorder simulate demo.h5 --seconds 60   # a session without hardware
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import signal
import sys
from pathlib import Path

from recorder.agent import Agent, AgentConfig, AgentFatalError, parse_server_urls
from recorder.camera.sources import CAMERA_CHOICES
from recorder.devices import DeviceError, open_device

DEFAULT_SPOOL = Path.home() / ".emg-agent" / "spool"
# below 10 ms the messages cost more than the samples; above 1 s live views stutter
MIN_CHUNK_MS, MAX_CHUNK_MS = 10, 1000


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m recorder",
        description="Stream an EMG armband to the portal, and inspect session files.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=__doc__.split("Examples:", 1)[1],
    )
    commands = parser.add_subparsers(dest="command", required=True)
    _add_agent_command(commands)
    info = commands.add_parser("info", help="print a session file's summary as JSON")
    info.add_argument("file", type=Path)
    simulate = commands.add_parser(
        "simulate",
        help="write a simulated session file (EMG and webcam landmarks), no server",
    )
    simulate.add_argument("output", type=Path)
    simulate.add_argument("--seconds", type=float, default=60.0)
    simulate.add_argument("--seed", type=int, default=0, help="which virtual person")
    export = commands.add_parser(
        "export-emg2pose", help="write a session in the emg2pose layout"
    )
    export.add_argument("file", type=Path)
    export.add_argument("output", type=Path)
    return parser


def _add_agent_command(commands) -> None:
    agent = commands.add_parser(
        "agent",
        help="connect to the portal and stream when a recording starts",
        description="Connects to the portal with an agent token (create one on the "
        "portal's Agent tokens page), then waits: when you press Start in the browser "
        "it streams the armband, keeping every chunk on disk until the server "
        "confirms it.",
    )
    agent.add_argument(
        "--server",
        required=True,
        action="append",
        help="portal address, e.g. ws://127.0.0.1:8000; repeat it (or separate "
        "addresses with commas) for a site with several servers: after a failed or "
        "dropped connection the agent tries the next one",
    )
    secret = agent.add_mutually_exclusive_group(required=True)
    secret.add_argument("--token", help="the agent token (shown once when created)")
    secret.add_argument("--token-file", type=Path, help="a file holding the token")
    agent.add_argument(
        "--spool",
        type=Path,
        default=DEFAULT_SPOOL,
        help=f"where unacknowledged chunks wait (default {DEFAULT_SPOOL})",
    )
    _add_device_options(agent)
    agent.add_argument(
        "--chunk-ms",
        type=float,
        default=AgentConfig.chunk_s * 1000,
        help="milliseconds of signal per chunk sent while recording (default "
        "%(default)g); smaller chunks mean more messages for the server",
    )
    agent.add_argument(
        "--live-chunk-ms",
        type=float,
        default=AgentConfig.live_chunk_s * 1000,
        help="milliseconds per chunk while a live 3D hand watches (default "
        "%(default)g: 25 pose updates per second); a busy server may ask for "
        "longer ones, up to --chunk-ms",
    )
    _add_camera_options(agent)
    agent.add_argument("-v", "--verbose", action="store_true", help="log every step")


def _add_device_options(agent) -> None:
    """--device, and the options of each kind of device."""
    agent.add_argument(
        "--device",
        default="simulated",
        choices=["simulated", "mindrove", "replay"],
        help="simulated (default): a virtual armband and hand; mindrove: the "
        "real armband; replay: play back a session file",
    )
    agent.add_argument(
        "--seed", type=int, default=0, help="simulated: which virtual person"
    )
    agent.add_argument(
        "--duration-s", type=float, help="simulated: end each recording after this long"
    )
    agent.add_argument(
        "--line-frequency-hz",
        type=float,
        default=50.0,
        help="simulated: mains frequency",
    )
    agent.add_argument(
        "--ip", help="mindrove: the armband's address (default: the SDK's)"
    )
    agent.add_argument(
        "--playback-file", help="mindrove: replay a 39-row MindRove file instead"
    )
    agent.add_argument(
        "--file", type=Path, help="replay: the session file to play back"
    )


def _add_camera_options(agent) -> None:
    agent.add_argument(
        "--camera",
        choices=CAMERA_CHOICES,
        help="where hand labels come from: simulated (the default with --device "
        "simulated: the virtual person's hand), webcam, video (a file played as a "
        "camera), or none (the default otherwise). Frames are labeled here "
        "(MediaPipe, then IK); only the labels go to the server",
    )
    agent.add_argument("--video", type=Path, help="video: the file to play")
    agent.add_argument(
        "--camera-index", type=int, default=0, help="webcam: OpenCV's camera number"
    )
    agent.add_argument(
        "--camera-delay-ms",
        type=float,
        default=0.0,
        help="webcam: how long after capture a frame reaches the agent (default 0); "
        "frame times are moved back by it",
    )
    agent.add_argument(
        "--save-video",
        type=Path,
        metavar="DIR",
        help="keep each recording's video in DIR (session-<id>.mp4 and the frames' "
        "times); it leaves this computer only when the session's owner asks for it "
        "on the session page",
    )
    agent.add_argument(
        "--hand",
        choices=["right", "left"],
        default="right",
        help="the hand the camera films (default right)",
    )


def device_options(args) -> dict:
    if args.device == "simulated":
        return {
            "seed": args.seed,
            "duration_s": args.duration_s,
            "line_frequency_hz": args.line_frequency_hz,
        }
    if args.device == "mindrove":
        return {"ip_address": args.ip, "playback_file": args.playback_file}
    if args.file is None:
        raise SystemExit("error: --device replay needs --file SESSION.h5")
    return {"path": str(args.file)}


def camera_choice(args) -> str:
    """--camera, or its default: the simulated person's camera for the simulated
    armband, the video for --video, no camera otherwise."""
    if args.camera is not None:
        return args.camera
    if args.video is not None:
        return "video"
    return "simulated" if args.device == "simulated" else "none"


def camera_options(camera: str, args) -> dict:
    """The camera's keyword options; SystemExit naming a bad combination."""
    if camera == "simulated" and args.device != "simulated":
        raise SystemExit(
            "error: --camera simulated films the simulated person; use it with "
            "--device simulated"
        )
    if args.save_video is not None and camera not in ("webcam", "video"):
        raise SystemExit(
            f"error: --save-video needs camera frames, but --camera is {camera}; "
            "use --camera webcam or --camera video"
        )
    if camera == "video":
        if args.video is None:
            raise SystemExit("error: --camera video needs --video FILE")
        if not args.video.is_file():
            raise SystemExit(f"error: --video {args.video}: no such file")
        return {"path": str(args.video)}
    if camera == "webcam":
        return {"index": args.camera_index, "delay_s": args.camera_delay_ms / 1000}
    return {}


def check_device(name: str, options: dict) -> None:
    """Open and release the device once, so a missing armband is reported at start."""
    device = open_device(name, **options)
    try:
        device.prepare()
    finally:
        device.release()


def run_agent(args) -> int:
    for flag, chunk_ms in (("--chunk-ms", args.chunk_ms),
                           ("--live-chunk-ms", args.live_chunk_ms)):  # fmt: skip
        if not MIN_CHUNK_MS <= chunk_ms <= MAX_CHUNK_MS:
            raise SystemExit(
                f"error: {flag} {chunk_ms:g} is out of range "
                f"{MIN_CHUNK_MS}..{MAX_CHUNK_MS}"
            )
    try:
        parse_server_urls(",".join(args.server))
    except ValueError as exc:
        raise SystemExit(f"error: --server: {exc}") from None
    token = args.token or _read_token_file(args.token_file)
    options = device_options(args)
    camera = camera_choice(args)
    camera_settings = camera_options(camera, args)
    try:
        check_device(args.device, options)
    except DeviceError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    config = AgentConfig(
        server_url=",".join(args.server),
        token=token,
        spool_dir=args.spool,
        device=args.device,
        device_options=options,
        camera=camera,
        camera_options=camera_settings,
        save_video_dir=args.save_video,
        handedness=args.hand,
        chunk_s=args.chunk_ms / 1000,
        live_chunk_s=args.live_chunk_ms / 1000,
    )
    try:
        asyncio.run(_run_until_signalled(Agent(config)))
    except AgentFatalError as exc:
        print(f"error: the server refused this agent: {exc}", file=sys.stderr)
        return 2
    return 0


async def _run_until_signalled(agent: Agent) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    print(
        f"agent: connecting to {' or '.join(agent.server_urls)} "
        f"with the {agent.config.device} device and camera {agent.config.camera}; "
        "press Ctrl-C to quit",
        flush=True,
    )
    await agent.run_forever(stop)


def _read_token_file(path: Path) -> str:
    try:
        return path.read_text().strip()
    except OSError as exc:
        raise SystemExit(
            f"error: cannot read the token file {path}: {exc.strerror}"
        ) from None


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    level = logging.DEBUG if getattr(args, "verbose", False) else logging.INFO
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(message)s")
    if args.command == "agent":
        return run_agent(args)
    from recorder.session_file import SessionFormatError, read_session, session_summary

    try:
        if args.command == "info":
            print(json.dumps(session_summary(args.file), indent=2))
        elif args.command == "simulate":
            from recorder.session_file import write_session
            from recorder.simulate_file import simulate_session

            write_session(args.output, simulate_session(args.seconds, args.seed))
            print(f"wrote {args.output}")
        else:
            from recorder.emg2pose_format import export_emg2pose

            export_emg2pose(read_session(args.file), args.output)
            print(f"wrote {args.output}")
    except (OSError, SessionFormatError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
