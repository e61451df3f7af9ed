"""Machine and process plumbing: CPU settings, the TensorFlow import, graphs both stacks load, files, signals,
progress bars."""
