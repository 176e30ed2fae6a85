"""Operator actions: signalling backends, EXPLAIN of a tracked statement, check silences."""
