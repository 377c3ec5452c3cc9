"""The speaker's config: loading, defaults, every validation problem, secrets, reload diffs."""

from __future__ import annotations

import copy
import json
from ipaddress import IPv4Address, IPv6Address, ip_network
from pathlib import Path
from typing import Any

import pytest
import yaml

from spinelb.bgp.wire import IPV4_UNICAST, IPV6_UNICAST, LargeCommunity
from spinelb.config import (
    ConfigError,
    PeerConfig,
    Problem,
    SpeakerConfig,
    config_diff,
    load_config,
    parse_config,
    parse_controller_config,
)
from spinelb.config.document import load_document

SECRET = "s3cret-Do-Not-Print"

EXAMPLE = """\
node_name: ncn-w001
router_id: 10.252.1.10
local_asn: 65531
api: {listen: "127.0.0.1:7473"}
peers:
  - name: sw-spine-001-nmn
    address: 10.252.0.2
    asn: 65533
    local_asn: 65531
    source_address: 10.252.1.10
    port: 179
    hold_time: 9
    keepalive: 3
    password: s3cret-Do-Not-Print
    passive: false
    multihop_ttl: 1
    families: [ipv4-unicast, ipv6-unicast]
  - name: sw-spine-002-nmn
    address: 10.252.0.3
    asn: 65533
announce:
  - prefix: 10.102.10.129/32
    peers: [sw-spine-001-nmn]
    next_hop: self
    communities: ["65533:100", no-export]
    large_communities: ["65533:1:1"]
    local_pref: 200
    med: 10
  - prefix: 10.102.10.130/32
  - prefix: 2001:db8::5/128
"""


def base() -> dict[str, Any]:
    """A small valid document to break one key at a time."""
    return {
        "node_name": "ncn-w001",
        "router_id": "10.252.1.10",
        "local_asn": 65531,
        "peers": [
            {"name": "spine-1", "address": "10.252.0.2", "asn": 65533},
            {
                "name": "spine-2",
                "address": "10.252.0.3",
                "asn": 65533,
                "families": ["ipv4-unicast", "ipv6-unicast"],
            },
        ],
        "announce": [{"prefix": "10.102.10.129/32"}],
    }


def problems(data: object, **kwargs: Any) -> list[Problem]:
    with pytest.raises(ConfigError) as caught:
        parse_config(data, **kwargs)
    return caught.value.problems


def only_problem(data: object, **kwargs: Any) -> Problem:
    found = problems(data, **kwargs)
    assert len(found) == 1, [str(p) for p in found]
    return found[0]


def with_peer(**settings: Any) -> dict[str, Any]:
    data = base()
    data["peers"][0].update(settings)
    return data


def with_announcement(**settings: Any) -> dict[str, Any]:
    data = base()
    data["announce"][0].update(settings)
    return data


# --- a valid file -----------------------------------------------------------


def test_example_file_loads_with_every_key(tmp_path: Path) -> None:
    path = tmp_path / "speaker.yaml"
    path.write_text(EXAMPLE)
    config = load_config(path)
    assert config.node_name == "ncn-w001"
    assert config.router_id == IPv4Address("10.252.1.10")
    assert config.api.address == IPv4Address("127.0.0.1") and config.api.port == 7473
    first, second = config.peers
    assert first.address == IPv4Address("10.252.0.2")
    assert first.source_address == IPv4Address("10.252.1.10")
    assert (first.asn, first.local_asn, first.hold_time, first.keepalive) == (65533, 65531, 9, 3)
    assert first.password == SECRET
    assert first.families == (IPV4_UNICAST, IPV6_UNICAST)
    assert second.families == (IPV4_UNICAST,)  # the family of its address
    assert (second.hold_time, second.keepalive, second.port) == (90, 30, 179)
    assert second.local_asn == 65531  # from the top level
    one, two, three = config.announcements
    assert one.prefix == ip_network("10.102.10.129/32")
    assert one.peers == ("sw-spine-001-nmn",)
    assert one.next_hop is None
    assert one.communities == (65533 << 16 | 100, 0xFFFFFF01)
    assert one.large_communities == (LargeCommunity(65533, 1, 1),)
    assert (one.local_pref, one.med) == (200, 10)
    assert two.peers == ("sw-spine-001-nmn", "sw-spine-002-nmn")  # every IPv4 peer
    assert three.peers == ("sw-spine-001-nmn",)  # only one carries IPv6
    assert three.family == IPV6_UNICAST


def test_json_file_is_read_as_yaml(tmp_path: Path) -> None:
    path = tmp_path / "speaker.json"
    path.write_text(json.dumps(base()))
    assert load_config(path).announcements[0].peers == ("spine-1", "spine-2")


def test_defaults() -> None:
    config = parse_config(base())
    assert config.listen is None
    assert config.log_level == "info"
    assert config.graceful_restart is None
    peer = config.peers[0]
    assert (peer.port, peer.hold_time, peer.keepalive, peer.passive, peer.multihop_ttl) == (
        179,
        90,
        30,
        False,
        1,
    )
    assert peer.password is None and peer.connect_retry == 5.0


def test_api_listen_forms() -> None:
    data = base()
    data["api"] = {"listen": "[::1]:8000"}
    api = parse_config(data).api
    assert (api.address, api.port, api.listen) == (IPv6Address("::1"), 8000, "[::1]:8000")
    data["api"] = {"listen": None}
    assert not parse_config(data).api.enabled


@pytest.mark.parametrize("listen", ["10.252.1.10:7473", "0.0.0.0:7473", "[::]:7473"])
def test_api_off_loopback_is_refused_unless_allowed(listen: str) -> None:
    data = base()
    data["api"] = {"listen": listen}
    problem = only_problem(data)
    assert problem.path == "api.listen" and listen in str(problem)
    assert "api.allow_remote: true" in str(problem)
    data["api"] = {"listen": listen, "allow_remote": True}
    api = parse_config(data).api
    assert api.allow_remote and api.listen == listen


def test_controller_api_off_loopback_is_refused_unless_allowed(tmp_path: Path) -> None:
    (tmp_path / "kubeconfig").write_text("{}")
    data = {"kubernetes": {"kubeconfig": str(tmp_path / "kubeconfig")},
            "controller": {"listen": "10.252.1.4:7474"},
            "pools": [{"name": "p", "addresses": ["10.92.100.0/24"]}]}
    with pytest.raises(ConfigError, match=r"controller\.listen.*controller\.allow_remote"):
        parse_controller_config(data)
    data["controller"] = {"listen": "10.252.1.4:7474", "allow_remote": True}
    assert parse_controller_config(data).api.allow_remote


def test_listener_and_graceful_restart() -> None:
    data = base()
    data["listen"] = {"address": "::", "port": 1179}
    data["graceful_restart"] = {"restart_time": 120}
    config = parse_config(data)
    assert config.listen is not None and config.listen.port == 1179
    assert config.graceful_restart is not None and config.graceful_restart.restart_time == 120


def test_hold_time_zero_means_no_keepalives() -> None:
    peer = parse_config(with_peer(hold_time=0)).peers[0]
    assert (peer.hold_time, peer.keepalive) == (0, 0)


def test_password_file_relative_to_config(tmp_path: Path) -> None:
    (tmp_path / "md5").write_text(SECRET + "\n")
    config = parse_config(with_peer(password_file="md5"), base_dir=tmp_path)
    assert config.peers[0].password == SECRET
    assert config.peers[0].password_file == tmp_path / "md5"


def test_same_prefix_to_different_peers_is_allowed() -> None:
    data = base()
    data["announce"] = [
        {"prefix": "10.0.0.1/32", "peers": ["spine-1"], "med": 1},
        {"prefix": "10.0.0.1/32", "peers": ["spine-2"], "med": 2},
    ]
    assert [a.med for a in parse_config(data).announcements] == [1, 2]


def test_equal_attributes_are_shared() -> None:
    data = base()
    data["announce"] = [{"prefix": f"10.0.0.{i}/32", "med": 5} for i in range(3)]
    first, second, third = parse_config(data).announcements
    assert first.attributes is second.attributes is third.attributes


def test_bare_address_is_a_host_route() -> None:
    data = with_announcement(prefix="10.0.0.1")
    assert parse_config(data).announcements[0].prefix == ip_network("10.0.0.1/32")


# --- every validation problem ------------------------------------------------


@pytest.mark.parametrize(
    ("data", "path", "value", "words"),
    [
        ({**base(), "colour": 1}, "colour", "colour", "unknown key"),
        (with_peer(hold_tme=9), "peers[0].hold_tme", "hold_tme", "did you mean 'hold_time'?"),
        (with_announcement(nexthop="self"), "announce[0].nexthop", "nexthop", "'next_hop'"),
        ({k: v for k, v in base().items() if k != "router_id"}, "router_id", None, "missing"),
        (with_peer(name=None) | {}, "peers[0].name", None, "expected a string"),
        ({**base(), "node_name": ""}, "node_name", "", "must not be empty"),
        ({**base(), "router_id": "2001:db8::1"}, "router_id", "2001:db8::1", "IPv4"),
        ({**base(), "router_id": "0.0.0.0"}, "router_id", "0.0.0.0", "non-zero"),
        (with_peer(address="10.252.0.300"), "peers[0].address", "10.252.0.300", "not an IPv4"),
        (with_peer(asn=0), "peers[0].asn", 0, "1..4294967295"),
        (with_peer(asn=4294967296), "peers[0].asn", 4294967296, "1..4294967295"),
        (with_peer(asn="65533"), "peers[0].asn", "65533", "expected an integer"),
        (with_peer(asn=True), "peers[0].asn", True, "expected an integer, got a boolean"),
        (with_peer(asn=23456), "peers[0].asn", 23456, "AS_TRANS"),
        (with_peer(hold_time=1), "peers[0].hold_time", 1, "0 or at least 3"),
        (with_peer(hold_time=2), "peers[0].hold_time", 2, "0 or at least 3"),
        (with_peer(hold_time=65536), "peers[0].hold_time", 65536, "0..65535"),
        (with_peer(hold_time=9, keepalive=9), "peers[0].keepalive", 9, "less than hold_time"),
        (with_peer(keepalive=0), "peers[0].keepalive", 0, "at least 1"),
        (with_peer(port=0), "peers[0].port", 0, "1..65535"),
        (with_peer(multihop_ttl=256), "peers[0].multihop_ttl", 256, "1..255"),
        (with_peer(passive="no"), "peers[0].passive", "no", "true or false"),
        (with_peer(connect_retry=0), "peers[0].connect_retry", 0, "more than 0"),
        (
            with_peer(families=["ipv4-unicst"]),
            "peers[0].families[0]",
            "ipv4-unicst",
            "'ipv4-unicast'",
        ),
        (with_peer(families=[]), "peers[0].families", "<list>", "at least one"),
        (
            with_peer(source_address="2001:db8::1"),
            "peers[0].source_address",
            "2001:db8::1",
            "must be IPv4",
        ),
        (
            with_announcement(prefix="10.102.10.0/16"),
            "announce[0].prefix",
            "10.102.10.0/16",
            "host bits set: the network is 10.102.0.0/16",
        ),
        (with_announcement(prefix="10.1/32"), "announce[0].prefix", "10.1/32", "not an IPv4"),
        (with_announcement(prefix=17), "announce[0].prefix", 17, "expected a string"),
        (
            with_announcement(next_hop="2001:db8::1"),
            "announce[0].next_hop",
            "2001:db8::1",
            "IPv6 next hop for an IPv4 prefix",
        ),
        (with_announcement(next_hop="elf"), "announce[0].next_hop", "elf", 'nor "self"'),
        (
            with_announcement(peers=["spine-3"]),
            "announce[0].peers[0]",
            "spine-3",
            "unknown peer; did you mean",
        ),
        (with_announcement(peers=[]), "announce[0].peers", "<list>", "at least one peer"),
        (
            {**base(), "announce": [{"prefix": "2001:db8::/64", "peers": ["spine-1"]}]},
            "announce[0].peers[0]",
            "spine-1",
            "does not carry ipv6-unicast",
        ),
        (
            {
                **base(),
                "peers": [{"name": "spine-1", "address": "10.252.0.2", "asn": 65533}],
                "announce": [{"prefix": "2001:db8::/64"}],
            },
            "announce[0].prefix",
            "2001:db8::/64",
            "no peer carries ipv6-unicast",
        ),
        (
            with_announcement(communities=["65536:1"]),
            "announce[0].communities[0]",
            "65536:1",
            "0..65535",
        ),
        (
            with_announcement(communities=["nope"]),
            "announce[0].communities[0]",
            "nope",
            "no-export",
        ),
        (
            with_announcement(communities=[3931990]),
            "announce[0].communities[0]",
            3931990,
            "quote it",
        ),
        (
            with_announcement(large_communities=["1:2"]),
            "announce[0].large_communities[0]",
            "1:2",
            "GLOBAL:LOCAL1:LOCAL2",
        ),
        (
            with_announcement(large_communities=["1:2:4294967296"]),
            "announce[0].large_communities[0]",
            "1:2:4294967296",
            "0..4294967295",
        ),
        (with_announcement(local_pref=-1), "announce[0].local_pref", -1, "0..4294967295"),
        (with_announcement(med=2**32), "announce[0].med", 2**32, "0..4294967295"),
        ({**base(), "log_level": "verbose"}, "log_level", "verbose", "debug, info"),
        ({**base(), "api": {"listen": "localhost:7473"}}, "api.listen", "localhost:7473", "IP"),
        ({**base(), "api": {"listen": "127.0.0.1:70000"}}, "api.listen", "127.0.0.1:70000", "port"),
        (
            {**base(), "graceful_restart": {"restart_time": 5000}},
            "graceful_restart.restart_time",
            5000,
            "0..4095",
        ),
        ({**base(), "peers": {"name": "x"}}, "peers", "<mapping>", "expected a list"),
    ],
)
def test_each_problem_names_its_path_and_value(
    data: dict[str, Any], path: str, value: object, words: str
) -> None:
    problem = only_problem(data)
    assert problem.path == path
    assert problem.value == value
    assert words in problem.message
    assert str(problem) == f"{path}: {problem.message} (got {value!r})"


def test_passive_peer_needs_a_listener() -> None:
    problem = only_problem(with_peer(passive=True))
    assert (problem.path, problem.value) == ("peers[0].passive", True)
    assert "listen" in problem.message
    assert parse_config(with_peer(passive=True) | {"listen": {}}).peers[0].passive


def test_local_asn_required_somewhere() -> None:
    data = base()
    del data["local_asn"]
    found = problems(data)
    assert [p.path for p in found] == ["peers[0].local_asn", "peers[1].local_asn"]
    for peer in data["peers"]:
        peer["local_asn"] = 65531
    assert parse_config(data).local_asn is None


def test_duplicate_peer_name() -> None:
    data = base()
    data["peers"][1]["name"] = "spine-1"
    problem = only_problem(data)
    assert (problem.path, problem.value) == ("peers[1].name", "spine-1")
    assert "duplicate peer name (also peers[0])" in problem.message


def test_duplicate_peer_address_and_port() -> None:
    data = base()
    data["peers"][1]["address"] = "10.252.0.2"
    problem = only_problem(data)
    assert (problem.path, problem.value) == ("peers[1].address", "10.252.0.2")
    assert "duplicate peer address" in problem.message
    data["peers"][1]["port"] = 1179  # another port: another peer
    assert len(parse_config(data).peers) == 2


def test_duplicate_prefix_to_the_same_peers() -> None:
    data = base()
    data["announce"] = [{"prefix": "10.0.0.1/32"}, {"prefix": "10.0.0.1"}]
    problem = only_problem(data)
    assert problem.path == "announce[1].prefix"
    assert (
        "duplicate prefix: announce[0] already announces it to spine-1, spine-2" in problem.message
    )


def test_overlapping_peers_of_a_duplicate_prefix() -> None:
    data = base()
    data["announce"] = [
        {"prefix": "10.0.0.1/32", "peers": ["spine-1"]},
        {"prefix": "10.0.0.1/32", "peers": ["spine-2", "spine-1"]},
    ]
    assert "already announces it to spine-1" in only_problem(data).message


def test_every_problem_is_reported_at_once() -> None:
    data = base()
    data["router_id"] = "bad"
    data["peers"][0]["hold_time"] = 1
    data["peers"][1]["asn"] = -5
    data["announce"].append({"prefix": "10.0.0.0/8", "med": "high"})
    paths = [p.path for p in problems(data)]
    assert paths == [
        "router_id",
        "peers[0].hold_time",
        "peers[1].asn",
        "announce[1].med",
    ]


def test_invalid_peer_causes_no_follow_on_problems() -> None:
    data = with_peer(hold_time=2)
    data["announce"][0]["peers"] = ["spine-1"]
    assert [p.path for p in problems(data)] == ["peers[0].hold_time"]


def test_top_level_must_be_a_mapping() -> None:
    problem = only_problem(["a"])
    assert (problem.path, problem.value) == ("<top>", "<list>")


def test_yaml_syntax_error_names_the_line_not_its_text(tmp_path: Path) -> None:
    path = tmp_path / "speaker.yaml"
    path.write_text(f"node_name: x\npeers:\n  - password: {SECRET}\n    x: [\n")
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    text = str(caught.value)
    assert "line" in text and "not valid YAML" in text
    assert SECRET not in text


def test_unreadable_config_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(tmp_path / "missing.yaml")
    assert "cannot read the config" in str(caught.value)


# --- passwords ---------------------------------------------------------------


def test_password_and_password_file_both_set() -> None:
    problem = only_problem(with_peer(password=SECRET, password_file="/etc/md5"))
    assert problem.path == "peers[0].password"
    assert "not both" in problem.message
    assert problem.value == "<redacted>"


def test_password_longer_than_80_octets() -> None:
    problem = only_problem(with_peer(password="é" * 41))  # 82 octets, 41 characters
    assert problem.path == "peers[0].password"
    assert "longer than 80 octets" in problem.message
    assert parse_config(with_peer(password="x" * 80)).peers[0].password == "x" * 80


def test_password_file_unreadable_names_the_path(tmp_path: Path) -> None:
    missing = tmp_path / "nope"
    problem = only_problem(with_peer(password_file=str(missing)))
    assert problem.path == "peers[0].password_file"
    assert str(missing) in problem.message
    assert "No such file" in problem.message


def test_password_file_content_never_shown(tmp_path: Path) -> None:
    secret_file = tmp_path / "md5"
    secret_file.write_text(SECRET * 10)  # too long
    problem = only_problem(with_peer(password_file=str(secret_file)))
    assert "longer than 80 octets" in problem.message
    assert SECRET not in str(problem)


@pytest.mark.parametrize(
    "settings",
    [
        {"password": SECRET, "password_file": "/x"},
        {"password": SECRET * 10},
        {"password": [SECRET]},
        {"pasword": SECRET},  # misspelt key: the value is a secret too
        {"password": SECRET, "hold_time": 1},
    ],
)
def test_password_never_in_errors(settings: dict[str, Any]) -> None:
    data = with_peer(**settings)
    with pytest.raises(ConfigError) as caught:
        parse_config(data)
    assert SECRET not in str(caught.value)
    assert SECRET not in repr(caught.value.problems)


def test_password_never_in_peer_repr() -> None:
    peer = parse_config(with_peer(password=SECRET)).peers[0]
    assert peer.password == SECRET
    assert SECRET not in repr(peer)
    assert SECRET not in str(peer)
    config = parse_config(with_peer(password=SECRET))
    assert SECRET not in repr(config)


# --- the document loader -----------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        EXAMPLE,
        "a: yes\nb: 0755\nc: 1:30\nd: ~\ne:\nf: 1.5\ng: 2001-01-01\nh: '10'\ni: 0x1f\n",
        "- a\n- [1, 2, {x: y}]\n- {}\n",
        "a: &x [1]\nb: *x\n",  # aliases: left to PyYAML
        "<<: {a: 1}\nb: 2\n",  # merge key
        "c: !!str 3\n",
        "x: 'it''s'\ny: \"q\\n\"\nz: |\n  l1\n  l2\n",
        "{a: 1, b: [x, y]}",
        '{"a": [1, 2.5, null, true]}',
        "",
    ],
)
def test_document_loader_equals_safe_load(text: str) -> None:
    assert load_document(text) == yaml.safe_load(text)


# --- reload diffs ------------------------------------------------------------


def config_of(data: dict[str, Any]) -> SpeakerConfig:
    return parse_config(copy.deepcopy(data))


def test_diff_of_equal_configs_is_empty() -> None:
    diff = config_diff(config_of(base()), config_of(base()))
    assert diff.empty
    assert diff.peers_unchanged == ("spine-1", "spine-2")


def test_diff_peers_added_removed_and_changed() -> None:
    old = base()
    new = base()
    new["peers"][0]["hold_time"] = 9
    new["peers"][1]["connect_retry"] = 10
    new["peers"].append({"name": "spine-3", "address": "10.252.0.4", "asn": 65533})
    diff = config_diff(config_of(old), config_of(new))
    assert [p.name for p in diff.peers_added] == ["spine-3"]
    assert diff.peers_removed == ()
    changes = {c.name: c for c in diff.peers_changed}
    assert changes["spine-1"].settings == ("hold_time", "keepalive")
    assert changes["spine-1"].resets_session
    assert changes["spine-2"].settings == ("connect_retry",)
    assert not changes["spine-2"].resets_session
    assert diff.sessions_to_reset == ("spine-1",)
    assert not diff.restart_required
    back = config_diff(config_of(new), config_of(old))
    assert [p.name for p in back.peers_removed] == ["spine-3"]


def test_diff_send_hold_time_change_resets_the_session() -> None:
    diff = config_diff(config_of(with_peer()), config_of(with_peer(send_hold_time=600)))
    (change,) = diff.peers_changed
    assert change.settings == ("send_hold_time",) and change.resets_session


def test_diff_password_change_is_named_not_shown() -> None:
    diff = config_diff(
        config_of(with_peer(password="a" + SECRET)), config_of(with_peer(password=SECRET))
    )
    (change,) = diff.peers_changed
    assert change.settings == ("password",) and change.resets_session
    assert SECRET not in repr(diff)


def test_diff_password_file_moved_with_same_key(tmp_path: Path) -> None:
    (tmp_path / "a").write_text(SECRET)
    (tmp_path / "b").write_text(SECRET)
    old = parse_config(with_peer(password_file=str(tmp_path / "a")))
    new = parse_config(with_peer(password_file=str(tmp_path / "b")))
    assert config_diff(old, new).empty


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("router_id", "10.252.1.11"),
        ("local_asn", 65000),
        ("api", {"listen": "127.0.0.1:9000"}),
        ("listen", {"address": "0.0.0.0"}),
        ("graceful_restart", {"restart_time": 60}),
    ],
)
def test_diff_speaker_settings_that_need_a_restart(key: str, value: object) -> None:
    new = base() | {key: value}
    diff = config_diff(config_of(base()), config_of(new))
    assert diff.restart_settings == (key,)
    assert diff.restart_required


def test_diff_live_settings() -> None:
    diff = config_diff(config_of(base()), config_of(base() | {"log_level": "debug"}))
    assert diff.live_settings == ("log_level",) and not diff.restart_required


def test_diff_announcements() -> None:
    old = base()
    old["announce"] = [{"prefix": "10.0.0.1/32"}, {"prefix": "10.0.0.2/32", "med": 1}]
    new = base()
    new["announce"] = [{"prefix": "10.0.0.2/32", "med": 2}, {"prefix": "10.0.0.3/32"}]
    diff = config_diff(config_of(old), config_of(new))
    assert [str(a.prefix) for a in diff.announcements_added] == ["10.0.0.3/32"]
    assert [str(a.prefix) for a in diff.announcements_removed] == ["10.0.0.1/32"]
    ((before, after),) = diff.announcements_changed
    assert (before.med, after.med) == (1, 2)


def test_diff_announcement_to_other_peers_is_remove_and_add() -> None:
    old = with_announcement(peers=["spine-1"])
    new = with_announcement(peers=["spine-2"])
    diff = config_diff(config_of(old), config_of(new))
    assert [a.peers for a in diff.announcements_removed] == [("spine-1",)]
    assert [a.peers for a in diff.announcements_added] == [("spine-2",)]


# --- scale -------------------------------------------------------------------


def test_many_announcements_load_correctly(tmp_path: Path) -> None:
    """Correctness at scale (the timing lives in bench/config_load.py, not in a test)."""
    data = base()
    data["announce"] = [
        {"prefix": f"10.{i >> 8 & 255}.{i & 255}.1/32"}
        if i % 2
        else {"prefix": f"2001:db8::{i:x}/128"}
        for i in range(20_000)
    ]
    path = tmp_path / "big.yaml"
    path.write_text(yaml.safe_dump(data))
    config = load_config(path)
    assert len(config.announcements) == 20_000
    assert config.announcements[1].prefix == ip_network("10.0.1.1/32")
    assert config.announcements[2].prefix == ip_network("2001:db8::2/128")
    assert config.announcements[2].peers == ("spine-2",)
    assert {a.prefix for a in config.announcements} == {
        ip_network(a["prefix"]) for a in data["announce"]
    }


def test_peer_config_is_frozen() -> None:
    peer = parse_config(base()).peers[0]
    assert isinstance(peer, PeerConfig)
    with pytest.raises(AttributeError):
        peer.asn = 1  # type: ignore[misc]


@pytest.mark.parametrize(
    "text", ["10.1.2.3/32", "10.1.2.3", "2001:db8::7/128", "::ffff:1.2.3.4/128"]
)
def test_fast_host_routes_equal_ipaddress(text: str) -> None:
    from spinelb.config.values import _HOST_ROUTE_SHORTCUT, parse_prefix

    assert _HOST_ROUTE_SHORTCUT  # else loading 100k announcements is several times slower
    fast, slow = parse_prefix(text), ip_network(text)
    assert (fast, hash(fast), str(fast), repr(fast)) == (slow, hash(slow), str(slow), repr(slow))
    assert fast.network_address.packed == slow.network_address.packed


@pytest.mark.parametrize(
    "text", ["010.1.2.3/32", "10.1.2/32", "1.2.3.4/33", "fe80::1%eth0/128", "x/32"]
)
def test_malformed_host_routes_are_refused(text: str) -> None:
    from spinelb.config.values import parse_prefix

    with pytest.raises(ValueError):
        parse_prefix(text)


def test_a_file_wrong_everywhere_spells_out_the_first_hundred_problems() -> None:
    data = {
        "node_name": "w", "router_id": "10.0.0.1", "local_asn": 65531,
        "peers": [{"name": "s", "address": "10.0.0.2", "asn": 65533}],
        "announce": [{"prefix": f"10.0.0.{i}/24"} for i in range(1, 251)],
    }
    with pytest.raises(ConfigError) as info:
        parse_config(data)
    assert len(info.value.problems) == 250
    text = str(info.value)
    assert "announce[99].prefix" in text and "announce[100].prefix" not in text
    assert text.endswith("... and 150 more")


def test_parse_config_leaves_the_callers_data_alone_unless_asked_to_consume_it() -> None:
    data = {
        "node_name": "w", "router_id": "10.0.0.1", "local_asn": 65531,
        "peers": [{"name": "s", "address": "10.0.0.2", "asn": 65533}],
        "announce": [{"prefix": "10.92.0.1/32"}, {"prefix": "10.92.0.2/32"}],
    }
    kept = parse_config(data)
    assert data["announce"] == [{"prefix": "10.92.0.1/32"}, {"prefix": "10.92.0.2/32"}]
    consumed = parse_config(data, consume=True)
    assert data["announce"] == [None, None]
    assert kept == consumed


# --- layer2 pools (issue 8) -------------------------------------------------------------


LAYER2_YAML = """\
pools:
  - {name: lab-l2, addresses: [10.102.10.240/29], mode: layer2, interfaces: [can]}
  - {name: lab-bgp, addresses: [10.102.10.128/26]}
layer2:
  source_address: 10.102.10.10
  bfd: {min_rx_ms: 100, min_tx_ms: 100, multiplier: 3}
  peers:
    - {node: ncn-w002, address: 10.102.10.11}
    - {node: ncn-w003, address: 10.102.10.12}
"""


def layer2_document(**layer2: Any) -> dict[str, Any]:
    data = base()
    data.update(yaml.safe_load(LAYER2_YAML))
    data["layer2"].update(layer2)
    return data


def test_layer2_pool_and_mesh_as_the_docs_write_them() -> None:
    from spinelb.config import BfdConfig, Layer2Config, Layer2Peer

    config = parse_config(layer2_document())
    l2, bgp = config.pools
    assert (l2.mode, l2.interfaces, l2.layer2, l2.peers) == ("layer2", ("can",), True, ())
    assert (bgp.mode, bgp.interfaces, bgp.layer2) == ("bgp", (), False)
    assert bgp.peers == ("spine-1", "spine-2")
    assert config.layer2 == Layer2Config(
        IPv4Address("10.102.10.10"),
        (Layer2Peer("ncn-w002", IPv4Address("10.102.10.11")),
         Layer2Peer("ncn-w003", IPv4Address("10.102.10.12"))),
        BfdConfig(100, 100, 3),
    )
    # bfd and peers may be left out: 100 ms x 3, a segment with one speaker
    data = layer2_document()
    del data["layer2"]["bfd"], data["layer2"]["peers"]
    alone = parse_config(data).layer2
    assert alone is not None and alone.peers == () and alone.bfd == BfdConfig(100, 100, 3)
    assert parse_config(base()).layer2 is None


@pytest.mark.parametrize(
    ("change", "path", "value", "message"),
    [
        ({"mode": "l2"}, "pools[0].mode", "l2", "must be one of bgp, layer2"),
        ({"interfaces": None}, "pools[0].interfaces", None, "missing: a layer2 pool names"),
        ({"interfaces": []}, "pools[0].interfaces", "<list>", "at least one interface"),
        ({"interfaces": ["eth0", "eth0"]}, "pools[0].interfaces[1]", "eth0", "listed twice"),
        ({"interfaces": ["bond0/1"]}, "pools[0].interfaces[0]", "bond0/1",
         "not an interface name"),
        ({"interfaces": ["a-very-long-name0"]}, "pools[0].interfaces[0]",
         "a-very-long-name0", "not an interface name"),
        ({"peers": ["spine-1"]}, "pools[0].peers", "<list>", "never announced over BGP"),
        ({"local_pref": 200}, "pools[0].local_pref", 200, "never announced over BGP"),
    ],
)
def test_layer2_pool_problems(change: dict[str, Any], path: str, value: object,
                              message: str) -> None:
    data = layer2_document()
    pool = data["pools"][0]
    pool.update(change)
    if pool.get("interfaces", "") is None:
        del pool["interfaces"]
    found = only_problem(data)
    assert (found.path, found.value) == (path, value)
    assert message in found.message


def test_interfaces_only_on_a_layer2_pool() -> None:
    data = layer2_document()
    data["pools"][1]["interfaces"] = ["can"]
    found = only_problem(data)
    assert found.path == "pools[1].interfaces"
    assert "only a layer2 pool" in found.message


def test_layer2_section_required_by_a_layer2_pool_and_refused_without_one() -> None:
    data = layer2_document()
    del data["layer2"]
    found = only_problem(data)
    assert (found.path, found.value) == ("layer2", None)
    assert "pool lab-l2 is layer2" in found.message
    data = layer2_document()
    data["pools"][0]["mode"] = "bgp"
    del data["pools"][0]["interfaces"]
    found = only_problem(data)
    assert found.path == "layer2"
    assert "no pool has mode: layer2" in found.message


@pytest.mark.parametrize(
    ("layer2", "path", "value", "message"),
    [
        ({"source_address": "fd00::1", "peers": [{"node": "ncn-w002", "address": "10.102.10.11"}]},
         "layer2.peers[0].address", "10.102.10.11",
         "must be IPv6 like layer2.source_address"),
        ({"source_address": "0.0.0.0"}, "layer2.source_address", "0.0.0.0", "not a usable"),
        ({"source_address": "10.102.10.300"}, "layer2.source_address", "10.102.10.300", ""),
        ({"peers": [{"node": "ncn-w001", "address": "10.102.10.11"}]},
         "layer2.peers[0].node", "ncn-w001", "is this node"),
        ({"peers": [{"node": "ncn-w002", "address": "10.102.10.10"}]},
         "layer2.peers[0].address", "10.102.10.10", "is layer2.source_address"),
        ({"peers": [{"node": "ncn-w002", "address": "10.102.10.11"},
                    {"node": "ncn-w002", "address": "10.102.10.12"}]},
         "layer2.peers[1].node", "ncn-w002", "duplicate node (also layer2.peers[0])"),
        ({"peers": [{"node": "ncn-w002", "address": "10.102.10.11"},
                    {"node": "ncn-w003", "address": "10.102.10.11"}]},
         "layer2.peers[1].address", "10.102.10.11", "duplicate address"),
        ({"peers": [{"node": "ncn-w002"}]}, "layer2.peers[0].address", None,
         "missing required key"),
        ({"peers": {"node": "ncn-w002"}}, "layer2.peers", "<mapping>", "expected a list"),
        ({"bfd": {"min_rx_ms": 5}}, "layer2.bfd.min_rx_ms", 5, "must be 10..60000"),
        ({"bfd": {"multiplier": 0}}, "layer2.bfd.multiplier", 0, "must be 1..255"),
        ({"bfd": False}, "layer2.bfd", False, "always run BFD"),
        ({"vlan": 10}, "layer2.vlan", "vlan", "unknown key"),
    ],
)
def test_layer2_section_problems(layer2: dict[str, Any], path: str, value: object,
                                 message: str) -> None:
    found = only_problem(layer2_document(**layer2))
    assert (found.path, found.value) == (path, value)
    assert message in found.message


def test_layer2_bfd_true_means_the_fast_defaults() -> None:
    from spinelb.config import BfdConfig

    config = parse_config(layer2_document(bfd=True))
    assert config.layer2 is not None and config.layer2.bfd == BfdConfig(100, 100, 3)
    config = parse_config(layer2_document(bfd={"multiplier": 5}))
    assert config.layer2 is not None and config.layer2.bfd == BfdConfig(100, 100, 5)


def test_controller_accepts_mode_and_needs_no_interfaces() -> None:
    """The controller assigns a layer2 pool's addresses as any other's."""
    data = yaml.safe_load(LAYER2_YAML)
    del data["pools"][0]["interfaces"]
    config = parse_controller_config(data)
    assert [(p.name, p.mode, p.interfaces) for p in config.pools] == [
        ("lab-l2", "layer2", ()), ("lab-bgp", "bgp", ())
    ]
    # a speaker's whole file (it has peers) is checked as the speaker's
    config = parse_controller_config(layer2_document())
    assert config.pools[0].interfaces == ("can",)
