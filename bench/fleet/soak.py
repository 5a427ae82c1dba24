#!/usr/bin/env python3
"""A soak run of a small fleet under faults (bounded: --minutes, default 10): three boards at
full frame rate (OSNet x0.25 on the same two people, their folders replayed without pause),
their fleet sync on, one Mosquitto with persistence that is restarted every --broker-every
seconds (30), and one board after another SIGKILLed and started again every --kill-every
seconds (120).

It checks what the product promises and prints it:
- no result lost: a persistent subscriber (clean session off, QoS 1) collects every result;
  each run of each board (`run` in the record) must have every `seq` from its first to its
  last (duplicates are allowed: at least once). Records produced after the last append to the
  spool before a SIGKILL were never results; a gap inside a run is a loss;
- the galleries converge: after the faults stop, every board holds the same confirmed ids, and
  as many as people seen;
- memory stays flat: each board's resident memory every 5 s, plotted (--plot) and summed up
  as the growth between the second minute and the end (a restarted board starts again).

    /tmp/fleet-venv/bin/python bench/fleet/soak.py --edgevit target/release/edgevit --plot soak.png
"""

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import fleet  # noqa: E402  (the harness's brokers and boards)


class Subscriber:
    """mosquitto_sub with a persistent session: results queued while it or the broker is away
    arrive when both are back. It is started again whenever it exits (broker restarts)."""

    def __init__(self, port, out):
        self.port, self.out = port, out
        self.stop = False
        self.thread = threading.Thread(target=self.loop, daemon=True)
        self.thread.start()

    def loop(self):
        with open(self.out, "a") as out:
            while not self.stop:
                self.process = subprocess.Popen(
                    ["mosquitto_sub", "-h", "127.0.0.1", "-p", str(self.port), "-i", "soak-results",
                     "-c", "-q", "1", "-t", "edgevit/+/+/result"],
                    stdout=out,
                    stderr=subprocess.DEVNULL,
                )
                self.process.wait()
                time.sleep(0.2)

    def close(self):
        self.stop = True
        self.process.terminate()


def lost(results):
    """Gaps inside each (device, camera, run): seqs between a run's first and last not seen."""
    runs = {}
    for line in results.read_text().splitlines():
        try:
            r = json.loads(line)
        except json.JSONDecodeError:
            continue
        runs.setdefault((r.get("camera"), r["run"]), set()).add(r["seq"])
    gaps = sum((max(s) - min(s) + 1) - len(s) for s in runs.values())
    return gaps, sum(len(s) for s in runs.values()), len(runs)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--edgevit", default=str(fleet.REPO / "target/release/edgevit"))
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--broker-every", type=float, default=30.0)
    parser.add_argument("--kill-every", type=float, default=120.0)
    parser.add_argument("--plot", type=Path, help="write the RSS plot (PNG) here")
    parser.add_argument("--json", type=Path, help="write the figures and RSS samples here")
    parser.add_argument("--keep", action="store_true", help="keep the folder (logs, spools, results)")
    args = parser.parse_args()
    shared = Path(os.environ.get("EDGEVIT_SHARED_DIR", fleet.REPO.parent / "shared"))
    root = Path(tempfile.mkdtemp(prefix="soak-"))
    port = fleet.free_port()
    broker_dir = root / "broker"
    broker = fleet.Broker(broker_dir, port, persistent=True)
    results = root / "results.jsonl"
    subscriber = Subscriber(port, results)
    time.sleep(1)
    model = fleet.osnet_package(root / "osnet", shared)
    boards = []
    for i, name in enumerate(["door", "hall", "yard"]):
        board = fleet.Board(root, model, name, port, args.edgevit)
        text = board.config.read_text().replace(f"fps = {fleet.FPS}", "fps = 0")
        board.config.write_text(text)
        fleet.camera_folder(board.images, shared, i, fleet.PEOPLE)
        boards.append(board)
        board.start()
    start = time.monotonic()
    rss = {b.name: [] for b in boards}
    events = []
    next_broker, next_kill, kill_at = args.broker_every, args.kill_every, 0
    try:
        while (now := time.monotonic() - start) < args.minutes * 60:
            for b in boards:
                if b.process.poll() is None:
                    rss[b.name].append((now, b.rss_mib()))
                elif b.process.returncode != -signal.SIGKILL:
                    sys.exit(f"{b.name} exited ({b.process.returncode}): see {b.log.name}")
            if now >= next_broker:
                broker.stop()
                time.sleep(1)
                broker = fleet.Broker(broker_dir, port, persistent=True)
                events.append((now, "broker restarted"))
                next_broker += args.broker_every
            if now >= next_kill:
                victim = boards[kill_at % len(boards)]
                victim.process.kill()
                victim.process.wait()
                victim.start()
                events.append((now, f"{victim.name} killed and started"))
                next_kill += args.kill_every
                kill_at += 1
            time.sleep(5 - (time.monotonic() - start - now) % 5)
        # The faults end: the boards stop cleanly, their spools drained; the subscriber drains.
        for b in boards:
            b.stop()
        time.sleep(5)
        same = [b.identities() for b in boards]
    finally:
        for b in boards:
            b.stop()
        subscriber.close()
        broker.stop()
    gaps, delivered, runs = lost(results)
    labels = [sorted(s) for s in same]
    growth = {
        name: (max(v for t, v in samples if t >= args.minutes * 60 - 60) - min(v for t, v in samples if 60 <= t <= 120))
        for name, samples in rss.items()
        if samples
    }
    figures = {
        "minutes": args.minutes,
        "results_delivered": delivered,
        "runs": runs,
        "results_lost": gaps,
        "galleries": labels,
        "converged": all(l == labels[0] for l in labels) and len(labels[0]) == len(fleet.PEOPLE),
        "rss_growth_mib": growth,
        "events": events,
    }
    print(json.dumps({k: v for k, v in figures.items() if k != "events"}, indent=1))
    if args.json:
        args.json.write_text(json.dumps({**figures, "rss": rss}, indent=1))
    if args.plot:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(8, 3.5))
        for name, samples in rss.items():
            ax.plot([t / 60 for t, _ in samples], [v for _, v in samples], label=name)
        for t, what in events:
            if "killed" in what:
                ax.axvline(t / 60, color="grey", lw=0.5, ls="--")
        ax.set_xlabel("minutes (dashed: a board SIGKILLed and started again; the broker restarts every "
                      f"{args.broker_every:.0f} s)", fontsize=8)
        ax.set_ylabel("resident memory (MiB)")
        ax.set_ylim(bottom=0)
        ax.legend()
        fig.tight_layout()
        fig.savefig(args.plot, dpi=110)
    if args.keep:
        print(f"kept {root}", file=sys.stderr)
    else:
        shutil.rmtree(root, ignore_errors=True)
    sys.exit(0 if gaps == 0 and figures["converged"] else 1)


if __name__ == "__main__":
    main()
