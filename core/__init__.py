"""Shared kernel: settings, the spec's models, the event taxonomy and errors. Imports nothing from the repo."""
