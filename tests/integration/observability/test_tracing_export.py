"""The OTLP export as a served process sets it up (`telemetry.new_provider`), into a real OTLP/gRPC receiver: spans
leave in batches of at most `EXPORT_BATCH_SPANS` (the exporter's thread encodes a batch holding the GIL the service's
event loop needs), unless `OTEL_BSP_MAX_EXPORT_BATCH_SIZE` says otherwise."""

from __future__ import annotations

import pytest

from services.devkit.otlp_sink import OtlpReceiver
from services.kit import telemetry


async def _export(receiver: OtlpReceiver, monkeypatch: pytest.MonkeyPatch, spans: int) -> list[int]:
    """`spans` spans through a provider built as a served process builds it; the size of each export request."""
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.endpoint)
    monkeypatch.setenv("OTEL_BSP_SCHEDULE_DELAY", "200")
    provider = telemetry.new_provider("export-test")
    tracer = provider.get_tracer("test")
    try:
        for n in range(spans):  # faster than the schedule: the queue fills past a batch before the first export
            tracer.start_span(f"span {n}").end()
        await receiver.wait_for(lambda r: r.received >= spans, what=f"{spans} spans")
    finally:
        provider.shutdown()
    return receiver.batches


async def test_spans_leave_in_small_batches(receiver: OtlpReceiver, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", raising=False)
    batches = await _export(receiver, monkeypatch, 300)
    assert sum(batches) == 300 and max(batches) <= telemetry.EXPORT_BATCH_SPANS, batches
    assert len(batches) >= 300 // telemetry.EXPORT_BATCH_SPANS, batches


async def test_the_standard_variable_still_sets_the_batch(
    receiver: OtlpReceiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", "256")
    batches = await _export(receiver, monkeypatch, 300)
    assert sum(batches) == 300 and max(batches) <= 256 and max(batches) > telemetry.EXPORT_BATCH_SPANS, batches
