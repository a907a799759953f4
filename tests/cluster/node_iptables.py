"""Find and remove the iptables rules and chains the real test node added (kube-proxy, the kubelet, CNI).

Why: those rules are host-wide and outlive the processes that made them; left behind, a stale KUBE-SERVICES rule
would go on rewriting traffic to Service addresses. Teardown (node_host.py) removes them and the leftovers check
lists what remains, for IPv4 and IPv6 (kube-proxy programs both when the host has IPv6).

What counts as the node's:
- every ``KUBE-*`` chain (only a kubelet or kube-proxy makes them, and there is one real node per machine);
- every rule elsewhere that jumps to one of the node's chains, or whose comment names the node's CNI network
  (the bridge and portmap plugins write ``name: "venta-realnode" id: "<container>"`` into their rules);
- a ``CNI-*`` chain all of whose rules name that network (the per-pod masquerade chains; the shared
  ``CNI-HOSTPORT-*`` chains only when no other CNI user's rules remain in them).

Built-in chains are never deleted (iptables-nft keeps a table once it exists; an empty built-in chain with policy
ACCEPT is what "nothing" looks like). Standard library only.
"""

from __future__ import annotations

import shlex
import shutil
import subprocess
from dataclasses import dataclass, field

from tests.cluster.node_config import NODE_NAME

#: Written by the CNI plugins into the comments of their rules.
CNI_MARKER = f'name: "{NODE_NAME}"'
FAMILIES = (("iptables-save", "iptables-restore"), ("ip6tables-save", "ip6tables-restore"))


@dataclass
class Table:
    """One table of ``iptables-save`` output: its chains (in order) and rules (``-A ...`` lines, as saved)."""

    name: str
    chains: list[str] = field(default_factory=list)
    builtin: set[str] = field(default_factory=set)
    rules: list[str] = field(default_factory=list)

    def rules_of(self, chain: str) -> list[str]:
        return [rule for rule in self.rules if _chain(rule) == chain]


def parse_save(text: str) -> list[Table]:
    """Parse ``iptables-save`` output (``*table``, ``:CHAIN POLICY [counters]``, ``-A CHAIN ...``, ``COMMIT``)."""
    tables: list[Table] = []
    for line in text.splitlines():
        if line.startswith("*"):
            tables.append(Table(line[1:].strip()))
        elif line.startswith(":") and tables:
            name, policy = line[1:].split()[:2]
            tables[-1].chains.append(name)
            if policy != "-":
                tables[-1].builtin.add(name)
        elif line.startswith("-A ") and tables:
            tables[-1].rules.append(line)
    return tables


def owned(table: Table) -> tuple[list[str], list[str]]:
    """The node's chains in ``table``, and the node's rules in the other chains (see the module's docstring)."""
    chains = {c for c in table.chains if c.startswith("KUBE-") and c not in table.builtin}
    # A CNI-* chain goes when nothing but the node's rules is in it (which includes a shared CNI-HOSTPORT-* chain
    # emptied by the removal of the node's rules); repeated, since removing one chain can empty another.
    changed = True
    while changed:
        changed = False
        for chain in table.chains:
            if chain in chains or not chain.startswith("CNI-") or chain in table.builtin:
                continue
            if all(_is_owned_rule(rule, chains) for rule in table.rules_of(chain)):
                chains.add(chain)
                changed = True
    rules = [r for r in table.rules if _chain(r) not in chains and _is_owned_rule(r, chains)]
    return sorted(chains), rules


def restore_script(table: Table) -> str:
    """An ``iptables-restore --noflush`` script removing the node's rules and chains from ``table`` ('' if none)."""
    chains, rules = owned(table)
    if not chains and not rules:
        return ""
    lines = [f"*{table.name}"]
    lines += ["-D" + rule[2:] for rule in rules]  # "-A CHAIN spec" -> "-D CHAIN spec"
    lines += [f"-F {chain}" for chain in chains]  # first empty all, so no chain is referenced when deleted
    lines += [f"-X {chain}" for chain in chains]
    return "\n".join([*lines, "COMMIT", ""])


def leftovers() -> list[str]:
    """The node's chains and rules still present, one line each (empty when the host is clean)."""
    found: list[str] = []
    for save, _ in FAMILIES:
        for table in _saved(save):
            chains, rules = owned(table)
            found += [f"{save.split('-')[0]} {table.name}: chain {chain}" for chain in chains]
            found += [f"{save.split('-')[0]} {table.name}: rule {rule}" for rule in rules]
    return found


def scrub() -> list[str]:
    """Remove the node's chains and rules (IPv4 and IPv6); return the errors (empty on success)."""
    errors: list[str] = []
    for save, restore in FAMILIES:
        for table in _saved(save):
            script = restore_script(table)
            if not script:
                continue
            result = subprocess.run(
                [restore, "--noflush"], input=script, capture_output=True, text=True, check=False, timeout=60
            )
            if result.returncode != 0:
                errors.append(f"{restore} ({table.name}): {result.stderr.strip()}")
    return errors


def _saved(save: str) -> list[Table]:
    if shutil.which(save) is None:
        return []
    result = subprocess.run([save], capture_output=True, text=True, check=False, timeout=60)
    return parse_save(result.stdout) if result.returncode == 0 else []


def _is_owned_rule(rule: str, chains: set[str]) -> bool:
    # iptables-save escapes the quotes inside a comment: --comment "name: \"venta-realnode\" id: \"...\""
    return CNI_MARKER in rule.replace('\\"', '"') or _target(rule) in chains


def _chain(rule: str) -> str:
    return rule.split()[1]


def _target(rule: str) -> str:
    words = shlex.split(rule)
    for flag in ("-j", "-g", "--jump", "--goto"):
        if flag in words[:-1]:
            return words[words.index(flag) + 1]
    return ""
