"""The HTML report in a real browser: headless Chromium (Debian's `chromium`).

Driven with the browser's own `--dump-dom` and `--screenshot`, so no driver library is
needed. Checks what a reader would notice: the page renders with its seven sections and
charts, the console stays silent (no error, no CSP violation), and a page built from
hostile service and KPI names runs no script at all (`window.__pwned` stays undefined).
In CI (`CI=true`) a missing Chromium fails the test; elsewhere it is skipped.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from tars_pipeline.reporting.html import render_html
from tars_pipeline.reporting.retrospective import SECTIONS
from tars_pipeline_tests.conftest import DemoWeek
from tars_pipeline_tests.reporting.test_html import hostile
from tars_pipeline_tests.servers import unavailable

pytestmark = pytest.mark.slow

FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
    "--hide-scrollbars",
    "--enable-logging=stderr",
    "--v=0",
)
# Chromium logs page console messages as `...:INFO:CONSOLE:1] "message", source: url`
# (older builds: `CONSOLE(1)]`).
CONSOLE = re.compile(r":CONSOLE(?::\d+|\(\d+\))?\]\s*(.*)")

# Loads the report in a same-folder iframe and writes what it finds into its own DOM,
# which --dump-dom then prints. Needs --allow-file-access-from-files to read the frame.
HARNESS = """<!DOCTYPE html>
<html><body><pre id="result">pending</pre>
<iframe id="report" src="report.html" width="1200" height="800"></iframe>
<script>
document.getElementById("report").addEventListener("load", function () {
  var win = this.contentWindow, doc = this.contentDocument, handlers = 0;
  doc.querySelectorAll("*").forEach(function (element) {
    for (var i = 0; i < element.attributes.length; i++) {
      if (element.attributes[i].name.indexOf("on") === 0) { handlers++; }
    }
  });
  document.getElementById("result").textContent = JSON.stringify({
    pwned: typeof win.__pwned,
    scripts: doc.querySelectorAll("script").length,
    handlers: handlers,
    sections: doc.querySelectorAll("section[data-section]").length,
    charts: doc.querySelectorAll("svg.chart").length
  });
});
</script></body></html>
"""


def chromium() -> str:
    """The Chromium binary, or skip (fail in CI) with a one-line reason."""
    binary = shutil.which("chromium") or shutil.which("chromium-browser")
    if binary is None and Path("/usr/bin/chromium").exists():
        binary = "/usr/bin/chromium"
    if binary is not None:
        return binary
    unavailable("chromium is not installed (bash .ci/setup.d/20-chromium.sh installs it)")


def run_chromium(profile: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """One headless Chromium run with a fresh profile; nothing leaves the machine."""
    result = subprocess.run(
        [chromium(), *FLAGS, f"--user-data-dir={profile}", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    return result


def chromium_dom(profile: Path, url: str, budget_ms: int = 30_000) -> str:
    """The DOM of `url` after its scripts ran for `budget_ms` of virtual time, retried
    while a JavaScript application is still drawing its first screen."""
    dom = ""
    for _attempt in range(3):
        result = run_chromium(profile, f"--virtual-time-budget={budget_ms}", "--dump-dom", url)
        dom = result.stdout
        if len(dom) > 2000:
            break
    return dom


def console_messages(stderr: str) -> list[str]:
    return [match.group(1) for match in map(CONSOLE.search, stderr.splitlines()) if match]


def test_the_report_renders_in_chromium_without_console_errors(
    demo_week: DemoWeek, tmp_path: Path
) -> None:
    page = (demo_week.out / "GA_7DAY_RETROSPECTIVE.html").as_uri()

    dom = run_chromium(tmp_path / "profile-dom", "--dump-dom", page)

    assert console_messages(dom.stderr) == []
    assert "Uncaught" not in dom.stderr
    headings = re.findall(r'<h2><span class="n">\d\.</span>([^<]+)</h2>', dom.stdout)
    assert [title.strip() for title in headings] == list(SECTIONS)
    assert dom.stdout.count('class="chart"') >= 6

    screenshot = tmp_path / "retrospective.png"
    shot = run_chromium(
        tmp_path / "profile-shot", "--window-size=1280,3000", f"--screenshot={screenshot}", page
    )
    assert console_messages(shot.stderr) == []
    header = screenshot.read_bytes()[:24]
    assert header[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = int.from_bytes(header[16:20], "big"), int.from_bytes(header[20:24], "big")
    assert (width, height) == (1280, 3000)
    assert screenshot.stat().st_size > 50_000  # a rendered page, not a blank one


def test_a_report_of_hostile_names_runs_no_script_in_the_browser(
    demo_week: DemoWeek, tmp_path: Path
) -> None:
    (tmp_path / "report.html").write_text(
        render_html(hostile(demo_week.retrospective)), encoding="utf-8"
    )
    (tmp_path / "harness.html").write_text(HARNESS, encoding="utf-8")

    dom = run_chromium(
        tmp_path / "profile",
        "--allow-file-access-from-files",
        "--dump-dom",
        (tmp_path / "harness.html").as_uri(),
    )

    found = re.search(r'<pre id="result">(.*?)</pre>', dom.stdout, re.DOTALL)
    assert found, dom.stdout[:500]
    result = json.loads(found.group(1).replace("&quot;", '"'))
    assert result == {
        "pwned": "undefined",
        "scripts": 0,
        "handlers": 0,
        "sections": 7,
        "charts": result["charts"],
    }
    assert result["charts"] >= 6
    # No console output at all from the report: no error, no CSP refusal of a script.
    assert not [m for m in console_messages(dom.stderr) if "report.html" in m]
    assert "Uncaught" not in dom.stderr
