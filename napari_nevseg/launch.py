"""``python -m napari_nevseg.launch``: napari with the NevSeg widget docked and a sample image."""

from __future__ import annotations

import argparse


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description="Open napari with NevSeg docked")
    parser.add_argument("project", nargs="?", help="a project folder (images/ + masks/) to review")
    args = parser.parse_args(argv)
    import napari

    viewer = napari.Viewer(title="napari-nevseg")
    _, widget = viewer.window.add_plugin_dock_widget("napari-nevseg", "Lesion review and fine-tuning")
    if args.project:
        widget.open_project(args.project)
    else:
        viewer.open_sample("napari-nevseg", "IMD085")
    napari.run()


if __name__ == "__main__":
    main()
