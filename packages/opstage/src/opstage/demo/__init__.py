"""The demo: Opstage plus a small Capsule Service, for a first look (``opstage demo``).

``service.py`` is the demo Capsule Service (it needs the Python agent SDK, ``opstage-agent``);
``launch.py`` starts it next to ``opstage serve`` and stops both on any signal. They live in the
package so ``opstage demo`` works from an installed wheel; ``examples/demo_service/`` keeps thin
entry points for ``make demo`` and for reading.
"""
