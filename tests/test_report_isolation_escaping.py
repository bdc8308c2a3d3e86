"""The Markdown report's isolation section shows config keys as text, never as markup.

A config key is written by whoever can push a commit: `|` would end a table cell, `<b>`
is HTML a Markdown renderer passes through, and `](javascript:...)` closes a link. The
isolation steps, the per-item verification and the notes name keys (and files), so they
are escaped as the culprit's subject is.
"""

from __future__ import annotations

import re
from pathlib import Path

from bisector.testing.gitutil import commit, make_repo
from tests.conftest import BENCH_PY_CONFIG, run_cli

BENCH = """\
import json
text = open("configs/s.yaml").read()
slow = any(line.endswith(": true") for line in text.splitlines())
print(json.dumps({"latency_ms": [20.0 if slow else 10.0] * 3}))
"""
CONFIG = BENCH_PY_CONFIG
BAD_KEY = "k|<b>bold</b>`x`"
LINK_KEY = "](javascript:alert(1))"


def _repo(path: Path) -> Path:
    repo = make_repo(path)
    before = f'"{BAD_KEY}": false\n"{LINK_KEY}": 1\n'
    commit(
        repo,
        {"bench.py": BENCH, "bisector.yaml": CONFIG, "configs/s.yaml": before},
        "init",
        tag="v1",
    )
    commit(repo, {"a.txt": "1\n"}, "unrelated")
    after = f'"{BAD_KEY}": true\n"{LINK_KEY}": 2\n'
    commit(repo, {"configs/s.yaml": after}, "Change two keys")
    commit(repo, {"a.txt": "2\n"}, "unrelated again", tag="v2")
    return repo


def test_isolation_steps_verification_and_notes_escape_config_keys(tmp_path: Path) -> None:
    repo = _repo(tmp_path / "repo")
    done = run_cli("run", "--good", "v1", "--bad", "v2", cwd=repo)
    assert done.returncode == 0, done.stderr
    md = run_cli("report", "latest", cwd=repo)
    assert md.returncode == 0, md.stderr
    section = md.stdout.split("## Isolation", 1)[1].split("## Steps", 1)[0]
    assert "isolate-ddmin" in section and "### Verification of each item" in section
    outside_code = re.sub(r"(`+) .*? \1", "", section)  # a code span shows text as is
    assert "<b>" not in outside_code  # HTML from a key is shown, not passed through
    assert not re.search(r"(?<!\\)\]\(javascript", outside_code)  # no link closes on a key
    for row in (line for line in section.splitlines() if line.startswith("| ")):
        cells = re.split(r"(?<!\\)\|", row)
        assert len(cells) == 6, row  # `| # | phase | state | verdict |`: no cell split by a key
    items = [line for line in section.splitlines() if line.startswith("- ``")]
    assert items and all(line.count("`` ") == 1 for line in items)  # one code span per item
