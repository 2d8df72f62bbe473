"""segpipe's benchmarks: scripts that print figures (not timed tests).

Run them all with ``python -m benchmarks`` (one table; see ``benchmarks/__main__.py``), or one at a
time: ``python -m benchmarks.bench_train``, ``python benchmarks/bench_visualize.py``,
``python benchmarks/bench_export.py``. Each script's ``run(...)`` returns its figures as rows
``(benchmark, measured, reference, ratio / target)``.
"""
