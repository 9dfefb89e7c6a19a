"""napari-nevseg: human-in-the-loop segmentation of skin lesions in dermoscopy images.

Importing the package must stay cheap: no torch, Qt or napari here (a test checks it).
"""

__version__ = "0.1.0"
