"""``python -m vpmu_core.cli``: the ``vpmu`` command without its console script."""

from . import main

main()
