"""A pure scaling simulation: Reflector's file pipeline against the file transcriber and the
diarizer, fed an arrival trace (``bench/traces/*.json``), under one set of admission and scaling
settings. Prints replicas over time, queue waits, 503s and timeouts; ``python -m bench scaling``
compares the defaults before issue 17 with the new ones.

The model (docs/scaling.md, "Simulation", has the figures):

- each meeting posts a file transcription when it ends, then, when that succeeds, a diarization
  (Reflector: ``file_transcript_modal.py`` then ``file_diarization_modal.py``; httpx timeout
  600 s, no retry: a 503 or a timeout fails the meeting);
- a request needs ``fixed_s + per_hour_s * hours of audio`` seconds of the pod alone; the requests
  in flight on a pod share it equally (processor sharing); ``maxInFlight`` of them at once, then
  ``maxQueued`` wait FIFO, then 503;
- a request still unfinished ``timeout_s`` after it was sent is abandoned by the client (and
  cancelled on the pod);
- requests go round-robin to ready pods (a Service);
- KEDA (``keda``): every ``poll_s`` the desired replicas are ``ceil((in flight + queued) /
  targetInFlight)`` within min..max; scaling up takes effect at once, a new pod is ready
  ``pod_start_s`` later (node, image, model load); scaling down waits for the HPA's 300 s
  stabilisation window and removes idle pods only;
- ``hpa`` on CPU and ``none``: the replica count stays at ``minReplicas`` (a GPU-bound pod does
  not reach 80 % of its CPU request, so the HPA never scales it).
"""

from __future__ import annotations

import json
import math
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path

TRACES = Path(__file__).resolve().parent / "traces"
DT = 0.5


@dataclass(frozen=True)
class Component:
    """One InferenceService: its cost model and its admission / scaling settings."""

    name: str
    fixed_s: float  #: download + decode + model overhead per request
    per_hour_s: float  #: pod-alone seconds per hour of audio
    max_in_flight: int
    max_queued: int
    min_replicas: int = 1
    max_replicas: int = 1
    keda: bool = False
    target_in_flight: int = 1
    timeout_s: float = 600.0
    poll_s: float = 30.0
    pod_start_s: float = 240.0
    scale_down_window_s: float = 300.0


@dataclass
class Request:
    meeting: int
    sent: float
    demand: float
    left: float
    started: float | None = None
    finished: float | None = None
    outcome: str = ""  #: ok, 503, timeout


@dataclass
class Pod:
    ready_at: float
    running: list[Request] = field(default_factory=list)
    queue: deque[Request] = field(default_factory=deque)


class Pool:
    def __init__(self, comp: Component):
        self.comp = comp
        self.pods = [Pod(0.0) for _ in range(comp.min_replicas)]
        self.next_pod = 0
        self.requests: list[Request] = []
        self.desired_history: list[tuple[float, int]] = []
        self.replicas: list[tuple[float, int]] = [(0.0, comp.min_replicas)]
        self.next_poll = 0.0

    def submit(self, req: Request, now: float) -> None:
        self.requests.append(req)
        ready = [p for p in self.pods if p.ready_at <= now]
        pod = ready[self.next_pod % len(ready)]
        self.next_pod += 1
        c = self.comp
        if len(pod.running) < c.max_in_flight and not pod.queue:
            req.started = now
            pod.running.append(req)
        elif len(pod.queue) < c.max_queued:
            pod.queue.append(req)
        else:
            req.outcome, req.finished = "503", now

    def step(self, now: float, done: list[Request]) -> None:
        c = self.comp
        for pod in self.pods:
            for req in [*pod.running, *pod.queue]:
                if now - req.sent >= c.timeout_s:
                    req.outcome, req.finished = "timeout", now
                    (pod.running if req in pod.running else pod.queue).remove(req)
            share = DT / len(pod.running) if pod.running else 0.0
            for req in list(pod.running):
                req.left -= share
                if req.left <= 0:
                    req.outcome, req.finished = "ok", now
                    pod.running.remove(req)
                    done.append(req)
            while pod.queue and len(pod.running) < c.max_in_flight:
                req = pod.queue.popleft()
                req.started = now
                pod.running.append(req)
        if c.keda and now >= self.next_poll:
            self.next_poll = now + c.poll_s
            self._autoscale(now)

    def _autoscale(self, now: float) -> None:
        c = self.comp
        load = sum(len(p.running) + len(p.queue) for p in self.pods)
        desired = min(c.max_replicas, max(c.min_replicas, math.ceil(load / c.target_in_flight)))
        self.desired_history.append((now, desired))
        window = [d for t, d in self.desired_history if now - t <= c.scale_down_window_s]
        target = max(desired, max(window))  # scale down only to the window's highest
        if target > len(self.pods):
            self.pods += [Pod(now + c.pod_start_s) for _ in range(target - len(self.pods))]
        while target < len(self.pods):
            idle = next((p for p in reversed(self.pods) if not p.running and not p.queue), None)
            if idle is None:
                break
            self.pods.remove(idle)
        if len(self.pods) != self.replicas[-1][1]:
            self.replicas.append((now, len(self.pods)))

    def busy(self) -> bool:
        return any(p.running or p.queue for p in self.pods)


@dataclass
class Result:
    name: str
    sent: int
    ok: int
    refused: int
    timed_out: int
    p50_wait_s: float
    p95_wait_s: float
    max_wait_s: float
    replicas: list[tuple[float, int]]


def load_trace(name: str = "meetings_12_in_10min") -> dict:
    return dict(json.loads((TRACES / f"{name}.json").read_text()))


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (0 for no values)."""
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q / 100 * len(ordered)) - 1)]


def simulate(trace: dict, transcriber: Component, diarizer: Component) -> tuple[Result, Result, int]:
    """(file transcriber result, diarizer result, meetings that got both answers)."""
    meetings = sorted(enumerate(trace["meetings"]), key=lambda m: m[1]["ends_at_s"])
    hours = {i: m["minutes"] / 60 for i, m in meetings}
    pools = {"t": Pool(transcriber), "d": Pool(diarizer)}
    pending = deque(meetings)
    now = 0.0
    while pending or pools["t"].busy() or pools["d"].busy():
        while pending and pending[0][1]["ends_at_s"] <= now:
            i, _ = pending.popleft()
            demand = transcriber.fixed_s + transcriber.per_hour_s * hours[i]
            pools["t"].submit(Request(i, now, demand, demand), now)
        done: list[Request] = []
        pools["t"].step(now, done)
        for req in done:  # transcription done: the pipeline sends the diarization
            demand = diarizer.fixed_s + diarizer.per_hour_s * hours[req.meeting]
            pools["d"].submit(Request(req.meeting, now, demand, demand), now)
        pools["d"].step(now, [])
        now += DT
    ok_meetings = {r.meeting for r in pools["d"].requests if r.outcome == "ok"}

    def result(pool: Pool) -> Result:
        reqs = pool.requests
        waits = [r.started - r.sent for r in reqs if r.started is not None]
        return Result(
            pool.comp.name,
            len(reqs),
            sum(r.outcome == "ok" for r in reqs),
            sum(r.outcome == "503" for r in reqs),
            sum(r.outcome == "timeout" for r in reqs),
            percentile(waits, 50),
            percentile(waits, 95),
            max(waits, default=0.0),
            pool.replicas,
        )

    return result(pools["t"]), result(pools["d"]), len(ok_meetings)


# --- the settings compared -----------------------------------------------------------------------
#: Pod-alone cost per hour of audio (docs/scaling.md): Parakeet TDT 0.6B on the file pool,
#: pyannote 3.1 (2.5 % real-time factor, its model card) on the diarizer; 10 s download + decode.
FILE_COST = {"fixed_s": 10.0, "per_hour_s": 36.0}
DIARIZE_COST = {"fixed_s": 10.0, "per_hour_s": 90.0}
MAX_REPLICAS = 3


def scenarios() -> dict[str, tuple[Component, Component]]:
    """Before issue 17 (targetConcurrency 2 / 1 as the whole admission, CPU HPA that does not
    move), the new admission on fixed replicas, and the new admission with KEDA."""
    return {
        "before (targetConcurrency 2 / 1, CPU HPA)": (
            Component("transcriber-file", **FILE_COST, max_in_flight=2, max_queued=0, max_replicas=MAX_REPLICAS),
            Component("diarizer", **DIARIZE_COST, max_in_flight=1, max_queued=0, max_replicas=MAX_REPLICAS),
        ),
        "new admission, autoscaling none (1 replica)": (
            Component("transcriber-file", **FILE_COST, max_in_flight=2, max_queued=8),
            Component("diarizer", **DIARIZE_COST, max_in_flight=1, max_queued=4),
        ),
        f"new admission + KEDA (targetInFlight = maxInFlight, 1..{MAX_REPLICAS} replicas)": (
            Component(
                "transcriber-file",
                **FILE_COST,
                max_in_flight=2,
                max_queued=8,
                max_replicas=MAX_REPLICAS,
                keda=True,
                target_in_flight=2,
            ),
            Component(
                "diarizer",
                **DIARIZE_COST,
                max_in_flight=1,
                max_queued=4,
                max_replicas=MAX_REPLICAS,
                keda=True,
                target_in_flight=1,
            ),
        ),
    }


def report(trace: dict) -> list[str]:
    lines = [f"trace: {trace['name']} ({len(trace['meetings'])} meetings)"]
    for label, (file_comp, diar_comp) in scenarios().items():
        file_res, diar_res, ok = simulate(trace, file_comp, diar_comp)
        lines.append(f"{label}: {ok}/{len(trace['meetings'])} meetings complete")
        for r in (file_res, diar_res):
            steps = " ".join(f"{t:.0f}s:{n}" for t, n in r.replicas)
            lines.append(
                f"  {r.name:17} sent {r.sent:2}  ok {r.ok:2}  503 {r.refused:2}  timeout {r.timed_out:2}  "
                f"queue wait p50 {r.p50_wait_s:5.0f} s  p95 {r.p95_wait_s:5.0f} s  max {r.max_wait_s:5.0f} s  "
                f"replicas {steps}"
            )
    return lines


def main() -> None:
    print("\n".join(report(load_trace())))


if __name__ == "__main__":
    main()
