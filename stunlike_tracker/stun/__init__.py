"""STUN for the tracker port: our own codec and a stateless Binding responder.

* :mod:`.codec`: RFC 8489 messages (and RFC 3489 recognition): parse with
  ``parse_*_untrusted`` (raises only :class:`StunError`), build with
  :func:`encode_message` and the attribute encoders, check
  MESSAGE-INTEGRITY / MESSAGE-INTEGRITY-SHA256 / FINGERPRINT.
* :mod:`.responder`: :class:`BindingResponder`, the PROTOCOL §5 fast path.

No sockets and no clock in this package. The public names are those of the
two modules' ``__all__``.
"""

from . import codec, responder
from .codec import *  # noqa: F403 - the package re-exports codec's public API
from .responder import *  # noqa: F403 - and the responder's

__all__ = [*codec.__all__, *responder.__all__]
