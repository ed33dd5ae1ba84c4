"""DVC's plots (Vega-Lite specs) without a browser or a network: PNGs for a report, a self-contained HTML page.

DVC fills its plot templates into Vega-Lite specs with the data inlined; vl-convert renders them with an
embedded Vega (no browser, no Node) and bundles the same JavaScript libraries for a page that needs no CDN.
"""

from __future__ import annotations

# DVC's templates declare the Vega-Lite v5 schema; one version for the PNGs and the offline page alike
VEGA_LITE_VERSION = "v5.21"

# DVC's HTML renderer fills {plot_divs} (each a `vegaEmbed('#id', spec)` call) and, where a template has it,
# {scripts} with <script src="https://cdn.jsdelivr.net/..."> tags: this page has no {scripts}, the libraries
# are inlined instead. DVC formats nothing else, so the JavaScript's braces need no escaping.
_PAGE = """<!DOCTYPE html>
<html>
<head>
    {refresh_tag}
    <meta charset="utf-8">
    <title>DVC Plot</title>
    <!-- vega, vega-lite {vega_lite} and vega-embed, inlined by vl-convert-python {vl_convert}:
         renders with no network (written by scripts/make-offline-plots-template.py) -->
    <script type="text/javascript">
{bundle}
    </script>
    <style>
        table { border-spacing: 15px; }
    </style>
</head>
<body>
    {plot_divs}
</body>
</html>
"""


def to_png(spec: dict, scale: float = 2.0) -> bytes:
    """A Vega-Lite spec (data inlined, as `dvc plots ... --json` gives it) rendered to PNG bytes."""
    import vl_convert

    return vl_convert.vegalite_to_png(spec, vl_version=VEGA_LITE_VERSION, scale=scale)


def offline_html_template() -> str:
    """A `dvc plots show --html-template` page with vega, vega-lite and vega-embed inlined."""
    import vl_convert

    bundle = vl_convert.javascript_bundle(vl_version=VEGA_LITE_VERSION)
    # a literal "</script>" inside the bundle would close the tag early; the function scope keeps the bundle's
    # top-level names (const, let) from clashing with the `var spec` of DVC's plot divs (it sets window.vega*)
    bundle = "(function () {\n" + bundle.replace("</script", "<\\/script") + "\n})();"
    head, body = _PAGE.split("{bundle}")
    head = head.replace("{vega_lite}", VEGA_LITE_VERSION).replace("{vl_convert}", _version())
    return head + bundle + body


def _version() -> str:
    from importlib.metadata import version

    return version("vl-convert-python")
