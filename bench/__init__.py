"""Benchmarks (not tests): ``python -m bench accuracy|speed`` or ``lagc-hand bench ...``.

Results are appended to ``bench/RESULTS.md`` with the date and the machine.
"""
