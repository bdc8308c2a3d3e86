"""Executors: where trials run. `local` is the engine's own `Measurer`; `ray` is here.

Nothing in this package imports ray at module level except `ray_measurer` (the driver)
and `ray_task` functions run on the workers; `select` decides without importing it.
"""
