"""The engine of napari-nevseg: numpy, torch and scikit-image only, never napari or Qt.

Submodules are imported where they are used, so that reading an image does not import torch.
"""
