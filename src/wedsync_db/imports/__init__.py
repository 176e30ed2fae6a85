"""Bulk import of a vendor's clients and a couple's guests from CSV files.

``csvfile`` and ``fields`` read a file without a database (encoding, dialect, header aliases,
dates, per-row problems); ``service`` streams it through COPY into the staging area and writes
it in the importing user's scope; ``report`` is what an import tells.
"""
