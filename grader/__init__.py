"""Autograder for the course "Architecting LLMs: Building a GPT from Scratch"."""

__version__ = "0.1.0"
