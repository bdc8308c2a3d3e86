"""Environment builders, one module per adapter; `registry` picks one by name.

This package module imports nothing, so reaching one builder module (the engine's runner
reaches `base`) does not load the others, and no import cycle runs through here.
"""
