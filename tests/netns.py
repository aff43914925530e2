"""Test hosts on one machine: network namespaces on a private bridge, each with its own address and
an nftables firewall. Created by a test and removed after it, failures included (needs root)."""

from __future__ import annotations

import ipaddress
import os
import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Final

#: The benchmarking range (RFC 2544): no real host is there, and the bridge has no address of
#: the machine's own, so nothing on it is routed anywhere else.
SUBNET: Final = ipaddress.ip_network("198.18.29.0/24")
TOOLS: Final = ("ip", "nft")


def run(*command: str) -> str:
    result = subprocess.run(list(command), capture_output=True, text=True, check=False, timeout=60)
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed ({result.returncode}): {result.stderr.strip()}")
    return result.stdout


def missing_requirements() -> str | None:
    """Why test hosts cannot be made here, or None when they can."""
    if os.geteuid() != 0:
        return "network namespaces need root"
    absent = [tool for tool in TOOLS if shutil.which(tool) is None]
    if absent:
        return f"{', '.join(absent)} missing: run `bash scripts/install-deploy-tools.sh` (iproute2, nftables)"
    return None


@dataclass
class Host:
    """One namespace: its name and address."""

    namespace: str
    address: str

    def command(self, *argv: str) -> list[str]:
        """`argv` run inside this host."""
        return ["ip", "netns", "exec", self.namespace, *argv]


@dataclass
class TestHosts:
    """Hosts on one bridge; `close()` removes every namespace, link and rule it made."""

    __test__ = False  # a helper, not a test class

    tag: str = field(default_factory=lambda: os.urandom(2).hex())
    hosts: list[Host] = field(default_factory=list)
    _links: list[str] = field(default_factory=list)

    @property
    def bridge(self) -> str:
        return f"wf{self.tag}br"

    def create(self, count: int) -> list[Host]:
        run("ip", "link", "add", self.bridge, "type", "bridge")
        self._links.append(self.bridge)
        run("ip", "link", "set", self.bridge, "up")
        for index in range(1, count + 1):
            host = Host(f"wf{self.tag}-h{index}", str(SUBNET.network_address + 10 + index))
            outside, inside = f"wf{self.tag}o{index}", f"wf{self.tag}i{index}"
            run("ip", "netns", "add", host.namespace)
            self.hosts.append(host)
            run("ip", "link", "add", outside, "type", "veth", "peer", "name", inside)
            self._links.append(outside)
            run("ip", "link", "set", inside, "netns", host.namespace)
            run("ip", "link", "set", outside, "master", self.bridge)
            run("ip", "link", "set", outside, "up")
            run(*host.command("ip", "link", "set", "lo", "up"))
            run(*host.command("ip", "addr", "add", f"{host.address}/{SUBNET.prefixlen}", "dev", inside))
            run(*host.command("ip", "link", "set", inside, "up"))
        return self.hosts

    def admit_only(self, host: Host, port: int, sources: Sequence[Host]) -> None:
        """The host's firewall: drop every incoming connection but to `port` from `sources`
        (its own loopback traffic, which carries what it sends to its own address, stays open)."""
        allowed = ", ".join(source.address for source in sources)
        rules = (
            "table inet weft_test {\n"
            "  chain input {\n"
            "    type filter hook input priority 0; policy drop;\n"
            '    iif "lo" accept\n'
            "    ct state established,related accept\n"
            f"    ip saddr {{ {allowed} }} tcp dport {port} accept\n"
            "  }\n"
            "}\n"
        )
        subprocess.run(host.command("nft", "-f", "-"), input=rules, text=True, check=True, capture_output=True,
                       timeout=60)

    def close(self) -> None:
        for host in self.hosts:
            subprocess.run(["ip", "netns", "del", host.namespace], capture_output=True, check=False, timeout=60)
        for link in reversed(self._links):
            subprocess.run(["ip", "link", "del", link], capture_output=True, check=False, timeout=60)
        self.hosts.clear()
        self._links.clear()
