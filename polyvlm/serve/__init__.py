"""polyvlm.serve: the OpenAI-compatible API server, dynamic batching, the Gradio demo and the terminal chat."""
