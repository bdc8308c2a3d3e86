# The bisector daemon: nightly regression hunting on a repository mounted at /repo.
#
# The build takes bisector and its dependencies from a wheelhouse made on the host, so it
# needs no package index (only Debian's apt, for git and tini):
#   rm -rf build wheelhouse && python3 -m pip wheel . -w wheelhouse   # host Python 3.11, as the image
#   docker build -t bisector-daemon .             # on python:3.11-slim
#   docker build --build-arg BASE=bisector-test-base:bookworm -t bisector-daemon .   # any Debian
#                                                 # bookworm with python3, python3-venv
#   docker run -d --name bisector -v /srv/serving-repo:/repo -v bisector-store:/repo/.bisector \
#     -v /srv/serving/configs:/srv/serving/configs bisector-daemon
# The store (snapshots.store, default .bisector) is a volume: the journal, pause state,
# snapshots and reports survive container restarts. Metrics listen on 127.0.0.1 only,
# inside the container; the HEALTHCHECK reads them from there. docs/daemon.md has more.
ARG BASE=python:3.11-slim

# Stage 1: the virtual environment (a venv because Debian's Python refuses system-wide pip
# installs, PEP 668). A separate stage so the wheelhouse never lands in the image's layers.
FROM ${BASE} AS install
# The classic builder keeps this stage as an untagged image; the label finds it for removal:
#   docker image prune -f --filter label=bisector.build-stage=install
LABEL bisector.build-stage=install
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
COPY wheelhouse /tmp/wheelhouse
RUN python3 -m venv /opt/bisector/venv \
 && /opt/bisector/venv/bin/pip install --no-index --find-links /tmp/wheelhouse bisector

# Stage 2: the image. Same base, so the venv's interpreter path is valid here too.
FROM ${BASE}

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# git: bisector reads history and makes worktrees; tini: signals reach the daemon (SIGTERM).
# Before the venv is copied, so this layer stays cached while bisector changes.
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends git tini ca-certificates \
 && apt-get clean \
 && rm -rf /var/lib/apt/lists/* /var/cache/apt/*

# The mounted repository belongs to another uid; git refuses it unless marked safe.
RUN groupadd --system --gid 10001 bisector \
 && useradd --system --uid 10001 --gid bisector --home-dir /home/bisector --create-home bisector \
 && mkdir -p /repo/.bisector \
 && chown -R bisector:bisector /repo \
 && git config --system --add safe.directory '*'

COPY --from=install /opt/bisector/venv /opt/bisector/venv
ENV PATH=/opt/bisector/venv/bin:$PATH
# Fails the build, not the first night, when a dependency is missing (GitPython needs git).
RUN python -c "import bisector.daemon, apscheduler, prometheus_client"

USER bisector
WORKDIR /repo
VOLUME ["/repo/.bisector"]

# daemon.metrics_port in bisector.yaml must match (9464 is the default).
ENV BISECTOR_METRICS_PORT=9464
HEALTHCHECK --interval=60s --timeout=5s --start-period=30s --retries=3 \
  CMD python -c "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/metrics' % os.environ['BISECTOR_METRICS_PORT'], timeout=4)" || exit 1

ENTRYPOINT ["/usr/bin/tini", "--", "bisector"]
CMD ["daemon", "--repo", "/repo"]
