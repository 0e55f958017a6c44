"""Stage 3, judge: the trusted pytest process that runs a week's checks, its plugin and fixtures, the
strict loading of probe answers and the sample-quality metrics. Never imports student code.

May import: grader.records, grader.config, grader.caps, grader.fetch, grader.run.
"""
