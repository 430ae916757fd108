"""JSON requests into the same tracker core and store as the DTLS side (PROTOCOL §14).

A ``JsonSession`` is one WebSocket (or one POST client's session token): a
core ``Session`` of its own, with transport ``tcp``. A JSON request is
translated at the edge: parsed (``ppsp.json_binding``), expanded into the
draft-07 requests it stands for (a CONNECT with swarm actions is CONNECT,
then JOIN/DISCONNECT), each encoded as the XML request the core serves for
DTLS peers and run on the same path (``Tracker.handle_datagram``, or the
shared-store driver of PROTOCOL §9). The core's answers come back as
``Transmit`` effects for the session: its XML response parts are parsed,
merged and re-encoded as one JSON answer; an ATTACH indication is pushed to
the WebSocket as JSON. So one peer table, one swarm, whatever the binding.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

from stunlike_tracker.core.effects import Session, Transmit
from stunlike_tracker.ppsp import PpspError, encode_request, parse_message_untrusted
from stunlike_tracker.ppsp.json_binding import (
    ActionResult,
    encode_indication_json,
    encode_response_json,
    error_response_json,
    expand_swarm_actions,
    parse_json_request_untrusted,
)
from stunlike_tracker.ppsp.messages import (
    SWARM_NIL,
    Indication,
    Method,
    Request,
    Response,
)
from stunlike_tracker.ppsp.multipart import merge_response_parts
from stunlike_tracker.ppsp.reasons import Reason
from stunlike_tracker.server.endpoint import TrackerEndpoint

log = logging.getLogger(__name__)

TCP = "tcp"


@dataclass(slots=True)
class _Pending:
    future: asyncio.Future[Response]
    parts: list[Response] = field(default_factory=list)


@dataclass(slots=True)
class JsonSession:
    """One JSON session: a WebSocket, or a POST client's token."""

    session: Session
    # Where indications go (a WebSocket); None for POST sessions.
    push: Callable[[bytes], None] | None
    last_activity: float
    token: str | None = None
    pending: dict[str, _Pending] = field(default_factory=dict)
    # Peer-IDs CONNECTed over this session (a later CONNECT with swarm
    # actions runs the actions only, PROTOCOL §14.2).
    connected: set[str] = field(default_factory=set)

    @property
    def session_id(self) -> str:
        return self.session.session_id


@dataclass(frozen=True, slots=True)
class JsonAnswer:
    status: int
    body: bytes
    # The CONNECT that opened this POST session (PROTOCOL §14.7).
    new_token: str | None = None


class JsonGateway:
    def __init__(
        self,
        endpoint: TrackerEndpoint,
        *,
        max_message_size: int,
        max_json_depth: int,
        answer_timeout: float,
    ) -> None:
        self.endpoint = endpoint
        self.max_message_size = max_message_size
        self.max_json_depth = max_json_depth
        self.answer_timeout = answer_timeout
        self.sessions: dict[str, JsonSession] = {}
        self.by_token: dict[str, JsonSession] = {}
        self.counters: Counter[str] = endpoint.counters
        endpoint.json_sessions = self.deliver

    # ------------------------------------------------------------------
    # sessions
    # ------------------------------------------------------------------
    def open_session(
        self,
        address: tuple[str, int],
        push: Callable[[bytes], None] | None,
        identity: str | None = None,
    ) -> JsonSession:
        """``identity``: the Peer-ID of the client's TLS certificate (mutual mode)."""
        node_id = self.endpoint.tracker.config.node_id
        session_id = f"{node_id}/json-{secrets.token_hex(8)}"
        session = Session(session_id, (address[0], address[1]), identity, node_id, TCP)
        js = JsonSession(session, push, time.monotonic())
        self.sessions[session_id] = js
        self.counters["json-sessions-opened"] += 1
        return js

    def close_session(self, js: JsonSession) -> None:
        """A closed WebSocket is a lost association (PROTOCOL §14.8): the
        peer's timers run on; pending answers are cancelled."""
        self.sessions.pop(js.session_id, None)
        if js.token is not None:
            self.by_token.pop(js.token, None)
        for pending in js.pending.values():
            if not pending.future.done():
                pending.future.cancel()
        js.pending.clear()
        if self.endpoint.shared is not None:
            self.endpoint.shared.forget_session(js.session_id)
        self.counters["json-sessions-closed"] += 1

    def post_session(
        self, token: str | None, address: tuple[str, int], identity: str | None = None
    ) -> JsonSession:
        """The POST session a token names (for the same certificate identity),
        or a fresh one (PROTOCOL §14.7)."""
        if token is not None:
            found = self.by_token.get(token)
            if found is not None and found.session.identity == identity:
                return found
        return self.open_session(address, None, identity)

    def expire_idle(self, idle_timeout: float) -> None:
        """Forget POST sessions without requests for ``idle_timeout`` seconds."""
        now = time.monotonic()
        for js in list(self.by_token.values()):
            if now - js.last_activity > idle_timeout and not js.pending:
                self.close_session(js)

    # ------------------------------------------------------------------
    # requests
    # ------------------------------------------------------------------
    async def handle(self, js: JsonSession, data: bytes) -> JsonAnswer:
        """One JSON request -> its JSON answer (PROTOCOL §14.2, §14.3)."""
        js.last_activity = time.monotonic()
        self.counters["json-requests"] += 1
        try:
            parsed = parse_json_request_untrusted(
                data, max_size=self.max_message_size, max_depth=self.max_json_depth
            )
        except PpspError as error:
            self.counters["json-invalid"] += 1
            return JsonAnswer(error.status, error_response_json(error))
        requests = expand_swarm_actions(parsed)
        first = requests[0]
        if any(r.transaction_id in js.pending for r in requests):
            return self._refuse(first, Reason.TRANSACTION_ID_REUSED)
        is_connect = first.method is Method.CONNECT
        if is_connect and parsed.swarm_actions and first.peer_id in js.connected:
            head = Response(200, first.transaction_id, Reason.OK)
        else:
            head = await self._run(js, first, data)
        new_token = None
        if head.status == 200:
            if is_connect:
                js.connected.add(first.peer_id)
                if js.push is None and js.token is None:
                    new_token = js.token = secrets.token_urlsafe(24)
                    self.by_token[new_token] = js
            elif first.method is Method.DISCONNECT and first.swarm_id == SWARM_NIL:
                js.connected.discard(first.peer_id)
        results = []
        if head.status == 200:
            pairs = zip(parsed.swarm_actions, requests[1:], strict=True)
            for index, (action, request) in enumerate(pairs, start=1):
                answer = await self._run(js, request, data + b"/%d" % index)
                results.append(
                    ActionResult(
                        action.swarm_id, action.action, answer.status, answer.reason, answer.peers
                    )
                )
        body = encode_response_json(head, results, session_token=new_token)
        return JsonAnswer(head.status, body, new_token)

    def _refuse(self, request: Request, reason: Reason) -> JsonAnswer:
        response = Response(reason.status, request.transaction_id, reason)
        return JsonAnswer(reason.status, encode_response_json(response))

    async def _run(self, js: JsonSession, request: Request, raw: bytes) -> Response:
        """Run one draft-07 request on the core; its merged answer."""
        loop = asyncio.get_running_loop()
        pending = _Pending(loop.create_future())
        js.pending[request.transaction_id] = pending
        try:
            self._submit(js, request, raw)
            return await asyncio.wait_for(asyncio.shield(pending.future), self.answer_timeout)
        except TimeoutError:
            self.counters["json-answer-timeout"] += 1
            return Response(500, request.transaction_id, Reason.INTERNAL_ERROR)
        finally:
            if js.pending.get(request.transaction_id) is pending:
                del js.pending[request.transaction_id]

    def _submit(self, js: JsonSession, request: Request, raw: bytes) -> None:
        """The request into the core: directly (``raw``, the JSON bytes, is what
        a retransmission is compared with), or as XML through the shared-store
        driver (PROTOCOL §9)."""
        endpoint = self.endpoint
        if endpoint.shared is not None:
            endpoint.shared.submit(encode_request(request), js.session)
            return
        tracker = endpoint.tracker
        try:
            effects = tracker.handle_request(request, raw, js.session, endpoint.wall())
        except Exception:  # a bug or a store failure: 500, never details (PROTOCOL §2)
            log.exception("JSON request failed (answered 500)")
            self.endpoint.drops["internal-error"] += 1
            effects = []
            self._answer(js, Response(500, request.transaction_id, Reason.INTERNAL_ERROR))
        endpoint._apply(effects)

    # ------------------------------------------------------------------
    # answers and indications from the core
    # ------------------------------------------------------------------
    def deliver(self, effect: Transmit) -> bool:
        """A Transmit for one of our sessions (False: not ours)."""
        js = self.sessions.get(effect.session_id)
        if js is None:
            return False
        if effect.answer is not None:
            self._answer(js, effect.answer)  # the whole answer, before its split into parts
            return True
        for datagram in effect.datagrams:
            try:
                message = parse_message_untrusted(datagram)
            except PpspError:
                self.counters["json-core-answer-unreadable"] += 1
                continue
            if isinstance(message, Indication):
                self._push_indication(js, message)
            elif isinstance(message, Response):
                self._answer(js, message)
        return True

    def _push_indication(self, js: JsonSession, indication: Indication) -> None:
        if js.push is None:
            # PROTOCOL §14.4: a POST client cannot receive indications.
            self.counters["json-indication-no-socket"] += 1
            return
        self.counters["json-indications-pushed"] += 1
        js.push(encode_indication_json(indication))

    def _answer(self, js: JsonSession, response: Response) -> None:
        pending = js.pending.get(response.transaction_id)
        if pending is None or pending.future.done():
            self.counters["json-answer-unmatched"] += 1
            return
        pending.parts.append(response)
        part = response.part
        if part is not None and len(pending.parts) < part.count:
            return  # PROTOCOL §14.3: one JSON answer, merged from every part
        try:
            merged = merge_response_parts(pending.parts) if part is not None else response
        except PpspError:
            merged = Response(500, response.transaction_id, Reason.INTERNAL_ERROR)
        pending.future.set_result(merged)
