"""How eval, serve and synth call a model: one request type (`request`), one codec to and from OpenAI chat
messages (`codec`), one retrying HTTP client (`client`, over `h11pool`) and one in-process batching adapter
(`batching`).

    OpenAI message / eval sample / synth request -> ChatRequest
      -> Batcher(generator)                     (serve, synth transformers/vllm backends)
      or RetryingClient + to_openai_body        (eval --endpoint, judges, synth openai backend)
      -> Completion (text, tokens, finish reason)
"""

from polyvlm.infer.batching import Batcher, BatcherError
from polyvlm.infer.client import (
    CallStats,
    RequestFailed,
    RetryingClient,
    RetryPolicy,
    parse_retry_after,
    run_sync,
)
from polyvlm.infer.codec import (
    MessageError,
    completion_from_openai,
    from_openai_messages,
    to_openai_body,
    to_openai_messages,
)
from polyvlm.infer.request import (
    PLACEHOLDERS,
    ChatRequest,
    Completion,
    Generator,
    PromptTooLong,
    Video,
    normalize_placeholders,
)

__all__ = [
    "PLACEHOLDERS", "Batcher", "BatcherError", "CallStats", "ChatRequest", "Completion", "Generator", "MessageError",
    "PromptTooLong", "RequestFailed", "RetryPolicy", "RetryingClient", "Video", "completion_from_openai",
    "from_openai_messages", "normalize_placeholders", "parse_retry_after", "run_sync", "to_openai_body",
    "to_openai_messages",
]
