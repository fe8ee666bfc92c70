"""The study: the whole SynthFace comparison on a CPU in one command (``distill.study.quickstart.quickstart``).

    quickstart.py   generate data -> train six models -> export, evaluate, bench -> report
    lanes.py        the trainings in parallel processes, one thread each
    report.py       results.json, report.md / report.html and their pictures
"""
