"""Machine and process plumbing: CPU settings, the TensorFlow import, files, signals, progress bars."""
