"""The folded-away settings of the predict and fine-tune panels: magicgui forms inside a
collapsible "Advanced" section.

The defaults suit most projects, and a reviewer working through a queue needs the buttons,
not the knobs; folding the knobs away keeps each panel short enough for a laptop screen. The
forms are magicgui containers (one typed widget per setting, labels beside them); the panels
keep their Qt widgets (``form.epochs.native``) as attributes, so code and tests that set a
value do not care whether the section is open.
"""

from __future__ import annotations

import os

from qtpy.QtWidgets import QWidget


def collapsible(content: QWidget, title: str = "Advanced", parent: QWidget | None = None):
    """``content`` under a fold-out header (▸ folded, ▾ open), folded at first."""
    from superqt import QCollapsible

    section = QCollapsible(title, parent, expandedIcon="▾", collapsedIcon="▸")
    section.setDuration(80)
    section.addWidget(content)
    section.layout().setContentsMargins(0, 0, 0, 0)
    return section


def predict_settings():
    """Threshold and the clean-up steps applied to each prediction, plus the optional map."""
    from magicgui.widgets import CheckBox, Container, FloatSpinBox

    form = Container(
        widgets=[
            FloatSpinBox(value=0.5, min=0.05, max=0.95, step=0.05, name="threshold", label="threshold",
                         tooltip="probability above which a pixel is lesion"),
            CheckBox(value=True, name="keep_largest", text="keep largest region"),
            CheckBox(value=True, name="fill_holes", text="fill holes"),
            CheckBox(value=True, name="smooth", text="smooth border"),
            CheckBox(value=False, name="probability", text="add probability map"),
        ],
        labels=True,
    )
    form.margins = (0, 0, 0, 0)
    return form


def train_settings(threads: int):
    """The fine-tune recipe's knobs, each at "auto" (the plan the data chooses,
    ``core.training.plan``) until set by hand, and the CPU threads training may take."""
    from magicgui.widgets import Container, FloatSpinBox, SpinBox

    cores = max(1, os.cpu_count() or 1)
    lr = FloatSpinBox(value=0.0, min=0.0, max=1e-2, step=1e-4, name="learning_rate", label="learning rate")
    lr.native.setDecimals(5)
    epochs = SpinBox(value=0, min=0, max=500, name="epochs", label="epochs")
    patience = SpinBox(value=0, min=0, max=100, name="patience", label="early-stop patience",
                       tooltip="with a validation pool: stop after this many epochs without a better Dice")
    for knob in (lr, epochs, patience):
        knob.native.setSpecialValueText("auto")  # the minimum, 0, reads "auto"
    form = Container(
        widgets=[
            epochs, patience, lr,
            SpinBox(value=threads, min=1, max=cores, name="threads", label="CPU threads",
                    tooltip="CPU threads for training; one core is left to the viewer by default"),
        ],
        labels=True,
    )
    form.margins = (0, 0, 0, 0)
    return form
