"""cdvkit: find, measure and repair Contextual Distraction Vulnerability in LLMs."""

__version__ = "0.1.0"
