"""The one exception type that leaves the PPSP codec (ARCHITECTURE habit 4).

A ``PpspError`` carries what the tracker needs to answer: the wire status
(SPEC §2 table), a short fixed human reason, and the TransactionID/PeerID
read from the offending document when they could be read. ``reason`` is
always one of the codec's own fixed strings, never text copied from the
input, so echoing it in a response reflects nothing an attacker chose.
"""

from __future__ import annotations

from .messages import Response, Status


class PpspError(Exception):
    """A PPSP message could not be accepted.

    ``text`` is the status text to send; ``None`` means the standard text of
    ``status`` (``Status.TEXT``); a bad version uses
    ``Status.VERSION_NOT_SUPPORTED_TEXT`` (SPEC §2).
    """

    status: int
    reason: str
    text: str | None
    transaction_id: str | None
    peer_id: str | None

    def __init__(
        self,
        status: int = Status.BAD_REQUEST,
        reason: str = "Invalid Syntax",
        *,
        text: str | None = None,
        transaction_id: str | None = None,
        peer_id: str | None = None,
    ) -> None:
        super().__init__(status, reason)
        self.status = status
        self.reason = reason
        self.text = text
        self.transaction_id = transaction_id
        self.peer_id = peer_id

    @property
    def answerable(self) -> bool:
        """True when the error response can be matched by the peer (SPEC §2:
        every response carries the request's TransactionID)."""
        return self.transaction_id is not None

    def with_ids(self, transaction_id: str | None, peer_id: str | None) -> PpspError:
        """A copy with the IDs filled in where this error has none."""
        return PpspError(
            self.status,
            self.reason,
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


def bad_request(reason: str) -> PpspError:
    """A 400 INVALID SYNTAX error with a fixed reason."""
    return PpspError(Status.BAD_REQUEST, reason)
