"""``make demo``: Opstage and the demo Capsule Service together (``opstage demo`` does the same).

The launcher lives in the package, ``opstage/demo/launch.py``, so an installed wheel has it too.
"""

from __future__ import annotations

import sys

from opstage.demo.launch import main

if __name__ == "__main__":
    sys.exit(main())
