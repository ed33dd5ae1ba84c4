"""The reliability catalogue's writer (tests/reliability_report.py): a case is as expected only when every test
that checks it passed; a skipped one says so."""

from types import SimpleNamespace

from reliability_report import PROPERTY, case_property, table


def report(nodeid: str, outcome: str, number: int, when: str = "call"):
    marker = SimpleNamespace(args=(number, f"case {number}", "refused"))
    return SimpleNamespace(nodeid=nodeid, outcome=outcome, when=when, user_properties=[case_property(marker)])


def test_a_case_is_as_expected_only_when_all_its_tests_passed():
    reports = [report("tests/test_a.py::test_one[x]", "passed", 1, "setup"),  # a set-up that passed says nothing
               report("tests/test_a.py::test_one[x]", "passed", 1), report("tests/test_a.py::test_one[y]", "passed", 1),
               report("tests/test_b.py::test_two", "passed", 2), report("tests/test_b.py::test_three", "failed", 2),
               report("tests/test_c.py::test_four", "skipped", 3, "setup")]
    rows = table(reports).splitlines()
    assert rows[2] == "| 1 | case 1 | refused | `test_a.py::test_one` | as expected: 2 passed |"
    assert rows[3].endswith("| **NOT**: 1 passed, 1 failed |") and "`test_b.py::test_three`<br>`test_b.py::test_two`" in rows[3]
    assert rows[4].endswith("| **NOT**: 1 skipped |")
    assert rows[-1] == "1 of 3 cases as expected"
    assert PROPERTY == "reliability"
