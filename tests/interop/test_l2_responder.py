"""The Layer 2 responder on a real segment, judged by a client's own kernel.

Two node namespaces and a client namespace hang off a bridge (in a namespace of
its own).  The nodes have no addresses at all: a :class:`spinelb.l2.Responder`
on each node's ``eth0`` answers for the service addresses.  Each responder runs
in this process, in a thread that entered the node's namespace with
``setns(2)`` and runs its own event loop: the sockets it opens belong to that
namespace, and the test reads the responder's counters and calls
``set_addresses`` directly, with no command protocol to a subprocess.  The
client has 10.250.0.1/24 and fd00:250::1/64; it sends a UDP datagram to a
service address (that is what makes its kernel resolve it; ``ping`` is not on
every host) and ``ip neigh`` tells which MAC its kernel chose.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import ctypes
import json
import os
import random
import socket
import threading
from collections.abc import Callable, Iterator
from ipaddress import IPv4Address, IPv6Address
from typing import Any, TypeVar

import pytest

from lab.netns import Namespace, attach, wait_for
from spinelb.l2 import MacAddress, NeighborSolicitation, Responder, solicited_node
from spinelb.l2.packet import multicast_mac

pytestmark = pytest.mark.interop

T = TypeVar("T")
PREFIX = f"slt{os.getpid()}-l2"
CLONE_NEWNET = 0x40000000
VIP4 = IPv4Address("10.250.0.100")
VIP6 = IPv6Address("fd00:250::100")
CLIENT4, CLIENT6 = "10.250.0.1", "fd00:250::1"
WAIT = 5.0  # seconds for any one outcome; each takes well under one


def enter_namespace(name: str) -> None:
    """Move the calling thread (only) into the network namespace ``name``."""
    libc = ctypes.CDLL(None, use_errno=True)
    fd = os.open(f"/run/netns/{name}", os.O_RDONLY)
    try:
        if libc.setns(fd, CLONE_NEWNET) != 0:
            errno = ctypes.get_errno()
            raise OSError(errno, f"setns {name}: {os.strerror(errno)}")
    finally:
        os.close(fd)


def in_namespace(name: str, make: Callable[[], T]) -> T:
    """``make()`` run by a thread inside namespace ``name`` (sockets it opens stay there)."""
    result: concurrent.futures.Future[T] = concurrent.futures.Future()

    def run() -> None:
        try:
            enter_namespace(name)
            result.set_result(make())
        except BaseException as err:
            result.set_exception(err)

    thread = threading.Thread(target=run)
    thread.start()
    thread.join()
    return result.result()


class Node:
    """A responder on ``eth0`` of a node namespace, on an event loop in a thread of its own."""

    def __init__(self, ns: Namespace) -> None:
        self.ns = ns
        self.errors: list[dict[str, Any]] = []  # whatever the loop caught: must stay empty
        self.loop = asyncio.new_event_loop()
        self.loop.set_exception_handler(lambda _loop, context: self.errors.append(context))
        ready: concurrent.futures.Future[Responder] = concurrent.futures.Future()
        self.thread = threading.Thread(target=self._run, args=(ready,), name=ns.name)
        self.thread.start()
        self.responder = ready.result(timeout=WAIT)

    def _run(self, ready: concurrent.futures.Future[Responder]) -> None:
        try:
            enter_namespace(self.ns.name)
            asyncio.set_event_loop(self.loop)
            ready.set_result(self.loop.run_until_complete(self._open()))
        except BaseException as err:
            ready.set_exception(err)
            return
        self.loop.run_forever()
        self.loop.close()

    async def _open(self) -> Responder:
        return Responder("eth0", announce_delays=(0.0, 0.2, 0.5))

    @property
    def mac(self) -> str:
        return str(self.responder.mac)

    def set_addresses(self, *addresses: IPv4Address | IPv6Address) -> None:
        async def apply() -> None:
            self.responder.set_addresses(addresses)

        asyncio.run_coroutine_threadsafe(apply(), self.loop).result(timeout=WAIT)

    def stop(self) -> None:
        if self.loop.is_running():
            self.loop.call_soon_threadsafe(self.responder.close)
            self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=WAIT)


class Client:
    """The client namespace: sockets opened inside it, its kernel's neighbor table."""

    def __init__(self, ns: Namespace) -> None:
        self.ns = ns
        self.udp4, self.udp6, self.raw = in_namespace(ns.name, lambda: (
            socket.socket(socket.AF_INET, socket.SOCK_DGRAM),
            socket.socket(socket.AF_INET6, socket.SOCK_DGRAM),
            socket.socket(socket.AF_PACKET, socket.SOCK_RAW),
        ))
        in_namespace(ns.name, lambda: self.raw.bind(("eth0", 0)))
        self.mac = MacAddress(bytes(self.raw.getsockname()[4]))

    def resolve(self, address: IPv4Address | IPv6Address) -> None:
        """Send one datagram to ``address``: the kernel asks for its MAC if it has none."""
        sock = self.udp4 if address.version == 4 else self.udp6
        sock.sendto(b"spinelb", (str(address), 9))

    def neighbor(self, address: IPv4Address | IPv6Address) -> dict[str, Any]:
        """The kernel's entry for ``address`` on eth0 (``{}`` when there is none)."""
        entries = json.loads(self.ns.ip("-j", "neigh", "show", str(address), "dev", "eth0") or "[]")
        return dict(entries[0]) if entries else {}

    def lladdr(self, address: IPv4Address | IPv6Address) -> str | None:
        return self.neighbor(address).get("lladdr")

    def close(self) -> None:
        for sock in (self.udp4, self.udp6, self.raw):
            sock.close()


@pytest.fixture
def segment(netns_ready: None) -> Iterator[tuple[Client, Node, Node]]:
    bridge, client_ns = Namespace(f"{PREFIX}-f"), Namespace(f"{PREFIX}-c")
    node_ns = [Namespace(f"{PREFIX}-n1"), Namespace(f"{PREFIX}-n2")]
    everything = [bridge, client_ns, *node_ns]
    nodes: list[Node] = []
    client: Client | None = None
    try:
        for ns in everything:
            ns.create()
        bridge.add_bridge("br0")
        attach(client_ns, "eth0", bridge, "br0", "p-c", [f"{CLIENT4}/24", f"{CLIENT6}/64"])
        for i, ns in enumerate(node_ns, start=1):
            attach(ns, "eth0", bridge, "br0", f"p-n{i}")
        client = Client(client_ns)
        nodes = [Node(ns) for ns in node_ns]
        yield client, nodes[0], nodes[1]
    finally:
        for node in nodes:
            node.stop()
        if client is not None:
            client.close()
        for ns in everything:
            ns.delete()


def wait_until_at(client: Client, vip: IPv4Address | IPv6Address, mac: str, when: str) -> None:
    """Wait until the client's kernel has ``vip`` at ``mac``; fail showing the entry it has."""
    try:
        wait_for(lambda: client.lladdr(vip) == mac, timeout=WAIT, what=f"{vip} at {mac} {when}")
    except TimeoutError as err:
        raise AssertionError(f"{err}; the client's entry: {client.neighbor(vip)}") from err


def garbage(rng: random.Random, client: MacAddress, owner: str) -> list[bytes]:
    """Frames that pass the responder's filters (or nearly) and are wrong in every other way."""
    frames: list[bytes] = []
    to = [b"\xff" * 6, MacAddress.parse(owner).octets, multicast_mac(solicited_node(VIP6)).octets]
    valid_ns = NeighborSolicitation(IPv6Address(CLIENT6), solicited_node(VIP6), VIP6, client).encode()
    for _ in range(100):
        head = rng.choice(to) + client.octets
        frames.append(head + b"\x08\x06" + rng.randbytes(rng.randrange(0, 60)))
        frames.append(head + b"\x08\x06\x00\x01\x08\x00\x06\x04\x00\x01" + rng.randbytes(rng.randrange(0, 30)))
        ns = bytearray(valid_ns)
        for _ in range(rng.randrange(1, 4)):
            ns[rng.randrange(len(ns))] = rng.randrange(256)
        ns[6], ns[40] = 58, 135  # still what the filter lets through
        frames.append(head + b"\x86\xdd" + bytes(ns[: rng.randrange(41, len(ns) + 1)]))
    return frames


def test_clients_resolve_to_the_owner_and_follow_a_move(segment: tuple[Client, Node, Node]) -> None:
    client, first, second = segment
    assert first.mac != second.mac

    # The first node owns both addresses: the client's kernel resolves them to its MAC.
    first.set_addresses(VIP4, VIP6)
    for vip in (VIP4, VIP6):
        client.resolve(vip)
        wait_until_at(client, vip, first.mac, "after asking")
    assert first.responder.counters.arp_answered >= 1
    assert first.responder.counters.ndp_answered >= 1
    assert second.responder.counters.requests_answered == 0  # it heard the questions, owns nothing

    # The address moves: the second node's announcements update the client without it asking.
    first.set_addresses()
    second.set_addresses(VIP4, VIP6)
    for vip in (VIP4, VIP6):
        wait_until_at(client, vip, second.mac, "without asking")
    assert second.responder.counters.requests_answered == 0
    wait_for(lambda: second.responder.counters.announcements_sent == 6, timeout=WAIT,
             what="three announcements per address")

    # The node's IPv6 traffic never reaches the responder: only solicitations pass its filter.
    # (Other solicitations do: the hosts' DAD for their link-local addresses, at random times.)
    received = second.responder.counters.received
    for _ in range(50):
        client.resolve(VIP6)
    marker = NeighborSolicitation(IPv6Address(CLIENT6), solicited_node(VIP6), VIP6, client.mac)
    client.raw.send(multicast_mac(solicited_node(VIP6)).octets + client.mac.octets + b"\x86\xdd"
                    + marker.encode())
    wait_for(lambda: second.responder.counters.ndp_answered == 1, timeout=WAIT, what="the marker")
    assert second.responder.counters.received - received < 50

    # Garbage on the segment: nobody crashes, and the owner still answers.
    for frame in garbage(random.Random(8), client.mac, second.mac):
        client.raw.send(frame)
    client.ns.ip("neigh", "flush", "dev", "eth0")
    for vip in (VIP4, VIP6):
        client.resolve(vip)
        wait_until_at(client, vip, second.mac, "after the garbage")
    assert first.errors == [] and second.errors == []
    assert first.thread.is_alive() and second.thread.is_alive()


def test_duplicate_address_detection_on_an_owned_address_fails(
    segment: tuple[Client, Node, Node],
) -> None:
    client, first, _second = segment
    first.set_addresses(VIP6)
    # Announcements for a tentative address fail DAD as well: let them pass, so the answer does it.
    wait_for(lambda: first.responder.counters.announcements_sent == 3, timeout=WAIT,
             what="the announcements")
    client.ns.ip("address", "add", f"{VIP6}/64", "dev", "eth0")  # with DAD, unlike the lab's

    def dad_failed() -> bool:
        info = json.loads(client.ns.ip("-j", "address", "show", "dev", "eth0"))
        return any(entry.get("local") == str(VIP6) and entry.get("dadfailed")
                   for entry in info[0]["addr_info"])

    wait_for(dad_failed, timeout=WAIT, what=f"the client's DAD for {VIP6} to fail")
    assert first.responder.counters.ndp_answered >= 1


def test_only_an_existing_ethernet_interface_is_accepted(segment: tuple[Client, Node, Node]) -> None:
    _client, first, _second = segment

    async def open_on(interface: str) -> Responder:
        return Responder(interface)

    with pytest.raises(ValueError, match="not an Ethernet interface"):
        in_namespace(first.ns.name, lambda: asyncio.run(open_on("lo")))
    with pytest.raises(OSError):
        in_namespace(first.ns.name, lambda: asyncio.run(open_on("spinelb-none")))
