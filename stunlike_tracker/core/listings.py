"""How peers are listed in JOIN/FIND answers, encoded once and reused (PROTOCOL §2, §6).

A peer listed without an ICE offer is always the same ``<PeerInfo>``: its
Peer-ID, its mode, its REFLEXIVE address and the HOST addresses of its
CONNECT. Encoding that element is a quarter of a FIND's cost, and a busy
peer is listed by many FINDs between two changes of those fields, so its
bytes are kept here and checked against the record on every use: a peer
that re-CONNECTs from another address or changes mode is encoded afresh,
never listed stale.

The cache holds at most ``max_entries`` peers (about 520 bytes each: the
encoded element, the PeerInfo and a dict slot); when full it starts over,
so its memory never grows with the number of registered peers. Listings
that carry an offer are not cached (an offer goes to one requester only).
"""

from __future__ import annotations

from stunlike_tracker.ppsp.encode import peer_info_xml
from stunlike_tracker.ppsp.messages import AddressType, PeerAddress, PeerInfo, PeerMode
from stunlike_tracker.store.records import PeerRecord

_Entry = tuple[PeerMode, PeerAddress, tuple[PeerAddress, ...], PeerInfo, bytes]


class ListingCache:
    __slots__ = ("_entries", "max_entries")

    def __init__(self, max_entries: int) -> None:
        self.max_entries = max_entries
        self._entries: dict[str, _Entry] = {}

    def __len__(self) -> int:
        return len(self._entries)

    def listing(self, record: PeerRecord, mode: PeerMode) -> tuple[PeerInfo, bytes]:
        """The peer's PeerInfo without an offer, and its encoded bytes."""
        entry = self._entries.get(record.peer_id)
        if (
            entry is not None
            and entry[0] is mode
            and (entry[1] is record.reflexive or entry[1] == record.reflexive)
            and (entry[2] is record.host_addresses or entry[2] == record.host_addresses)
        ):
            return entry[3], entry[4]
        reflexive = record.reflexive
        # PROTOCOL §14.3: a JSON peer's TCP source (type PROXY) is no UDP candidate.
        lead = (reflexive,) if reflexive.type is AddressType.REFLEXIVE else ()
        info = PeerInfo(record.peer_id, mode, (*lead, *record.host_addresses))
        data = peer_info_xml(info).encode("utf-8")
        if self.max_entries > 0:
            if entry is None and len(self._entries) >= self.max_entries:
                self._entries.clear()
            self._entries[record.peer_id] = (
                mode,
                record.reflexive,
                record.host_addresses,
                info,
                data,
            )
        return info, data

    def forget(self, peer_id: str) -> None:
        self._entries.pop(peer_id, None)
