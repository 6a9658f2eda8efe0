"""`python -m inference bench`: one JSON line; the server's figures merged in."""

import json

from inference.__main__ import main
from inference.bench import add_end_to_end

ENGINE_KEYS = {"model", "streams", "update_ms_p50", "update_ms_p99", "achieved_hz",
               "e2e_ms_p99", "threads"}  # fmt: skip


def test_bench_prints_the_engine_figures(tcn_checkpoint, capsys):
    status = main(["bench", "--checkpoint", str(tcn_checkpoint), "--streams", "2",
                   "--seconds", "1"])  # fmt: skip
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert status == 0
    assert ENGINE_KEYS <= set(result)
    assert result["model"] == "tcn" and result["streams"] == 2
    assert result["threads"] == 1 and result["e2e_ms_p99"] is None
    assert 0 < result["update_ms_p50"] <= result["update_ms_p99"]
    assert result["achieved_hz"] > 0


FAKE_BENCH_LIVE = """import json, sys
assert sys.argv[1:3] == ["bench_live", "--checkpoint"], sys.argv
print("warming up")
print(json.dumps({"e2e_ms_p50": 4.0, "e2e_ms_p99": 9.5, "poses_per_s": 99.0,
                  "args": sys.argv[1:]}))
"""


def test_the_server_figures_are_merged(tmp_path):
    manage_py = tmp_path / "manage.py"
    manage_py.write_text(FAKE_BENCH_LIVE)
    engine = {"model": "tcn", "streams": 3, "e2e_ms_p99": None}
    merged = add_end_to_end(engine, tmp_path / "m.pt", 5.0, manage_py)
    assert merged == engine | {"e2e_ms_p50": 4.0, "e2e_ms_p99": 9.5,
                               "poses_per_s": 99.0}  # fmt: skip


def test_a_failing_server_bench_is_reported_not_raised(tmp_path):
    manage_py = tmp_path / "manage.py"
    manage_py.write_text("import sys; sys.exit('Unknown command: bench_live')")
    merged = add_end_to_end({"model": "tcn", "streams": 1}, tmp_path / "m.pt", 1.0,
                            manage_py)  # fmt: skip
    assert "Unknown command: bench_live" in merged["e2e_error"]
    missing = add_end_to_end({"model": "tcn", "streams": 1}, tmp_path / "m.pt", 1.0,
                             tmp_path / "nowhere" / "manage.py")  # fmt: skip
    assert "no " in missing["e2e_error"]
