"""The text of ``nevseg/README.txt``: the state folder explained to whoever opens it."""

README = """napari-nevseg project state (human-readable guide; the state itself is a SQLite database)

project.sqlite    the state (SQLite 3; open it with any SQLite tool, read-only while napari runs):
                  images         one row per image in ../images:
                    status        unreviewed | predicted | corrected | accepted | no_lesion |
                                  unusable | second_opinion (the last two are kept out of training)
                    model_version the model that made the prediction (model_hash: its weights' SHA-256)
                    uncertainty   1 - soft Dice of the probabilities with their own mask (0 = sure)
                    dice_prediction_vs_final  how much the reviewer changed the prediction
                    predicted_at / reviewed_at  UTC timestamps; reviewed_by: who
                    effort_seconds / effort_strokes / effort_clicks  summed over the reviews
                  mask_versions  every mask ever saved for an image (files in history/)
                  audit          who changed what and when
                  settings       validation: images kept for validating fine-tunes (chosen once,
                                 never reshuffled); pixel_size_mm
                  rounds         per fine-tune: the new version, its data and validation Dice
history/          every saved mask version (0/255 PNG), restorable from the widget
predictions/      the masks as the model predicted them (0/255 PNG)
models/           fine-tuned model versions (.safetensors, metadata inside) and registry.json
lock              held while a napari-nevseg process has the project open
state.json.migrated  the state as an older napari-nevseg kept it, if the project had one (kept as is)
../masks/         the reviewed masks (0/255 PNG, full size): a training set for `nevseg train`

For a plain copy of the state, export it from the widget or with Project.export("state.json" or
"state.csv").
"""
