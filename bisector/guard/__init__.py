"""The release guard: live metrics in Prometheus, a rollback on a held breach.

`prometheus` is the adapter (HTTP; every failure is a typed *blind* result), `rules` and
`canary` are pure judgements over samples, `service` runs one evaluation and acts.
"""
