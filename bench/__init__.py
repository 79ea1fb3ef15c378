"""Benchmarks (not tests): ``python -m bench accuracy|speed|interaction`` (or ``make bench``)
from the repository root: benchmarks read the checkout (samples, real footage
beside it) and are not part of the installed ``lagc-hand`` command.

Results are appended to ``bench/RESULTS.md`` with the date and the machine.
"""
