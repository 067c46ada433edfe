"""Parsers of the BIRD control protocol, fed with replies captured from real daemons.

The fixtures in tests/unit/fixtures/bird/ are verbatim socket replies of BIRD 2.0.12 (Debian
bird2) and BIRD 1.6.8 (Debian bird, the version Calico forked), captured in network namespaces:
a BIRD 2 route reflector with two clients (one of them BIRD 1.6) and one unreachable peer.
"""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from ansible_collections.kubescale.calico.plugins.module_utils import bird

FIX = Path(__file__).parent / "fixtures" / "bird"


def lines(name: str) -> list[tuple[int, str]]:
    return bird.split_lines((FIX / f"{name}.txt").read_text())


def test_split_lines_keeps_codes_and_continuations():
    out = lines("bird2_rr_status")
    assert out[0] == (1000, "BIRD 2.0.12")
    assert out[2] == (1011, "Hostname is vm")  # continuation inherits the code
    assert out[-1] == (13, "Daemon is up and running")


def test_split_lines_rejects_garbage():
    with pytest.raises(bird.BirdError, match="unexpected line"):
        bird.split_lines("hello world\n")


@pytest.mark.parametrize("name,version,rid", [
    ("bird2_rr_status", "2.0.12", "198.18.0.1"),
    ("bird16_node_status", "1.6.8", "198.18.0.3"),
])
def test_parse_status(name, version, rid):
    status = bird.parse_status(lines(name))
    assert status["version"] == version
    assert status["router_id"] == rid
    assert status["server_time"].startswith("2026-11-28 12:55:51")
    assert status["message"] == "Daemon is up and running"


def test_parse_protocols_bird2_reflector():
    protos = {p["name"]: p for p in bird.parse_protocols(lines("bird2_rr_protocols_all"))}
    assert set(protos) == {"device1", "n1", "n2", "ghost"}
    n1 = protos["n1"]
    assert (n1["proto"], n1["state"], n1["since"], n1["info"]) == ("BGP", "up", "12:55:44.307", "Established")
    assert n1["neighbor_address"] == "198.18.0.2"
    assert n1["session"] == "internal route-reflector AS4"
    assert (n1["routes_imported"], n1["routes_exported"], n1["routes_preferred"]) == (1, 1, 1)
    assert n1["channels"]["ipv4"]["state"] == "UP"
    ghost = protos["ghost"]
    assert ghost["bgp_state"] == "Connect"
    assert ghost["last_error"] == "Socket: No route to host"
    assert ghost["routes_imported"] == 0


def test_parse_protocols_bird16_node():
    protos = {p["name"]: p for p in bird.parse_protocols(lines("bird16_node_protocols_all"))}
    rr1 = protos["rr1"]
    assert rr1["bgp_state"] == "Established"
    assert rr1["since"] == "12:55:43"
    assert rr1["neighbor_address"] == "198.18.0.1"
    assert rr1["session"] == "internal AS4"
    assert (rr1["routes_imported"], rr1["routes_exported"]) == (1, 1)
    assert protos["blocks"]["routes_imported"] == 1


def test_parse_protocols_short_table_without_details():
    protos = bird.parse_protocols(lines("bird16_node_protocols"))
    assert [p["name"] for p in protos] == ["device1", "blocks", "rr1"]
    assert protos[2]["info"] == "Established"


def test_row_with_iso_long_timeformat():
    row = bird._split_row("n1         BGP        ---        up     2026-11-27 23:59:01  Established")
    assert row["since"] == "2026-11-27 23:59:01"
    assert row["info"] == "Established"


@pytest.mark.parametrize("name,routes,networks", [
    ("bird2_node_route_count", 2, 2),
    ("bird16_node_route_count", 2, 2),
])
def test_parse_route_count(name, routes, networks):
    count = bird.parse_route_count(lines(name))
    assert (count["routes"], count["networks"]) == (routes, networks)


def test_session_view_uptime_and_rr_client():
    status = bird.parse_status(lines("bird2_rr_status"))
    protos = bird.parse_protocols(lines("bird2_rr_protocols_all"))
    views = {p["name"]: bird.session_view(p, status["server_time"]) for p in protos if p["proto"] == "BGP"}
    assert views["n1"]["uptime_seconds"] == pytest.approx(51.908 - 44.307)
    assert views["n1"]["rr_client"] is True
    assert views["n1"]["peer_as"] == 64512
    assert views["ghost"]["established"] is False
    assert views["ghost"]["uptime_seconds"] is None


def test_time_of_day_after_server_time_means_yesterday():
    ref = bird._parse_time("2026-11-28 00:00:10", None)
    assert bird._parse_time("23:59:50", ref).day == 27


def test_missing_socket_names_path(tmp_path):
    path = str(tmp_path / "bird.ctl")
    with pytest.raises(bird.BirdError, match=f"{path} does not exist"):
        bird.BirdClient(path)


def test_regular_file_is_not_a_socket(tmp_path):
    path = tmp_path / "bird.ctl"
    path.write_text("")
    with pytest.raises(bird.BirdError, match="is not a Unix socket"):
        bird.BirdClient(str(path))


def test_dead_socket_gives_connect_error(tmp_path):
    path = str(tmp_path / "bird.ctl")
    srv = socket.socket(socket.AF_UNIX)
    srv.bind(path)
    srv.close()  # socket file left behind, nobody listening (a crashed BIRD)
    with pytest.raises(bird.BirdError, match=f"cannot connect to BIRD control socket {path}"):
        bird.BirdClient(path)


def test_find_socket_prefers_first_existing(tmp_path):
    first, second = tmp_path / "a.ctl", tmp_path / "b.ctl"
    second.write_text("")
    assert bird.find_socket((str(first), str(second))) == str(second)
    assert bird.find_socket((str(first),)) == str(first)


def test_parse_prefixes_of_show_route_primary():
    # BIRD 2.0.12, two static protocols (one route not primary) and an IPv6 table
    assert bird.parse_prefixes(lines("bird2_show_route_primary")) == {
        "192.168.200.0/26", "192.168.200.64/26", "fd80::/64"}
