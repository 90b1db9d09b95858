"""Ctrl-C stops a command even where the KeyboardInterrupt it raised was swallowed.

Real signals to this process: the interrupt lands inside code that catches BaseException
(as finalisers and some libraries do), and the command must still exit 130 and start no
further run. The subprocess test in test_cli.py covers Ctrl-C during a run.
"""

from __future__ import annotations

import argparse
import os
import signal
import time
from pathlib import Path

import dagster as dg
import pytest

from tars_pipeline.cli.interrupts import ctrl_c_pressed, remember_ctrl_c
from tars_pipeline.cli.output import EXIT_INTERRUPTED, EXIT_OK, Output, run
from tars_pipeline.cli.runner import Progress, Runner
from tars_pipeline.config import load_config
from tars_pipeline_tests.conftest import write_config


def _ctrl_c_swallowed() -> None:
    """Send SIGINT to this process inside a block that swallows what it raises."""
    try:
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(1)  # the handler runs here, at the latest when the sleep is cut short
        raise AssertionError("SIGINT did not arrive")  # pragma: no cover
    except BaseException as error:  # the swallowing this test is about
        assert isinstance(error, KeyboardInterrupt)


def test_a_swallowed_ctrl_c_still_exits_130(capsys: pytest.CaptureFixture[str]) -> None:
    parser = argparse.ArgumentParser(prog="tars-test")
    ran_on: list[str] = []

    def body(_args: argparse.Namespace, _out: Output) -> int:
        _ctrl_c_swallowed()
        ran_on.append("after")  # the body goes on: only the flag knows
        return EXIT_OK

    assert run(parser, body, []) == EXIT_INTERRUPTED
    assert ran_on == ["after"]
    assert "error: interrupted" in capsys.readouterr().err
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # handler restored


def test_a_command_without_ctrl_c_is_untouched() -> None:
    parser = argparse.ArgumentParser(prog="tars-test")
    assert run(parser, lambda _args, _out: EXIT_OK, []) == EXIT_OK
    assert not ctrl_c_pressed()


def test_an_ignored_sigint_stays_ignored() -> None:
    """A job started in the background by a non-interactive shell ignores SIGINT."""
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        with remember_ctrl_c():
            assert signal.getsignal(signal.SIGINT) == signal.SIG_IGN
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(0.05)
            assert not ctrl_c_pressed()
    finally:
        signal.signal(signal.SIGINT, previous)


def test_after_a_swallowed_ctrl_c_the_runner_starts_no_run(tmp_path: Path) -> None:
    config = load_config(write_config(tmp_path))
    with dg.instance_for_test() as instance:
        runner = Runner(config, instance=instance, progress=Progress(enabled=False))
        with remember_ctrl_c():
            _ctrl_c_swallowed()
            with pytest.raises(KeyboardInterrupt, match="not started"):
                runner.day(config.releases[0], 1, ("daily_summary",))
        assert instance.get_runs() == []
        assert runner.runs == []


def test_the_flag_ends_with_the_command_that_set_it(tmp_path: Path) -> None:
    """A swallowed Ctrl-C stops its own command, not the next one in the same process
    (the CI failure at 04ebce2: a pytest worker's later in-process run raised
    KeyboardInterrupt("not started") and the worker went down)."""
    parser = argparse.ArgumentParser(prog="tars-test")

    def body(_args: argparse.Namespace, _out: Output) -> int:
        _ctrl_c_swallowed()
        return EXIT_OK

    assert run(parser, body, []) == EXIT_INTERRUPTED
    assert not ctrl_c_pressed()
    config = load_config(write_config(tmp_path))
    with dg.instance_for_test() as instance:
        runner = Runner(config, instance=instance, progress=Progress(enabled=False))
        runner.day(config.releases[0], 1, ("kpi_samples",))
        assert len(instance.get_runs()) == 1
