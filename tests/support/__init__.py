"""Test servers shared by the suites: a stub OpenAI-compatible LLM and a local OTLP receiver."""
