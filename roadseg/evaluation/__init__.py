"""Scoring: metrics (confusion matrix, road threshold sweep), reports and plots, evaluation of a run, colours."""
