"""Application services: long-lived objects the API and the CLI share (the chat engine)."""
