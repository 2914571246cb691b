"""The pure scaling simulation (bench/scaling_sim.py) on the recorded-by-hand trace: the defaults
before issue 17 refuse meetings, the new admission queues them, KEDA adds replicas."""

from __future__ import annotations

import sys

from support import REPO

sys.path.insert(0, str(REPO))

from bench import scaling_sim as sim  # noqa: E402
from rgpu_operator import components  # noqa: E402


def test_the_trace_is_twelve_meetings_in_ten_minutes_with_its_source():
    trace = sim.load_trace()
    assert len(trace["meetings"]) == 12
    assert max(m["ends_at_s"] for m in trace["meetings"]) < 600
    assert "file_transcript_modal.py" in trace["source"] and "not tuned" in trace["source"]


def test_the_simulated_defaults_are_the_operators():
    file_new, diar_new = next(comps for label, comps in sim.scenarios().items() if "KEDA" in label)
    assert (file_new.max_in_flight, file_new.max_queued) == components.ADMISSION["transcriber-file"]
    assert (diar_new.max_in_flight, diar_new.max_queued) == components.ADMISSION["diarizer"]


def test_old_defaults_refuse_meetings_new_ones_queue_and_keda_scales():
    trace = sim.load_trace()
    results = {label: sim.simulate(trace, *comps) for label, comps in sim.scenarios().items()}
    before, fixed, keda = results.values()
    refused = lambda res: res[0].refused + res[1].refused  # noqa: E731
    assert refused(before) > 0 and before[2] < 12, "the old single limit refused concurrent meetings"
    assert refused(fixed) < refused(before)
    assert fixed[0].p95_wait_s > 0, "the new admission queues"
    assert refused(keda) == 0 and keda[0].timed_out == keda[1].timed_out == 0 and keda[2] == 12
    assert max(n for _, n in keda[1].replicas) > 1, "KEDA added diarizer replicas"
    assert results == {label: sim.simulate(trace, *comps) for label, comps in sim.scenarios().items()}
