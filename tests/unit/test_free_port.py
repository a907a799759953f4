"""The ports the test fixtures and `venta up`'s servers are started on."""

from __future__ import annotations

import socket

from services.devkit import servers
from services.devkit.servers import free_port


def test_ports_are_free_and_outside_the_kernels_range_and_the_node_ports() -> None:
    ephemeral = servers._ephemeral_ports()
    ports = [free_port() for _ in range(200)]
    assert len(set(ports)) == len(ports), "a port handed out twice"
    for port in ports:
        assert port >= 10000
        assert port not in ephemeral, f"{port} is in the kernel's range for outgoing connections {ephemeral}"
        assert not 30000 <= port <= 32767, f"{port} is a Kubernetes node port"
        with socket.socket() as s:
            s.bind(("127.0.0.1", port))


def test_a_machine_whose_ephemeral_range_starts_low_gets_ports_above_it() -> None:
    assert servers._ports_outside(range(32768, 61000)) == range(10000, 30000)
    assert servers._ports_outside(range(1024, 50000)) == range(50000, 65536)
    assert servers._ports_outside(range(15000, 20000)) == range(10000, 15000)
