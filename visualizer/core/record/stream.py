"""Live attach: a recorder serves its snapshots over TCP; a viewer connects, watches, steers.

The same record bytes as in run files travel in frames (framing.py). The
recorder side never waits for a viewer:

- :meth:`StreamServer.publish` puts the frame in each viewer's one-slot mailbox
  (latest wins: a slow viewer gets the newest frame, the ones it missed are
  counted as dropped) and returns; per viewer, a sender thread does the
  sending. With no viewer attached, publish does nothing at all (an object is
  not even encoded).
- A viewer that stops reading is disconnected after ``send_timeout``; one that
  disconnects, dies or sends garbage is dropped on its own threads. None of it
  reaches the caller.

Authentication: the recorder makes a random token (``secrets.token_urlsafe``)
unless given one and prints it; a viewer must send it first and a wrong one is
refused (compared with ``hmac.compare_digest``). The recorder listens on
127.0.0.1 unless told otherwise: reach a remote machine through an SSH tunnel
(``ssh -L 7000:127.0.0.1:7000 gpu-box``, then attach to ``127.0.0.1:7000``)
rather than opening the port to the network; the stream is not encrypted.

Control goes the other way: the viewer sends plain JSON (which layers, how many
channels, how often; framing.validate_request); the recorder reads the latest
with :meth:`StreamServer.latest_request` or gets an ``on_request`` callback.
"""
from __future__ import annotations

import hmac
import json
import secrets
import select
import socket
import threading

from ... import __version__
from .encoding import RecordError, decode_record, encode_record, is_record
from .framing import (
    GREETING,
    HELLO,
    MAX_CONTROL_FRAME,
    MAX_FRAME,
    PROTOCOL,
    RECORD,
    REFUSED,
    REQUEST,
    WELCOME,
    FrameError,
    PeerClosed,
    encode_frame,
    json_body,
    read_frame,
    read_greeting,
    validate_request,
)

_SEND_FLAGS = getattr(socket, "MSG_NOSIGNAL", 0)   # a vanished peer is an error, never a SIGPIPE


class StreamError(Exception):
    """A live connection could not be made or was lost; one line naming the peer and the reason."""


def parse_address(address: str) -> tuple[str, int]:
    """"host:port" (or "[v6]:port") as (host, port); ValueError if it is neither."""
    host, sep, port = str(address).strip().rpartition(":")
    host = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    if not sep or not host or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ValueError(f"{address!r} is not a host:port address")
    return host, int(port)


def _format_address(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _tune(sock: socket.socket) -> None:
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)   # notices a peer machine that vanished


def _send(sock: socket.socket, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[sock.send(view, _SEND_FLAGS):]


class _Frame:
    """One published record, encoded (object → record → frame) at most once, on first need."""

    __slots__ = ("_payload", "_data", "_lock")

    def __init__(self, payload):
        self._payload = payload
        self._data = None
        self._lock = threading.Lock()

    def data(self) -> bytes:
        with self._lock:
            if self._data is None:
                record = self._payload if isinstance(self._payload, bytes) else encode_record(self._payload)
                self._data = encode_frame(RECORD, record)
                self._payload = None
            return self._data


class _Viewer:
    """One attached viewer, seen from the recorder: a mailbox and a sender thread."""

    def __init__(self, sock: socket.socket, peer: str):
        self.sock = sock
        self.peer = peer
        self.cond = threading.Condition()
        self.pending: _Frame | None = None
        self.closed = False
        self.dropped = 0
        self.sent = 0

    def offer(self, frame: _Frame) -> None:
        with self.cond:
            if self.closed:
                return
            if self.pending is not None:
                self.dropped += 1
            self.pending = frame
            self.cond.notify()

    def close(self) -> None:
        with self.cond:
            self.closed = True
            self.cond.notify()
        try:
            self.sock.shutdown(socket.SHUT_RDWR)   # wakes this viewer's threads out of recv/select
        except OSError:
            pass


class StreamServer:
    """Serves published records to attached viewers; see the module docstring."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0, token: str | None = None, meta: dict | None = None,
                 *, on_request=None, max_viewers: int = 8, send_timeout: float = 30.0,
                 handshake_timeout: float = 5.0):
        self.token = secrets.token_urlsafe(24) if token is None else str(token)
        if not self.token:
            raise ValueError("the stream token must not be empty")
        self.on_request = on_request
        self._welcome = self._welcome_record(meta or {})
        self._max_viewers = max_viewers
        self._send_timeout = send_timeout
        self._handshake_timeout = handshake_timeout
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self._sock = socket.create_server((host, port), family=family, backlog=16)
        self._sock.settimeout(0.25)     # the accept loop looks at the stop flag this often
        bound = self._sock.getsockname()
        self.address = _format_address(bound[0], bound[1])
        self._lock = threading.Lock()
        self._viewers: tuple[_Viewer, ...] = ()   # replaced, never mutated: publish reads it without a lock
        self._threads: list[threading.Thread] = []
        self._last: _Frame | None = None
        self._request: dict | None = None
        self._stop = threading.Event()
        self._stats = dict(published=0, dropped=0, sent=0, viewers_served=0, refused=0, protocol_errors=0,
                           bad_requests=0, callback_errors=0, unencodable=0)
        self._accepting = threading.Thread(target=self._accept_loop, name=f"StreamServer[{self.address}]",
                                           daemon=True)
        self._accepting.start()

    @staticmethod
    def _welcome_record(meta: dict) -> bytes:
        return encode_record({"protocol": PROTOCOL, "meta": dict(meta)}, compact=False)

    def set_meta(self, meta: dict) -> None:
        """What viewers that attach from now on receive in the handshake."""
        self._welcome = self._welcome_record(meta)

    # ------------------------------------------------------------------ the training thread's side

    def publish(self, record) -> int:
        """Offer ``record`` (encoded bytes, or an object encoded once if a viewer needs it) to every
        viewer; returns how many viewers there are. Never blocks, never raises for a viewer."""
        if isinstance(record, (bytes, bytearray, memoryview)):
            record = bytes(record)
            if not is_record(record):
                raise ValueError("publish got bytes that are not an encoded record")
        frame = _Frame(record)
        self._last = frame
        viewers = self._viewers
        self._stats["published"] += 1
        for v in viewers:
            v.offer(frame)
        return len(viewers)

    def latest_request(self) -> dict | None:
        """The newest control message any viewer sent (validated JSON), or None."""
        r = self._request
        return None if r is None else dict(r)

    @property
    def viewer_count(self) -> int:
        return len(self._viewers)

    @property
    def stats(self) -> dict:
        """Counters: published, sent, dropped (latest-wins replacements), refused, protocol errors, ..."""
        viewers = self._viewers
        return {**self._stats, "viewers": len(viewers),
                "dropped": self._stats["dropped"] + sum(v.dropped for v in viewers)}

    def close(self, timeout: float = 5.0) -> None:
        """Stop listening, disconnect every viewer, wait for the threads (up to ``timeout``)."""
        self._stop.set()
        for v in self._viewers:
            v.close()
        self._accepting.join(timeout)
        for t in list(self._threads):
            t.join(timeout)
        try:
            self._sock.close()
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    # ------------------------------------------------------------------ server threads

    def _accept_loop(self) -> None:
        while not self._stop.is_set():
            try:
                sock, addr = self._sock.accept()
            except TimeoutError:
                continue
            except OSError:
                if self._stop.is_set():
                    return
                continue    # e.g. too many open files: keep serving the viewers already attached
            peer = _format_address(str(addr[0]), int(addr[1]))
            t = threading.Thread(target=self._serve, args=(sock, peer), name=f"StreamViewer[{peer}]", daemon=True)
            with self._lock:
                self._threads = [x for x in self._threads if x.is_alive()] + [t]
            t.start()
        self._sock.close()

    def _serve(self, sock: socket.socket, peer: str) -> None:
        viewer = None
        try:
            _tune(sock)
            sock.settimeout(self._handshake_timeout)
            viewer = self._handshake(sock, peer)
            if viewer is None:
                return
            sender = threading.Thread(target=self._send_loop, args=(viewer,), name=f"StreamSender[{peer}]",
                                      daemon=True)
            with self._lock:
                self._threads.append(sender)
            sender.start()
            self._read_requests(viewer)
        except PeerClosed:
            pass     # the viewer left
        except FrameError:
            self._stats["protocol_errors"] += 1
        except (OSError, RecordError):
            pass     # the viewer went away or timed out; nothing to tell anyone
        finally:
            if viewer is not None:
                viewer.close()
                with self._lock:
                    self._viewers = tuple(v for v in self._viewers if v is not viewer)
                    self._stats["dropped"] += viewer.dropped
            try:
                sock.close()
            except OSError:
                pass

    def _handshake(self, sock: socket.socket, peer: str) -> _Viewer | None:
        _send(sock, GREETING)
        version = read_greeting(sock)
        if version != PROTOCOL:
            # The viewer reads our greeting and reports the mismatch itself; say it anyway.
            self._refuse(sock, f"version mismatch: this recorder speaks stream protocol {PROTOCOL}, "
                               f"the viewer {version}")
            return None
        _, body = read_frame(sock, frozenset((HELLO,)), MAX_CONTROL_FRAME)
        token = json_body(body).get("token")
        if not isinstance(token, str) or not hmac.compare_digest(token.encode(), self.token.encode()):
            self._refuse(sock, "wrong token (use the token the recorder printed when it started)")
            return None
        viewer = _Viewer(sock, peer)
        with self._lock:
            full = self._stop.is_set() or len(self._viewers) >= self._max_viewers
            if not full:
                self._viewers = (*self._viewers, viewer)
                self._stats["viewers_served"] += 1
        if full:
            self._refuse(sock, f"too many viewers (at most {self._max_viewers})")
            return None
        _send(sock, encode_frame(WELCOME, self._welcome))
        sock.settimeout(self._send_timeout)
        if self._last is not None:
            viewer.offer(self._last)     # something to show at once, not at the next publish
        return viewer

    def _refuse(self, sock: socket.socket, reason: str) -> None:
        self._stats["refused"] += 1
        try:
            _send(sock, encode_frame(REFUSED, json.dumps({"reason": reason}).encode()))
            sock.shutdown(socket.SHUT_WR)
        except OSError:
            pass

    def _read_requests(self, viewer: _Viewer) -> None:
        while not viewer.closed and not self._stop.is_set():
            ready, _, _ = select.select([viewer.sock], [], [], 1.0)
            if not ready:
                continue
            _, body = read_frame(viewer.sock, frozenset((REQUEST,)), MAX_CONTROL_FRAME)
            try:
                request = validate_request(json_body(body))
            except ValueError:
                self._stats["bad_requests"] += 1    # well framed but meaningless: ignored, not fatal
                continue
            self._request = request
            if self.on_request is not None:
                try:
                    self.on_request(dict(request))
                except Exception:  # noqa: BLE001 - a failing callback must not cut the viewer off
                    self._stats["callback_errors"] += 1

    def _send_loop(self, viewer: _Viewer) -> None:
        while True:
            with viewer.cond:
                viewer.cond.wait_for(lambda: viewer.pending is not None or viewer.closed)
                if viewer.closed:
                    return
                frame, viewer.pending = viewer.pending, None
            try:
                data = frame.data()
            except (TypeError, ValueError):
                self._stats["unencodable"] += 1   # the caller published something that is not a record
                continue
            try:
                _send(viewer.sock, data)
            except OSError:
                viewer.close()    # gone, or not reading for send_timeout: _serve cleans up
                return
            viewer.sent += 1
            self._stats["sent"] += 1


class StreamClient:
    """A viewer's connection to a StreamServer: handshake, then newest-first frames."""

    def __init__(self, address: str, token: str, timeout: float = 10.0, *, max_frame: int = MAX_FRAME):
        self.address = str(address)
        self._max_frame = max_frame
        try:
            host, port = parse_address(self.address)
        except ValueError as e:
            raise StreamError(str(e)) from None
        self._sock = self._connect(host, port, timeout)
        try:
            self.meta = self._handshake(token)
        except BaseException:
            self._sock.close()
            raise
        self._cond = threading.Condition()
        self._pending: bytes | None = None
        self._error: str | None = None
        self._closed = False
        self._send_lock = threading.Lock()
        self.received = 0
        self.dropped = 0
        self._reader = threading.Thread(target=self._read_loop, name=f"StreamClient[{self.address}]", daemon=True)
        self._reader.start()

    def _fail(self, problem: str) -> StreamError:
        return StreamError(f"{self.address}: {problem}")

    def _connect(self, host: str, port: int, timeout: float) -> socket.socket:
        try:
            sock = socket.create_connection((host, port), timeout=timeout)
        except ConnectionRefusedError:
            raise self._fail("connection refused: no recorder listens there (was it started with serve=...? "
                             "for another machine, open the SSH tunnel first)") from None
        except TimeoutError:
            raise self._fail(f"no answer within {timeout:g} s") from None
        except OSError as e:
            raise self._fail(f"cannot connect ({e.strerror or e})") from None
        _tune(sock)
        return sock

    def _handshake(self, token: str) -> dict:
        s = self._sock
        try:
            _send(s, GREETING)
            version = read_greeting(s)
            if version != PROTOCOL:
                raise self._fail(f"version mismatch: the recorder speaks stream protocol {version}, this viewer "
                                 f"{PROTOCOL} (run the same cnn-visualizer version on both sides)")
            hello = json.dumps({"token": str(token), "client": f"cnn-visualizer {__version__}"}).encode()
            _send(s, encode_frame(HELLO, hello))
            kind, body = read_frame(s, frozenset((WELCOME, REFUSED)), self._max_frame)
            if kind == REFUSED:
                reason = json_body(body).get("reason")
                raise self._fail(f"refused by the recorder: {reason if isinstance(reason, str) else 'no reason'}")
            welcome = decode_record(body)
        except FrameError as e:
            raise self._fail(str(e)) from None
        except TimeoutError:
            raise self._fail("the recorder did not complete the handshake in time") from None
        except RecordError as e:
            raise self._fail(f"the recorder's metadata is damaged ({e})") from None
        except OSError as e:
            raise self._fail(f"the connection failed during the handshake ({e.strerror or e})") from None
        if not isinstance(welcome, dict) or not isinstance(welcome.get("meta"), dict):
            raise self._fail("the recorder's handshake holds no metadata")
        return welcome["meta"]

    # ------------------------------------------------------------------ the viewer's side

    def receive(self, timeout: float | None = None) -> bytes | None:
        """The newest record not yet received (older unreceived ones are skipped), or None after
        ``timeout``. StreamError once the connection is gone and nothing is left to take."""
        with self._cond:
            self._cond.wait_for(lambda: self._pending is not None or self._error is not None, timeout)
            if self._pending is not None:
                data, self._pending = self._pending, None
                return data
            if self._error is not None:
                raise self._fail(self._error)
            return None

    def receive_record(self, timeout: float | None = None):
        """:meth:`receive`, decoded; StreamError if the record is damaged."""
        data = self.receive(timeout)
        if data is None:
            return None
        try:
            return decode_record(data)
        except RecordError as e:
            raise self._fail(f"received a damaged record ({e})") from None

    def send_request(self, request: dict) -> None:
        """Tell the recorder what to capture (framing.REQUEST_KEYS); ValueError if malformed."""
        body = json.dumps(validate_request(request)).encode()
        with self._send_lock:
            if self._error is not None:
                raise self._fail(self._error)
            try:
                _send(self._sock, encode_frame(REQUEST, body))
            except OSError as e:
                raise self._fail(f"the connection dropped ({e.strerror or e})") from None

    @property
    def connected(self) -> bool:
        return self._error is None

    def close(self) -> None:
        with self._cond:
            self._closed = True
        try:
            self._sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self._reader.join(5.0)
        self._sock.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    def _read_loop(self) -> None:
        """Drain the socket all the time (so the recorder never sees a slow reader), keeping the newest."""
        try:
            while True:
                ready, _, _ = select.select([self._sock], [], [], 1.0)
                if self._closed:
                    raise FrameError("the viewer closed the connection")
                if not ready:
                    continue
                _, body = read_frame(self._sock, frozenset((RECORD,)), self._max_frame)
                with self._cond:
                    if self._pending is not None:
                        self.dropped += 1
                    self._pending = body
                    self.received += 1
                    self._cond.notify_all()
        except PeerClosed:
            self._set_error("the viewer closed the connection" if self._closed
                            else "the recorder closed the connection")
        except FrameError as e:
            self._set_error(str(e))
        except OSError as e:
            self._set_error("the viewer closed the connection" if self._closed
                            else f"the connection dropped ({e.strerror or e})")

    def _set_error(self, reason: str) -> None:
        with self._cond:
            self._error = reason
            self._cond.notify_all()
