"""``python -m vpmu_core.cli``: the ``vpmu`` command without its console script."""

from . import main

if __name__ == "__main__":  # a sweep's spawned workers import this module again
    main()
