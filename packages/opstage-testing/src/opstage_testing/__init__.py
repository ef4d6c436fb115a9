"""Fixtures both test suites (the server's and the agent SDK's) and the benches share (ADR 0013).

pytest is imported only by ``opstage_testing.plugin``: the benches use the rest without it.
"""
