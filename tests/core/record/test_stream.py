"""The live stream over real sockets and processes: attach, steer, refuse, survive bad or dead peers."""
import json
import socket
import struct
import threading
import time
import zlib

import numpy as np
import pytest

from tests.core.record.child import Child
from visualizer.core.record.encoding import decode_record, encode_record
from visualizer.core.record.framing import (
    GREETING,
    HELLO,
    RECORD,
    REFUSED,
    REQUEST,
    WELCOME,
    encode_frame,
    read_frame,
    recv_exact,
)
from visualizer.core.record.stream import StreamClient, StreamError, StreamServer, parse_address


def wait_until(predicate, timeout=10.0, what="condition"):
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.01)


@pytest.fixture
def server():
    s = StreamServer(meta={"arch": "lenet5"}, send_timeout=2.0)
    yield s
    s.close()


def raw_viewer(server, token=None, greeting=GREETING):
    """A hand-driven viewer socket, handshaken; returns (socket, first reply frame type)."""
    s = socket.create_connection(parse_address(server.address), timeout=5)
    s.sendall(greeting)
    assert recv_exact(s, len(GREETING)) == GREETING
    s.sendall(encode_frame(HELLO, json.dumps({"token": server.token if token is None else token}).encode()))
    kind, _ = read_frame(s, frozenset((WELCOME, REFUSED)))
    return s, kind


def closed_by_peer(s, timeout=5.0) -> bool:
    """True once the other side has closed the connection (reads end), False if it stays open."""
    s.settimeout(timeout)
    try:
        while s.recv(65536):
            pass
        return True
    except ConnectionResetError:
        return True
    except TimeoutError:
        return False
    finally:
        s.close()


def test_snapshots_and_control_messages_cross_a_real_process():
    with Child("stream_child.py", "server") as child:
        _, address, token = child.wait_line(lambda l: l.startswith("serving")).split()
        with StreamClient(address, token, timeout=10) as client:
            assert client.meta == {"arch": "lenet5", "classes": tuple("0123456789")}
            steps = []
            while len(steps) < 3:
                record = client.receive_record(timeout=10)
                assert record is not None, "no snapshot arrived"
                assert record["maps"].shape == (6, 28, 28) and record["maps"].dtype == np.float32
                steps.append(record["step"])
            assert steps == sorted(steps) and len(set(steps)) == 3
            client.send_request({"layers": ["C1", "S2"], "max_channels": 8, "rate_hz": 2.5})
            line = child.wait_line(lambda l: l.startswith("request"))
            assert json.loads(line.split(" ", 1)[1]) == {"layers": ["C1", "S2"], "max_channels": 8, "rate_hz": 2.5}

            with pytest.raises(StreamError, match="refused by the recorder: wrong token") as e:
                StreamClient(address, "guessed-" + token[:5])
            assert address in str(e.value) and "\n" not in str(e.value)
            assert client.receive_record(timeout=10)["step"] > steps[-1]    # the others are untouched

            child.kill()
            with pytest.raises(StreamError, match="the recorder closed the connection|dropped"):
                deadline = time.monotonic() + 15
                while time.monotonic() < deadline:    # what had arrived comes first, then the error
                    client.receive(timeout=1)


def test_a_viewer_killed_while_the_server_publishes_leaves_it_serving(server):
    with Child("stream_child.py", "client", server.address, server.token) as viewer:
        attached = viewer.wait_line(lambda l: l.startswith("attached"))
        assert json.loads(attached.split(" ", 1)[1]) == {"arch": "lenet5"}
        step = 0

        def publish_until(predicate, what):
            nonlocal step
            deadline = time.monotonic() + 15
            while not predicate():
                assert time.monotonic() < deadline, f"timed out waiting for {what}"
                t0 = time.perf_counter()
                server.publish(encode_record({"step": step, "x": np.zeros(1000, np.float32)}))
                assert time.perf_counter() - t0 < 0.05
                step += 1
                time.sleep(0.01)

        publish_until(lambda: viewer.count(lambda l: l.startswith("received")) >= 3, "the viewer to receive")
        assert server.viewer_count == 1
        viewer.kill()
        publish_until(lambda: server.viewer_count == 0, "the server to drop the dead viewer")
    with StreamClient(server.address, server.token) as again:
        assert again.receive_record(timeout=5)["step"] == step - 1    # the newest, sent at once on attach


@pytest.mark.parametrize("garbage", [
    b"GET / HTTP/1.1\r\nHost: x\r\n\r\n",                                     # not a viewer at all
    GREETING + struct.pack("<IBI", 1 << 30, HELLO, 0),                       # an oversized frame
    GREETING + struct.pack("<IBI", 0, 99, zlib.crc32(b"\x63")),              # an unknown frame type
    GREETING + struct.pack("<IBI", 2, HELLO, 12345) + b"{}",                 # a wrong checksum
    GREETING + encode_frame(HELLO, b"\xff\xfe not json"),                    # a HELLO that is not JSON
    GREETING + encode_frame(RECORD, b"x"),                                   # a frame viewers never send
], ids=["http", "oversized", "unknown-type", "bad-crc", "not-json", "wrong-direction"])
def test_garbage_before_the_handshake_is_disconnected(server, garbage):
    s = socket.create_connection(parse_address(server.address), timeout=5)
    s.sendall(garbage)
    assert closed_by_peer(s)
    with StreamClient(server.address, server.token) as ok:   # the server is as good as before
        server.publish(encode_record({"step": 1}))
        assert ok.receive_record(timeout=5) == {"step": 1}


def test_garbage_after_the_handshake_is_disconnected_and_bad_requests_ignored(server):
    s, kind = raw_viewer(server)
    assert kind == WELCOME
    s.sendall(encode_frame(REQUEST, json.dumps({"max_channels": "many"}).encode()))   # well framed, meaningless
    s.sendall(encode_frame(REQUEST, json.dumps({"rate_hz": 3}).encode()))
    wait_until(lambda: server.latest_request() == {"rate_hz": 3}, what="the valid request")
    assert server.stats["bad_requests"] == 1 and server.viewer_count == 1
    s.sendall(struct.pack("<IBI", 5, REQUEST, 0) + b"hello")                          # a broken frame
    assert closed_by_peer(s)
    wait_until(lambda: server.viewer_count == 0, what="the viewer to be dropped")
    assert server.stats["protocol_errors"] >= 1


def test_wrong_tokens_and_protocol_versions_are_refused_with_a_reason(server):
    s, kind = raw_viewer(server, token="nope")
    assert kind == REFUSED and closed_by_peer(s)
    s = socket.create_connection(parse_address(server.address), timeout=5)
    s.sendall(GREETING[:-1] + bytes([9]))
    assert recv_exact(s, len(GREETING)) == GREETING
    kind, body = read_frame(s, frozenset((REFUSED,)))
    assert "version mismatch" in json.loads(body)["reason"] and closed_by_peer(s)
    assert server.stats["refused"] == 2 and server.viewer_count == 0


def fake_server(reply: bytes):
    """A listening socket that answers every connection with ``reply`` and then waits."""
    ls = socket.create_server(("127.0.0.1", 0))
    conns = []

    def run():
        try:
            c, _ = ls.accept()
        except OSError:
            return
        conns.append(c)
        c.sendall(reply)

    threading.Thread(target=run, daemon=True).start()
    return ls, conns, "127.0.0.1:%d" % ls.getsockname()[1]


@pytest.mark.parametrize("reply, words", [
    (GREETING[:-1] + bytes([7]), "version mismatch: the recorder speaks stream protocol 7"),
    (b"SSH-2.0-OpenSSH_9.6\r\n", "not a cnn-visualizer live stream"),
    (GREETING + encode_frame(WELCOME, b"not a record"), "metadata is damaged"),
])
def test_the_viewer_names_what_is_wrong_with_the_other_end(reply, words):
    ls, conns, address = fake_server(reply)
    try:
        with pytest.raises(StreamError, match=words) as e:
            StreamClient(address, "t", timeout=5)
        assert str(e.value).startswith(address)
    finally:
        ls.close()
        for c in conns:
            c.close()


def test_connection_errors_are_one_line():
    ls = socket.create_server(("127.0.0.1", 0))
    port = ls.getsockname()[1]
    ls.close()                                   # nothing listens there any more
    with pytest.raises(StreamError, match="connection refused"):
        StreamClient(f"127.0.0.1:{port}", "t")
    with pytest.raises(StreamError, match="not a host:port"):
        StreamClient("gpu-box", "t")


def test_a_viewer_that_stops_reading_never_holds_up_publish(server):
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.connect(parse_address(server.address))
    s.settimeout(5)
    s.sendall(GREETING)
    recv_exact(s, len(GREETING))
    s.sendall(encode_frame(HELLO, json.dumps({"token": server.token}).encode()))
    assert read_frame(s, frozenset((WELCOME,)))[0] == WELCOME     # attached; from here on it reads nothing
    big = encode_record(np.random.default_rng(0).standard_normal(200_000).astype(np.float32), compact=False)
    times = []
    for _ in range(200):
        t0 = time.perf_counter()
        server.publish(big)
        times.append(time.perf_counter() - t0)
    assert np.median(times) < 1e-3 and max(times) < 0.05, (np.median(times), max(times))
    assert server.stats["dropped"] > 100
    # The kernel buffers took the first frames; the next send blocks and send_timeout cuts it off,
    # while publishing goes on as before.
    wait_until(lambda: server.publish(big) == 0, timeout=15, what="the stuck viewer to be cut off")
    s.close()


def test_the_viewer_keeps_the_newest_record_and_callbacks_cannot_hurt_the_server():
    calls = []

    def on_request(request):
        calls.append(request)
        raise RuntimeError("a buggy recorder callback")

    with StreamServer(on_request=on_request) as server, StreamClient(server.address, server.token) as client:
        assert server.publish(object()) == 1     # not a record: counted, the viewer stays
        wait_until(lambda: server.stats["unencodable"] == 1, what="the refusal")
        for step in range(20):
            server.publish({"step": step})       # objects are encoded on the sender's thread
        got = []
        deadline = time.monotonic() + 10
        while (not got or got[-1] != 19) and time.monotonic() < deadline:
            data = client.receive(1)
            if data is not None:
                got.append(decode_record(data)["step"])
        assert got[-1] == 19 and got == sorted(got)   # newest first; what was overtaken is skipped
        assert client.receive(0.1) is None
        with pytest.raises(ValueError, match="rate_hz"):
            client.send_request({"rate_hz": -1})
        client.send_request({"layers": ["*"]})
        wait_until(lambda: server.stats["callback_errors"] == 1, what="the callback")
        assert calls == [{"layers": ["*"]}] and server.viewer_count == 1 and client.connected
    assert server.publish({"step": 100}) == 0     # after close: nobody to send to, no error
