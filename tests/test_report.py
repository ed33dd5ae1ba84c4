"""`past report` and the offline plots page without a pipeline of their own: the template, and the refusals. The
report of a real params change (a git + DVC repository, `dvc repro`, a commit, `inject.lam` changed and re-run) is
tested on the end-to-end pipeline's repository: tests/test_pipeline_e2e.py::test_past_report_of_the_params_change.
"""

import re

from past.cli import main
from past.pipeline_repo import ROOT


def test_offline_template_inlines_vega_and_loads_nothing():
    template = (ROOT / ".dvc/plots/offline.html").read_text()
    assert "{plot_divs}" in template and "{scripts}" not in template  # DVC would put its CDN tags there
    assert not re.search(r"<script[^>]*\ssrc=", template) and "cdn.jsdelivr" not in template
    assert "window.vega=" in template and "window.vegaLite=" in template and "window.vegaEmbed=" in template
    assert len(template) > 500_000  # the libraries themselves, not a stub
    assert "html_template = plots/offline.html" in (ROOT / ".dvc/config").read_text()


def test_report_refuses_outside_git(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["report", "--base", "HEAD", "-o", "r.md"]) == 2
    assert "is not in a git repository" in capsys.readouterr().err
    assert not (tmp_path / "r.md").exists()
