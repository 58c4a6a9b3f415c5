"""bench/gpu.py --smoke: every step of the one prepared GPU command runs on the CPU at toy sizes, through
the carry folder a lent machine gets, so that a typo cannot waste device time (15 minutes a task)."""
import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_gpu_script_smoke_runs_every_step(tmp_path, glue_dir):
    carry, out = tmp_path / "carry", tmp_path / "out"
    prepared = subprocess.run([sys.executable, "bench/gpu.py", "--prepare", str(carry), "--data-dir", str(glue_dir)],
                              cwd=REPO, capture_output=True, text=True, timeout=300)
    assert prepared.returncode == 0, prepared.stderr[-3000:]
    assert (carry / "minilm" / "model.fp16.safetensors").is_file() and (carry / "glue/MRPC/dev.tsv").is_file()
    done = subprocess.run([sys.executable, "bench/gpu.py", "--smoke", "--carry", str(carry), "--out", str(out)],
                          cwd=REPO, capture_output=True, text=True, timeout=1800)
    assert done.returncode == 0, done.stdout[-4000:]
    lines = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
    assert [s["step"] for s in lines][:2] == ["env", "speed"]  # speed alone, then tests and accuracy at once
    steps = {s["step"]: s for s in lines}
    assert len(lines) == 4 and {name: s["status"] for name, s in steps.items()} == dict.fromkeys(
        ("env", "speed", "tests", "accuracy"), "ok")
    tests = steps["tests"]["summary"]
    assert int(tests["tests"]) > 20 and tests["failures"] == tests["errors"] == tests["skipped"] == "0"
    assert {row["method"] for row in steps["speed"]["summary"]} == {"ptuning", "prefix", "prefix-noproj", "full"}
    assert len(steps["accuracy"]["summary"]) == 3  # v2, v1, full: one seed each
    log = (out / "gpu.log").read_text()
    assert "[tests] " in log and "[accuracy] " in log  # the two side by side, told apart in the log
    profile = (out / "profile.txt").read_text()
    assert "matrix products" in profile and profile.count("synchronised after each phase") == 4
    assert sorted(p.name for p in out.iterdir()) == ["accuracy.jsonl", "gpu.log", "profile.txt", "results.jsonl",
                                                      "speed.jsonl", "tests.xml"]  # the device tool brings back 8


def test_a_chosen_step_gets_all_that_is_left_and_the_whole_plan_its_share(tmp_path):
    """The 2026-12-04 rerun of `--steps tests --budget-s 340` was still stopped at the whole plan's 180 s."""
    sys.path.insert(0, str(REPO / "bench"))
    import gpu

    quick = [sys.executable, "-c", "print('hello')"]
    for whole_plan, expected in ((False, "at most 1000 s"), (True, f"at most {gpu.STEP_BUDGET['tests']} s")):
        out = tmp_path / str(whole_plan)
        out.mkdir()
        runner = gpu.Runner(out, 1000, {}, smoke=False, whole_plan=whole_plan)
        assert runner.step("tests", quick)
        runner.log.close()
        assert expected in (out / "gpu.log").read_text()
