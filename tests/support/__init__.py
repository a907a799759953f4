"""Helpers shared by the tests and the benchmarks: in-process hosts, service processes, clients, stand-ins for
the outside SaaS, scenes and assertions. Fixtures stay in the conftest.py files; everything importable lives here."""
