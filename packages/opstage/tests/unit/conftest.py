"""Hypothesis without its per-example deadline: the suite runs three workers on two cores, where
one slow example is the machine's doing, not the code's (a 200 ms deadline failed a redaction
property under load that passes 3,000 examples alone). The examples themselves are unchanged."""

from hypothesis import settings

settings.register_profile("opstage", deadline=None)
settings.load_profile("opstage")
