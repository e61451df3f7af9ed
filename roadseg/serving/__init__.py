"""Using a trained run: the Segmenter API and its backends, export, folder prediction, video."""
