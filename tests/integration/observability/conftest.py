"""What the tracing tests share: an OTLP/gRPC receiver (the devkit's), started on a random port for the test."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from services.devkit.otlp_sink import OtlpReceiver


@pytest.fixture
async def receiver() -> AsyncIterator[OtlpReceiver]:
    collector = OtlpReceiver()
    await collector.start()
    yield collector
    await collector.stop()
