"""Two hands that touch: interpenetration and contact terms for two-hand fitting,
and the measurements the benchmarks report (penetration depth)."""
