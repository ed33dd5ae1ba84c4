#!/usr/bin/env python
"""Write .dvc/plots/offline.html: the page `dvc plots show` / `dvc plots diff` fill (.dvc/config's
plots.html_template), with vega, vega-lite and vega-embed inlined from vl-convert-python so it renders
offline. Rerun after upgrading vl-convert-python or changing past.evaluation.vega.VEGA_LITE_VERSION."""

from pathlib import Path

from past.evaluation.vega import offline_html_template

path = Path(__file__).resolve().parents[1] / ".dvc/plots/offline.html"
path.write_text(offline_html_template(), encoding="utf-8")
print(f"{path}: {path.stat().st_size} bytes")
