"""axe-core, vendored (``tests/web/vendor/``), run in a page that Playwright has open.

The script is injected from the file, never fetched. The browser context needs
``bypass_csp=True``: the app's pages allow no inline script, and the email pages allow no
script at all (their CSP sandbox); Chromium's CSP bypass lets the test's own script in.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

AXE_FILE = Path(__file__).with_name("vendor") / "axe.min.js"
AXE_VERSION = "4.14.1"


def violations(page: Any) -> list[dict[str, Any]]:
    """Every axe violation on the page (all rules axe runs by default), one dict per rule."""
    if not page.evaluate("() => typeof window.axe === 'object'"):
        page.add_script_tag(content=AXE_FILE.read_text(encoding="utf-8"))
    version = page.evaluate("() => window.axe.version")
    assert version == AXE_VERSION, version
    found = page.evaluate("async () => (await window.axe.run(document)).violations")
    return [
        {
            "rule": item["id"],
            "impact": item["impact"],
            "nodes": [" ".join(node["target"]) for node in item["nodes"]][:5],
        }
        for item in found
    ]
