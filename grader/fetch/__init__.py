"""Stage 1, fetch and locate: forks into one shared object store, the heads recorded at the deadline,
the roster, and the week's notebook found and validated in a submission.

May import: grader.records, grader.config, grader.caps.
"""
