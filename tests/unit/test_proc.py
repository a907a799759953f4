"""The `/proc` reader the benchmarks take memory figures with."""

from __future__ import annotations

import os
import time

import pytest

from tests.support.proc import cpu_seconds, status_kib


def test_memory_fields_of_a_live_process() -> None:
    rss, peak = status_kib(os.getpid(), "VmRSS"), status_kib(os.getpid(), "VmHWM")
    assert 0 < rss <= peak


def test_a_field_the_kernel_does_not_give_is_an_error_not_zero() -> None:
    with pytest.raises(LookupError, match="VmNothing"):
        status_kib(os.getpid(), "VmNothing")
    with pytest.raises(LookupError):
        status_kib(os.getpid(), "Vm")  # a prefix of real fields is not one of them


def test_cpu_seconds_follow_the_process_own_clock() -> None:
    before, own_before = cpu_seconds(os.getpid()), time.process_time()
    while time.process_time() - own_before < 0.3:  # burn 0.3 s of CPU
        pass
    spent = cpu_seconds(os.getpid()) - before
    assert 0.2 <= spent <= time.process_time() - own_before + 0.05  # clock ticks: 10 ms each
