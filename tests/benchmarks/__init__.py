"""toolq's benchmark suite: `./toolq bench` (python -m benchmarks, with tests/ on PYTHONPATH).

Modules, in the order a run uses them: `suite` (the command), `systems` (starting toolq and
the references), `scenarios` (what is measured), `measure` (callers, timers, CPU, memory,
Redis commands), `mcp_client` and `raw_http` (the one client), `report` and `plots` (the
output in docs/).
"""
