"""Scoring: metrics (confusion matrix, road threshold sweep) and each task's metric state, reports and plots,
evaluation of a run, the int8 export's accuracy, a training session's overlays, colours."""
