"""PeerRecord.with_deadline is dataclasses.replace(deadline=...) for every field."""

from __future__ import annotations

import dataclasses

from stunlike_tracker.ppsp.messages import (
    AddressType,
    AddrType,
    NatAbility,
    PeerAddress,
    PeerMode,
    Representation,
    StreamStatistics,
)
from stunlike_tracker.store.records import Membership, PeerRecord


def test_with_deadline_keeps_every_other_field() -> None:
    address = PeerAddress(AddrType.IPV4, "192.0.2.1", 5000, AddressType.REFLEXIVE)
    record = PeerRecord(
        "peer", "node:1", address, 1.0, 2.0,
        host_addresses=(PeerAddress(AddrType.IPV4, "10.0.0.1", 4000, AddressType.HOST),),
        nat_ability=NatAbility.NO_NAT,
        token_hash=b"t", previous_token_hash=b"p", node_id="node",
        memberships=(Membership("s", PeerMode.SEED, (), 1.5),),
        stream_stats=(StreamStatistics("s", 1, 2, 3),),
        content_maps=(("s", Representation("r")),),
    )  # fmt: skip
    # A new field must be added to with_deadline's constructor call too.
    assert len(dataclasses.fields(PeerRecord)) == 13
    renewed = record.with_deadline(99.0)
    assert renewed == dataclasses.replace(record, deadline=99.0)
    for field in dataclasses.fields(PeerRecord):
        if field.name != "deadline":
            assert getattr(renewed, field.name) is getattr(record, field.name), field.name
