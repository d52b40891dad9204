"""``python -m pipeline`` is the same as the ``hsj-pipeline`` command."""
from .cli import main

if __name__ == "__main__":
    main()
