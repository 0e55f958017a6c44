"""Stage 2, run: the sandbox, the notebook's kernel and its probes, and the fork servers.

probe_runtime.py is the only code of the grader that runs inside the sandbox, and nothing else here
does. May import: grader.records, grader.config, grader.caps, grader.fetch.
"""
