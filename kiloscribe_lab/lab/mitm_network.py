"""A mitmproxy addon: the lab's proxied networks, loaded with ``mitmdump -s THIS_FILE``.

This file runs inside ``mitmdump`` (mitmproxy's own virtualenv, installed by ``make setup``),
not in kiloscribe-lab's interpreter: it imports mitmproxy and nothing of ours, and nothing of
ours imports it. One mitmdump serves every proxied network, one listener each
(``--mode regular@127.0.0.1:PORT``); ``--set lab_networks=corporate-proxy=PORT,mobile=PORT``
says which listening port is which network, and a connection gets the policy of the port
it came in on:

``corporate-proxy``
    A TLS-inspecting corporate proxy. mitmproxy intercepts every CONNECT (its own CA, which
    the network's clients trust like a corporate root) and verifies the upstream against
    the lab CA. Ordinary HTTPS passes; a request that asks for a WebSocket upgrade is
    answered ``403 WebSocket blocked by corporate policy`` and never reaches the origin.

``mobile``
    A slow link: every CONNECT tunnel is relayed byte for byte (no TLS interception) with
    each chunk held for half a round trip, in each direction, as netem would hold packets.
    Chunks keep their order and are *pipelined*: a chunk is due ``one_way`` after it
    arrived, not after the previous chunk left, so a handshake of N round trips takes
    N × RTT, not more. The CONNECT exchange itself costs one round trip (the TCP connect
    a real client would pay over that link). Jitter draws each one-way delay from
    ``RTT/2 ± jitter/2``; a later chunk never overtakes an earlier one.

Both refuse any destination outside the loopback with a 403, before dialling it.
"""

from __future__ import annotations

import asyncio
import collections
import ipaddress
import logging
import random
import time
from collections.abc import Generator
from typing import Any

from mitmproxy import ctx, http
from mitmproxy.connection import Connection, ConnectionState
from mitmproxy.proxy import commands, events, layer
from mitmproxy.proxy.layers.http import HttpStream

logger = logging.getLogger(__name__)

CORPORATE = "corporate-proxy"
MOBILE = "mobile"
BLOCKED_BODY = b"WebSocket blocked by corporate policy\n"
PROXY_NAME = "kiloscribe-lab"
DUE_SLACK_S = 0.0005  # a timer may fire this early (clock resolution); the chunk is due then


def is_loopback(host: str) -> bool:
    if host.lower().rstrip(".") in {"localhost", "localhost.localdomain"}:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def refusal(status: int, text: str, network: str) -> http.Response:
    return http.Response.make(
        status,
        (text + "\n").encode(),
        # A proxy's own answer says whose it is, as corporate block pages do.
        {
            "content-type": "text/plain; charset=utf-8",
            "server": network,
            "via": f"1.1 {network} ({PROXY_NAME})",
        },
    )


def wants_websocket(request: http.Request) -> bool:
    upgrade = request.headers.get("upgrade", "")
    # HTTP/2's extended CONNECT (RFC 8441) names the protocol in :protocol instead.
    protocol = request.headers.get(":protocol", "")
    return "websocket" in upgrade.lower() or protocol.lower() == "websocket"


class Link:
    """The delays of one link: a round trip of ``rtt_s`` ± ``jitter_s``."""

    def __init__(self, rtt_s: float, jitter_s: float, seed: int | None = None) -> None:
        self.rtt_s = rtt_s
        self.jitter_s = jitter_s
        self.rng = random.Random(seed)

    def one_way(self) -> float:
        return max(0.0, (self.rtt_s + self.rng.uniform(-self.jitter_s, self.jitter_s)) / 2)

    def round_trip(self) -> float:
        return self.one_way() + self.one_way()


class DelayedTunnel(layer.Layer):
    """A CONNECT tunnel's bytes, each chunk delivered ``link.one_way()`` after it arrived.

    Sans-I/O like every mitmproxy layer: it never sleeps, it asks the proxy server for a
    wakeup at each chunk's due time and sends whatever is due when woken. A peer's close
    is queued behind that peer's data, so it cannot overtake bytes still in flight. (Inside
    a CONNECT tunnel mitmproxy turns a half-close into a full close, for its own TCP layer
    as for this one: a client that half-closes does not hear the answer. No probe does.)
    """

    def __init__(self, context: Any, link: Link) -> None:
        super().__init__(context)
        self.link = link
        # per direction (True: towards the client): (due, data or None for end-of-stream)
        self.queues: dict[bool, collections.deque[tuple[float, bytes | None]]] = {
            True: collections.deque(),
            False: collections.deque(),
        }
        self.last_due = {True: 0.0, False: 0.0}
        self.done = False

    def _handle_event(self, event: events.Event) -> Generator[commands.Command, Any, None]:
        if self.done:
            return
        if isinstance(event, events.Start):
            if self.context.server.timestamp_start is None:
                err = yield commands.OpenConnection(self.context.server)
                if err:
                    self.done = True
                    yield commands.CloseConnection(self.context.client)
            return
        if isinstance(event, events.DataReceived | events.ConnectionClosed):
            to_client = event.connection == self.context.server
            now = time.monotonic()
            due = max(self.last_due[to_client], now + self.link.one_way())
            self.last_due[to_client] = due
            data = event.data if isinstance(event, events.DataReceived) else None
            self.queues[to_client].append((due, data))
            yield commands.RequestWakeup(max(0.0, due - now))
            return
        if isinstance(event, events.Wakeup):
            yield from self.flush()

    def flush(self) -> Generator[commands.Command, Any, None]:
        now = time.monotonic() + DUE_SLACK_S
        client, server = self.context.client, self.context.server
        for to_client, queue in self.queues.items():
            target: Connection = client if to_client else server
            while queue and queue[0][0] <= now:
                _, data = queue.popleft()
                if not target.state & ConnectionState.CAN_WRITE:
                    continue  # that side is gone (a reset): nothing more reaches it
                if data is not None:
                    yield commands.SendData(target, data)
                else:  # the other side closed: pass its FIN on, behind its last bytes
                    yield commands.CloseTcpConnection(target, half_close=True)
        # Done once both sides closed and nothing is in flight, as mitmproxy's TCP layer is.
        in_flight = any(self.queues.values())
        if not in_flight and not (
            client.state & ConnectionState.CAN_READ or server.state & ConnectionState.CAN_READ
        ):
            self.done = True
            for conn in (server, client):
                if conn.state is not ConnectionState.CLOSED:
                    yield commands.CloseConnection(conn)


def parse_networks(spec: str) -> dict[int, str]:
    """``"corporate-proxy=8081,mobile=8082"`` -> {8081: "corporate-proxy", 8082: "mobile"}."""
    by_port: dict[int, str] = {}
    for item in spec.replace(" ", "").split(","):
        if not item:
            continue
        name, _, port = item.partition("=")
        if name not in {CORPORATE, MOBILE} or not port.isdigit():
            raise ValueError(f"lab_networks: {item!r} is not {CORPORATE}=PORT or {MOBILE}=PORT")
        by_port[int(port)] = name
    return by_port


class LabNetworks:
    def __init__(self) -> None:
        self.link = Link(0.15, 0.01)
        self.by_port: dict[int, str] = {}
        self.corporate_ports: set[int] = set()

    def load(self, loader: Any) -> None:
        loader.add_option("lab_networks", str, "", f"listening port of each network: {CORPORATE}=PORT,...")
        loader.add_option("corporate_ports", str, "", f"{CORPORATE}: ports a CONNECT may reach (empty: any)")
        loader.add_option("mobile_rtt_ms", int, 150, f"{MOBILE}: the round trip the link adds, in ms")
        loader.add_option("mobile_jitter_ms", int, 10, f"{MOBILE}: the round trip varies by ± this, in ms")
        loader.add_option("mobile_seed", int, -1, f"{MOBILE}: seed of the jitter (-1: unseeded)")

    def configure(self, updated: set[str]) -> None:
        self.by_port = parse_networks(ctx.options.lab_networks)
        self.corporate_ports = {int(p) for p in ctx.options.corporate_ports.replace(",", " ").split()}
        seed = ctx.options.mobile_seed
        self.link = Link(
            ctx.options.mobile_rtt_ms / 1000,
            ctx.options.mobile_jitter_ms / 1000,
            None if seed < 0 else seed,
        )

    def network_of(self, client: Any) -> str:
        """The network a client connection belongs to: the port it came in on."""
        sockname = getattr(client, "sockname", None)
        port = sockname[1] if isinstance(sockname, tuple) and len(sockname) >= 2 else None
        return self.by_port.get(port, CORPORATE) if isinstance(port, int) else CORPORATE

    def _refuse_destination(self, flow: http.HTTPFlow, network: str) -> bool:
        host, port = flow.request.host, flow.request.port
        if not is_loopback(host):
            flow.response = refusal(
                403, f"{host} is outside the lab: the lab's proxies reach loopback only", network
            )
        elif network == CORPORATE and self.corporate_ports and port not in self.corporate_ports:
            text = f"CONNECT to port {port} is not allowed by {network} policy"
            flow.response = refusal(403, text, network)
        return flow.response is not None

    async def http_connect(self, flow: http.HTTPFlow) -> None:
        network = self.network_of(flow.client_conn)
        if self._refuse_destination(flow, network):
            return
        if network == MOBILE:
            await asyncio.sleep(self.link.round_trip())  # the TCP connect over the slow link

    async def requestheaders(self, flow: http.HTTPFlow) -> None:
        if flow.response is not None:
            return
        network = self.network_of(flow.client_conn)
        if network == CORPORATE and wants_websocket(flow.request):  # HTTP/1.1 Upgrade or h2 :protocol
            flow.response = refusal(403, BLOCKED_BODY.decode().strip(), network)
            logger.info("%s: blocked a WebSocket upgrade to %s", network, flow.request.pretty_url)
            return
        if flow.request.method == "CONNECT":
            return  # http_connect decides
        if self._refuse_destination(flow, network):
            return
        if network == MOBILE:  # plain HTTP through the proxy (no tunnel): delay it too
            await asyncio.sleep(self.link.one_way())

    async def responseheaders(self, flow: http.HTTPFlow) -> None:
        if self.network_of(flow.client_conn) == MOBILE and flow.request.method != "CONNECT":
            await asyncio.sleep(self.link.one_way())

    def next_layer(self, nextlayer: layer.NextLayer) -> None:
        # The layer right under a CONNECT: relay it raw through the slow link (mobile only;
        # the corporate proxy lets mitmproxy pick TLS interception as usual).
        context = nextlayer.context
        if (
            self.network_of(context.client) == MOBILE
            and context.layers
            and isinstance(context.layers[-1], HttpStream)  # the CONNECT's own stream
            and context.server.address is not None
        ):
            nextlayer.layer = DelayedTunnel(context, self.link)


addons = [LabNetworks()]
