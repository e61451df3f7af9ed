"""Scoring: metrics (confusion matrix, road threshold sweep), reports and plots, evaluation of a run, the int8
export's accuracy, a training session's overlays, colours."""
