"""Opstage: a self-hosted control plane for the fleet of Capsule Services an AI product grows."""

__version__ = "0.1.0"
