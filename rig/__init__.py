"""NACS inlet test rig orchestrator: config, Rig session and safety, sampling, recording, pytest plugin, CLI."""

__version__ = "0.1.0"
