"""BFD (RFC 5880/5881): single-hop, asynchronous mode, no authentication, no Echo.

Imports go one way: packet <- session <- transport <- speaker.  ``packet`` and
``session`` are sans-IO; ``transport`` is the one asyncio adapter.
``python -m spinelb.bfd`` runs one session and prints its changes as JSON lines.
"""

from spinelb.bfd.packet import BfdPacketError, ControlPacket, Diag, State, decode, diag_name
from spinelb.bfd.session import Action, BfdSettings, Send, Session, StateChanged
from spinelb.bfd.transport import BFD_PORT, BfdCounters, BfdTransport

__all__ = [
    "BFD_PORT",
    "Action",
    "BfdCounters",
    "BfdPacketError",
    "BfdSettings",
    "BfdTransport",
    "ControlPacket",
    "Diag",
    "Send",
    "Session",
    "State",
    "StateChanged",
    "decode",
    "diag_name",
]
