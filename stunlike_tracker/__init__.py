"""stunlike-tracker: a NAT-aware, STUN-like PPSP tracker over DTLS-secured UDP."""

__version__ = "0.1.0"
