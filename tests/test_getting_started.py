"""docs/getting-started.md is executed: its `sh` blocks, in order, on a generated repository."""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import ROOT

DOC = ROOT / "docs" / "getting-started.md"
WORKDIR = "/tmp/walkthrough"  # the page's folder; the test's own tmp_path stands in for it
DEMO = f"bisector demo --workdir {WORKDIR}"
# `bisector demo` builds this repository (the same spec) and then bisects it; the page
# needs only the repository, so the test builds it without the demo's own bisection.
BUILD_SAMPLE = (
    "python -c 'import sys; from pathlib import Path; "
    "from bisector.testing.sample import SampleSpec, build_sample_repo; "
    'build_sample_repo(Path(sys.argv[1]) / "serving-demo", SampleSpec(mode="real", noise=0.0))\' '
)
DAEMON = "bisector daemon --once"
# The test suite may run next to another daemon: no metrics port for this cycle.
NO_METRICS_PORT = (
    "sed -i 's/^  metrics_port: 9464 /  metrics_port: 0    /' bisector.yaml"
    " && grep -q '^  metrics_port: 0 ' bisector.yaml"
)


def shell_blocks(text: str) -> list[str]:
    """The fenced ```sh blocks of a Markdown page, in order."""
    return re.findall(r"^```sh\n(.*?)^```$", text, re.DOTALL | re.MULTILINE)


def walkthrough_script(workdir: Path) -> str:
    blocks = shell_blocks(DOC.read_text(encoding="utf-8"))
    assert len(blocks) >= 5, "the page lost its sh blocks"
    script = "\n".join(blocks)
    assert DEMO in script and DAEMON in script and "bisector init" in script
    script = script.replace(DEMO, BUILD_SAMPLE + shlex.quote(str(workdir)))
    script = script.replace(DAEMON, f"{NO_METRICS_PORT}\n{DAEMON}")
    script = script.replace(WORKDIR, str(workdir))
    prelude = (
        f'set -euo pipefail\nbisector() {{ {shlex.quote(sys.executable)} -m bisector "$@"; }}\n'
    )
    return prelude + script


def test_shell_blocks_are_found_in_order() -> None:
    """The block parser returns each ```sh block's body, in order, and skips other fences."""
    text = "a\n```sh\none\ntwo\n```\n```text\nno\n```\n```sh\nthree\n```\n"
    assert shell_blocks(text) == ["one\ntwo\n", "three\n"]


@pytest.mark.slow
def test_the_getting_started_walkthrough_runs(tmp_path: Path) -> None:
    """init, run, report, rollback and one daemon cycle, as the page says, all succeed."""
    workdir = tmp_path / "walkthrough"
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        # `python` in the page is this interpreter, as in an activated virtualenv
        "PATH": os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")]),
    }
    proc = subprocess.run(
        ["bash", "-c", walkthrough_script(workdir)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-5000:]
    repo = workdir / "serving-demo"
    assert (
        (repo / "bisector.yaml")
        .read_text()
        .startswith("# bisector.yaml, written by `bisector init`")
    )
    doc = json.loads((repo / "run.json").read_text())
    assert doc["status"] == "found"
    assert doc["culprit"]["subject"].startswith("Pad requests to the target batch size")
    assert "warning: the endpoints pin different versions" in proc.stderr  # as the page shows
    assert "<html" in (repo / "report.html").read_text()[:500].lower()
    live = tmp_path / "walkthrough" / "serving-live"
    assert live.is_symlink() and (live / "serving.yaml").is_file()
    assert '"event": "daemon.head_fine"' in proc.stderr  # v2.3.3 is already slow: head is fine
    assert "finished: fine" in proc.stderr  # and `bisector status` says so
