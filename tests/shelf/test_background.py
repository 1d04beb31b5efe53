"""``together``: two pieces of work at once, both results, this thread's error first, Ctrl-C not held up."""

from __future__ import annotations

import threading
import time

import pytest

from shelf.background import together
from shelf.errors import PublishError, TransportError


def test_both_results_come_back_and_the_side_ran_on_another_thread() -> None:
    here = threading.current_thread().name
    mine, side = together(lambda: "here", lambda: threading.current_thread().name, "test")
    assert mine == "here" and side == "cclm-shelf-test" and side != here


def test_when_both_fail_the_error_here_is_raised_once_the_side_is_done() -> None:
    finished: list[str] = []

    def side() -> None:
        time.sleep(0.2)  # still running when here fails
        finished.append("side")
        raise TransportError("the shelf is unreachable")

    def here() -> None:
        raise PublishError("the folder is wrong")

    with pytest.raises(PublishError, match="the folder is wrong"):
        together(here, side, "test")
    assert finished == ["side"]  # nothing of the publish still runs once it has failed


def test_an_error_of_the_side_is_raised_once_here_succeeded() -> None:
    def side() -> None:
        raise TransportError("the shelf is unreachable")

    with pytest.raises(TransportError, match="unreachable"):
        together(lambda: 1, side, "test")


def test_an_interrupt_does_not_wait_for_the_side() -> None:
    release = threading.Event()

    def here() -> None:
        raise KeyboardInterrupt

    try:
        with pytest.raises(KeyboardInterrupt):
            together(here, lambda: release.wait(60), "test")  # would block a minute if waited for
        assert not release.is_set()
    finally:
        release.set()
