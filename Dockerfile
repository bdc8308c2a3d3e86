# The bisector daemon: nightly regression hunting on a repository mounted at /repo.
#   docker build -t bisector-daemon .
#   docker run -d --name bisector -v /srv/serving-repo:/repo -v bisector-store:/repo/.bisector \
#     -v /srv/serving/configs:/srv/serving/configs bisector-daemon
# The store (snapshots.store, default .bisector) is a volume: the journal, pause state,
# snapshots and reports survive container restarts. Metrics listen on 127.0.0.1 only,
# inside the container; the HEALTHCHECK reads them from there.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# git: bisector reads history and makes worktrees; tini: signals reach the daemon (SIGTERM).
RUN apt-get update \
 && apt-get install -y --no-install-recommends git tini \
 && rm -rf /var/lib/apt/lists/*

WORKDIR /opt/bisector
COPY pyproject.toml README.md ./
COPY bisector ./bisector
COPY snapshots ./snapshots
COPY rollback ./rollback
RUN pip install . && python -c "import bisector.daemon, apscheduler, prometheus_client"

# The mounted repository belongs to another uid; git refuses it unless marked safe.
RUN groupadd --system --gid 10001 bisector \
 && useradd --system --uid 10001 --gid bisector --home-dir /home/bisector --create-home bisector \
 && mkdir -p /repo/.bisector \
 && chown -R bisector:bisector /repo \
 && git config --system --add safe.directory '*'

USER bisector
WORKDIR /repo
VOLUME ["/repo/.bisector"]

# daemon.metrics_port in bisector.yaml must match (9464 is the default).
ENV BISECTOR_METRICS_PORT=9464
HEALTHCHECK --interval=60s --timeout=5s --start-period=30s --retries=3 \
  CMD python -c "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/metrics' % os.environ['BISECTOR_METRICS_PORT'], timeout=4)" || exit 1

ENTRYPOINT ["/usr/bin/tini", "--", "bisector"]
CMD ["daemon", "--repo", "/repo"]
