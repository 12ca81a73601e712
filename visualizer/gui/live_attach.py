"""Attaching to a live run: a user's Recorder started with ``serve=...``, possibly on another machine.

A background thread receives the recorder's snapshots (``core.record.stream.StreamClient``,
the run file's record encoding, no pickle), decodes them there and hands each to the GUI
thread as a queued signal; only the newest matters, and one is decoded at a time. The
window tells the recorder what to capture and how often (``request``): the viewer sets
the rate. A dropped connection leaves the recorder's training untouched and the window
showing what it had (``closed`` says why).
"""
from __future__ import annotations

import threading

from PyQt6.QtCore import QObject, pyqtSignal

from visualizer.core.engine.messages import LoadedModel
from visualizer.core.record.encoding import RecordError, decode_record
from visualizer.core.record.stream import StreamClient, StreamError
from visualizer.core.snapshot import TrainingSnapshot

LIVE_RATE_HZ = 10.0       # what the window asks the recorder for (the recorder's budget still applies)


class LiveAttach(QObject):
    snapshot_ready = pyqtSignal(object)   # TrainingSnapshot
    closed = pyqtSignal(str)              # why the connection ended ("" when the window closed it)

    def __init__(self, parent: QObject | None = None):
        super().__init__(parent)
        self.client: StreamClient | None = None
        self.address: str | None = None
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()

    @property
    def active(self) -> bool:
        return self.client is not None

    def connect_to(self, address: str, token: str, timeout: float = 10.0) -> LoadedModel:
        """Connect (StreamError with one line if refused); returns the model the recorder watches."""
        client = StreamClient(address.strip(), token.strip(), timeout=timeout)
        meta = client.meta
        info = meta.get("model_info")
        if info is None:
            client.close()
            raise StreamError(f"{address}: the recorder sent no model description")
        self.close()
        self.client, self.address = client, address.strip()
        self._stop.clear()
        self._thread = threading.Thread(target=self._receive, args=(client,), name="live-attach", daemon=True)
        self._thread.start()
        return LoadedModel(info=info, input_shape=tuple(meta.get("input_shape") or info.input_shape),
                           class_names=tuple(meta.get("class_names") or ()),
                           arch=str(meta.get("model") or "live run"), source=f"live {self.address}")

    def request(self, layer: str | None, max_channels: int = 64, rate_hz: float = LIVE_RATE_HZ) -> None:
        """What the window shows: the selected layer in full, as often as it can draw."""
        if self.client is None:
            return
        msg = {"max_channels": int(max_channels), "rate_hz": float(rate_hz)}
        if layer:
            msg["layers"] = [layer]
        try:
            self.client.send_request(msg)
        except StreamError:
            pass   # the receiving thread reports the lost connection

    def close(self) -> None:
        client, self.client = self.client, None
        self._stop.set()
        if client is not None:
            client.close()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(5)
        self._thread = None

    def _receive(self, client: StreamClient) -> None:
        reason = ""
        while not self._stop.is_set():
            try:
                data = client.receive(timeout=0.5)
            except StreamError as exc:
                reason = str(exc)
                break
            if data is None:
                continue
            try:
                snap = decode_record(data)
            except RecordError as exc:
                reason = f"{self.address}: sent a record that is not valid ({exc})"
                break
            if isinstance(snap, TrainingSnapshot):
                self.snapshot_ready.emit(snap)
        if not self._stop.is_set():
            self.closed.emit(reason or f"{self.address}: the connection ended")
