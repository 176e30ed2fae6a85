"""Realistic demo data: a pure generator and a loader that streams it with COPY."""

from wedsync_db.demo.generate import DemoData, DemoSamples, DemoSize, generate_demo

__all__ = ["DemoData", "DemoSamples", "DemoSize", "generate_demo"]
