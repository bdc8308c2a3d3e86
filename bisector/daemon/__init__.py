"""The daemon: a cron-scheduled cycle that hunts regressions, alerts and acts.

`service.run_daemon` is the process (lock, signals, metrics, scheduler);
`cycle.execute` is one cycle over small seams; `bisector.store.daemon_state.DaemonState` its journal tables.
"""

from bisector.daemon.cycle import CycleResult, Seams, execute, run_cycle
from bisector.daemon.service import run_daemon
from bisector.store.daemon_state import DaemonState

__all__ = ["CycleResult", "DaemonState", "Seams", "execute", "run_cycle", "run_daemon"]
