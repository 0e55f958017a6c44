"""Course-staff commands: stubs from the solutions (assign), the student template (release) and the
machine's diagnosis (doctor).

May import every stage; only grader.cli imports this.
"""
