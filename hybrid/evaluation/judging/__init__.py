"""Tags judged blind, as a reader would (`../shared/reader-judging.md`).

`sheet` samples articles and shows every system's tags as anonymous lists A, B, C in a
random order per article, with the key to the letters kept apart; `verdicts` reads a judge's
filled sheet strictly against that key; `scores` turns the verdicts into each system's
accepted share, clean-article share, rating, missing tags and reject reasons.
"""
