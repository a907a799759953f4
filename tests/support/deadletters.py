"""Dead letters made the way production makes them (a durable consumer gives up on a message), and
`venta deadletters ...` run the way an operator runs it: a real process, configured by `VENTA_*` variables only."""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import nats

from services.event_catalog import CATALOG, UserData, VendorData
from services.kit.events.bus import Event, Poison
from services.kit.events.envelope import Envelope, new_envelope
from services.kit.events.jetstream import JetStreamBus
from services.kit.events.settings import EventSettings
from tests.support.service_process import ROOT


@dataclass(frozen=True)
class Ran:
    """A finished `venta deadletters` process."""

    args: tuple[str, ...]
    code: int
    stdout: str
    stderr: str

    def json(self) -> Any:
        return json.loads(self.stdout)

    @property
    def error(self) -> str:
        """The line that says what was wrong (argparse prints its usage above it)."""
        lines = [line for line in self.stderr.splitlines() if line.strip()]
        return lines[-1] if lines else ""

    def __str__(self) -> str:
        return f"venta deadletters {' '.join(self.args)} -> {self.code}\n{self.stdout}\n{self.stderr}"


async def venta_deadletters(nats_url: str, *args: str, **env: str) -> Ran:
    """Run `venta deadletters ARGS` against this NATS (extra `VENTA_*` variables as keyword arguments)."""
    environment = {k: v for k, v in os.environ.items() if not k.startswith("VENTA_")}
    environment |= {"VENTA_NATS_URL": nats_url, **env}
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "services.cli",
        "deadletters",
        *args,
        cwd=ROOT,
        env=environment,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode is not None
    return Ran(args, process.returncode, out.decode(), err.decode())


async def bus_on(nats_url: str, **settings: Any) -> JetStreamBus:
    """A connected bus whose consumers retry fast (dead letters within a second)."""
    bus = JetStreamBus(
        EventSettings(nats_url=nats_url, consumer_retry_base_s=0.05, consumer_retry_max_s=0.2, **settings),
        CATALOG,
        client_name="test",
    )
    await bus.connect()
    return bus


def user_event(event_type: str = "user.created") -> Envelope:
    return new_envelope(
        event_type,
        UserData(clerk_id=f"user_{uuid.uuid4().hex[:8]}", user_id=str(uuid.uuid4()), timestamp="2025-01-01T00:00:00Z"),
        version=1,
    )


def vendor_event(event_type: str = "vendor.updated") -> Envelope:
    return new_envelope(
        event_type,
        VendorData(
            id=str(uuid.uuid4()),
            owner_id=str(uuid.uuid4()),
            name="Tacos",
            created_at="2025-01-01T00:00:00Z",
            updated_at="2025-01-01T00:00:00Z",
        ),
        version=1,
    )


@dataclass
class Handler:
    """A consumer's handler that is broken until fixed: `Poison(reason)`, or, with `reason=None`, an error that is
    retried up to the maximum deliveries. Records every attempt and every event it handled."""

    reason: str | None = "not_ready"
    broken: bool = True
    attempts: list[Event] = field(default_factory=list)
    handled: list[Event] = field(default_factory=list)

    async def __call__(self, events: Sequence[Event]) -> None:
        for event in events:
            self.attempts.append(event)
            if self.broken:
                if self.reason is None:
                    raise ValueError("the index refused it")
                raise Poison(self.reason, "the directory is not ready")
        self.handled.extend(events)


async def stream_messages(nats_url: str, stream: str) -> int:
    nc = await nats.connect(nats_url)
    try:
        return int((await nc.jetstream().stream_info(stream)).state.messages)
    finally:
        await nc.close()


async def stream_names(nats_url: str) -> list[str]:
    nc = await nats.connect(nats_url)
    try:
        return [info.config.name or "" for info in await nc.jetstream().streams_info()]
    finally:
        await nc.close()


async def wait_for_dead_letters(nats_url: str, count: int) -> None:
    async def there() -> bool:
        return await stream_messages(nats_url, "DEADLETTER") == count

    await eventually(there)


async def dead_letter_headers(nats_url: str) -> dict[int, dict[str, str]]:
    """Every dead letter's headers, by sequence (read directly, not through the command under test)."""
    nc = await nats.connect(nats_url)
    js = nc.jetstream()
    try:
        state = (await js.stream_info("DEADLETTER")).state
        found: dict[int, dict[str, str]] = {}
        for sequence in range(state.first_seq, state.last_seq + 1):
            try:
                msg = await js.get_msg("DEADLETTER", sequence)
            except nats.js.errors.NotFoundError:
                continue
            found[sequence] = dict(msg.headers or {})
        return found
    finally:
        await nc.close()


async def eventually(check: Callable[[], Any], timeout_s: float = 15.0) -> Any:
    """Poll `check` (a function or a coroutine function) until it returns something truthy; return that."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = check()
        if asyncio.iscoroutine(value):
            value = await value
        if value:
            return value
        assert time.monotonic() < deadline, "condition not reached in time"
        await asyncio.sleep(0.05)
