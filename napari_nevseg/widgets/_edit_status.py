"""The line under the queue that says whether the mask on screen is saved, as an editor marks
a modified file, and what *Next* and *Accept* will write."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from napari_nevseg.widgets._state import ViewState
    from napari_nevseg.widgets.controller import ReviewController

MODIFIED = "●"


def edit_status(controller: ReviewController, view: ViewState) -> str:
    """Rich text for the image on screen ('' when there is none): whether it is saved and,
    when another model made its prediction than the one loaded, which."""
    project, stem = controller.project, controller.current_stem
    if project is None or stem not in project.records:
        return ""
    line = _saved_line(controller, view, stem)
    other = controller.other_model(stem)
    return line if other is None else f"{line}<br><i>{other}</i>"


def _saved_line(controller: ReviewController, view: ViewState, stem: str) -> str:
    project = controller.project
    status = project.records[stem].status
    if view.current_mask() is None:
        return f"<b>{stem}</b> ({status.value}): its mask layer was deleted; go to another image and back"
    if view.is_dirty():
        return (f"{MODIFIED} <b>{stem}</b>: edited, not saved yet · Next (N) saves it to masks/ as "
                "corrected · Y saves it and goes on")
    if status.reviewed:
        return f"<b>{stem}</b> ({status.value}): saved in masks/ · Next leaves it as it is"
    if status.decided:
        return f"<b>{stem}</b> ({status.value}): kept out of training · Next leaves it as it is"
    accepted = "accepted" if status.value == "predicted" else "corrected (there is no prediction)"
    return f"<b>{stem}</b> ({status.value}): not edited · Next saves nothing · Y saves it as {accepted}"
