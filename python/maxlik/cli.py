"""Command-line interface (``maxlik`` / ``python -m maxlik``)."""
from __future__ import annotations

import sys


def main(argv=None) -> int:
    import maxlik

    info = maxlik.build_info()
    print(f"maxlik {info['version']}")
    print(f"instruction set: {info['isa']} (this CPU: {info['host_isa']})")
    print(f"threads: {info['num_threads']}")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
