"""`bisector.yaml`: loading, validation and typed values.

Loaded with bisector's limited safe loader (bisector.plumbing.yamlload: no alias bombs,
no deep nesting) through a line-tracking subclass so a validation error can name the
file, the line and the key. Unknown keys are errors (`extra="forbid"`): a typo
in a config that silently does nothing is worse than a refusal.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    AfterValidator,
    BeforeValidator,
    Field,
    ValidationError,
    model_validator,
)

from bisector.config_execution import Execution
from bisector.config_guard import Guard, check_http_url
from bisector.config_strict import RefuseEmpty, Strict, type_error, whole_number_error
from bisector.config_values import (
    DEFAULT_CONFIG_NAME,
    STORE_HINT,
    Argv,
    Duration,
    EnvVars,
    SchemaWithDefaults,
    ThresholdField,
    _check_cron,
    check_registry,
    check_rollback_target,
    check_store,
    check_webhook,
)
from bisector.core.judge import CLASSIFY_ALPHA, smallest_workable_repeats
from bisector.core.types import MAX_REPEATS, Direction, MetricRule, Threshold, TrialBudget
from bisector.errors import ConfigError
from bisector.log import get_logger
from bisector.plumbing.worktree import bare_error, is_bare_repository, subfolder_hint
from bisector.plumbing.yamllines import LineLoader, key_path, line_of
from bisector.plumbing.yamlload import safe_load
from bisector.ports import PYTHON_NAMES

_MODULE_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$")


def _check_module_name(name: str) -> str:
    if not _MODULE_NAME.match(name):
        raise ValueError(f"not a Python module name: {name[:60]!r}")
    return name


#: The smallest `repeats.max` that can give a verdict (checked by `Repeats`, said by the schema).
WORKABLE_REPEATS = smallest_workable_repeats(CLASSIFY_ALPHA)


class Repeats(Strict):
    min: int = Field(3, ge=1, le=MAX_REPEATS)
    # ge=1: below WORKABLE_REPEATS `_ordered` says why in words (pydantic's "greater than
    # or equal to 5" would not); the schema states the real minimum for editors.
    max: int = Field(15, ge=1, le=MAX_REPEATS, json_schema_extra={"minimum": WORKABLE_REPEATS})

    @model_validator(mode="after")
    def _ordered(self) -> Repeats:
        if self.max < self.min:
            raise ValueError("repeats.max must be >= repeats.min")
        # n vs n trials whose exact test cannot go below the judge's alpha never give a verdict
        if self.max < WORKABLE_REPEATS:
            raise ValueError(
                f"repeats.max {self.max} is too small for any verdict at the judge's alpha {CLASSIFY_ALPHA}: "
                f"the smallest workable value is {WORKABLE_REPEATS}"
            )
        return self

    def budget(self) -> TrialBudget:
        """The core's view of these repeats (the judge and the sampling loop read it)."""
        return TrialBudget(self.min, self.max)


class Benchmark(Strict):
    command: Annotated[
        Argv, RefuseEmpty("write the benchmark as a list of words, e.g. [python, bench.py]")
    ] = Field(min_length=1, description="argv, no shell; cwd = the checkout")
    timeout: Duration = 300.0
    repeats: Repeats = Repeats()
    env: EnvVars = Field(default_factory=dict, description="extra environment variables")
    # `auto`: the benchmark runs once at the good endpoint with BISECTOR_REFERENCE_OUT set
    # (it saves its outputs there), then every trial gets BISECTOR_REFERENCE_IN
    # (bisector/engine/reference.py), so output agreement needs no extra steps.
    reference: Literal["auto"] | None = Field(
        None, description="auto: reference outputs made at the good endpoint, passed to every step"
    )
    preload: list[Annotated[str, AfterValidator(_check_module_name)]] = Field(
        default_factory=list,
        description="Python benchmarks: modules imported once per environment in a fork server",
    )

    @model_validator(mode="after")
    def _preload_needs_python(self) -> Benchmark:
        # The server forks a Python interpreter: it can run `python -m MOD` or
        # `python SCRIPT`, nothing else.
        if self.preload:
            head, rest = self.command[0], self.command[1:]
            runnable = bool(rest) and (
                not rest[0].startswith("-") or (rest[0] == "-m" and len(rest) > 1)
            )
            if head not in PYTHON_NAMES or not runnable:
                raise ValueError(
                    "preload needs a Python benchmark: a command of the form "
                    "[python, SCRIPT, ...] or [python, -m, MODULE, ...]"
                )
        return self


class Metric(Strict):
    direction: Direction
    threshold: ThresholdField = Threshold(0.05, relative=True)

    def rule(self) -> MetricRule:
        """The core's view of this metric (what the judge reads)."""
        return MetricRule(self.direction, self.threshold)


class DockerOptions(Strict):
    base_image: str = "nvidia/cuda:12.4.1-cudnn-runtime-ubuntu22.04"
    gpus: Literal["all", "none"] | int = "none"
    network: str = "none"
    cpus: float | None = Field(None, gt=0, allow_inf_nan=False)
    memory: str | None = None
    dockerfile: str | None = None
    max_images: int = Field(
        20, ge=1, description="images kept (LRU), for each kind: dependency, code"
    )
    # `mount`: the checkout is mounted read-only into each trial (no image per commit).
    # `layer`: an image per commit with the checkout copied in; implied by `install`.
    code: Literal["mount", "layer"] = "mount"
    # The ray executor's workers pull `<registry>/bisector-env:<key>` before building it,
    # and push what they build (docs/ray.md). Credentials: docker's own login.
    registry: Annotated[str | None, AfterValidator(check_registry)] = None


class Environment(Strict):
    builder: Literal["local", "venv", "docker"] = "local"
    python: str | None = None
    requirements: list[str] = Field(default_factory=list)
    extras: list[str] = Field(
        default_factory=list, description="pyproject optional-dependency groups to install too"
    )
    install: list[str] | None = None
    find_links: list[str] = Field(default_factory=list)
    index_url: str | None = None
    extra_index_urls: list[str] = Field(default_factory=list)
    no_index: bool = False
    cache_size: int = Field(8, ge=1, description="environments kept (LRU)")
    docker: DockerOptions = DockerOptions()


class Snapshots(Strict):
    # `configs:` alone: neither the default folder nor no configs is a safe guess of what
    # the snapshots (and so every rollback) should hold.
    configs: Annotated[
        list[str], RefuseEmpty("list the config files to snapshot, or remove the key")
    ] = Field(default_factory=lambda: ["configs/**/*.yaml"])
    store: Annotated[str, AfterValidator(check_store)] = ".bisector"


class Rollback(Strict):
    target: Annotated[str | None, AfterValidator(check_rollback_target)] = None
    strategy: Literal["atomic"] = "atomic"
    timeout: Duration = 30.0
    on_failure: Literal["alert_and_pause", "keep"] = "alert_and_pause"
    health_check: Argv | None = None


class Alert(Strict):
    webhook: Annotated[str | None, AfterValidator(check_webhook)] = None
    timeout: Duration = 5.0
    retries: int = Field(2, ge=0, le=100)


def _report_url(url: str | None) -> str | None:
    if url is None:
        return None
    return check_http_url(url, "https://ci.example.org/bisector/").rstrip("/") + "/"


class Daemon(Strict):
    schedule: Annotated[str, AfterValidator(_check_cron)] = "0 2 * * *"
    branch: str = "main"
    remote: str | None = None
    policy: Literal["report", "rollback"] = "report"
    alerts: list[Alert] = Field(default_factory=list)
    metrics_port: int = Field(9464, ge=0, le=65535)
    # Alerts link a run's report as <report_url><run id>/report.html (else its path).
    report_url: Annotated[str | None, AfterValidator(_report_url)] = None


def _some_metrics(value: Any) -> Any:
    # `metrics:` with nothing under it, or `{}`: said as what to write, not as pydantic's
    # "Dictionary should have at least 1 item after validation" (or "valid dictionary").
    if value is None or value == {}:
        raise ValueError("at least one metric is required (NAME: {direction: lower})")
    return value


def _metric_names(metrics: dict[str, Metric]) -> dict[str, Metric]:
    for name in metrics:
        if name.startswith("_"):  # docs/benchmark-protocol.md: `_gpu`, `_env`, ...
            raise ValueError(
                f"{name!r}: a metric name cannot start with '_' (the benchmark's keys that "
                "do are metadata, never measurements)"
            )
    return metrics


class Config(Strict):
    benchmark: Benchmark
    metrics: Annotated[
        dict[str, Metric], BeforeValidator(_some_metrics), AfterValidator(_metric_names)
    ] = Field(min_length=1)
    environment: Environment = Environment()
    snapshots: Snapshots = Snapshots()
    rollback: Rollback = Rollback()
    daemon: Daemon = Daemon()
    guard: Guard | None = None
    execution: Execution = Execution()

    @model_validator(mode="after")
    def _canary_metric(self) -> Config:
        canary = self.guard.canary if self.guard is not None else None
        if canary is not None and canary.metric is not None and canary.metric not in self.metrics:
            raise ValueError(
                f"guard.canary.metric: {canary.metric!r} is not declared under metrics"
            )
        return self

    def warnings(self) -> list[str]:
        """Valid settings that weaken isolation: said by `config check` and logged on load."""
        found: list[str] = []
        if self.environment.docker.network == "host":  # even unused: `--builder docker` uses it
            found.append(
                "environment.docker.network: host gives every benchmark trial the host's network "
                "(its services, and the daemon's metrics port); use none or a named network"
            )
        return found

    def metric(self, name: str | None) -> tuple[str, Metric]:
        """The named metric, or the first one declared."""
        if name is None:
            first = next(iter(self.metrics))
            return first, self.metrics[first]
        if name not in self.metrics:
            raise ConfigError(
                f"unknown metric {name!r}",
                hint=f"bisector.yaml declares: {', '.join(self.metrics)}",
            )
        return name, self.metrics[name]


#: The most YAML nodes a bisector.yaml may hold (as read, and with aliases expanded). A real
#: one has a few hundred; PyYAML reads about 25,000 a second, so a file under the size
#: bound of 200,000 tiny values took 8 s to reach the general limit (`yamlload.MAX_NODES`,
#: kept for committed config files) and is now refused within half a second.
MAX_CONFIG_NODES = 10_000


class _ConfigLoader(LineLoader):
    max_nodes = MAX_CONFIG_NODES


def parse_config(text: str, source: str = DEFAULT_CONFIG_NAME) -> Config:
    """Parse and validate; every problem becomes a `ConfigError` naming file, line and key."""
    try:
        data = safe_load(text, _ConfigLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{source}:{mark.line + 1}" if mark is not None else source
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ConfigError(f"{where}: malformed YAML: {problem}") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: expected a mapping at the top level")
    try:
        return Config.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = tuple(p for p in err["loc"] if not (isinstance(p, str) and p.startswith("function-")))
        key = key_path(loc)
        line = line_of(data, loc)
        where = f"{source}:{line}" if line is not None else source
        msg = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            msg = "unknown key"
        elif err["type"] == "missing":
            msg = "required key is missing"
        hint = getattr(err.get("ctx", {}).get("error"), "hint", None)
        if (whole := whole_number_error(err)) is not None:
            msg, hint = whole
        elif (wrong := type_error(err)) is not None:
            msg = wrong
        more = f" (and {len(exc.errors()) - 1} more)" if len(exc.errors()) > 1 else ""
        raise ConfigError(f"{where}: {key}: {msg}{more}", hint=hint) from exc


def find_config(repo: Path, config: Path | None) -> Path:
    # Said first: "no config file at /typo/bisector.yaml" with a hint to create one there
    # sent people to make a file in a folder that is not there.
    if not repo.is_dir():
        raise ConfigError(
            f"the repository folder {repo} "
            + ("is not a folder" if repo.exists() else "does not exist"),
            hint="pass --repo PATH of a git checkout (default: the current folder)",
        )
    if is_bare_repository(repo):  # before its config: one in git's own folder is no answer
        message, hint = bare_error(repo.resolve())
        raise ConfigError(message, hint=hint)
    path = config if config is not None else repo / DEFAULT_CONFIG_NAME
    if not path.is_file():
        raise ConfigError(
            f"no config file at {path}",
            hint=(config is None and subfolder_hint(repo))
            or "create bisector.yaml at the repository root or pass --config FILE",
        )
    return path


#: The largest bisector.yaml read. A real one is a few KiB; YAML is parsed at about
#: 25,000 nodes a second in pure Python, so a 48 MB file took 41 s and 1 GB before its
#: node count was refused. This one is refused before it is read.
MAX_CONFIG_BYTES = 1 << 20


def load_config(repo: Path, config: Path | None = None, *, warn: bool = True) -> Config:
    path = find_config(repo, config)
    try:
        if (size := path.stat().st_size) > MAX_CONFIG_BYTES:
            raise ConfigError(
                f"{path} is {size / (1 << 20):.1f} MiB: a config file is read only up to "
                f"{MAX_CONFIG_BYTES >> 20} MiB",
                hint="a bisector.yaml holds settings only (a few KiB): check that it is the file "
                "you meant",
            )
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read {path}: {exc}") from exc
    cfg = parse_config(text, str(path))
    _check_store_place(repo, cfg.snapshots.store, path)
    for warning in cfg.warnings() if warn else ():
        get_logger("bisector.config").warning("config.warning", file=str(path), warning=warning)
    return cfg


def _check_store_place(repo: Path, store: str, source: Path) -> None:
    """The store resolved (an absolute path, a symlink): not the repository, nor in its
    `.git` (`check_store` sees only the text)."""
    root = repo.resolve()
    place = (root / store).resolve()
    if place == root or place.is_relative_to(root / ".git"):
        raise ConfigError(
            f"{source}: snapshots.store: {store!r} is "
            + (
                "the repository itself"
                if place == root
                else "git's own folder .git or a path in it"
            ),
            hint=STORE_HINT,
        )


def json_schema() -> dict[str, Any]:
    """The JSON schema of bisector.yaml (`bisector config schema`), for editors."""
    return Config.model_json_schema(schema_generator=SchemaWithDefaults)
