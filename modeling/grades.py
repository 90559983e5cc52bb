"""The grades, A (good) … E (bad): the one definition every package uses.

Pure (no Django): the annotation app builds its ``Grade`` choices from it, and the
dataset manifest stores vote counts in this order.
"""

from __future__ import annotations

GRADES: tuple[str, ...] = ("A", "B", "C", "D", "E")
N_GRADES = len(GRADES)
# Scores for means and standard deviations: A = 1 … E = 5.
GRADE_SCORE = {grade: index + 1 for index, grade in enumerate(GRADES)}
GRADE_LABELS = {"A": "A (good)", "E": "E (bad)"}
