"""Background services run inside ``opstage serve``."""
