#!/usr/bin/env python3
"""A fleet of edgevit boards on one machine, through real Mosquitto brokers: how long the fleet
takes to agree, what the broker holds, what the sync costs a board.

For each number of boards (--boards, default 2,5,10,20) and broker layout (--layouts: `one`,
every board on one Mosquitto; `bridged`, the boards split between two Mosquitto brokers joined
by a bridge, `topic edgevit/# both 1`, as sites are joined), it starts N `edgevit run`
processes, each with its own state folder, gallery and camera folder (OSNet x0.25 from
../shared; the same two people, each camera its own crop, mirror and light; 2 frames a second,
the folder replayed), and measures:

- settle: from the start until every board holds the same confirmed ids (model loading
  included), and the duplicates then (ids beyond the people seen: must be 0);
- new: a third person appears in board 0's folder; from board 0's id for it being confirmed
  until every board has it;
- rename, merge, forget: `edgevit gallery rename|merge|forget --config` on the last board (a
  board on the other broker when bridged); from the command until every board shows it;
- the retained gallery messages on the broker (bytes in all, per identity, messages per id);
- CPU and memory: each board's MQTT thread (the sync: `mqtt` in /proc) and whole process CPU
  over a quiet 20 s, and its resident memory.

Nothing here is asserted: it prints a Markdown table and writes the figures as JSON (--json).
Not run in CI (minutes per layout); tests/reid_gallery.rs runs three boards, one broker and a
bridged pair.

    python3 -m venv /tmp/fleet-venv && /tmp/fleet-venv/bin/pip install -r bench/fleet/requirements.txt
    cargo build --release
    /tmp/fleet-venv/bin/python bench/fleet/fleet.py --edgevit target/release/edgevit
"""

import argparse
import json
import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from PIL import Image, ImageEnhance, ImageOps

REPO = Path(__file__).resolve().parents[2]
PEOPLE = [("astronaut", "astronaut.png"), ("grace", "grace_hopper.bmp")]
NEWCOMER = ("chelsea", "chelsea.png")
FPS = 2.0
# OSNet puts the two people of these portraits (not the pedestrians it was trained on) up to
# 0.62 apart, and one person under the cameras' crops and light at 0.84 or more: at the default
# 0.6 a board can take one in as the other, which no fleet rule undoes. 0.7 keeps them apart.
THRESHOLD = 0.7


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, timeout=10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    sys.exit(f"mosquitto on port {port} did not start")


class Broker:
    def __init__(self, folder, port, extra="", persistent=False):
        folder.mkdir(parents=True, exist_ok=True)
        conf = folder / "mosquitto.conf"
        # Run as root, Mosquitto drops to its own user, which cannot write into a temporary
        # folder of root's: it would lose its queues at a restart without a word but its log's.
        keep = f"user root\npersistence true\npersistence_location {folder}/\nautosave_interval 1\n"
        conf.write_text(
            f"listener {port} 127.0.0.1\nallow_anonymous true\n"
            f"{keep if persistent else 'persistence false'}\nmax_queued_messages 100000\n{extra}"
        )
        self.port = port
        self.process = subprocess.Popen(
            ["mosquitto", "-c", str(conf)],
            stdout=subprocess.DEVNULL,
            stderr=open(folder / "mosquitto.log", "w"),
        )
        wait_port(port)

    def stop(self):
        self.process.terminate()
        self.process.wait()


def views(photo, index):
    """The two views board `index`'s camera gives of one photo: its own crop, mirror, light."""
    image = Image.open(photo).convert("RGB")
    if index % 2:
        image = ImageOps.mirror(image)
    w, h = image.size
    shift = (index % 5) * 0.02
    out = []
    for k, (left, top, scale, gain) in enumerate(
        [(shift, shift, 0.9, 1.0 + 0.05 * (index % 3)), (0.05, 0.05 + shift / 2, 0.85, 0.9)]
    ):
        box = (int(left * w), int(top * h), int((left + scale) * w), int((top + scale) * h))
        out.append(ImageEnhance.Brightness(image.crop(box)).enhance(gain))
    return out


def camera_folder(folder, shared, index, people):
    folder.mkdir(parents=True, exist_ok=True)
    for p, (person, file) in enumerate(people):
        for v, picture in enumerate(views(shared / "reference/images" / file, index)):
            picture.save(folder / f"{v:02}-{p}-{person}.png")


def osnet_package(folder, shared):
    folder.mkdir(parents=True, exist_ok=True)
    onnx = shared / "reference/osnet/osnet_x0_25_msmt17.onnx"
    (folder / "model.toml").write_text(
        f'name = "osnet_x0_25_msmt17"\ntask = "reid"\nonnx = "{onnx}"\n'
        '[input]\nname = "images"\nshape = [1, 3, 256, 128]\ncolor = "rgb"\n'
        "mean = [0.485, 0.456, 0.406]\nstd = [0.229, 0.224, 0.225]\n"
        '[outputs]\nembedding = "output"\n'
    )
    return folder


class Board:
    def __init__(self, root, model, name, port, edgevit):
        self.name = name
        self.state = root / name
        self.images = root / f"{name}-cam"
        self.config = root / f"{name}.toml"
        self.config.write_text(
            f'state_dir = "{self.state}"\n[model]\npath = "{model}"\n'
            f'[source]\nkind = "image-dir"\npath = "{self.images}"\ncamera = "{name}-cam"\n'
            f"loop = true\nfps = {FPS}\n"
            f"[gallery]\nfleet = true\nthreshold = {THRESHOLD}\n"
            f'[sink]\nkind = "mqtt"\nhost = "127.0.0.1"\nport = {port}\ndevice = "{name}"\n'
            f'[sink.spool]\npath = "{self.state / "spool"}"\n'
        )
        self.edgevit = edgevit
        self.log = open(root / f"{name}.log", "w")
        self.process = None

    def start(self):
        self.process = subprocess.Popen(
            [self.edgevit, "run", "--config", str(self.config)],
            stdout=self.log,
            stderr=subprocess.STDOUT,
            env={**os.environ, "RUST_LOG": "warn,edgevit::gallery=info,edgevit::sink::mqtt::fleet_sync=info"},
        )

    def stop(self):
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def identities(self):
        """{label: name} of the confirmed identities in this board's gallery file."""
        path = self.state / "gallery.sqlite"
        if not path.exists():
            return {}
        try:
            db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=1)
            rows = db.execute("SELECT label, name FROM identity WHERE confirmed = 1").fetchall()
            db.close()
            return dict(rows)
        except sqlite3.Error:
            return None

    def gallery(self, *args):
        out = subprocess.run(
            [self.edgevit, "gallery", *args[:1], "--config", str(self.config), *args[1:]],
            capture_output=True,
            text=True,
        )
        if out.returncode != 0:
            print(f"{self.name}: edgevit gallery {' '.join(args)} failed: {out.stderr}", file=sys.stderr)
        return out.returncode == 0

    def cpu_seconds(self, thread=None):
        """CPU seconds of the process, or of its thread named `thread`."""
        ticks = os.sysconf("SC_CLK_TCK")
        base = Path(f"/proc/{self.process.pid}")
        stats = [base / "stat"]
        if thread:
            stats = [t / "stat" for t in (base / "task").iterdir() if (t / "comm").read_text().strip() == thread]
        total = 0
        for stat in stats:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])
        return total / ticks

    def rss_mib(self):
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        return 0.0


def wait_until(boards, done, timeout):
    """Seconds until done(list of each board's identities) holds, or None at the timeout."""
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        seen = [b.identities() for b in boards]
        if all(s is not None for s in seen) and done(seen):
            return time.monotonic() - start
        for b in boards:
            if b.process.poll() is not None:
                sys.exit(f"{b.name} exited ({b.process.returncode}): see {b.log.name}")
        time.sleep(0.05)
    return None


def retained(port):
    """(topic, payload length, a tombstone?) of every retained gallery message on the broker."""
    out = subprocess.run(
        ["mosquitto_sub", "-h", "127.0.0.1", "-p", str(port), "-t", "edgevit/gallery/#",
         "--retained-only", "-W", "2", "-v"],
        capture_output=True,
        text=True,
    )
    rows = []
    for line in out.stdout.splitlines():
        topic, payload = line.split(" ", 1)
        rows.append((topic, len(payload.encode()), json.loads(payload).get("removed", False)))
    return rows


def scenario(args, shared, count, layout):
    root = Path(tempfile.mkdtemp(prefix=f"fleet-{count}-{layout}-"))
    ports = [free_port(), free_port()]
    brokers = [Broker(root / "broker-a", ports[0])]
    if layout == "bridged":
        brokers.append(
            Broker(
                root / "broker-b",
                ports[1],
                f"connection site-a\naddress 127.0.0.1:{ports[0]}\ntopic edgevit/# both 1\n"
                "cleansession true\nrestart_timeout 1\n",
            )
        )
    model = osnet_package(root / "osnet", shared)
    boards = []
    for i in range(count):
        port = brokers[i % len(brokers)].port
        board = Board(root, model, f"board{i:02}", port, args.edgevit)
        camera_folder(board.images, shared, i, PEOPLE)
        boards.append(board)
    figures = {"boards": count, "layout": layout}
    try:
        for b in boards:
            b.start()
        same = lambda seen: len(seen[0]) >= len(PEOPLE) and all(s.keys() == seen[0].keys() for s in seen)
        figures["settle_s"] = wait_until(boards, same, args.timeout * 3)
        labels = set().union(*(b.identities().keys() for b in boards))
        figures["duplicates"] = len(labels) - len(PEOPLE)

        # A newcomer at board 0 only.
        before = set(boards[0].identities())
        camera_folder(boards[0].images, shared, 0, [NEWCOMER])
        new = lambda seen: set(seen[0]) - before
        if wait_until(boards[:1], new, args.timeout) is None:
            sys.exit("board 0 never confirmed the newcomer")
        (newcomer,) = set(boards[0].identities()) - before
        figures["new_s"] = wait_until(boards, lambda seen: all(newcomer in s for s in seen), args.timeout)

        # Quiet: the sync's cost, no change going on.
        t0 = [(b.cpu_seconds(), b.cpu_seconds("mqtt")) for b in boards]
        time.sleep(20)
        t1 = [(b.cpu_seconds(), b.cpu_seconds("mqtt")) for b in boards]
        figures["cpu_process_pct"] = max(100 * (b[0] - a[0]) / 20 for a, b in zip(t0, t1))
        figures["cpu_mqtt_pct"] = max(100 * (b[1] - a[1]) / 20 for a, b in zip(t0, t1))
        figures["rss_mib"] = max(b.rss_mib() for b in boards)

        # The changes are made at the last board (on the other broker when bridged), on ids
        # it holds; each is timed until every board shows it (None: not within --timeout).
        last = boards[-1]
        held = set(last.identities())

        def timed(command, done):
            start = time.monotonic()
            if not last.gallery(*command):
                return None
            waited = wait_until(boards, done, args.timeout)
            return None if waited is None else time.monotonic() - start

        someone = sorted(held - {newcomer})[0]
        figures["rename_s"] = timed(
            ("rename", someone, "carol"), lambda seen: all(s.get(someone) == "carol" for s in seen)
        )
        figures["merge_s"] = timed(
            ("merge", someone, newcomer),
            lambda seen: all(newcomer not in s and someone in s for s in seen),
        )
        others = sorted(set(last.identities()) - {someone})
        figures["forget_s"] = others and timed(("forget", others[0]), lambda seen: all(others[0] not in s for s in seen)) or None
        time.sleep(2)
        held = retained(ports[0])
        ids = {t.rsplit("/", 1)[1] for t, _, _ in held}
        people = [n for _, n, removed in held if not removed]
        tombstones = [n for _, n, removed in held if removed]
        figures["retained_messages"] = len(held)
        figures["retained_bytes"] = sum(n for _, n, _ in held)
        figures["retained_ids"] = len(ids)
        lanes = {}
        for topic, _, removed in held:
            lane, id_level = topic.split("/")[-2:]
            lanes.setdefault(id_level, []).append(f"{lane}{' (tombstone)' if removed else ''}")
        figures["ids_with_several_messages"] = {i: l for i, l in lanes.items() if len(l) > 1}
        figures["identity_messages"] = len(people)
        figures["bytes_per_identity"] = sum(people) / max(1, len(people))
        figures["tombstones"] = len(tombstones)
        figures["bytes_per_tombstone"] = sum(tombstones) / max(1, len(tombstones))
    finally:
        for b in boards:
            b.stop()
        for broker in brokers:
            broker.stop()
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)
        else:
            print(f"kept {root}", file=sys.stderr)
    return figures


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--edgevit", default=str(REPO / "target/release/edgevit"))
    parser.add_argument("--boards", default="2,5,10,20")
    parser.add_argument("--layouts", default="one,bridged")
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds per step at most")
    parser.add_argument("--json", type=Path, help="write the figures here")
    parser.add_argument("--keep", action="store_true", help="keep each scenario's folder (logs)")
    args = parser.parse_args()
    shared = Path(os.environ.get("EDGEVIT_SHARED_DIR", REPO.parent / "shared"))
    if not (shared / "reference/osnet").is_dir():
        sys.exit(f"the reference models are not in {shared}: set EDGEVIT_SHARED_DIR")
    for tool in ["mosquitto", "mosquitto_sub"]:
        if not shutil.which(tool):
            sys.exit(f"{tool} is not installed (Debian: apt-get install mosquitto mosquitto-clients)")
    results = []
    for count in [int(n) for n in args.boards.split(",")]:
        for layout in args.layouts.split(","):
            print(f"{count} boards, {layout} broker(s) ...", file=sys.stderr, flush=True)
            results.append(scenario(args, shared, count, layout))
            print(json.dumps(results[-1]), file=sys.stderr, flush=True)
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))
    fmt = lambda v, spec: "-" if v is None else format(v, spec)
    print("| boards | brokers | settle (s) | duplicates | new id to all (s) | rename (s) | merge (s) | forget (s) "
          "| bytes / identity | bytes / tombstone | retained in all | messages / id | MQTT thread CPU | process CPU | RSS (MiB) |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for r in results:
        print(
            f"| {r['boards']} | {r['layout']} | {fmt(r.get('settle_s'), '.1f')} | {r.get('duplicates')} "
            f"| {fmt(r.get('new_s'), '.2f')} | {fmt(r.get('rename_s'), '.2f')} | {fmt(r.get('merge_s'), '.2f')} "
            f"| {fmt(r.get('forget_s'), '.2f')} | {fmt(r.get('bytes_per_identity'), '.0f')} "
            f"| {fmt(r.get('bytes_per_tombstone'), '.0f')} | {r.get('retained_bytes')} B "
            f"| {r.get('retained_messages', 0) / max(1, r.get('retained_ids', 1)):.2f} "
            f"| {fmt(r.get('cpu_mqtt_pct'), '.2f')}% | {fmt(r.get('cpu_process_pct'), '.1f')}% | {fmt(r.get('rss_mib'), '.0f')} |"
        )


if __name__ == "__main__":
    main()
