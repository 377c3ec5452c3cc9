"""The wire types: messages, path attributes and capabilities as frozen dataclasses.

These are the contract the rest of the speaker codes against; the codec in the
sibling modules turns them into bytes and back.  Names follow the RFCs.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network

# --- constants --------------------------------------------------------------

MARKER = b"\xff" * 16
HEADER_LEN = 19
MAX_MESSAGE_LEN = 4096  # RFC 4271; extended messages (RFC 8654) are not advertised
AS_TRANS = 23456

AFI_IPV4 = 1
AFI_IPV6 = 2
SAFI_UNICAST = 1

Family = tuple[int, int]  # (AFI, SAFI)
IPV4_UNICAST: Family = (AFI_IPV4, SAFI_UNICAST)
IPV6_UNICAST: Family = (AFI_IPV6, SAFI_UNICAST)

Prefix = IPv4Network | IPv6Network
Address = IPv4Address | IPv6Address


class MessageType(enum.IntEnum):
    OPEN = 1
    UPDATE = 2
    NOTIFICATION = 3
    KEEPALIVE = 4
    ROUTE_REFRESH = 5


class ErrorCode(enum.IntEnum):
    """NOTIFICATION error codes (RFC 4271 4.5, RFC 4486, RFC 7313)."""

    MESSAGE_HEADER = 1
    OPEN_MESSAGE = 2
    UPDATE_MESSAGE = 3
    HOLD_TIMER_EXPIRED = 4
    FSM = 5
    CEASE = 6
    ROUTE_REFRESH_MESSAGE = 7


class HeaderSubcode(enum.IntEnum):
    CONNECTION_NOT_SYNCHRONIZED = 1
    BAD_MESSAGE_LENGTH = 2
    BAD_MESSAGE_TYPE = 3


class OpenSubcode(enum.IntEnum):
    UNSPECIFIC = 0  # RFC 4271 6.2: a recognised optional parameter that is malformed
    UNSUPPORTED_VERSION_NUMBER = 1
    BAD_PEER_AS = 2
    BAD_BGP_IDENTIFIER = 3
    UNSUPPORTED_OPTIONAL_PARAMETER = 4
    UNACCEPTABLE_HOLD_TIME = 6
    UNSUPPORTED_CAPABILITY = 7
    ROLE_MISMATCH = 11


class UpdateSubcode(enum.IntEnum):
    MALFORMED_ATTRIBUTE_LIST = 1
    UNRECOGNIZED_WELL_KNOWN_ATTRIBUTE = 2
    MISSING_WELL_KNOWN_ATTRIBUTE = 3
    ATTRIBUTE_FLAGS_ERROR = 4
    ATTRIBUTE_LENGTH_ERROR = 5
    INVALID_ORIGIN_ATTRIBUTE = 6
    INVALID_NEXT_HOP_ATTRIBUTE = 8
    OPTIONAL_ATTRIBUTE_ERROR = 9
    INVALID_NETWORK_FIELD = 10
    MALFORMED_AS_PATH = 11


class RouteRefreshSubcode(enum.IntEnum):
    """RFC 7313 section 5 (error code 7)."""

    INVALID_MESSAGE_LENGTH = 1


class FsmSubcode(enum.IntEnum):
    """RFC 6608."""

    UNSPECIFIED = 0
    UNEXPECTED_IN_OPENSENT = 1
    UNEXPECTED_IN_OPENCONFIRM = 2
    UNEXPECTED_IN_ESTABLISHED = 3


class CeaseSubcode(enum.IntEnum):
    """RFC 4486."""

    MAXIMUM_PREFIXES_REACHED = 1
    ADMINISTRATIVE_SHUTDOWN = 2
    PEER_DECONFIGURED = 3
    ADMINISTRATIVE_RESET = 4
    CONNECTION_REJECTED = 5
    OTHER_CONFIGURATION_CHANGE = 6
    CONNECTION_COLLISION_RESOLUTION = 7
    OUT_OF_RESOURCES = 8
    HARD_RESET = 9
    BFD_DOWN = 10


class BgpError(Exception):
    """An error that resets the session: send NOTIFICATION(code, subcode, data) and close."""

    def __init__(self, code: int, subcode: int, data: bytes = b"", reason: str = "") -> None:
        self.code = code
        self.subcode = subcode
        self.data = data
        self.reason = reason
        super().__init__(reason or f"BGP error {code}/{subcode}")

    def notification(self) -> Notification:
        return Notification(self.code, self.subcode, self.data)


# --- capabilities (RFC 5492) -----------------------------------------------


class CapabilityCode(enum.IntEnum):
    MULTIPROTOCOL = 1
    ROUTE_REFRESH = 2
    EXTENDED_MESSAGE = 6
    GRACEFUL_RESTART = 64
    FOUR_OCTET_AS = 65
    ENHANCED_ROUTE_REFRESH = 70


@dataclass(frozen=True, slots=True)
class Multiprotocol:
    """RFC 4760 capability 1."""

    afi: int
    safi: int


@dataclass(frozen=True, slots=True)
class RouteRefreshCapability:
    """RFC 2918 capability 2."""


@dataclass(frozen=True, slots=True)
class GracefulRestartFamily:
    afi: int
    safi: int
    forwarding_preserved: bool = False


@dataclass(frozen=True, slots=True)
class GracefulRestart:
    """RFC 4724 capability 64.  ``restart_state`` is the R bit, ``notification`` the N bit (RFC 8538)."""

    restart_time: int = 0
    restart_state: bool = False
    notification: bool = False
    families: tuple[GracefulRestartFamily, ...] = ()


@dataclass(frozen=True, slots=True)
class FourOctetAs:
    """RFC 6793 capability 65."""

    asn: int


@dataclass(frozen=True, slots=True)
class UnknownCapability:
    """Any capability this speaker does not implement: kept, ignored (RFC 5492)."""

    code: int
    value: bytes


Capability = (
    Multiprotocol | RouteRefreshCapability | GracefulRestart | FourOctetAs | UnknownCapability
)


# --- path attributes (RFC 4271 4.3, 5) -------------------------------------


class AttrType(enum.IntEnum):
    ORIGIN = 1
    AS_PATH = 2
    NEXT_HOP = 3
    MULTI_EXIT_DISC = 4
    LOCAL_PREF = 5
    ATOMIC_AGGREGATE = 6
    AGGREGATOR = 7
    COMMUNITIES = 8
    ORIGINATOR_ID = 9
    CLUSTER_LIST = 10
    MP_REACH_NLRI = 14
    MP_UNREACH_NLRI = 15
    EXTENDED_COMMUNITIES = 16
    AS4_PATH = 17
    AS4_AGGREGATOR = 18
    LARGE_COMMUNITIES = 32


class AttrFlag(enum.IntFlag):
    OPTIONAL = 0x80
    TRANSITIVE = 0x40
    PARTIAL = 0x20
    EXTENDED_LENGTH = 0x10


class OriginValue(enum.IntEnum):
    IGP = 0
    EGP = 1
    INCOMPLETE = 2


AS_SET = 1
AS_SEQUENCE = 2
AS_CONFED_SEQUENCE = 3
AS_CONFED_SET = 4


@dataclass(frozen=True, slots=True)
class Origin:
    value: int = OriginValue.IGP


@dataclass(frozen=True, slots=True)
class AsPathSegment:
    type: int  # AS_SET / AS_SEQUENCE / AS_CONFED_*
    asns: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class AsPath:
    """AS_PATH; encoded with 4-octet ASNs when both speakers have capability 65."""

    segments: tuple[AsPathSegment, ...] = ()

    @classmethod
    def sequence(cls, *asns: int) -> AsPath:
        return cls((AsPathSegment(AS_SEQUENCE, tuple(asns)),) if asns else ())


@dataclass(frozen=True, slots=True)
class NextHop:
    address: IPv4Address


@dataclass(frozen=True, slots=True)
class MultiExitDisc:
    value: int


@dataclass(frozen=True, slots=True)
class LocalPref:
    value: int


@dataclass(frozen=True, slots=True)
class AtomicAggregate:
    pass


@dataclass(frozen=True, slots=True)
class Aggregator:
    asn: int
    address: IPv4Address


@dataclass(frozen=True, slots=True)
class Communities:
    """RFC 1997; each community is a 32-bit integer (high 16 bits ASN, low 16 bits value)."""

    values: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class LargeCommunity:
    global_admin: int
    local1: int
    local2: int


@dataclass(frozen=True, slots=True)
class LargeCommunities:
    """RFC 8092."""

    values: tuple[LargeCommunity, ...]


@dataclass(frozen=True, slots=True)
class OriginatorId:
    """RFC 4456 type 9 (route reflection)."""

    address: IPv4Address


@dataclass(frozen=True, slots=True)
class ClusterList:
    """RFC 4456 type 10 (route reflection)."""

    cluster_ids: tuple[IPv4Address, ...]


@dataclass(frozen=True, slots=True)
class ExtendedCommunities:
    """RFC 4360 type 16; each extended community is a 64-bit integer."""

    values: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class MpReachNlri:
    """RFC 4760 type 14.  ``next_hops`` holds one address, or a global and a link-local (IPv6)."""

    afi: int
    safi: int
    next_hops: tuple[Address, ...]
    nlri: tuple[Prefix, ...]


@dataclass(frozen=True, slots=True)
class MpUnreachNlri:
    """RFC 4760 type 15.  An empty ``withdrawn`` is End-of-RIB for that family (RFC 4724)."""

    afi: int
    safi: int
    withdrawn: tuple[Prefix, ...]


@dataclass(frozen=True, slots=True)
class UnknownAttribute:
    """An attribute this speaker does not interpret; kept with its flags for transitive passing.

    The decoder keeps only the Optional, Transitive and Partial bits of ``flags``;
    the encoder chooses Extended Length itself from the value's size.
    """

    flags: int
    type: int
    value: bytes


PathAttribute = (
    Origin
    | AsPath
    | NextHop
    | MultiExitDisc
    | LocalPref
    | AtomicAggregate
    | Aggregator
    | Communities
    | OriginatorId
    | ClusterList
    | ExtendedCommunities
    | LargeCommunities
    | MpReachNlri
    | MpUnreachNlri
    | UnknownAttribute
)


# --- messages ----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Open:
    """OPEN (RFC 4271 4.2).  ``my_as`` is the 2-octet field (AS_TRANS for large ASNs)."""

    my_as: int
    hold_time: int
    bgp_id: IPv4Address
    capabilities: tuple[Capability, ...] = ()
    version: int = 4

    @property
    def asn(self) -> int:
        """The speaker's real AS: the 4-octet capability's when present, else ``my_as``."""
        for cap in self.capabilities:
            if isinstance(cap, FourOctetAs):
                return cap.asn
        return self.my_as


@dataclass(frozen=True, slots=True)
class Update:
    """UPDATE (RFC 4271 4.3) as decoded or to encode.

    ``withdrawn`` and ``nlri`` are the IPv4 fields outside MP attributes.
    ``treat_as_withdraw`` is set by the decoder when RFC 7606 says every NLRI
    in this message must be handled as withdrawn: ``nlri`` and the prefixes of
    any ``MpReachNlri`` are then kept intact for the caller to withdraw;
    ``discarded`` names the type codes of the attributes the decoder dropped
    ("attribute discard", later duplicates, AS4_* from a 4-octet speaker);
    ``errors`` says why, for the log (also host bits masked off an NLRI).
    """

    withdrawn: tuple[IPv4Network, ...] = ()
    attributes: tuple[PathAttribute, ...] = ()
    nlri: tuple[IPv4Network, ...] = ()
    treat_as_withdraw: bool = False
    discarded: tuple[int, ...] = ()
    errors: tuple[str, ...] = field(default=(), compare=False)

    def attribute(self, cls: type[PathAttribute]) -> PathAttribute | None:
        for attr in self.attributes:
            if isinstance(attr, cls):
                return attr
        return None


@dataclass(frozen=True, slots=True)
class Notification:
    """NOTIFICATION (RFC 4271 4.5)."""

    code: int
    subcode: int
    data: bytes = b""


@dataclass(frozen=True, slots=True)
class Keepalive:
    pass


@dataclass(frozen=True, slots=True)
class RouteRefresh:
    """ROUTE-REFRESH (RFC 2918; subtype per RFC 7313, 0 = normal request)."""

    afi: int
    safi: int
    subtype: int = 0


Message = Open | Update | Notification | Keepalive | RouteRefresh
