"""Run as a separate process by test_stream.py.

usage: stream_child.py server        serve, publish a record every 20 ms, print control messages
       stream_child.py client ADDR TOKEN   attach, print "received STEP" for each record
"""
import json
import sys
import time

import numpy as np

from visualizer.core.record.encoding import decode_record, encode_record
from visualizer.core.record.stream import StreamClient, StreamServer


def serve() -> None:
    def on_request(request):
        print("request", json.dumps(request, sort_keys=True), flush=True)

    server = StreamServer(meta={"arch": "lenet5", "classes": tuple("0123456789")}, on_request=on_request)
    print("serving", server.address, server.token, flush=True)
    rng = np.random.default_rng(0)
    step = 0
    while True:
        maps = rng.standard_normal((6, 28, 28)).astype(np.float32)
        server.publish(encode_record({"step": step, "maps": maps}))
        step += 1
        time.sleep(0.02)


def attach(address: str, token: str) -> None:
    with StreamClient(address, token) as client:
        print("attached", json.dumps(client.meta, default=list), flush=True)
        while True:
            data = client.receive(5.0)
            if data is not None:
                print("received", decode_record(data)["step"], flush=True)


if __name__ == "__main__":
    serve() if sys.argv[1] == "server" else attach(sys.argv[2], sys.argv[3])
