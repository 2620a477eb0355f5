#!/usr/bin/env python3
"""Message latency through a node's local API (run in the node's namespace): sends COUNT messages to CONTACT one
after the other and prints p50 and p99 of the request's wall time (each returns once the recipient stored it).
usage: msg-latency.py HOME CONTACT COUNT"""
import json
import sys
import time
import urllib.request

home, contact, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
port = open(f"{home}/api.port").read().strip()
token = open(f"{home}/api.token").read().strip()


def send(text):
    body = json.dumps({"to": contact, "text": text}).encode()
    req = urllib.request.Request(f"http://127.0.0.1:{port}/api/v1/messages", data=body, method="POST",
                                 headers={"authorization": f"Bearer {token}", "content-type": "application/json"})
    with urllib.request.urlopen(req, timeout=60) as r:
        state = json.load(r)["state"]
    if state != "delivered":
        sys.exit(f"message was {state}")


send("warm-up")
times = []
for i in range(count):
    t = time.perf_counter()
    send(f"latency {i}")
    times.append((time.perf_counter() - t) * 1000)
times.sort()
print(f"p50 {times[len(times) // 2]:.2f} ms, p99 {times[min(len(times) - 1, int(len(times) * 0.99))]:.2f} ms")
