"""The dock's one controller: project, model session, registry and review position.

Qt-free and napari-free (tested without a display): panels receive it, change state only through
its named methods and listen to its psygnal events; they never hold one another. What must run in
a Qt worker (loading a model, predicting) is *requested* through an event, and the panel that owns
that kind of work answers it. The active model version lives here only: the session's version,
and the registry follows it in :meth:`set_session`.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np
from psygnal import Signal, SignalGroup

from napari_nevseg.core.effort import EffortMeter

if TYPE_CHECKING:
    from pathlib import Path

    from napari_nevseg.core.project import ImageRecord, Project
    from napari_nevseg.core.registry import ModelRegistry
    from napari_nevseg.core.session import ModelSession

SORT_MODES = ("name", "uncertainty (least certain first)", "status")
STATUS_ORDER = {"unreviewed": 0, "predicted": 1, "second_opinion": 2, "corrected": 3, "accepted": 4,
                "no_lesion": 5, "unusable": 6}


class ControllerEvents(SignalGroup):
    session_changed = Signal(object)  # the active ModelSession
    project_changed = Signal(object)  # a project was opened (the queue is rebuilt)
    record_changed = Signal(str)  # one image's record changed: repaint that row only
    reviewed = Signal(str)  # a person saved a mask for this image (the training set grew)
    order_changed = Signal()  # sort the queue again (sort mode, end of a batch)
    current_changed = Signal(str)  # the image under review
    busy_changed = Signal(str, bool)  # job kind, busy
    model_requested = Signal(str, str, object)  # spec, device, version name: load it in a worker
    predict_requested = Signal(str)  # "project" (unreviewed images) or "current" (the image on screen)
    save_requested = Signal()  # write the mask being edited now (fine-tuning reads masks/)
    mask_replaced = Signal(str, object)  # stem, mask: a saved mask that is not the one on screen


class ReviewController:
    """State of one dock; every change goes through a method that announces it."""

    def __init__(self) -> None:
        self.events = ControllerEvents()
        self.session: ModelSession | None = None
        self.project: Project | None = None
        self.registry: ModelRegistry | None = None
        self.current_stem: str | None = None
        self.sort_mode = SORT_MODES[0]
        self.counts: Counter[str] = Counter()
        self._busy: set[str] = set()
        self._workers: list[Any] = []
        self._predict_when_ready = False
        self._default_user: str | None = None
        self.reviewer = ""  # the name typed in the dock; blank: the project's default (the OS user)
        self.effort = EffortMeter()

    # -- busy flags and workers ------------------------------------------------------------
    def set_busy(self, job: str, busy: bool) -> None:
        (self._busy.add if busy else self._busy.discard)(job)
        self.events.busy_changed.emit(job, busy)

    def is_busy(self, job: str | None = None) -> bool:
        return bool(self._busy) if job is None else job in self._busy

    @property
    def workers(self) -> list[Any]:
        """Running workers (started by :func:`~napari_nevseg.widgets._jobs.start_worker`), stopped
        and joined when the dock goes away."""
        return list(self._workers)

    def track(self, worker: Any) -> None:
        self._workers.append(worker)

    def untrack(self, worker: Any) -> None:
        if worker in self._workers:
            self._workers.remove(worker)

    # -- model -----------------------------------------------------------------------------
    def set_session(self, session: ModelSession) -> None:
        """Make ``session`` the active model; the project's registry records it as active."""
        self.session = session
        registry = self.registry
        if registry is not None and session.version in registry.versions() and registry.active != session.version:
            registry.set_active(session.version)
        self.events.session_changed.emit(session)
        if self._predict_when_ready and self.project is not None:
            self._predict_when_ready = False
            self.events.predict_requested.emit("project")

    def request_version(self, version: str) -> None:
        """Ask for a registry version (or ``default``) to be loaded (raises NevsegError if unknown)."""
        spec = "default"
        if self.registry is not None and version != "default":
            spec = str(self.registry.path(version))
        device = self.session.device.type if self.session is not None else "auto"
        self.events.model_requested.emit(spec, device, version)

    # -- project ---------------------------------------------------------------------------
    def open_project(self, folder: str | Path) -> Project:
        """Open a project (raises NevsegError); loads its active version and asks for the
        unreviewed images to be predicted."""
        from napari_nevseg.core.errors import NevsegError
        from napari_nevseg.core.project import Project
        from napari_nevseg.core.registry import ModelRegistry

        self.save_edits()
        project = Project.open(folder)
        try:
            registry = ModelRegistry(project.models_dir)
        except NevsegError:
            project.close()
            raise
        self.close_project()
        self.project, self.registry, self.current_stem = project, registry, None
        self._default_user = project.user
        self.set_reviewer(self.reviewer)
        self.counts = Counter(r.status.value for r in project.records.values())
        self.events.project_changed.emit(project)
        ready = self.session is not None and registry.active == self.session.version
        if ready and self.counts["unreviewed"]:
            self.events.predict_requested.emit("project")
        self._predict_when_ready = not ready and self.counts["unreviewed"] > 0
        if self.session is not None and not ready:
            self.request_version(registry.active)
        return project

    def close_project(self) -> None:
        """Let the project go (its lock too); the dock is closing or another project opens."""
        if self.project is not None and hasattr(self.project, "close"):
            self.project.close()
        self.project = self.registry = self.current_stem = None

    def reviewed_count(self) -> int:
        from napari_nevseg.core.project import Status

        return sum(n for status, n in self.counts.items() if Status(status).reviewed)

    def _apply(self, stem: str, change: Callable[[], ImageRecord]) -> ImageRecord:
        """Run a record change, keeping the status counts in step (O(1))."""
        before = self.project.records[stem].status.value
        record = change()
        self.counts[before] -= 1
        self.counts[record.status.value] += 1
        self.events.record_changed.emit(stem)
        return record

    def commit_prediction(
        self, stem: str, version: str, uncertainty: float, model_hash: str | None = None
    ) -> ImageRecord | None:
        """Record a prediction whose file a worker already wrote (``Project.write_prediction_file``),
        with the content hash of the model that made it; one record, O(1)."""
        if self.project is None or stem not in self.project.records:
            return None
        project = self.project
        return self._apply(stem, lambda: project.commit_prediction(stem, version, uncertainty, model_hash))

    def other_model(self, stem: str) -> str | None:
        """A sentence when the prediction of ``stem`` was made by another model than the one
        loaded now, told apart by content hash (so an earlier "default" is never taken for the
        current one); ``None`` when it is the loaded model, or nothing was predicted."""
        record = self.project.records.get(stem) if self.project is not None else None
        if record is None or record.model_version is None or self.session is None:
            return None
        if record.model_hash == self.session.content_hash:
            return None
        made = f"'{record.model_version}'" + (f" ({record.model_hash[:12]})" if record.model_hash else "")
        when = f" on {record.predicted_at[:10]}" if record.predicted_at else ""
        loaded = f"'{self.session.version}' ({self.session.content_hash[:12]})"
        if record.model_hash is None:
            return f"predicted by {made}{when}, before models were recorded by content; loaded now: {loaded}"
        return f"predicted by another model, {made}{when}; loaded now: {loaded}"

    def review(self, stem: str, mask: np.ndarray) -> ImageRecord:
        """Save a person's mask for ``stem`` with who and the effort (raises NevsegError;
        nothing changes then)."""
        effort = self.effort.peek(stem)
        record = self._apply(stem, lambda: self.project.review(stem, mask, user=self.user, effort=effort))
        self.effort.take(stem)
        self.events.reviewed.emit(stem)
        return record

    # -- who, statuses and the history -------------------------------------------------------
    @property
    def user(self) -> str | None:
        """Who is recorded with each change: the name typed in the dock, else the OS user."""
        return self.reviewer or self._default_user

    def set_reviewer(self, name: str) -> None:
        """Record ``name`` with every change from now on (blank: the OS user); the project's
        own lines (fine-tune rounds, notes) name the same person."""
        self.reviewer = name.strip()
        if self.project is not None:
            self.project.user = self.user

    def set_status(self, stem: str, status: str) -> ImageRecord:
        """Mark an image *no lesion* (an empty mask is saved), *unusable* or *second opinion*
        (kept out of training). Edits on screen are saved first, so none is lost."""
        from napari_nevseg.core.project import Status

        status = Status(status)
        if stem == self.current_stem:
            self.save_edits()
        effort = self.effort.peek(stem)
        record = self._apply(stem, lambda: self.project.set_status(stem, status, user=self.user, effort=effort))
        self.effort.take(stem)
        if status is Status.NO_LESION:
            self.events.mask_replaced.emit(stem, self.project.read_mask(stem))
        if status.reviewed:
            self.events.reviewed.emit(stem)
        return record

    def history(self, stem: str) -> list:
        """The saved mask versions of ``stem``, newest first ([] without a project)."""
        if self.project is None or stem not in self.project.records:
            return []
        return self.project.history(stem)

    def restore(self, stem: str, version_id: int) -> np.ndarray:
        """Put a saved version back (a new history entry) after saving the edits on screen;
        the panel showing ``stem`` puts it on screen as one undo step."""
        if stem == self.current_stem:
            self.save_edits()
        restored: np.ndarray | None = None

        def change() -> ImageRecord:
            nonlocal restored
            restored = self.project.restore(stem, version_id, user=self.user)
            return self.project.records[stem]

        self._apply(stem, change)
        self.events.mask_replaced.emit(stem, restored)
        self.events.reviewed.emit(stem)
        return restored

    def save_edits(self) -> None:
        """Ask the review panel to write the mask being edited, if it was edited."""
        self.events.save_requested.emit()

    # -- review position ---------------------------------------------------------------------
    def set_sort_mode(self, mode: str) -> None:
        self.sort_mode = mode
        self.events.order_changed.emit()

    def resort(self) -> None:
        """Sort the queue again if its order depends on the records (end of a batch)."""
        if self.sort_mode != SORT_MODES[0]:
            self.events.order_changed.emit()

    def order(self) -> list[str]:
        """Stems in the order chosen (uncertainty: unreviewed first, least certain first)."""
        if self.project is None:
            return []
        records = self.project.records
        if self.sort_mode.startswith("uncertainty"):
            return sorted(records, key=lambda s: (records[s].status.decided, -(records[s].uncertainty or -1.0), s))
        if self.sort_mode == "status":
            return sorted(records, key=lambda s: (STATUS_ORDER.get(records[s].status.value, 9), s))
        return sorted(records)

    def set_current(self, stem: str | None) -> None:
        self.current_stem = stem
        self.effort.start(stem)
        self.events.current_changed.emit(stem or "")

    def next_unreviewed(self, order: list[str], after: str | None) -> str | None:
        """The first image not decided yet (reviewed, unusable or waiting for a second opinion)
        after ``after`` in ``order`` (wrapping), else None."""
        if self.project is None or not order:
            return None
        start = order.index(after) + 1 if after in order else 0
        records = self.project.records
        for stem in order[start:] + order[:start]:
            if stem != after and not records[stem].status.decided:
                return stem
        return None
