"""`fillpath bench …`: speed figures, each beside a baseline measured in the same run.

Benchmarks are not tests: they print what they measured and assert nothing about time.
"""
