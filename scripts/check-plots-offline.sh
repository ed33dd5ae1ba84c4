#!/usr/bin/env bash
# Does `dvc plots show`'s page render with no network? Open it as a user would, in headless Chromium with
# every host unresolvable and a dead proxy, screenshot it, and count the lambda-sweep line's pixels; the
# same page made with DVC's own template (Vega from cdn.jsdelivr.net) for contrast, which should be blank.
#
#   scripts/check-plots-offline.sh [REPO]    # REPO: a git + DVC repo after `dvc repro` (default: .)
#   SHOTS=DIR keeps the two screenshots (offline.png, cdn.png) in DIR.
#
# Needs chromium (Debian: apt-get install chromium), dvc, numpy and Pillow (PYTHON, default python). Not part
# of the test suite (CI has no Chromium); exits 1 when the offline page shows no lines.
set -euo pipefail
repo=$(cd "${1:-.}" && pwd)
python=${PYTHON:-python}
work=$(mktemp -d)
trap 'if [ -n "${SHOTS:-}" ]; then mkdir -p "$SHOTS" && cp "$work"/*.png "$SHOTS"/; fi; rm -rf "$work"' EXIT

# DVC's default page has a {scripts} placeholder, which it fills with <script src="https://cdn...">
cdn_template="$work/cdn.html"
"$python" -c 'import dvc_render.html as h, sys; open(sys.argv[1], "w").write(h.PAGE_HTML)' "$cdn_template"

shot() {  # shot NAME [dvc plots show options...]: the page's screenshot in $work/NAME.png
    local name=$1; shift
    (cd "$repo" && dvc plots show plots/lambda_sweep.csv -o "$work/$name" "$@" >/dev/null)
    if grep -Eq '<script[^>]+src="https?://' "$work/$name/index.html"; then echo "$name: page loads scripts from the network"; fi
    # MAP * ~NOTFOUND: no name resolves; the proxy on port 9 (discard) refuses: nothing leaves the machine
    chromium --headless --no-sandbox --disable-gpu --hide-scrollbars --window-size=900,700 \
        --host-resolver-rules="MAP * ~NOTFOUND" --proxy-server=127.0.0.1:9 --virtual-time-budget=10000 \
        --screenshot="$work/$name.png" "file://$work/$name/index.html" >/dev/null 2>&1
}
shot offline                                  # .dvc/config: plots.html_template = plots/offline.html
shot cdn --html-template "$cdn_template"

"$python" - "$work/offline.png" "$work/cdn.png" <<'EOF'
import sys
import numpy as np
from PIL import Image

def count(path):
    rgb = np.asarray(Image.open(path).convert("RGB")).reshape(-1, 3).astype(int)
    drawn = int((rgb.min(axis=1) < 230).sum())                            # anything not (near) white
    coloured = int((rgb.max(axis=1) - rgb.min(axis=1) > 80).sum())        # lines and rules: not grey, not white
    return len(rgb), drawn, coloured

offline, cdn = count(sys.argv[1]), count(sys.argv[2])
for name, (total, drawn, coloured) in (("offline template", offline), ("DVC's CDN template", cdn)):
    print(f"{name}: {total} pixels, {drawn} drawn ({drawn / total:.2%}), {coloured} coloured (lines)")
if offline[2] < 500:
    sys.exit("FAIL: the offline page shows no lambda-sweep lines")
print("OK: the offline page draws the lambda sweep" + ("; the CDN page is blank offline" if cdn[1] < 100 else ""))
EOF
