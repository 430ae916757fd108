"""This folder's tests open no socket: tests.no_sockets fails any that does."""

from tests.no_sockets import _no_sockets

__all__ = ["_no_sockets"]
