"""Stage 5, report: one Grade as JSON (the contract), Markdown, HTML with charts, GitHub outputs, JUnit
and Gradescope's results.json.

May import: grader.records, grader.config.
"""
