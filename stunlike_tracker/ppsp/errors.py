"""The one exception type that leaves the PPSP codec (ARCHITECTURE habit 4).

A ``PpspError`` carries what the tracker needs to answer: a ``Reason``
(status code and fixed phrase, PROTOCOL §2 table), optionally the name of the
element at fault, and the TransactionID/PeerID read from the offending
document when they could be read. The phrase is always a ``Reason`` member
(plus an element name from the codec's own schema), never text copied from
the input, so echoing it in a response reflects nothing an attacker chose.
"""

from __future__ import annotations

from .messages import Response
from .reasons import Reason


class PpspError(Exception):
    """A PPSP message could not be accepted.

    ``kind`` is the Reason; ``reason`` the phrase sent (the kind, followed
    by ``subject`` when there is one: "Missing SwarmID"). ``text`` is the
    status text to send; ``None`` means the standard text of ``status``
    (``Status.TEXT``); a bad version uses ``Status.VERSION_NOT_SUPPORTED_TEXT``
    (PROTOCOL §2).
    """

    kind: Reason
    subject: str | None
    status: int
    reason: str
    text: str | None
    transaction_id: str | None
    peer_id: str | None

    def __init__(
        self,
        kind: Reason = Reason.INVALID_SYNTAX,
        subject: str | None = None,
        *,
        text: str | None = None,
        transaction_id: str | None = None,
        peer_id: str | None = None,
    ) -> None:
        reason = str(kind) if subject is None else f"{kind} {subject}"
        super().__init__(kind.status, reason)
        self.kind = kind
        self.subject = subject
        self.status = kind.status
        self.reason = reason
        self.text = text
        self.transaction_id = transaction_id
        self.peer_id = peer_id

    @property
    def answerable(self) -> bool:
        """True when the error response can be matched by the peer (PROTOCOL §2:
        every response carries the request's TransactionID)."""
        return self.transaction_id is not None

    def with_ids(self, transaction_id: str | None, peer_id: str | None) -> PpspError:
        """A copy with the IDs filled in where this error has none."""
        return PpspError(
            self.kind,
            self.subject,
            text=self.text,
            transaction_id=transaction_id if self.transaction_id is None else self.transaction_id,
            peer_id=peer_id if self.peer_id is None else self.peer_id,
        )

    def to_response(self) -> Response | None:
        """The error response to send, or None when it cannot be matched."""
        if self.transaction_id is None:
            return None
        return Response(
            status=self.status,
            transaction_id=self.transaction_id,
            reason=self.reason,
            text=self.text,
        )

    def __str__(self) -> str:
        return f"{self.status} {self.reason}"

    def __repr__(self) -> str:
        return (
            f"PpspError(status={self.status!r}, reason={self.reason!r}, text={self.text!r}, "
            f"transaction_id={self.transaction_id!r}, peer_id={self.peer_id!r})"
        )


def bad_request(kind: Reason, subject: str | None = None) -> PpspError:
    """A 400 INVALID SYNTAX error: ``kind``, naming ``subject`` if given."""
    assert kind.status == 400, kind
    return PpspError(kind, subject)
