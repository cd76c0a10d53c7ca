"""Run the fault trials (tests/faults) with more repeats and print the table.

    .venv/bin/python bench/faults.py [--trials 10] [-k EXPR]

Set DATABASE_URL (a PostgreSQL of your own) to include the database cut and the database
hang, which SQLite cannot have. Columns: fault, trials, lost grades, duplicated grades, and
how long after the fault was over the affected run was moving again (p50 / max, seconds).
Then the hostile learner's attacks (tests/faults/test_containment_trials.py; `-k containment`
runs them alone): how many trials ended with the verdict each must get.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=10)
    parser.add_argument("-k", default="", help="pytest -k expression, to run some faults only")
    args = parser.parse_args()
    report = Path(tempfile.mkstemp(prefix="faults-", suffix=".jsonl")[1])
    env = {
        **os.environ,
        "ACADEMY_FAULT_TRIALS": str(args.trials),
        "ACADEMY_FAULT_REPORT": str(report),
    }
    command = [sys.executable, "-m", "pytest", "tests/faults", "-q", "-p", "no:randomly"]
    if args.k:
        command += ["-k", args.k]
    status = subprocess.run(command, cwd=ROOT, env=env, check=False).returncode

    sys.path.insert(0, str(ROOT))
    from tests.faults.report import ContainmentRecord, TrialRecord, containment_table, fault_table

    records: list[TrialRecord] = []
    attacks: list[ContainmentRecord] = []
    for line in report.read_text().splitlines():
        fields = json.loads(line)
        if fields.pop("kind", "TrialRecord") == "ContainmentRecord":
            attacks.append(ContainmentRecord(**fields))
        else:
            records.append(TrialRecord(**fields))
    if records:
        print()
        for line in fault_table(records):
            print(line)
    if attacks:
        print()
        for line in containment_table(attacks):
            print(line)
        print("\nper attack trial:")
        for attack in attacks:
            print(f"  {attack.attack} #{attack.trial}: {attack.seen} ({attack.detail})")
    if records:
        print("\nper trial:")
    for record in records:
        recovered = "-" if record.recovered_s is None else f"{record.recovered_s:.1f}s"
        print(f"  {record.fault} #{record.trial}: {record.detail} (recovered {recovered})")
    return status


if __name__ == "__main__":
    sys.exit(main())
