"""The demo Capsule Service; its code lives in the package, ``opstage/demo/service.py``.

It moved there so ``opstage demo`` works from an installed wheel; this file keeps the old
entry point (``python examples/demo_service/service.py``) and is what the examples tests load.
"""

from __future__ import annotations

from opstage.demo.service import DemoState, build_agent, main

__all__ = ["DemoState", "build_agent", "main"]

if __name__ == "__main__":
    main()
