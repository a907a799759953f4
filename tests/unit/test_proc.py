"""The `/proc` reader the benchmarks take memory figures with."""

from __future__ import annotations

import os

import pytest

from tests.support.proc import status_kib


def test_memory_fields_of_a_live_process() -> None:
    rss, peak = status_kib(os.getpid(), "VmRSS"), status_kib(os.getpid(), "VmHWM")
    assert 0 < rss <= peak


def test_a_field_the_kernel_does_not_give_is_an_error_not_zero() -> None:
    with pytest.raises(LookupError, match="VmNothing"):
        status_kib(os.getpid(), "VmNothing")
    with pytest.raises(LookupError):
        status_kib(os.getpid(), "Vm")  # a prefix of real fields is not one of them
