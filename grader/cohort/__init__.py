"""A cohort: the batch (roster -> forks -> grades, cached and resumable), its executors (a local pool of
fork servers, or Ray), the SQLite gradebook with its exports, and the demo cohort.

May import every stage below it: fetch, run, judge, score, pipeline, report.
"""
