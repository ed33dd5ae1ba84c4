"""The reliability catalogue (docs/reliability.md), written by the tests that check it: each case is a
`@pytest.mark.reliability(number, case, expected)` on the tests that show it, and

    .venv/bin/python -m pytest -n 2 --dist loadfile -m reliability --reliability-table reliability.md

writes the table from their outcomes (tests/conftest.py gathers them, also from xdist workers). No second copy of
the cases: what the table says happened is what the tests asserted.
"""

from __future__ import annotations

import json
from collections import defaultdict

PROPERTY = "reliability"


def case_property(marker) -> tuple[str, str]:
    """The user property a marked test carries to the process that writes the table."""
    number, case, expected = marker.args
    return PROPERTY, json.dumps({"number": number, "case": case, "expected": expected})


def table(reports: list) -> str:
    """Markdown: one row per case, the tests that check it and what they did (the call's outcome, or the set-up's
    where it failed or skipped)."""
    cases, outcomes = {}, defaultdict(dict)
    for report in reports:
        for name, value in report.user_properties:
            if name != PROPERTY:
                continue
            case = json.loads(value)
            cases[case["number"]] = case
            if report.when == "call" or report.outcome != "passed":
                outcomes[case["number"]][report.nodeid] = report.outcome
    rows = ["| # | case | expected | checked by | outcome |", "| ---: | --- | --- | --- | --- |"]
    as_expected = 0
    for number in sorted(cases):
        tests = outcomes[number]
        files = sorted({nodeid.split("[")[0].removeprefix("tests/") for nodeid in tests})
        counts = {o: sum(v == o for v in tests.values()) for o in ("passed", "failed", "skipped")}
        ok = counts["passed"] and not counts["failed"]
        as_expected += bool(ok)
        outcome = ", ".join(f"{n} {o}" for o, n in counts.items() if n)
        rows.append(f"| {number} | {cases[number]['case']} | {cases[number]['expected']} | "
                    f"{'<br>'.join(f'`{f}`' for f in files)} | {'as expected' if ok else '**NOT**'}: {outcome} |")
    rows.append(f"\n{as_expected} of {len(cases)} cases as expected")
    return "\n".join(rows) + "\n"
