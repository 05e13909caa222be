"""bench._procs: a process started again shows only its new output; CPU is counted per group of processes."""
from __future__ import annotations

import subprocess
import sys

from bench import _procs
from tests.support.waiting import wait_for


def test_a_process_started_again_is_ready_on_its_own_output_only(tmp_path):
    args = ["-c", "import os, time; print(os.environ['ROUND'], flush=True); time.sleep(60)"]
    echo = _procs.Process("echo", args, tmp_path, {"ROUND": "first round"}, ready_text="first round")
    with echo:
        assert "first round" in echo.output()
    assert not echo.alive

    echo.env["ROUND"] = "second round"
    echo.ready_text = "second round"
    with echo:
        assert "second round" in echo.output() and "first round" not in echo.output()
    assert "first round" in echo.log.read_text()  # one log, appended to


def test_a_process_that_never_logs_its_ready_line_is_stopped(tmp_path):
    sleeper = _procs.Process("sleeper", ["-c", "import time; time.sleep(60)"], tmp_path, ready_text="never",
                             start_timeout=0.5)
    try:
        sleeper.start()
        sleeper.wait_ready()
    except TimeoutError as error:
        assert "sleeper to be ready" in str(error)
    else:
        raise AssertionError("a process that never got ready was waited for")
    assert not sleeper.alive


def test_pids_named_finds_a_process_by_command_and_arguments():
    child = subprocess.Popen(["sleep", "30.125"])
    try:
        wait_for(lambda: child.pid in _procs.pids_named("sleep", containing="30.125"), what="sleep started")
        assert child.pid not in _procs.pids_named("sleep", containing="31.5")
        assert child.pid not in _procs.pids_named("postgres")
    finally:
        child.kill()
        child.wait()


def test_the_cpu_meter_counts_a_busy_group_and_the_machine():
    script = ("import sys, time\nend = time.process_time() + 0.3\nwhile time.process_time() < end: pass\n"
              "print('done', flush=True)\nsys.stdin.read()")
    busy = subprocess.Popen([sys.executable, "-c", script], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    try:
        with _procs.CpuMeter({"busy": [busy.pid], "gone": [2 ** 22 + 1]}) as cpu:
            assert busy.stdout.readline() == b"done\n"  # its CPU spent, still there to be read
    finally:
        busy.kill()
        busy.communicate()
    assert set(cpu.seconds) == {"busy", "gone", "other", "machine", "stolen"}
    assert cpu.seconds["gone"] == 0  # no such process: nothing counted, no error
    assert cpu.seconds["busy"] > 0.1 and cpu.seconds["machine"] > 0.1
    assert cpu.busy("busy") > 0 and cpu.elapsed > 0
