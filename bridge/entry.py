"""The `faxbridge` command's entry point, kept free of imports on purpose.

Where it sits: the console script (and `python -m bridge.entry`) calls `main()`, which
loads the real CLI (`bridge.cli`). The renderers' worker processes are started by
multiprocessing's forkserver, which re-imports the parent's main module in each child;
if that module imported the server (SQLAlchemy, alembic, the fax line...), every
rendered document would pay ~0.6 s before it starts. This module costs nothing.
"""

import sys


def main() -> int:
    from bridge.cli import main as cli_main

    return cli_main()


if __name__ == "__main__":
    sys.exit(main())
