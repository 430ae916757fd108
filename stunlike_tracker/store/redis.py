"""The shared store on Redis or Redis Cluster (PROTOCOL §9), on ``redis.asyncio``.

Layout (hash tags keep what one script touches in one slot):

* ``{p:PEER}r`` the registration (JSON), ``{p:PEER}t`` its tombstone,
  ``{p:PEER}c:TX`` cached answers, ``{p:PEER}i:IND`` ATTACHes toward the peer
  taken on another node (value: that node's id);
* ``{s:SWARM}m:SEED`` / ``m:LEECH`` member sets, ``{s:SWARM}i`` a hash of the
  members' listing records (what a FIND shows, and where an ATTACH goes),
  ``{s:SWARM}o:PEER`` the peer's unused offers, ``{s:SWARM}g:OWNER:OFFER``
  offers handed out (grants);
* ``{d:N}z`` sorted sets of peer deadlines in 16 buckets.

A request costs two round trips (``load``, ``commit``): each is one command
per slot involved, sent concurrently. Consume-once things (offers, grants,
indications) are taken atomically in ``load`` and given back in ``commit``
if the core did not use them. The requester's record is written under a
compare-and-set on the text ``load`` read; on a conflict (a sweep or another
node changed it in between) ``commit`` puts the swarms back in line with
the record and reports it, and the server runs the request again.

Expiry does not depend on the node that renewed a peer: any node's sweep
claims due peers from the buckets (with a lease), removes them from their
swarms, then deletes the record under a compare-and-set and writes the
tombstone. A renewal does not touch the buckets (the sweep finds the later
deadline and reschedules); only an earlier deadline is written (ZADD LT).
Cached answers, tombstones, offers and grants carry Redis expiry times.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import re
import zlib
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any
from urllib.parse import urlsplit

from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster
from redis.backoff import NoBackoff
from redis.exceptions import NoScriptError
from redis.retry import Retry

from stunlike_tracker.ppsp.messages import IceOffer, Method, PeerMode
from stunlike_tracker.store import redis_lua
from stunlike_tracker.store.overlay import (
    Loaded,
    LoadPlan,
    Overlay,
    TakenGrant,
    TakenOffer,
    Writes,
    listing_record,
)
from stunlike_tracker.store.records import CachedResponse, OfferGrant, PeerRecord
from stunlike_tracker.store.serial import dumps, loads

BUCKETS = 16
_SAFE = re.compile(r"[A-Za-z0-9._-]+")


class StoreUnavailable(Exception):
    """The store did not answer (down, restarting, unreachable)."""


def _id(value: str) -> str:
    """An id as it appears inside a key: braces or separators never do."""
    return value if _SAFE.fullmatch(value) else "~" + value.encode().hex()


def peer_key(peer_id: str, suffix: str) -> str:
    return f"{{p:{_id(peer_id)}}}{suffix}"


def swarm_key(swarm_id: str, suffix: str) -> str:
    return f"{{s:{_id(swarm_id)}}}{suffix}"


def bucket_of(peer_id: str) -> str:
    return f"{{d:{zlib.crc32(peer_id.encode()) % BUCKETS}}}z"


def _ms(seconds: float) -> int:
    return max(1, int(seconds * 1000))


def _offer_element(offer: IceOffer, expires_at: float) -> str:
    return json.dumps([expires_at, offer.id, dumps(offer)], separators=(",", ":"))


@lru_cache(maxsize=16384)
def _record(text: str) -> PeerRecord:
    """Records are immutable: a listing read again (every FIND samples the
    same members) is decoded once."""
    return loads(PeerRecord, text)


def _taken_offer(element: str) -> TakenOffer:
    expires_at, _offer_id, text = json.loads(element)
    return TakenOffer(loads(IceOffer, text), float(expires_at))


@dataclass
class _Slot:
    """Keys and operations of one APPLY call."""

    keys: list[str] = field(default_factory=list)
    ops: list[list[Any]] = field(default_factory=list)

    def key(self, name: str) -> int:
        try:
            return self.keys.index(name) + 1
        except ValueError:
            self.keys.append(name)
            return len(self.keys)


@dataclass(frozen=True, slots=True)
class RedisSettings:
    """How a node talks to Redis."""

    # Per command; a request is answered 503 after this, never left hanging.
    timeout: float = field(default=2.0, metadata={"doc": "Redis command timeout, s"})
    max_connections: int = field(
        default=64, metadata={"doc": "Redis connections per node (commands in flight)"}
    )


def connect(url: str, settings: RedisSettings | None = None) -> Redis | RedisCluster:
    """A client for ``redis://HOST:PORT/DB``, ``rediss://...`` or
    ``redis+cluster://HOST:PORT`` (a seed node of the cluster)."""
    settings = settings or RedisSettings()
    common: dict[str, Any] = {
        "socket_timeout": settings.timeout,
        "socket_connect_timeout": settings.timeout,
        "decode_responses": True,
        "max_connections": settings.max_connections,
        # RESP2: no client-side maintenance-notification handshake per
        # connection (RESP3 only), nothing here needs RESP3.
        "protocol": 2,
    }
    parts = urlsplit(url)
    if parts.scheme in ("redis+cluster", "rediss+cluster"):
        host, port = parts.hostname or "127.0.0.1", parts.port or 6379
        return RedisCluster(
            host=host,
            port=port,
            ssl=parts.scheme == "rediss+cluster",
            password=parts.password,
            cluster_error_retry_attempts=1,
            **common,
        )
    if parts.scheme not in ("redis", "rediss"):
        raise ValueError(f"not a Redis URL: {url}")
    return Redis.from_url(url, retry=Retry(NoBackoff(), 1), **common)


class RedisStore:
    """The shared store (see the module docstring)."""

    def __init__(
        self,
        client: Redis | RedisCluster,
        *,
        offer_ttl: float = 120.0,
        tombstone_ttl: float = 90.0,
        max_in_flight: int = RedisSettings().max_connections,
    ) -> None:
        self.client = client
        self._slots = asyncio.Semaphore(max_in_flight)
        self.is_cluster = isinstance(client, RedisCluster)
        self.offer_ttl = offer_ttl
        self.tombstone_ttl = tombstone_ttl
        self._loading = asyncio.Lock()
        self.scripts_loaded = False
        self._apply = _Script(self, redis_lua.APPLY)
        self._sample = _Script(self, redis_lua.SAMPLE)
        self._attach = _Script(self, redis_lua.ATTACH)
        self._claim = _Script(self, redis_lua.CLAIM)
        self._scripts = (self._apply, self._sample, self._attach, self._claim)
        self.conflicts = 0

    async def close(self) -> None:
        await self.client.aclose()

    async def _gather(self, calls: Sequence[Awaitable[Any]]) -> list[Any]:
        """One round trip: the commands of every slot, concurrently."""
        try:
            return list(await asyncio.gather(*(self._limited(c) for c in calls)))
        except (OSError, TimeoutError) as error:
            await self._drop_connections()
            raise StoreUnavailable(str(error)) from error
        except Exception as error:
            # redis' ConnectionError/TimeoutError/ClusterDownError and friends,
            # and what its cluster client raises when a connection breaks
            # under it: only Redis calls are awaited here.
            await self._drop_connections()
            raise StoreUnavailable(f"{type(error).__name__}: {error}") from error

    async def load_scripts(self) -> None:
        """SCRIPT LOAD on every master (once, however many calls missed them:
        a burst of concurrent loads exhausts the connection pools)."""
        async with self._loading:
            if self.scripts_loaded:
                return
            for script in self._scripts:
                await self.client.script_load(script.text)
            self.scripts_loaded = True

    async def _limited(self, call: Awaitable[Any]) -> Any:
        # redis-py raises at once when its pool is exhausted: wait instead.
        async with self._slots:
            return await call

    async def _drop_connections(self) -> None:
        """After a failure, pooled connections may all be dead (Redis
        restarted): drop them so that the next request dials afresh."""
        if isinstance(self.client, Redis):
            with contextlib.suppress(Exception):
                await self.client.connection_pool.disconnect()

    async def ping(self) -> bool:
        await self._gather([self.client.ping()])
        return True

    # ------------------------------------------------------------------
    # step 1
    # ------------------------------------------------------------------
    async def load(self, plan: LoadPlan, now: float) -> Overlay:
        peer = plan.peer_id
        names = [peer_key(peer, "r"), peer_key(peer, "c:" + _id(plan.transaction_id))]
        if plan.method is Method.CONNECT:
            names.append(peer_key(peer, "t"))
        if plan.indication_id is not None:
            names.append(peer_key(peer, "i:" + _id(plan.indication_id)))
        calls: list[Awaitable[Any]] = [self.client.mget(names)]
        swarm = plan.swarm_id
        if swarm is not None and plan.sample > 0:
            calls.append(
                self._sample(
                    keys=[
                        swarm_key(swarm, "m:SEED"),
                        swarm_key(swarm, "m:LEECH"),
                        swarm_key(swarm, "i"),
                    ],
                    args=[
                        peer,
                        plan.sample,
                        plan.sample,
                        int(plan.take_offers),
                        now,
                        swarm_key(swarm, "o:"),
                    ],
                )
            )
        if swarm is not None and plan.target_id is not None:
            keys = [swarm_key(swarm, "i")]
            if plan.offer_id is not None and plan.take_offers:
                keys.append(swarm_key(swarm, f"g:{_id(plan.target_id)}:{_id(plan.offer_id)}"))
            calls.append(self._attach(keys=keys, args=[plan.target_id, peer]))
        results = await self._gather(calls)
        values: list[str | None] = results[0]
        loaded = Loaded()
        if values[0] is not None:
            loaded.record_text = values[0]
            loaded.record = _record(values[0])
        if values[1] is not None:
            expires_at, text = json.loads(values[1])
            loaded.cached = (loads(CachedResponse, text), float(expires_at))
        extra = 2
        if plan.method is Method.CONNECT:
            tombstone = values[extra]
            if tombstone is not None:
                loaded.tombstone = loads(PeerRecord, tombstone)
            extra += 1
        if plan.indication_id is not None:
            loaded.indication_origin = values[extra]
        index = 1
        if swarm is not None and plan.sample > 0:
            seeds, leeches, listings, offers = results[index]
            index += 1
            loaded.samples = {PeerMode.SEED: list(seeds), PeerMode.LEECH: list(leeches)}
            for member, listing, offer in zip([*seeds, *leeches], listings, offers, strict=True):
                if listing:
                    loaded.listed[member] = _record(listing)
                if offer:
                    loaded.offers[member] = _taken_offer(offer)
        if swarm is not None and plan.target_id is not None:
            listing, grant = results[index]
            if listing:
                loaded.listed[plan.target_id] = _record(listing)
            if grant and plan.offer_id is not None:
                requester, expires_at = json.loads(grant)
                loaded.grant = TakenGrant(
                    OfferGrant(plan.target_id, plan.offer_id, requester), float(expires_at)
                )
        return Overlay(plan, loaded, now)

    # ------------------------------------------------------------------
    # step 3
    # ------------------------------------------------------------------
    async def commit(self, overlay: Overlay) -> bool:
        """Apply the overlay's writes. False: the requester's record changed
        since ``load`` (nothing of the request's own slot was written, the
        swarms were put back in line): run the request again."""
        writes = overlay.finish()
        plan, loaded, now = overlay.plan, overlay.loaded, overlay.now
        peers: dict[str, _Slot] = {}
        swarms: dict[str, _Slot] = {}
        buckets: dict[str, _Slot] = {}

        def peer_slot(peer_id: str) -> _Slot:
            return peers.setdefault(peer_id, _Slot())

        def swarm_slot(swarm_id: str) -> _Slot:
            return swarms.setdefault(swarm_id, _Slot())

        me = plan.peer_id
        if writes.record_written:
            slot = peer_slot(me)
            new_text = dumps(writes.record) if writes.record is not None else ""
            slot.ops.insert(
                0, ["cas", slot.key(peer_key(me, "r")), loaded.record_text or "", new_text]
            )
            self._deadline(buckets, me, loaded.record, writes.record)
            self._swarm_changes(swarm_slot, me, loaded.record, writes.record, writes.clear_offers)
        if writes.delete_tombstone:
            slot = peer_slot(me)
            slot.ops.append(["del", slot.key(peer_key(me, "t"))])
        if writes.indication_taken is not None:
            slot = peer_slot(me)
            slot.ops.append(["del", slot.key(peer_key(me, "i:" + _id(writes.indication_taken)))])
        for peer_id, tx, entry, expires_at in writes.cache:
            slot = peer_slot(peer_id)
            text = json.dumps([expires_at, dumps(entry)], separators=(",", ":"))
            key = slot.key(peer_key(peer_id, "c:" + _id(tx)))
            slot.ops.append(["set", key, text, _ms(expires_at - now)])
        for target, indication, origin, expires_at in writes.indications:
            slot = peer_slot(target)
            key = slot.key(peer_key(target, "i:" + _id(indication)))
            slot.ops.append(["set", key, origin, _ms(expires_at - now)])
        self._offer_writes(swarm_slot, plan, writes, now)
        for grant, expires_at in writes.grants:
            self._grant_write(swarm_slot(plan.swarm_id or ""), plan, grant, expires_at, now)
        if writes.unused_grant is not None and plan.swarm_id is not None:
            taken = writes.unused_grant
            self._grant_write(swarm_slot(plan.swarm_id), plan, taken.grant, taken.expires_at, now)
        return await self._run(peers, swarms, buckets, me if writes.record_written else None)

    def _grant_write(
        self, slot: _Slot, plan: LoadPlan, grant: OfferGrant, expires_at: float, now: float
    ) -> None:
        if plan.swarm_id is None or expires_at <= now:
            return
        key = slot.key(swarm_key(plan.swarm_id, f"g:{_id(grant.owner)}:{_id(grant.offer_id)}"))
        value = json.dumps([grant.requester, expires_at], separators=(",", ":"))
        slot.ops.append(["set", key, value, _ms(expires_at - now)])

    @staticmethod
    def _offer_writes(
        swarm_slot: Callable[[str], _Slot], plan: LoadPlan, writes: Writes, now: float
    ) -> None:
        if plan.swarm_id is not None:
            for member, taken in writes.unused_offers.items():
                if taken.expires_at > now:
                    slot = swarm_slot(plan.swarm_id)
                    key = slot.key(swarm_key(plan.swarm_id, "o:" + _id(member)))
                    element = _offer_element(taken.offer, taken.expires_at)
                    slot.ops.append(["oback", key, element, _ms(taken.expires_at - now)])
        record = writes.record if writes.record_written else None
        if not writes.offers or record is None or not record.memberships:
            return
        swarm_ids = record.swarm_ids
        for offer, expires_at, cap in writes.offers:
            if plan.method is Method.JOIN and plan.swarm_id in swarm_ids:
                home = plan.swarm_id
            else:
                # Offers published without a swarm are spread over the peer's.
                home = swarm_ids[zlib.crc32(offer.id.encode()) % len(swarm_ids)]
            assert home is not None
            slot = swarm_slot(home)
            key = slot.key(swarm_key(home, "o:" + _id(plan.peer_id)))
            element = _offer_element(offer, expires_at)
            slot.ops.append(["opush", key, element, offer.id, max(cap, 1), _ms(expires_at - now)])

    def _deadline(
        self,
        buckets: dict[str, _Slot],
        peer_id: str,
        old: PeerRecord | None,
        new: PeerRecord | None,
    ) -> None:
        if new is None:
            return  # a leftover bucket entry is dropped by the sweep
        if old is None or new.deadline < old.deadline:
            name = bucket_of(peer_id)
            slot = buckets.setdefault(name, _Slot())
            slot.ops.append(["zadd_lt", slot.key(name), repr(new.deadline), peer_id])

    @staticmethod
    def _swarm_changes(
        swarm_slot: Callable[[str], _Slot],
        peer_id: str,
        old: PeerRecord | None,
        new: PeerRecord | None,
        clear_offers: bool,
    ) -> None:
        """Member sets and listings follow the peer's record (PROTOCOL §3, §9)."""
        old_ids = set(old.swarm_ids) if old is not None else set()
        new_ids = new.swarm_ids if new is not None else ()
        for swarm_id in new_ids:
            assert new is not None
            listing = listing_record(new, swarm_id)
            before = listing_record(old, swarm_id) if old is not None else None
            slot = swarm_slot(swarm_id)
            if listing != before and listing is not None:
                slot.ops.append(_join_op(slot, swarm_id, peer_id, listing))
            if clear_offers:
                slot.ops.append(["del", slot.key(swarm_key(swarm_id, "o:" + _id(peer_id)))])
        for swarm_id in old_ids - set(new_ids):
            slot = swarm_slot(swarm_id)
            slot.ops.append(_leave_op(slot, swarm_id, peer_id, ""))

    async def _run(
        self,
        peers: dict[str, _Slot],
        swarms: dict[str, _Slot],
        buckets: dict[str, _Slot],
        cas_peer: str | None,
    ) -> bool:
        calls: list[Awaitable[Any]] = []
        order: list[str] = []
        for peer_id, slot in peers.items():
            if slot.ops:
                calls.append(self._apply(keys=slot.keys, args=[json.dumps(slot.ops)]))
                order.append(peer_id)
        # The requester's slot first: on a single Redis (one connection per
        # call) this does not order them; the conflict path repairs swarms.
        for slots in (swarms, buckets):
            for slot in slots.values():
                if slot.ops:
                    calls.append(self._apply(keys=slot.keys, args=[json.dumps(slot.ops)]))
                    order.append("")
        if not calls:
            return True
        results = await self._gather(calls)
        if cas_peer is None:
            return True
        ok = bool(results[order.index(cas_peer)]) if cas_peer in order else True
        if not ok:
            self.conflicts += 1
            await self.repair(cas_peer, list(swarms))
        return ok

    async def repair(self, peer_id: str, swarm_ids: Sequence[str]) -> None:
        """Make the given swarms agree with the peer's current record."""
        if not swarm_ids:
            return
        [text] = await self._gather([self.client.get(peer_key(peer_id, "r"))])
        current = loads(PeerRecord, text) if text is not None else None
        calls: list[Awaitable[Any]] = []
        for swarm_id in swarm_ids:
            slot = _Slot()
            listing = listing_record(current, swarm_id) if current is not None else None
            if listing is None:
                slot.ops.append(_leave_op(slot, swarm_id, peer_id, ""))
            else:
                slot.ops.append(_join_op(slot, swarm_id, peer_id, listing))
            calls.append(self._apply(keys=slot.keys, args=[json.dumps(slot.ops)]))
        await self._gather(calls)

    # ------------------------------------------------------------------
    # expiry (PROTOCOL §3 timers, PROTOCOL §9 any node)
    # ------------------------------------------------------------------
    async def sweep(self, now: float, limit: int = 200, lease: float = 10.0) -> list[PeerRecord]:
        """Expire due peers: returns the records this node expired (each
        peer is expired by exactly one node)."""
        claims = await self._gather(
            [
                self._claim(keys=[f"{{d:{n}}}z"], args=[repr(now), limit, repr(now + lease)])
                for n in range(BUCKETS)
            ]
        )
        candidates = [peer for ids in claims for peer in ids]
        if not candidates:
            return []
        texts = await self._gather([self.client.get(peer_key(p, "r")) for p in candidates])
        due: list[tuple[PeerRecord, str]] = []
        fixes: list[Awaitable[Any]] = []
        for peer_id, text in zip(candidates, texts, strict=True):
            bucket = bucket_of(peer_id)
            if text is None:
                fixes.append(self._apply(keys=[bucket], args=[json.dumps([["zrem", 1, peer_id]])]))
                continue
            record = loads(PeerRecord, text)
            if record.deadline > now:
                op = ["zadd", 1, repr(record.deadline), peer_id]
                fixes.append(self._apply(keys=[bucket], args=[json.dumps([op])]))
            else:
                due.append((record, text))
        # Swarms first, then the record: a node dying in between leaves the
        # record due, and the next sweep (of any node) finishes the job.
        for record, _text in due:
            for swarm_id in record.swarm_ids:
                slot = _Slot()
                slot.ops.append(_leave_op(slot, swarm_id, record.peer_id, record.session_id))
                fixes.append(self._apply(keys=slot.keys, args=[json.dumps(slot.ops)]))
        await self._gather(fixes)
        ends: list[Awaitable[Any]] = []
        for record, text in due:
            slot = _Slot()
            slot.ops.append(["cas", slot.key(peer_key(record.peer_id, "r")), text, ""])
            slot.ops.append(
                ["set", slot.key(peer_key(record.peer_id, "t")), text, _ms(self.tombstone_ttl)]
            )
            ends.append(self._apply(keys=slot.keys, args=[json.dumps(slot.ops)]))
        won = await self._gather(ends)
        expired: list[PeerRecord] = []
        tail: list[Awaitable[Any]] = []
        for (record, _text), ok in zip(due, won, strict=True):
            if ok:
                expired.append(record)
                op = ["zrem", 1, record.peer_id]
                tail.append(self._apply(keys=[bucket_of(record.peer_id)], args=[json.dumps([op])]))
        await self._gather(tail)
        for (record, _text), ok in zip(due, won, strict=True):
            if not ok:
                # Renewed or re-CONNECTed meanwhile: its swarms come back.
                self.conflicts += 1
                await self.repair(record.peer_id, record.swarm_ids)
        return expired

    # ------------------------------------------------------------------
    # inspection (tests, status)
    # ------------------------------------------------------------------
    async def member_ids(self, swarm_id: str, mode: PeerMode | None = None) -> set[str]:
        modes = list(PeerMode) if mode is None else [mode]
        sets = await self._gather(
            [self.client.smembers(swarm_key(swarm_id, f"m:{m.value}")) for m in modes]
        )
        return {p for s in sets for p in s}

    async def get_peer(self, peer_id: str) -> PeerRecord | None:
        [text] = await self._gather([self.client.get(peer_key(peer_id, "r"))])
        return loads(PeerRecord, text) if text is not None else None


class _Script:
    """EVALSHA of one Lua script; loads the scripts when Redis lacks them
    (first use, or Redis restarted without them)."""

    def __init__(self, store: RedisStore, text: str) -> None:
        self.store = store
        self.text = text
        self.sha = hashlib.sha1(text.encode(), usedforsecurity=False).hexdigest()

    async def __call__(self, keys: Sequence[str], args: Sequence[Any]) -> Any:
        client = self.store.client
        if not self.store.scripts_loaded:
            await self.store.load_scripts()
        try:
            return await client.evalsha(self.sha, len(keys), *keys, *args)
        except NoScriptError:
            self.store.scripts_loaded = False  # Redis restarted empty
            await self.store.load_scripts()
            return await client.evalsha(self.sha, len(keys), *keys, *args)


def _join_op(slot: _Slot, swarm_id: str, peer_id: str, listing: PeerRecord) -> list[Any]:
    """List ``peer_id`` in the member set of its mode (out of the other one)."""
    mode = listing.memberships[0].mode
    other = PeerMode.LEECH if mode is PeerMode.SEED else PeerMode.SEED
    return [
        "join",
        slot.key(swarm_key(swarm_id, "i")),
        slot.key(swarm_key(swarm_id, f"m:{mode.value}")),
        slot.key(swarm_key(swarm_id, f"m:{other.value}")),
        peer_id,
        dumps(listing),
    ]


def _leave_op(slot: _Slot, swarm_id: str, peer_id: str, session_id: str) -> list[Any]:
    return [
        "leave",
        slot.key(swarm_key(swarm_id, "i")),
        slot.key(swarm_key(swarm_id, "m:SEED")),
        slot.key(swarm_key(swarm_id, "m:LEECH")),
        slot.key(swarm_key(swarm_id, "o:" + _id(peer_id))),
        peer_id,
        session_id,
    ]
