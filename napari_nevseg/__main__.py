"""`python -m napari_nevseg` runs the `nevseg` command line."""

from napari_nevseg.cli import main

raise SystemExit(main())
