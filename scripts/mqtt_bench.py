#!/usr/bin/env python3
"""Latency and throughput measurements of a running sideload runtime over MQTT.

Used by scripts/bench.sh, which starts the broker and the runtime. Python's standard
library only: a minimal MQTT 3.1.1 client (QoS 0, one connection) is below, so the
numbers include no client start-up time, unlike a mosquitto_pub per request.

Usage:
  mqtt_bench.py --port P --realm R --runtime UUID create-latency [--runs 20]
  mqtt_bench.py --port P --realm R --runtime UUID echo-latency [--runs 20]
  mqtt_bench.py --port P --realm R --runtime UUID throughput [--lines 20000]
  mqtt_bench.py --port P --realm R --runtime UUID py-create-latency [--runs 10]
  mqtt_bench.py --port P --realm R --runtime UUID py-throughput [--lines 20000]
  mqtt_bench.py --port P --realm R --runtime UUID py-rss --pid PID [--modules 10]
  mqtt_bench.py ... docker-run-latency --image IMAGE --folder DIR [--engine docker] [--runs 10]

The py-* measurements run the Python programs of tests/programs/python (filetype PY,
in containers); docker-run-latency is the baseline: a bare `docker run` of the same
image and program, no runtime involved.

Each prints one line: `<name> <value> <unit> <how it was measured>`.
"""

import argparse
import json
import queue
import socket
import statistics
import struct
import subprocess
import sys
import threading
import time
import uuid


class MiniMqtt:
    """Just enough MQTT 3.1.1 for measurements: connect, subscribe, publish, receive."""

    def __init__(self, host, port, client_id):
        self.sock = socket.create_connection((host, port))
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.messages = queue.Queue()
        self.subacks = queue.Queue()
        self.next_packet_id = 1
        self.send_lock = threading.Lock()

        client_id = client_id.encode()
        variable = _string(b"MQTT") + bytes([4, 0x02]) + struct.pack("!H", 60)
        self._send(0x10, variable + _string(client_id))
        packet_type, body = self._read_packet()
        if packet_type != 0x20 or body[1] != 0:
            raise RuntimeError(f"broker refused the connection: {body!r}")
        threading.Thread(target=self._reader, daemon=True).start()

    def subscribe(self, *topics):
        packet_id = self.next_packet_id
        self.next_packet_id += 1
        payload = b"".join(_string(t.encode()) + b"\x00" for t in topics)
        self._send(0x82, struct.pack("!H", packet_id) + payload)
        self.subacks.get(timeout=10)

    def publish(self, topic, payload):
        if isinstance(payload, str):
            payload = payload.encode()
        self._send(0x30, _string(topic.encode()) + payload)

    def receive(self, timeout):
        """Next (monotonic time, topic, payload bytes), or None after timeout seconds."""
        try:
            return self.messages.get(timeout=timeout)
        except queue.Empty:
            return None

    def drain(self):
        while not self.messages.empty():
            self.messages.get_nowait()

    def _send(self, header, body):
        length = len(body)
        encoded = bytearray()
        while True:
            byte = length % 128
            length //= 128
            encoded.append(byte | (0x80 if length else 0))
            if not length:
                break
        with self.send_lock:
            self.sock.sendall(bytes([header]) + bytes(encoded) + body)

    def _read_exact(self, count):
        data = bytearray()
        while len(data) < count:
            chunk = self.sock.recv(count - len(data))
            if not chunk:
                raise ConnectionError("broker closed the connection")
            data += chunk
        return bytes(data)

    def _read_packet(self):
        header = self._read_exact(1)[0]
        length, shift = 0, 0
        while True:
            byte = self._read_exact(1)[0]
            length += (byte & 0x7F) << shift
            shift += 7
            if not byte & 0x80:
                break
        return header & 0xF0, self._read_exact(length)

    def _reader(self):
        try:
            while True:
                packet_type, body = self._read_packet()
                now = time.monotonic()
                if packet_type == 0x30:
                    topic_length = struct.unpack("!H", body[:2])[0]
                    topic = body[2 : 2 + topic_length].decode()
                    self.messages.put((now, topic, body[2 + topic_length :]))
                elif packet_type == 0x90:
                    self.subacks.put(body)
        except (ConnectionError, OSError):
            pass


def _string(data):
    return struct.pack("!H", len(data)) + data


class Runtime:
    """Topics and requests of one runtime in the silverline dialect."""

    def __init__(self, client, realm, runtime_uuid):
        self.client = client
        self.realm = realm
        self.uuid = runtime_uuid
        self.control = f"{realm}/proc/control/{runtime_uuid}"
        self.log = f"{realm}/proc/log/{runtime_uuid}"

    def stdout(self, module):
        return f"{self.realm}/proc/stdio/{module}"

    def stdin(self, module):
        return f"{self.realm}/proc/stdio/{module}/stdin"

    def create(self, module, file, argv=(), filetype="WA"):
        apis = ["wasm", "wasi"] if filetype == "WA" else []
        self.client.publish(self.control, json.dumps({
            "object_id": str(uuid.uuid4()), "action": "create", "type": "req",
            "data": {"type": "module", "uuid": module, "name": f"bench-{module[:8]}",
                     "parent": self.uuid, "file": file, "filetype": filetype,
                     "apis": apis, "args": {"argv": list(argv), "env": []},
                     "channels": [], "status": "A"}}))

    def refusals(self, predicate, modules):
        """predicate, but raising RuntimeError on an error about one of the modules on
        the runtime's log topic (subscribe to self.log first), so a refused create
        fails the measurement at once instead of at its timeout."""
        def watch(topic, payload):
            if topic == self.log and any(m.encode() in payload for m in modules):
                raise RuntimeError(f"the runtime reported an error: {payload.decode(errors='replace')}")
            return predicate(topic, payload)
        return watch

    def create_py(self, module, program, argv=()):
        """A Python module: tests/programs/python/<program>/<program>.py and its folder."""
        self.create(module, f"python/{program}/{program}.py", argv, filetype="PY")

    def delete(self, module):
        self.client.publish(self.control, json.dumps({
            "object_id": str(uuid.uuid4()), "action": "delete", "type": "req",
            "data": {"type": "module", "uuid": module}}))

    def wait_for(self, predicate, timeout, what):
        """Receives until predicate(topic, payload) holds; returns that message's time."""
        deadline = time.monotonic() + timeout
        while True:
            message = self.client.receive(max(0.0, deadline - time.monotonic()))
            if message is None:
                raise TimeoutError(f"no {what} within {timeout} s")
            at, topic, payload = message
            if predicate(topic, payload):
                return at

    def wait_exited(self, module, timeout=30):
        def is_exit(topic, payload):
            if topic != self.control:
                return False
            try:
                message = json.loads(payload)
            except ValueError:
                return False
            return message.get("action") == "exited" and \
                message.get("data", {}).get("uuid") == module
        return self.wait_for(is_exit, timeout, f"'exited' notice of module '{module}'")


def create_latency(runtime, runs):
    samples = []
    for _ in range(runs):
        module = str(uuid.uuid4())
        runtime.client.subscribe(runtime.stdout(module))
        runtime.client.drain()
        start = time.monotonic()
        runtime.create(module, "hello.wasm")
        first = runtime.wait_for(lambda t, p, m=module: t == runtime.stdout(m), 30,
                                 "stdout from hello.wasm")
        samples.append(first - start)
        runtime.wait_exited(module)
    report_median("create_to_first_stdout_median", samples,
                  "create request for hello.wasm published -> first stdout message received")


def echo_latency(runtime, runs):
    module = str(uuid.uuid4())
    runtime.client.subscribe(runtime.stdout(module))
    runtime.create(module, "echo.wasm")
    # the first line may race the runtime's stdin subscription: retry it until answered
    for _ in range(50):
        runtime.client.publish(runtime.stdin(module), "warm-up")
        try:
            runtime.wait_for(lambda t, p: b"echo: warm-up" in p, 0.2, "warm-up echo")
            break
        except TimeoutError:
            continue
    else:
        raise TimeoutError("echo.wasm never answered on stdout")
    time.sleep(0.3)
    runtime.client.drain()

    samples = []
    for i in range(runs):
        line = f"ping {i}"
        expected = f"echo: {line}\n".encode()
        start = time.monotonic()
        runtime.client.publish(runtime.stdin(module), line)
        answered = runtime.wait_for(lambda t, p, e=expected: e in p, 10, f"'{line}' echoed")
        samples.append(answered - start)
    runtime.delete(module)
    runtime.wait_exited(module)
    report_median("stdin_to_echo_median", samples,
                  "line published on echo.wasm's stdin topic -> its echo received on stdout")


def throughput(runtime, lines):
    module = str(uuid.uuid4())
    runtime.client.subscribe(runtime.stdout(module))
    runtime.client.drain()
    last_line = f"line {lines}\n".encode()
    received = bytearray()
    start = time.monotonic()
    runtime.create(module, "noisy.wasm", [str(lines)])

    def collect(topic, payload):
        if topic != runtime.stdout(module):
            return False
        received.extend(payload)
        return received.endswith(last_line)

    try:
        end = runtime.wait_for(collect, 120, f"'line {lines}' from noisy.wasm")
    except TimeoutError:
        end = time.monotonic()
    count = received.count(b"\n")
    elapsed = end - start
    report("stdout_throughput", count / elapsed, "lines/s",
           f"noisy.wasm {lines}: {count} of {lines} lines received in {elapsed:.2f} s, "
           f"create request -> last line")


def stop_latency(runtime, runs):
    samples = []
    for _ in range(runs):
        module = str(uuid.uuid4())
        runtime.client.subscribe(runtime.stdout(module))
        runtime.client.drain()
        runtime.create(module, "spin.wasm")
        runtime.wait_for(lambda t, p, m=module: t == runtime.stdout(m), 30,
                         "'spinning' from spin.wasm")
        # let it spin: the delete must interrupt a loop that never calls the host
        time.sleep(0.2)
        start = time.monotonic()
        runtime.delete(module)
        samples.append(runtime.wait_exited(module) - start)
    report_median("delete_to_exited_spin_median", samples,
                  "delete request for a spinning spin.wasm published -> its 'exited' notice "
                  "received")


def py_create_latency(runtime, runs):
    samples = []
    for _ in range(runs):
        module = str(uuid.uuid4())
        runtime.client.subscribe(runtime.stdout(module))
        runtime.client.drain()
        start = time.monotonic()
        runtime.create_py(module, "hello")
        first = runtime.wait_for(
            runtime.refusals(lambda t, p, m=module: t == runtime.stdout(m), [module]), 60,
            "stdout from python/hello")
        samples.append(first - start)
        runtime.wait_exited(module)
    report_median("py_create_to_first_stdout_median", samples,
                  "create request for python/hello published -> first stdout message received")


def docker_run_latency(engine, image, folder, runs):
    command = [engine, "run", "--rm", "-v", f"{folder}:/usr/src/app", "-w", "/usr/src/app",
               image, "/entrypoint.sh", "hello.py"]
    samples = []
    for _ in range(runs):
        start = time.monotonic()
        process = subprocess.Popen(command, stdout=subprocess.PIPE, stdin=subprocess.DEVNULL)
        line = process.stdout.readline()
        first = time.monotonic()
        process.stdout.read()
        if process.wait(timeout=60) != 0 or not line:
            raise RuntimeError(f"'{' '.join(command)}' failed (status {process.returncode})")
        samples.append(first - start)
    report_median("docker_run_first_stdout_median", samples,
                  f"bare '{engine} run --rm -v <python/hello>:/usr/src/app {image} "
                  "/entrypoint.sh hello.py' spawned -> its first stdout line")


def py_throughput(runtime, lines):
    module = str(uuid.uuid4())
    runtime.client.subscribe(runtime.stdout(module))
    runtime.client.drain()
    last_line = f"line {lines - 1}\n".encode()
    received = bytearray()
    first = []
    start = time.monotonic()
    runtime.create_py(module, "printer", [str(lines)])

    def collect(topic, payload):
        if topic != runtime.stdout(module):
            return False
        if not first:
            first.append(time.monotonic())
        received.extend(payload)
        return received.endswith(last_line)

    try:
        end = runtime.wait_for(runtime.refusals(collect, [module]), 120,
                               f"'line {lines - 1}' from python/printer")
    except TimeoutError:
        end = time.monotonic()
    in_order = 0
    for line in received.split(b"\n"):
        if line != f"line {in_order}".encode():
            break
        in_order += 1
    elapsed = end - start
    runtime.wait_exited(module)
    report("py_stdout_throughput", in_order / elapsed, "lines/s",
           f"python/printer {lines}: {in_order} of {lines} lines received in order in "
           f"{elapsed:.2f} s, create request -> last line (container start included; "
           f"{end - first[0] if first else 0:.3f} s from the first stdout message)")


def py_rss(runtime, pid, modules):
    ready = set()
    ids = [str(uuid.uuid4()) for _ in range(modules)]
    runtime.client.subscribe(*[runtime.stdout(m) for m in ids])
    runtime.client.drain()
    for module in ids:
        runtime.create_py(module, "idle")

    def is_ready(topic, payload):
        for module in ids:
            if topic == runtime.stdout(module) and b"ready" in payload:
                ready.add(module)
        return len(ready) == len(ids)

    try:
        runtime.wait_for(runtime.refusals(is_ready, ids), 60 + 10 * modules,
                         f"'ready' from {modules} python/idle")
        time.sleep(2)  # let the stats chores of the running modules settle
        with open(f"/proc/{pid}/status", encoding="ascii") as status:
            rss = next(int(line.split()[1]) for line in status if line.startswith("VmRSS:"))
    finally:
        for module in ids:
            runtime.delete(module)
    # one wait for all: waiting for each in turn would drop the others' notices
    exited = set()

    def all_exited(topic, payload):
        if topic == runtime.control:
            try:
                message = json.loads(payload)
            except ValueError:
                return False
            if message.get("action") == "exited":
                exited.add(message.get("data", {}).get("uuid"))
        return exited.issuperset(ids)

    runtime.wait_for(all_exited, 60, f"'exited' notices of {modules} python/idle")
    report("py_rss_with_modules", rss, "KiB",
           f"VmRSS of the runtime with {modules} python/idle modules running (containers "
           f"not counted), 2 s after all printed 'ready'")


def report(name, value, unit, how):
    print(f"{name} {value:.1f} {unit}  ({how})", flush=True)


def report_median(name, samples, what):
    """Median, min and max of `samples` (seconds), in milliseconds."""
    ms = [sample * 1000 for sample in samples]
    report(name, statistics.median(ms), "ms",
           f"median of {len(ms)}: {what} (min {min(ms):.1f}, max {max(ms):.1f})")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=1883)
    parser.add_argument("--realm", default="realm")
    parser.add_argument("--runtime", required=True, help="the runtime's uuid")
    parser.add_argument("measurement",
                        choices=["create-latency", "echo-latency", "stop-latency", "throughput",
                                 "py-create-latency", "py-throughput", "py-rss",
                                 "docker-run-latency"])
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--lines", type=int, default=20000)
    parser.add_argument("--pid", type=int, help="the runtime's pid (py-rss)")
    parser.add_argument("--modules", type=int, default=10, help="modules running (py-rss)")
    parser.add_argument("--engine", default="docker", help="docker-run-latency")
    parser.add_argument("--image", default="slframework/slruntime-python-runner:latest",
                        help="docker-run-latency")
    parser.add_argument("--folder", help="program folder with hello.py (docker-run-latency)")
    args = parser.parse_args()

    if args.measurement == "docker-run-latency":
        if not args.folder:
            parser.error("docker-run-latency needs --folder")
        try:
            docker_run_latency(args.engine, args.image, args.folder, args.runs)
        except (RuntimeError, OSError, subprocess.SubprocessError) as error:
            print(f"docker-run-latency: {error}", file=sys.stderr)
            return 1
        return 0
    if args.measurement == "py-rss" and args.pid is None:
        parser.error("py-rss needs --pid")

    client = MiniMqtt(args.host, args.port, f"bench-{uuid.uuid4()}")
    runtime = Runtime(client, args.realm, args.runtime)
    client.subscribe(runtime.control)
    if args.measurement.startswith("py-"):
        client.subscribe(runtime.log)
    try:
        if args.measurement == "create-latency":
            create_latency(runtime, args.runs)
        elif args.measurement == "echo-latency":
            echo_latency(runtime, args.runs)
        elif args.measurement == "stop-latency":
            stop_latency(runtime, args.runs)
        elif args.measurement == "py-create-latency":
            py_create_latency(runtime, args.runs)
        elif args.measurement == "py-throughput":
            py_throughput(runtime, args.lines)
        elif args.measurement == "py-rss":
            py_rss(runtime, args.pid, args.modules)
        else:
            throughput(runtime, args.lines)
    except (TimeoutError, RuntimeError) as error:
        print(f"{args.measurement}: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
