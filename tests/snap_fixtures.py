"""A small serving repository with four releases, for the snapshot tests.

v1.0.0 (annotated tag)  base configs, requirements with -r / -c includes, pyproject, uv.lock
v1.1.0 (lightweight)    a merge of a feature branch that changed configs/cache.yaml
v1.2.0 (annotated)      cache.yaml renamed, extra.yaml deleted, keys and pins changed
v1.3.0 (lightweight)    serving.yaml is malformed YAML
"""

from __future__ import annotations

from pathlib import Path

from bisector.testing.gitutil import commit, git, make_repo

BISECTOR_YAML = """\
benchmark:
  command: ["python", "bench.py"]
metrics:
  latency_ms: {direction: lower, threshold: 5%}
environment:
  requirements: [requirements.txt]
snapshots:
  configs: ["configs/**/*.yaml"]
  store: .bisector
"""

SERVING_1 = """\
model:
  name: gpt2
  dtype: fp16
batching:
  dynamic: false
  max_batch: 8
workers:
  - port: 8000
  - port: 8001
"""

SERVING_2 = """\
model:
  name: gpt2
  dtype: bf16
batching:
  dynamic: true
  max_batch: 8
  timeout_ms: 5
workers:
  - port: 8000
"""

CACHE_1 = "cache:\n  size_mb: 512\n  ttl_s: 60\n"
CACHE_2 = "cache:\n  size_mb: 1024\n  ttl_s: 60\n"

REQ_1 = """\
# serving requirements
-r requirements/base.txt
--find-links ./wheels
fastpad==1.0.0  # the padding library
oldlib>=0.1
"""
REQ_2 = """\
# serving requirements
-r requirements/base.txt
--find-links ./wheels
fastpad==1.1.0  # the padding library
newlib==3.0.0
"""
BASE_1 = "-c constraints.txt\nnumpy==1.26.4\ntorch==2.1.0 ; sys_platform == 'linux'\nurllib3\n"
BASE_2 = "-c constraints.txt\nnumpy==2.0.0\ntorch==2.2.0 ; sys_platform == 'linux'\nurllib3\n"
CONSTRAINTS_1 = "urllib3==2.0.0\n"
CONSTRAINTS_2 = "urllib3==2.0.1\n"

PYPROJECT_1 = """\
[project]
name = "serving"
version = "1.0.0"
dependencies = ["pydantic>=2", "Rich"]
[project.optional-dependencies]
gpu = ["triton==2.1.0"]
"""
PYPROJECT_2 = PYPROJECT_1.replace('"Rich"', '"rich>=13"')

UV_LOCK_1 = """\
version = 1
[[package]]
name = "serving"
version = "1.0.0"
source = { editable = "." }
[[package]]
name = "pydantic"
version = "2.6.0"
source = { registry = "https://pypi.org/simple" }
"""
UV_LOCK_2 = UV_LOCK_1.replace('version = "2.6.0"', 'version = "2.7.1"')

# What the diff v1.1.0 -> v1.2.0 must report, and nothing else.
EXPECTED_CONFIGS_12 = [
    ("configs/caching.yaml", None, "renamed", "configs/cache.yaml", "configs/caching.yaml"),
    ("configs/extra.yaml", None, "removed", None, None),
    ("configs/serving.yaml", "batching.dynamic", "changed", False, True),
    ("configs/serving.yaml", "batching.timeout_ms", "added", None, 5),
    ("configs/serving.yaml", "model.dtype", "changed", "fp16", "bf16"),
    ("configs/serving.yaml", "workers[1].port", "removed", 8001, None),
]
EXPECTED_PACKAGES_12 = [
    ("fastpad", "upgraded", "1.0.0", "1.1.0", "medium"),
    ("newlib", "added", None, "3.0.0", "medium"),
    ("numpy", "upgraded", "1.26.4", "2.0.0", "high"),
    ("oldlib", "removed", ">=0.1", None, "medium"),
    ("pydantic", "upgraded", "2.6.0", "2.7.1", "medium"),
    ("rich", "changed", "*", ">=13", "medium"),
    ("torch", "upgraded", "2.1.0", "2.2.0", "high"),
    ("urllib3", "upgraded", "2.0.0", "2.0.1", "low"),
]


def build_release_repo(path: Path) -> Path:
    """The repository described in the module docstring, with bisector.yaml untracked."""
    repo = make_repo(path)
    commit(
        repo,
        {
            "configs/serving.yaml": SERVING_1,
            "configs/cache.yaml": CACHE_1,
            "configs/extra.yaml": "debug: false\n",
            "configs/README.md": "not a config\n",
            "requirements.txt": REQ_1,
            "requirements/base.txt": BASE_1,
            "requirements/constraints.txt": CONSTRAINTS_1,
            "pyproject.toml": PYPROJECT_1,
            "uv.lock": UV_LOCK_1,
            "serving/app.py": "print('serving')\n",
        },
        "initial serving stack",
        tag="v1.0.0",
        annotated=True,
    )
    git(repo, "checkout", "-q", "-b", "feature")
    commit(repo, {"configs/cache.yaml": CACHE_2}, "bigger cache")
    git(repo, "checkout", "-q", "main")
    commit(repo, {"serving/app.py": "print('serving v1.1')\n"}, "code only")
    git(repo, "merge", "-q", "--no-ff", "-m", "merge feature", "feature")
    git(repo, "tag", "v1.1.0")
    git(repo, "mv", "configs/cache.yaml", "configs/caching.yaml")
    commit(
        repo,
        {
            "configs/extra.yaml": None,
            "configs/serving.yaml": SERVING_2,
            "requirements.txt": REQ_2,
            "requirements/base.txt": BASE_2,
            "requirements/constraints.txt": CONSTRAINTS_2,
            "pyproject.toml": PYPROJECT_2,
            "uv.lock": UV_LOCK_2,
        },
        "release 1.2: new batching, upgrades",
        tag="v1.2.0",
        annotated=True,
    )
    commit(repo, {"configs/serving.yaml": "model: [unclosed\n  name: x\n"}, "oops", tag="v1.3.0")
    (repo / "bisector.yaml").write_text(BISECTOR_YAML)
    return repo


def fresh_clone(release_repo: Path, dest: Path) -> Path:
    """A clone of the release repository with its tags and bisector.yaml, and no store."""
    git(release_repo, "clone", "-q", str(release_repo), str(dest))
    git(dest, "fetch", "-q", "origin", "refs/tags/*:refs/tags/*")
    (dest / "bisector.yaml").write_text(BISECTOR_YAML)
    return dest
