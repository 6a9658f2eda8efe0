"""`python -m inference bench --e2e` calls `manage.py bench_live`: the arguments it
builds must be ones the real command accepts."""

from pathlib import Path

from inference.bench import bench_live_arguments
from webapp.live.management.commands.bench_live import Command


def test_the_inference_bench_calls_bench_live_with_arguments_it_accepts():
    name, *arguments = bench_live_arguments(Path("final.pt"), 3, 12.5)
    assert name == "bench_live"
    options = Command().create_parser("manage.py", name).parse_args(arguments)
    assert (options.checkpoint, options.streams, options.seconds) == (
        Path("final.pt"), 3, 12.5,
    )  # fmt: skip
